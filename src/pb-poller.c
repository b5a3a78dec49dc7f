/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-poller.h"

#include <errno.h>
#include <gio/gio.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "pb-batch.h"

/*
 * Every tunneled socket watched through one epoll set per main context, which the main
 * context sees as a single file descriptor.
 *
 * Why not a GSource per socket (g_socket_create_source): GMainContext prepares, polls and
 * checks every source on every iteration, so with 10 000 idle connections each wake-up
 * costs 10 000 sources' worth of work and poll() copies 10 000 pollfds in and out of the
 * kernel: opening connections slowed to tens per second. With epoll a wake-up costs what is
 * ready, however many sockets are open. Level-triggered, so a callback that leaves data
 * unread is simply called again, as with GSocket sources.
 *
 * A watch freed from a callback while other events of the same batch may still point at
 * it is only marked dead and freed after the batch.
 */

#define PB_POLLER_BATCH 64 /* events per dispatch: other sources get a turn in between */

typedef struct {
	GSource source;
	GMainContext *context; /* (unowned) the key in pollers; it owns the poller */
	int epoll_fd;
	guint dispatching;
	gboolean added; /* a socket joined the set during this dispatch */
	GSList *dead;	/* (owned) watches freed during a dispatch */
} PbPoller;

struct _PbPollerWatch {
	PbPoller *poller; /* (unowned) lives as long as its context */
	int fd;
	guint32 events; /* registered in the epoll set; 0 = not registered */
	gboolean dead;
	PbPollerFunc on_readable;
	PbPollerFunc on_writable;
	gpointer user_data;
};

G_LOCK_DEFINE_STATIC(pollers);
static GHashTable *pollers = NULL; /* (owned) GMainContext → PbPoller */

