/* SPDX-License-Identifier: ISC */
#define _GNU_SOURCE /* memmem() */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pb-frame.h"
#include "pb-hello.h"
#include "pb-resume.h"
#include "pb-test-utils.h"
#include "pb-upgrade.h"
#include "pb-ws-frame.h"

/*
 * A hostile server against the real `piggyback forward`: a fake server in a thread of the
 * test takes the upgrade by hand and writes what a malicious server would (a HELLO with
 * escape sequences, one too deep for json-glib's recursion, a close reason that redraws
 * the terminal, 1500 OPENs). forward's stdout and stderr are kept byte for byte, since
 * the point is which bytes reach a terminal.
 */

#define TEST_HELLO "{\"publicHost\":\"127.0.0.1\",\"tunnelPort\":40000,\"version\":\"2.0.0\"}"

typedef struct {
	GSocket *listener; /* (owned) */
	guint16 port;
	GThread *thread; /* (owned) */
	/* what it does once the client has upgraded */
	GBytes *hello;	    /* (owned) HELLO's payload */
	gushort close_code; /* then closes with this, unless 0 */
	const char *close_reason;
	guint n_opens;		    /* or sends OPEN for connIds 1..n_opens, once told to */
	const guint8 *open_payload; /* (nullable) each OPEN's payload */
	gsize open_payload_len;
	int go; /* atomic: send the OPENs now */
	/* what it saw; atomic */
	int upgraded;
	int n_closes;	   /* CLOSE frames from the client */
	int client_closed; /* the client's close frame, or the end of the connection */
	int stop;
} FakeServer;

static void
fake_send_all(GSocket *socket, const void *data, gsize len)
{
	const char *p = data;

	while (len > 0) {
		g_autoptr(GError) error = NULL;
		gssize n = g_socket_send(socket, p, len, NULL, &error);

		if (n <= 0)
			return; /* the client went away: what it saw is what counts */
		p += n;
		len -= (gsize)n;
	}
}

/* A server's WebSocket frame: FIN, @opcode, not masked. */
static void
fake_send_frame(GSocket *socket, guint8 opcode, const void *payload, gsize len)
{
	guint8 header[10];
	gsize n = 0;

	header[n++] = 0x80 | opcode;
	if (len < 126) {
		header[n++] = (guint8)len;
	} else if (len < 65536) {
		header[n++] = 126;
		header[n++] = (guint8)(len >> 8);
		header[n++] = (guint8)len;
	} else {
		header[n++] = 127;
		for (int i = 7; i >= 0; i--)
			header[n++] = (guint8)((guint64)len >> (8 * i));
	}
	fake_send_all(socket, header, n);
	fake_send_all(socket, payload, len);
}

static void
fake_send_piggyback(GSocket *socket, guint8 type, guint32 id, const void *payload, gsize len)
{
	g_autoptr(GBytes) frame = pb_frame_new(type, id, payload, len);

	fake_send_frame(socket, 0x2, g_bytes_get_data(frame, NULL), g_bytes_get_size(frame));
}

/* Reads the upgrade request and answers 101; FALSE if there was none. @request_out
 * (nullable): the request's text. */
static gboolean
fake_upgrade(GSocket *socket, char **request_out)
{
	char request[4096];
	gsize got = 0;
	const char *key;
	g_autofree char *key_value = NULL;
	g_autofree char *accept = NULL;
	g_autofree char *response = NULL;

	while (g_strstr_len(request, got, "\r\n\r\n") == NULL) {
		gssize n;

		if (got >= sizeof request - 1)
			return FALSE;
		n = g_socket_receive(socket, request + got, sizeof request - 1 - got, NULL, NULL);
		if (n <= 0)
			return FALSE;
		got += (gsize)n;
		request[got] = '\0';
	}
	key = strstr(request, "Sec-WebSocket-Key: ");
	if (key == NULL)
		return FALSE;
	key += strlen("Sec-WebSocket-Key: ");
	key_value = g_strndup(key, strcspn(key, "\r\n"));
	accept = pb_upgrade_expected_accept(key_value);
	response = g_strdup_printf("HTTP/1.1 101 Switching Protocols\r\n"
				   "Upgrade: websocket\r\n"
				   "Connection: Upgrade\r\n"
				   "Sec-WebSocket-Accept: %s\r\n\r\n",
				   accept);
	fake_send_all(socket, response, strlen(response));
	if (request_out != NULL)
		*request_out = g_strdup(request);
	return TRUE;
}

/* Reads the client's frames (masked) until it closes or the test stops: counts its CLOSE
 * frames, answers pings and the close handshake. */
static void
fake_read_client(FakeServer *fake, GSocket *socket)
{
	g_autoptr(GByteArray) in = g_byte_array_new();
	guint8 buf[16384];

	while (!g_atomic_int_get(&fake->stop)) {
		g_autoptr(GError) error = NULL;
		gssize n = g_socket_receive(socket, (char *)buf, sizeof buf, NULL, &error);

		if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
			continue;
		if (n <= 0)
			break;
		g_byte_array_append(in, buf, (guint)n);
		for (;;) {
			guint8 *p = in->data;
			gsize header = 2;
			guint64 len;
			guint8 opcode;

			if (in->len < 2)
				break;
			len = p[1] & 0x7f;
			if (len == 126)
				header += 2;
			else if (len == 127)
				header += 8;
			if (in->len < header + 4)
				break;
			if (len == 126)
				len = (guint64)p[2] << 8 | p[3];
			else if (len == 127)
				for (int i = 0; i < 8; i++)
					len = len << 8 | p[2 + i];
			if (in->len < header + 4 + len)
				break;
			opcode = p[0] & 0x0f;
			for (guint64 i = 0; i < len; i++)
				p[header + 4 + i] ^= p[header + (i & 3)];
			p += header + 4;
			if (opcode == 0x2 && len >= PB_FRAME_HEADER_SIZE && p[0] == PB_FRAME_CLOSE)
				g_atomic_int_inc(&fake->n_closes);
			else if (opcode == 0x9)
				fake_send_frame(socket, 0xa, p, len);
			else if (opcode == 0x8) {
				fake_send_frame(socket, 0x8, p, MIN(len, 2));
				g_atomic_int_set(&fake->client_closed, 1);
				return;
			}
			g_byte_array_remove_range(in, 0, (guint)(header + 4 + len));
		}
	}
	g_atomic_int_set(&fake->client_closed, 1);
}

