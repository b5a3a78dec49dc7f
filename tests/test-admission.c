/* SPDX-License-Identifier: ISC */
#define _GNU_SOURCE /* memmem() */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pb-admission.h"
#include "pb-frame.h"
#include "pb-listener.h"
#include "pb-server-client.h"
#include "pb-session-table.h"
#include "pb-test-utils.h"

/*
 * Who `piggyback serve` lets in, against the real binaries over loopback (issue 19,
 * "Hostile peers", items 3 to 5): a made-up session does not get past --max-clients, the
 * ports kept for clients that left count against it, and a few addresses cannot fill the
 * cap on connections waiting for their handshake. During and after each attack /healthz
 * answers within 1 s, a real client still connects, the server holds a bounded number of
 * descriptors and exits cleanly on SIGTERM. Attackers use source addresses of
 * 127.0.0.0/8 other than 127.0.0.1.
 */

/* A blocking socket from @source (an IPv4 address; NULL for 127.0.0.1) to 127.0.0.1:@port,
 * with @timeout_s timeouts; NULL if it could not connect. */
static GSocket *
connect_from(const char *source, guint16 port, guint timeout_s)
{
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, port);
	g_autoptr(GSocket) socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);

	g_assert_nonnull(socket);
	g_socket_set_timeout(socket, timeout_s);
	if (source != NULL) {
		g_autoptr(GSocketAddress) from = g_inet_socket_address_new_from_string(source, 0);

		g_assert_true(g_socket_bind(socket, from, FALSE, NULL));
	}
	if (!g_socket_connect(socket, address, NULL, NULL))
		return NULL;
	return g_steal_pointer(&socket);
}

/* GET /healthz; TRUE if "200" and "ok" came back within 1 s (from connect to close). */
static gpointer
healthz_cb(gpointer user_data)
{
	const char request[] = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	gint64 start = g_get_monotonic_time();
	g_autoptr(GSocket) socket = connect_from(NULL, GPOINTER_TO_UINT(user_data), 1);
	g_autoptr(GString) reply = g_string_new(NULL);
	char buf[1024];
	gssize n;

	if (socket == NULL ||
	    g_socket_send(socket, request, sizeof request - 1, NULL, NULL) != sizeof request - 1)
		return GINT_TO_POINTER(FALSE);
	while ((n = g_socket_receive(socket, buf, sizeof buf, NULL, NULL)) > 0)
		g_string_append_len(reply, buf, n);
	g_test_message("/healthz: %" G_GINT64_FORMAT " ms, %s",
		       (g_get_monotonic_time() - start) / 1000,
		       reply->len > 0 ? strtok(reply->str, "\r") : "no answer");
	return GINT_TO_POINTER(n == 0 && g_get_monotonic_time() - start < G_USEC_PER_SEC &&
			       g_str_has_prefix(reply->str, "HTTP/1.") &&
			       strstr(reply->str, " 200") != NULL);
}

static void
assert_healthz(guint16 ws_port)
{
	g_assert_true(pb_test_run_in_thread(healthz_cb, GUINT_TO_POINTER(ws_port), 5));
}

/* --- a client that speaks the upgrade by hand --- */

typedef struct {
	const char *source;  /* (nullable) source address; NULL for 127.0.0.1 */
	guint16 ws_port;     /* the server's */
	const char *headers; /* (nullable) more request header lines, each ending in \r\n */
	guint status;	     /* the answer's status code, 0 for none (closed or reset) */
	guint16 tunnel_port; /* from HELLO, after a 101 */
	guint close_code;    /* when the server closed the WebSocket instead of sending HELLO */
	char session[33];    /* from HELLO, after a 101 to a protocol 2 client */
	GSocket *socket;     /* (owned) (nullable) the WebSocket, open, after a 101 */
} Upgrade;

static gboolean
receive_exactly(GSocket *socket, char *buf, gsize len)
{
	for (gsize got = 0; got < len;) {
		gssize n = g_socket_receive(socket, buf + got, len - got, NULL, NULL);

		if (n <= 0)
			return FALSE;
		got += (gsize)n;
	}
	return TRUE;
}

/* Reads HELLO, the server's first WebSocket message (unmasked, under 64 KiB), or the close
 * frame that came instead. */
