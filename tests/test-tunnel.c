/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <libsoup/soup.h>
#include <stdio.h>
#include <string.h>

#include "pb-flow.h"
#include "pb-frame.h"
#include "pb-test-utils.h"
#include "pb-tunnel-client.h"
#include "pb-tunnel-server.h"

/*
 * End to end, in one process: a real PbTunnelServer and PbTunnelClient over loopback
 * sockets and a real WebSocket, with local services in worker threads and public clients
 * using blocking sockets in threads while the main context runs the tunnel.
 */

typedef struct {
	PbTunnelServer *server;	 /* (owned) */
	PbTunnelClient *client;	 /* (owned) (nullable) */
	char *access_url;	 /* (owned) (nullable) */
	char *disconnect_reason; /* (owned) (nullable) */
	guint16 public_port;
} TunnelFixture;

static void
tunnel_ready_cb(PbTunnelClient *client, const char *access_url, const char *http_url,
		gpointer user_data)
{
	TunnelFixture *fx = user_data;
	const char *colon = strrchr(access_url, ':');

	g_free(fx->access_url);
	fx->access_url = g_strdup(access_url);
	fx->public_port = (guint16)g_ascii_strtoull(colon + 1, NULL, 10);
}

static void
tunnel_disconnected_cb(PbTunnelClient *client, const char *reason, gpointer user_data)
{
	TunnelFixture *fx = user_data;

	fx->disconnect_reason = g_strdup(reason);
}

static void
tunnel_set_up(TunnelFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	fx->server = pb_tunnel_server_new(0, "127.0.0.1", 0, NULL);
	pb_tunnel_server_set_listen_host(fx->server, "127.0.0.1");
	g_assert_true(pb_tunnel_server_start(fx->server, &error));
	g_assert_no_error(error);
}

/* Connects a client that forwards to @local_host:@local_port; waits for HELLO. */
static void
tunnel_start_client_to(TunnelFixture *fx, const char *server_url, const char *local_host,
		       guint16 local_port)
{
	g_autofree char *url = server_url != NULL
				   ? g_strdup(server_url)
				   : g_strdup_printf("ws://127.0.0.1:%u" PB_WS_PATH,
						     pb_tunnel_server_get_port(fx->server));

	fx->client = pb_tunnel_client_new(url, local_host, local_port);
	g_signal_connect(fx->client, "ready", G_CALLBACK(tunnel_ready_cb), fx);
	g_signal_connect(fx->client, "disconnected", G_CALLBACK(tunnel_disconnected_cb), fx);
	pb_tunnel_client_connect_async(fx->client, NULL, NULL, NULL);
	pb_test_wait_until(fx->access_url != NULL || fx->disconnect_reason != NULL, 10);
}

/* Connects a client that forwards to 127.0.0.1:@local_port; waits for HELLO. */
static void
tunnel_start_client(TunnelFixture *fx, const char *server_url, guint16 local_port)
{
	tunnel_start_client_to(fx, server_url, "127.0.0.1", local_port);
}

/* Replaces @fx's server with @server (configured, not started), listening on 127.0.0.1;
 * returns its WebSocket URL. */
static char *
tunnel_replace_server(TunnelFixture *fx, PbTunnelServer *server)
{
	g_autoptr(GError) error = NULL;

	pb_tunnel_server_stop(fx->server);
	g_clear_object(&fx->server);
	fx->server = server;
	pb_tunnel_server_set_listen_host(fx->server, "127.0.0.1");
	g_assert_true(pb_tunnel_server_start(fx->server, &error));
	g_assert_no_error(error);
	return g_strdup_printf("ws://127.0.0.1:%u" PB_WS_PATH,
			       pb_tunnel_server_get_port(fx->server));
}

/* Closes the client of a second fixture that shares another's server. */
static void
tunnel_clear_other(TunnelFixture *other)
{
	g_signal_handlers_disconnect_by_data(other->client, other);
	pb_tunnel_client_close(other->client);
	g_clear_object(&other->client);
	g_free(other->access_url);
	g_free(other->disconnect_reason);
}

static void
tunnel_tear_down(TunnelFixture *fx, gconstpointer user_data)
{
	if (fx->client != NULL) {
		g_signal_handlers_disconnect_by_data(fx->client, fx);
		pb_tunnel_client_close(fx->client);
		g_clear_object(&fx->client);
	}
	pb_tunnel_server_stop(fx->server);
	g_clear_object(&fx->server);
	pb_test_settle();
	g_free(fx->access_url);
	g_free(fx->disconnect_reason);
}

static void
test_tunnel_hello(TunnelFixture *fx, gconstpointer user_data)
{
	g_autofree char *expected = NULL;

	g_test_summary("HELLO delivers the access URL to the client: the server's public port");
	tunnel_start_client(fx, NULL, 9);
	g_assert_nonnull(fx->access_url);
	g_assert_cmpuint(fx->public_port, >, 0);
	expected = g_strdup_printf("tcp://127.0.0.1:%u", fx->public_port);
	g_assert_cmpstr(fx->access_url, ==, expected);
	g_assert_cmpstr(pb_tunnel_client_get_access_url(fx->client), ==, expected);
	g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 1);
}

/* An HTTP origin behind the tunnel. */
static void
origin_handler_cb(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
		  gpointer user_data)
{
	g_autofree char *body = g_strdup_printf("hello from the origin at %s", path);
	guint *n_requests = user_data;

	(*n_requests)++;
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_COPY, body, strlen(body));
}

static SoupServer *
origin_new(guint *n_requests, guint16 *port)
{
	SoupServer *origin = soup_server_new(NULL, NULL);

	soup_server_add_handler(origin, NULL, origin_handler_cb, n_requests, NULL);
	*port = pb_test_soup_listen(origin);
	return origin;
}

typedef struct {
	int pending;
	int ok;
} GetState;

static void
get_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GetState *state = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) body =
	    soup_session_send_and_read_finish(SOUP_SESSION(source), res, &error);
	SoupMessage *msg = soup_session_get_async_result_message(SOUP_SESSION(source), res);

	g_assert_no_error(error);
	g_assert_cmpuint(soup_message_get_status(msg), ==, SOUP_STATUS_OK);
	g_assert_true(g_str_has_prefix(g_bytes_get_data(body, NULL), "hello from the origin at /"));
	state->ok++;
	state->pending--;
}