static gpointer
fake_server_cb(gpointer user_data)
{
	FakeServer *fake = user_data;
	g_autoptr(GSocket) socket = NULL;

	while (socket == NULL && !g_atomic_int_get(&fake->stop)) {
		if (g_socket_condition_timed_wait(fake->listener, G_IO_IN, 100000, NULL, NULL))
			socket = g_socket_accept(fake->listener, NULL, NULL);
	}
	if (socket == NULL)
		return NULL;
	g_socket_set_blocking(socket, TRUE);
	g_socket_set_timeout(socket, 1);
	if (!fake_upgrade(socket, NULL))
		return NULL;
	g_atomic_int_set(&fake->upgraded, 1);
	fake_send_piggyback(socket, PB_FRAME_HELLO, PB_CONTROL_ID,
			    g_bytes_get_data(fake->hello, NULL), g_bytes_get_size(fake->hello));
	if (fake->close_code != 0) {
		g_autoptr(GByteArray) close = g_byte_array_new();
		guint8 code[] = {fake->close_code >> 8, fake->close_code & 0xff};

		g_byte_array_append(close, code, sizeof code);
		g_byte_array_append(close, (const guint8 *)fake->close_reason,
				    (guint)strlen(fake->close_reason));
		fake_send_frame(socket, 0x8, close->data, close->len);
	}
	while (fake->n_opens > 0 && !g_atomic_int_get(&fake->go) && !g_atomic_int_get(&fake->stop))
		g_usleep(10000);
	if (fake->n_opens > 0) {
		g_autoptr(GByteArray) opens = g_byte_array_new();

		/* all at once, as one flood */
		for (guint32 id = 1; id <= fake->n_opens; id++) {
			guint8 frame[] = {0x82,
					  (guint8)(PB_FRAME_HEADER_SIZE + fake->open_payload_len),
					  PB_FRAME_OPEN,
					  id >> 24,
					  id >> 16,
					  id >> 8,
					  id};

			g_byte_array_append(opens, frame, sizeof frame);
			if (fake->open_payload != NULL)
				g_byte_array_append(opens, fake->open_payload,
						    (guint)fake->open_payload_len);
		}
		fake_send_all(socket, opens->data, opens->len);
	}
	fake_read_client(fake, socket);
	return NULL;
}

static FakeServer *
fake_server_new(const char *hello, gsize hello_len)
{
	FakeServer *fake = g_new0(FakeServer, 1);
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;

	fake->hello = g_bytes_new(hello, hello_len);
	fake->listener =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	g_assert_no_error(error);
	g_socket_bind(fake->listener, address, TRUE, &error);
	g_assert_no_error(error);
	g_socket_listen(fake->listener, &error);
	g_assert_no_error(error);
	g_socket_set_blocking(fake->listener, FALSE);
	bound = g_socket_get_local_address(fake->listener, &error);
	g_assert_no_error(error);
	fake->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	return fake;
}

static void
fake_server_start(FakeServer *fake)
{
	fake->thread = g_thread_new("fake-server", fake_server_cb, fake);
}

static void
fake_server_free(FakeServer *fake)
{
	g_atomic_int_set(&fake->stop, 1);
	if (fake->thread != NULL)
		g_thread_join(fake->thread);
	g_object_unref(fake->listener);
	g_bytes_unref(fake->hello);
	g_free(fake);
}

/* --- `piggyback forward`, its output kept as bytes --- */

typedef struct {
	GSubprocess *process; /* (owned) */
	char *output_path;    /* (owned) stdout and stderr, both */
	gboolean exited;
} Forward;

static void
forward_exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	((Forward *)user_data)->exited = TRUE;
}

/* `piggyback forward -p @local_port -s 127.0.0.1:@server_port`, then the arguments given,
 * with plain logs and no D-Bus. */
static Forward *
forward_spawn(guint16 server_port, guint16 local_port, ...)
{
	Forward *forward = g_new0(Forward, 1);
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	const char *wrapper = g_getenv("PB_TEST_WRAPPER");
	int fd;
	va_list args;

	fd = g_file_open_tmp("pb-forward-XXXXXX", &forward->output_path, &error);
	g_assert_no_error(error);
	close(fd);
	g_subprocess_launcher_set_stdout_file_path(launcher, forward->output_path);
	if (wrapper != NULL) { /* under `meson test --setup valgrind` */
		g_auto(GStrv) words = g_strsplit(wrapper, " ", -1);

		for (guint i = 0; words[i] != NULL; i++)
			g_ptr_array_add(argv, g_strdup(words[i]));
	}
	g_ptr_array_add(argv, g_strdup(g_getenv("PB_PIGGYBACK")));
	g_ptr_array_add(argv, g_strdup("forward"));
	g_ptr_array_add(argv, g_strdup_printf("--server=127.0.0.1:%u", server_port));
	g_ptr_array_add(argv, g_strdup_printf("--port=%u", local_port));
	g_ptr_array_add(argv, g_strdup("--host=127.0.0.1"));
	g_ptr_array_add(argv, g_strdup("--log=plain"));
	g_ptr_array_add(argv, g_strdup("--no-dbus"));
	va_start(args, local_port);
	for (const char *arg = va_arg(args, const char *); arg != NULL;
	     arg = va_arg(args, const char *))
		g_ptr_array_add(argv, g_strdup(arg));
	va_end(args);
	g_ptr_array_add(argv, NULL);
	forward->process =
	    g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_subprocess_wait_async(forward->process, NULL, forward_exited_cb, forward);
	return forward;
}

/* Everything forward wrote so far, as bytes (nul-terminated for convenience). */
static char *
forward_output(Forward *forward, gsize *len)
{
	g_autoptr(GError) error = NULL;
	char *contents = NULL;

	g_file_get_contents(forward->output_path, &contents, len, &error);
	g_assert_no_error(error);
	return contents;
}

static gboolean
forward_said(Forward *forward, const char *needle)
{
	gsize len = 0;
	g_autofree char *output = forward_output(forward, &len);

	return memmem(output, len, needle, strlen(needle)) != NULL;
}

/* No byte below 0x20 but newlines, no DEL, and valid UTF-8: nothing a terminal obeys. */
static void
assert_output_inert(Forward *forward)
{
	gsize len = 0;
	g_autofree char *output = forward_output(forward, &len);

	g_test_message("forward said:\n%s", output);
	for (gsize i = 0; i < len; i++) {
		if (((guint8)output[i] < 0x20 && output[i] != '\n') || output[i] == 0x7f)
			g_error("byte 0x%02x at offset %" G_GSIZE_FORMAT " of forward's output",
				(guint8)output[i], i);
	}
	g_assert_true(g_utf8_validate(output, (gssize)len, NULL));
}

/* Waits up to @seconds for forward to exit by itself; returns its exit status, failing the
 * test if a signal ended it (a crash). */
static int
forward_wait_exit(Forward *forward, int seconds)
{
	pb_test_wait_until(forward->exited, seconds);
	if (g_subprocess_get_if_signaled(forward->process))
		g_error("forward was killed by signal %d",
			g_subprocess_get_term_sig(forward->process));
	return g_subprocess_get_exit_status(forward->process);
}