static void
pb_poller_dispatch_ready(PbPoller *poller)
{
	struct epoll_event events[PB_POLLER_BATCH];
	int n = epoll_wait(poller->epoll_fd, events, PB_POLLER_BATCH, 0);

	poller->added = FALSE;
	for (int i = 0; i < n; i++) {
		PbPollerWatch *watch = events[i].data.ptr;
		guint32 ready = events[i].events;

		/* hang-ups and errors go to whichever callback is watching: its I/O fails */
		if (!watch->dead && (watch->events & EPOLLIN) &&
		    (ready & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			watch->on_readable(watch->user_data);
		if (!watch->dead && (watch->events & EPOLLOUT) &&
		    (ready & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
			watch->on_writable(watch->user_data);
	}
}

static gboolean
pb_poller_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	PbPoller *poller = (PbPoller *)source;

	poller->dispatching++;
	pb_batch_begin();
	pb_poller_dispatch_ready(poller);
	/* A listener accepted: the new sockets' first bytes (a request sent right after
	 * connect()) are read now, not one wake-up later. Once: bounded. */
	if (poller->added)
		pb_poller_dispatch_ready(poller);
	pb_batch_end();
	poller->dispatching--;
	if (poller->dispatching == 0) /* not inside a callback's nested iteration */
		g_slist_free_full(g_steal_pointer(&poller->dead), g_free);
	return G_SOURCE_CONTINUE;
}

static void
pb_poller_finalize(GSource *source)
{
	PbPoller *poller = (PbPoller *)source;

	G_LOCK(pollers);
	g_hash_table_remove(pollers, poller->context);
	if (g_hash_table_size(pollers) == 0)
		g_clear_pointer(&pollers, g_hash_table_unref);
	G_UNLOCK(pollers);
	g_slist_free_full(g_steal_pointer(&poller->dead), g_free);
	close(poller->epoll_fd);
}

static GSourceFuncs pb_poller_funcs = {
    .dispatch = pb_poller_dispatch,
    .finalize = pb_poller_finalize,
};

/* The poller of the thread-default main context, made on first use and kept as long as the
 * context (making one per burst of connections cost an epoll set, a source attached and
 * destroyed, and wake-ups of the context); NULL if the process is out of file descriptors. */
static PbPoller *
pb_poller_get(void)
{
	GMainContext *context = g_main_context_ref_thread_default();
	PbPoller *poller;

	G_LOCK(pollers);
	if (pollers == NULL)
		pollers = g_hash_table_new(NULL, NULL);
	poller = g_hash_table_lookup(pollers, context);
	if (poller == NULL) {
		int epoll_fd = epoll_create1(EPOLL_CLOEXEC);

		if (epoll_fd < 0) {
			G_UNLOCK(pollers);
			g_main_context_unref(context);
			return NULL;
		}
		poller = (PbPoller *)g_source_new(&pb_poller_funcs, sizeof(PbPoller));
		poller->context = context;
		poller->epoll_fd = epoll_fd;
		g_source_set_name(&poller->source, "PbPoller");
		/* GLib "blocks" a source that cannot recurse while it dispatches: it removes
		 * its fds from the poll set and adds them back, and each change writes to the
		 * context's eventfd, two system calls per dispatch that do nothing here (no
		 * callback iterates the main context). */
		g_source_set_can_recurse(&poller->source, TRUE);
		g_source_add_unix_fd(&poller->source, poller->epoll_fd, G_IO_IN);
		g_hash_table_insert(pollers, context, poller);
		G_UNLOCK(pollers);
		g_source_attach(&poller->source, context);
		g_source_unref(&poller->source); /* the context's now: it goes with it */
	} else {
		G_UNLOCK(pollers);
	}
	g_main_context_unref(context);
	return poller;
}

/* Makes the thread-default context's poller now rather than at the first watch, so that its
 * epoll fd is one of the fds a process always has, not one that comes with the first
 * connection. Without file descriptors left, the first watch tries again. */
void
pb_poller_start(void)
{
	pb_poller_get();
}

/**
 * pb_poller_watch_new:
 * @fd: a non-blocking socket, which must stay open until pb_poller_watch_free()
 *
 * Returns: (transfer full) (nullable): a watch that watches nothing until
 *   pb_poller_watch_set(), or %NULL with @error set if no epoll set could be made
 */
PbPollerWatch *
pb_poller_watch_new(int fd, PbPollerFunc on_readable, PbPollerFunc on_writable, gpointer user_data,
		    GError **error)
{
	PbPoller *poller = pb_poller_get();
	PbPollerWatch *watch;

	if (poller == NULL) {
		int saved = errno;

		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "epoll_create1: %s",
			    g_strerror(saved));
		return NULL;
	}
	watch = g_new0(PbPollerWatch, 1);
	watch->poller = poller;
	watch->fd = fd;
	watch->on_readable = on_readable;
	watch->on_writable = on_writable;
	watch->user_data = user_data;
	return watch;
}

/* What the callbacks are called for; neither = the socket is out of the epoll set. */
void
pb_poller_watch_set(PbPollerWatch *watch, gboolean readable, gboolean writable)
{
	guint32 events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
	struct epoll_event event = {.events = events, .data.ptr = watch};
	int op;

	if (events == watch->events)
		return;
	if (events == 0)
		op = EPOLL_CTL_DEL; /* else hang-ups would still be reported */
	else
		op = watch->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	if (op == EPOLL_CTL_ADD)
		watch->poller->added = TRUE;
	if (epoll_ctl(watch->poller->epoll_fd, op, watch->fd, &event) < 0)
		g_warning("epoll_ctl(%d) on fd %d: %s", op, watch->fd, g_strerror(errno));
	watch->events = events;
}

/* Call it before the socket is closed: epoll knows sockets by their fd number. */
void
pb_poller_watch_free(PbPollerWatch *watch)
{
	PbPoller *poller = watch->poller;

	pb_poller_watch_set(watch, FALSE, FALSE);
	if (poller->dispatching > 0) {
		watch->dead = TRUE;
		poller->dead = g_slist_prepend(poller->dead, watch);
	} else {
		g_free(watch);
	}
}