static void
run_gets(TunnelFixture *fx, int n)
{
	g_autoptr(SoupSession) session =
	    soup_session_new_with_options("max-conns", 64, "max-conns-per-host", 64, NULL);
	GetState state = {n, 0};

	for (int i = 0; i < n; i++) {
		g_autofree char *url =
		    g_strdup_printf("http://127.0.0.1:%u/request/%d", fx->public_port, i);
		g_autoptr(SoupMessage) msg = soup_message_new("GET", url);

		soup_session_send_and_read_async(session, msg, G_PRIORITY_DEFAULT, NULL,
						 get_done_cb, &state);
	}
	pb_test_wait_until(state.pending == 0, 20);
	g_assert_cmpint(state.ok, ==, n);
}

static void
test_tunnel_http_get(TunnelFixture *fx, gconstpointer user_data)
{
	guint n_requests = 0;
	guint16 port = 0;
	G_GNUC_UNUSED g_autoptr(SoupServer) origin = origin_new(&n_requests, &port);

	g_test_summary("One HTTP GET through the tunnel reaches a local HTTP origin");
	tunnel_start_client(fx, NULL, port);
	run_gets(fx, 1);
	g_assert_cmpuint(n_requests, ==, 1);
}

static void
test_tunnel_http_concurrent(TunnelFixture *fx, gconstpointer user_data)
{
	guint n_requests = 0;
	guint16 port = 0;
	G_GNUC_UNUSED g_autoptr(SoupServer) origin = origin_new(&n_requests, &port);

	g_test_summary("20 concurrent GETs are multiplexed over the one WebSocket");
	tunnel_start_client(fx, NULL, port);
	run_gets(fx, 20);
	g_assert_cmpuint(n_requests, ==, 20);
}

static void
test_tunnel_binary_echo(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	PbTestEchoJob job = {0, 64 * 1024};

	g_test_summary("64 KB holding every byte value come back byte-exact (no UTF-8 mangling)");
	tunnel_start_client(fx, NULL, pb_test_service_get_port(echo));
	job.port = fx->public_port;
	g_assert_true(pb_test_run_in_thread(pb_test_echo_job_cb, &job, 20));
	pb_test_service_free(echo);
}

static void
test_tunnel_server_list_clients(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	PbTestEchoJob job = {0, 64 * 1024};
	g_autoptr(GPtrArray) clients = NULL;
	PbServerClientInfo *info;

	g_test_summary("The server's view of a client counts its connections and bytes");
	tunnel_start_client(fx, NULL, pb_test_service_get_port(echo));
	job.port = fx->public_port;
	for (guint i = 0; i < 2; i++)
		g_assert_true(pb_test_run_in_thread(pb_test_echo_job_cb, &job, 20));
	clients = pb_tunnel_server_list_clients(fx->server);
	g_assert_cmpuint(clients->len, ==, 1);
	info = g_ptr_array_index(clients, 0);
	g_assert_cmpuint(info->tunnel_port, ==, fx->public_port);
	g_assert_true(g_str_has_prefix(info->peer, "127.0.0.1:"));
	g_assert_cmpuint(info->stats.streams_total, ==, 2);
	g_assert_cmpuint(info->stats.bytes_out, ==, 2 * 64 * 1024);
	g_assert_cmpuint(info->stats.bytes_in, ==, 2 * 64 * 1024);
	g_assert_cmpint(g_get_real_time() - info->connected_since, <, 60 * G_USEC_PER_SEC);
	pb_test_service_free(echo);
}

static void
test_tunnel_first_read_whole(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *sink = pb_test_service_new(PB_TEST_SERVICE_SINK, 0, 0);
	g_autoptr(GSocket) public = NULL;
	guint8 request[4000];
	PbTunnelStats before;
	PbTunnelStats after;

	g_test_summary("With `resume`, a new connection's first 4000 bytes, written at once, "
		       "cross in one DATA message: its replay buffer starts small, its first read "
		       "does not");
	tunnel_start_client(fx, NULL, pb_test_service_get_port(sink));
	g_assert_true(pb_tunnel_client_get_features(fx->client) & PB_FEATURE_RESUME);
	pb_tunnel_server_get_totals(fx->server, &before);
	public = pb_test_connect(fx->public_port);
	pb_test_pattern_fill(request, sizeof request, 0);
	g_assert_cmpint(g_socket_send(public, (const char *)request, sizeof request, NULL, NULL),
			==, sizeof request);
	pb_test_wait_until(pb_test_service_get_bytes(sink) == sizeof request, 10);
	pb_tunnel_server_get_totals(fx->server, &after);
	g_test_message("%" G_GUINT64_FORMAT " messages sent for it",
		       after.frames_out - before.frames_out);
	/* OPEN and DATA */
	g_assert_cmpuint(after.frames_out - before.frames_out, ==, 2);
	g_clear_object(&public);
	pb_test_service_free(sink);
}

/* A line protocol that is not HTTP: each line is answered before the next is sent. */
static gpointer
raw_pb_test_echo_job_cb(gpointer user_data)
{
	guint16 port = GPOINTER_TO_UINT(user_data);
	g_autoptr(GSocket) socket = pb_test_connect(port);

	for (int i = 0; i < 50; i++) {
		g_autofree char *line = g_strdup_printf("PING %d\r\n", i);
		char reply[64];
		gsize got = 0;

		g_assert_cmpint(g_socket_send(socket, line, strlen(line), NULL, NULL), ==,
				(gssize)strlen(line));
		while (got < strlen(line)) {
			gssize n =
			    g_socket_receive(socket, reply + got, sizeof reply - got, NULL, NULL);

			g_assert_cmpint(n, >, 0);
			got += (gsize)n;
		}
		g_assert_cmpmem(reply, got, line, strlen(line));
	}
	return GINT_TO_POINTER(TRUE);
}

static void
test_tunnel_raw_echo(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);

	g_test_summary("A request/response TCP protocol other than HTTP round-trips 50 times");
	tunnel_start_client(fx, NULL, pb_test_service_get_port(echo));
	g_assert_true(
	    pb_test_run_in_thread(raw_pb_test_echo_job_cb, GUINT_TO_POINTER(fx->public_port), 20));
	pb_test_service_free(echo);
}

#define BULK_SIZE (32 * 1024 * 1024)

