/* SPDX-License-Identifier: ISC */
#define _GNU_SOURCE /* posix_openpt(), ptsname() */
#include "config.h"

#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "pb-test-utils.h"

/*
 * The real programs on a pseudo-terminal, as a person runs them: the live dashboard takes
 * the screen and gives it back; with PIGGY_LOG=plain or --log=plain the same terminal gets
 * plain lines.
 */

typedef struct {
	GSubprocess *process; /* (owned) */
	int master;	      /* our side of the terminal */
	GString *screen;      /* (owned) everything the program wrote */
	gboolean exited;
} PtyProc;

static void
pty_exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	PtyProc *proc = user_data;

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	proc->exited = TRUE;
}

/* Starts piggyback with @args on a new 100x24 terminal (stdout and stderr), @env set. */
static PtyProc *
pty_spawn(const char *const *env, const char *const *args)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(0);
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	struct winsize size = {.ws_row = 24, .ws_col = 100};
	PtyProc *proc = g_new0(PtyProc, 1);
	int slave;

	proc->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	g_assert_cmpint(proc->master, >=, 0);
	g_assert_cmpint(grantpt(proc->master), ==, 0);
	g_assert_cmpint(unlockpt(proc->master), ==, 0);
	slave = open(ptsname(proc->master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	g_assert_cmpint(slave, >=, 0);
	g_assert_cmpint(ioctl(slave, TIOCSWINSZ, &size), ==, 0);
	g_assert_true(g_unix_set_fd_nonblocking(proc->master, TRUE, NULL));

	g_subprocess_launcher_setenv(launcher, "TERM", "xterm-256color", TRUE);
	g_subprocess_launcher_unsetenv(launcher, "NO_COLOR");
	g_subprocess_launcher_unsetenv(launcher, "PIGGY_LOG");
	for (gsize i = 0; env != NULL && env[i] != NULL; i++) {
		g_auto(GStrv) pair = g_strsplit(env[i], "=", 2);

		g_subprocess_launcher_setenv(launcher, pair[0], pair[1], TRUE);
	}
	g_subprocess_launcher_take_stderr_fd(launcher, dup(slave));
	g_subprocess_launcher_take_stdout_fd(launcher, slave);
	g_ptr_array_add(argv, (gpointer)g_getenv("PB_PIGGYBACK"));
	for (gsize i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	proc->process =
	    g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
	proc->screen = g_string_new(NULL);
	g_subprocess_wait_async(proc->process, NULL, pty_exited_cb, proc);
	return proc;
}

static void
pty_read(PtyProc *proc)
{
	char buf[4096];
	gssize n;

	while ((n = read(proc->master, buf, sizeof buf)) > 0)
		g_string_append_len(proc->screen, buf, n);
}

/* What was written, without escape sequences. */
static char *
pty_text(PtyProc *proc)
{
	GString *text = g_string_new(NULL);
	const char *p = proc->screen->str;

	while (*p != '\0') {
		if (p[0] == '\033' && p[1] == '[') {
			p += 2;
			while (*p != '\0' && !g_ascii_isalpha(*p))
				p++;
			if (*p != '\0')
				p++;
			continue;
		}
		g_string_append_c(text, *p++);
	}
	return g_string_free(text, FALSE);
}

static gboolean
pty_said(PtyProc *proc, const char *needle)
{
	g_autofree char *text = NULL;

	pty_read(proc);
	text = pty_text(proc);
	return strstr(text, needle) != NULL;
}

/* SIGTERM, then waits for the exit and reads the last of what it wrote; its exit status. */
static int
pty_finish(PtyProc *proc)
{
	int status;

	if (!proc->exited)
		g_subprocess_send_signal(proc->process, SIGTERM);
	pb_test_wait_until(proc->exited, 10);
	pty_read(proc);
	g_assert_true(g_subprocess_get_if_exited(proc->process));
	status = g_subprocess_get_exit_status(proc->process);
	g_object_unref(proc->process);
	close(proc->master);
	return status;
}

static void
pty_free(PtyProc *proc)
{
	g_string_free(proc->screen, TRUE);
	g_free(proc);
}

typedef struct {
	PbTestService *echo; /* (owned) */
	PbTestProc *server;  /* (owned) (nullable) a plain one */
	guint16 ws_port;
	char *server_url; /* (owned) */
	char *local;	  /* (owned) the echo service's port */
} TerminalFixture;

static void
terminal_set_up(TerminalFixture *fx, gconstpointer user_data)
{
	fx->echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	fx->local = g_strdup_printf("%u", pb_test_service_get_port(fx->echo));
}

static void
terminal_start_server(TerminalFixture *fx)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();

	fx->server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p", "0",
					"-l", "127.0.0.1", "-H", "127.0.0.1", NULL);
	fx->ws_port = pb_test_proc_wait_port(fx->server, "Listening on");
	fx->server_url = g_strdup_printf("127.0.0.1:%u", fx->ws_port);
}

