/* SPDX-License-Identifier: ISC */
#define _GNU_SOURCE /* memmem() */
#include "config.h"

#include "pb-test-utils.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "pb-frame.h"

struct _PbTestService {
	GSocketService *service; /* (owned) a GThreadedSocketService */
	PbTestServiceMode mode;
	gsize source_size;
	guint16 port;
	gint64 bytes;	/* atomic */
	int corrupt;	/* atomic */
	int n_started;	/* atomic */
	int n_finished; /* atomic */
	int *reached;	/* (nullable) atomic: set once a request ended (ANSWER) */
	int *go;	/* (nullable) atomic: the answer waits for it (ANSWER) */
};

gboolean
pb_test_tick_cb(gpointer user_data)
{
	return G_SOURCE_CONTINUE;
}

/* Runs the main context for a while, so asynchronous closes finish and nothing is left. */
void
pb_test_settle(void)
{
	gint64 deadline = g_get_monotonic_time() + 200 * 1000;

	while (g_get_monotonic_time() < deadline) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(1000);
	}
}

void
pb_test_pattern_fill(guint8 *buf, gsize len, guint64 offset)
{
	for (gsize i = 0; i < len; i++)
		buf[i] = pb_test_pattern(offset + i);
}

gboolean
pb_test_pattern_check(const guint8 *buf, gsize len, guint64 offset)
{
	for (gsize i = 0; i < len; i++) {
		if (buf[i] != pb_test_pattern(offset + i))
			return FALSE;
	}
	return TRUE;
}

/* Reads until the end of the stream, checking the pattern and counting. */
static void
pb_test_service_read_all(PbTestService *self, GInputStream *in, guint8 *buf)
{
	guint64 offset = 0;

	for (;;) {
		gssize n = g_input_stream_read(in, buf, 64 * 1024, NULL, NULL);

		if (n <= 0)
			break;
		if (!pb_test_pattern_check(buf, (gsize)n, offset))
			g_atomic_int_set(&self->corrupt, 1);
		offset += (guint64)n;
		g_atomic_pointer_add(&self->bytes, n);
	}
}

/* Writes `source_size` bytes of the pattern, counting. */
static void
pb_test_service_write_all(PbTestService *self, GOutputStream *out, guint8 *buf)
{
	guint64 offset = 0;

	while (offset < self->source_size) {
		gsize n = MIN(64 * 1024, self->source_size - offset);

		pb_test_pattern_fill(buf, n, offset);
		if (!g_output_stream_write_all(out, buf, n, NULL, NULL, NULL))
			break;
		offset += n;
		g_atomic_pointer_add(&self->bytes, n);
	}
}

/* Runs in a worker thread of the threaded service, with blocking I/O. */
static gboolean
pb_test_service_run_cb(GThreadedSocketService *service, GSocketConnection *connection,
		       GObject *source_object, gpointer user_data)
{
	PbTestService *self = user_data;
	GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(connection));
	GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(connection));
	g_autofree guint8 *buf = g_malloc(64 * 1024);

	g_atomic_int_inc(&self->n_started);
	switch (self->mode) {
	case PB_TEST_SERVICE_ECHO:
		for (;;) {
			gssize n = g_input_stream_read(in, buf, 64 * 1024, NULL, NULL);

			if (n <= 0 ||
			    !g_output_stream_write_all(out, buf, (gsize)n, NULL, NULL, NULL))
				break;
			g_atomic_pointer_add(&self->bytes, n);
		}
		break;
	case PB_TEST_SERVICE_SINK:
		pb_test_service_read_all(self, in, buf);
		break;
	case PB_TEST_SERVICE_SOURCE:
		pb_test_service_write_all(self, out, buf);
		break;
	case PB_TEST_SERVICE_ANSWER:
		pb_test_service_read_all(self, in, buf);
		if (self->reached != NULL)
			g_atomic_int_set(self->reached, 1);
		/* the test sets it within seconds, or fails */
		for (guint i = 0; self->go != NULL && !g_atomic_int_get(self->go) && i < 60000; i++)
			g_usleep(1000);
		pb_test_service_write_all(self, out, buf);
		break;
	case PB_TEST_SERVICE_SPEAK_FIRST:
		pb_test_service_write_all(self, out, buf);
		g_socket_shutdown(g_socket_connection_get_socket(connection), FALSE, TRUE, NULL);
		pb_test_service_read_all(self, in, buf);
		break;
	}
	g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
	g_atomic_int_inc(&self->n_finished);
	return TRUE;
}