static void
upgrade_read_hello(Upgrade *up)
{
	guint8 head[4];
	gsize len;
	g_autofree char *payload = NULL;
	const char *port;
	const char *session;

	g_assert_true(receive_exactly(up->socket, (char *)head, 2));
	len = head[1] & 0x7f;
	if (head[0] == 0x88 && len >= 2) { /* FIN, close */
		g_assert_true(receive_exactly(up->socket, (char *)head + 2, 2));
		up->close_code = (guint)head[2] << 8 | head[3];
		return;
	}
	g_assert_cmpuint(head[0], ==, 0x82); /* FIN, binary */
	if (len == 126) {
		g_assert_true(receive_exactly(up->socket, (char *)head + 2, 2));
		len = (gsize)head[2] << 8 | head[3];
	}
	g_assert_cmpuint(len, <, 127 * 256);
	payload = g_malloc0(len + 1);
	g_assert_true(receive_exactly(up->socket, payload, len));
	g_assert_cmpuint(len, >, 5);
	g_assert_cmpuint((guint8)payload[0], ==, PB_FRAME_HELLO);
	port = memmem(payload, len, "\"tunnelPort\":", strlen("\"tunnelPort\":"));
	g_assert_nonnull(port);
	up->tunnel_port = (guint16)g_ascii_strtoull(port + strlen("\"tunnelPort\":"), NULL, 10);
	session = memmem(payload, len, "\"session\":\"", strlen("\"session\":\""));
	if (session != NULL)
		g_strlcpy(up->session, session + strlen("\"session\":\""), sizeof up->session);
}

/* The status code of the HTTP response on @socket, 0 if it closed first. */
static guint
read_status(GSocket *socket)
{
	char response[2048];
	gsize got = 0;

	/* a byte at a time: what follows the response (HELLO) stays in the socket */
	response[0] = '\0';
	while (g_strstr_len(response, got, "\r\n\r\n") == NULL) {
		g_assert_cmpuint(got, <, sizeof response - 1);
		if (g_socket_receive(socket, response + got, 1, NULL, NULL) != 1)
			return 0;
		got++;
		response[got] = '\0';
	}
	g_assert_true(g_str_has_prefix(response, "HTTP/1.1 "));
	return (guint)g_ascii_strtoull(response + strlen("HTTP/1.1 "), NULL, 10);
}

/* Sends an upgrade request; with a 101, reads HELLO and keeps the WebSocket open. */
static gpointer
upgrade_cb(gpointer user_data)
{
	Upgrade *up = user_data;
	g_autofree char *request = g_strdup_printf("GET " PB_WS_PATH " HTTP/1.1\r\n"
						   "Host: 127.0.0.1\r\n"
						   "Upgrade: websocket\r\n"
						   "Connection: Upgrade\r\n"
						   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
						   "Sec-WebSocket-Version: 13\r\n%s\r\n",
						   up->headers != NULL ? up->headers : "");
	gssize len = (gssize)strlen(request);

	up->tunnel_port = 0;
	up->close_code = 0;
	up->session[0] = '\0';
	up->socket = connect_from(up->source, up->ws_port, 10);
	g_assert_nonnull(up->socket);
	up->status = g_socket_send(up->socket, request, len, NULL, NULL) == len
			 ? read_status(up->socket)
			 : 0;
	if (up->status == 101)
		upgrade_read_hello(up);
	else
		g_clear_object(&up->socket);
	return GINT_TO_POINTER(TRUE);
}

static void
upgrade(Upgrade *up)
{
	g_assert_true(pb_test_run_in_thread(upgrade_cb, up, 20));
}

/* Ends the WebSocket as a client that lost its connection would: no close frame. */
static void
upgrade_drop(Upgrade *up)
{
	if (up->socket != NULL)
		g_socket_close(up->socket, NULL);
	g_clear_object(&up->socket);
}

#define PROTOCOL_2 PB_FEATURES_HEADER ": flow, eof\r\n"

/* --- the processes --- */

/* A test that fails leaves no piggyback behind: it is killed with the test. With a
 * @user_data other than 0, the process may open that many files at most. */
static void
child_setup_cb(gpointer user_data)
{
	struct rlimit limit;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (GPOINTER_TO_UINT(user_data) != 0 && getrlimit(RLIMIT_NOFILE, &limit) == 0) {
		limit.rlim_cur = GPOINTER_TO_UINT(user_data);
		setrlimit(RLIMIT_NOFILE, &limit);
	}
}

static GSubprocessLauncher *
launcher_new(guint max_files)
{
	GSubprocessLauncher *launcher = pb_test_proc_launcher_new();

	g_subprocess_launcher_set_child_setup(launcher, child_setup_cb, GUINT_TO_POINTER(max_files),
					      NULL);
	return launcher;
}

static PbTestProc *
serve(guint max_files, guint16 *ws_port, const char *first, ...) G_GNUC_NULL_TERMINATED;

/* `piggyback serve` on 127.0.0.1 with the options that follow, allowed to open @max_files
 * files (0: as many as this process); *@ws_port its port. */