static void
terminal_tear_down(TerminalFixture *fx, gconstpointer user_data)
{
	if (fx->server != NULL)
		g_assert_cmpint(pb_test_proc_finish(fx->server), ==, 0);
	pb_test_service_free(fx->echo);
	g_free(fx->server_url);
	g_free(fx->local);
}

static gpointer
echo_one_byte_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	char byte = 0;

	if (g_socket_send(socket, "t", 1, NULL, NULL) != 1 ||
	    g_socket_receive(socket, &byte, 1, NULL, NULL) != 1)
		return GINT_TO_POINTER(FALSE);
	return GINT_TO_POINTER(byte == 't');
}

/* The public port in "Access URL    tcp://127.0.0.1:PORT" on the dashboard. */
static guint16
terminal_access_port(PtyProc *proc)
{
	g_autofree char *text = pty_text(proc);
	const char *url = strstr(text, "tcp://127.0.0.1:");

	g_assert_nonnull(url);
	return (guint16)g_ascii_strtoull(url + strlen("tcp://127.0.0.1:"), NULL, 10);
}

static void
test_terminal_forward_dashboard(TerminalFixture *fx, gconstpointer user_data)
{
	PtyProc *client;
	guint16 public_port;

	g_test_summary("forward on a terminal: a live dashboard in the alternate screen shows the "
		       "access URL and counts a connection; SIGTERM gives the screen back");
	terminal_start_server(fx);
	client =
	    pty_spawn(NULL, (const char *const[]){"forward", "-p", fx->local, "-h", "127.0.0.1",
						  "-s", fx->server_url, "--no-dbus", NULL});
	pb_test_wait_until(pty_said(client, "Access URL") && pty_said(client, "tcp://127.0.0.1:"),
			   10);
	g_assert_nonnull(strstr(client->screen->str, "\033[?1049h")); /* alternate screen */
	g_assert_true(pty_said(client, "online"));
	public_port = terminal_access_port(client);
	g_assert_true(pb_test_run_in_thread(echo_one_byte_cb, GUINT_TO_POINTER(public_port), 10));
	pb_test_wait_until(pty_said(client, "total 1"), 10);
	g_assert_cmpint(pty_finish(client), ==, 0);
	/* the cursor shown again and the ordinary screen back */
	g_assert_nonnull(strstr(client->screen->str, "\033[?25h\033[?1049l"));
	pty_free(client);
}

static void
test_terminal_serve_dashboard(TerminalFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autofree char *server_url = NULL;
	g_autofree char *text = NULL;
	PbTestProc *client;
	PtyProc *server;

	g_test_summary("serve on a terminal: the dashboard lists the connected client and its "
		       "port, and its log lines become events instead of scrolling the screen");
	server = pty_spawn(NULL, (const char *const[]){"serve", "-p", "0", "-l", "127.0.0.1", "-H",
						       "127.0.0.1", NULL});
	pb_test_wait_until(pty_said(server, "Listening on ws://127.0.0.1:"), 10);
	text = pty_text(server);
	fx->ws_port = (guint16)g_ascii_strtoull(
	    strstr(text, "ws://127.0.0.1:") + strlen("ws://127.0.0.1:"), NULL, 10);
	server_url = g_strdup_printf("127.0.0.1:%u", fx->ws_port);
	client = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", fx->local,
				    "-h", "127.0.0.1", "-s", server_url, "--no-dbus", NULL);
	pb_test_proc_wait_port(client, "Access URL:");
	pb_test_wait_until(pty_said(server, "connected: tunnel open"), 10);
	g_assert_true(pty_said(server, "Clients"));
	g_assert_nonnull(strstr(server->screen->str, "\033[?1049h"));
	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	g_assert_cmpint(pty_finish(server), ==, 0);
	g_assert_nonnull(strstr(server->screen->str, "\033[?1049l"));
	pty_free(server);
}