/* ANSWER: each connection sets @reached once its request ended, then answers only once @go
 * is set (both atomic, and they must outlive the service's connections). */
void
pb_test_service_hold_answers(PbTestService *service, int *reached, int *go)
{
	service->reached = reached;
	service->go = go;
}

PbTestService *
pb_test_service_new(PbTestServiceMode mode, gsize source_size, guint16 port)
{
	PbTestService *self = g_new0(PbTestService, 1);
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, port);
	g_autoptr(GSocketAddress) effective = NULL;
	g_autoptr(GError) error = NULL;

	self->mode = mode;
	self->source_size = source_size;
	self->service = g_threaded_socket_service_new(64);
	/* GSocketListener's backlog is 10: forward dials a burst of connections at once, and
	 * past 10 not yet accepted (a busy machine, a sanitizer build) the kernel drops their
	 * SYNs, which come again only after a second */
	g_socket_listener_set_backlog(G_SOCKET_LISTENER(self->service), SOMAXCONN);
	g_socket_listener_add_address(G_SOCKET_LISTENER(self->service), address,
				      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &effective,
				      &error);
	g_assert_no_error(error);
	self->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(effective));
	g_signal_connect(self->service, "run", G_CALLBACK(pb_test_service_run_cb), self);
	g_socket_service_start(self->service);
	return self;
}

/**
 * pb_test_soup_listen:
 *
 * Makes @soup, a test's local HTTP service, listen on 127.0.0.1 on a free port, with a
 * backlog of SOMAXCONN. With GSocket's 10 (soup_server_listen_local()), forward's burst of
 * dials overflowed it: 5 runs of /services/two (40 requests at once) counted 170 listen
 * overflows and 33 SYN cookies (nstat), and in about one run in 900 a connection the
 * kernel had let the client think established was reset without an answer.
 *
 * Returns: the port
 */
guint16
pb_test_soup_listen(SoupServer *soup)
{
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GError) error = NULL;

	socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	g_assert_no_error(error);
	g_socket_set_listen_backlog(socket, SOMAXCONN);
	g_assert_true(g_socket_bind(socket, address, TRUE, &error));
	g_assert_true(g_socket_listen(socket, &error));
	bound = g_socket_get_local_address(socket, &error);
	g_assert_no_error(error);
	g_assert_true(soup_server_listen_socket(soup, socket, 0, &error));
	g_assert_no_error(error);
	return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

guint16
pb_test_service_get_port(PbTestService *self)
{
	return self->port;
}

guint64
pb_test_service_get_bytes(PbTestService *self)
{
	return (guint64)g_atomic_pointer_get(&self->bytes);
}

gboolean
pb_test_service_get_corrupt(PbTestService *self)
{
	return g_atomic_int_get(&self->corrupt) != 0;
}

guint
pb_test_service_get_n_finished(PbTestService *self)
{
	return (guint)g_atomic_int_get(&self->n_finished);
}

/* Stops listening and waits (running the main context, up to 10 s) until every connection
 * it accepted has ended. */