static gpointer
upload_job_cb(gpointer user_data)
{
	guint16 port = GPOINTER_TO_UINT(user_data);
	g_autoptr(GSocket) socket = pb_test_connect(port);
	g_autofree guint8 *buf = g_malloc(256 * 1024);
	guint64 offset = 0;

	while (offset < BULK_SIZE) {
		gsize n = MIN(256 * 1024, BULK_SIZE - offset);
		gsize done = 0;

		pb_test_pattern_fill(buf, n, offset);
		while (done < n) {
			gssize k = g_socket_send(socket, (char *)buf + done, n - done, NULL, NULL);

			g_assert_cmpint(k, >, 0);
			done += (gsize)k;
		}
		offset += n;
	}
	/* v1 ends both directions on the first end of stream: wait for the tunnel to close
	 * the connection once everything is through, then close */
	g_socket_condition_timed_wait(socket, G_IO_IN, 30 * G_USEC_PER_SEC, NULL, NULL);
	return GINT_TO_POINTER(TRUE);
}

static void
test_tunnel_upstream_bulk(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *sink = pb_test_service_new(PB_TEST_SERVICE_SINK, 0, 0);
	GThread *thread;

	g_test_summary("32 MiB from the public side reach the local service byte-exact");
	tunnel_start_client(fx, NULL, pb_test_service_get_port(sink));
	thread = g_thread_new("upload", upload_job_cb, GUINT_TO_POINTER(fx->public_port));
	pb_test_wait_until(pb_test_service_get_bytes(sink) == BULK_SIZE, 60);
	g_assert_false(pb_test_service_get_corrupt(sink));
	pb_tunnel_client_close(fx->client); /* ends the public connection, so the thread ends */
	pb_test_wait_until(fx->disconnect_reason != NULL, 10);
	g_thread_join(thread);
	pb_test_service_free(sink);
}

static gpointer
download_job_cb(gpointer user_data)
{
	guint16 port = GPOINTER_TO_UINT(user_data);
	g_autoptr(GSocket) socket = pb_test_connect(port);
	g_autofree guint8 *buf = g_malloc(256 * 1024);
	guint64 offset = 0;

	for (;;) {
		gssize n = g_socket_receive(socket, (char *)buf, 256 * 1024, NULL, NULL);

		g_assert_cmpint(n, >=, 0);
		if (n == 0)
			break;
		g_assert_true(pb_test_pattern_check(buf, (gsize)n, offset));
		offset += (guint64)n;
	}
	g_assert_cmpuint(offset, ==, BULK_SIZE);
	return GINT_TO_POINTER(TRUE);
}

static void
test_tunnel_downstream_bulk(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *source = pb_test_service_new(PB_TEST_SERVICE_SOURCE, BULK_SIZE, 0);

	g_test_summary("32 MiB from the local service reach the public side byte-exact, then EOF");
	tunnel_start_client(fx, NULL, pb_test_service_get_port(source));
	g_assert_true(
	    pb_test_run_in_thread(download_job_cb, GUINT_TO_POINTER(fx->public_port), 60));
	pb_test_service_free(source);
}

/* Connects as a public client and expects the tunnel to close the connection. */
static gpointer
expect_closed_job_cb(gpointer user_data)
{
	guint16 port = GPOINTER_TO_UINT(user_data);
	g_autoptr(GSocket) socket = pb_test_connect(port);
	char buf[16];
	gssize n;

	g_socket_set_timeout(socket, 5);
	n = g_socket_receive(socket, buf, sizeof buf, NULL, NULL);
	g_assert_cmpint(n, <=, 0); /* 0 = closed, -1 = reset: both end it; a timeout fails */
	return GINT_TO_POINTER(TRUE);
}

static void
test_tunnel_local_down(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *gone = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	guint16 local_port = pb_test_service_get_port(gone);
	PbTestService *echo;
	PbTestEchoJob job = {0, 1000};

	g_test_summary("With the local service down, a public connection is closed at once and "
		       "the tunnel still works once the service is back");
	pb_test_service_free(gone);
	tunnel_start_client(fx, NULL, local_port);
	for (int i = 0; i < 3; i++)
		g_assert_true(pb_test_run_in_thread(expect_closed_job_cb,
						    GUINT_TO_POINTER(fx->public_port), 10));
	g_assert_null(fx->disconnect_reason);

	echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, local_port);
	job.port = fx->public_port;
	g_assert_true(pb_test_run_in_thread(pb_test_echo_job_cb, &job, 20));
	pb_test_service_free(echo);
}

static void
test_tunnel_port_taken(TunnelFixture *fx, gconstpointer user_data)
{
	guint16 wanted = pb_test_free_port();
	TunnelFixture second = {NULL, NULL, NULL, NULL, 0};
	g_autoptr(GError) error = NULL;
	g_autofree char *url = NULL;

	g_test_summary("The first client gets the configured tunnel port, a second one that finds "
		       "it taken gets a random port of its own");
	url = tunnel_replace_server(fx, pb_tunnel_server_new(0, "127.0.0.1", wanted, NULL));

	tunnel_start_client(fx, url, 9);
	g_assert_cmpuint(fx->public_port, ==, wanted);
	second.server = fx->server;
	tunnel_start_client(&second, url, 9);
	g_assert_nonnull(second.access_url);
	g_assert_cmpuint(second.public_port, !=, wanted);
	g_assert_cmpuint(second.public_port, >, 0);
	g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 2);

	tunnel_clear_other(&second);
}

static GSocket *
listen_quietly(GInetAddress *address, guint16 port);

typedef struct {
	GSocketFamily family;
	guint16 port;
} EchoVia;

/* One short echo through the public port over 127.0.0.1 or ::1 (in a thread). */
static gpointer
echo_via_cb(gpointer user_data)
{
	EchoVia *via = user_data;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(via->family);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, via->port);
	g_autoptr(GSocket) socket =
	    g_socket_new(via->family, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
	char reply[5] = {0};
	gsize got = 0;

	g_socket_set_timeout(socket, 10);
	if (!g_socket_connect(socket, address, NULL, NULL) ||
	    g_socket_send(socket, "hello", 5, NULL, NULL) != 5)
		return GINT_TO_POINTER(FALSE);
	while (got < sizeof reply) {
		gssize n = g_socket_receive(socket, reply + got, sizeof reply - got, NULL, NULL);

		if (n <= 0)
			return GINT_TO_POINTER(FALSE);
		got += (gsize)n;
	}
	return GINT_TO_POINTER(memcmp(reply, "hello", 5) == 0);
}