static void
test_terminal_serve_reload(TerminalFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("pb-terminal-XXXXXX", &error);
	g_autofree char *path = NULL;
	PtyProc *server;

	g_test_summary("serve --config on a terminal: a reload (SIGHUP) says “configuration "
		       "reloaded” on the dashboard, and a file that does not parse says why");
	g_assert_no_error(error);
	path = g_build_filename(dir, "serve.conf", NULL);
	g_file_set_contents(path, "[serve]\ngrace=5\n", -1, &error);
	g_assert_no_error(error);
	server = pty_spawn(NULL, (const char *const[]){"serve", "--config", path, "-p", "0", "-l",
						       "127.0.0.1", "-H", "127.0.0.1", NULL});
	pb_test_wait_until(pty_said(server, "Listening on ws://127.0.0.1:"), 10);
	g_subprocess_send_signal(server->process, SIGHUP);
	pb_test_wait_until(pty_said(server, "serve.conf: configuration reloaded"), 10);
	g_assert_nonnull(strstr(server->screen->str, "\033[?1049h")); /* on the dashboard */

	g_file_set_contents(path, "[serve]\ngrace=soon\n", -1, &error);
	g_assert_no_error(error);
	g_subprocess_send_signal(server->process, SIGHUP);
	pb_test_wait_until(pty_said(server, "warning: Configuration not reloaded"), 10);
	g_assert_false(server->exited);
	g_assert_cmpint(pty_finish(server), ==, 0);
	pty_free(server);
	g_unlink(path);
	g_rmdir(dir);
}

static void
test_terminal_plain(TerminalFixture *fx, gconstpointer user_data)
{
	const char *const plain_env[] = {"PIGGY_LOG=plain", NULL};

	g_test_summary("PIGGY_LOG=plain (PiggyBack 1.1's name) and --log=plain: plain lines on a "
		       "terminal, no dashboard");
	terminal_start_server(fx);
	for (guint i = 0; i < 2; i++) {
		PtyProc *client =
		    pty_spawn(i == 0 ? plain_env : NULL,
			      (const char *const[]){"forward", "-p", fx->local, "-h", "127.0.0.1",
						    "-s", fx->server_url, "--no-dbus",
						    i == 0 ? NULL : "--log=plain", NULL});

		pb_test_wait_until(pty_said(client, "Access URL: tcp://127.0.0.1:"), 10);
		g_assert_cmpint(pty_finish(client), ==, 0);
		g_assert_null(strstr(client->screen->str, "\033["));
		pty_free(client);
	}
}

/* The log of a server run with @flag (or none) while one connection goes through it. */
static char *
terminal_server_log(TerminalFixture *fx, const char *flag)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	const char *const args[] = {g_getenv("PB_PIGGYBACK"),
				    "serve",
				    "-p",
				    "0",
				    "-l",
				    "127.0.0.1",
				    "-H",
				    "127.0.0.1",
				    flag,
				    NULL};
	g_autofree char *server_url = NULL;
	PbTestProc *server = pb_test_proc_spawnv(launcher, args);
	PbTestProc *client;
	guint16 public_port;
	char *log;

	server_url =
	    g_strdup_printf("127.0.0.1:%u", pb_test_proc_wait_port(server, "Listening on"));
	client = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", fx->local,
				    "-h", "127.0.0.1", "-s", server_url, "--no-dbus", NULL);
	public_port = pb_test_proc_wait_port(client, "Access URL:");
	g_assert_true(pb_test_run_in_thread(echo_one_byte_cb, GUINT_TO_POINTER(public_port), 10));
	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	if (g_strcmp0(flag, "-q") != 0) /* -q does not say it */
		pb_test_wait_until(pb_test_proc_said(server, "disconnected"), 10);
	log = g_strdup(pb_test_proc_get_output(server));
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	return log;
}

static void
test_terminal_verbosity(TerminalFixture *fx, gconstpointer user_data)
{
	g_autofree char *normal = terminal_server_log(fx, NULL);
	g_autofree char *verbose = terminal_server_log(fx, "-v");
	g_autofree char *quiet = terminal_server_log(fx, "-q");

	g_test_summary("The default log says who connected, not each connection; -v adds a line "
		       "per tunneled connection; -q leaves warnings only");
	g_assert_nonnull(strstr(normal, "connected: tunnel open"));
	g_assert_null(strstr(normal, "stream 1:"));
	g_assert_nonnull(strstr(verbose, "connected: tunnel open"));
	g_assert_nonnull(strstr(verbose, "stream 1:"));
	g_assert_null(strstr(quiet, "connected: tunnel open"));
	g_assert_nonnull(strstr(quiet, "warning: no token")); /* a warning still shows */
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, func)                                                                            \
	g_test_add(path, TerminalFixture, NULL, terminal_set_up, func, terminal_tear_down)
	ADD("/terminal/forward-dashboard", test_terminal_forward_dashboard);
	ADD("/terminal/serve-dashboard", test_terminal_serve_dashboard);
	ADD("/terminal/serve-reload", test_terminal_serve_reload);
	ADD("/terminal/plain", test_terminal_plain);
	ADD("/terminal/verbosity", test_terminal_verbosity);
#undef ADD
	return g_test_run();
}