static PbTestProc *
serve(guint max_files, guint16 *ws_port, const char *first, ...)
{
	g_autoptr(GSubprocessLauncher) launcher = launcher_new(max_files);
	PbTestProc *server;
	va_list rest;

	va_start(rest, first);
	server = pb_test_serve_valist(launcher, NULL, ws_port, first, rest);
	va_end(rest);
	return server;
}

/* A real `piggyback forward` to @ws_port (with the token in @token_file, nullable); NULL
 * if it did not get a port within 10 s. */
static PbTestProc *
forward(guint16 ws_port, const char *token_file, guint16 *public_port)
{
	g_autoptr(GSubprocessLauncher) launcher = launcher_new(0);
	g_autofree char *server_url = g_strdup_printf("127.0.0.1:%u", ws_port);
	const char *argv[] = {g_getenv("PB_PIGGYBACK"),
			      "forward",
			      "-p",
			      "9",
			      "-h",
			      "127.0.0.1",
			      "-s",
			      server_url,
			      "--no-reconnect",
			      token_file != NULL ? "--token-file" : NULL,
			      token_file,
			      NULL};
	PbTestProc *client = pb_test_proc_spawnv(launcher, argv);

	*public_port = pb_test_proc_wait_port(client, "Access URL:");
	return client;
}

/* How many lines @proc wrote with @needle so far. */
static guint
count_lines(PbTestProc *proc, const char *needle)
{
	guint n = 0;

	for (const char *p = pb_test_proc_get_output(proc); (p = strstr(p, needle)) != NULL;
	     p += strlen(needle))
		n++;
	return n;
}

static void
finish(PbTestProc *proc)
{
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
}

/* A protocol 2 client that connects and leaves at once; waits for @server to notice. */
static void
upgrade_and_leave(PbTestProc *server, Upgrade *up)
{
	guint n_gone = count_lines(server, "Client 127.0.0.2:");

	upgrade(up);
	g_assert_true(up->status == 101 || up->status == 503);
	g_assert_cmpuint(up->close_code, ==, 0); /* 1011: "cannot open a public port" */
	upgrade_drop(up);
	/* "Client … connected", then "Client … disconnected" */
	if (up->status == 101)
		pb_test_wait_until(count_lines(server, "Client 127.0.0.2:") >= n_gone + 2, 10);
}

/* --- 3: a made-up session --- */

static void
test_admission_bogus_session(void)
{
	enum { N_ATTACKERS = 20 };
	/* "x", and an id of the form the server gives */
	const char *const made_up[] = {PB_SESSION_HEADER ": x\r\n",
				       PB_SESSION_HEADER ": 0123456789abcdef0123456789abcdef\r\n"};
	Upgrade attackers[N_ATTACKERS];
	guint n_upgraded = 0;
	guint n_full = 0;
	guint16 ws_port;
	guint16 port1;
	guint16 port2;
	PbTestProc *server = serve(0, &ws_port, "--max-clients", "2", NULL);
	PbTestProc *client1 = forward(ws_port, NULL, &port1);
	PbTestProc *client2;
	guint baseline = pb_test_proc_count_fds(server);

	g_test_summary("--max-clients 2 and 20 clients that send `Piggyback-Session: x` or a "
		       "well-formed id the server never gave: one gets the free slot, the other 19 "
		       "are refused with 503 as any new client; /healthz answers meanwhile; "
		       "once they are gone a real client connects");
	for (guint i = 0; i < N_ATTACKERS; i++) {
		attackers[i] =
		    (Upgrade){.source = "127.0.0.2", .ws_port = ws_port, .headers = made_up[i % 2]};
		upgrade(&attackers[i]);
		n_upgraded += attackers[i].status == 101;
		n_full += attackers[i].status == 503;
	}
	g_test_message("%u of %u upgraded, %u refused with 503; the server holds %u listening "
		       "ports and %u descriptors (%u before)",
		       n_upgraded, N_ATTACKERS, n_full, pb_test_proc_count_listeners(server),
		       pb_test_proc_count_fds(server), baseline);
	assert_healthz(ws_port);
	g_assert_cmpuint(n_upgraded, ==, 1);
	g_assert_cmpuint(n_full, ==, N_ATTACKERS - 1);
	/* the WebSocket port, client1's and the one attacker's */
	g_assert_cmpuint(pb_test_proc_count_listeners(server), ==, 3);
	/* the one attacker's WebSocket and port (the refused ones are closed as they go) */
	pb_test_wait_until(pb_test_proc_count_fds(server) <= baseline + 2, 10);

	for (guint i = 0; i < N_ATTACKERS; i++)
		upgrade_drop(&attackers[i]);
	/* a protocol 1 client (no Piggyback-Features) has no session: its port is closed */
	pb_test_wait_until(pb_test_proc_count_listeners(server) == 2, 10);
	assert_healthz(ws_port);
	client2 = forward(ws_port, NULL, &port2);
	g_assert_cmpuint(port2, !=, port1);
	finish(client2);
	finish(client1);
	finish(server);
}

