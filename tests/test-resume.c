/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <signal.h>
#include <sys/socket.h>

#include "pb-test-utils.h"

/*
 * Resumption (protocol 2 `resume`), end to end: real `serve` and `forward` processes,
 * whose WebSocket runs through a relay (socat, one connection) that the test kills and
 * starts again. The public peers (threads of the test, blocking sockets) and the local
 * service (a PbTestService) must never see an error, and every byte must arrive once, in
 * order: each transfer checks the pattern at its offset and the exact count.
 */

#define MIB (1024 * 1024)

/* Seconds a public peer waits for a byte: a cut and the client's backoff take a while. */
#define PEER_TIMEOUT_S 60

typedef struct {
	GSubprocessLauncher *launcher; /* (owned) */
	PbTestProc *server;
	PbTestProc *relay; /* (nullable) while the path is cut */
	PbTestProc *client;
	PbTestService *service;
	guint16 ws_port;
	guint16 relay_port;
	guint16 public_port;
	gboolean debug; /* serve and forward log each connection's steps */
} Path;

static void
relay_start(Path *path)
{
	g_autofree char *listen =
	    g_strdup_printf("TCP-LISTEN:%u,bind=127.0.0.1,reuseaddr", path->relay_port);
	g_autofree char *connect = g_strdup_printf("TCP:127.0.0.1:%u", path->ws_port);

	/* one connection: the client's WebSocket; killed, both ends see the path die */
	path->relay =
	    pb_test_proc_spawn(path->launcher, "socat", "-d", "-d", listen, connect, NULL);
	pb_test_wait_until(pb_test_proc_said(path->relay, "listening on"), 10);
}

/* Kills the relay: the WebSocket is lost, with no close frame, at both ends. */
static void
relay_cut(Path *path)
{
	pb_test_proc_kill(path->relay);
	pb_test_proc_finish(g_steal_pointer(&path->relay));
}

/* serve with @grace, and forward to @service through the relay. */
static void
path_start(Path *path, PbTestService *service, const char *grace, const char *tunnel_port)
{
	g_autofree char *local = g_strdup_printf("%u", pb_test_service_get_port(service));
	g_autofree char *server_url = NULL;

	path->launcher = pb_test_proc_launcher_new();
	if (path->debug)
		g_subprocess_launcher_setenv(path->launcher, "G_MESSAGES_DEBUG", "piggyback", TRUE);
	path->service = service;
	path->server = pb_test_proc_spawn(path->launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p",
					  "0", "-l", "127.0.0.1", "-H", "127.0.0.1", "--grace",
					  grace, "-t", tunnel_port, NULL);
	path->ws_port = pb_test_proc_wait_port(path->server, "Listening on");
	path->relay_port = pb_test_free_port();
	relay_start(path);
	server_url = g_strdup_printf("127.0.0.1:%u", path->relay_port);
	path->client = pb_test_proc_spawn(path->launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p",
					  local, "-h", "127.0.0.1", "-s", server_url, NULL);
	path->public_port = pb_test_proc_wait_port(path->client, "Access URL:");
}

static void
path_stop(Path *path)
{
	g_assert_cmpint(pb_test_proc_finish(path->client), ==, 0);
	if (path->relay != NULL)
		pb_test_proc_finish(path->relay);
	g_assert_cmpint(pb_test_proc_finish(path->server), ==, 0);
	pb_test_service_free(path->service);
	g_object_unref(path->launcher);
}