/* SIGTERM (if it still runs), its exit status, and frees it. */
static int
forward_finish(Forward *forward)
{
	int status;

	if (!forward->exited)
		g_subprocess_send_signal(forward->process, SIGTERM);
	pb_test_wait_until(forward->exited, 10);
	status = g_subprocess_get_if_signaled(forward->process)
		     ? 128 + g_subprocess_get_term_sig(forward->process)
		     : g_subprocess_get_exit_status(forward->process);
	g_unlink(forward->output_path);
	g_free(forward->output_path);
	g_object_unref(forward->process);
	g_free(forward);
	return status;
}

/* --- the local service: accepts and holds every connection, and counts them --- */

typedef struct {
	GSocket *listener;   /* (owned) */
	GPtrArray *accepted; /* (owned) GSocket, touched by the thread only until it ends */
	GThread *thread;     /* (owned) */
	guint16 port;
	int n_accepted; /* atomic */
	int stop;	/* atomic */
} Holder;

static gpointer
holder_cb(gpointer user_data)
{
	Holder *holder = user_data;

	while (!g_atomic_int_get(&holder->stop)) {
		GSocket *socket;

		if (!g_socket_condition_timed_wait(holder->listener, G_IO_IN, 50000, NULL, NULL))
			continue;
		while ((socket = g_socket_accept(holder->listener, NULL, NULL)) != NULL) {
			g_ptr_array_add(holder->accepted, socket);
			g_atomic_int_inc(&holder->n_accepted);
		}
	}
	return NULL;
}

static Holder *
holder_new(void)
{
	Holder *holder = g_new0(Holder, 1);
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;

	holder->listener =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	g_assert_no_error(error);
	g_socket_bind(holder->listener, address, TRUE, &error);
	g_assert_no_error(error);
	g_socket_set_listen_backlog(holder->listener, 4096);
	g_socket_listen(holder->listener, &error);
	g_assert_no_error(error);
	g_socket_set_blocking(holder->listener, FALSE);
	bound = g_socket_get_local_address(holder->listener, &error);
	g_assert_no_error(error);
	holder->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	holder->accepted = g_ptr_array_new_with_free_func(g_object_unref);
	holder->thread = g_thread_new("holder", holder_cb, holder);
	return holder;
}

static void
holder_free(Holder *holder)
{
	g_atomic_int_set(&holder->stop, 1);
	g_thread_join(holder->thread);
	g_ptr_array_unref(holder->accepted);
	g_object_unref(holder->listener);
	g_free(holder);
}

/* --- the tests --- */

/* A HELLO from @hello; forward exits by itself, with status 1, inert output that says
 * @reason. */
static void
assert_hello_refused(const char *hello, gsize len, const char *reason)
{
	FakeServer *fake = fake_server_new(hello, len);
	Forward *forward;
	int status;

	fake_server_start(fake);
	forward = forward_spawn(fake->port, pb_test_free_port(), NULL);
	status = forward_wait_exit(forward, 20);
	g_assert_cmpint(status, ==, 1);
	g_assert_true(g_atomic_int_get(&fake->upgraded));
	assert_output_inert(forward);
	g_assert_true(forward_said(forward, "the server broke the protocol"));
	g_assert_true(forward_said(forward, reason));
	g_assert_false(forward_said(forward, "Access URL"));
	g_assert_cmpint(forward_finish(forward), ==, 1);
	fake_server_free(fake);
}

static void
test_public_host_escapes(void)
{
	const char hello[] = "{\"publicHost\":\"\\u001b]0;pwned\\u0007\\u001b[2J\\u001b[H"
			     "tunnel.example.com\",\"tunnelPort\":40000}";

	g_test_summary("A HELLO whose publicHost carries escape sequences (set the title, clear "
		       "the screen): refused, forward exits 1 saying why, and not one control "
		       "byte reaches its output");
	assert_hello_refused(hello, strlen(hello), "is not a host name or an IP address");
}

static void
test_close_reason_escapes(void)
{
	FakeServer *fake = fake_server_new(TEST_HELLO, strlen(TEST_HELLO));
	Forward *forward;

	g_test_summary("A close reason with ESC, BEL and CR (a new title, a cleared screen, a "
		       "fake URL over the line): printed escaped, so the output has no control "
		       "byte but newlines");
	fake->close_code = 1008; /* policy violation */
	fake->close_reason = "\x1b]0;pwned\x07\x1b[2J\rAccess URL: tcp://evil.example:1\xc2\x9b"
			     "31m";
	fake_server_start(fake);
	forward = forward_spawn(fake->port, pb_test_free_port(), "--no-reconnect", NULL);
	g_assert_cmpint(forward_wait_exit(forward, 20), ==, 1);
	assert_output_inert(forward);
	g_assert_true(forward_said(forward, "\\x1b]0;pwned\\x07\\x1b[2J\\x0dAccess URL"));
	g_assert_true(forward_said(forward, "\\u009b31m (1008)"));
	g_assert_cmpint(forward_finish(forward), ==, 1);
	fake_server_free(fake);
}

#define SERVICES_HELLO                                                                             \
	"{\"publicHost\":\"127.0.0.1\",\"tunnelPort\":40000,\"features\":[\"services\"],"          \
	"\"services\":[{\"tunnelPort\":40001}]}"

static void
test_services_unknown_index(void)
{
	static const guint8 indexes[][4] = {{0, 0, 0, 7}, {0xff, 0xff, 0xff, 0xff}};

	g_test_summary("OPENs for services the client does not have (index 7, 2^32-1): each "
		       "answered with CLOSE, no local connection, the tunnel stays up");
	for (gsize i = 0; i < G_N_ELEMENTS(indexes); i++) {
		FakeServer *fake = fake_server_new(SERVICES_HELLO, strlen(SERVICES_HELLO));
		Holder *holder = holder_new();
		g_autofree char *expose = g_strdup_printf("127.0.0.1:%u", holder->port);
		Forward *forward;

		fake->n_opens = 3;
		fake->open_payload = indexes[i];
		fake->open_payload_len = 4;
		fake_server_start(fake);
		forward = forward_spawn(fake->port, holder->port, "--expose", expose, NULL);
		pb_test_wait_until(forward_said(forward, "Access URL (127.0.0.1:"), 10);
		g_atomic_int_set(&fake->go, 1);
		pb_test_wait_until(g_atomic_int_get(&fake->n_closes) == 3, 10);
		g_assert_cmpint(g_atomic_int_get(&holder->n_accepted), ==, 0);
		g_assert_false(g_atomic_int_get(&fake->client_closed));
		assert_output_inert(forward);
		g_assert_cmpint(forward_finish(forward), ==, 0);
		fake_server_free(fake);
		holder_free(holder);
	}
}

