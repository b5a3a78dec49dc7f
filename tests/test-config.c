/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signal.h>

#include "pb-cli.h"
#include "pb-config-file.h"
#include "pb-frame.h"
#include "pb-serve-options.h"
#include "pb-test-utils.h"

/*
 * serve --config FILE: every key of data/serve.conf.example sets its option, every kind of
 * bad file is refused naming its place, and the real `piggyback serve` takes its options
 * from a file with the command line winning.
 */

static const char *const serve_groups[] = {"serve", "client ", NULL};

/* A directory of the test's own, removed with what is in it at the end. */
static char *
temp_dir_new(void)
{
	g_autoptr(GError) error = NULL;
	char *dir = g_dir_make_tmp("pb-config-XXXXXX", &error);

	g_assert_no_error(error);
	return dir;
}

static void
temp_dir_free(char *dir)
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
static char *
write_file(const char *dir, const char *name, const char *contents)
{
	g_autoptr(GError) error = NULL;
	char *path = g_build_filename(dir, name, NULL);

	g_file_set_contents(path, contents, -1, &error);
	g_assert_no_error(error);
	return path;
}

/* The example with each of its keys and groups uncommented ("#key=value" → "key=value"). */
static char *
example_uncommented(void)
{
	g_autofree char *path =
	    g_test_build_filename(G_TEST_DIST, "..", "data", "serve.conf.example", NULL);
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GRegex) regex =
	    g_regex_new("^#(\\[client [^]]+\\]|[a-z-]+=.*)$", G_REGEX_MULTILINE, 0, &error);

	g_assert_no_error(error);
	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	return g_regex_replace(regex, text, -1, 0, "\\1", 0, &error);
}

/* How each option of PbServeOptions is found, to check the file set it. */
typedef struct {
	const char *key;
	gsize offset;
} ServeKey;

#define SERVE_KEY(key, field)                                                                      \
	{                                                                                          \
		key, G_STRUCT_OFFSET(PbServeOptions, field)                                        \
	}

static const ServeKey serve_keys[] = {
    SERVE_KEY("port", port),
    SERVE_KEY("listen", listen_host),
    SERVE_KEY("tunnel-port", tunnel_ports),
    SERVE_KEY("tunnel-host", tunnel_host),
    SERVE_KEY("public-host", public_host),
    SERVE_KEY("domain", domain),
    SERVE_KEY("http-port", http_port),
    SERVE_KEY("public-url", public_url),
    SERVE_KEY("sni-port", sni_port),
    SERVE_KEY("features", features),
    SERVE_KEY("window", window),
    SERVE_KEY("max-clients", max_clients),
    SERVE_KEY("max-connections", max_connections),
    SERVE_KEY("max-buffer", max_buffer_mib),
    SERVE_KEY("handshake-timeout", handshake_timeout),
    SERVE_KEY("idle-timeout", idle_timeout),
    SERVE_KEY("grace", grace),
    SERVE_KEY("token-file", token_file),
    SERVE_KEY("metrics", metrics),
    SERVE_KEY("metrics-token-file", metrics_token_file),
    SERVE_KEY("tls-cert", tls_cert),
    SERVE_KEY("tls-key", tls_key),
};

/* The keys of the options every command has (pb-cli.c), checked through the place an
 * error about them names. */
static const char *const cli_keys[] = {
    "keepalive", "max-message-size", "verbose", "quiet", "log",
};

