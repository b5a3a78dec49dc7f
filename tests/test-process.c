/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pb-frame.h"
#include "pb-test-utils.h"

/*
 * The real `piggyback` program, as processes: the command line's answers to bad input,
 * what each side does when the other dies, and memory with a slow reader.
 */

#define MIB (1024 * 1024)

typedef struct {
	GSubprocess *process;  /* (owned) */
	GDataInputStream *out; /* (owned) its stdout, by line */
	GPtrArray *lines;      /* (owned) char*: stdout so far */
	gboolean reading;
	gboolean exited;
} Proc;

static const char *
piggyback_path(void)
{
	const char *path = g_getenv("PB_PIGGYBACK");

	g_assert_nonnull(path);
	return path;
}

static void
proc_line_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Proc *proc = user_data;
	char *line =
	    g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source), res, NULL, NULL);

	if (line == NULL) {
		proc->reading = FALSE;
		return;
	}
	g_ptr_array_add(proc->lines, line);
	g_data_input_stream_read_line_async(proc->out, G_PRIORITY_DEFAULT, NULL, proc_line_cb,
					    proc);
}

static void
proc_exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Proc *proc = user_data;

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	proc->exited = TRUE;
}

/* In the child: die with the test, so a failed test leaves no process behind (holding
 * its output pipe open, which would make meson wait for the timeout). */
static void
die_with_parent_cb(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Sets each NAME=VALUE of @env (nullable) in the children of @launcher, and makes them die
 * with the test. */
static void
launcher_set_env(GSubprocessLauncher *launcher, const char *const *env)
{
	g_subprocess_launcher_set_child_setup(launcher, die_with_parent_cb, NULL, NULL);
	for (gsize i = 0; env != NULL && env[i] != NULL; i++) {
		const char *equals = strchr(env[i], '=');
		g_autofree char *name = g_strndup(env[i], equals - env[i]);

		g_subprocess_launcher_setenv(launcher, name, equals + 1, TRUE);
	}
}

/* Starts piggyback with @args; stdout is collected line by line. @flags may add pipes;
 * @env: (nullable): NAME=VALUE strings to set for it. */
static Proc *
proc_startv(GSubprocessFlags flags, const char *const *env, const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | flags);
	Proc *proc = g_new0(Proc, 1);

	g_ptr_array_add(argv, (gpointer)piggyback_path());
	for (gsize i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);

	launcher_set_env(launcher, env);
	proc->process =
	    g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
	proc->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc->process));
	proc->lines = g_ptr_array_new_with_free_func(g_free);
	proc->reading = TRUE;
	g_data_input_stream_read_line_async(proc->out, G_PRIORITY_DEFAULT, NULL, proc_line_cb,
					    proc);
	g_subprocess_wait_async(proc->process, NULL, proc_exited_cb, proc);
	return proc;
}

static Proc *
proc_start(const char *first, ...) G_GNUC_NULL_TERMINATED;

/* Starts piggyback with the given arguments; stdout is collected line by line. */
static Proc *
proc_start(const char *first, ...)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	va_list ap;

	va_start(ap, first);
	for (const char *arg = first; arg != NULL; arg = va_arg(ap, const char *))
		g_ptr_array_add(args, (gpointer)arg);
	va_end(ap);
	g_ptr_array_add(args, NULL);
	return proc_startv(0, NULL, (const char *const *)args->pdata);
}

/* The first stdout line containing @needle, waiting up to 10 s. */
static const char *
proc_wait_line(Proc *proc, const char *needle)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	for (;;) {
		for (guint i = 0; i < proc->lines->len; i++) {
			const char *line = g_ptr_array_index(proc->lines, i);

			if (strstr(line, needle) != NULL)
				return line;
		}
		g_assert_true(proc->reading);
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
}

static guint16
proc_wait_port(Proc *proc, const char *prefix)
{
	const char *line = proc_wait_line(proc, prefix);
	const char *colon = strrchr(line, ':');

	return (guint16)g_ascii_strtoull(colon + 1, NULL, 10);
}

/* A memory figure of the process from /proc/PID/status ("VmHWM:", "RssAnon:"), in bytes. */
static guint64
proc_status_bytes(Proc *proc, const char *field)
{
	g_autofree char *path =
	    g_strdup_printf("/proc/%s/status", g_subprocess_get_identifier(proc->process));
	g_autofree char *status = NULL;
	const char *line;

	g_assert_true(g_file_get_contents(path, &status, NULL, NULL));
	line = strstr(status, field);
	g_assert_nonnull(line);
	return g_ascii_strtoull(line + strlen(field), NULL, 10) * 1024;
}

/* Peak resident memory of the process, in bytes. */
static guint64
proc_peak_rss(Proc *proc)
{
	return proc_status_bytes(proc, "VmHWM:");
}

/* Stops the process with SIGTERM if it still runs; it must then exit cleanly with 0 (and,
 * in a sanitizer build, without leaks). */
static void
proc_stop(Proc *proc)
{
	if (!proc->exited) {
		g_subprocess_send_signal(proc->process, SIGTERM);
		pb_test_wait_until(proc->exited, 10);
		g_assert_true(g_subprocess_get_if_exited(proc->process));
		g_assert_cmpint(g_subprocess_get_exit_status(proc->process), ==, 0);
	}
	pb_test_wait_until(!proc->reading, 10);
	g_object_unref(proc->out);
	g_object_unref(proc->process);
	g_ptr_array_unref(proc->lines);
	g_free(proc);
}

/* Runs piggyback to completion, with the NAME=VALUE strings of @env (nullable) set; returns
 * its exit status, stderr in @err_out. */
static int
run_piggyback_env(char **err_out, const char *const *env, const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);

	g_ptr_array_add(argv, (gpointer)piggyback_path());
	for (gsize i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	launcher_set_env(launcher, env);
	process = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(process, NULL, NULL, NULL, err_out, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(process));
	return g_subprocess_get_exit_status(process);
}

static int
run_piggyback(char **err_out, const char *const *args)
{
	return run_piggyback_env(err_out, NULL, args);
}

static void
test_cli_bad_input(void)
{
	const struct {
		int status;
		const char *needle;
		const char *args[8];
	} cases[] = {
	    {2, "Usage", {NULL}},
	    {2, "unknown command", {"bogus", NULL}},
	    {2, "--port", {"serve", "-p", "70000", NULL}},
	    {2, "abc", {"serve", "-p", "abc", NULL}},
	    {2, "--tunnel-port", {"serve", "-t", "-1", NULL}},
	    {2, "FIRST-LAST", {"serve", "-t", "9000-8000", NULL}},
	    {2, "FIRST-LAST", {"serve", "-t", "0-10", NULL}},
	    {2, "FIRST-LAST", {"serve", "-t", "9000-", NULL}},
	    {2, "IP address", {"serve", "-H", "not-an-address", NULL}},
	    {2, "--listen", {"serve", "-l", "example.com", NULL}},
	    {2, "--features", {"serve", "--features", "flow,zip", NULL}},
	    {2, "--window", {"serve", "--window", "10", NULL}},
	    {2, "--features", {"forward", "-p", "80", "--features", "v3", NULL}},
	    {2, "--features", {"forward", "-p", "80", "--features", "proxy-v1", NULL}},
	    {2, "--proxy-protocol", {"forward", "-p", "80", "--proxy-protocol", "v3", NULL}},
	    {2, "unexpected argument “extra”", {"serve", "extra", NULL}},
	    {2, "--port is required", {"forward", NULL}},
	    {2, "--port", {"forward", "-p", "0", NULL}},
	    {2, "--port", {"forward", "-p", "65536", NULL}},
	    {2, "ws://", {"forward", "-p", "80", "-s", "ftp://example.com", NULL}},
	    {2, "not a server address", {"forward", "-p", "80", "-s", "localhost:99999", NULL}},
	    {2, "Unknown option", {"forward", "-p", "80", "--bogus", NULL}},
	};

	g_test_summary("Bad command lines get a one-line reason and exit status 2");
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *err = NULL;
		int status = run_piggyback(&err, cases[i].args);

		g_test_message("case %zu: status %d, stderr %s", i, status, err);
		g_assert_cmpint(status, ==, cases[i].status);
		g_assert_nonnull(strstr(err, cases[i].needle));
	}
}