/* --- 4: ports kept for clients that left --- */

static void
test_admission_reservations(void)
{
	enum { N_CYCLES = 300 };
	Upgrade attacker = {.source = "127.0.0.2", .headers = PROTOCOL_2};
	Upgrade lost = {.source = "127.0.0.3", .headers = PROTOCOL_2};
	g_autofree char *session_header = NULL;
	guint n_upgraded = 0;
	guint max_listeners = 0;
	guint max_fds = 0;
	guint16 ws_port;
	guint16 port1;
	guint16 port2;
	guint16 lost_port;
	guint n_kept;
	/* 300 ports kept would need more files than it may open: its clients got 1011 "cannot
	 * open a public port" */
	PbTestProc *server = serve(64, &ws_port, "--max-clients", "2", "--grace", "60", NULL);
	PbTestProc *client1 = forward(ws_port, NULL, &port1);
	PbTestProc *client2;
	guint baseline = pb_test_proc_count_fds(server);

	g_test_summary("--max-clients 2, 300 times a protocol 2 client that connects and leaves "
		       "at once (its port is kept for --grace 60 s): the ports kept count against "
		       "--max-clients, each newcomer takes the place of the oldest one kept for "
		       "its own address, and the server never holds more than 2 public ports; "
		       "a client that really lost its connection comes back to its own port "
		       "while the limit is reached; a real client connects afterwards");
	attacker.ws_port = lost.ws_port = ws_port;
	for (guint i = 0; i < N_CYCLES; i++) {
		upgrade_and_leave(server, &attacker);
		n_upgraded += attacker.status == 101;
		if (i % 50 == 25) {
			max_listeners = MAX(max_listeners, pb_test_proc_count_listeners(server));
			max_fds = MAX(max_fds, pb_test_proc_count_fds(server));
		}
		if (i == N_CYCLES / 2)
			assert_healthz(ws_port);
	}
	pb_test_settle();
	max_listeners = MAX(max_listeners, pb_test_proc_count_listeners(server));
	max_fds = MAX(max_fds, pb_test_proc_count_fds(server));
	g_test_message("%u cycles, %u upgraded; at most %u listening ports and %u descriptors "
		       "(%u with one client)",
		       N_CYCLES, n_upgraded, max_listeners, max_fds, baseline);
	g_assert_cmpuint(n_upgraded, ==, N_CYCLES);
	/* the WebSocket port, client1's, one kept for the attacker */
	g_assert_cmpuint(max_listeners, <=, 3);
	/* that port, and WebSockets the server may not have closed yet */
	g_assert_cmpuint(max_fds, <=, baseline + 3);
	assert_healthz(ws_port);

	/* a client loses its WebSocket; the limit is reached (client1 and its kept port) */
	upgrade(&lost);
	g_assert_cmpuint(lost.status, ==, 101);
	g_assert_cmpuint(strlen(lost.session), ==, 32);
	lost_port = lost.tunnel_port;
	n_kept = count_lines(server, "kept for it");
	upgrade_drop(&lost);
	pb_test_wait_until(count_lines(server, "kept for it") > n_kept, 10);
	session_header = g_strdup_printf(PROTOCOL_2 PB_SESSION_HEADER ": %s\r\n", lost.session);
	lost.headers = session_header;
	upgrade(&lost);
	g_assert_cmpuint(lost.status, ==, 101);
	g_assert_cmpuint(lost.tunnel_port, ==, lost_port);
	upgrade_drop(&lost);

	/* a new client takes the place of the oldest kept port */
	client2 = forward(ws_port, NULL, &port2);
	g_assert_cmpuint(pb_test_proc_count_listeners(server), <=, 3);
	assert_healthz(ws_port);
	finish(client2);
	finish(client1);
	finish(server);
}