static void
test_config_example(void)
{
	g_autofree char *dir = temp_dir_new();
	g_autofree char *text = example_uncommented();
	g_autofree char *path = write_file(dir, "serve.conf", text);
	g_autoptr(GKeyFile) key_file = g_key_file_new();
	g_auto(PbServeOptions) options = {0};
	g_autofree GOptionEntry *entries = NULL;
	g_autoptr(PbConfigFile) config = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) keys = NULL;
	guint n_checked = 0;

	g_test_summary("Every key of data/serve.conf.example, uncommented, parses and sets its "
		       "option; every option of serve is in the example");
	pb_serve_options_init(&options);
	entries = pb_serve_options_get_entries(&options);
	config = pb_cli_load_config(path, "serve", entries, serve_groups, FALSE, &error);
	g_assert_no_error(error);
	g_assert_nonnull(config);
	g_key_file_load_from_data(key_file, text, -1, G_KEY_FILE_NONE, &error);
	g_assert_no_error(error);

	keys = g_key_file_get_keys(key_file, "serve", NULL, &error);
	g_assert_no_error(error);
	for (guint i = 0; keys[i] != NULL; i++) {
		g_autofree char *value = g_key_file_get_string(key_file, "serve", keys[i], NULL);
		g_autofree char *message = g_strdup_printf("--%s is wrong", keys[i]);
		g_autofree char *annotated = pb_config_file_annotate(config, message);
		guint line = pb_config_file_get_line(config, "serve", keys[i]);
		g_autofree char *expected =
		    g_strdup_printf("%s:%u: %s=%s: %s", path, line, keys[i], value, message);
		gboolean found = FALSE;

		/* the file set the option: an error about it names its place and value */
		g_assert_cmpstr(annotated, ==, expected);
		for (guint k = 0; k < G_N_ELEMENTS(serve_keys); k++) {
			const ServeKey *row = &serve_keys[k];
			gpointer field = G_STRUCT_MEMBER_P(&options, row->offset);
			const GOptionEntry *entry = NULL;

			if (g_strcmp0(row->key, keys[i]) != 0)
				continue;
			for (guint e = 0; entries[e].long_name != NULL; e++) {
				if (g_strcmp0(entries[e].long_name, row->key) == 0)
					entry = &entries[e];
			}
			g_assert_nonnull(entry);
			g_assert_true(entry->arg_data == field);
			if (entry->arg == G_OPTION_ARG_INT) {
				g_assert_cmpint(*(int *)field, ==, atoi(value));
			} else if (entry->arg == G_OPTION_ARG_FILENAME) {
				g_autofree char *resolved = g_build_filename(dir, value, NULL);

				g_assert_cmpstr(*(char **)field, ==, resolved);
			} else {
				g_assert_cmpstr(*(char **)field, ==, value);
			}
			found = TRUE;
		}
		for (guint k = 0; k < G_N_ELEMENTS(cli_keys); k++)
			found |= g_strcmp0(cli_keys[k], keys[i]) == 0;
		if (!found)
			g_error("no row for key %s of the example", keys[i]);
		n_checked++;
	}
	/* every option is in the example: serve's, those of every command, not --config */
	g_assert_cmpuint(n_checked, ==, G_N_ELEMENTS(serve_keys) + G_N_ELEMENTS(cli_keys));
	for (guint e = 0; entries[e].long_name != NULL; e++) {
		if (g_strcmp0(entries[e].long_name, "config") != 0 &&
		    !g_key_file_has_key(key_file, "serve", entries[e].long_name, NULL))
			g_error("the example has no key %s", entries[e].long_name);
	}
	pb_config_file_settle(config);
	temp_dir_free(g_steal_pointer(&dir));
}

/* A bad file and what its error must say. */
typedef struct {
	const char *what;
	const char *contents;
	const char *says[3]; /* after "FILE" */
} BadFile;

static const BadFile bad_files[] = {
    {"unknown group", "[serve]\nport=1\n[serv]\nport=2\n", {":3:", "[serv]"}},
    {"unknown key", "[serve]\nport=1\nbogus=yes\n", {":3:", "“bogus”", "[serve]"}},
    {"config in the file", "[serve]\nconfig=other.conf\n", {":2:", "“config”"}},
    {"not a number", "[serve]\n\n# grace\ngrace=soon\n", {":4:", "grace", "“soon”"}},
    {"number too big", "[serve]\nport=99999999999\n", {":2:", "port", "“99999999999”"}},
    {"not a boolean", "[serve]\nverbose=maybe\n", {":2:", "verbose", "“maybe”"}},
    {"no key=value", "[serve]\nport=1\nport\n", {":3:", "“port”"}},
    {"key before a group", "port=1\n[serve]\n", {":1:", "group"}},
    {"unclosed group", "[serve\nport=1\n", {":1:"}},
};

