/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>

#include "pb-frame.h"
#include "pb-test-utils.h"

/*
 * Hostile peers against the real `piggyback serve`, next to a well-behaved tunnel (a real
 * `piggyback forward` in front of an echo service). After each attack the good tunnel
 * still carries bytes and the server is back to the file descriptors it had before: it
 * freed everything the attacker made it open.
 */

typedef struct {
	PbTestService *echo; /* (owned) */
	PbTestProc *server;  /* (owned) */
	PbTestProc *client;  /* (owned) */
	guint16 ws_port;
	guint16 public_port;
	guint baseline; /* the server's open fds with the good tunnel up */
} HostileFixture;

static void
hostile_set_up(HostileFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autofree char *local = NULL;
	g_autofree char *server_url = NULL;

	fx->echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	local = g_strdup_printf("%u", pb_test_service_get_port(fx->echo));
	/* a lost client's connections wait 3 s for it (`resume`) */
	fx->server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p", "0",
					"-l", "127.0.0.1", "-H", "127.0.0.1", "--grace", "3", NULL);
	fx->ws_port = pb_test_proc_wait_port(fx->server, "Listening on");
	server_url = g_strdup_printf("127.0.0.1:%u", fx->ws_port);
	fx->client = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", local,
					"-h", "127.0.0.1", "-s", server_url, NULL);
	fx->public_port = pb_test_proc_wait_port(fx->client, "Access URL:");
	fx->baseline = pb_test_proc_count_fds(fx->server);
}

/* The good tunnel works, and the server holds no more descriptors than before. */
static void
hostile_assert_unharmed(HostileFixture *fx)
{
	g_assert_true(
	    pb_test_run_in_thread(pb_test_echo_one_byte_cb, GUINT_TO_POINTER(fx->public_port), 10));
	pb_test_wait_until(pb_test_proc_count_fds(fx->server) <= fx->baseline, 10);
	g_assert_false(pb_test_proc_exited(fx->server));
}

static void
hostile_tear_down(HostileFixture *fx, gconstpointer user_data)
{
	if (fx->client != NULL)
		g_assert_cmpint(pb_test_proc_finish(fx->client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(fx->server), ==, 0);
	pb_test_service_free(fx->echo);
}

/* --- attackers that speak WebSocket through libsoup --- */

typedef struct {
	SoupSession *session;	     /* (owned) */
	SoupWebsocketConnection *ws; /* (owned) (nullable) until connected */
	gboolean closed;
} Attacker;

static void
attacker_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Attacker *attacker = user_data;
	g_autoptr(GError) error = NULL;

	attacker->ws = soup_session_websocket_connect_finish(SOUP_SESSION(source), res, &error);
	g_assert_no_error(error);
}

static void
attacker_closed_cb(SoupWebsocketConnection *ws, gpointer user_data)
{
	((Attacker *)user_data)->closed = TRUE;
}

static void
attacker_connect(Attacker *attacker, guint16 ws_port)
{
	g_autofree char *url = g_strdup_printf("ws://127.0.0.1:%u" PB_WS_PATH, ws_port);
	g_autoptr(SoupMessage) msg = soup_message_new("GET", url);

	attacker->session = soup_session_new();
	soup_session_websocket_connect_async(attacker->session, msg, NULL, NULL, G_PRIORITY_DEFAULT,
					     NULL, attacker_connected_cb, attacker);
	pb_test_wait_until(attacker->ws != NULL, 10);
	soup_websocket_connection_set_max_incoming_payload_size(attacker->ws, PB_MAX_MESSAGE_SIZE);
	g_signal_connect(attacker->ws, "closed", G_CALLBACK(attacker_closed_cb), attacker);
}

/* Waits for the server to close the WebSocket; returns its close code. */
static gushort
attacker_wait_closed(Attacker *attacker)
{
	pb_test_wait_until(attacker->closed, 10);
	return soup_websocket_connection_get_close_code(attacker->ws);
}