static void
test_services_bad_open(void)
{
	static const guint8 three[] = {0, 0, 1};
	FakeServer *fake = fake_server_new(SERVICES_HELLO, strlen(SERVICES_HELLO));
	Holder *holder = holder_new();
	g_autofree char *expose = g_strdup_printf("127.0.0.1:%u", holder->port);
	Forward *forward;

	g_test_summary("With services, an OPEN whose payload is not a 4-byte index is a protocol "
		       "error: the client closes the tunnel");
	fake->n_opens = 1;
	fake->open_payload = three;
	fake->open_payload_len = sizeof three;
	fake_server_start(fake);
	forward = forward_spawn(fake->port, holder->port, "--expose", expose, NULL);
	pb_test_wait_until(forward_said(forward, "Access URL (127.0.0.1:"), 10);
	g_atomic_int_set(&fake->go, 1);
	pb_test_wait_until(g_atomic_int_get(&fake->client_closed), 10);
	g_assert_cmpint(g_atomic_int_get(&holder->n_accepted), ==, 0);
	assert_output_inert(forward);
	forward_finish(forward);
	fake_server_free(fake);
	holder_free(holder);
}

static void
test_services_refused(void)
{
	const char *const hellos[] = {
	    /* PiggyBack 1.1, or --features none */
	    TEST_HELLO,
	    /* the feature, and no place for the service asked for */
	    "{\"publicHost\":\"127.0.0.1\",\"tunnelPort\":40000,\"features\":[\"services\"]}",
	    /* two places for one service */
	    "{\"publicHost\":\"127.0.0.1\",\"tunnelPort\":40000,\"features\":[\"services\"],"
	    "\"services\":[{\"tunnelPort\":1},{\"tunnelPort\":2}]}",
	    /* a place without a port or a name */
	    "{\"publicHost\":\"127.0.0.1\",\"tunnelPort\":40000,\"features\":[\"services\"],"
	    "\"services\":[{\"tunnelPort\":0}]}",
	};
	const char *const reasons[] = {
	    "takes one service per client",
	    "HELLO lists 0 further services, not the 1 asked for",
	    "HELLO lists 2 further services, not the 1 asked for",
	    "HELLO's service 1 has no valid tunnelPort or name",
	};

	g_test_summary("A client with several services against a server that takes one (1.1), or "
		       "whose HELLO does not place each of them: forward exits 1 saying why");
	for (gsize i = 0; i < G_N_ELEMENTS(hellos); i++) {
		FakeServer *fake = fake_server_new(hellos[i], strlen(hellos[i]));
		Forward *forward;

		fake_server_start(fake);
		forward =
		    forward_spawn(fake->port, pb_test_free_port(), "--expose", "db=5432", NULL);
		g_assert_cmpint(forward_wait_exit(forward, 20), ==, 1);
		assert_output_inert(forward);
		g_assert_true(forward_said(forward, reasons[i]));
		g_assert_false(forward_said(forward, "Access URL"));
		g_assert_cmpint(forward_finish(forward), ==, 1);
		fake_server_free(fake);
	}
}

static void
test_hello_huge(void)
{
	gsize len = 1000 * 1000;
	g_autofree char *hello = g_malloc(len);

	g_test_summary("A HELLO of 1 000 000 '[' (json-glib's recursive parser overflowed the "
		       "stack: SIGSEGV, exit 139): refused unparsed, forward exits 1 saying why");
	memset(hello, '[', len);
	assert_hello_refused(hello, len, "HELLO has 1000000 bytes, more than 65536");
}

static void
test_hello_over_size(void)
{
	const char start[] = "{\"publicHost\":\"127.0.0.1\",\"tunnelPort\":40000,\"pad\":\"";
	gsize len = PB_HELLO_MAX_SIZE + 1;
	g_autofree char *hello = g_malloc(len);

	g_test_summary("A valid HELLO one byte over 64 KiB: refused");
	memset(hello, 'x', len);
	memcpy(hello, start, strlen(start));
	memcpy(hello + len - 2, "\"}", 2);
	assert_hello_refused(hello, len, "HELLO has 65537 bytes, more than 65536");
}

static void
test_hello_too_deep(void)
{
	g_autoptr(GString) hello =
	    g_string_new("{\"publicHost\":\"127.0.0.1\",\"tunnelPort\":40000,\"x\":");

	g_test_summary("A small valid HELLO that nests 33 levels deep: refused");
	for (guint i = 0; i < PB_HELLO_MAX_DEPTH; i++)
		g_string_append_c(hello, '[');
	for (guint i = 0; i < PB_HELLO_MAX_DEPTH; i++)
		g_string_append_c(hello, ']');
	g_string_append_c(hello, '}');
	assert_hello_refused(hello->str, hello->len, "HELLO nests deeper than 32 levels");
}

static guint
count_occurrences(const char *haystack, const char *needle)
{
	guint n = 0;

	for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void
test_max_connections(void)
{
	FakeServer *fake = fake_server_new(TEST_HELLO, strlen(TEST_HELLO));
	Holder *holder = holder_new();
	g_autofree char *output = NULL;
	Forward *forward;
	guint fds_before;
	guint fds_after;

	g_test_summary("1500 OPENs from the server to forward --max-connections 100: at most 100 "
		       "connections reach the local service, the other 1400 get CLOSE at once, "
		       "the log says so in a line or two (not 1400), and SIGTERM still ends "
		       "forward with status 0");
	fake->n_opens = 1500;
	fake_server_start(fake);
	forward = forward_spawn(fake->port, holder->port, "--max-connections=100", NULL);
	pb_test_wait_until(forward_said(forward, "Access URL:"), 10);
	fds_before = pb_test_count_fds(forward->process);
	g_atomic_int_set(&fake->go, 1);
	pb_test_wait_until(g_atomic_int_get(&fake->n_closes) >= 1400 &&
			       g_atomic_int_get(&holder->n_accepted) >= 100,
			   30);
	pb_test_settle();
	fds_after = pb_test_count_fds(forward->process);
	g_test_message("local connections: %d, CLOSE frames: %d, forward's fds: %u -> %u",
		       g_atomic_int_get(&holder->n_accepted), g_atomic_int_get(&fake->n_closes),
		       fds_before, fds_after);
	g_assert_cmpint(g_atomic_int_get(&holder->n_accepted), ==, 100);
	g_assert_cmpint(g_atomic_int_get(&fake->n_closes), ==, 1400);
	g_assert_cmpuint(fds_after, <=, fds_before + 100 + 2);
	g_assert_false(forward->exited);
	output = forward_output(forward, NULL);
	g_assert_cmpuint(count_occurrences(output, "refused: 100 are open (--max-connections)"), >=,
			 1);
	g_assert_cmpuint(count_occurrences(output, "refused: 100 are open (--max-connections)"), <=,
			 2);
	g_assert_cmpint(forward_finish(forward), ==, 0);
	fake_server_free(fake);
	holder_free(holder);
}

static void
test_max_connections_bad(void)
{
	const char *const bad[] = {"0", "-1", "many"};

	g_test_summary("forward --max-connections 0, -1 or a word: usage error, status 2");
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *option = g_strdup_printf("--max-connections=%s", bad[i]);
		Forward *forward = forward_spawn(1, 1, option, NULL);

		g_assert_cmpint(forward_wait_exit(forward, 10), ==, 2);
		g_assert_true(forward_said(forward, "--max-connections"));
		g_assert_cmpint(forward_finish(forward), ==, 2);
	}
}