void
pb_test_service_free(PbTestService *self)
{
	gint64 deadline;

	g_socket_service_stop(self->service);
	g_socket_listener_close(G_SOCKET_LISTENER(self->service));
	pb_test_settle();
	/* each worker ends when its peer does; once, in CI under sanitizers beside other tests,
	 * the last of /process/out-of-fds's took more than 10 s (not reproduced since) */
	deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
	while (g_atomic_int_get(&self->n_finished) != g_atomic_int_get(&self->n_started)) {
		if (g_get_monotonic_time() > deadline)
			g_error("the test service still has %d of %d connections open after 30 s",
				g_atomic_int_get(&self->n_started) -
				    g_atomic_int_get(&self->n_finished),
				g_atomic_int_get(&self->n_started));
		g_main_context_iteration(NULL, FALSE);
		g_usleep(10 * 1000);
	}
	g_object_unref(self->service);
	g_free(self);
}

/* A blocking socket connected to 127.0.0.1:@port, with 10 s timeouts. */
GSocket *
pb_test_connect(guint16 port)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, port);
	g_autoptr(GSocket) socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);

	g_assert_no_error(error);
	g_socket_set_timeout(socket, 10);
	g_socket_connect(socket, address, NULL, &error);
	g_assert_no_error(error);
	return g_steal_pointer(&socket);
}

/**
 * pb_test_ws_upgrade:
 * @headers: (nullable): more header lines for the request, each ending in CRLF
 *
 * A raw WebSocket client of `serve` at 127.0.0.1:@port, upgraded (protocol 1 without
 * @headers that say otherwise); what follows the response (HELLO) is left unread.
 */
/* An upgrade request to `serve`, with @headers (nullable; each ending in \r\n). */
static char *
pb_test_ws_request(const char *headers)
{
	return g_strdup_printf(
	    "GET " PB_WS_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n%s\r\n",
	    headers != NULL ? headers : "");
}

GSocket *
pb_test_ws_upgrade(guint16 port, const char *headers)
{
	g_autofree char *request = pb_test_ws_request(headers);
	GSocket *socket = pb_test_connect(port);
	char response[1024];
	gsize got = 0;

	g_assert_cmpint(g_socket_send(socket, request, strlen(request), NULL, NULL), ==,
			strlen(request));
	/* a byte at a time: what follows the response stays in the socket */
	while (g_strstr_len(response, (gssize)got, "\r\n\r\n") == NULL) {
		g_assert_cmpuint(got, <, sizeof response - 1);
		g_assert_cmpint(g_socket_receive(socket, response + got, 1, NULL, NULL), ==, 1);
		got++;
		response[got] = '\0';
	}
	g_assert_true(g_str_has_prefix(response, "HTTP/1.1 101"));
	return socket;
}

/* The status of the answer to an upgrade request to 127.0.0.1:@port with @headers: 101, or
 * why the server refuses it. */
guint
pb_test_ws_upgrade_status(guint16 port, const char *headers)
{
	g_autofree char *request = pb_test_ws_request(headers);
	g_autoptr(GSocket) socket = pb_test_connect(port);
	char buf[64] = {0};

	g_socket_set_timeout(socket, 10);
	g_assert_cmpint(g_socket_send(socket, request, strlen(request), NULL, NULL), ==,
			strlen(request));
	g_assert_cmpint(g_socket_receive(socket, buf, sizeof buf - 1, NULL, NULL), >=, 12);
	return (guint)g_ascii_strtoull(buf + 9, NULL, 10);
}

/* The public port in the HELLO that follows the 101 (a server frame: not masked). */
guint16
pb_test_ws_read_hello_port(GSocket *socket)
{
	char buf[4096];
	gsize got = 0;
	const char *port = NULL;

	while (port == NULL && got < sizeof buf - 1) {
		gssize n = g_socket_receive(socket, buf + got, sizeof buf - 1 - got, NULL, NULL);

		g_assert_cmpint(n, >, 0);
		got += (gsize)n;
		buf[got] = '\0';
		/* not g_strstr_len(): the frame's header has NUL bytes */
		port = memmem(buf, got, "\"tunnelPort\":", strlen("\"tunnelPort\":"));
	}
	g_assert_nonnull(port);
	return (guint16)g_ascii_strtoull(port + strlen("\"tunnelPort\":"), NULL, 10);
}