static void
attacker_clear(Attacker *attacker)
{
	if (attacker->ws != NULL) {
		g_signal_handlers_disconnect_by_data(attacker->ws, attacker);
		if (soup_websocket_connection_get_state(attacker->ws) == SOUP_WEBSOCKET_STATE_OPEN)
			soup_websocket_connection_close(attacker->ws, SOUP_WEBSOCKET_CLOSE_NORMAL,
							NULL);
		g_clear_object(&attacker->ws);
	}
	g_clear_object(&attacker->session);
	pb_test_settle();
}

/* GET /metrics over HTTP/1.0 (the server closes when done); the value of the sample @name. */
static gpointer
scrape_cb(gpointer user_data)
{
	const char *const *job = user_data; /* port, sample name */
	g_autoptr(GSocket) socket = pb_test_connect((guint16)g_ascii_strtoull(job[0], NULL, 10));
	const char request[] = "GET /metrics HTTP/1.0\r\n\r\n";
	g_autoptr(GString) reply = g_string_new(NULL);
	g_autofree char *needle = g_strdup_printf("\n%s ", job[1]);
	const char *sample;
	char buf[4096];
	gssize n;

	g_socket_send(socket, request, sizeof request - 1, NULL, NULL);
	while ((n = g_socket_receive(socket, buf, sizeof buf, NULL, NULL)) > 0)
		g_string_append_len(reply, buf, n);
	sample = strstr(reply->str, needle);
	g_assert_nonnull(sample);
	return GSIZE_TO_POINTER(g_ascii_strtoull(sample + strlen(needle), NULL, 10) + 1);
}

static guint64
hostile_scrape(HostileFixture *fx, const char *name)
{
	g_autofree char *port = g_strdup_printf("%u", fx->ws_port);
	const char *job[] = {port, name};

	return GPOINTER_TO_SIZE(pb_test_run_in_thread(scrape_cb, job, 10)) - 1;
}

static void
test_hostile_text(HostileFixture *fx, gconstpointer user_data)
{
	Attacker attacker = {0};

	g_test_summary("A text message: the server closes that WebSocket with 1002 and counts a "
		       "protocol error in /metrics");
	g_assert_cmpuint(hostile_scrape(fx, "piggyback_protocol_errors_total"), ==, 0);
	attacker_connect(&attacker, fx->ws_port);
	soup_websocket_connection_send_text(attacker.ws, "\x02\x00\x00\x00\x01hello");
	g_assert_cmpuint(attacker_wait_closed(&attacker), ==, SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR);
	attacker_clear(&attacker);
	hostile_assert_unharmed(fx);
	g_assert_cmpuint(hostile_scrape(fx, "piggyback_protocol_errors_total"), ==, 1);
}

static void
test_hostile_short(HostileFixture *fx, gconstpointer user_data)
{
	const guint8 runt[] = {PB_FRAME_DATA, 0, 0};

	Attacker attacker = {0};

	g_test_summary("A message shorter than a PiggyBack header: closed with 1002");
	attacker_connect(&attacker, fx->ws_port);
	soup_websocket_connection_send_binary(attacker.ws, runt, sizeof runt);
	g_assert_cmpuint(attacker_wait_closed(&attacker), ==, SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR);
	attacker_clear(&attacker);
	hostile_assert_unharmed(fx);
}

static void
test_hostile_over_limit(HostileFixture *fx, gconstpointer user_data)
{
	gsize size = 2 * PB_MAX_MESSAGE_SIZE;
	g_autofree guint8 *big = g_malloc0(size);
	Attacker attacker = {0};
	gushort code;

	g_test_summary("A DATA message over the size limit (1 MiB): closed with 1009 before it "
		       "is buffered");
	attacker_connect(&attacker, fx->ws_port);
	big[0] = PB_FRAME_DATA;
	big[4] = 1;
	soup_websocket_connection_send_binary(attacker.ws, big, size);
	code = attacker_wait_closed(&attacker);
	/* 1009 unless the reset for the unread rest of the message overtook the close frame */
	g_assert_true(code == SOUP_WEBSOCKET_CLOSE_TOO_BIG || code == 0);
	attacker_clear(&attacker);
	hostile_assert_unharmed(fx);
}

