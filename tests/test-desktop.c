/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "pb-frame.h"
#include "pb-test-utils.h"
#include "pb-tunnel-server.h"

/*
 * `piggyback-forward` as a desktop session starts it: defaults from GSettings (the schema
 * compiled in the build tree, values in a keyfile backend), the command line over them,
 * and its messages in German and French from the catalogs built in the tree.
 */

typedef struct {
	PbTunnelServer *server; /* (owned) */
	PbTestService *echo;	/* (owned) */
	char *dir;		/* (owned) a temporary XDG_CONFIG_HOME */
	char *server_arg;	/* (owned) 127.0.0.1:<port> of the server */
	char *echo_port;	/* (owned) */
} DesktopFixture;

static void
desktop_set_up(DesktopFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	fx->server = pb_tunnel_server_new(0, "127.0.0.1", 0, NULL);
	pb_tunnel_server_set_listen_host(fx->server, "127.0.0.1");
	/* @user_data: a --domain, for named tunnels */
	pb_tunnel_server_set_domain(fx->server, user_data, -1, -1);
	g_assert_true(pb_tunnel_server_start(fx->server, &error));
	g_assert_no_error(error);
	fx->echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	fx->dir = g_dir_make_tmp("pb-desktop-XXXXXX", &error);
	g_assert_no_error(error);
	fx->server_arg = g_strdup_printf("127.0.0.1:%u", pb_tunnel_server_get_port(fx->server));
	fx->echo_port = g_strdup_printf("%u", pb_test_service_get_port(fx->echo));
}

static void
desktop_tear_down(DesktopFixture *fx, gconstpointer user_data)
{
	g_autofree char *settings_dir = g_build_filename(fx->dir, "glib-2.0", "settings", NULL);
	g_autofree char *keyfile = g_build_filename(settings_dir, "keyfile", NULL);
	g_autofree char *glib_dir = g_build_filename(fx->dir, "glib-2.0", NULL);

	g_unlink(keyfile);
	g_rmdir(settings_dir);
	g_rmdir(glib_dir);
	g_assert_cmpint(g_rmdir(fx->dir), ==, 0);
	pb_tunnel_server_stop(fx->server);
	pb_test_wait_until(pb_tunnel_server_get_n_clients(fx->server) == 0, 10);
	g_clear_object(&fx->server);
	pb_test_service_free(fx->echo);
	g_free(fx->dir);
	g_free(fx->server_arg);
	g_free(fx->echo_port);
}

/* Stores settings as the keyfile backend reads them: GVariant text, by schema path. */
static void
desktop_write_settings_full(DesktopFixture *fx, const char *server, const char *local_host,
			    const char *local_port, const char *proxy_protocol, const char *name)
{
	g_autofree char *settings_dir = g_build_filename(fx->dir, "glib-2.0", "settings", NULL);
	g_autofree char *keyfile = g_build_filename(settings_dir, "keyfile", NULL);
	g_autofree char *contents =
	    g_strdup_printf("[io/github/piggyback/PiggyBack]\n"
			    "server='%s'\n"
			    "local-host='%s'\n"
			    "local-port=%s\n"
			    "proxy-protocol='%s'\n"
			    "name='%s'\n",
			    server, local_host, local_port, proxy_protocol, name);
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(g_mkdir_with_parents(settings_dir, 0700), ==, 0);
	g_file_set_contents(keyfile, contents, -1, &error);
	g_assert_no_error(error);
}

/* Adds the services key, @services in GVariant text ("['db=5432']"). */
static void
desktop_add_services_setting(DesktopFixture *fx, const char *services)
{
	g_autofree char *keyfile =
	    g_build_filename(fx->dir, "glib-2.0", "settings", "keyfile", NULL);
	g_autofree char *contents = NULL;
	g_autofree char *more = NULL;
	g_autoptr(GError) error = NULL;

	g_file_get_contents(keyfile, &contents, NULL, &error);
	g_assert_no_error(error);
	more = g_strdup_printf("%sservices=%s\n", contents, services);
	g_file_set_contents(keyfile, more, -1, &error);
	g_assert_no_error(error);
}

static void
desktop_write_settings(DesktopFixture *fx, const char *server, const char *local_host,
		       const char *local_port)
{
	desktop_write_settings_full(fx, server, local_host, local_port, "none", "");
}

/* A launcher for the built program: the schema from the build tree, settings from the
 * fixture's keyfile, no session bus, fatal warnings, English unless @language. */