/* A public client of an echo service at 127.0.0.1:GPOINTER_TO_UINT(@port): whether one byte
 * came back; for pb_test_run_in_thread(). */
gpointer
pb_test_echo_one_byte_cb(gpointer port)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(port));
	char byte = 0;

	if (g_socket_send(socket, "h", 1, NULL, NULL) != 1 ||
	    g_socket_receive(socket, &byte, 1, NULL, NULL) != 1)
		return GINT_TO_POINTER(FALSE);
	return GINT_TO_POINTER(byte == 'h');
}

typedef struct {
	GThreadFunc func;
	gpointer data;
	gpointer result;
	int done; /* atomic */
} PbTestThread;

static gpointer
pb_test_thread_cb(gpointer user_data)
{
	PbTestThread *t = user_data;

	t->result = t->func(t->data);
	g_atomic_int_set(&t->done, 1);
	g_main_context_wakeup(NULL);
	return NULL;
}

gpointer
pb_test_run_in_thread(GThreadFunc func, gpointer data, int seconds)
{
	PbTestThread t = {func, data, NULL, 0};
	GThread *thread = g_thread_new("pb-test", pb_test_thread_cb, &t);

	pb_test_wait_until(g_atomic_int_get(&t.done), seconds);
	g_thread_join(thread);
	return t.result;
}

struct _PbTestProc {
	GSubprocess *process;  /* (owned) */
	GDataInputStream *out; /* (owned) stdout and stderr, by line */
	GString *output;       /* (owned) everything so far */
	gboolean reading;
	gboolean exited;
};

static void
pb_test_proc_line_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	PbTestProc *proc = user_data;
	g_autofree char *line =
	    g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source), res, NULL, NULL);

	if (line == NULL) {
		proc->reading = FALSE;
		return;
	}
	g_string_append_printf(proc->output, "%s\n", line);
	g_data_input_stream_read_line_async(proc->out, G_PRIORITY_DEFAULT, NULL,
					    pb_test_proc_line_cb, proc);
}

static void
pb_test_proc_exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	PbTestProc *proc = user_data;

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	proc->exited = TRUE;
}

static void
pb_test_proc_tied_cb(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* A launcher whose processes write stdout and stderr to one pipe, and which the kernel
 * kills when the test's thread that started them ends (a failed assertion, a crash): a
 * failing test leaves no piggyback behind. Start them from the main thread. A test that
 * sets a child setup of its own sets PR_SET_PDEATHSIG there too. */
GSubprocessLauncher *
pb_test_proc_launcher_new(void)
{
	GSubprocessLauncher *launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
								  G_SUBPROCESS_FLAGS_STDERR_MERGE);

	g_subprocess_launcher_set_child_setup(launcher, pb_test_proc_tied_cb, NULL, NULL);
	return launcher;
}

/* GET @path over HTTPS (see PbTestHttpsGet). Returns: (transfer full): the whole answer, or
 * what failed ("handshake: …") */