static void
test_cli_help_version(void)
{
	const char *version[] = {"--version", NULL};
	const char *serve_help[] = {"serve", "--help", NULL};
	const char *forward_help[] = {"forward", "--help", NULL};
	g_autofree char *out = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) process = NULL;
	g_autofree char *err = NULL;

	g_test_summary("--version and every command's --help answer and exit 0");
	g_assert_cmpint(run_piggyback(&err, version), ==, 0);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(run_piggyback(&err, serve_help), ==, 0);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(run_piggyback(&err, forward_help), ==, 0);

	process = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, piggyback_path(),
				   "serve", "--help", NULL);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(process, NULL, NULL, &out, NULL, &error);
	g_assert_nonnull(strstr(out, "--tunnel-port"));
	g_assert_nonnull(strstr(out, "--public-host"));
}

static void
test_cli_forward_name(void)
{
	const char *forward = g_getenv("PB_PIGGYBACK_FORWARD");
	g_autoptr(GSubprocess) help = NULL;
	g_autoptr(GSubprocess) bare = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;

	g_test_summary("piggyback-forward is piggyback forward");
	g_assert_nonnull(forward);
	help = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, forward, "--help", NULL);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(help, NULL, NULL, &out, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_subprocess_get_exit_status(help), ==, 0);
	g_assert_nonnull(strstr(out, "--server"));

	bare = g_subprocess_new(G_SUBPROCESS_FLAGS_STDERR_PIPE, &error, forward, NULL);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(bare, NULL, NULL, NULL, &err, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_subprocess_get_exit_status(bare), ==, 2);
	g_assert_nonnull(strstr(err, "piggyback-forward: --port is required"));
}