static void
test_admission_comes_back(void)
{
	g_autoptr(GSubprocessLauncher) launcher = launcher_new(0);
	g_autofree char *server_url = NULL;
	g_autofree char *access_url = NULL;
	guint16 ws_port;
	guint16 public_port;
	PbTestProc *server =
	    serve(0, &ws_port, "--max-clients", "1", "--keepalive", "1", "--grace", "30", NULL);
	PbTestProc *client;

	g_test_summary("--max-clients 1: a real client that stops answering loses its "
		       "WebSocket, its kept port fills the server, and when it answers again it "
		       "comes back into its own place, on the same port");
	server_url = g_strdup_printf("127.0.0.1:%u", ws_port);
	client = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", "9", "-h",
				    "127.0.0.1", "-s", server_url, NULL);
	public_port = pb_test_proc_wait_port(client, "Access URL:");
	access_url = g_strdup_printf("Access URL: tcp://127.0.0.1:%u", public_port);

	/* stopped, it answers no ping: after two intervals the server drops its tunnel */
	g_assert_cmpint(kill(pb_test_proc_get_pid(client), SIGSTOP), ==, 0);
	pb_test_wait_until(count_lines(server, "kept for it") == 1, 15);
	assert_healthz(ws_port);
	g_assert_cmpint(kill(pb_test_proc_get_pid(client), SIGCONT), ==, 0);
	pb_test_wait_until(count_lines(client, access_url) == 2, 15);
	g_assert_cmpuint(count_lines(server, "is back: its port"), ==, 1);
	g_assert_cmpuint(count_lines(server, "Refusing"), ==, 0);
	assert_healthz(ws_port);
	finish(client);
	finish(server);
}

/* Whether nothing has bound 127.0.0.1:@port (or every address) just now. */
static gboolean
port_is_free(guint16 port)
{
	g_autoptr(GSocket) socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
	g_autoptr(GSocketAddress) address =
	    g_inet_socket_address_new_from_string("127.0.0.1", port);

	return socket != NULL && g_socket_bind(socket, address, FALSE, NULL);
}

/* @n ports in a row that are free, below the ephemeral range (see test-tunnel.c). */
static guint16
free_port_range(guint n)
{
	for (guint attempt = 0; attempt < 100; attempt++) {
		guint16 first = (guint16)g_random_int_range(20000, 32000);
		guint i = 0;

		while (i < n && port_is_free(first + i))
			i++;
		if (i == n)
			return first;
	}
	g_error("no %u free ports in a row", n);
}

static void
test_admission_reservations_range(void)
{
	enum { N_CYCLES = 30 };
	guint16 first = free_port_range(3);
	g_autofree char *range = g_strdup_printf("%u-%u", first, first + 2);
	Upgrade attacker = {.source = "127.0.0.2", .headers = PROTOCOL_2};
	guint n_upgraded = 0;
	guint16 ws_port;
	guint16 port1;
	guint16 port2;
	PbTestProc *server = serve(0, &ws_port, "--tunnel-port", range, "--grace", "60", NULL);
	PbTestProc *client1 = forward(ws_port, NULL, &port1);
	PbTestProc *client2;

	g_test_summary("--tunnel-port with 3 ports, 30 times a client that connects and leaves "
		       "at once: the ports kept for it do not fill the range, a newcomer takes "
		       "the place of the oldest, and a real client still gets a port");
	attacker.ws_port = ws_port;
	for (guint i = 0; i < N_CYCLES; i++) {
		upgrade_and_leave(server, &attacker);
		n_upgraded += attacker.status == 101;
	}
	pb_test_settle();
	g_test_message("%u of %u cycles upgraded, %u listening ports", n_upgraded, N_CYCLES,
		       pb_test_proc_count_listeners(server));
	g_assert_cmpuint(n_upgraded, ==, N_CYCLES);
	/* the WebSocket port and the range */
	g_assert_cmpuint(pb_test_proc_count_listeners(server), ==, 4);
	assert_healthz(ws_port);
	client2 = forward(ws_port, NULL, &port2);
	g_assert_cmpuint(port2, >=, first);
	g_assert_cmpuint(port2, <=, first + 2);
	finish(client2);
	finish(client1);
	finish(server);
}

/* Keeps a port on 127.0.0.1 for @session of a client from @from. */
static guint16
reserve(PbSessionTable *table, const char *session, const char *from)
{
	g_autoptr(GInetAddress) address = g_inet_address_new_from_string(from);
	g_autoptr(GSocketAddress) local = g_inet_socket_address_new_from_string("127.0.0.1", 0);
	PbListener *listener = pb_listener_new(local, NULL, NULL, NULL);
	GPtrArray *services =
	    g_ptr_array_new_with_free_func((GDestroyNotify)pb_server_service_free);
	PbServerService *service = pb_server_service_new();
	guint16 port;

	g_assert_nonnull(listener);
	port = pb_listener_get_port(listener);
	service->listener = listener;
	service->port = port;
	g_ptr_array_add(services, service);
	pb_session_table_reserve(table, session, address, from, services, NULL, 60);
	return port;
}

