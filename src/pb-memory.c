/* SPDX-License-Identifier: ISC */

/*
 * Giving memory back after a burst. A server that held 10 000 connections keeps their
 * ~15 MiB after they close unless two things happen: the objects were allocated with
 * malloc rather than GLib 2.74's slice allocator, which never returns its pages (the systemd
 * units set G_SLICE=always-malloc, what GLib 2.76 made the only behaviour: GLib reads it
 * before main() runs, so the program cannot ask for it itself), and glibc is
 * asked to hand back the free pages in the middle of its heap, which it otherwise keeps
 * (only the top of the heap goes back on its own).
 *
 * Whoever frees something connection-sized calls pb_memory_release_soon(); one release
 * runs a moment later for every burst, so a steady stream of connections costs at most one
 * malloc_trim() per PB_MEMORY_RELEASE_DELAY_S.
 */

#include "config.h"

#include "pb-memory.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#define PB_MEMORY_RELEASE_DELAY_S 2

#ifdef __GLIBC__
static gint pb_memory_release_pending; /* atomic: tunnels may run in several threads */

static gboolean
pb_memory_release(gpointer user_data)
{
	g_atomic_int_set(&pb_memory_release_pending, 0);
	malloc_trim(0);
	return G_SOURCE_REMOVE;
}
#endif

/* Gives free heap pages back to the system a moment from now (once per burst), from the
 * thread-default main context. */
void
pb_memory_release_soon(void)
{
#ifdef __GLIBC__
	GSource *source;

	if (!g_atomic_int_compare_and_exchange(&pb_memory_release_pending, 0, 1))
		return;
	source = g_timeout_source_new_seconds(PB_MEMORY_RELEASE_DELAY_S);
	g_source_set_static_name(source, "pb_memory_release");
	g_source_set_callback(source, pb_memory_release, NULL, NULL);
	g_source_attach(source, g_main_context_get_thread_default());
	g_source_unref(source);
#endif
}