static void
attacker_send(Attacker *attacker, guint8 type, guint32 id, const char *payload)
{
	g_autoptr(GBytes) frame =
	    pb_frame_new(type, id, payload, payload != NULL ? strlen(payload) : 0);

	soup_websocket_connection_send_message(attacker->ws, SOUP_WEBSOCKET_DATA_BINARY, frame);
}

static void
test_hostile_unknown_ids(HostileFixture *fx, gconstpointer user_data)
{
	Attacker attacker = {0};

	g_test_summary("DATA, CLOSE, EOF and WINDOW for connIds never opened, and unknown "
		       "frame types, thousands of them: dropped; both tunnels keep working");
	attacker_connect(&attacker, fx->ws_port);
	for (guint32 id = 1; id <= 2000; id++) {
		attacker_send(&attacker, PB_FRAME_DATA, id, "stray data");
		attacker_send(&attacker, PB_FRAME_CLOSE, id + 7, NULL);
		attacker_send(&attacker, PB_FRAME_EOF, id + 11, NULL);
		attacker_send(&attacker, PB_FRAME_WINDOW, id + 13, "\x00\x00\x10\x00");
		attacker_send(&attacker, 0x7f, id, "from the future");
	}
	g_assert_true(
	    pb_test_run_in_thread(pb_test_echo_one_byte_cb, GUINT_TO_POINTER(fx->public_port), 10));
	pb_test_settle();
	g_assert_false(attacker.closed);
	/* a 1.1-style client (no Piggyback-Features): its port goes with its WebSocket */
	attacker_clear(&attacker);
	hostile_assert_unharmed(fx);
}

/* --- attackers on a raw socket --- */

/* Reads and drops whatever comes until the server closes (end of stream or a reset);
 * FALSE if it did not within the socket's 10 s timeout. */
static gboolean
raw_wait_closed(GSocket *socket)
{
	char buf[4096];

	for (guint i = 0; i < 10000; i++) {
		g_autoptr(GError) error = NULL;
		gssize n = g_socket_receive(socket, buf, sizeof buf, NULL, &error);

		if (n == 0)
			return TRUE;
		if (n < 0)
			return !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
	}
	return FALSE;
}

static gpointer
garbage_frames_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_ws_upgrade(GPOINTER_TO_UINT(user_data), NULL);
	g_autoptr(GRand) rand = g_rand_new_with_seed(20261125);
	guint8 garbage[4096];

	for (gsize i = 0; i < sizeof garbage; i++)
		garbage[i] = (guint8)g_rand_int_range(rand, 0, 256);
	garbage[0] = 0xf2; /* FIN, all three reserved bits (no extension was agreed), binary */
	g_socket_send(socket, (const char *)garbage, sizeof garbage, NULL, NULL);
	return GINT_TO_POINTER(raw_wait_closed(socket));
}

static void
test_hostile_garbage_frames(HostileFixture *fx, gconstpointer user_data)
{
	g_test_summary("Random bytes after a good upgrade: the server closes the connection "
		       "(not after a timeout)");
	g_assert_true(pb_test_run_in_thread(garbage_frames_cb, GUINT_TO_POINTER(fx->ws_port), 20));
	hostile_assert_unharmed(fx);
}

static gpointer
not_http_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	const char garbage[] = "\x16\x03\x01\x02\x00 this is not HTTP at all\r\n\r\n";

	g_socket_set_timeout(socket, 10);
	g_socket_send(socket, garbage, sizeof garbage - 1, NULL, NULL);
	return GINT_TO_POINTER(raw_wait_closed(socket));
}

typedef struct {
	guint16 port;
	guint64 sent; /* what the public client got rid of before the tunnel pushed back */
} Flood;

/* Sends to @port until a send has waited 2 s: the tunnel stopped reading. */
static gpointer
flood_cb(gpointer user_data)
{
	Flood *flood = user_data;
	g_autoptr(GSocket) socket = pb_test_connect(flood->port);
	g_autofree char *buf = g_malloc0(64 * 1024);

	g_socket_set_timeout(socket, 2);
	while (flood->sent < 256 * 1024 * 1024) {
		gssize n = g_socket_send(socket, buf, 64 * 1024, NULL, NULL);

		if (n <= 0)
			break;
		flood->sent += (guint64)n;
	}
	return GINT_TO_POINTER(TRUE);
}