static void
test_cli_runtime_errors(void)
{
	g_autoptr(GSocket) busy =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
	g_autoptr(GInetAddress) any = g_inet_address_new_any(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(any, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autofree char *busy_port = NULL;
	g_autofree char *dead_server = NULL;
	g_autofree char *wrong_path = NULL;
	g_autofree char *err = NULL;
	Proc *server;

	g_test_summary("A busy port, an unreachable server and a refusing server give exit 1");
	g_assert_true(g_socket_bind(busy, address, FALSE, NULL));
	g_assert_true(g_socket_listen(busy, NULL));
	bound = g_socket_get_local_address(busy, NULL);
	busy_port =
	    g_strdup_printf("%u", g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
	{
		const char *args[] = {"serve", "-p", busy_port, NULL};

		g_assert_cmpint(run_piggyback(&err, args), ==, 1);
		g_assert_nonnull(strstr(err, "cannot listen"));
		g_clear_pointer(&err, g_free);
	}

	dead_server = g_strdup_printf("127.0.0.1:%u", pb_test_free_port());
	{
		const char *args[] = {"forward", "-p", "9", "-s", dead_server, NULL};

		g_assert_cmpint(run_piggyback(&err, args), ==, 1);
		g_assert_nonnull(strstr(err, "cannot open a tunnel"));
		g_clear_pointer(&err, g_free);
	}

	server = proc_start("serve", "-p", "0", "-l", "127.0.0.1", "-H", "127.0.0.1", NULL);
	wrong_path =
	    g_strdup_printf("ws://127.0.0.1:%u/wrong-path", proc_wait_port(server, "Listening on"));
	{
		const char *args[] = {"forward", "-p", "9", "-s", wrong_path, NULL};

		g_assert_cmpint(run_piggyback(&err, args), ==, 1);
		g_assert_nonnull(strstr(err, "404"));
	}
	proc_stop(server);
}

typedef struct {
	Proc *server;
	Proc *client;
	guint16 public_port;
} Tunnel;

/* A server (keeping a lost client's port for @grace seconds) and a client. */
static void
tunnel_start_grace(Tunnel *tunnel, guint16 local_port, const char *grace)
{
	g_autofree char *local = g_strdup_printf("%u", local_port);
	g_autofree char *server_url = NULL;

	tunnel->server = proc_start("serve", "-p", "0", "-l", "127.0.0.1", "-H", "127.0.0.1",
				    "--grace", grace, NULL);
	server_url =
	    g_strdup_printf("127.0.0.1:%u", proc_wait_port(tunnel->server, "Listening on"));
	tunnel->client =
	    proc_start("forward", "-p", local, "-h", "127.0.0.1", "-s", server_url, NULL);
	tunnel->public_port = proc_wait_port(tunnel->client, "Access URL:");
	proc_wait_line(tunnel->client, "HTTP URL: http://127.0.0.1:");
}

static void
tunnel_start(Tunnel *tunnel, guint16 local_port)
{
	tunnel_start_grace(tunnel, local_port, "30");
}

static void
tunnel_stop(Tunnel *tunnel)
{
	proc_stop(tunnel->client);
	proc_stop(tunnel->server);
}

/* Both processes of the tunnel stayed under 64 MiB resident (unless sanitizers inflate it). */
static void
tunnel_assert_memory(Tunnel *tunnel)
{
	if (g_getenv("PB_TEST_SANITIZED") != NULL) {
		g_test_message("memory not checked: sanitizers inflate it");
		return;
	}
	g_test_message("peak RSS: server %" G_GUINT64_FORMAT " KiB, client %" G_GUINT64_FORMAT
		       " KiB",
		       proc_peak_rss(tunnel->server) / 1024, proc_peak_rss(tunnel->client) / 1024);
	g_assert_cmpuint(proc_peak_rss(tunnel->server), <, 64 * MIB);
	g_assert_cmpuint(proc_peak_rss(tunnel->client), <, 64 * MIB);
}

static gpointer
open_public_cb(gpointer user_data)
{
	GSocket *socket = pb_test_connect(GPOINTER_TO_UINT(user_data));

	g_assert_cmpint(g_socket_send(socket, "x", 1, NULL, NULL), ==, 1);
	return socket;
}

/* Waits for the tunnel to end a public connection; how long it took, in µs. */
static gpointer
wait_closed_cb(gpointer user_data)
{
	GSocket *socket = user_data;
	gint64 start = g_get_monotonic_time();
	char buf[64];

	for (;;) {
		gssize n = g_socket_receive(socket, buf, sizeof buf, NULL, NULL);

		if (n <= 0)
			break;
	}
	return GSIZE_TO_POINTER(g_get_monotonic_time() - start);
}

static void
test_client_killed(void)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	GSocket *public[3];
	Tunnel tunnel;

	g_test_summary("When the client dies, the server closes every public connection of its "
		       "tunnel at once, and its public port once the grace period is over");
	tunnel_start_grace(&tunnel, pb_test_service_get_port(echo), "1");
	for (guint i = 0; i < G_N_ELEMENTS(public); i++)
	public[i] = pb_test_run_in_thread(open_public_cb, GUINT_TO_POINTER(tunnel.public_port), 10);
	pb_test_wait_until(pb_test_service_get_bytes(echo) == G_N_ELEMENTS(public), 10);

	g_subprocess_send_signal(tunnel.client->process, SIGKILL);
	/* reaped before proc_stop(), which would otherwise SIGTERM it and expect a clean exit */
	pb_test_wait_until(tunnel.client->exited, 10);
	for (guint i = 0; i < G_N_ELEMENTS(public); i++) {
		gsize waited =
		    GPOINTER_TO_SIZE(pb_test_run_in_thread(wait_closed_cb, public[i], 10));

		g_assert_cmpuint(waited, <, 5 * G_USEC_PER_SEC);
		g_object_unref(public[i]);
	}
	/* the port is kept for the client for --grace 1, then closed: the server listens on its
	 * WebSocket port only (a connect to the old port could reach another test's listener,
	 * or connect to itself) */
	pb_test_wait_until(pb_test_count_listeners(tunnel.server->process) == 1, 10);
	tunnel_stop(&tunnel);
	pb_test_service_free(echo);
}

static void
test_server_killed(void)
{
	g_autofree char *server_url = NULL;
	Tunnel tunnel;

	g_test_summary("With --no-reconnect, when the server dies the client says so and exits "
		       "non-zero");
	tunnel.server = proc_start("serve", "-p", "0", "-l", "127.0.0.1", "-H", "127.0.0.1", NULL);
	server_url = g_strdup_printf("127.0.0.1:%u", proc_wait_port(tunnel.server, "Listening on"));
	tunnel.client = proc_start("forward", "-p", "9", "-h", "127.0.0.1", "-s", server_url,
				   "--no-reconnect", NULL);
	proc_wait_line(tunnel.client, "HTTP URL:");
	g_subprocess_send_signal(tunnel.server->process, SIGKILL);
	pb_test_wait_until(tunnel.client->exited && tunnel.server->exited, 10);
	g_assert_true(g_subprocess_get_if_exited(tunnel.client->process));
	g_assert_cmpint(g_subprocess_get_exit_status(tunnel.client->process), ==, 1);
	tunnel_stop(&tunnel);
}

static void
test_keepalive_dead_server(void)
{
	g_autofree char *server_url = NULL;
	Tunnel tunnel;

	g_test_summary("A server that stops answering (stopped, not closed: no FIN) is noticed "
		       "by the client's pings within a bounded time");
	tunnel.server = proc_start("serve", "-p", "0", "-l", "127.0.0.1", "-H", "127.0.0.1",
				   "--keepalive", "1", NULL);
	server_url = g_strdup_printf("127.0.0.1:%u", proc_wait_port(tunnel.server, "Listening on"));
	tunnel.client = proc_start("forward", "-p", "9", "-h", "127.0.0.1", "-s", server_url,
				   "--no-reconnect", "--keepalive", "1", NULL);
	proc_wait_line(tunnel.client, "HTTP URL:");
	g_subprocess_send_signal(tunnel.server->process, SIGSTOP);
	/* two silent intervals, then libsoup's close handshake times out (5 s) */
	pb_test_wait_until(tunnel.client->exited, 15);
	g_assert_cmpint(g_subprocess_get_exit_status(tunnel.client->process), ==, 1);
	g_subprocess_send_signal(tunnel.server->process, SIGCONT);
	tunnel_stop(&tunnel);
}

static void
test_keepalive_dead_client(void)
{
	Tunnel tunnel;
	g_autofree char *server_url = NULL;

	g_test_summary("A client that stops answering is noticed by the server's pings: its "
		       "public port closes within a bounded time");
	tunnel.server = proc_start("serve", "-p", "0", "-l", "127.0.0.1", "-H", "127.0.0.1",
				   "--keepalive", "1", "--grace", "0", NULL);
	server_url = g_strdup_printf("127.0.0.1:%u", proc_wait_port(tunnel.server, "Listening on"));
	tunnel.client = proc_start("forward", "-p", "9", "-h", "127.0.0.1", "-s", server_url,
				   "--no-reconnect", NULL);
	proc_wait_line(tunnel.client, "HTTP URL:");
	g_assert_cmpuint(pb_test_count_listeners(tunnel.server->process), ==, 2);
	g_subprocess_send_signal(tunnel.client->process, SIGSTOP);
	pb_test_wait_until(pb_test_count_listeners(tunnel.server->process) == 1, 15);
	g_subprocess_send_signal(tunnel.client->process, SIGKILL);
	pb_test_wait_until(tunnel.client->exited, 10);
	tunnel_stop(&tunnel);
}

/* How many stdout lines of @proc contain @needle so far. */
static guint
proc_count_lines(Proc *proc, const char *needle)
{
	guint n = 0;

	for (guint i = 0; i < proc->lines->len; i++)
		n += strstr(g_ptr_array_index(proc->lines, i), needle) != NULL;
	return n;
}

/* One byte through the tunnel's public port and back. */
static gpointer
echo_one_byte_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	char byte = 0;

	g_assert_cmpint(g_socket_send(socket, "r", 1, NULL, NULL), ==, 1);
	g_assert_cmpint(g_socket_receive(socket, &byte, 1, NULL, NULL), ==, 1);
	g_assert_cmpint(byte, ==, 'r');
	return GINT_TO_POINTER(TRUE);
}

static void
test_server_restarted(void)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autofree char *ws_port = g_strdup_printf("%u", pb_test_free_port());
	g_autofree char *public_port = g_strdup_printf("%u", pb_test_free_port());
	g_autofree char *local_port = g_strdup_printf("%u", pb_test_service_get_port(echo));
	g_autofree char *server_url = g_strdup_printf("127.0.0.1:%s", ws_port);
	g_autofree char *access_url =
	    g_strdup_printf("Access URL: tcp://127.0.0.1:%s", public_port);
	const char *serve_args[] = {"serve", "-p",	  ws_port, "-l",	"127.0.0.1",
				    "-H",    "127.0.0.1", "-t",	   public_port, NULL};
	Tunnel tunnel;

	g_test_summary("When the server dies and comes back, the client reconnects by itself "
		       "(backoff from 0.5 s) and is online again at the same access URL");
	tunnel.server = proc_startv(0, NULL, serve_args);
	proc_wait_line(tunnel.server, "Listening on");
	tunnel.client =
	    proc_start("forward", "-p", local_port, "-h", "127.0.0.1", "-s", server_url, NULL);
	proc_wait_line(tunnel.client, access_url);
	tunnel.public_port = (guint16)g_ascii_strtoull(public_port, NULL, 10);
	g_assert_true(
	    pb_test_run_in_thread(echo_one_byte_cb, GUINT_TO_POINTER(tunnel.public_port), 10));

	g_subprocess_send_signal(tunnel.server->process, SIGKILL);
	pb_test_wait_until(tunnel.server->exited, 10);
	proc_stop(tunnel.server);
	g_usleep(G_USEC_PER_SEC); /* a retry or two fails meanwhile */
	g_assert_false(tunnel.client->exited);
	tunnel.server = proc_startv(0, NULL, serve_args);
	/* the backoff is at most a few seconds this early */
	pb_test_wait_until(proc_count_lines(tunnel.client, access_url) == 2, 15);
	g_assert_true(
	    pb_test_run_in_thread(echo_one_byte_cb, GUINT_TO_POINTER(tunnel.public_port), 10));
	tunnel_stop(&tunnel);
	pb_test_service_free(echo);
}