/* The status line serve answers an upgrade request with @host in its Host header. */
static gpointer
upgrade_with_host_cb(gpointer user_data)
{
	const char *const *job = user_data; /* port, host */
	g_autoptr(GSocket) socket = pb_test_connect((guint16)g_ascii_strtoull(job[0], NULL, 10));
	g_autofree char *request = g_strdup_printf("GET " PB_WS_PATH " HTTP/1.1\r\n"
						   "Host: %s\r\n"
						   "Upgrade: websocket\r\n"
						   "Connection: Upgrade\r\n"
						   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
						   "Sec-WebSocket-Version: 13\r\n\r\n",
						   job[1]);
	char response[256] = "";

	g_socket_send(socket, request, strlen(request), NULL, NULL);
	g_socket_receive(socket, response, sizeof response - 1, NULL, NULL);
	return g_strndup(response, strcspn(response, "\r"));
}

static void
test_serve_bad_host(void)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	PbTestProc *server;
	PbTestProc *refused;
	g_autofree char *port = NULL;
	const char *hosts[][2] = {{"evil example.com", "HTTP/1.1 400 Bad Host header"},
				  {"\x1b]0;pwned\x07", "HTTP/1.1 400 Bad Host header"},
				  {"tunnel.example.com:80", "HTTP/1.1 101 Switching Protocols"}};

	g_test_summary("The server side: serve refuses an upgrade whose Host header names no "
		       "host (a HELLO a client would refuse), and a --public-host that is none");
	refused = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p", "0",
				     "--public-host", "\x1b]0;x", NULL);
	pb_test_proc_wait_exit(refused);
	g_assert_true(pb_test_proc_said(refused, "--public-host must be a host name"));
	g_assert_cmpint(pb_test_proc_finish(refused), ==, 2);
	server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p", "0", "-l",
				    "127.0.0.1", "-H", "127.0.0.1", NULL);
	port = g_strdup_printf("%u", pb_test_proc_wait_port(server, "Listening on"));
	for (gsize i = 0; i < G_N_ELEMENTS(hosts); i++) {
		const char *job[] = {port, hosts[i][0]};
		g_autofree char *status = pb_test_run_in_thread(upgrade_with_host_cb, job, 10);

		g_assert_cmpstr(status, ==, hosts[i][1]);
	}
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

/* --- `resume`: a server that lies about what it received --- */

#define RESUME_SESSION "0123456789abcdef0123456789abcdef"
#define RESUME_HELLO                                                                               \
	"{\"publicHost\":\"127.0.0.1\",\"tunnelPort\":40000,\"version\":\"2.0.0\","                \
	"\"features\":[\"flow\",\"eof\",\"resume\"],\"window\":65536,\"grace\":30,"                \
	"\"session\":\"" RESUME_SESSION "\"}"

/* A server the test plays step by step, on forward's WebSocket of the moment. Every wait
 * runs the main context (the echo service accepts through it) and fails the test after
 * 10 s (20 s for forward to dial again). */
typedef struct {
	GSocket *listener; /* (owned) */
	guint16 port;
	GSocket *ws;	/* (owned) (nullable) forward's WebSocket of the moment */
	GByteArray *in; /* (owned) what came on it, not parsed yet */
	int close_code; /* forward's close frame's code, 0 for none; -1 while open */
} ResumeServer;

static ResumeServer *
resume_server_new(void)
{
	ResumeServer *rs = g_new0(ResumeServer, 1);
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;

	rs->listener =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	g_assert_no_error(error);
	g_socket_bind(rs->listener, address, TRUE, &error);
	g_assert_no_error(error);
	g_socket_listen(rs->listener, &error);
	g_assert_no_error(error);
	g_socket_set_blocking(rs->listener, FALSE);
	bound = g_socket_get_local_address(rs->listener, &error);
	g_assert_no_error(error);
	rs->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	rs->in = g_byte_array_new();
	rs->close_code = -1;
	return rs;
}

static void
resume_server_free(ResumeServer *rs)
{
	g_clear_object(&rs->ws);
	g_object_unref(rs->listener);
	g_byte_array_unref(rs->in);
	g_free(rs);
}

/* Waits for forward to dial, takes its upgrade; returns the request. */
static char *
resume_server_accept(ResumeServer *rs)
{
	gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
	char *request = NULL;

	g_clear_object(&rs->ws);
	g_byte_array_set_size(rs->in, 0);
	rs->close_code = -1;
	while (rs->ws == NULL) {
		if (g_get_monotonic_time() > deadline)
			g_error("forward did not dial within 20 s");
		g_main_context_iteration(NULL, FALSE);
		if (g_socket_condition_timed_wait(rs->listener, G_IO_IN, 20 * 1000, NULL, NULL))
			rs->ws = g_socket_accept(rs->listener, NULL, NULL);
	}
	g_socket_set_blocking(rs->ws, TRUE);
	g_socket_set_timeout(rs->ws, 10);
	g_assert_true(fake_upgrade(rs->ws, &request));
	return request;
}

/* The next WebSocket frame from forward (masked, as RFC 6455 wants of a client), unmasked;
 * FALSE at the end of the connection. */
static gboolean
resume_server_read(ResumeServer *rs, guint8 *opcode, GBytes **payload)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	for (;;) {
		PbWsFrameHeader header;
		guint8 chunk[16384];
		g_autoptr(GError) error = NULL;
		gssize n;

		if (pb_ws_frame_header_parse(rs->in->data, rs->in->len, &header) &&
		    rs->in->len >= header.header_len + header.payload_len) {
			guint8 *data = rs->in->data + header.header_len;

			g_assert_true(header.masked);
			pb_ws_frame_unmask(data, header.payload_len, header.mask, 0);
			*opcode = header.opcode;
			*payload = g_bytes_new(data, header.payload_len);
			g_byte_array_remove_range(rs->in, 0,
						  (guint)(header.header_len + header.payload_len));
			return TRUE;
		}
		if (g_get_monotonic_time() > deadline)
			g_error("nothing came from forward for 10 s");
		g_main_context_iteration(NULL, FALSE);
		if (!g_socket_condition_timed_wait(rs->ws, G_IO_IN, 20 * 1000, NULL, NULL))
			continue;
		n = g_socket_receive_with_blocking(rs->ws, (char *)chunk, sizeof chunk, FALSE, NULL,
						   &error);
		if (n == 0 ||
		    (n < 0 && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)))
			return FALSE;
		if (n > 0)
			g_byte_array_append(rs->in, chunk, (guint)n);
	}
}