static void
test_admission_session_table(void)
{
	g_autoptr(PbSessionTable) table = pb_session_table_new();
	g_autoptr(GInetAddress) newcomer = g_inet_address_new_from_string("127.0.0.3");
	const char *a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	const char *b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	const char *c = "cccccccccccccccccccccccccccccccc";
	guint16 port_a;
	guint16 port_c;
	g_autoptr(GPtrArray) services = NULL;
	PbServerService *service;

	g_test_summary("Kept ports count against --max-clients; a newcomer releases the oldest "
		       "of its own network first, else the oldest of all, never one whose "
		       "client is coming back, and none when the connected clients fill the "
		       "server");
	port_a = reserve(table, a, "127.0.0.2");
	reserve(table, b, "127.0.0.3");
	port_c = reserve(table, c, "127.0.0.4");
	g_assert_true(pb_session_table_holds_port(table, port_a));
	/* 2 connected, 3 kept, 5 places: the newcomer of 127.0.0.3 replaces b, not the older a */
	g_assert_cmpint(pb_session_table_admit(table, 2, 5, 0, newcomer), ==, PB_ADMIT_OK);
	g_assert_cmpuint(pb_session_table_get_size(table), ==, 2);
	g_assert_false(pb_session_table_claim(table, b));
	/* a's client is coming back: c goes for the next newcomer, though a is older */
	g_assert_true(pb_session_table_claim(table, a));
	g_assert_cmpint(pb_session_table_admit(table, 3, 5, 0, newcomer), ==, PB_ADMIT_OK);
	g_assert_false(pb_session_table_holds_port(table, port_c));
	g_assert_cmpint(pb_session_table_admit(table, 4, 5, 0, newcomer), ==, PB_ADMIT_FULL);
	/* a range of 5 ports, 4 held by connected clients: as full */
	g_assert_cmpint(pb_session_table_admit(table, 4, 64, 5, newcomer), ==, PB_ADMIT_NO_PORT);
	/* connected clients fill the server: the kept port stays */
	g_assert_cmpint(pb_session_table_admit(table, 5, 5, 0, NULL), ==, PB_ADMIT_FULL);
	services = pb_session_table_take(table, a, NULL);
	g_assert_nonnull(services);
	g_assert_cmpuint(services->len, ==, 1);
	service = services->pdata[0];
	g_assert_null(service->name);
	g_assert_cmpuint(pb_listener_get_port(service->listener), ==, port_a);
	g_assert_cmpuint(pb_session_table_get_size(table), ==, 0);
}

/* --- 5: the cap on connections waiting for their handshake --- */