static void
test_tunnel_dual_stack(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autoptr(GInetAddress) ipv6 = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV6);
	g_autoptr(GSocket) probe = listen_quietly(ipv6, 0);
	g_autofree char *url = NULL;
	EchoVia via4 = {G_SOCKET_FAMILY_IPV4, 0}, via6 = {G_SOCKET_FAMILY_IPV6, 0};

	g_test_summary("Without --tunnel-host a public port takes IPv4 and IPv6 connections, as "
		       "PiggyBack 1.1's did (Node listens on :: by default)");
	if (probe == NULL) {
		g_test_skip("no IPv6 loopback here");
		pb_test_service_free(echo);
		return;
	}
	url = tunnel_replace_server(fx, pb_tunnel_server_new(0, NULL, 0, NULL));
	tunnel_start_client(fx, url, pb_test_service_get_port(echo));
	via4.port = via6.port = fx->public_port;
	g_assert_true(pb_test_run_in_thread(echo_via_cb, &via4, 10));
	g_assert_true(pb_test_run_in_thread(echo_via_cb, &via6, 10));
	pb_test_service_free(echo);
}

/* Whether @port can be bound on 127.0.0.1 now (as PbListener binds: SO_REUSEADDR). */
static gboolean
port_is_free(guint16 port)
{
	g_autoptr(GInetAddress) ipv4 = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) where = g_inet_socket_address_new(ipv4, port);
	g_autoptr(GSocket) socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);

	return g_socket_bind(socket, where, TRUE, NULL);
}

/* The first of two consecutive free ports, below Linux's ephemeral range (32768 and up),
 * where outgoing connections would hold one of every two ports (connect() takes even ones,
 * bind() to port 0 odd ones). */
static guint16
free_port_pair(void)
{
	for (guint attempt = 0; attempt < 100; attempt++) {
		guint16 port = (guint16)g_random_int_range(20000, 32000);

		if (port_is_free(port) && port_is_free(port + 1))
			return port;
	}
	g_error("no two consecutive free ports");
}

static void
test_tunnel_port_range(TunnelFixture *fx, gconstpointer user_data)
{
	guint16 first = free_port_pair();
	TunnelFixture second = {NULL, NULL, NULL, NULL, 0};
	g_autoptr(GError) error = NULL;
	g_autoptr(PbTunnelClient) third = NULL;
	g_autofree char *url = NULL;
	PbTunnelServer *server;

	g_test_summary("--tunnel-port FIRST-LAST: each client gets the lowest port of the range "
		       "nobody holds; one client too many is refused (503, saying why) until a "
		       "port is free again");
	server = pb_tunnel_server_new(0, "127.0.0.1", 0, NULL);
	pb_tunnel_server_set_tunnel_ports(server, first, first + 1);
	pb_tunnel_server_set_grace(server, 0);
	url = tunnel_replace_server(fx, server);

	tunnel_start_client(fx, url, 9);
	g_assert_cmpuint(fx->public_port, ==, first);
	second.server = fx->server;
	tunnel_start_client(&second, url, 9);
	g_assert_cmpuint(second.public_port, ==, first + 1);

	/* the range is full */
	third = pb_tunnel_client_new(url, "127.0.0.1", 9);
	pb_tunnel_client_connect_async(third, NULL, NULL, NULL);
	pb_test_wait_until(pb_tunnel_client_get_state(third) == PB_TUNNEL_CLIENT_STATE_OFFLINE, 10);
	g_assert_null(pb_tunnel_client_get_access_url(third));
	{
		const GQueue *events = pb_tunnel_client_get_recent_events(third);
		const PbTunnelClientEvent *last = events->tail->data;

		g_test_message("third client: %s", last->message);
		g_assert_nonnull(strstr(last->message, "503 No free public port"));
	}
	g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 2);

	/* the first leaves: its port is the next client's */
	g_signal_handlers_disconnect_by_data(fx->client, fx);
	pb_tunnel_client_close(fx->client);
	g_clear_object(&fx->client);
	pb_test_wait_until(pb_tunnel_server_get_n_clients(fx->server) == 1, 10);
	g_clear_pointer(&fx->access_url, g_free);
	tunnel_start_client(fx, url, 9);
	g_assert_cmpuint(fx->public_port, ==, first);

	tunnel_clear_other(&second);
}

static void
test_tunnel_session_same_port(TunnelFixture *fx, gconstpointer user_data)
{
	guint16 first_port;

	g_test_summary("A client that reconnects presents the session id from HELLO and gets "
		       "its public port back, though the server's ports are random");
	tunnel_start_client(fx, NULL, 9);
	first_port = fx->public_port;
	g_clear_pointer(&fx->access_url, g_free);
	fx->public_port = 0;
	pb_tunnel_client_reconnect(fx->client);
	pb_test_wait_until(fx->access_url != NULL, 10);
	g_assert_cmpuint(fx->public_port, ==, first_port);
	pb_test_wait_until(pb_tunnel_server_get_n_clients(fx->server) == 1, 5);
}

/* Starts a client of its own against @fx->server's @url; waits for its HELLO. */
static guint16
tunnel_other_client_port(TunnelFixture *fx, const char *url)
{
	TunnelFixture other = {fx->server, NULL, NULL, NULL, 0};

	tunnel_start_client(&other, url, 9);
	g_assert_nonnull(other.access_url);
	g_signal_handlers_disconnect_by_data(other.client, &other);
	pb_tunnel_client_close(other.client);
	g_clear_object(&other.client);
	g_free(other.access_url);
	g_free(other.disconnect_reason);
	return other.public_port;
}

/* A protocol 2 client (the server gives it a session) that is lost: its connection ends
 * after HELLO without a close frame. Returns its public port. */
static gpointer
lost_client_cb(gpointer port)
{
	g_autoptr(GSocket) socket =
	    pb_test_ws_upgrade(GPOINTER_TO_UINT(port), PB_FEATURES_HEADER ": flow\r\n");

	return GUINT_TO_POINTER(pb_test_ws_read_hello_port(socket));
}