/* The next PiggyBack frame from forward, pings answered on the way; FALSE once forward
 * ended the WebSocket (close_code says how). @frame points into *@message. */
static gboolean
resume_server_next(ResumeServer *rs, GBytes **message, PbFrame *frame)
{
	for (;;) {
		g_autoptr(GBytes) payload = NULL;
		guint8 opcode = 0;
		gsize len = 0;
		const guint8 *data;

		if (!resume_server_read(rs, &opcode, &payload)) {
			rs->close_code = MAX(rs->close_code, 0);
			return FALSE;
		}
		data = g_bytes_get_data(payload, &len);
		if (opcode == 0x9) {
			fake_send_frame(rs->ws, 0xa, data, len);
			continue;
		}
		if (opcode == 0x8) {
			rs->close_code = len >= 2 ? data[0] << 8 | data[1] : 0;
			fake_send_frame(rs->ws, 0x8, data, MIN(len, 2));
			return FALSE;
		}
		g_assert_cmpuint(opcode, ==, 0x2);
		g_assert_true(pb_frame_parse(payload, frame, NULL));
		*message = g_steal_pointer(&payload);
		return TRUE;
	}
}

/* Reads until forward sends frame @type for @id (others are skipped); returns its payload. */
static GBytes *
resume_server_expect(ResumeServer *rs, guint8 type, guint32 id)
{
	for (;;) {
		g_autoptr(GBytes) message = NULL;
		PbFrame frame;

		if (!resume_server_next(rs, &message, &frame))
			g_error("forward closed the WebSocket (code %d) instead of sending frame "
				"0x%02x for connId %u",
				rs->close_code, type, id);
		if (frame.type == type && frame.conn_id == id)
			return g_bytes_new(frame.payload, frame.payload_len);
		g_test_message("skipped frame 0x%02x for connId %u", frame.type, frame.conn_id);
	}
}

/* Reads until forward ends the WebSocket; returns its close code (0: none). */
static int
resume_server_wait_closed(ResumeServer *rs)
{
	for (;;) {
		g_autoptr(GBytes) message = NULL;
		PbFrame frame;

		if (!resume_server_next(rs, &message, &frame))
			return rs->close_code;
	}
}

static void
resume_server_send(ResumeServer *rs, guint8 type, guint32 id, const void *payload, gsize len)
{
	fake_send_piggyback(rs->ws, type, id, payload, len);
}

/* Sends DATA @text on @id and checks that the echo service's answer comes back whole. */
static void
resume_server_round_trip(ResumeServer *rs, guint32 id, const char *text)
{
	g_autoptr(GString) echoed = g_string_new(NULL);

	resume_server_send(rs, PB_FRAME_DATA, id, text, strlen(text));
	while (echoed->len < strlen(text)) {
		g_autoptr(GBytes) data = resume_server_expect(rs, PB_FRAME_DATA, id);

		g_string_append_len(echoed, g_bytes_get_data(data, NULL),
				    (gssize)g_bytes_get_size(data));
	}
	g_assert_cmpstr(echoed->str, ==, text);
}

/* The WebSocket ends with a reset, no close frame: lost, not closed. */
static void
resume_server_drop(ResumeServer *rs)
{
	struct linger reset = {.l_onoff = 1, .l_linger = 0};

	g_assert_cmpint(
	    setsockopt(g_socket_get_fd(rs->ws), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), ==,
	    0);
	g_socket_close(rs->ws, NULL);
	g_clear_object(&rs->ws);
}

/* The value of header @name in @request (nullable). */
static char *
request_header(const char *request, const char *name)
{
	g_autofree char *needle = g_strdup_printf("\r\n%s: ", name);
	const char *start = strstr(request, needle);

	if (start == NULL)
		return NULL;
	start += strlen(needle);
	return g_strndup(start, strcspn(start, "\r\n"));
}

/* Whether forward asks for `flow`, `eof` and `resume` in @request. */
static gboolean
request_asks_resume(const char *request)
{
	g_autofree char *features = request_header(request, PB_FEATURES_HEADER);

	g_test_message("forward asks for: %s", features);
	return features != NULL &&
	       (pb_features_parse(features) & PB_FEATURES_ALL) == PB_FEATURES_ALL;
}

static void
assert_bytes_equal(GBytes *bytes, const guint8 *expected, gsize len)
{
	g_assert_cmpmem(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), expected, len);
}

typedef enum {
	RESUME_GOES_ON,	      /* honest: connection 1 carries on */
	RESUME_CONN_CLOSED,   /* forward sends CLOSE for connection 1 and ends its local one */
	RESUME_CONN_DROPPED,  /* forward ends its local connection (it was not listed) */
	RESUME_TUNNEL_CLOSED, /* forward closes the WebSocket with 1002 */
} ResumeOutcome;

typedef struct {
	const char *path;
	const char *summary;
	gboolean confirm; /* before the loss, a WINDOW confirms the 5 bytes forward sent */
	guint32 resume_id;
	guint n_entries;
	struct {
		guint32 id;
		guint64 received;
		guint32 credit;
		guint8 flags;
	} entries[2];
	gsize cut;	       /* bytes taken off the end of the RESUME */
	gboolean twice;	       /* the RESUME is sent twice */
	const char *resent;    /* (nullable) what forward sends again on connection 1 */
	gboolean window_lie;   /* once it goes on: a WINDOW with the count below */
	guint64 window_count;  /* forward has sent 10 bytes by then, 5 confirmed */
	ResumeOutcome outcome; /* after the RESUME, or after the lying WINDOW */
} ResumeLie;

#define RESUME_W 65536
#define RESUME_ENTRY(r, c)                                                                         \
	{                                                                                          \
		{                                                                                  \
			1, (r), (c), 0                                                             \
		}                                                                                  \
	}