static void
test_admission_pending_full(void)
{
	enum { N_ADDRESSES = 8, PER_ADDRESS = PB_MAX_PENDING_PER_ADDRESS_DEFAULT };
	enum { N_SILENT = N_ADDRESSES * PER_ADDRESS };
	g_autofree char *token_file = NULL;
	int fds[N_SILENT];
	int one_more;
	int refill;
	guint16 ws_port;
	guint16 public_port;
	guint baseline;
	guint n_evicted;
	gint64 start;
	PbTestProc *server;
	PbTestProc *client;
	int token_fd;

	g_test_summary("8 addresses open 32 silent connections each to the WebSocket port: the "
		       "server-wide cap (256) is full. /healthz and a client with the token still "
		       "get through, each taking the place of the oldest silent connection; a "
		       "33rd from one address is closed at once; all is freed afterwards");
	g_assert_cmpuint(N_SILENT, ==, PB_MAX_PENDING_DEFAULT);
	token_fd = g_file_open_tmp("pb-admission-XXXXXX", &token_file, NULL);
	g_assert_cmpint(token_fd, >=, 0);
	g_assert_cmpint(write(token_fd, "s3cret-admission\n", 17), ==, 17);
	close(token_fd);
	/* the silent connections would be closed after 10 s: the attack outlasts the test */
	server = serve(0, &ws_port, "--token-file", token_file, "--handshake-timeout", "60", NULL);
	baseline = pb_test_proc_count_fds(server);
	for (guint a = 0; a < N_ADDRESSES; a++) {
		g_autofree char *from = g_strdup_printf("127.0.0.%u", a + 2);

		g_assert_cmpuint(
		    pb_test_connect_burst(ws_port, from, fds + a * PER_ADDRESS, PER_ADDRESS), ==,
		    PER_ADDRESS);
	}
	/* the server has accepted them all */
	pb_test_wait_until(pb_test_proc_count_fds(server) >= baseline + N_SILENT, 10);
	g_assert_cmpuint(pb_test_count_closed_by_peer(fds, N_SILENT), ==, 0);

	assert_healthz(ws_port);
	/* /healthz took the place of one and is gone: the attacker takes that place again,
	 * from a ninth address */
	pb_test_wait_until(pb_test_proc_count_fds(server) == baseline + N_SILENT - 1, 10);
	g_assert_cmpuint(pb_test_connect_burst(ws_port, "127.0.0.10", &refill, 1), ==, 1);
	pb_test_wait_until(pb_test_proc_count_fds(server) == baseline + N_SILENT, 10);
	start = g_get_monotonic_time();
	client = forward(ws_port, token_file, &public_port);
	g_test_message("the client with the token had its port after %" G_GINT64_FORMAT " ms",
		       (g_get_monotonic_time() - start) / 1000);
	pb_test_settle();
	n_evicted = pb_test_count_closed_by_peer(fds, N_SILENT);
	g_test_message("%u silent connections closed to make room; the server holds %u "
		       "descriptors (%u before the attack)",
		       n_evicted, pb_test_proc_count_fds(server), baseline);
	/* one for /healthz, one for the client, each the oldest */
	g_assert_cmpuint(n_evicted, ==, 2);
	g_assert_cmpuint(pb_test_count_closed_by_peer(fds, 2), ==, 2);
	g_assert_cmpuint(pb_test_count_closed_by_peer(&refill, 1), ==, 0);
	g_assert_cmpuint(pb_test_proc_count_fds(server), <=, baseline + N_SILENT + 2);

	/* a connection over the cap of its address is closed at once */
	g_assert_cmpuint(pb_test_connect_burst(ws_port, "127.0.0.9", &one_more, 1), ==, 1);
	pb_test_wait_until(pb_test_count_closed_by_peer(&one_more, 1) == 1, 5);
	close(one_more);
	g_assert_cmpuint(pb_test_count_closed_by_peer(fds + N_SILENT - PER_ADDRESS, PER_ADDRESS),
			 ==, 0);

	for (guint i = 0; i < N_SILENT; i++)
		close(fds[i]);
	close(refill);
	assert_healthz(ws_port);
	/* left: the client's WebSocket and its public port */
	pb_test_wait_until(pb_test_proc_count_fds(server) <= baseline + 2, 10);
	finish(client);
	finish(server);
	g_unlink(token_file);
}

/* The end of the connection @admission took on the server side, accepted from @source. */
typedef struct {
	GSocket *client;	     /* (owned) */
	GSocketConnection *accepted; /* (owned) */
	GSocketAddress *remote;	     /* (owned) */
} Waiting;

static gboolean
waiting_add(PbAdmission *admission, GSocketListener *listener, guint16 port, const char *source,
	    Waiting *waiting)
{
	waiting->client = connect_from(source, port, 1);
	g_assert_nonnull(waiting->client);
	waiting->accepted = g_socket_listener_accept(listener, NULL, NULL, NULL);
	g_assert_nonnull(waiting->accepted);
	waiting->remote = g_socket_connection_get_remote_address(waiting->accepted, NULL);
	return pb_admission_add(admission, G_IO_STREAM(waiting->accepted),
				g_socket_connection_get_socket(waiting->accepted), waiting->remote);
}

/* Whether the server side ended the connection within @timeout_ms: end of stream on the
 * client's side. */
static gboolean
waiting_ended(Waiting *waiting, gint64 timeout_ms)
{
	char byte;

	return g_socket_condition_timed_wait(waiting->client, G_IO_IN,
					     timeout_ms * G_TIME_SPAN_MILLISECOND, NULL, NULL) &&
	       g_socket_receive(waiting->client, &byte, 1, NULL, NULL) == 0;
}

static void
waiting_clear(Waiting *waiting)
{
	g_clear_object(&waiting->client);
	g_clear_object(&waiting->accepted);
	g_clear_object(&waiting->remote);
}