gpointer
pb_test_https_get_cb(gpointer user_data)
{
	PbTestHttpsGet *get = user_data;
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketConnection) tcp = NULL;
	g_autoptr(GSocketConnectable) identity = g_network_address_new(get->host, get->port);
	g_autoptr(GIOStream) tls = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *request = g_strdup_printf(
	    "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", get->path, get->host);
	g_autoptr(GByteArray) answer = g_byte_array_new();
	char buf[65536];
	gssize n;

	g_socket_client_set_timeout(client, 10);
	tcp = g_socket_client_connect_to_host(client, "127.0.0.1", get->port, NULL, &error);
	if (tcp == NULL)
		return g_strdup_printf("connect: %s", error->message);
	tls = g_tls_client_connection_new(G_IO_STREAM(tcp), identity, &error);
	g_assert_no_error(error);
	g_tls_connection_set_database(G_TLS_CONNECTION(tls), get->database);
	if (!g_tls_connection_handshake(G_TLS_CONNECTION(tls), NULL, &error))
		return g_strdup_printf("handshake: %s", error->message);
	if (!g_output_stream_write_all(g_io_stream_get_output_stream(tls), request, strlen(request),
				       NULL, NULL, &error))
		return g_strdup_printf("write: %s", error->message);
	while ((n = g_input_stream_read(g_io_stream_get_input_stream(tls), buf, sizeof buf, NULL,
					NULL)) > 0)
		g_byte_array_append(answer, (const guint8 *)buf, (guint)n);
	g_byte_array_append(answer, (const guint8 *)"", 1);
	return g_strdup((const char *)answer->data);
}

/* A directory of the test's own, named @prefix-XXXXXX; pb_test_temp_dir_free() removes it
 * with what is in it. */
char *
pb_test_temp_dir_new(const char *prefix)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *template = g_strdup_printf("%s-XXXXXX", prefix);
	char *dir = g_dir_make_tmp(template, &error);

	g_assert_no_error(error);
	return dir;
}

void
pb_test_temp_dir_free(char *dir)
{
	g_autoptr(GDir) handle = g_dir_open(dir, 0, NULL);
	const char *name;

	while (handle != NULL && (name = g_dir_read_name(handle)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);

		g_unlink(path);
	}
	g_rmdir(dir);
	g_free(dir);
}

/* Writes @contents to @name in @dir; returns its path. */
char *
pb_test_write_file(const char *dir, const char *name, const char *contents)
{
	g_autoptr(GError) error = NULL;
	char *path = g_build_filename(dir, name, NULL);

	g_file_set_contents(path, contents, -1, &error);
	g_assert_no_error(error);
	return path;
}

/* data/@example with each of its keys and its [@group NAME] groups uncommented
 * ("#key=value" → "key=value"). */
char *
pb_test_example_uncommented(const char *example, const char *group)
{
	g_autofree char *path = g_test_build_filename(G_TEST_DIST, "..", "data", example, NULL);
	g_autofree char *pattern = g_strdup_printf("^#(\\[%s [^]]+\\]|[a-z0-9-]+=.*)$", group);
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GRegex) regex = g_regex_new(pattern, G_REGEX_MULTILINE, 0, &error);

	g_assert_no_error(error);
	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	return g_regex_replace(regex, text, -1, 0, "\\1", 0, &error);
}

/* The resident memory of the process, in bytes (VmRSS). */
guint64
pb_test_proc_get_rss(PbTestProc *proc)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/status", pb_test_proc_get_pid(proc));
	g_autofree char *status = NULL;
	const char *rss;

	g_assert_true(g_file_get_contents(path, &status, NULL, NULL));
	rss = strstr(status, "VmRSS:");
	g_assert_nonnull(rss);
	return g_ascii_strtoull(rss + strlen("VmRSS:"), NULL, 10) * 1024;
}

/**
 * pb_test_serve_valist:
 * @args: (nullable): NULL-terminated arguments that come first
 * @ws_port: (out): its WebSocket port
 *
 * Starts `piggyback serve` on loopback (-p 0 -l 127.0.0.1 -H 127.0.0.1) with @args, then
 * @first and the arguments in @rest, up to a NULL; waits for its port.
 */