static void
test_tunnel_session_grace(TunnelFixture *fx, gconstpointer user_data)
{
	guint16 wanted = pb_test_free_port();
	g_autoptr(GError) error = NULL;
	g_autofree char *url = NULL;

	g_test_summary("A lost client's port is kept for it during the grace period: another "
		       "client gets a random port meanwhile, and the configured one afterwards");
	pb_tunnel_server_stop(fx->server);
	g_clear_object(&fx->server);
	fx->server = pb_tunnel_server_new(0, "127.0.0.1", wanted, NULL);
	pb_tunnel_server_set_listen_host(fx->server, "127.0.0.1");
	pb_tunnel_server_set_grace(fx->server, 1);
	g_assert_true(pb_tunnel_server_start(fx->server, &error));
	url =
	    g_strdup_printf("ws://127.0.0.1:%u" PB_WS_PATH, pb_tunnel_server_get_port(fx->server));

	/* a client that says goodbye frees its port at once: this one is lost */
	g_assert_cmpuint(
	    GPOINTER_TO_UINT(pb_test_run_in_thread(
		lost_client_cb, GUINT_TO_POINTER(pb_tunnel_server_get_port(fx->server)), 10)),
	    ==, wanted);
	pb_test_wait_until(pb_tunnel_server_get_n_clients(fx->server) == 0, 5);

	g_assert_cmpuint(tunnel_other_client_port(fx, url), !=, wanted); /* reserved */
	pb_test_wait_until(pb_tunnel_server_get_n_clients(fx->server) == 0, 5);
	g_usleep(2 * G_USEC_PER_SEC); /* the grace period (1 s) ends */
	pb_test_settle();
	g_assert_cmpuint(tunnel_other_client_port(fx, url), ==, wanted);
}

typedef struct {
	guint16 port;
	GSocket *sockets[4]; /* (owned) the three within the limit, then one more */
} LimitJob;

/* One byte there and back on a new connection; FALSE if the tunnel closed it instead. */
static gboolean
limit_echo(GSocket *socket)
{
	char byte = 0;

	if (g_socket_send(socket, "l", 1, NULL, NULL) != 1)
		return FALSE;
	return g_socket_receive(socket, &byte, 1, NULL, NULL) == 1 && byte == 'l';
}

static gpointer
limit_job_cb(gpointer user_data)
{
	LimitJob *job = user_data;

	for (guint i = 0; i < 3; i++) {
		job->sockets[i] = pb_test_connect(job->port);
		g_assert_true(limit_echo(job->sockets[i]));
	}
	job->sockets[3] = pb_test_connect(job->port);
	g_assert_false(limit_echo(job->sockets[3])); /* over the limit: closed at once */
	g_clear_object(&job->sockets[3]);

	g_clear_object(&job->sockets[0]); /* one fewer open: room for another */
	for (guint tries = 0; tries < 50; tries++) {
		job->sockets[3] = pb_test_connect(job->port);
		if (limit_echo(job->sockets[3]))
			break;
		g_clear_object(&job->sockets[3]); /* the close had not reached the server yet */
		g_usleep(100 * G_TIME_SPAN_MILLISECOND);
	}
	g_assert_nonnull(job->sockets[3]);
	for (guint i = 0; i < G_N_ELEMENTS(job->sockets); i++)
		g_clear_object(&job->sockets[i]);
	return GINT_TO_POINTER(TRUE);
}

static void
test_tunnel_max_connections(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	LimitJob job = {0};

	g_test_summary("--max-connections: a public connection over the limit is closed at once, "
		       "the others keep working, and one closing makes room again");
	pb_tunnel_server_set_limits(fx->server, 8, 3);
	tunnel_start_client(fx, NULL, pb_test_service_get_port(echo));
	job.port = fx->public_port;
	g_assert_true(pb_test_run_in_thread(limit_job_cb, &job, 30));
	g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 1);
	pb_test_service_free(echo);
}

static void
test_tunnel_max_clients(TunnelFixture *fx, gconstpointer user_data)
{
	g_autofree char *url =
	    g_strdup_printf("ws://127.0.0.1:%u" PB_WS_PATH, pb_tunnel_server_get_port(fx->server));
	g_autoptr(PbTunnelClient) second = pb_tunnel_client_new(url, "127.0.0.1", 9);

	g_test_summary("--max-clients: one client more is refused (503) and the first keeps its "
		       "tunnel");
	pb_tunnel_server_set_limits(fx->server, 1, 1000);
	tunnel_start_client(fx, NULL, 9);
	g_assert_nonnull(fx->access_url);
	pb_tunnel_client_connect_async(second, NULL, NULL, NULL);
	pb_test_wait_until(pb_tunnel_client_get_state(second) == PB_TUNNEL_CLIENT_STATE_OFFLINE,
			   10);
	g_assert_null(pb_tunnel_client_get_access_url(second));
	g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 1);
	g_assert_cmpint(pb_tunnel_client_get_state(fx->client), ==, PB_TUNNEL_CLIENT_STATE_ONLINE);
}

/* Connections open now on the server's only tunnel. */
static guint
tunnel_server_n_active(TunnelFixture *fx)
{
	g_autoptr(GPtrArray) clients = pb_tunnel_server_list_clients(fx->server);

	g_assert_cmpuint(clients->len, ==, 1);
	return ((PbServerClientInfo *)clients->pdata[0])->stats.streams_open;
}

static gpointer
idle_job_cb(gpointer user_data)
{
	guint16 port = (guint16)GPOINTER_TO_UINT(user_data);
	g_autoptr(GSocket) quiet = pb_test_connect(port);
	g_autoptr(GSocket) busy = pb_test_connect(port);
	char byte;

	g_socket_set_timeout(quiet, 10);
	if (!limit_echo(quiet) || !limit_echo(busy))
		return GINT_TO_POINTER(FALSE);
	/* busy talks every 250 ms while the tunnel closes quiet (idle for 1 s) */
	for (guint i = 0; i < 40 && !g_socket_condition_check(quiet, G_IO_IN); i++) {
		g_usleep(250 * G_TIME_SPAN_MILLISECOND);
		if (!limit_echo(busy))
			return GINT_TO_POINTER(FALSE);
	}
	if (g_socket_receive(quiet, &byte, 1, NULL, NULL) != 0) /* end of stream */
		return GINT_TO_POINTER(FALSE);
	return GINT_TO_POINTER(limit_echo(busy));
}