static const ResumeLie resume_lies[] = {
    {"/hostile-forward/resume/honest",
     "Control: a true RESUME (all 5 bytes received, a window of credit); the connection "
     "carries on, a WINDOW that confirms what was sent is taken",
     FALSE, 0, 1, RESUME_ENTRY(5, RESUME_W), 0, FALSE, NULL, TRUE, 10, RESUME_GOES_ON},
    {"/hostile-forward/resume/resend",
     "Control: a RESUME that received 2 of the 5 bytes: forward sends the other 3 again, "
     "exactly, and the connection carries on",
     FALSE, 0, 1, RESUME_ENTRY(2, RESUME_W), 0, FALSE, "llo", FALSE, 0, RESUME_GOES_ON},
    {"/hostile-forward/resume/more-than-sent",
     "RESUME says the server received 6 bytes of the 5 sent: forward sends CLOSE for that "
     "connection and closes its local one; the tunnel stays up",
     FALSE, 0, 1, RESUME_ENTRY(6, RESUME_W), 0, FALSE, NULL, FALSE, 0, RESUME_CONN_CLOSED},
    {"/hostile-forward/resume/less-than-confirmed",
     "RESUME says the server received 3 bytes after a WINDOW confirmed 5: CLOSE for that "
     "connection, the tunnel stays up",
     TRUE, 0, 1, RESUME_ENTRY(3, RESUME_W), 0, FALSE, NULL, FALSE, 0, RESUME_CONN_CLOSED},
    {"/hostile-forward/resume/credit-short",
     "RESUME says the server received 2 bytes and gives 1 of credit, less than the 5 "
     "forward sent: CLOSE for that connection, the tunnel stays up",
     FALSE, 0, 1, RESUME_ENTRY(2, 1), 0, FALSE, NULL, FALSE, 0, RESUME_CONN_CLOSED},
    {"/hostile-forward/resume/eof-never-sent",
     "RESUME sets the EOF flag for a connection forward never sent EOF on: CLOSE for that "
     "connection, the tunnel stays up",
     FALSE,
     0,
     1,
     {{1, 5, RESUME_W, 0x01}},
     0,
     FALSE,
     NULL,
     FALSE,
     0,
     RESUME_CONN_CLOSED},
    {"/hostile-forward/resume/unknown-only",
     "RESUME lists connId 99, which forward never had, and not connection 1: forward ends "
     "its connection 1 locally, ignores 99, the tunnel stays up",
     FALSE,
     0,
     1,
     {{99, 0, RESUME_W, 0}},
     0,
     FALSE,
     NULL,
     FALSE,
     0,
     RESUME_CONN_DROPPED},
    {"/hostile-forward/resume/short",
     "A RESUME of 16 bytes (not a whole entry): forward closes the WebSocket with 1002", FALSE, 0,
     1, RESUME_ENTRY(5, RESUME_W), 1, FALSE, NULL, FALSE, 0, RESUME_TUNNEL_CLOSED},
    {"/hostile-forward/resume/twice",
     "Two RESUMEs on one WebSocket (the first true): forward closes it with 1002", FALSE, 0, 1,
     RESUME_ENTRY(5, RESUME_W), 0, TRUE, NULL, FALSE, 0, RESUME_TUNNEL_CLOSED},
    {"/hostile-forward/resume/conn-id",
     "A RESUME on connId 1 instead of 0: forward closes the WebSocket with 1002", FALSE, 1, 1,
     RESUME_ENTRY(5, RESUME_W), 0, FALSE, NULL, FALSE, 0, RESUME_TUNNEL_CLOSED},
    {"/hostile-forward/resume/id-zero",
     "A RESUME entry for connId 0: forward closes the WebSocket with 1002",
     FALSE,
     0,
     1,
     {{0, 5, RESUME_W, 0}},
     0,
     FALSE,
     NULL,
     FALSE,
     0,
     RESUME_TUNNEL_CLOSED},
    {"/hostile-forward/resume/id-twice",
     "A RESUME that lists connection 1 twice: forward closes the WebSocket with 1002",
     FALSE,
     0,
     2,
     {{1, 5, RESUME_W, 0}, {1, 5, RESUME_W, 0}},
     0,
     FALSE,
     NULL,
     FALSE,
     0,
     RESUME_TUNNEL_CLOSED},
    {"/hostile-forward/resume/window-beyond",
     "After a true RESUME, a 12-byte WINDOW that counts 11 bytes received of the 10 sent: "
     "CLOSE for that connection, the tunnel stays up",
     FALSE, 0, 1, RESUME_ENTRY(5, RESUME_W), 0, FALSE, NULL, TRUE, 11, RESUME_CONN_CLOSED},
    {"/hostile-forward/resume/window-backwards",
     "After a true RESUME (5 bytes received), a 12-byte WINDOW that counts 4: CLOSE for that "
     "connection, the tunnel stays up",
     FALSE, 0, 1, RESUME_ENTRY(5, RESUME_W), 0, FALSE, NULL, TRUE, 4, RESUME_CONN_CLOSED},
};