static GSubprocessLauncher *
desktop_launcher(DesktopFixture *fx, const char *backend, const char *language)
{
	GSubprocessLauncher *launcher = pb_test_proc_launcher_new();
	g_autofree char *no_bus = g_strdup_printf("unix:path=%s/no-bus", fx->dir);
	const char *schema_dir = g_getenv("PB_TEST_SCHEMA_DIR");

	g_assert_nonnull(schema_dir);
	g_subprocess_launcher_setenv(launcher, "GSETTINGS_SCHEMA_DIR", schema_dir, TRUE);
	g_subprocess_launcher_setenv(launcher, "GSETTINGS_BACKEND", backend, TRUE);
	g_subprocess_launcher_setenv(launcher, "XDG_CONFIG_HOME", fx->dir, TRUE);
	g_subprocess_launcher_setenv(launcher, "DBUS_SESSION_BUS_ADDRESS", no_bus, TRUE);
	g_subprocess_launcher_setenv(launcher, "G_DEBUG", "fatal-warnings", TRUE);
	if (language != NULL) {
		const char *localedir = g_getenv("PB_TEST_LOCALEDIR");

		g_assert_nonnull(localedir);
		/* LANGUAGE is ignored in the C locale; C.UTF-8 honours it */
		g_subprocess_launcher_setenv(launcher, "LC_ALL", "C.UTF-8", TRUE);
		g_subprocess_launcher_setenv(launcher, "LANGUAGE", language, TRUE);
		g_subprocess_launcher_setenv(launcher, "PB_LOCALEDIR", localedir, TRUE);
	} else {
		g_subprocess_launcher_setenv(launcher, "LC_ALL", "C.UTF-8", TRUE);
		g_subprocess_launcher_unsetenv(launcher, "LANGUAGE");
	}
	return launcher;
}

static const char *
desktop_forward_path(void)
{
	const char *path = g_getenv("PB_PIGGYBACK_FORWARD");

	g_assert_nonnull(path);
	return path;
}

/* Waits for a process that should end by itself; returns its exit status. */
static int
desktop_wait_exit(PbTestProc *proc)
{
	pb_test_proc_wait_exit(proc);
	return pb_test_proc_finish(proc);
}

static void
test_settings_no_port(DesktopFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "memory", NULL);
	PbTestProc *proc;

	g_test_summary("piggyback-forward without a port, from the options or the settings, "
		       "says how to set one and exits 2");
	proc = pb_test_proc_spawn(launcher, desktop_forward_path(), NULL);
	pb_test_proc_wait_exit(proc);
	g_assert_true(pb_test_proc_said(
	    proc, "piggyback-forward: --port is required: the port of the local service (or set a "
		  "default with “gsettings set io.github.piggyback.PiggyBack local-port PORT”)"));
	g_assert_cmpint(desktop_wait_exit(proc), ==, 2);
}

static void
test_settings_no_schema(DesktopFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "memory", NULL);
	PbTestProc *proc;

	g_test_summary("Without the schema installed, piggyback-forward does not abort: it "
		       "wants --port");
	g_subprocess_launcher_setenv(launcher, "GSETTINGS_SCHEMA_DIR", fx->dir, TRUE);
	g_subprocess_launcher_setenv(launcher, "XDG_DATA_DIRS", fx->dir, TRUE);
	proc = pb_test_proc_spawn(launcher, desktop_forward_path(), NULL);
	pb_test_proc_wait_exit(proc);
	g_assert_true(pb_test_proc_said(
	    proc, "piggyback-forward: --port is required: the port of the local service\n"));
	g_assert_cmpint(desktop_wait_exit(proc), ==, 2);
}

static void
test_settings_used(DesktopFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);
	g_autofree char *forwarding = g_strdup_printf("forwarding to 127.0.0.1:%s", fx->echo_port);
	PbTestProc *proc;

	g_test_summary("piggyback-forward with no arguments takes server, local host and port "
		       "from GSettings");
	desktop_write_settings(fx, fx->server_arg, "127.0.0.1", fx->echo_port);
	proc = pb_test_proc_spawn(launcher, desktop_forward_path(), NULL);
	pb_test_wait_until(pb_test_proc_said(proc, "Access URL: tcp://127.0.0.1:") ||
			       pb_test_proc_exited(proc),
			   10);
	g_assert_true(pb_test_proc_said(proc, forwarding));
	g_assert_true(pb_test_proc_said(proc, fx->server_arg));
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
}