static void
test_hostile_never_reads(HostileFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSocket) attacker = NULL;
	Flood flood = {0};
	guint64 rss_before;

	g_test_summary("A client that never reads its WebSocket while the public floods its port: "
		       "the server stops reading the flood once 1 MiB waits unsent (memory "
		       "bounded), other tunnels keep working, and all is freed when it goes");
	attacker = pb_test_ws_upgrade(fx->ws_port,
				      NULL); /* the server is another process: no loop to run */
	flood.port = pb_test_ws_read_hello_port(attacker);
	rss_before = pb_test_proc_get_rss(fx->server);
	g_assert_true(pb_test_run_in_thread(flood_cb, &flood, 60));
	g_test_message(
	    "the flood got %" G_GUINT64_FORMAT " bytes in before the tunnel pushed back; "
	    "server RSS grew by %" G_GINT64_FORMAT " KiB",
	    flood.sent, ((gint64)pb_test_proc_get_rss(fx->server) - (gint64)rss_before) / 1024);
	/* socket buffers on both hops plus at most the 1 MiB queue and a read chunk */
	g_assert_cmpuint(flood.sent, <, 64 * 1024 * 1024);
	if (g_getenv("PB_TEST_SANITIZED") == NULL)
		g_assert_cmpint((gint64)pb_test_proc_get_rss(fx->server) - (gint64)rss_before, <,
				16 * 1024 * 1024);
	g_assert_true(
	    pb_test_run_in_thread(pb_test_echo_one_byte_cb, GUINT_TO_POINTER(fx->public_port), 10));
	g_socket_close(attacker, NULL);
	/* a 1.1-style client: its port goes with it */
	hostile_assert_unharmed(fx);
}

static void
test_hostile_not_http(HostileFixture *fx, gconstpointer user_data)
{
	g_test_summary("Bytes that are not HTTP on the WebSocket port: answered and closed");
	g_assert_true(pb_test_run_in_thread(not_http_cb, GUINT_TO_POINTER(fx->ws_port), 20));
	hostile_assert_unharmed(fx);
}

/* --- faults --- */

typedef struct {
	guint16 port;
	gint64 bytes;	 /* atomic: received so far */
	int closed;	 /* atomic: the public connection ended (end of stream or reset) */
	gboolean echo;	 /* send as well, and read the echo */
	GThread *thread; /* (owned) */
} Transfer;

/* A public connection that moves bytes until the tunnel closes it (10 s at most). */
static gpointer
transfer_cb(gpointer user_data)
{
	Transfer *transfer = user_data;
	g_autoptr(GSocket) socket = pb_test_connect(transfer->port);
	g_autofree char *buf = g_malloc0(64 * 1024);
	gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

	g_socket_set_blocking(socket, FALSE);
	while (g_get_monotonic_time() < deadline) {
		g_autoptr(GError) error = NULL;
		gssize n;

		g_socket_condition_timed_wait(socket, transfer->echo ? G_IO_IN | G_IO_OUT : G_IO_IN,
					      100 * G_TIME_SPAN_MILLISECOND, NULL, NULL);
		if (transfer->echo && g_socket_send(socket, buf, 64 * 1024, NULL, &error) < 0 &&
		    !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			break;
		g_clear_error(&error);
		n = g_socket_receive(socket, buf, 64 * 1024, NULL, &error);
		if (n == 0 ||
		    (n < 0 && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)))
			break;
		if (n > 0)
			g_atomic_pointer_add(&transfer->bytes, n);
	}
	g_atomic_int_set(&transfer->closed, g_get_monotonic_time() < deadline);
	return NULL;
}

static void
transfer_start(Transfer *transfer, guint16 port, gboolean echo)
{
	transfer->port = port;
	transfer->echo = echo;
	transfer->thread = g_thread_new("transfer", transfer_cb, transfer);
	pb_test_wait_until(g_atomic_pointer_get(&transfer->bytes) > 1024 * 1024, 10);
}