/* forward ended by @user_data (a signal): it says goodbye, so the server frees its fixed
 * port at once (not after --grace), and the next client gets that port. */
static void
test_goodbye(gconstpointer user_data)
{
	int signum = GPOINTER_TO_INT(user_data);
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autofree char *ws_port = g_strdup_printf("%u", pb_test_free_port());
	g_autofree char *public_port = g_strdup_printf("%u", pb_test_free_port());
	g_autofree char *local_port = g_strdup_printf("%u", pb_test_service_get_port(echo));
	g_autofree char *server_url = g_strdup_printf("127.0.0.1:%s", ws_port);
	g_autofree char *access_url =
	    g_strdup_printf("Access URL: tcp://127.0.0.1:%s", public_port);
	/* --grace 600: only a goodbye frees the port within this test */
	const char *serve_args[] = {"serve",	 "-p", ws_port,	    "-l",      "127.0.0.1", "-H",
				    "127.0.0.1", "-t", public_port, "--grace", "600",	    NULL};
	Proc *server;
	Proc *client;

	g_test_summary("Ctrl+C, SIGTERM and SIGHUP end forward cleanly (close 1001, exit 0): the "
		       "server frees its port at once instead of keeping it for --grace, and the "
		       "next client gets the same fixed port");
	server = proc_startv(0, NULL, serve_args);
	proc_wait_line(server, "Listening on");
	for (guint i = 0; i < 2; i++) {
		client = proc_start("forward", "-p", local_port, "-h", "127.0.0.1", "-s",
				    server_url, NULL);
		proc_wait_line(client, access_url);
		g_assert_true(pb_test_run_in_thread(
		    echo_one_byte_cb,
		    GUINT_TO_POINTER((guint16)g_ascii_strtoull(public_port, NULL, 10)), 10));
		g_subprocess_send_signal(client->process, signum);
		pb_test_wait_until(client->exited, 10);
		g_assert_true(g_subprocess_get_if_exited(client->process));
		g_assert_cmpint(g_subprocess_get_exit_status(client->process), ==, 0);
		proc_stop(client);
	}
	proc_stop(server);
	pb_test_service_free(echo);
}

#define BURST 50 /* under the echo service's 64 threads */

/* Each connection of the burst echoes a byte, then closes. */
static gpointer
echo_burst_cb(gpointer user_data)
{
	int *fds = user_data;

	for (guint i = 0; i < BURST; i++) {
		char byte = 0;
		struct pollfd pfd = {.fd = fds[i], .events = POLLIN};

		g_assert_cmpint(send(fds[i], "b", 1, MSG_NOSIGNAL), ==, 1);
		g_assert_cmpint(poll(&pfd, 1, 10000), ==, 1);
		g_assert_cmpint(recv(fds[i], &byte, 1, 0), ==, 1);
		g_assert_cmpint(byte, ==, 'b');
		close(fds[i]);
	}
	return GINT_TO_POINTER(TRUE);
}

static void
test_connect_burst(void)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	int fds[BURST];
	Tunnel tunnel;

	g_test_summary("A burst of 50 new connections while the server is busy all complete the "
		       "TCP handshake: the public port's listen backlog is not GLib's default 10, "
		       "which dropped the rest of a burst for a second (SYN retransmission)");
	tunnel_start(&tunnel, pb_test_service_get_port(echo));
	g_subprocess_send_signal(tunnel.server->process, SIGSTOP); /* nothing is accepted */
	g_assert_cmpuint(pb_test_connect_burst(tunnel.public_port, NULL, fds, BURST), ==, BURST);
	g_subprocess_send_signal(tunnel.server->process, SIGCONT);
	/* in a thread: the echo service accepts in this thread's main loop */
	g_assert_true(pb_test_run_in_thread(echo_burst_cb, fds, 20));
	tunnel_stop(&tunnel);
	pb_test_service_free(echo);
}

/* How many file descriptors @proc has open. */
static guint
proc_count_fds(Proc *proc)
{
	return pb_test_count_fds(proc->process);
}

static void
test_slowloris(void)
{
	enum { N_IDLE = 200, PER_ADDRESS = PB_MAX_PENDING_PER_ADDRESS_DEFAULT };
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autofree char *server_url = NULL;
	g_autofree char *local = g_strdup_printf("%u", pb_test_service_get_port(echo));
	int fds[N_IDLE];
	guint16 ws_port;
	guint baseline;
	Tunnel tunnel;

	g_test_summary("200 connections to the WebSocket port from one address that never send "
		       "a request: all but 32 are closed at once, those 32 when the handshake "
		       "time is up; a client from elsewhere opens a working tunnel meanwhile, "
		       "and nothing is left behind");
	tunnel.server = proc_start("serve", "-p", "0", "-l", "127.0.0.1", "-H", "127.0.0.1",
				   "--handshake-timeout", "4", NULL);
	ws_port = proc_wait_port(tunnel.server, "Listening on");
	baseline = proc_count_fds(tunnel.server);
	g_assert_cmpuint(pb_test_connect_burst(ws_port, "127.0.0.3", fds, N_IDLE), ==, N_IDLE);
	/* the client comes from 127.0.0.1 */
	server_url = g_strdup_printf("127.0.0.1:%u", ws_port);
	tunnel.client =
	    proc_start("forward", "-p", local, "-h", "127.0.0.1", "-s", server_url, NULL);
	tunnel.public_port = proc_wait_port(tunnel.client, "Access URL:");
	g_assert_true(
	    pb_test_run_in_thread(echo_one_byte_cb, GUINT_TO_POINTER(tunnel.public_port), 10));
	pb_test_wait_until(pb_test_count_closed_by_peer(fds, N_IDLE) >= N_IDLE - PER_ADDRESS, 3);
	g_assert_cmpuint(pb_test_count_closed_by_peer(fds, N_IDLE), ==, N_IDLE - PER_ADDRESS);
	/* the server closes the rest itself: the test still holds its ends open */
	pb_test_wait_until(pb_test_count_closed_by_peer(fds, N_IDLE) == N_IDLE, 10);
	/* left: the client's WebSocket and its public listener */
	pb_test_wait_until(proc_count_fds(tunnel.server) <= baseline + 2, 10);
	for (guint i = 0; i < N_IDLE; i++)
		close(fds[i]);
	tunnel_stop(&tunnel);
	pb_test_service_free(echo);
}

/* User + system CPU seconds @proc has used so far, from /proc/PID/stat. */
static double
proc_cpu_seconds(Proc *proc)
{
	g_autofree char *path =
	    g_strdup_printf("/proc/%s/stat", g_subprocess_get_identifier(proc->process));
	g_autofree char *stat = NULL;
	g_auto(GStrv) fields = NULL;

	g_assert_true(g_file_get_contents(path, &stat, NULL, NULL));
	fields = g_strsplit(strrchr(stat, ')') + 2, " ", -1); /* fields[0] is field 3 */
	g_assert_cmpuint(g_strv_length(fields), >, 12);
	return (g_ascii_strtod(fields[11], NULL) + g_ascii_strtod(fields[12], NULL)) /
	       sysconf(_SC_CLK_TCK);
}