/* Sends "hi" through the public port @user_data; what came back, up to that "hi". */
static gpointer
echo_hi_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	GString *got = g_string_new(NULL);
	char buf[256];

	g_assert_cmpint(g_socket_send(socket, "hi", 2, NULL, NULL), ==, 2);
	while (!g_str_has_suffix(got->str, "hi")) {
		gssize n = g_socket_receive(socket, buf, sizeof buf, NULL, NULL);

		g_assert_cmpint(n, >, 0);
		g_string_append_len(got, buf, n);
	}
	return g_string_free(got, FALSE);
}

static void
test_settings_proxy_protocol(DesktopFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);
	const char *access = "Access URL: tcp://127.0.0.1:";
	g_autofree char *echoed = NULL;
	const char *line;
	PbTestProc *proc;

	g_test_summary(
	    "The proxy-protocol setting: the local service (an echo here, so the "
	    "public client reads it back) gets a PROXY header before the client's bytes");
	desktop_write_settings_full(fx, fx->server_arg, "127.0.0.1", fx->echo_port, "v1", "");
	proc = pb_test_proc_spawn(launcher, desktop_forward_path(), NULL);
	pb_test_wait_until(pb_test_proc_said(proc, access) || pb_test_proc_exited(proc), 10);
	line = strstr(pb_test_proc_get_output(proc), access);
	g_assert_nonnull(line);
	echoed = pb_test_run_in_thread(
	    echo_hi_cb, GUINT_TO_POINTER(g_ascii_strtoull(line + strlen(access), NULL, 10)), 10);
	g_test_message("echoed: %s", echoed);
	g_assert_true(g_str_has_prefix(echoed, "PROXY TCP4 127.0.0.1 127.0.0.1 "));
	g_assert_true(g_str_has_suffix(echoed, "\r\nhi"));
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
}

static void
test_settings_name(DesktopFixture *fx, gconstpointer user_data)
{
	g_autofree char *url = g_strdup_printf("HTTP URL: http://alpha.example.test:%u\n",
					       pb_tunnel_server_get_port(fx->server));
	g_autofree char *overridden = g_strdup_printf("HTTP URL: http://beta.example.test:%u\n",
						      pb_tunnel_server_get_port(fx->server));
	PbTestProc *proc;

	g_test_summary("The name setting asks for a name, as --name does; --name wins over it");
	desktop_write_settings_full(fx, fx->server_arg, "127.0.0.1", fx->echo_port, "none",
				    "alpha");
	{
		g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);

		proc = pb_test_proc_spawn(launcher, desktop_forward_path(), NULL);
		pb_test_wait_until(
		    pb_test_proc_said(proc, "HTTP URL: ") || pb_test_proc_exited(proc), 10);
		g_test_message("%s", pb_test_proc_get_output(proc));
		g_assert_true(pb_test_proc_said(proc, url));
		g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
	}
	{
		g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);

		proc = pb_test_proc_spawn(launcher, desktop_forward_path(), "--name", "beta", NULL);
		pb_test_wait_until(
		    pb_test_proc_said(proc, "HTTP URL: ") || pb_test_proc_exited(proc), 10);
		g_assert_true(pb_test_proc_said(proc, overridden));
		g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
	}
}

static void
test_settings_name_empty(DesktopFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);
	const char *line;
	PbTestProc *proc;

	g_test_summary("An empty name setting (the default) asks for none: the server picks one");
	desktop_write_settings(fx, fx->server_arg, "127.0.0.1", fx->echo_port);
	proc = pb_test_proc_spawn(launcher, desktop_forward_path(), NULL);
	pb_test_wait_until(pb_test_proc_said(proc, "HTTP URL: ") || pb_test_proc_exited(proc), 10);
	line = strstr(pb_test_proc_get_output(proc), "HTTP URL: http://");
	g_assert_nonnull(line);
	/* a random name the server picked, not an empty one */
	g_assert_true(g_ascii_isalnum(line[strlen("HTTP URL: http://")]));
	g_assert_true(strstr(line, ".example.test:") != NULL);
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
}

static void
test_settings_name_invalid(DesktopFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);
	PbTestProc *proc;

	g_test_summary("A name setting that is no name: exit 2, saying it is the setting");
	desktop_write_settings_full(fx, fx->server_arg, "127.0.0.1", fx->echo_port, "none",
				    "Bad_Name");
	proc = pb_test_proc_spawn(launcher, desktop_forward_path(), NULL);
	pb_test_proc_wait_exit(proc);
	g_assert_true(pb_test_proc_said(
	    proc, "piggyback-forward: the “name” setting “Bad_Name” is not a name: 1 to 63 "));
	g_assert_cmpint(desktop_wait_exit(proc), ==, 2);
}