static void
test_config_bad(void)
{
	g_autofree char *dir = temp_dir_new();

	g_test_summary("Every kind of bad configuration file is refused with its file, line, "
		       "key and value; an unreadable one with its name and reason");
	for (guint i = 0; i < G_N_ELEMENTS(bad_files); i++) {
		const BadFile *bad = &bad_files[i];
		g_autofree char *path = write_file(dir, "bad.conf", bad->contents);
		g_auto(PbServeOptions) options = {0};
		g_autofree GOptionEntry *entries = NULL;
		g_autoptr(PbConfigFile) config = NULL;
		g_autoptr(GError) error = NULL;

		g_test_message("%s", bad->what);
		pb_serve_options_init(&options);
		entries = pb_serve_options_get_entries(&options);
		config = pb_cli_load_config(path, "serve", entries, serve_groups, FALSE, &error);
		g_assert_null(config);
		g_assert_nonnull(error);
		g_assert_true(g_str_has_prefix(error->message, path));
		for (guint s = 0; s < G_N_ELEMENTS(bad->says) && bad->says[s] != NULL; s++) {
			if (strstr(error->message, bad->says[s]) == NULL)
				g_error("%s: no “%s” in: %s", bad->what, bad->says[s],
					error->message);
		}
		/* a reload checks the same, and sets no option */
		g_clear_error(&error);
		config = pb_cli_load_config(path, "serve", entries, serve_groups, TRUE, &error);
		g_assert_null(config);
		g_assert_nonnull(error);
	}
	{
		g_autofree char *missing = g_build_filename(dir, "missing.conf", NULL);
		g_autoptr(GError) error = NULL;
		g_autoptr(PbConfigFile) config = pb_config_file_load(missing, &error);

		g_assert_null(config);
		g_assert_nonnull(strstr(error->message, missing));
		g_assert_nonnull(strstr(error->message, "No such file"));
	}
	temp_dir_free(g_steal_pointer(&dir));
}

static void
test_config_check_only(void)
{
	g_autofree char *dir = temp_dir_new();
	g_autofree char *path = write_file(dir, "a.conf", "[serve]\ngrace=7\nlog=plain\n");
	g_auto(PbServeOptions) options = {0};
	g_autofree GOptionEntry *entries = NULL;
	g_autoptr(PbConfigFile) config = NULL;
	g_autoptr(GError) error = NULL;

	g_test_summary("Checking a file (a reload) sets none of the options in use");
	pb_serve_options_init(&options);
	entries = pb_serve_options_get_entries(&options);
	config = pb_cli_load_config(path, "serve", entries, serve_groups, TRUE, &error);
	g_assert_no_error(error);
	g_assert_cmpint(options.grace, ==, 30);
	temp_dir_free(g_steal_pointer(&dir));
}

static void
test_config_find_option(void)
{
	char *argv[] = {"serve", "--config", "a.conf", "--config=b.conf",
			"--",	 "--config", "c",      NULL};

	g_assert_cmpstr(pb_config_file_find_option(7, argv, "config"), ==, "b.conf");
	g_assert_cmpstr(pb_config_file_find_option(3, argv, "config"), ==, "a.conf");
	g_assert_null(pb_config_file_find_option(2, argv, "config"));
	g_assert_null(pb_config_file_find_option(7, argv, "conf"));
}