static void
test_out_of_fds(void)
{
	enum { N_CONNS = 60 };
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autofree char *local = g_strdup_printf("%u", pb_test_service_get_port(echo));
	g_autofree char *server_url = NULL;
	struct rlimit saved;
	struct rlimit low;
	int fds[N_CONNS];
	double cpu_before;
	Tunnel tunnel;

	g_test_summary("A server out of file descriptors pauses accepting instead of spinning "
		       "(GSocketService retried at full CPU, 100 000 warnings a second), and "
		       "serves again once connections close");
	/* the server inherits a soft limit of 40 open files; this process gets its own back */
	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
	low = saved;
	low.rlim_cur = 40;
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
	tunnel.server = proc_start("serve", "-p", "0", "-l", "127.0.0.1", "-H", "127.0.0.1", NULL);
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
	server_url = g_strdup_printf("127.0.0.1:%u", proc_wait_port(tunnel.server, "Listening on"));
	tunnel.client =
	    proc_start("forward", "-p", local, "-h", "127.0.0.1", "-s", server_url, NULL);
	tunnel.public_port = proc_wait_port(tunnel.client, "Access URL:");
	pb_test_connect_burst(tunnel.public_port, NULL, fds, N_CONNS); /* more than 40 fds' worth */
	g_usleep(500 * G_TIME_SPAN_MILLISECOND);
	cpu_before = proc_cpu_seconds(tunnel.server);
	g_usleep(2 * G_USEC_PER_SEC);
	g_test_message("server CPU over 2 s out of fds: %.2f s",
		       proc_cpu_seconds(tunnel.server) - cpu_before);
	g_assert_cmpfloat(proc_cpu_seconds(tunnel.server) - cpu_before, <, 0.5);
	for (guint i = 0; i < N_CONNS; i++)
		close(fds[i]);
	g_assert_true(
	    pb_test_run_in_thread(echo_one_byte_cb, GUINT_TO_POINTER(tunnel.public_port), 10));
	tunnel_stop(&tunnel);
	pb_test_service_free(echo);
}

/* A local service that leaves connections in its listen backlog until the test accepts
 * them: thousands of idle tunneled connections without a thread each. */
static int
listen_never_accept(guint16 *port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof addr;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	g_assert_cmpint(listen(fd, 4096), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&addr, &len), ==, 0);
	*port = ntohs(addr.sin_port);
	return fd;
}

/* Whether @proc's heap (RssAnon) is back under @idle plus half the way to @held. */
static gboolean
proc_heap_returned(Proc *proc, guint64 idle, guint64 held)
{
	return proc_status_bytes(proc, "RssAnon:") < idle + (held - idle) / 2;
}

/* Opens @n connections through @public_port, each of which sends a byte, which the local
 * service (@listen_fd) accepts and answers with one. */
static void
hold_keystroke_connections(guint16 public_port, int listen_fd, int *fds, int *local_fds, guint n)
{
	g_assert_cmpuint(pb_test_connect_burst(public_port, NULL, fds, n), ==, n);
	/* a keystroke each way: each side keeps it until the other confirms it (`resume`) */
	for (guint i = 0; i < n; i++)
		g_assert_cmpint(send(fds[i], "k", 1, MSG_NOSIGNAL), ==, 1);
	for (guint i = 0; i < n; i++) {
		struct pollfd ready = {.fd = listen_fd, .events = POLLIN};

		g_assert_cmpint(poll(&ready, 1, 10 * 1000), ==, 1); /* no blocking accept */
		local_fds[i] = accept(listen_fd, NULL, NULL);
		g_assert_cmpint(local_fds[i], >=, 0);
		g_assert_cmpint(send(local_fds[i], "e", 1, MSG_NOSIGNAL), ==, 1);
	}
	for (guint i = 0; i < n; i++) {
		struct pollfd ready = {.fd = fds[i], .events = POLLIN};
		char byte;

		g_assert_cmpint(poll(&ready, 1, 10 * 1000), ==, 1);
		g_assert_cmpint(recv(fds[i], &byte, 1, 0), ==, 1);
		g_assert_cmpint(byte, ==, 'e');
	}
}

static void
test_memory_returned(void)
{
	enum { N_CONNS = 3000, N_BATCH = 300 };
	/* as the systemd units run it: GLib 2.74's slice allocator never gives memory back */
	const char *const env[] = {"G_SLICE=always-malloc", NULL};
	g_autofree int *fds = g_new(int, N_CONNS);
	g_autofree int *local_fds = g_new(int, N_CONNS);
	g_autofree char *local = NULL;
	g_autofree char *server_url = NULL;
	guint64 idle[2], held[2];
	struct rlimit saved, raised;
	guint16 local_port;
	int listen_fd;
	Tunnel tunnel;

	g_test_summary("3 000 tunneled connections, each of which sent a byte each way, cost "
		       "each process at most 3 KiB of heap per connection (the target is 2), "
		       "and memory goes back after a burst: once they closed, within 10 s both "
		       "processes' heaps shrink to less than half of what they grew by");
	if (g_getenv("PB_TEST_SANITIZED") != NULL) {
		g_test_skip("sanitizers keep freed memory on purpose");
		return;
	}
	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
	if (saved.rlim_max < 2 * N_CONNS + 200) {
		g_test_skip("the hard limit on open files is too low for 3 000 connections");
		return;
	}
	raised = saved;
	raised.rlim_cur = saved.rlim_max; /* for this test and the processes it starts */
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &raised), ==, 0);
	listen_fd = listen_never_accept(&local_port);
	local = g_strdup_printf("%u", local_port);
	tunnel.server =
	    proc_startv(0, env,
			(const char *const[]){"serve", "-p", "0", "-l", "127.0.0.1", "-H",
					      "127.0.0.1", "--max-connections", "100000", NULL});
	server_url = g_strdup_printf("127.0.0.1:%u", proc_wait_port(tunnel.server, "Listening on"));
	tunnel.client =
	    proc_startv(0, env,
			(const char *const[]){"forward", "-p", local, "-h", "127.0.0.1", "-s",
					      server_url, "--max-connections", "100000", NULL});
	tunnel.public_port = proc_wait_port(tunnel.client, "Access URL:");
	idle[0] = proc_status_bytes(tunnel.server, "RssAnon:");
	idle[1] = proc_status_bytes(tunnel.client, "RssAnon:");

	/* in batches, as connections come in life: a burst of 3 000 at once leaves the heap
	 * of their dialling behind, free but not yet given back */
	for (guint first = 0; first < N_CONNS; first += N_BATCH)
		hold_keystroke_connections(tunnel.public_port, listen_fd, fds + first,
					   local_fds + first, N_BATCH);
	held[0] = proc_status_bytes(tunnel.server, "RssAnon:");
	held[1] = proc_status_bytes(tunnel.client, "RssAnon:");
	g_assert_cmpuint((held[0] - MIN(idle[0], held[0])) / N_CONNS, <=, 3 * 1024);
	g_assert_cmpuint((held[1] - MIN(idle[1], held[1])) / N_CONNS, <=, 3 * 1024);
	/* both ends close: the tunnel relays a half-close and would wait for the other */
	for (guint i = 0; i < N_CONNS; i++) {
		close(local_fds[i]);
		close(fds[i]);
	}
	pb_test_wait_until(
	    proc_count_fds(tunnel.server) < 100 && proc_count_fds(tunnel.client) < 100, 30);
	g_test_message("heap KiB idle, holding %u connections, then: server %" G_GUINT64_FORMAT
		       " %" G_GUINT64_FORMAT ", client %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
		       N_CONNS, idle[0] / 1024, held[0] / 1024, idle[1] / 1024, held[1] / 1024);
	pb_test_wait_until(proc_heap_returned(tunnel.server, idle[0], held[0]) &&
			       proc_heap_returned(tunnel.client, idle[1], held[1]),
			   10);
	g_test_message("after: server %" G_GUINT64_FORMAT " KiB, client %" G_GUINT64_FORMAT " KiB",
		       proc_status_bytes(tunnel.server, "RssAnon:") / 1024,
		       proc_status_bytes(tunnel.client, "RssAnon:") / 1024);
	tunnel_stop(&tunnel);
	close(listen_fd);
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
}