PbTestProc *
pb_test_serve_valist(GSubprocessLauncher *launcher, const char *const *args, guint16 *ws_port,
		     const char *first, va_list rest)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	const char *const fixed[] = {
	    g_getenv("PB_PIGGYBACK"), "serve", "-p", "0", "-l", "127.0.0.1", "-H", "127.0.0.1"};
	PbTestProc *server;

	for (gsize i = 0; i < G_N_ELEMENTS(fixed); i++)
		g_ptr_array_add(argv, (gpointer)fixed[i]);
	for (gsize i = 0; args != NULL && args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	for (const char *arg = first; arg != NULL; arg = va_arg(rest, const char *))
		g_ptr_array_add(argv, (gpointer)arg);
	g_ptr_array_add(argv, NULL);
	server = pb_test_proc_spawnv(launcher, (const char *const *)argv->pdata);
	*ws_port = pb_test_proc_wait_port(server, "Listening on");
	return server;
}

/* Starts @first with the arguments that follow; stop it with pb_test_proc_finish(). */
PbTestProc *
pb_test_proc_spawn(GSubprocessLauncher *launcher, const char *first, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	va_list args;

	va_start(args, first);
	for (const char *arg = first; arg != NULL; arg = va_arg(args, const char *))
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);
	return pb_test_proc_spawnv(launcher, (const char *const *)argv->pdata);
}

/* Starts the program and arguments in @argv; stop it with pb_test_proc_finish(). */
PbTestProc *
pb_test_proc_spawnv(GSubprocessLauncher *launcher, const char *const *argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) wrapped = g_ptr_array_new_with_free_func(g_free);
	const char *wrapper = g_getenv("PB_TEST_WRAPPER");
	PbTestProc *proc = g_new0(PbTestProc, 1);

	/* under `meson test --setup valgrind`, piggyback itself runs under valgrind too */
	if (wrapper != NULL && g_strcmp0(argv[0], g_getenv("PB_PIGGYBACK")) == 0) {
		g_auto(GStrv) words = g_strsplit(wrapper, " ", -1);

		for (guint i = 0; words[i] != NULL; i++)
			g_ptr_array_add(wrapped, g_strdup(words[i]));
	}
	for (guint i = 0; argv[i] != NULL; i++)
		g_ptr_array_add(wrapped, g_strdup(argv[i]));
	g_ptr_array_add(wrapped, NULL);
	proc->process =
	    g_subprocess_launcher_spawnv(launcher, (const char *const *)wrapped->pdata, &error);
	g_assert_no_error(error);
	proc->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc->process));
	proc->output = g_string_new(NULL);
	proc->reading = TRUE;
	g_data_input_stream_read_line_async(proc->out, G_PRIORITY_DEFAULT, NULL,
					    pb_test_proc_line_cb, proc);
	g_subprocess_wait_async(proc->process, NULL, pb_test_proc_exited_cb, proc);
	return proc;
}

gboolean
pb_test_proc_said(PbTestProc *proc, const char *needle)
{
	return strstr(proc->output->str, needle) != NULL;
}

const char *
pb_test_proc_get_output(PbTestProc *proc)
{
	return proc->output->str;
}

gboolean
pb_test_proc_exited(PbTestProc *proc)
{
	return proc->exited;
}

/* Waits up to 10 s for a process that ends by itself, and for the last of its output. */
void
pb_test_proc_wait_exit(PbTestProc *proc)
{
	pb_test_wait_until(proc->exited && !proc->reading, 10);
}

/* Waits up to 10 s for a line with @needle and returns the port at its end (":PORT"). */
guint16
pb_test_proc_wait_port(PbTestProc *proc, const char *needle)
{
	const char *line;
	const char *end;
	const char *colon = NULL;

	pb_test_wait_until(pb_test_proc_said(proc, needle) || (proc->exited && !proc->reading), 10);
	line = strstr(proc->output->str, needle);
	if (line == NULL)
		g_error("no “%s” in: %s", needle, proc->output->str);
	end = strchr(line, '\n');
	for (const char *p = line; p < end; p++) {
		if (*p == ':' && g_ascii_isdigit(p[1]))
			colon = p;
	}
	g_assert_nonnull(colon);
	return (guint16)g_ascii_strtoull(colon + 1, NULL, 10);
}