static void
test_tunnel_idle_timeout(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);

	g_test_summary("--idle-timeout: a connection that moves no data is closed, one that "
		       "talks stays open");
	pb_tunnel_server_set_idle_timeout(fx->server, 1);
	tunnel_start_client(fx, NULL, pb_test_service_get_port(echo));
	g_assert_true(pb_test_run_in_thread(idle_job_cb, GUINT_TO_POINTER(fx->public_port), 30));
	pb_test_service_free(echo);
}

static void
test_tunnel_never_reads(TunnelFixture *fx, gconstpointer user_data)
{
	PbTestService *source = pb_test_service_new(PB_TEST_SERVICE_SOURCE, 256 * 1024 * 1024, 0);
	g_autoptr(GSocket) reader = NULL;

	g_test_summary("A public client that never reads what the service sends: its connection "
		       "stops moving and the idle timeout ends it, queued data and all");
	pb_tunnel_server_set_idle_timeout(fx->server, 1);
	tunnel_start_client(fx, NULL, pb_test_service_get_port(source));
	reader = pb_test_connect(fx->public_port);
	pb_test_wait_until(tunnel_server_n_active(fx) == 1, 5);
	pb_test_wait_until(tunnel_server_n_active(fx) == 0, 10);
	g_assert_cmpint(pb_tunnel_client_get_state(fx->client), ==, PB_TUNNEL_CLIENT_STATE_ONLINE);
	g_socket_close(reader, NULL);
	pb_test_settle();
	pb_test_service_free(source);
}

/* How many "Reconnecting in …" events the client has had. */
static guint
tunnel_n_retries(PbTunnelClient *client)
{
	const GQueue *events = pb_tunnel_client_get_recent_events(client);
	guint n = 0;

	for (GList *l = events->head; l != NULL; l = l->next)
		n += g_str_has_prefix(((PbTunnelClientEvent *)l->data)->message, "Reconnecting in");
	return n;
}

static void
test_tunnel_network_changed(TunnelFixture *fx, gconstpointer user_data)
{
	guint16 port = pb_tunnel_server_get_port(fx->server);
	g_autoptr(GError) error = NULL;
	const GQueue *events;
	double backoff_s = 0;
	gint64 asked;

	g_test_summary("A client waiting out its backoff (seconds by the fourth try) dials at once "
		       "when the network changes, and is online again");
	tunnel_start_client(fx, NULL, 9);
	pb_tunnel_client_set_auto_reconnect(fx->client, TRUE);
	pb_tunnel_server_stop(fx->server);
	g_clear_object(&fx->server);
	/* 0.5, 1, 2 s failed; the wait before the next is 3 to 5 s */
	pb_test_wait_until(tunnel_n_retries(fx->client) >= 4, 20);
	events = pb_tunnel_client_get_recent_events(fx->client);
	g_assert_true(sscanf(((PbTunnelClientEvent *)events->tail->data)->message,
			     "Reconnecting in %lf s", &backoff_s) == 1);
	g_assert_cmpfloat(backoff_s, >=, 3.0);
	fx->server = pb_tunnel_server_new(port, "127.0.0.1", 0, NULL);
	pb_tunnel_server_set_listen_host(fx->server, "127.0.0.1");
	g_assert_true(pb_tunnel_server_start(fx->server, &error));
	asked = g_get_monotonic_time();
	pb_tunnel_client_network_changed(fx->client);
	pb_test_wait_until(pb_tunnel_client_get_state(fx->client) == PB_TUNNEL_CLIENT_STATE_ONLINE,
			   10);
	g_test_message("online %.2f s after the network change, the backoff was %.1f s",
		       (g_get_monotonic_time() - asked) / (double)G_USEC_PER_SEC, backoff_s);
	/* sooner than the backoff would have let it */
	g_assert_cmpfloat((g_get_monotonic_time() - asked) / (double)G_USEC_PER_SEC, <, backoff_s);
}

/* A listening socket on @address:@port that nobody accepts on; NULL if it cannot bind. */
static GSocket *
listen_quietly(GInetAddress *address, guint16 port)
{
	g_autoptr(GSocketAddress) where = g_inet_socket_address_new(address, port);
	g_autoptr(GSocket) socket = g_socket_new(g_inet_address_get_family(address),
						 G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);

	if (socket == NULL || !g_socket_bind(socket, where, FALSE, NULL) ||
	    !g_socket_listen(socket, NULL))
		return NULL;
	return g_steal_pointer(&socket);
}

static guint16
socket_port(GSocket *socket)
{
	g_autoptr(GSocketAddress) address = g_socket_get_local_address(socket, NULL);

	return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(address));
}

/* Whether a connection waits on @listener; if so, accepts and closes it. */
static gboolean
take_pending(GSocket *listener)
{
	g_autoptr(GSocket) accepted = NULL;

	if (listener == NULL || !(g_socket_condition_check(listener, G_IO_IN) & G_IO_IN))
		return FALSE;
	accepted = g_socket_accept(listener, NULL, NULL);
	return accepted != NULL;
}

/* The first address "localhost" resolves to here is ::1 (as on Debian). */
static gboolean
localhost_is_ipv6_first(void)
{
	g_autoptr(GResolver) resolver = g_resolver_get_default();
	GList *addresses = g_resolver_lookup_by_name(resolver, "localhost", NULL, NULL);
	gboolean ipv6 =
	    addresses != NULL && g_inet_address_get_family(addresses->data) == G_SOCKET_FAMILY_IPV6;

	g_resolver_free_addresses(addresses);
	return ipv6;
}