#define SLOW_SIZE (256 * MIB)

typedef struct {
	guint16 port;
	int done; /* atomic */
} Upload;

static gpointer
slow_upload_cb(gpointer user_data)
{
	Upload *upload = user_data;
	g_autoptr(GSocket) socket = pb_test_connect(upload->port);
	g_autofree guint8 *buf = g_malloc(MIB);
	guint64 offset = 0;

	g_socket_set_timeout(socket, 60);
	while (offset < SLOW_SIZE) {
		gsize done = 0;

		pb_test_pattern_fill(buf, MIB, offset);
		while (done < MIB) {
			gssize n =
			    g_socket_send(socket, (char *)buf + done, MIB - done, NULL, NULL);

			g_assert_cmpint(n, >, 0);
			done += (gsize)n;
		}
		offset += MIB;
	}
	/* v1 ends the connection on our end of stream: keep it open until the reader has all */
	g_socket_condition_timed_wait(socket, G_IO_IN, 120 * G_USEC_PER_SEC, NULL, NULL);
	g_atomic_int_set(&upload->done, 1);
	return NULL;
}

/* A local service that reads 64 KiB every 2 ms: about 32 MiB/s, far below the tunnel. */
static gpointer
slow_reader_cb(gpointer user_data)
{
	GSocketListener *listener = user_data;
	g_autoptr(GSocketConnection) connection =
	    g_socket_listener_accept(listener, NULL, NULL, NULL);
	GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(connection));
	g_autofree guint8 *buf = g_malloc(64 * 1024);
	guint64 offset = 0;

	g_assert_nonnull(connection);
	while (offset < SLOW_SIZE) {
		gssize n = g_input_stream_read(in, buf, 64 * 1024, NULL, NULL);

		g_assert_cmpint(n, >, 0);
		g_assert_true(pb_test_pattern_check(buf, (gsize)n, offset));
		offset += (guint64)n;
		g_usleep(2000);
	}
	return GSIZE_TO_POINTER(offset);
}

static void
test_slow_reader_memory(void)
{
	g_autoptr(GSocketListener) listener = g_socket_listener_new();
	Upload upload = {0, 0};
	guint16 local_port;
	GThread *uploader;
	gsize received;
	Tunnel tunnel;

	g_test_summary("A slow local reader while the public side pushes 256 MiB: the data "
		       "arrives intact and both processes stay under 64 MiB resident");
	local_port = g_socket_listener_add_any_inet_port(listener, NULL, NULL);
	tunnel_start(&tunnel, local_port);
	upload.port = tunnel.public_port;
	uploader = g_thread_new("upload", slow_upload_cb, &upload);
	received = GPOINTER_TO_SIZE(pb_test_run_in_thread(slow_reader_cb, listener, 120));
	g_assert_cmpuint(received, ==, SLOW_SIZE);

	tunnel_assert_memory(&tunnel);
	tunnel_stop(&tunnel);
	g_thread_join(uploader);
}

#define HOL_SIZE    (64 * MIB)
#define HOL_FLOWING 8

/* A public client: sends HOL_SIZE bytes of the pattern, half-closes, waits for the end. */
static gpointer
hol_writer_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	g_autofree guint8 *buf = g_malloc(256 * 1024);
	guint64 offset = 0;
	char end;

	g_socket_set_timeout(socket, 120);
	while (offset < HOL_SIZE) {
		gssize n;

		pb_test_pattern_fill(buf, 256 * 1024, offset);
		n = g_socket_send(socket, (const char *)buf, MIN(256 * 1024, HOL_SIZE - offset),
				  NULL, NULL);
		g_assert_cmpint(n, >, 0);
		offset += (guint64)n;
	}
	g_assert_true(g_socket_shutdown(socket, FALSE, TRUE, NULL));
	g_assert_cmpint(g_socket_receive(socket, &end, 1, NULL, NULL), ==, 0);
	return NULL;
}

/* The local service's side of one connection: reads it all, checking the pattern. */
static gpointer
hol_reader_cb(gpointer user_data)
{
	g_autoptr(GSocketConnection) connection = user_data;
	GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(connection));
	g_autofree guint8 *buf = g_malloc(256 * 1024);
	guint64 offset = 0;

	for (;;) {
		gssize n = g_input_stream_read(in, buf, 256 * 1024, NULL, NULL);

		g_assert_cmpint(n, >=, 0);
		if (n == 0)
			break;
		g_assert_true(pb_test_pattern_check(buf, (gsize)n, offset));
		offset += (guint64)n;
	}
	return GSIZE_TO_POINTER(offset);
}

static void
test_head_of_line(void)
{
	g_autoptr(GSocketListener) listener = g_socket_listener_new();
	g_autoptr(GSocketConnection) stalled = NULL;
	GThread *stalled_writer;
	GThread *writers[HOL_FLOWING];
	GThread *readers[HOL_FLOWING];
	guint16 local_port;
	Tunnel tunnel;

	g_test_summary("Protocol v2: one connection whose reader stops entirely while 8 others "
		       "move 64 MiB each: the 8 finish byte-exact, the stalled one completes when "
		       "read, and both processes stay under 64 MiB resident");
	local_port = g_socket_listener_add_any_inet_port(listener, NULL, NULL);
	tunnel_start(&tunnel, local_port);

	stalled_writer =
	    g_thread_new("stalled", hol_writer_cb, GUINT_TO_POINTER(tunnel.public_port));
	stalled = g_socket_listener_accept(listener, NULL, NULL, NULL);
	g_assert_nonnull(stalled);
	for (guint i = 0; i < HOL_FLOWING; i++)
		writers[i] =
		    g_thread_new("writer", hol_writer_cb, GUINT_TO_POINTER(tunnel.public_port));
	for (guint i = 0; i < HOL_FLOWING; i++) {
		GSocketConnection *connection =
		    g_socket_listener_accept(listener, NULL, NULL, NULL);

		g_assert_nonnull(connection);
		readers[i] = g_thread_new("reader", hol_reader_cb, connection);
	}
	for (guint i = 0; i < HOL_FLOWING; i++) {
		g_assert_cmpuint(GPOINTER_TO_SIZE(g_thread_join(readers[i])), ==, HOL_SIZE);
		g_thread_join(writers[i]);
	}

	/* the stalled one waited without holding anyone up; now it is read */
	g_assert_cmpuint(GPOINTER_TO_SIZE(hol_reader_cb(g_steal_pointer(&stalled))), ==, HOL_SIZE);
	g_thread_join(stalled_writer);

	tunnel_assert_memory(&tunnel);
	tunnel_stop(&tunnel);
}

static char *
write_token_file(const char *dir, const char *name, const char *contents)
{
	char *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(path, contents, -1, NULL));
	return path;
}