int
pb_test_proc_get_pid(PbTestProc *proc)
{
	return (int)g_ascii_strtoll(g_subprocess_get_identifier(proc->process), NULL, 10);
}

/* Open file descriptors of a running process, from /proc. */
guint
pb_test_count_fds(GSubprocess *process)
{
	g_autofree char *path =
	    g_strdup_printf("/proc/%s/fd", g_subprocess_get_identifier(process));
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	guint n = 0;

	g_assert_nonnull(dir);
	while (g_dir_read_name(dir) != NULL)
		n++;
	return n;
}

guint
pb_test_proc_count_fds(PbTestProc *proc)
{
	return pb_test_count_fds(proc->process);
}

/* How many listening TCP sockets a running process holds (its fds against
 * /proc/PID/net/tcp*). */
guint
pb_test_count_listeners(GSubprocess *process)
{
	const char *pid = g_subprocess_get_identifier(process);
	g_autofree char *fd_dir = g_strdup_printf("/proc/%s/fd", pid);
	g_autoptr(GDir) dir = g_dir_open(fd_dir, 0, NULL);
	g_autoptr(GHashTable) inodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	const char *tables[] = {"tcp", "tcp6"};
	const char *name;
	guint n = 0;

	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_build_filename(fd_dir, name, NULL);
		g_autofree char *target = g_file_read_link(path, NULL);

		if (target != NULL && g_str_has_prefix(target, "socket:["))
			g_hash_table_add(inodes, g_strndup(target + strlen("socket:["),
							   strlen(target) - strlen("socket:[]")));
	}
	for (gsize t = 0; t < G_N_ELEMENTS(tables); t++) {
		g_autofree char *path = g_strdup_printf("/proc/%s/net/%s", pid, tables[t]);
		g_autofree char *contents = NULL;
		g_auto(GStrv) lines = NULL;

		if (!g_file_get_contents(path, &contents, NULL, NULL))
			continue;
		lines = g_strsplit(contents, "\n", -1);
		for (gsize i = 1; lines[i] != NULL; i++) {
			g_auto(GStrv) fields = g_strsplit_set(g_strstrip(lines[i]), " \t", -1);
			g_autoptr(GPtrArray) cols = g_ptr_array_new();

			for (gsize f = 0; fields[f] != NULL; f++) {
				if (*fields[f] != '\0')
					g_ptr_array_add(cols, fields[f]);
			}
			/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode; 0A = LISTEN */
			if (cols->len >= 10 && strcmp(cols->pdata[3], "0A") == 0 &&
			    g_hash_table_contains(inodes, cols->pdata[9]))
				n++;
		}
	}
	return n;
}

guint
pb_test_proc_count_listeners(PbTestProc *proc)
{
	return pb_test_count_listeners(proc->process);
}

/* Opens @n non-blocking connections to 127.0.0.1:@port from @from (nullable: an address of
 * 127.0.0.0/8; NULL for the usual 127.0.0.1) that send nothing; how many completed within
 * about 2 s. The caller closes @fds. */
guint
pb_test_connect_burst(guint16 port, const char *from, int *fds, guint n)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in source = {.sin_family = AF_INET};
	g_autofree struct pollfd *pfds = g_new0(struct pollfd, n);
	guint connected = 0;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (from != NULL)
		g_assert_cmpint(inet_pton(AF_INET, from, &source.sin_addr), ==, 1);
	for (guint i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		g_assert_cmpint(fds[i], >=, 0);
		if (from != NULL)
			g_assert_cmpint(bind(fds[i], (struct sockaddr *)&source, sizeof source), ==,
					0);
		g_assert_true(connect(fds[i], (struct sockaddr *)&addr, sizeof addr) == 0 ||
			      errno == EINPROGRESS);
		pfds[i].fd = fds[i];
		pfds[i].events = POLLOUT;
	}
	for (guint round = 0; round < 20 && connected < n; round++) {
		connected = 0;
		g_assert_cmpint(poll(pfds, n, 100), >=, 0);
		for (guint i = 0; i < n; i++) {
			int err = -1;
			socklen_t len = sizeof err;

			if ((pfds[i].revents & POLLOUT) &&
			    getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
				connected++;
		}
	}
	return connected;
}