static void
test_admission_replace_order(void)
{
	g_autoptr(GSocketListener) listener = g_socket_listener_new();
	g_autoptr(PbAdmission) admission = pb_admission_new();
	const char *sources[] = {"127.0.0.2", "127.0.0.2", "127.0.0.3",
				 "127.0.0.2", "127.0.0.4", "127.0.0.5"};
	Waiting waiting[G_N_ELEMENTS(sources)] = {0};
	guint16 port;

	g_test_summary("3 places, 2 per network: a third connection of a network is refused; "
		       "when all places are taken, a newcomer takes the place of the oldest "
		       "connection whose request is not being answered");
	port = g_socket_listener_add_any_inet_port(listener, NULL, NULL);
	pb_admission_set_limits(admission, 60, 3, 2);
	for (guint i = 0; i < 3; i++)
		g_assert_true(waiting_add(admission, listener, port, sources[i], &waiting[i]));
	g_assert_false(waiting_add(admission, listener, port, sources[3], &waiting[3]));
	g_assert_cmpuint(pb_admission_get_n_pending(admission), ==, 3);

	/* the oldest is being answered: the second makes room */
	pb_admission_set_busy(admission, waiting[0].remote, TRUE);
	g_assert_true(waiting_add(admission, listener, port, sources[4], &waiting[4]));
	g_assert_cmpuint(pb_admission_get_n_pending(admission), ==, 3);
	g_assert_true(waiting_ended(&waiting[1], 2000));
	g_assert_false(waiting_ended(&waiting[0], 0));
	g_assert_false(waiting_ended(&waiting[2], 0));

	/* answered, it is idle again: the oldest makes room */
	pb_admission_set_busy(admission, waiting[0].remote, FALSE);
	g_assert_true(waiting_add(admission, listener, port, sources[5], &waiting[5]));
	g_assert_true(waiting_ended(&waiting[0], 2000));
	g_assert_false(waiting_ended(&waiting[2], 0));
	g_assert_false(waiting_ended(&waiting[4], 0));
	g_assert_cmpuint(pb_admission_get_n_pending(admission), ==, 3);

	g_clear_pointer(&admission, pb_admission_free);
	for (guint i = 0; i < G_N_ELEMENTS(waiting); i++)
		waiting_clear(&waiting[i]);
}

static gboolean
flag_cb(gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
	return G_SOURCE_REMOVE;
}

static void
test_admission_sweep(void)
{
	g_autoptr(GSocketListener) listener = g_socket_listener_new();
	PbAdmission *admission = pb_admission_new();
	Waiting waiting[2] = {0};
	gboolean waited = FALSE;
	guint16 port;

	g_test_summary("A connection that closed makes room at once for the next one, and no "
		       "timer of the admission outlives it");
	port = g_socket_listener_add_any_inet_port(listener, NULL, NULL);
	pb_admission_set_limits(admission, 60, 1, 1);
	g_assert_true(waiting_add(admission, listener, port, "127.0.0.2", &waiting[0]));
	/* what libsoup does when its peer goes away */
	g_io_stream_close(G_IO_STREAM(waiting[0].accepted), NULL, NULL);
	g_assert_true(waiting_add(admission, listener, port, "127.0.0.2", &waiting[1]));
	g_assert_cmpuint(pb_admission_get_n_pending(admission), ==, 1);
	pb_admission_free(admission);
	/* the sweep runs every second: had one been left behind, it would run now */
	g_timeout_add(1500, flag_cb, &waited);
	pb_test_wait_until(waited, 5);
	for (guint i = 0; i < G_N_ELEMENTS(waiting); i++)
		waiting_clear(&waiting[i]);
}

/* --- networks --- */

static gboolean
same_network(const char *a, const char *b)
{
	g_autoptr(GInetAddress) first = g_inet_address_new_from_string(a);
	g_autoptr(GInetAddress) second = g_inet_address_new_from_string(b);

	g_assert_nonnull(first);
	g_assert_nonnull(second);
	return pb_admission_same_network(first, second);
}

static void
test_admission_networks(void)
{
	g_test_summary("Connections are counted per IPv4 address and per IPv6 /64");
	g_assert_true(same_network("192.0.2.7", "192.0.2.7"));
	g_assert_false(same_network("192.0.2.7", "192.0.2.8"));
	g_assert_true(same_network("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"));
	g_assert_false(same_network("2001:db8:1:2::1", "2001:db8:1:3::1"));
	g_assert_true(same_network("::ffff:192.0.2.7", "192.0.2.7"));
	g_assert_false(same_network("::ffff:192.0.2.7", "::ffff:192.0.2.8"));
	g_assert_false(same_network("192.0.2.7", "2001:db8::1"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/admission/networks", test_admission_networks);
	g_test_add_func("/admission/max-clients/made-up-session", test_admission_bogus_session);
	g_test_add_func("/admission/max-clients/reservations", test_admission_reservations);
	g_test_add_func("/admission/max-clients/comes-back", test_admission_comes_back);
	g_test_add_func("/admission/port-range/reservations", test_admission_reservations_range);
	g_test_add_func("/admission/session-table", test_admission_session_table);
	g_test_add_func("/admission/pending/full", test_admission_pending_full);
	g_test_add_func("/admission/pending/replace-order", test_admission_replace_order);
	g_test_add_func("/admission/pending/sweep", test_admission_sweep);
	return g_test_run();
}