static void
test_settings_services(DesktopFixture *fx, gconstpointer user_data)
{
	PbTestService *db = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	guint16 ws_port = pb_tunnel_server_get_port(fx->server);
	g_autofree char *services =
	    g_strdup_printf("['db=127.0.0.1:%u']", pb_test_service_get_port(db));
	g_autofree char *expose =
	    g_strdup_printf("other=127.0.0.1:%u", pb_test_service_get_port(db));
	g_autofree char *db_url =
	    g_strdup_printf("HTTP URL (db): http://db.example.test:%u\n", ws_port);
	g_autofree char *other_url =
	    g_strdup_printf("HTTP URL (other): http://other.example.test:%u\n", ws_port);
	PbTestProc *proc;

	g_test_summary("The services setting exposes further services as --expose does; "
		       "--expose replaces them; a bad entry exits 2 naming the setting and it");
	desktop_write_settings(fx, fx->server_arg, "127.0.0.1", fx->echo_port);
	desktop_add_services_setting(fx, services);
	{
		g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);

		proc = pb_test_proc_spawn(launcher, desktop_forward_path(), NULL);
		pb_test_wait_until(
		    pb_test_proc_said(proc, "HTTP URL (db): ") || pb_test_proc_exited(proc), 10);
		g_test_message("%s", pb_test_proc_get_output(proc));
		g_assert_true(pb_test_proc_said(proc, db_url));
		g_assert_true(pb_test_proc_said(proc, "Access URL: tcp://127.0.0.1:"));
		g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
	}
	{
		g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);

		proc =
		    pb_test_proc_spawn(launcher, desktop_forward_path(), "--expose", expose, NULL);
		pb_test_wait_until(
		    pb_test_proc_said(proc, "HTTP URL (other): ") || pb_test_proc_exited(proc), 10);
		g_assert_true(pb_test_proc_said(proc, other_url));
		g_assert_false(pb_test_proc_said(proc, "(db)"));
		g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
	}
	desktop_write_settings(fx, fx->server_arg, "127.0.0.1", fx->echo_port);
	desktop_add_services_setting(fx, "['db=0']");
	{
		g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);

		proc = pb_test_proc_spawn(launcher, desktop_forward_path(), NULL);
		pb_test_proc_wait_exit(proc);
		g_test_message("%s", pb_test_proc_get_output(proc));
		g_assert_true(
		    pb_test_proc_said(proc, "piggyback-forward: the “services” setting “db=0”: "));
		g_assert_cmpint(desktop_wait_exit(proc), ==, 2);
	}
	pb_test_service_free(db);
}

static void
test_settings_overridden(DesktopFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);
	g_autofree char *forwarding = g_strdup_printf("forwarding to 127.0.0.1:%s", fx->echo_port);
	PbTestProc *proc;

	g_test_summary("Options given on the command line win over the settings");
	/* nothing listens on port 1: the settings alone would fail */
	desktop_write_settings(fx, "127.0.0.1:1", "localhost", "1");
	proc = pb_test_proc_spawn(launcher, desktop_forward_path(), "--server", fx->server_arg,
				  "--host", "127.0.0.1", "--port", fx->echo_port, NULL);
	pb_test_wait_until(pb_test_proc_said(proc, "Access URL: tcp://127.0.0.1:") ||
			       pb_test_proc_exited(proc),
			   10);
	g_assert_true(pb_test_proc_said(proc, forwarding));
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
}

static void
test_settings_not_for_subcommand(DesktopFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "keyfile", NULL);
	const char *piggyback = g_getenv("PB_PIGGYBACK");
	PbTestProc *proc;

	g_test_summary("`piggyback forward` (servers, scripts) ignores the desktop settings");
	g_assert_nonnull(piggyback);
	desktop_write_settings(fx, fx->server_arg, "127.0.0.1", fx->echo_port);
	proc = pb_test_proc_spawn(launcher, piggyback, "forward", NULL);
	pb_test_proc_wait_exit(proc);
	g_assert_true(pb_test_proc_said(proc, "--port is required"));
	g_assert_cmpint(desktop_wait_exit(proc), ==, 2);
}