static void
test_tunnel_local_address_kept(TunnelFixture *fx, gconstpointer user_data)
{
	g_autoptr(GInetAddress) ipv4 = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GInetAddress) ipv6 = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV6);
	g_autoptr(GSocket) on_ipv4 = listen_quietly(ipv4, 0);
	g_autoptr(GSocket) on_ipv6 = NULL;
	guint16 port = socket_port(on_ipv4);

	g_test_summary("The client dials the address its last local connection reached: a "
		       "service on 127.0.0.1 behind \"localhost\" (::1 first) costs one refused "
		       "attempt, not one per connection; when that address stops answering, "
		       "the name is resolved again");
	if (!localhost_is_ipv6_first()) {
		g_test_skip("localhost does not resolve to ::1 first here");
		return;
	}
	tunnel_start_client_to(fx, NULL, "localhost", port);

	/* ::1 refuses, 127.0.0.1 takes it */
	{
		g_autoptr(GSocket) first = pb_test_connect(fx->public_port);

		pb_test_wait_until(take_pending(on_ipv4), 10);
	}
	on_ipv6 = listen_quietly(ipv6, port);
	if (on_ipv6 == NULL) {
		g_test_skip("cannot listen on ::1");
		return;
	}
	/* ::1 answers now, but the client goes where the last connection went */
	{
		g_autoptr(GSocket) second = pb_test_connect(fx->public_port);
		gboolean to_ipv4 = FALSE, to_ipv6 = FALSE;

		pb_test_wait_until(
		    (to_ipv4 = take_pending(on_ipv4)) || (to_ipv6 = take_pending(on_ipv6)), 10);
		g_assert_true(to_ipv4);
		g_assert_false(to_ipv6);
	}
	/* 127.0.0.1 is gone: resolved again, ::1 */
	g_clear_object(&on_ipv4);
	{
		g_autoptr(GSocket) third = pb_test_connect(fx->public_port);

		pb_test_wait_until(take_pending(on_ipv6), 10);
	}
	g_assert_null(fx->disconnect_reason);
}

/* Takes what @socket has to read now into @got; whether @got ends with "ping". */
static gboolean
receive_until_ping(GSocket *socket, GByteArray *got)
{
	guint8 buf[4096];
	gssize n;

	while ((n = g_socket_receive_with_blocking(socket, (char *)buf, sizeof buf, FALSE, NULL,
						   NULL)) > 0)
		g_byte_array_append(got, buf, (guint)n);
	return got->len >= 4 && memcmp(got->data + got->len - 4, "ping", 4) == 0;
}

/* With @features, one public connection that sends "ping": the local service's first
 * bytes, PROXY header included. */
static GByteArray *
proxy_first_bytes(TunnelFixture *fx, PbFeatures features, guint16 *client_port)
{
	g_autoptr(GInetAddress) ipv4 = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocket) local = listen_quietly(ipv4, 0);
	g_autoptr(GSocket) accepted = NULL;
	g_autoptr(GSocket) public = NULL;
	g_autoptr(GSocketAddress) public_address = NULL;
	g_autofree char *url =
	    g_strdup_printf("ws://127.0.0.1:%u" PB_WS_PATH, pb_tunnel_server_get_port(fx->server));
	GByteArray *got = g_byte_array_new();

	fx->client = pb_tunnel_client_new(url, "127.0.0.1", socket_port(local));
	pb_tunnel_client_set_features(fx->client, features);
	g_signal_connect(fx->client, "ready", G_CALLBACK(tunnel_ready_cb), fx);
	pb_tunnel_client_connect_async(fx->client, NULL, NULL, NULL);
	pb_test_wait_until(fx->access_url != NULL, 10);

	public = pb_test_connect(fx->public_port);
	public_address = g_socket_get_local_address(public, NULL);
	*client_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(public_address));
	g_assert_cmpint(g_socket_send(public, "ping", 4, NULL, NULL), ==, 4);
	pb_test_wait_until(g_socket_condition_check(local, G_IO_IN) & G_IO_IN, 10);
	accepted = g_socket_accept(local, NULL, NULL);
	g_assert_nonnull(accepted);
	pb_test_wait_until(receive_until_ping(accepted, got), 10);
	return got;
}

static void
test_tunnel_proxy_protocol_v1(TunnelFixture *fx, gconstpointer user_data)
{
	guint16 client_port = 0;
	g_autofree char *expected = NULL;
	g_autoptr(GByteArray) got = NULL;
	g_autofree char *first = NULL;

	g_test_summary("forward --proxy-protocol v1: the local service reads \"PROXY TCP4 <public "
		       "client> <public port>\" before the client's bytes, on protocol 2 and 1");
	for (guint pass = 0; pass < 2; pass++) {
		PbFeatures framing = pass == 0 ? PB_FEATURES_ALL : 0;

		got = proxy_first_bytes(fx, framing | PB_FEATURE_PROXY_V1, &client_port);
		g_free(expected);
		expected = g_strdup_printf("PROXY TCP4 127.0.0.1 127.0.0.1 %u %u\r\nping",
					   client_port, fx->public_port);
		g_free(first);
		first = g_strndup((const char *)got->data, got->len);
		g_assert_cmpstr(first, ==, expected);
		g_clear_pointer(&got, g_byte_array_unref);
		g_signal_handlers_disconnect_by_data(fx->client, fx);
		pb_tunnel_client_close(fx->client);
		g_clear_object(&fx->client);
		g_clear_pointer(&fx->access_url, g_free);
	}
}

static void
test_tunnel_proxy_protocol_v2(TunnelFixture *fx, gconstpointer user_data)
{
	guint16 client_port = 0;
	g_autoptr(GByteArray) got = NULL;

	g_test_summary("forward --proxy-protocol v2: the binary header (TCP over IPv4, the public "
		       "client's address and port, then the public port's) before the client's "
		       "bytes");
	got = proxy_first_bytes(fx, PB_FEATURES_ALL | PB_FEATURE_PROXY_V2, &client_port);
	g_assert_cmpuint(got->len, ==, 16 + 12 + 4);
	g_assert_cmpmem(got->data, 12, "\r\n\r\n\0\r\nQUIT\n", 12);
	g_assert_cmpuint(got->data[12], ==, 0x21);
	g_assert_cmpuint(got->data[13], ==, 0x11);
	g_assert_cmpuint(got->data[15], ==, 12);
	g_assert_cmpuint(got->data[16], ==, 127);
	g_assert_cmpuint(got->data[20], ==, 127);
	g_assert_cmpuint((got->data[24] << 8) | got->data[25], ==, client_port);
	g_assert_cmpuint((got->data[26] << 8) | got->data[27], ==, fx->public_port);
	g_assert_cmpmem(got->data + 28, 4, "ping", 4);
}