/* How many times the client said @needle. */
static guint
client_count(Path *path, const char *needle)
{
	const char *output = pb_test_proc_get_output(path->client);
	guint n = 0;

	for (const char *p = strstr(output, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Cuts the path for @seconds, then lets the client back; waits until it resumed
 * (its @n_resumed-th "Resumed" event). Returns the peak RSS of each side during the cut. */
static void
path_cut(Path *path, guint seconds, guint n_resumed, guint64 *server_rss, guint64 *client_rss)
{
	gint64 until;

	relay_cut(path);
	until = g_get_monotonic_time() + seconds * G_USEC_PER_SEC;
	*server_rss = *client_rss = 0;
	while (g_get_monotonic_time() < until) {
		*server_rss = MAX(*server_rss, pb_test_proc_get_rss(path->server));
		*client_rss = MAX(*client_rss, pb_test_proc_get_rss(path->client));
		g_main_context_iteration(NULL, FALSE);
		g_usleep(50 * 1000);
	}
	relay_start(path);
	if (n_resumed > 0)
		pb_test_wait_until(client_count(path, "Resumed ") >= n_resumed, 30);
}

/* A public peer that sends @size bytes of the pattern (then shuts down writing) and reads
 * back what the local service answers: the same bytes from an echo service. */
typedef struct {
	guint16 port;
	guint64 size;	  /* bytes sent */
	guint64 expected; /* bytes to read back */
	gint64 sent;	  /* atomic */
	gint64 received;  /* atomic: checked */
	int *go;	  /* (nullable) atomic: the writer starts once it is set */
	int ok;		  /* atomic: all of it, byte-exact, then EOF, no error */
	int done;	  /* atomic */
	GSocket *socket;  /* (owned) */
	GThread *reader;  /* (owned) */
	GThread *writer;  /* (owned) */
	char error[128];
} Transfer;

static gpointer
transfer_write_cb(gpointer user_data)
{
	Transfer *t = user_data;
	g_autofree guint8 *buf = g_malloc(64 * 1024);
	guint64 offset = 0;

	while (t->go != NULL && !g_atomic_int_get(t->go))
		g_usleep(1000); /* the test sets it within seconds, or fails */
	while (offset < t->size) {
		gsize n = (gsize)MIN(64 * 1024, t->size - offset);
		g_autoptr(GError) error = NULL;
		gssize sent;

		pb_test_pattern_fill(buf, n, offset);
		sent = g_socket_send(t->socket, (const char *)buf, n, NULL, &error);
		if (sent <= 0) {
			g_snprintf(t->error, sizeof t->error, "send at %" G_GUINT64_FORMAT ": %s",
				   offset, error != NULL ? error->message : "0");
			return NULL;
		}
		offset += (guint64)sent;
		g_atomic_pointer_set(&t->sent, offset);
	}
	g_socket_shutdown(t->socket, FALSE, TRUE, NULL);
	return NULL;
}

static gpointer
transfer_read_cb(gpointer user_data)
{
	Transfer *t = user_data;
	g_autofree guint8 *buf = g_malloc(64 * 1024);
	guint64 offset = 0;
	gboolean ok = TRUE;

	for (;;) {
		g_autoptr(GError) error = NULL;
		gssize n = g_socket_receive(t->socket, (char *)buf, 64 * 1024, NULL, &error);

		if (n < 0) {
			g_snprintf(t->error, sizeof t->error,
				   "receive at %" G_GUINT64_FORMAT ": %s", offset, error->message);
			ok = FALSE;
			break;
		}
		if (n == 0)
			break;
		if (!pb_test_pattern_check(buf, (gsize)n, offset)) {
			g_snprintf(t->error, sizeof t->error, "wrong bytes at %" G_GUINT64_FORMAT,
				   offset);
			ok = FALSE;
			break;
		}
		offset += (guint64)n;
		g_atomic_pointer_set(&t->received, offset);
	}
	if (ok && offset != t->expected) {
		g_snprintf(t->error, sizeof t->error,
			   "%" G_GUINT64_FORMAT " bytes of %" G_GUINT64_FORMAT, offset,
			   t->expected);
		ok = FALSE;
	}
	g_thread_join(g_steal_pointer(&t->writer));
	g_atomic_int_set(&t->ok, ok && t->error[0] == '\0');
	g_atomic_int_set(&t->done, 1);
	g_main_context_wakeup(NULL);
	return NULL;
}

static void
transfer_start(Transfer *t, guint16 port, guint64 size, guint64 expected, int *go)
{
	t->go = go;
	t->port = port;
	t->size = size;
	t->expected = expected;
	t->socket = pb_test_connect(port);
	g_socket_set_timeout(t->socket, PEER_TIMEOUT_S);
	t->writer = g_thread_new("writer", transfer_write_cb, t);
	t->reader = g_thread_new("reader", transfer_read_cb, t);
}

static guint64
transfer_received(Transfer *t)
{
	return (guint64)g_atomic_pointer_get(&t->received);
}

/* Waits for the end, and says what went wrong, if anything. */
static void
transfer_finish(Transfer *t, const char *what)
{
	pb_test_wait_until(g_atomic_int_get(&t->done), 120);
	g_thread_join(t->reader);
	g_clear_object(&t->socket);
	if (!g_atomic_int_get(&t->ok))
		g_error("%s: %s", what, t->error);
}

/* An interactive session (think SSH): 64-byte messages, each echoed before the next. */
typedef struct {
	guint16 port;
	int stop;	 /* atomic: the test asks it to end */
	gint64 n_rounds; /* atomic */
	int ok;		 /* atomic */
	int done;	 /* atomic */
	GThread *thread; /* (owned) */
	char error[128];
} Session;

static gpointer
session_cb(gpointer user_data)
{
	Session *s = user_data;
	g_autoptr(GSocket) socket = pb_test_connect(s->port);
	guint64 offset = 0;
	guint8 buf[64];
	gboolean ok = TRUE;

	g_socket_set_timeout(socket, PEER_TIMEOUT_S);
	while (ok && !g_atomic_int_get(&s->stop)) {
		g_autoptr(GError) error = NULL;
		gsize got = 0;

		pb_test_pattern_fill(buf, sizeof buf, offset);
		if (g_socket_send(socket, (const char *)buf, sizeof buf, NULL, &error) !=
		    sizeof buf) {
			g_snprintf(s->error, sizeof s->error, "send: %s",
				   error != NULL ? error->message : "short");
			ok = FALSE;
			break;
		}
		while (got < sizeof buf) {
			gssize n = g_socket_receive(socket, (char *)buf + got, sizeof buf - got,
						    NULL, &error);

			if (n <= 0) {
				g_snprintf(s->error, sizeof s->error,
					   "round %" G_GINT64_FORMAT ": %s",
					   (gint64)g_atomic_pointer_get(&s->n_rounds),
					   error != NULL ? error->message : "end of stream");
				ok = FALSE;
				break;
			}
			got += (gsize)n;
		}
		if (ok && !pb_test_pattern_check(buf, sizeof buf, offset)) {
			g_snprintf(s->error, sizeof s->error, "wrong echo at %" G_GUINT64_FORMAT,
				   offset);
			ok = FALSE;
		}
		offset += sizeof buf;
		g_atomic_pointer_add(&s->n_rounds, 1);
		g_usleep(5 * 1000);
	}
	g_atomic_int_set(&s->ok, ok);
	g_atomic_int_set(&s->done, 1);
	g_main_context_wakeup(NULL);
	return NULL;
}

static void
session_start(Session *s, guint16 port)
{
	s->port = port;
	s->thread = g_thread_new("session", session_cb, s);
	pb_test_wait_until(g_atomic_pointer_get(&s->n_rounds) > 10, 10);
}

static void
session_finish(Session *s)
{
	g_atomic_int_set(&s->stop, 1);
	pb_test_wait_until(g_atomic_int_get(&s->done), 120);
	g_thread_join(s->thread);
	if (!g_atomic_int_get(&s->ok))
		g_error("interactive session: %s", s->error);
}

/* The sizes: the 256 MiB, less under sanitizers, which are slow. */
static guint64
big_size(void)
{
	return g_getenv("PB_TEST_SANITIZED") != NULL ? 64 * MIB : 256 * MIB;
}

static void
assert_memory(guint64 server_rss, guint64 client_rss)
{
	g_test_message("peak RSS during the cut: serve %" G_GUINT64_FORMAT
		       " KiB, forward %" G_GUINT64_FORMAT " KiB",
		       server_rss / 1024, client_rss / 1024);
	if (g_getenv("PB_TEST_SANITIZED") != NULL)
		return; /* sanitizers inflate it */
	g_assert_cmpuint(server_rss, <, 64 * MIB);
	g_assert_cmpuint(client_rss, <, 64 * MIB);
}

#define N_SMALL 16

/* Whether every transfer had 256 KiB back already. */
static gboolean
all_flowing(Transfer *big, Transfer *smalls)
{
	if (transfer_received(big) < 256 * 1024)
		return FALSE;
	for (guint i = 0; i < N_SMALL; i++) {
		if (transfer_received(&smalls[i]) < 256 * 1024)
			return FALSE;
	}
	return TRUE;
}

static void
test_resume_cuts(void)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	guint64 size = big_size();
	guint64 small = size / 8;
	Path path = {0};
	Transfer big = {0};
	Transfer smalls[N_SMALL] = {{0}};
	Session session = {0};
	guint64 server_rss;
	guint64 client_rss;
	int go = 0;

	g_test_summary("An interactive session, a 256 MiB transfer each way and 16 more "
		       "connections with data in flight both ways, while the WebSocket path is "
		       "cut twice for 2 s: all complete byte-exact, their peers never see an "
		       "error, and each side stays under 64 MiB during the cut");
	path_start(&path, echo, "30", "0");
	session_start(&session, path.public_port);
	transfer_start(&big, path.public_port, size, size, &go);
	for (guint i = 0; i < N_SMALL; i++)
		transfer_start(&smalls[i], path.public_port, small, small, &go);
	g_atomic_int_set(&go, 1); /* all at once: they share the path evenly */

	/* the first cut once every connection moves bytes both ways */
	pb_test_wait_until(all_flowing(&big, smalls), 60);
	for (guint i = 0; i < N_SMALL; i++)
		g_assert_cmpuint(transfer_received(&smalls[i]), <, small);
	path_cut(&path, 2, 1, &server_rss, &client_rss);
	assert_memory(server_rss, client_rss);
	g_assert_true(pb_test_proc_said(path.client, "Resumed 18 connections"));

	/* the second in the middle of the big one */
	pb_test_wait_until(transfer_received(&big) >= size / 2 || g_atomic_int_get(&big.done), 120);
	g_assert_cmpuint(transfer_received(&big), <, size);
	path_cut(&path, 2, 2, &server_rss, &client_rss);
	assert_memory(server_rss, client_rss);

	transfer_finish(&big, "256 MiB each way");
	for (guint i = 0; i < N_SMALL; i++)
		transfer_finish(&smalls[i], "one of 16");
	session_finish(&session);
	g_test_message("%" G_GINT64_FORMAT " interactive rounds",
		       (gint64)g_atomic_pointer_get(&session.n_rounds));
	pb_test_wait_until(pb_test_proc_said(path.server, "resumed 18 connections, 0 could not be"),
			   10);
	g_assert_false(pb_test_proc_said(path.server, "protocol error"));
	/* the local service echoed each byte once */
	g_assert_cmpuint(pb_test_service_get_bytes(echo), ==,
			 size + N_SMALL * small +
			     64 * (guint64)g_atomic_pointer_get(&session.n_rounds));
	path_stop(&path);
}

/* The one transfer through @path ended without an error, and the local service finished
 * its connection having moved @service_bytes, all of the pattern; then stops @path. */
static void
path_finish_one(Path *path, Transfer *t, const char *what, guint64 service_bytes)
{
	transfer_finish(t, what);
	pb_test_wait_until(pb_test_service_get_n_finished(path->service) == 1, 10);
	g_assert_false(pb_test_service_get_corrupt(path->service));
	g_assert_cmpuint(pb_test_service_get_bytes(path->service), ==, service_bytes);
	path_stop(path);
}

static void
test_resume_half_closed(void)
{
	PbTestService *answer = pb_test_service_new(PB_TEST_SERVICE_ANSWER, 32 * MIB, 0);
	Path path = {0};
	Transfer t = {0};
	guint64 server_rss;
	guint64 client_rss;

	g_test_summary("A connection whose public side has shut down writing (EOF passed on) "
		       "when the path is cut: the other direction, 32 MiB, completes after the "
		       "resumption");
	path_start(&path, answer, "30", "0");
	transfer_start(&t, path.public_port, MIB, 32 * MIB, NULL);
	/* the local service answers only after the EOF: the answer flowing means it came */
	pb_test_wait_until(transfer_received(&t) >= MIB, 30);
	path_cut(&path, 2, 1, &server_rss, &client_rss);
	g_assert_true(pb_test_proc_said(path.client, "Resumed 1 connection"));
	path_finish_one(&path, &t, "half-closed", MIB + 32 * MIB);
}

/* Stops the relay in its tracks: what either side sends now waits in it, and is lost when
 * it is killed. */
static void
relay_stop(Path *path)
{
	g_assert_cmpint(kill(pb_test_proc_get_pid(path->relay), SIGSTOP), ==, 0);
}

/* Kills the stopped relay with what it holds, starts another, waits for the resumption. */
static void
relay_replace(Path *path)
{
	pb_test_settle(); /* the side that ended has sent all it will */
	relay_cut(path);
	relay_start(path);
	pb_test_wait_until(client_count(path, "Resumed ") >= 1, 30);
	g_assert_true(pb_test_proc_said(path->client, "Resumed 1 connection"));
}

static void
test_resume_ended_in_flight_serve(void)
{
	PbTestService *speak = pb_test_service_new(PB_TEST_SERVICE_SPEAK_FIRST, 64 * 1024, 0);
	Path path = {.debug = TRUE};
	Transfer t = {0};
	int go = 0;

	g_test_summary("A connection that serve ended both ways while its last 64 KiB and EOF "
		       "were still on the path, which is then lost: they reach the local "
		       "service after the resumption");
	path_start(&path, speak, "30", "0");
	/* the local service speaks first and shuts down writing: serve passes the EOF on */
	transfer_start(&t, path.public_port, 64 * 1024, 64 * 1024, &go);
	pb_test_wait_until(pb_test_proc_said(path.server, "stream 1: ended by the peer"), 30);
	/* the public peer's last bytes and EOF go into the stopped relay */
	relay_stop(&path);
	g_atomic_int_set(&go, 1);
	pb_test_wait_until(pb_test_proc_said(path.server, "stream 1: ended\n"), 30);
	relay_replace(&path);
	path_finish_one(&path, &t, "ended in flight", 2 * 64 * 1024);
}

static void
test_resume_ended_in_flight_forward(void)
{
	PbTestService *answer = pb_test_service_new(PB_TEST_SERVICE_ANSWER, 64 * 1024, 0);
	Path path = {.debug = TRUE};
	Transfer t = {0};
	int reached = 0;
	int go = 0;

	g_test_summary("A connection that forward ended both ways while its last 64 KiB and EOF "
		       "were still on the path, which is then lost: they reach the public peer "
		       "after the resumption");
	pb_test_service_hold_answers(answer, &reached, &go);
	path_start(&path, answer, "30", "0");
	/* the public peer sends its request and shuts down writing; the service reads it all */
	transfer_start(&t, path.public_port, 1024, 64 * 1024, NULL);
	pb_test_wait_until(g_atomic_int_get(&reached), 30);
	/* the answer and its EOF go into the stopped relay */
	relay_stop(&path);
	g_atomic_int_set(&go, 1);
	pb_test_wait_until(pb_test_proc_said(path.client, "stream 1: ended\n"), 30);
	relay_replace(&path);
	path_finish_one(&path, &t, "ended in flight", 1024 + 64 * 1024);
}

/* One byte through @port and back, from a thread. */
static gboolean
echo_one_byte(guint16 port)
{
	return GPOINTER_TO_INT(
	    pb_test_run_in_thread(pb_test_echo_one_byte_cb, GUINT_TO_POINTER(port), 20));
}

static void
test_resume_grace_over(void)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autofree char *fixed = g_strdup_printf("%u", pb_test_free_port());
	Path path = {0};
	Session session = {0};
	guint64 server_rss;
	guint64 client_rss;

	g_test_summary("A cut longer than --grace: the connections close on both sides, and the "
		       "client gets its port back as a new session");
	path_start(&path, echo, "2", fixed);
	g_assert_cmpuint(path.public_port, ==, atoi(fixed));
	session_start(&session, path.public_port);
	path_cut(&path, 5, 0, &server_rss, &client_rss);
	/* the public peer saw its connection end, the local service too */
	pb_test_wait_until(g_atomic_int_get(&session.done), 30);
	g_thread_join(session.thread);
	g_assert_false(g_atomic_int_get(&session.ok));
	pb_test_wait_until(pb_test_service_get_n_finished(echo) == 1, 30);
	g_assert_true(pb_test_proc_said(path.client, "1 connection closed: the server's grace "
						     "period is over"));
	/* back, on the same port, a new session */
	pb_test_wait_until(client_count(&path, "Online at tcp://127.0.0.1:") >= 2, 30);
	g_assert_true(echo_one_byte(path.public_port));
	g_assert_cmpuint(client_count(&path, "Resumed "), ==, 0);
	path_stop(&path);
}

static void
test_resume_server_restart(void)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	Path path = {0};
	Session session = {0};

	g_test_summary("A server that restarts has lost the session: no resumption, the client's "
		       "local connections close when the new server's RESUME does not list them");
	path_start(&path, echo, "30", "0");
	session_start(&session, path.public_port);
	pb_test_proc_kill(path.server);
	pb_test_proc_finish(path.server);
	relay_cut(&path);
	path.server = pb_test_proc_spawn(path.launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p",
					 "0", "-l", "127.0.0.1", "-H", "127.0.0.1", NULL);
	path.ws_port = pb_test_proc_wait_port(path.server, "Listening on");
	relay_start(&path);
	pb_test_wait_until(pb_test_proc_said(path.client, "Resumed 0 connections, 1 closed"), 30);
	pb_test_wait_until(pb_test_service_get_n_finished(echo) == 1, 10);
	pb_test_wait_until(g_atomic_int_get(&session.done), 30);
	g_thread_join(session.thread);
	g_assert_false(g_atomic_int_get(&session.ok)); /* its server died */
	pb_test_wait_until(client_count(&path, "Online at tcp://127.0.0.1:") >= 2, 10);
	path_stop(&path);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/resume/cuts", test_resume_cuts);
	g_test_add_func("/resume/half-closed", test_resume_half_closed);
	g_test_add_func("/resume/ended-in-flight/serve", test_resume_ended_in_flight_serve);
	g_test_add_func("/resume/ended-in-flight/forward", test_resume_ended_in_flight_forward);
	g_test_add_func("/resume/grace-over", test_resume_grace_over);
	g_test_add_func("/resume/server-restart", test_resume_server_restart);
	return g_test_run();
}
