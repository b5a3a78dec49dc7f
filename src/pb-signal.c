/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-signal.h"

#include <errno.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pb-poller.h"

/*
 * Signals handled in the main loop (SIGINT, SIGTERM, SIGHUP, SIGWINCH), as with
 * g_unix_signal_add(), but watched through the main context's PbPoller: the handler notes
 * the signal and writes to an eventfd that is part of the poller's epoll set.
 *
 * Why not g_unix_signal_add(): it makes a GSource per signal, and GLib prepares and checks
 * every source on every wake-up of the main loop. A server's three cost about 1 000
 * instructions of the 12 000 a round trip through it takes (callgrind); here they cost
 * nothing until a signal comes.
 *
 * The watches belong to the thread-default main context of the first pb_signal_add() (the
 * main thread's). The eventfd stays open once made: a handler running on another thread
 * may still be about to write to it.
 */

typedef struct {
	guint id;
	int signum;
	GSourceFunc func;
	gpointer user_data;
} PbSignalWatch;

static int event_fd = -1;
static volatile sig_atomic_t pending[NSIG];
static PbPollerWatch *poller_watch = NULL; /* (owned) while there are watches */
static GArray *watches = NULL;		   /* (owned) of PbSignalWatch */
static guint last_id = 0;

static void
pb_signal_handler(int signum)
{
	int saved = errno;
	guint64 one = 1;

	pending[signum] = 1;
	if (write(event_fd, &one, sizeof one) < 0) {
		/* full (2^64 - 2 unread): it is readable anyway */
	}
	errno = saved;
}

static PbSignalWatch *
pb_signal_find(guint id)
{
	for (guint i = 0; watches != NULL && i < watches->len; i++) {
		if (g_array_index(watches, PbSignalWatch, i).id == id)
			return &g_array_index(watches, PbSignalWatch, i);
	}
	return NULL;
}

static gboolean
pb_signal_is_watched(int signum)
{
	for (guint i = 0; watches != NULL && i < watches->len; i++) {
		if (g_array_index(watches, PbSignalWatch, i).signum == signum)
			return TRUE;
	}
	return FALSE;
}

static void
pb_signal_set_handler(int signum, void (*handler)(int))
{
	struct sigaction action = {.sa_handler = handler, .sa_flags = SA_RESTART};

	sigemptyset(&action.sa_mask);
	sigaction(signum, &action, NULL);
}

/* Calls the watches of @signum; each may add or remove watches. */
static void
pb_signal_dispatch(int signum)
{
	g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint));

	for (guint i = 0; i < watches->len; i++) {
		if (g_array_index(watches, PbSignalWatch, i).signum == signum)
			g_array_append_val(ids, g_array_index(watches, PbSignalWatch, i).id);
	}
	for (guint i = 0; i < ids->len; i++) {
		guint id = g_array_index(ids, guint, i);
		PbSignalWatch *watch = pb_signal_find(id);

		/* (removed by an earlier one meanwhile: not called) */
		if (watch != NULL && watch->func(watch->user_data) == G_SOURCE_REMOVE &&
		    pb_signal_find(id) != NULL)
			pb_signal_remove(id);
	}
}

static void
pb_signal_readable_cb(gpointer user_data)
{
	guint64 count;

	if (read(event_fd, &count, sizeof count) < 0 && errno != EAGAIN)
		g_warning("reading the signals' eventfd: %s", g_strerror(errno));
	for (int signum = 1; signum < NSIG && watches != NULL; signum++) {
		if (!pending[signum])
			continue;
		pending[signum] = 0;
		pb_signal_dispatch(signum);
	}
}

/**
 * pb_signal_add:
 * @func: called in the main loop after @signum came; %G_SOURCE_REMOVE removes the watch
 *
 * Like g_unix_signal_add(), without a GSource. @signum is handled (not fatal) as long as
 * it has a watch.
 *
 * Returns: the watch's id, for pb_signal_remove(); 0 if the process is out of file
 *   descriptors (the signal then keeps its default action)
 */
guint
pb_signal_add(int signum, GSourceFunc func, gpointer user_data)
{
	PbSignalWatch watch = {++last_id, signum, func, user_data};
	g_autoptr(GError) error = NULL;

	g_return_val_if_fail(signum > 0 && signum < NSIG, 0);

	if (event_fd < 0)
		event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (event_fd < 0) {
		g_warning("signals cannot be watched: eventfd: %s", g_strerror(errno));
		return 0;
	}
	if (poller_watch == NULL) {
		poller_watch =
		    pb_poller_watch_new(event_fd, pb_signal_readable_cb, NULL, NULL, &error);
		if (poller_watch == NULL) {
			g_warning("signals cannot be watched: %s", error->message);
			return 0;
		}
		pb_poller_watch_set(poller_watch, TRUE, FALSE);
		watches = g_array_new(FALSE, FALSE, sizeof(PbSignalWatch));
	}
	if (!pb_signal_is_watched(signum))
		pb_signal_set_handler(signum, pb_signal_handler);
	g_array_append_val(watches, watch);
	return watch.id;
}

/* Removes a watch; a signal without watches is back to its default action. */
void
pb_signal_remove(guint id)
{
	int signum = 0;

	for (guint i = 0; watches != NULL && i < watches->len; i++) {
		if (g_array_index(watches, PbSignalWatch, i).id == id) {
			signum = g_array_index(watches, PbSignalWatch, i).signum;
			g_array_remove_index(watches, i);
			break;
		}
	}
	g_return_if_fail(signum != 0);

	if (!pb_signal_is_watched(signum))
		pb_signal_set_handler(signum, SIG_DFL);
	if (watches->len == 0) {
		g_clear_pointer(&poller_watch, pb_poller_watch_free);
		g_clear_pointer(&watches, g_array_unref);
	}
}