/* Whether the tunnel closed the connection within 5 s. */
static gboolean
transfer_wait_closed(Transfer *transfer)
{
	gint64 start = g_get_monotonic_time();

	pb_test_wait_until(g_atomic_int_get(&transfer->closed) ||
			       g_get_monotonic_time() - start > 5 * G_USEC_PER_SEC,
			   10);
	g_thread_join(transfer->thread);
	return g_atomic_int_get(&transfer->closed);
}

static void
test_hostile_client_killed(HostileFixture *fx, gconstpointer user_data)
{
	Transfer transfer = {0};

	g_test_summary("kill -9 of the client in the middle of a transfer: the server keeps the "
		       "public connection for the grace period (the client may resume it), then "
		       "closes it and frees what the tunnel held");
	transfer_start(&transfer, fx->public_port, TRUE);
	pb_test_proc_kill(fx->client);
	g_assert_cmpint(pb_test_proc_finish(g_steal_pointer(&fx->client)), ==, 128 + SIGKILL);
	g_usleep(G_USEC_PER_SEC);
	g_assert_false(g_atomic_int_get(&transfer.closed));
	g_assert_true(transfer_wait_closed(&transfer));
	/* the WebSocket is gone; the public port stays bound for the grace period */
	pb_test_wait_until(pb_test_proc_count_fds(fx->server) <= fx->baseline - 1, 10);
	g_assert_false(pb_test_proc_exited(fx->server));
}

static void
test_hostile_local_service_killed(HostileFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	guint16 local_port = pb_test_free_port();
	g_autofree char *listen =
	    g_strdup_printf("TCP-LISTEN:%u,bind=127.0.0.1,reuseaddr", local_port);
	g_autofree char *local = g_strdup_printf("%u", local_port);
	g_autofree char *server_url = g_strdup_printf("127.0.0.1:%u", fx->ws_port);
	PbTestProc *service;
	PbTestProc *client;
	PbTestService *echo;
	Transfer transfer = {0};
	guint16 public_port;

	g_test_summary("The local service dies (kill -9) in the middle of a download: the public "
		       "connection is closed, the tunnel stays up and serves the next one");
	/* a real process sending zeros forever to the one connection it accepts */
	service =
	    pb_test_proc_spawn(launcher, "socat", "-d", "-d", "-u", "OPEN:/dev/zero", listen, NULL);
	pb_test_wait_until(pb_test_proc_said(service, "listening on"), 10);
	client = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", local,
				    "-h", "127.0.0.1", "-s", server_url, NULL);
	public_port = pb_test_proc_wait_port(client, "Access URL:");

	transfer_start(&transfer, public_port, FALSE);
	pb_test_proc_kill(service);
	pb_test_proc_finish(service);
	g_assert_true(transfer_wait_closed(&transfer));

	echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, local_port);
	g_assert_true(
	    pb_test_run_in_thread(pb_test_echo_one_byte_cb, GUINT_TO_POINTER(public_port), 10));
	g_assert_false(pb_test_proc_exited(client));
	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	pb_test_service_free(echo);
	/* the second client's WebSocket is gone; its port is kept for it for the grace period */
	pb_test_wait_until(pb_test_proc_count_fds(fx->server) <= fx->baseline + 1, 10);
	g_assert_true(
	    pb_test_run_in_thread(pb_test_echo_one_byte_cb, GUINT_TO_POINTER(fx->public_port), 10));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, func)                                                                            \
	g_test_add(path, HostileFixture, NULL, hostile_set_up, func, hostile_tear_down)
	ADD("/hostile/text-message", test_hostile_text);
	ADD("/hostile/short-message", test_hostile_short);
	ADD("/hostile/over-limit", test_hostile_over_limit);
	ADD("/hostile/unknown-conn-ids", test_hostile_unknown_ids);
	ADD("/hostile/garbage-frames", test_hostile_garbage_frames);
	ADD("/hostile/not-http", test_hostile_not_http);
	ADD("/hostile/never-reads", test_hostile_never_reads);
	ADD("/hostile/client-killed-mid-transfer", test_hostile_client_killed);
	ADD("/hostile/local-service-killed", test_hostile_local_service_killed);
#undef ADD
	return g_test_run();
}