static void
desktop_check_language(DesktopFixture *fx, const char *language, const char *usage_error,
		       const char *help_line, const char *settings_line)
{
	PbTestProc *proc;

	{
		g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "memory", language);

		proc = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", NULL);
		pb_test_proc_wait_exit(proc);
		g_test_message("%s", pb_test_proc_get_output(proc));
		g_assert_true(pb_test_proc_said(proc, usage_error));
		g_assert_cmpint(desktop_wait_exit(proc), ==, 2);
	}
	{
		g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "memory", language);

		proc = pb_test_proc_spawn(launcher, desktop_forward_path(), "--help", NULL);
		pb_test_proc_wait_exit(proc);
		g_assert_true(pb_test_proc_said(proc, help_line));
		/* the settings it takes, the name among them */
		g_assert_true(pb_test_proc_said(proc, settings_line));
		g_assert_cmpint(desktop_wait_exit(proc), ==, 0);
	}
}

static void
test_help_settings(DesktopFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = desktop_launcher(fx, "memory", NULL);
	const char *piggyback = g_getenv("PB_PIGGYBACK");
	PbTestProc *proc;

	g_test_summary("piggyback-forward --help lists the GSettings keys it takes, name "
		       "included; piggyback forward --help, which takes none, does not");
	proc = pb_test_proc_spawn(launcher, desktop_forward_path(), "--help", NULL);
	pb_test_proc_wait_exit(proc);
	g_assert_true(pb_test_proc_said(
	    proc,
	    "Options left out are taken from GSettings, schema io.github.piggyback.PiggyBack: "
	    "keys server, local-host, local-port, name (as --name: empty asks for none), "
	    "services (as --expose, a list) and proxy-protocol."));
	g_assert_true(pb_test_proc_said(proc, "-n, --name=NAME"));
	g_assert_cmpint(desktop_wait_exit(proc), ==, 0);
	proc = pb_test_proc_spawn(launcher, piggyback, "forward", "--help", NULL);
	pb_test_proc_wait_exit(proc);
	g_assert_true(pb_test_proc_said(proc, "-n, --name=NAME"));
	g_assert_false(pb_test_proc_said(proc, "GSettings"));
	g_assert_cmpint(desktop_wait_exit(proc), ==, 0);
}

static void
test_i18n_german(DesktopFixture *fx, gconstpointer user_data)
{
	g_test_summary("With LANGUAGE=de the program speaks German (catalog from the build tree)");
	desktop_check_language(fx, "de",
			       "piggyback forward: --port ist erforderlich: der Port des lokalen "
			       "Dienstes\n„piggyback forward --help“ zeigt weitere Informationen.",
			       "Den Zustand des Tunnels nicht auf dem Sitzungsbus anzeigen",
			       "Schlüssel server, local-host, local-port, name (wie --name");
}

static void
test_i18n_french(DesktopFixture *fx, gconstpointer user_data)
{
	g_test_summary("With LANGUAGE=fr the program speaks French (catalog from the build tree)");
	desktop_check_language(
	    fx, "fr",
	    "piggyback forward: --port est obligatoire\u00a0: le port du service "
	    "local",
	    "Ne pas publier l’état du tunnel sur le bus de session",
	    "clés server, local-host, local-port, name (comme --name");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
#define ADD(path, func)                                                                            \
	g_test_add(path, DesktopFixture, NULL, desktop_set_up, func, desktop_tear_down)
	ADD("/desktop/settings/no-port", test_settings_no_port);
	ADD("/desktop/settings/no-schema", test_settings_no_schema);
	ADD("/desktop/settings/used", test_settings_used);
	ADD("/desktop/settings/proxy-protocol", test_settings_proxy_protocol);
	ADD("/desktop/settings/overridden", test_settings_overridden);
#define ADD_NAMED(path, func)                                                                      \
	g_test_add(path, DesktopFixture, "example.test", desktop_set_up, func, desktop_tear_down)
	ADD_NAMED("/desktop/settings/name", test_settings_name);
	ADD_NAMED("/desktop/settings/name-empty", test_settings_name_empty);
	ADD_NAMED("/desktop/settings/name-invalid", test_settings_name_invalid);
	ADD_NAMED("/desktop/settings/services", test_settings_services);
#undef ADD_NAMED
	ADD("/desktop/settings/not-for-subcommand", test_settings_not_for_subcommand);
	ADD("/desktop/help-settings", test_help_settings);
	ADD("/desktop/i18n/german", test_i18n_german);
	ADD("/desktop/i18n/french", test_i18n_french);
#undef ADD
	return g_test_run();
}