/* A test that fails leaves no piggyback behind: it is killed with the test. */
static void
child_setup_cb(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocessLauncher *
launcher_new(void)
{
	GSubprocessLauncher *launcher = pb_test_proc_launcher_new();

	g_subprocess_launcher_set_child_setup(launcher, child_setup_cb, NULL, NULL);
	g_subprocess_launcher_unsetenv(launcher, "PIGGY_TOKEN");
	return launcher;
}

/* `piggyback serve` with @args: its exit status, and its output in @output. */
static int
serve_fails(const char *const *args, char **output)
{
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	PbTestProc *bad;

	g_ptr_array_add(argv, (gpointer)g_getenv("PB_PIGGYBACK"));
	g_ptr_array_add(argv, "serve");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	bad = pb_test_proc_spawnv(launcher, (const char *const *)argv->pdata);
	pb_test_proc_wait_exit(bad);
	*output = g_strdup(pb_test_proc_get_output(bad));
	return pb_test_proc_finish(bad);
}

/* The status of an upgrade request to @port with @headers. */
static guint
upgrade_status(guint16 port, const char *headers)
{
	g_autofree char *head = g_strdup_printf(
	    "GET " PB_WS_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n%s\r\n",
	    headers);
	g_autoptr(GSocket) socket = pb_test_connect(port);
	char buf[64] = {0};

	g_assert_cmpint(g_socket_send(socket, head, strlen(head), NULL, NULL), ==, strlen(head));
	g_assert_cmpint(g_socket_receive(socket, buf, sizeof buf - 1, NULL, NULL), >=, 12);
	return (guint)g_ascii_strtoull(buf + 9, NULL, 10);
}

static void
test_config_serve(void)
{
	g_autofree char *dir = temp_dir_new();
	g_autofree char *token = write_file(dir, "token", "file-token-0123456789\n");
	g_autofree char *path = write_file(dir, "serve.conf",
					   "[serve]\n"
					   "# every key is an option by its long name\n"
					   "port=0\n"
					   "listen=127.0.0.1\n"
					   "tunnel-host=127.0.0.1\n"
					   "domain=file.test\n"
					   "http-port=0\n"
					   "token-file=token\n"
					   "log=plain\n"
					   "grace=99999\n");
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	g_autofree char *output = NULL;
	PbTestProc *server;
	guint16 port;

	g_test_summary("serve --config FILE takes its options from [serve] (a token file "
		       "beside it), the command line wins; a bad value exits 2 naming the "
		       "file, line, key and value");
	{
		const char *const args[] = {"--config", path, NULL};

		g_assert_cmpint(serve_fails(args, &output), ==, 2);
		g_assert_nonnull(strstr(output, "serve.conf:10: grace=99999: --grace must be"));
		g_clear_pointer(&output, g_free);
	}
	server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "--config", path,
				    "--grace", "5", "--domain", "cli.test", NULL);
	port = pb_test_proc_wait_port(server, "Listening on ws://127.0.0.1:");
	pb_test_wait_until(pb_test_proc_said(server, "Names on --http-port: http://*.cli.test:"),
			   10);
	g_assert_true(pb_test_proc_said(server, "Names: http://*.cli.test:"));
	/* the token file next to the configuration is the one required */
	g_assert_cmpuint(upgrade_status(port, ""), ==, 401);
	g_assert_cmpuint(upgrade_status(port, "Authorization: Bearer wrong-token-0123456789\r\n"),
			 ==, 401);
	g_assert_cmpuint(upgrade_status(port, "Authorization: Bearer file-token-0123456789\r\n"),
			 ==, 101);
	g_assert_false(pb_test_proc_said(server, "warning: no token"));
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	temp_dir_free(g_steal_pointer(&dir));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/config/example", test_config_example);
	g_test_add_func("/config/bad", test_config_bad);
	g_test_add_func("/config/check-only", test_config_check_only);
	g_test_add_func("/config/find-option", test_config_find_option);
	g_test_add_func("/config/serve", test_config_serve);
	return g_test_run();
}