static void
test_resume_lie(gconstpointer user_data)
{
	const ResumeLie *lie = user_data;
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	ResumeServer *rs = resume_server_new();
	g_autofree char *request = NULL;
	g_autofree char *session = NULL;
	g_autoptr(GBytes) theirs = NULL;
	guint8 ours[G_N_ELEMENTS(lie->entries) * PB_RESUME_ENTRY_SIZE];
	gsize ours_len = lie->n_entries * PB_RESUME_ENTRY_SIZE - lie->cut;
	guint8 expected[PB_RESUME_ENTRY_SIZE];
	Forward *forward;

	g_test_summary(lie->summary);
	for (guint i = 0; i < lie->n_entries; i++)
		pb_test_resume_entry_write(ours + i * PB_RESUME_ENTRY_SIZE, lie->entries[i].id,
					   lie->entries[i].received, lie->entries[i].credit,
					   lie->entries[i].flags);
	forward = forward_spawn(rs->port, pb_test_service_get_port(echo), NULL);

	/* the first WebSocket: both RESUMEs empty, connection 1 echoes "hello" */
	request = resume_server_accept(rs);
	g_assert_true(request_asks_resume(request));
	g_assert_null(request_header(request, PB_SESSION_HEADER));
	resume_server_send(rs, PB_FRAME_HELLO, PB_CONTROL_ID, RESUME_HELLO, strlen(RESUME_HELLO));
	resume_server_send(rs, PB_FRAME_RESUME, PB_CONTROL_ID, NULL, 0);
	theirs = resume_server_expect(rs, PB_FRAME_RESUME, PB_CONTROL_ID);
	g_assert_cmpuint(g_bytes_get_size(theirs), ==, 0);
	g_clear_pointer(&theirs, g_bytes_unref);
	resume_server_send(rs, PB_FRAME_OPEN, 1, NULL, 0);
	resume_server_round_trip(rs, 1, "hello");
	if (lie->confirm) {
		guint8 window[12];

		pb_frame_write_u32(window, 5);
		pb_frame_write_u64(window + 4, 5);
		resume_server_send(rs, PB_FRAME_WINDOW, 1, window, sizeof window);
	}
	/* a ping's answer: forward has taken everything sent before it */
	fake_send_frame(rs->ws, 0x9, "sync", 4);
	for (;;) {
		guint8 opcode = 0;
		g_autoptr(GBytes) payload = NULL;

		g_assert_true(resume_server_read(rs, &opcode, &payload));
		if (opcode == 0xa)
			break;
	}
	g_assert_cmpuint(pb_test_service_get_bytes(echo), ==, 5);
	resume_server_drop(rs);

	/* forward comes back with its session and lists connection 1: 5 bytes received, the
	 * rest of its window as credit, no EOF */
	g_free(request);
	request = resume_server_accept(rs);
	session = request_header(request, PB_SESSION_HEADER);
	g_assert_cmpstr(session, ==, RESUME_SESSION);
	g_assert_true(request_asks_resume(request));
	resume_server_send(rs, PB_FRAME_HELLO, PB_CONTROL_ID, RESUME_HELLO, strlen(RESUME_HELLO));
	{
		g_autoptr(GBytes) message = NULL;
		PbFrame frame;

		/* before any frame of the connections it lists */
		g_assert_true(resume_server_next(rs, &message, &frame));
		g_assert_cmpuint(frame.type, ==, PB_FRAME_RESUME);
		g_assert_cmpuint(frame.conn_id, ==, PB_CONTROL_ID);
		pb_test_resume_entry_write(expected, 1, 5, RESUME_W - 5, 0);
		g_assert_cmpmem(frame.payload, frame.payload_len, expected, sizeof expected);
	}
	g_assert_cmpuint(pb_test_service_get_n_finished(echo), ==, 0);

	/* ours */
	resume_server_send(rs, PB_FRAME_RESUME, lie->resume_id, ours, ours_len);
	if (lie->twice)
		resume_server_send(rs, PB_FRAME_RESUME, lie->resume_id, ours, ours_len);
	if (lie->resent != NULL) {
		theirs = resume_server_expect(rs, PB_FRAME_DATA, 1);
		assert_bytes_equal(theirs, (const guint8 *)lie->resent, strlen(lie->resent));
	}
	if (lie->window_lie) {
		guint8 window[12];

		resume_server_round_trip(rs, 1, "again"); /* resumed: 10 bytes sent now */
		pb_frame_write_u32(window, 0);
		pb_frame_write_u64(window + 4, lie->window_count);
		resume_server_send(rs, PB_FRAME_WINDOW, 1, window, sizeof window);
	}
	switch (lie->outcome) {
	case RESUME_GOES_ON:
		resume_server_round_trip(rs, 1, "still there");
		g_assert_cmpuint(pb_test_service_get_n_finished(echo), ==, 0);
		break;
	case RESUME_CONN_CLOSED:
		g_clear_pointer(&theirs, g_bytes_unref);
		theirs = resume_server_expect(rs, PB_FRAME_CLOSE, 1);
		g_assert_cmpuint(g_bytes_get_size(theirs), ==, 0);
		pb_test_wait_until(pb_test_service_get_n_finished(echo) == 1, 10);
		break;
	case RESUME_CONN_DROPPED:
		pb_test_wait_until(pb_test_service_get_n_finished(echo) == 1, 10);
		break;
	case RESUME_TUNNEL_CLOSED:
		g_assert_cmpint(resume_server_wait_closed(rs), ==, 1002);
		/* a tunnel closed for a broken protocol is not resumed: its connections end */
		pb_test_wait_until(pb_test_service_get_n_finished(echo) == 1, 10);
		break;
	}
	if (lie->outcome != RESUME_TUNNEL_CLOSED) {
		/* the tunnel is up: a new connection works */
		resume_server_send(rs, PB_FRAME_OPEN, 2, NULL, 0);
		resume_server_round_trip(rs, 2, "next one");
		g_assert_cmpint(rs->close_code, ==, -1);
	}
	g_assert_false(forward->exited);
	assert_output_inert(forward);
	g_assert_cmpint(forward_finish(forward), ==, 0);
	resume_server_free(rs);
	pb_test_service_free(echo);
}

static void
test_resume_linger_bound(void)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	ResumeServer *rs = resume_server_new();
	g_autofree char *request = NULL;
	Forward *forward;

	g_test_summary("A server that never answers forward's CLOSE: forward keeps at most 128 of "
		       "the connections that ended both ways, so with --max-connections 130 the "
		       "server's 140th OPEN still reaches the local service");
	forward = forward_spawn(rs->port, pb_test_service_get_port(echo), "--max-connections",
				"130", NULL);
	request = resume_server_accept(rs);
	g_assert_true(request_asks_resume(request));
	resume_server_send(rs, PB_FRAME_HELLO, PB_CONTROL_ID, RESUME_HELLO, strlen(RESUME_HELLO));
	resume_server_send(rs, PB_FRAME_RESUME, PB_CONTROL_ID, NULL, 0);
	g_bytes_unref(resume_server_expect(rs, PB_FRAME_RESUME, PB_CONTROL_ID));
	for (guint32 id = 1; id <= 140; id++) {
		resume_server_send(rs, PB_FRAME_OPEN, id, NULL, 0);
		resume_server_send(rs, PB_FRAME_EOF, id, NULL, 0);
		/* the echo service ends too: forward passes that on, then says CLOSE (a refused
		 * OPEN would get CLOSE alone) */
		g_bytes_unref(resume_server_expect(rs, PB_FRAME_EOF, id));
		g_bytes_unref(resume_server_expect(rs, PB_FRAME_CLOSE, id));
	}
	g_assert_false(forward->exited);
	g_assert_cmpint(forward_finish(forward), ==, 0);
	resume_server_free(rs);
	pb_test_service_free(echo);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/hostile-forward/public-host-escapes", test_public_host_escapes);
	g_test_add_func("/hostile-forward/close-reason-escapes", test_close_reason_escapes);
	g_test_add_func("/hostile-forward/hello-huge", test_hello_huge);
	g_test_add_func("/hostile-forward/services/unknown-index", test_services_unknown_index);
	g_test_add_func("/hostile-forward/services/bad-open", test_services_bad_open);
	g_test_add_func("/hostile-forward/services/refused", test_services_refused);
	g_test_add_func("/hostile-forward/hello-over-size", test_hello_over_size);
	g_test_add_func("/hostile-forward/hello-too-deep", test_hello_too_deep);
	g_test_add_func("/hostile-forward/max-connections", test_max_connections);
	g_test_add_func("/hostile-forward/max-connections-bad", test_max_connections_bad);
	g_test_add_func("/hostile-forward/serve-bad-host", test_serve_bad_host);
	for (gsize i = 0; i < G_N_ELEMENTS(resume_lies); i++)
		g_test_add_data_func(resume_lies[i].path, &resume_lies[i], test_resume_lie);
	g_test_add_func("/hostile-forward/resume/linger-bound", test_resume_linger_bound);
	return g_test_run();
}