static void
test_auth(void)
{
	g_autofree char *dir = g_dir_make_tmp("pb-auth-XXXXXX", NULL);
	g_autofree char *token_file = write_token_file(dir, "token", "s3cret\n");
	g_autofree char *wrong_file = write_token_file(dir, "wrong", "n0pe\n");
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autofree char *local = g_strdup_printf("%u", pb_test_service_get_port(echo));
	g_autofree char *server_url = NULL;
	Proc *server;
	Proc *client;

	g_test_summary("serve --token-file: a client without the token or with a wrong one exits "
		       "1 saying the token was refused, and the server binds no public port for "
		       "it; the token from PIGGY_TOKEN or --token-file opens a working tunnel");
	server = proc_start("serve", "-p", "0", "-l", "127.0.0.1", "-H", "127.0.0.1",
			    "--token-file", token_file, NULL);
	server_url = g_strdup_printf("127.0.0.1:%u", proc_wait_port(server, "Listening on"));
	g_assert_cmpuint(pb_test_count_listeners(server->process), ==, 1);
	{
		const char *missing[] = {"forward", "-p", local, "-s", server_url, NULL};
		const char *wrong[] = {"forward",  "-p",	   local,      "-s",
				       server_url, "--token-file", wrong_file, NULL};
		const char *const *cases[] = {missing, wrong};

		for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
			g_autofree char *err = NULL;

			g_assert_cmpint(run_piggyback(&err, cases[i]), ==, 1);
			g_test_message("refused: %s", err);
			g_assert_nonnull(strstr(err, "refused the token"));
			g_assert_cmpuint(pb_test_count_listeners(server->process), ==, 1);
		}
	}

	{
		const char *args[] = {"forward",   "-p", local,	     "-h",
				      "127.0.0.1", "-s", server_url, NULL};

		const char *env[] = {"PIGGY_TOKEN=s3cret", NULL};

		client = proc_startv(0, env, args);
	}
	{
		guint16 public_port = proc_wait_port(client, "Access URL:");
		g_autoptr(GSocket) socket =
		    pb_test_run_in_thread(open_public_cb, GUINT_TO_POINTER(public_port), 10);

		g_assert_nonnull(socket); /* open until the echo came through */
		pb_test_wait_until(pb_test_service_get_bytes(echo) == 1, 10);
		g_assert_cmpuint(pb_test_count_listeners(server->process), ==, 2);
	}
	proc_stop(client);

	client = proc_start("forward", "-p", local, "-h", "127.0.0.1", "-s", server_url,
			    "--token-file", token_file, NULL);
	proc_wait_port(client, "Access URL:");
	proc_stop(client);
	proc_stop(server);
	pb_test_service_free(echo);
	g_unlink(token_file);
	g_unlink(wrong_file);
	g_rmdir(dir);
}

static void
test_auth_refused_on_reconnect(void)
{
	g_autofree char *dir = g_dir_make_tmp("pb-auth-XXXXXX", NULL);
	g_autofree char *token_file = write_token_file(dir, "token", "s3cret\n");
	g_autofree char *new_file = write_token_file(dir, "new", "r0tated\n");
	g_autofree char *ws_port = g_strdup_printf("%u", pb_test_free_port());
	g_autofree char *server_url = g_strdup_printf("127.0.0.1:%s", ws_port);
	const char *serve_old[] = {"serve",	"-p",		ws_port,    "-l",
				   "127.0.0.1", "--token-file", token_file, NULL};
	const char *serve_new[] = {"serve",	"-p",		ws_port,  "-l",
				   "127.0.0.1", "--token-file", new_file, NULL};
	Tunnel tunnel;

	g_test_summary("A client reconnecting to a server that now refuses its token gives up: "
		       "it exits 1 instead of retrying forever");
	tunnel.server = proc_startv(0, NULL, serve_old);
	proc_wait_line(tunnel.server, "Listening on");
	tunnel.client = proc_start("forward", "-p", "9", "-h", "127.0.0.1", "-s", server_url,
				   "--token-file", token_file, NULL);
	proc_wait_line(tunnel.client, "Access URL:");
	g_subprocess_send_signal(tunnel.server->process, SIGKILL);
	pb_test_wait_until(tunnel.server->exited, 10);
	proc_stop(tunnel.server);
	tunnel.server = proc_startv(0, NULL, serve_new);
	pb_test_wait_until(tunnel.client->exited, 15);
	g_assert_true(g_subprocess_get_if_exited(tunnel.client->process));
	g_assert_cmpint(g_subprocess_get_exit_status(tunnel.client->process), ==, 1);
	tunnel_stop(&tunnel);
	g_unlink(token_file);
	g_unlink(new_file);
	g_rmdir(dir);
}

static void
test_auth_bad_token_input(void)
{
	g_autofree char *dir = g_dir_make_tmp("pb-auth-XXXXXX", NULL);
	g_autofree char *empty = write_token_file(dir, "empty", "\n");
	g_autofree char *spaced = write_token_file(dir, "spaced", "two words\n");
	g_autofree char *missing = g_build_filename(dir, "missing", NULL);
	const struct {
		const char *env; /* PIGGY_TOKEN=…, or NULL */
		const char *needle;
		const char *args[8];
	} cases[] = {
	    {NULL, "empty", {"serve", "--token-file", empty, NULL}},
	    {NULL, "spaces", {"serve", "--token-file", spaced, NULL}},
	    {NULL, "missing", {"serve", "--token-file", missing, NULL}},
	    {"PIGGY_TOKEN=", "PIGGY_TOKEN is empty", {"serve", NULL}},
	    {NULL, "empty", {"forward", "-p", "80", "--token-file", empty, NULL}},
	    {NULL, "missing", {"forward", "-p", "80", "--token-file", missing, NULL}},
	    {"PIGGY_TOKEN=a b", "PIGGY_TOKEN", {"forward", "-p", "80", NULL}},
	};

	g_test_summary("An empty, unreadable or malformed token file, or a bad PIGGY_TOKEN, is a "
		       "usage error (exit 2) naming the problem");
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *err = NULL;
		int status;

		const char *env[] = {cases[i].env, NULL};

		status = run_piggyback_env(&err, env, cases[i].args);
		g_test_message("case %" G_GSIZE_FORMAT ": status %d, stderr %s", i, status, err);
		g_assert_cmpint(status, ==, 2);
		g_assert_nonnull(strstr(err, cases[i].needle));
	}
	g_unlink(empty);
	g_unlink(spaced);
	g_rmdir(dir);
}

/* serve's stderr from its start until SIGTERM. */
static char *
serve_stderr(const char *token_file)
{
	const char *open_args[] = {"serve", "-p", "0", "-l", "127.0.0.1", NULL};
	const char *token_args[] = {"serve",	 "-p",		 "0",	     "-l",
				    "127.0.0.1", "--token-file", token_file, NULL};
	Proc *proc = proc_startv(G_SUBPROCESS_FLAGS_STDERR_PIPE, NULL,
				 token_file != NULL ? token_args : open_args);
	GInputStream *err_pipe;
	char buf[8192];
	gsize len = 0;

	proc_wait_line(proc, "Listening on");
	g_subprocess_send_signal(proc->process, SIGTERM);
	pb_test_wait_until(proc->exited, 10);
	err_pipe = g_subprocess_get_stderr_pipe(proc->process);
	/* the process is gone: this read ends at the pipe's end */
	g_assert_true(g_input_stream_read_all(err_pipe, buf, sizeof buf - 1, &len, NULL, NULL));
	buf[len] = '\0';
	proc_stop(proc);
	return g_strdup(buf);
}

static void
test_auth_open_warning(void)
{
	g_autofree char *dir = g_dir_make_tmp("pb-auth-XXXXXX", NULL);
	g_autofree char *token_file = write_token_file(dir, "token", "s3cret");
	g_autofree char *open_err = serve_stderr(NULL);
	g_autofree char *closed_err = serve_stderr(token_file);

	g_test_summary("serve without a token warns that anyone can open a tunnel; with one, not");
	g_assert_nonnull(strstr(open_err, "anyone who can reach this port can open a tunnel"));
	g_assert_null(strstr(closed_err, "anyone"));
	g_unlink(token_file);
	g_rmdir(dir);
}

