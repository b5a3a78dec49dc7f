/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pb-listener.h"
#include "pb-poller.h"
#include "pb-test-utils.h"

/* PbPoller over real socket pairs: readiness, freeing from a callback, and its lifetime. */

typedef struct {
	int fds[2];	      /* a connected pair; [0] is watched */
	PbPollerWatch *watch; /* (owned) (nullable) */
	guint n_readable;     /* callbacks so far */
	guint n_writable;
	PbPollerWatch **victim; /* (nullable) a watch to free from the callback */
} Pair;

static void
pair_readable_cb(gpointer user_data)
{
	Pair *pair = user_data;
	char buf[64];

	pair->n_readable++;
	g_assert_cmpint(read(pair->fds[0], buf, sizeof buf), >, 0);
	if (pair->victim != NULL && *pair->victim != NULL)
		g_clear_pointer(pair->victim, pb_poller_watch_free);
}

static void
pair_writable_cb(gpointer user_data)
{
	Pair *pair = user_data;

	pair->n_writable++;
	pb_poller_watch_set(pair->watch, TRUE, FALSE); /* once is enough */
}

static void
pair_init(Pair *pair)
{
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair->fds), ==, 0);
	pair->watch =
	    pb_poller_watch_new(pair->fds[0], pair_readable_cb, pair_writable_cb, pair, &error);
	g_assert_no_error(error);
}

static void
pair_clear(Pair *pair)
{
	g_clear_pointer(&pair->watch, pb_poller_watch_free);
	close(pair->fds[0]);
	close(pair->fds[1]);
}

static void
test_poller_readiness(void)
{
	Pair pair = {0};

	g_test_summary("Callbacks come for what is watched, and only while it is watched");
	pair_init(&pair);
	g_assert_cmpint(write(pair.fds[1], "x", 1), ==, 1);
	pb_test_settle();
	g_assert_cmpuint(pair.n_readable, ==, 0); /* not watched yet */

	pb_poller_watch_set(pair.watch, TRUE, TRUE);
	pb_test_wait_until(pair.n_readable == 1 && pair.n_writable == 1, 5);
	g_assert_cmpint(write(pair.fds[1], "y", 1), ==, 1);
	pb_test_wait_until(pair.n_readable == 2, 5);
	g_assert_cmpuint(pair.n_writable, ==, 1);

	pb_poller_watch_set(pair.watch, FALSE, FALSE);
	g_assert_cmpint(write(pair.fds[1], "z", 1), ==, 1);
	pb_test_settle();
	g_assert_cmpuint(pair.n_readable, ==, 2);
	pair_clear(&pair);
}

static void
test_poller_free_from_callback(void)
{
	Pair pairs[2];

	g_test_summary("A watch freed by another's callback in the same batch is not called");
	memset(pairs, 0, sizeof pairs);
	pair_init(&pairs[0]);
	pair_init(&pairs[1]);
	pairs[0].victim = &pairs[1].watch;
	pairs[1].victim = &pairs[0].watch;
	pb_poller_watch_set(pairs[0].watch, TRUE, FALSE);
	pb_poller_watch_set(pairs[1].watch, TRUE, FALSE);
	/* both ready before the main loop runs: one epoll_wait returns both */
	g_assert_cmpint(write(pairs[0].fds[1], "a", 1), ==, 1);
	g_assert_cmpint(write(pairs[1].fds[1], "b", 1), ==, 1);
	pb_test_wait_until(pairs[0].n_readable + pairs[1].n_readable > 0, 5);
	pb_test_settle();
	g_assert_cmpuint(pairs[0].n_readable + pairs[1].n_readable, ==, 1);
	g_assert_true(pairs[0].watch == NULL || pairs[1].watch == NULL);
	pair_clear(&pairs[0]);
	pair_clear(&pairs[1]);
}

static guint
pairs_count_readable(const Pair *pairs, guint n)
{
	guint total = 0;

	for (guint i = 0; i < n; i++)
		total += pairs[i].n_readable;
	return total;
}

static void
test_poller_many(void)
{
	enum { N = 400 }; /* 800 fds: under the usual soft limit of 1024 */
	g_autofree Pair *pairs = g_new0(Pair, N);

	g_test_summary("Hundreds of watches at once each get their own event");
	for (guint i = 0; i < N; i++) {
		pair_init(&pairs[i]);
		pb_poller_watch_set(pairs[i].watch, TRUE, FALSE);
	}
	for (guint i = 0; i < N; i += 7)
		g_assert_cmpint(write(pairs[i].fds[1], "m", 1), ==, 1);
	pb_test_wait_until(pairs_count_readable(pairs, N) == (N + 6) / 7, 10);
	for (guint i = 0; i < N; i++) {
		g_assert_cmpuint(pairs[i].n_readable, ==, i % 7 == 0 ? 1 : 0);
		pair_clear(&pairs[i]);
	}
}

/* How many fds the thread-default context would poll now. */
static gint
context_n_fds(void)
{
	g_autoptr(GMainContext) context = g_main_context_ref_thread_default();
	GPollFD fds[256];
	gint max_priority;
	gint timeout;
	gint n;

	g_assert_true(g_main_context_acquire(context));
	g_main_context_prepare(context, &max_priority);
	n = g_main_context_query(context, max_priority, &timeout, fds, G_N_ELEMENTS(fds));
	g_main_context_release(context);
	return n;
}

static void
accepted_cb(GSocketConnection *connection, gpointer user_data)
{
	(*(guint *)user_data)++;
}

static void
test_poller_listeners(void)
{
	enum { N = 20 };
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	PbListener *listeners[N];
	guint n_accepted = 0;
	gint before;

	g_test_summary("Accepting listeners are watched through the poller: 20 of them add "
		       "nothing to what the main loop polls (a server has a public port per "
		       "client), and each still accepts");
	pb_poller_start();
	before = context_n_fds();
	for (guint i = 0; i < N; i++) {
		listeners[i] = pb_listener_new(address, accepted_cb, &n_accepted, NULL);
		g_assert_nonnull(listeners[i]);
		pb_listener_set_accepting(listeners[i], TRUE);
	}
	g_test_message("%d fds polled before, %d with %d listeners", before, context_n_fds(), N);
	g_assert_cmpint(context_n_fds(), ==, before);
	for (guint i = 0; i < N; i++) {
		g_autoptr(GSocket) client = pb_test_connect(pb_listener_get_port(listeners[i]));

		pb_test_wait_until(n_accepted == i + 1, 10);
	}
	for (guint i = 0; i < N; i++)
		pb_listener_free(listeners[i]);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/poller/readiness", test_poller_readiness);
	g_test_add_func("/poller/free-from-callback", test_poller_free_from_callback);
	g_test_add_func("/poller/many", test_poller_many);
	g_test_add_func("/poller/listeners", test_poller_listeners);
	return g_test_run();
}