static void
test_tunnel_proxy_protocol_refused(TunnelFixture *fx, gconstpointer user_data)
{
	g_autofree char *url =
	    g_strdup_printf("ws://127.0.0.1:%u" PB_WS_PATH, pb_tunnel_server_get_port(fx->server));

	g_test_summary("A client that asks for a PROXY header from a server that does not send "
		       "one (PiggyBack 1.1, or --features none) gives up with the reason instead "
		       "of handing the client's bytes to a service that would misread them");
	pb_tunnel_server_set_features(fx->server, PB_FEATURES_ALL, PB_FLOW_WINDOW_DEFAULT);
	fx->client = pb_tunnel_client_new(url, "127.0.0.1", 9);
	pb_tunnel_client_set_features(fx->client, PB_FEATURES_ALL | PB_FEATURE_PROXY_V1);
	pb_tunnel_client_set_auto_reconnect(fx->client, TRUE);
	g_signal_connect(fx->client, "ready", G_CALLBACK(tunnel_ready_cb), fx);
	g_signal_connect(fx->client, "disconnected", G_CALLBACK(tunnel_disconnected_cb), fx);
	pb_tunnel_client_connect_async(fx->client, NULL, NULL, NULL);
	pb_test_wait_until(fx->disconnect_reason != NULL, 10);
	g_test_message("reason: %s", fx->disconnect_reason);
	g_assert_nonnull(strstr(fx->disconnect_reason, "PROXY protocol"));
	g_assert_null(fx->access_url);
	g_assert_cmpint(pb_tunnel_client_get_state(fx->client), ==, PB_TUNNEL_CLIENT_STATE_OFFLINE);
}

static void
test_tunnel_local_connect_timeout(TunnelFixture *fx, gconstpointer user_data)
{
	g_autoptr(GInetAddress) ipv4 = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) where = NULL;
	g_autoptr(GSocket) local =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
	g_autoptr(GSocket) filler = NULL;
	g_autoptr(GSocket) public = NULL;
	gint64 start;
	double waited;
	char byte;

	g_test_summary("A local service that never answers a connection attempt (its listen "
		       "backlog full: the kernel drops the SYN) gets the public connection closed "
		       "after the local connect timeout, not after two minutes of SYN retries; "
		       "so does a dial straight to the address the last connection reached");
	where = g_inet_socket_address_new(ipv4, 0);
	g_assert_true(g_socket_bind(local, where, FALSE, NULL));
	g_socket_set_listen_backlog(local, 0); /* one connection fills it */
	g_assert_true(g_socket_listen(local, NULL));
	filler = pb_test_connect(socket_port(local)); /* never accepted */

	tunnel_start_client(fx, NULL, socket_port(local));
	pb_tunnel_client_set_local_connect_timeout(fx->client, 1);
	public = pb_test_connect(fx->public_port);
	start = g_get_monotonic_time();
	pb_test_wait_until(g_socket_condition_check(public, G_IO_IN | G_IO_HUP) != 0, 10);
	waited = (g_get_monotonic_time() - start) / (double)G_USEC_PER_SEC;
	g_test_message("public connection closed after %.2f s", waited);
	g_assert_cmpint(g_socket_receive(public, &byte, 1, NULL, NULL), <=, 0);
	g_assert_cmpfloat(waited, >=, 0.9); /* it did wait for the local service */

	/* room for one: a connection gets through, and the client keeps its address */
	g_clear_object(&public);
	g_assert_true(take_pending(local)); /* the filler */
	public = pb_test_connect(fx->public_port);
	pb_test_wait_until(take_pending(local), 10);
	g_clear_object(&public);
	/* full again: the next dial goes to that address, without a name to resolve */
	g_clear_object(&filler);
	filler = pb_test_connect(socket_port(local));
	public = pb_test_connect(fx->public_port);
	start = g_get_monotonic_time();
	pb_test_wait_until(g_socket_condition_check(public, G_IO_IN | G_IO_HUP) != 0, 10);
	waited = (g_get_monotonic_time() - start) / (double)G_USEC_PER_SEC;
	g_test_message("straight to the last address: public connection closed after %.2f s",
		       waited);
	g_assert_cmpint(g_socket_receive(public, &byte, 1, NULL, NULL), <=, 0);
	g_assert_cmpfloat(waited, >=, 0.9);
	g_assert_null(fx->disconnect_reason);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, func) g_test_add(path, TunnelFixture, NULL, tunnel_set_up, func, tunnel_tear_down)
	ADD("/tunnel/hello", test_tunnel_hello);
	ADD("/tunnel/http-get", test_tunnel_http_get);
	ADD("/tunnel/http-concurrent", test_tunnel_http_concurrent);
	ADD("/tunnel/binary-echo", test_tunnel_binary_echo);
	ADD("/tunnel/server-list-clients", test_tunnel_server_list_clients);
	ADD("/tunnel/raw-echo", test_tunnel_raw_echo);
	ADD("/tunnel/upstream-bulk", test_tunnel_upstream_bulk);
	ADD("/tunnel/downstream-bulk", test_tunnel_downstream_bulk);
	ADD("/tunnel/local-down", test_tunnel_local_down);
	ADD("/tunnel/local-address-kept", test_tunnel_local_address_kept);
	ADD("/tunnel/local-connect-timeout", test_tunnel_local_connect_timeout);
	ADD("/tunnel/first-read-whole", test_tunnel_first_read_whole);
	ADD("/tunnel/port-taken", test_tunnel_port_taken);
	ADD("/tunnel/port-range", test_tunnel_port_range);
	ADD("/tunnel/dual-stack", test_tunnel_dual_stack);
	ADD("/tunnel/proxy-protocol/v1", test_tunnel_proxy_protocol_v1);
	ADD("/tunnel/proxy-protocol/v2", test_tunnel_proxy_protocol_v2);
	ADD("/tunnel/proxy-protocol/refused", test_tunnel_proxy_protocol_refused);
	ADD("/tunnel/session/same-port", test_tunnel_session_same_port);
	ADD("/tunnel/session/grace", test_tunnel_session_grace);
	ADD("/tunnel/limits/max-connections", test_tunnel_max_connections);
	ADD("/tunnel/limits/max-clients", test_tunnel_max_clients);
	ADD("/tunnel/limits/idle-timeout", test_tunnel_idle_timeout);
	ADD("/tunnel/limits/never-reads", test_tunnel_never_reads);
	ADD("/tunnel/network-changed", test_tunnel_network_changed);
#undef ADD
	return g_test_run();
}