static char *
tls_file(const char *name)
{
	return g_test_build_filename(G_TEST_DIST, "tls", name, NULL);
}

static void
test_tls(void)
{
	g_autofree char *cert = tls_file("server.pem");
	g_autofree char *key = tls_file("server.key");
	g_autofree char *other = tls_file("other.pem");
	g_autofree char *server_url = NULL;
	/* openssl x509 -in tests/tls/server.pem -outform DER | sha256sum */
	const char *pin = "18:84:68:c4:0e:9f:7b:59:f0:c5:30:5c:42:ae:0d:08:54:e9:67:b7:c7:ef:63:0e:"
			  "59:ec:a5:1f:9f:1c:fc:88";
	const char *wrong_pin = "0000000000000000000000000000000000000000000000000000000000000000";
	/* LeakSanitizer (GCC 12, glibc 2.36) crashes ("Tracer caught signal 11") scanning the
	 * dynamic TLS of the dlopen()ed glib-networking/GnuTLS once they ran a handshake: with
	 * sanitizers, these processes are checked by ASan and UBSan but not for leaks */
	g_autofree char *asan =
	    g_strdup_printf("ASAN_OPTIONS=%s:detect_leaks=0",
			    g_getenv("ASAN_OPTIONS") != NULL ? g_getenv("ASAN_OPTIONS") : "");
	const char *no_leaks[] = {asan, NULL};
	const char *const *env = g_getenv("PB_TEST_SANITIZED") != NULL ? no_leaks : NULL;
	Proc *server;

	g_test_summary("serve --tls-cert/--tls-key serves wss://; forward connects with --ca-file "
		       "or --pin-sha256, and otherwise exits 1 saying what is wrong with the "
		       "certificate");
	if (!g_tls_backend_supports_tls(g_tls_backend_get_default())) {
		g_test_skip("no TLS backend (glib-networking) installed");
		return;
	}
	{
		const char *args[] = {"serve",	   "-p",	"0",	     "-l",
				      "127.0.0.1", "-H",	"127.0.0.1", "--tls-cert",
				      cert,	   "--tls-key", key,	     NULL};

		server = proc_startv(0, env, args);
	}
	server_url =
	    g_strdup_printf("wss://127.0.0.1:%u", proc_wait_port(server, "Listening on wss://"));
	{
		const char *no_ca[] = {"forward", "-p", "9", "-s", server_url, NULL};
		const char *wrong_ca[] = {"forward",  "-p",	   "9",	  "-s",
					  server_url, "--ca-file", other, NULL};
		const char *bad_pin[] = {"forward",  "-p",	     "9",	"-s",
					 server_url, "--pin-sha256", wrong_pin, NULL};
		const struct {
			const char *const *args;
			const char *needle;
		} refused[] = {
		    {no_ca, "its issuer is unknown"},
		    {wrong_ca, "its issuer is unknown"},
		    {bad_pin, "does not match --pin-sha256"},
		};

		for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
			g_autofree char *err = NULL;

			g_assert_cmpint(run_piggyback_env(&err, env, refused[i].args), ==, 1);
			g_test_message("refused: %s", err);
			g_assert_nonnull(strstr(err, refused[i].needle));
			g_assert_cmpuint(pb_test_count_listeners(server->process), ==, 1);
		}
	}
	{
		const char *with_ca[] = {"forward",  "-p",	  "9",	"-s",
					 server_url, "--ca-file", cert, NULL};
		const char *with_pin[] = {"forward",  "-p",	      "9", "-s",
					  server_url, "--pin-sha256", pin, NULL};
		Proc *client = proc_startv(0, env, with_ca);

		proc_wait_port(client, "Access URL:");
		g_assert_cmpuint(pb_test_count_listeners(server->process), ==, 2);
		proc_stop(client);
		client = proc_startv(0, env, with_pin);
		proc_wait_port(client, "Access URL:");
		proc_stop(client);
	}
	proc_stop(server);
}

static void
test_tls_bad_input(void)
{
	g_autofree char *cert = tls_file("server.pem");
	g_autofree char *key = tls_file("server.key");
	const struct {
		const char *needle;
		const char *args[10];
	} cases[] = {
	    {"go together", {"serve", "--tls-cert", cert, NULL}},
	    {"go together", {"serve", "--tls-key", key, NULL}},
	    {"cannot use --tls-cert", {"serve", "--tls-cert", key, "--tls-key", key, NULL}},
	    {"need a wss://", {"forward", "-p", "80", "--ca-file", cert, NULL}},
	    {"--ca-file",
	     {"forward", "-p", "80", "-s", "wss://x", "--ca-file", "/nonexistent", NULL}},
	    {"--pin-sha256", {"forward", "-p", "80", "-s", "wss://x", "--pin-sha256", "abc", NULL}},
	};

	g_test_summary("Unusable certificate, key, CA or pin options are usage errors (exit 2)");
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *err = NULL;
		int status = run_piggyback(&err, cases[i].args);

		g_test_message("case %" G_GSIZE_FORMAT ": status %d, stderr %s", i, status, err);
		g_assert_cmpint(status, ==, 2);
		g_assert_nonnull(strstr(err, cases[i].needle));
	}
}

int
main(int argc, char **argv)
{
	g_unsetenv("PIGGY_TOKEN"); /* the tests that want one pass it; before any thread */
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/process/cli/bad-input", test_cli_bad_input);
	g_test_add_func("/process/cli/help-version", test_cli_help_version);
	g_test_add_func("/process/cli/forward-name", test_cli_forward_name);
	g_test_add_func("/process/cli/runtime-errors", test_cli_runtime_errors);
	g_test_add_func("/process/client-killed", test_client_killed);
	g_test_add_func("/process/server-killed", test_server_killed);
	g_test_add_data_func("/process/goodbye/sigint", GINT_TO_POINTER(SIGINT), test_goodbye);
	g_test_add_data_func("/process/goodbye/sigterm", GINT_TO_POINTER(SIGTERM), test_goodbye);
	g_test_add_data_func("/process/goodbye/sighup", GINT_TO_POINTER(SIGHUP), test_goodbye);
	g_test_add_func("/process/server-restarted", test_server_restarted);
	g_test_add_func("/process/keepalive/dead-server", test_keepalive_dead_server);
	g_test_add_func("/process/keepalive/dead-client", test_keepalive_dead_client);
	g_test_add_func("/process/connect-burst", test_connect_burst);
	g_test_add_func("/process/slowloris", test_slowloris);
	g_test_add_func("/process/out-of-fds", test_out_of_fds);
	g_test_add_func("/process/slow-reader-memory", test_slow_reader_memory);
	g_test_add_func("/process/memory-returned", test_memory_returned);
	g_test_add_func("/process/v2/head-of-line", test_head_of_line);
	g_test_add_func("/process/auth/token", test_auth);
	g_test_add_func("/process/auth/refused-on-reconnect", test_auth_refused_on_reconnect);
	g_test_add_func("/process/auth/bad-token-input", test_auth_bad_token_input);
	g_test_add_func("/process/auth/open-warning", test_auth_open_warning);
	g_test_add_func("/process/tls", test_tls);
	g_test_add_func("/process/tls/bad-input", test_tls_bad_input);
	return g_test_run();
}