/* How many of @fds the peer has closed (end of file or reset). */
guint
pb_test_count_closed_by_peer(const int *fds, guint n)
{
	guint closed = 0;

	for (guint i = 0; i < n; i++) {
		struct pollfd pfd = {.fd = fds[i], .events = POLLIN};
		char byte;

		if (poll(&pfd, 1, 0) == 1 && recv(fds[i], &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
			closed++;
	}
	return closed;
}

/* A TCP port nothing listens on just now (someone may take it before the caller). */
guint16
pb_test_free_port(void)
{
	g_autoptr(GSocketListener) listener = g_socket_listener_new();
	guint16 port = g_socket_listener_add_any_inet_port(listener, NULL, NULL);

	g_socket_listener_close(listener);
	return port;
}

/* SIGKILL, and waits for it to be reaped (pb_test_proc_finish() then only frees it). */
void
pb_test_proc_kill(PbTestProc *proc)
{
	g_subprocess_force_exit(proc->process);
	pb_test_wait_until(proc->exited, 10);
}

/* Sends SIGTERM if it still runs, waits up to 10 s for it to end and for its output, frees
 * it; returns its exit status. */
int
pb_test_proc_finish(PbTestProc *proc)
{
	int status;

	if (!proc->exited)
		g_subprocess_send_signal(proc->process, SIGTERM);
	pb_test_wait_until(proc->exited && !proc->reading, 10);
	if (g_subprocess_get_if_signaled(proc->process))
		status = 128 + g_subprocess_get_term_sig(proc->process);
	else
		status = g_subprocess_get_exit_status(proc->process);
	g_object_unref(proc->out);
	g_object_unref(proc->process);
	g_string_free(proc->output, TRUE);
	g_free(proc);
	return status;
}

/* Sends @size bytes of the pattern and reads them back, at once, as a public client. */
gpointer
pb_test_echo_job_cb(gpointer user_data)
{
	PbTestEchoJob *job = user_data;
	g_autoptr(GSocket) socket = pb_test_connect(job->port);
	g_autofree guint8 *out = g_malloc(job->size);
	g_autofree guint8 *in = g_malloc(job->size);
	gsize sent = 0;
	gsize got = 0;

	pb_test_pattern_fill(out, job->size, 0);
	while (got < job->size) {
		g_autoptr(GError) error = NULL;
		gssize n;

		if (sent < job->size) {
			n = g_socket_send_with_blocking(socket, (char *)out + sent,
							MIN(job->size - sent, 16384), TRUE, NULL,
							&error);
			g_assert_no_error(error);
			sent += (gsize)n;
		}
		if (!g_socket_condition_timed_wait(socket, G_IO_IN, sent < job->size ? 0 : 10000000,
						   NULL, NULL))
			continue;
		n = g_socket_receive(socket, (char *)in + got, job->size - got, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpint(n, >, 0);
		got += (gsize)n;
	}
	g_assert_cmpmem(in, job->size, out, job->size);
	return GINT_TO_POINTER(TRUE);
}

/* A RESUME entry (17 bytes, see pb-resume.h) as a raw peer of a test sends or expects it:
 * any @flags, not only those PbResumeEntry knows. */
void
pb_test_resume_entry_write(guint8 *p, guint32 id, guint64 received, guint32 credit, guint8 flags)
{
	pb_frame_write_u32(p, id);
	pb_frame_write_u64(p + 4, received);
	pb_frame_write_u32(p + 12, credit);
	p[16] = flags;
}
