/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signal.h>

#include "pb-address-rules.h"
#include "pb-cli.h"
#include "pb-client-policy.h"
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
    SERVE_KEY("max-services", max_services),
    SERVE_KEY("max-buffer", max_buffer_mib),
    SERVE_KEY("handshake-timeout", handshake_timeout),
    SERVE_KEY("idle-timeout", idle_timeout),
    SERVE_KEY("grace", grace),
    SERVE_KEY("drain", drain),
    SERVE_KEY("token-file", token_file),
    SERVE_KEY("metrics", metrics),
    SERVE_KEY("metrics-token-file", metrics_token_file),
    SERVE_KEY("tls-cert", tls_cert),
    SERVE_KEY("tls-key", tls_key),
    SERVE_KEY("allow", allow),
    SERVE_KEY("deny", deny),
    SERVE_KEY("max-connections-per-address", max_connections_per_address),
    SERVE_KEY("listen-allow", listen_allow),
    SERVE_KEY("listen-deny", listen_deny),
};

/* The keys of the options every command has (pb-cli.c), checked through the place an
 * error about them names. */
static const char *const cli_keys[] = {
    "keepalive", "max-message-size", "verbose", "quiet", "log",
};

static void
test_config_example(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *text = pb_test_example_uncommented("serve.conf.example", "client");
	g_autofree char *path = pb_test_write_file(dir, "serve.conf", text);
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

	/* and every key of its [client] group */
	{
		g_autofree char *token =
		    pb_test_write_file(dir, "alice.token", "alice-token-0123456789\n");
		g_autoptr(PbClientPolicy) policy = pb_client_policy_new_from_config(config, &error);

		g_assert_no_error(error);
		g_assert_cmpuint(pb_client_policy_get_n_rules(policy), ==, 1);
	}
	pb_test_temp_dir_free(g_steal_pointer(&dir));
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
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");

	g_test_summary("Every kind of bad configuration file is refused with its file, line, "
		       "key and value; an unreadable one with its name and reason");
	for (guint i = 0; i < G_N_ELEMENTS(bad_files); i++) {
		const BadFile *bad = &bad_files[i];
		g_autofree char *path = pb_test_write_file(dir, "bad.conf", bad->contents);
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
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

static void
test_config_check_only(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *path = pb_test_write_file(dir, "a.conf", "[serve]\ngrace=7\nlog=plain\n");
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
	pb_test_temp_dir_free(g_steal_pointer(&dir));
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

/* A test that fails leaves no piggyback behind; no PIGGY_TOKEN of the caller's reaches it. */
static GSubprocessLauncher *
launcher_new(void)
{
	GSubprocessLauncher *launcher = pb_test_proc_launcher_new();

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

/* The status line of an upgrade request to @port with @headers. */
static char *
upgrade_line(guint16 port, const char *headers)
{
	g_autofree char *head = g_strdup_printf(
	    "GET " PB_WS_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n%s\r\n",
	    headers);
	g_autoptr(GSocket) socket = pb_test_connect(port);
	char buf[512] = {0};
	char *end;

	g_assert_cmpint(g_socket_send(socket, head, strlen(head), NULL, NULL), ==, strlen(head));
	g_assert_cmpint(g_socket_receive(socket, buf, sizeof buf - 1, NULL, NULL), >=, 12);
	end = strstr(buf, "\r\n");
	return end != NULL ? g_strndup(buf, end - buf) : g_strdup(buf);
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
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *token = pb_test_write_file(dir, "token", "file-token-0123456789\n");
	g_autofree char *path = pb_test_write_file(dir, "serve.conf",
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
		       "file, line, key and value; without --config, SIGHUP does not end serve");
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
	/* its log is read as it comes: wait for the line */
	pb_test_wait_until(pb_test_proc_said(server, "Names: http://*.cli.test:"), 10);
	/* the token file next to the configuration is the one required */
	g_assert_cmpuint(upgrade_status(port, ""), ==, 401);
	g_assert_cmpuint(upgrade_status(port, "Authorization: Bearer wrong-token-0123456789\r\n"),
			 ==, 401);
	g_assert_cmpuint(upgrade_status(port, "Authorization: Bearer file-token-0123456789\r\n"),
			 ==, 101);
	g_assert_false(pb_test_proc_said(server, "warning: no token"));
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);

	/* without --config, SIGHUP has nothing to read and serve goes on */
	server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p", "0", "-l",
				    "127.0.0.1", "--log", "plain", NULL);
	port = pb_test_proc_wait_port(server, "Listening on ws://127.0.0.1:");
	kill(pb_test_proc_get_pid(server), SIGHUP);
	pb_test_wait_until(pb_test_proc_said(server, "no configuration file (--config)"), 10);
	g_assert_false(pb_test_proc_exited(server));
	g_assert_cmpuint(upgrade_status(port, ""), ==, 101);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

/* The body of GET @path on @port. */
static char *
http_get(guint16 port, const char *path)
{
	g_autofree char *head = g_strdup_printf(
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	g_autoptr(GSocket) socket = pb_test_connect(port);
	g_autoptr(GString) answer = g_string_new(NULL);
	char buf[4096];
	gssize n;

	g_socket_set_timeout(socket, 10);
	g_assert_cmpint(g_socket_send(socket, head, strlen(head), NULL, NULL), ==, strlen(head));
	while ((n = g_socket_receive(socket, buf, sizeof buf, NULL, NULL)) > 0)
		g_string_append_len(answer, buf, n);
	return g_string_free(g_steal_pointer(&answer), FALSE);
}

/* `piggyback forward --token-file @token_file --name @name` (nullable) for @local_port. */
static PbTestProc *
forward(guint16 ws_port, guint16 local_port, const char *token_file, const char *name)
{
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	g_autofree char *server_url = g_strdup_printf("127.0.0.1:%u", ws_port);
	g_autofree char *port = g_strdup_printf("%u", local_port);
	const char *argv[] = {g_getenv("PB_PIGGYBACK"),
			      "forward",
			      "-p",
			      port,
			      "-h",
			      "127.0.0.1",
			      "-s",
			      server_url,
			      "--no-dbus",
			      "--log",
			      "plain",
			      "--token-file",
			      token_file,
			      name != NULL ? "--name" : NULL,
			      name,
			      NULL};

	return pb_test_proc_spawnv(launcher, argv);
}

/* Its public port, once online. */
static guint16
forward_wait_port(PbTestProc *client)
{
	return pb_test_proc_wait_port(client, "Access URL: tcp://127.0.0.1:");
}

typedef struct {
	GSocket *socket; /* (unowned) */
	char byte;
} Exchange;

static gpointer
exchange_cb(gpointer user_data)
{
	Exchange *exchange = user_data;
	char got = 0;

	if (g_socket_send(exchange->socket, &exchange->byte, 1, NULL, NULL) != 1 ||
	    g_socket_receive(exchange->socket, &got, 1, NULL, NULL) != 1)
		return GINT_TO_POINTER(FALSE);
	return GINT_TO_POINTER(got == exchange->byte);
}

/* An open connection through a tunnel to an echo service: one byte goes there and back
 * (in a thread: the echo service accepts in this one's main context). */
static void
assert_echoes(GSocket *socket, char byte)
{
	Exchange exchange = {socket, byte};

	g_assert_true(pb_test_run_in_thread(exchange_cb, &exchange, 10));
}

static gpointer
closed_cb(gpointer socket)
{
	char byte;

	return GINT_TO_POINTER(g_socket_receive(socket, &byte, 1, NULL, NULL) <= 0);
}

/* @socket is closed by the other end. */
static void
assert_closed(GSocket *socket)
{
	g_assert_true(pb_test_run_in_thread(closed_cb, socket, 10));
}

/* The configuration of the client tests, with @clients as its [client] groups. */
static char *
clients_config(const char *dir, const char *clients)
{
	g_autofree char *text = g_strdup_printf("[serve]\n"
						"port=0\n"
						"listen=127.0.0.1\n"
						"tunnel-host=127.0.0.1\n"
						"domain=example.test\n"
						"log=plain\n"
						"metrics=off\n"
						"%s",
						clients);

	return pb_test_write_file(dir, "serve.conf", text);
}

static void
test_config_clients(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *alice_token =
	    pb_test_write_file(dir, "alice.token", "alice-token-0123456789\n");
	g_autofree char *bob_token = pb_test_write_file(dir, "bob.token", "bob-token-0123456789\n");
	guint16 alice_port = pb_test_free_port();
	g_autofree char *clients = g_strdup_printf("[client alice]\n"
						   "token-file=alice.token\n"
						   "names=alice-*;alice\n"
						   "ports=%u\n"
						   "max-connections=1\n"
						   "[client bob]\n"
						   "token-file=bob.token\n"
						   "names=bob\n",
						   alice_port);
	g_autofree char *path = clients_config(dir, clients);
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	const char *const alice = "Authorization: Bearer alice-token-0123456789\r\n"
				  "Piggyback-Features: flow, eof, name\r\n";
	const char *const bob = "Authorization: Bearer bob-token-0123456789\r\n"
				"Piggyback-Features: flow, eof, name\r\n";
	g_autofree char *line = NULL;
	g_autofree char *metrics = NULL;
	g_autofree char *series = NULL;
	g_autofree char *headers = NULL;
	g_autoptr(GSocket) first = NULL;
	g_autoptr(GSocket) second = NULL;
	PbTestProc *server;
	PbTestProc *alice_client;
	PbTestProc *bob_client;
	guint16 port;

	g_test_summary("[client NAME] groups: each token gets what its group allows (names, "
		       "ports, max-connections) and is refused what it does not with 403 and "
		       "the reason before the upgrade; NAME in the log and /metrics");
	/* /metrics shows every tunnel: not to anyone, nor to every client */
	{
		const char *const args[] = {"--config", path, "--metrics", "on", NULL};
		g_autofree char *output = NULL;

		g_assert_cmpint(serve_fails(args, &output), ==, 2);
		g_assert_nonnull(strstr(output, "--metrics needs --metrics-token-file"));
	}
	server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "--config", path,
				    "--metrics", "public", NULL);
	port = pb_test_proc_wait_port(server, "Listening on ws://127.0.0.1:");
	g_assert_false(pb_test_proc_said(server, "warning: no token"));

	/* no token, or one of no group: 401 */
	g_assert_cmpuint(upgrade_status(port, ""), ==, 401);
	g_assert_cmpuint(upgrade_status(port, "Authorization: Bearer carol-token-0123456789\r\n"),
			 ==, 401);
	/* a name the token may not take, or none where it may take only some: 403, why */
	headers = g_strconcat(alice, "Piggyback-Name: bob\r\n", NULL);
	line = upgrade_line(port, headers);
	g_assert_cmpstr(line, ==,
			"HTTP/1.1 403 Client alice may not take the name bob, only names "
			"matching alice-*;alice");
	g_clear_pointer(&line, g_free);
	g_free(headers);
	headers = g_strconcat(bob, "Piggyback-Name: alice-web\r\n", NULL);
	line = upgrade_line(port, headers);
	g_assert_nonnull(strstr(line, " 403 Client bob may not take the name alice-web"));
	g_clear_pointer(&line, g_free);
	line = upgrade_line(port, alice);
	g_assert_nonnull(strstr(line, " 403 Client alice takes only names matching"));
	pb_test_wait_until(pb_test_proc_said(server, "Refusing client alice: Client alice may not"),
			   10);

	/* what each may claim: its names, its port */
	alice_client = forward(port, pb_test_service_get_port(echo), alice_token, "alice-web");
	g_assert_cmpuint(forward_wait_port(alice_client), ==, alice_port);
	bob_client = forward(port, pb_test_service_get_port(echo), bob_token, "bob");
	pb_test_wait_until(pb_test_proc_said(bob_client, "HTTP URL: http://bob.example.test:"), 10);
	pb_test_wait_until(pb_test_proc_said(server, "Client alice@127.0.0.1:"), 10);
	g_assert_true(pb_test_proc_said(server, "Client bob@127.0.0.1:"));

	/* alice's max-connections=1: a second connection at once is closed */
	first = pb_test_connect(alice_port);
	g_socket_set_timeout(first, 10);
	assert_echoes(first, 'a');
	second = pb_test_connect(alice_port);
	g_socket_set_timeout(second, 10);
	assert_closed(second);
	assert_echoes(first, 'b');

	metrics = http_get(port, "/metrics");
	series = g_strdup_printf("piggyback_port_connections_open{port=\"%u\",name=\"alice-web\","
				 "client=\"alice\"} 1",
				 alice_port);
	g_assert_nonnull(strstr(metrics, series));
	g_assert_nonnull(strstr(metrics, ",name=\"bob\",client=\"bob\"}"));

	g_assert_cmpint(pb_test_proc_finish(alice_client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(bob_client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	pb_test_service_free(echo);
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

/* A bad [client] group and what its error must say. */
static const BadFile bad_clients[] = {
    {"no token-file", "[client alice]\nnames=a\n", {":1:", "[client alice]", "token-file"}},
    {"missing token file", "[client alice]\ntoken-file=nope\n", {":2:", "token-file=nope"}},
    {"unknown key", "[client alice]\ntoken-file=a.token\nport=1\n", {":3:", "“port”"}},
    {"bad ports", "[client alice]\ntoken-file=a.token\nports=9-1\n", {":3:", "ports=9-1"}},
    {"bad max-connections",
     "[client alice]\ntoken-file=a.token\nmax-connections=0\n",
     {":3:", "max-connections=0"}},
    {"empty names", "[client alice]\ntoken-file=a.token\nnames=;\n", {":3:", "names=;"}},
    {"bad allow",
     "[client alice]\ntoken-file=a.token\nallow=10.0.0.0/99\n",
     {":3:", "allow=10.0.0.0/99", "“10.0.0.0/99”"}},
    {"bad deny",
     "[client alice]\ntoken-file=a.token\nallow=10.0.0.0/8\ndeny=nowhere\n",
     {":4:", "deny=nowhere"}},
    {"bad max-connections-per-address",
     "[client alice]\ntoken-file=a.token\nmax-connections-per-address=-1\n",
     {":3:", "max-connections-per-address=-1"}},
    {"bad max-services",
     "[client alice]\ntoken-file=a.token\nmax-services=none\n",
     {":3:", "max-services=none"}},
    {"bad client name", "[client a b]\ntoken-file=a.token\n", {":1:", "[client a b]"}},
    {"shared token",
     "[client alice]\ntoken-file=a.token\n[client bob]\ntoken-file=a.token\n",
     {":4:", "[client bob]", "[client alice]"}},
};

static void
test_config_clients_bad(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *token = pb_test_write_file(dir, "a.token", "a-token-0123456789\n");

	g_test_summary("Every kind of bad [client] group is refused with its file, line, key "
		       "and value");
	for (guint i = 0; i < G_N_ELEMENTS(bad_clients); i++) {
		const BadFile *bad = &bad_clients[i];
		g_autofree char *path = pb_test_write_file(dir, "bad.conf", bad->contents);
		g_autoptr(PbConfigFile) config = pb_config_file_load(path, NULL);
		g_autoptr(PbClientPolicy) policy = NULL;
		g_autoptr(GError) error = NULL;

		g_test_message("%s", bad->what);
		g_assert_nonnull(config);
		policy = pb_client_policy_new_from_config(config, &error);
		g_assert_null(policy);
		g_assert_nonnull(error);
		g_assert_true(g_str_has_prefix(error->message, path));
		for (guint s = 0; s < G_N_ELEMENTS(bad->says) && bad->says[s] != NULL; s++) {
			if (strstr(error->message, bad->says[s]) == NULL)
				g_error("%s: no “%s” in: %s", bad->what, bad->says[s],
					error->message);
		}
	}
	/* and serve refuses to start with one, exit 2 */
	{
		g_autofree char *path =
		    pb_test_write_file(dir, "bad.conf", bad_clients[1].contents);
		const char *const args[] = {"--config", path, "-p", "0", NULL};
		g_autofree char *output = NULL;

		g_assert_cmpint(serve_fails(args, &output), ==, 2);
		g_assert_nonnull(strstr(output, "bad.conf:2: [client alice] token-file=nope"));
	}
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

/* An upgrade request of a [client] group's token and the status line it gets. */
typedef struct {
	const char *headers;
	const char *status;
} UpgradeCase;

#define ALICE                                                                                      \
	"Authorization: Bearer alice-token-0123456789\r\n"                                         \
	"Piggyback-Features: flow, eof, name, services\r\n"
#define BOB                                                                                        \
	"Authorization: Bearer bob-token-0123456789\r\n"                                           \
	"Piggyback-Features: flow, eof, name, services\r\n"

/* each asks for names of its own: the previous one's may still be held */
static const UpgradeCase max_services_cases[] = {
    {ALICE "Piggyback-Name: alice\r\n", "HTTP/1.1 101 Switching Protocols"},
    {ALICE "Piggyback-Name: alice-1\r\nPiggyback-Services: alice-api\r\n",
     "HTTP/1.1 101 Switching Protocols"},
    {ALICE "Piggyback-Name: alice-2\r\nPiggyback-Services: alice-db, -\r\n",
     "HTTP/1.1 403 Client alice may have at most 2 services (max-services), not 3"},
    /* counted before the names are looked at */
    {ALICE "Piggyback-Name: bob\r\nPiggyback-Services: -, -, -\r\n",
     "HTTP/1.1 403 Client alice may have at most 2 services (max-services), not 4"},
    /* a group without max-services= has the server's (--max-services 4) */
    {BOB "Piggyback-Name: bob\r\nPiggyback-Services: -, -, -\r\n",
     "HTTP/1.1 101 Switching Protocols"},
    {BOB "Piggyback-Name: bob-1\r\nPiggyback-Services: -, -, -, -\r\n",
     "HTTP/1.1 403 Too many services (--max-services)"},
};

static void
test_config_max_services(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *alice_token =
	    pb_test_write_file(dir, "alice.token", "alice-token-0123456789\n");
	g_autofree char *bob_token = pb_test_write_file(dir, "bob.token", "bob-token-0123456789\n");
	g_autofree char *path = clients_config(dir, "max-services=4\n"
						    "[client alice]\n"
						    "token-file=alice.token\n"
						    "names=alice-*;alice\n"
						    "max-services=2\n"
						    "[client bob]\n"
						    "token-file=bob.token\n");
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	PbTestProc *server;
	guint16 port;

	g_test_summary("max-services= of a [client] group: a client of it asking for more "
		       "services gets 403 with the reason before the upgrade; without it, the "
		       "server's --max-services");
	server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "--config", path,
				    "--grace", "0", NULL);
	port = pb_test_proc_wait_port(server, "Listening on ws://127.0.0.1:");
	for (guint i = 0; i < G_N_ELEMENTS(max_services_cases); i++) {
		const UpgradeCase *row = &max_services_cases[i];
		g_autofree char *line = upgrade_line(port, row->headers);

		g_test_message("case %u", i);
		g_assert_cmpstr(line, ==, row->status);
	}
	pb_test_wait_until(pb_test_proc_said(server, "Refusing client alice: Client alice may "
						     "have at most 2 services"),
			   10);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

/* A transfer through a tunnel while it may be cut: @size bytes of the pattern to an echo
 * service on @port and back. */
typedef struct {
	GSocket *socket; /* (owned) connected to the tunnel's public port */
	guint16 port;
	gsize size;
	gboolean exact; /* all came back, byte for byte */
	int done;	/* atomic */
} Transfer;

static gpointer
transfer_cb(gpointer user_data)
{
	Transfer *transfer = user_data;
	GSocket *socket = transfer->socket;
	g_autofree guint8 *out = g_malloc(transfer->size);
	g_autofree guint8 *in = g_malloc(transfer->size);
	gsize sent = 0;
	gsize got = 0;

	g_socket_set_timeout(socket, 20);
	pb_test_pattern_fill(out, transfer->size, 0);
	while (got < transfer->size) {
		gssize n;

		if (sent < transfer->size) {
			n = g_socket_send(socket, (char *)out + sent,
					  MIN(transfer->size - sent, 65536), NULL, NULL);
			if (n <= 0)
				break;
			sent += (gsize)n;
		}
		if (!g_socket_condition_timed_wait(
			socket, G_IO_IN, sent < transfer->size ? 0 : 20000000, NULL, NULL))
			continue;
		n = g_socket_receive(socket, (char *)in + got, transfer->size - got, NULL, NULL);
		if (n <= 0)
			break;
		got += (gsize)n;
	}
	transfer->exact = got == transfer->size && memcmp(in, out, got) == 0;
	g_atomic_int_set(&transfer->done, 1);
	g_main_context_wakeup(NULL);
	return NULL;
}

static guint
transfers_done(Transfer *transfers, guint n)
{
	guint done = 0;

	for (guint i = 0; i < n; i++)
		done += g_atomic_int_get(&transfers[i].done);
	return done;
}

/* A connection to 127.0.0.1:@port from @from. */
static GSocket *
connect_from(const char *from, guint16 port)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInetAddress) source = g_inet_address_new_from_string(from);
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) local = g_inet_socket_address_new(source, 0);
	g_autoptr(GSocketAddress) remote = g_inet_socket_address_new(loopback, port);
	GSocket *socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);

	g_assert_no_error(error);
	g_socket_bind(socket, local, FALSE, &error);
	g_assert_no_error(error);
	g_socket_connect(socket, remote, NULL, &error);
	g_assert_no_error(error);
	g_socket_set_timeout(socket, 10);
	return socket;
}

static void
test_config_reload(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *alice_token =
	    pb_test_write_file(dir, "alice.token", "alice-token-0123456789\n");
	g_autofree char *bob_token = pb_test_write_file(dir, "bob.token", "bob-token-0123456789\n");
	g_autofree char *carol_token =
	    pb_test_write_file(dir, "carol.token", "carol-token-0123456789\n");
	const char *const both = "[client alice]\ntoken-file=alice.token\nnames=alice\n"
				 "[client bob]\ntoken-file=bob.token\n";
	/* bob's token goes, and alice's rule tightens: no more connections from 127.0.0.2 */
	const char *const alice_carol = "[client alice]\ntoken-file=alice.token\nnames=alice\n"
					"deny=127.0.0.2\n"
					"[client carol]\ntoken-file=carol.token\n";
	g_autofree char *path = clients_config(dir, both);
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autoptr(GSocket) through_alice = NULL;
	g_autoptr(GSocket) through_bob = NULL;
	g_autoptr(GSocket) from_denied = NULL;
	PbTestProc *server;
	PbTestProc *alice;
	PbTestProc *bob;
	PbTestProc *carol;
	Transfer transfers[8] = {{0}};
	GThread *threads[8];
	guint16 alice_port;
	guint16 bob_port;
	guint16 port;

	g_test_summary("SIGHUP reads the file again: a client whose token was removed is "
		       "disconnected with 1008 and the reason, the others keep their tunnels and "
		       "connections, a tightened rule holds for new ones; a file that does not "
		       "parse changes nothing");
	server =
	    pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "--config", path, NULL);
	port = pb_test_proc_wait_port(server, "Listening on ws://127.0.0.1:");
	alice = forward(port, pb_test_service_get_port(echo), alice_token, "alice");
	bob = forward(port, pb_test_service_get_port(echo), bob_token, "bob");
	alice_port = forward_wait_port(alice);
	bob_port = forward_wait_port(bob);
	through_alice = pb_test_connect(alice_port);
	through_bob = pb_test_connect(bob_port);
	g_socket_set_timeout(through_alice, 10);
	g_socket_set_timeout(through_bob, 10);
	assert_echoes(through_alice, '1');
	assert_echoes(through_bob, '1');

	/* bob's token goes, under load: 8 transfers through the two tunnels */
	for (guint i = 0; i < G_N_ELEMENTS(transfers); i++) {
		transfers[i].port = i % 2 == 0 ? alice_port : bob_port;
		transfers[i].size = 16 * 1024 * 1024;
		/* connected before the reload, all of them */
		transfers[i].socket = pb_test_connect(transfers[i].port);
	}
	for (guint i = 0; i < G_N_ELEMENTS(transfers); i++) {
		threads[i] = g_thread_new("transfer", transfer_cb, &transfers[i]);
	}
	g_free(clients_config(dir, alice_carol));
	kill(pb_test_proc_get_pid(server), SIGHUP);
	pb_test_wait_until(pb_test_proc_said(server, "configuration reloaded, 2 [client] groups"),
			   10);
	g_assert_true(pb_test_proc_said(server, "Disconnecting client bob@127.0.0.1:"));
	pb_test_wait_until(
	    pb_test_proc_said(bob, "The token of client bob was removed from the configuration "
				   "(1008)"),
	    10);
	assert_closed(through_bob);
	/* bob comes back and is refused for good */
	pb_test_wait_until(pb_test_proc_exited(bob), 20);
	g_assert_cmpint(pb_test_proc_finish(bob), ==, 1);
	/* alice's tunnel and its connections stayed: its transfers came back byte for byte */
	pb_test_wait_until(
	    transfers_done(transfers, G_N_ELEMENTS(transfers)) == G_N_ELEMENTS(transfers), 60);
	for (guint i = 0; i < G_N_ELEMENTS(transfers); i++) {
		g_thread_join(threads[i]);
		g_object_unref(transfers[i].socket);
		if (transfers[i].port == alice_port)
			g_assert_true(transfers[i].exact);
		else
			g_test_message("a transfer through bob's tunnel %s",
				       transfers[i].exact ? "ended before the reload" : "was cut");
	}
	assert_echoes(through_alice, '2');
	g_assert_false(pb_test_proc_said(alice, "Offline"));
	/* the tightened rule holds for new connections */
	from_denied = connect_from("127.0.0.2", alice_port);
	assert_closed(from_denied);

	/* a broken file: the running configuration stays */
	g_free(pb_test_write_file(dir, "serve.conf", "[serve\n"));
	kill(pb_test_proc_get_pid(server), SIGHUP);
	pb_test_wait_until(pb_test_proc_said(server, "Configuration not reloaded"), 10);
	g_assert_true(pb_test_proc_said(server, "serve.conf:1:"));
	assert_echoes(through_alice, '3');
	carol = forward(port, pb_test_service_get_port(echo), carol_token, NULL);
	forward_wait_port(carol);
	g_assert_cmpint(pb_test_proc_finish(carol), ==, 0);

	g_assert_false(pb_test_proc_said(alice, "Offline"));
	g_assert_cmpint(pb_test_proc_finish(alice), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	pb_test_service_free(echo);
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

/* An address, and whether the rules take a connection from it. */
typedef struct {
	const char *allow;
	const char *deny;
	const char *address;
	gboolean taken;
} AddressCase;

static const AddressCase address_cases[] = {
    {NULL, NULL, "192.0.2.1", TRUE},
    {NULL, NULL, "2001:db8::1", TRUE},
    {"127.0.0.0/8", NULL, "127.0.0.2", TRUE},
    {"127.0.0.1", NULL, "127.0.0.2", FALSE},
    {"127.0.0.1", NULL, "::1", FALSE},
    {"127.0.0.1", NULL, "::ffff:127.0.0.1", TRUE}, /* IPv4 on a dual-stack port */
    {"127.0.0.1,::1", NULL, "::1", TRUE},
    {"2001:db8::/32", NULL, "2001:db8:1::5", TRUE},
    {"2001:db8::/32", NULL, "2001:db9::5", FALSE},
    {NULL, "127.0.0.2", "127.0.0.2", FALSE},
    {NULL, "127.0.0.2", "::ffff:127.0.0.2", FALSE},
    {NULL, "127.0.0.2", "127.0.0.1", TRUE},
    {NULL, "::1", "::1", FALSE},
    {"127.0.0.0/8", "127.0.0.2/32", "127.0.0.2", FALSE}, /* deny before allow */
    {"127.0.0.0/8", "127.0.0.2/32", "127.0.0.3", TRUE},
    {"10.0.0.0/8; 127.0.0.1", NULL, "127.0.0.1", TRUE},
};

static void
test_config_address_rules(void)
{
	g_autoptr(PbAddressRules) rules = pb_address_rules_new();
	g_autoptr(GError) error = NULL;
	guint64 n_refused = 0;

	g_test_summary("allow= and deny=: IPv4, IPv6 and IPv4-mapped addresses against CIDR "
		       "ranges, deny first; refusals counted; a bad range refused, the rules kept");
	for (guint i = 0; i < G_N_ELEMENTS(address_cases); i++) {
		const AddressCase *c = &address_cases[i];
		g_autoptr(GInetAddress) address = g_inet_address_new_from_string(c->address);

		g_test_message("allow=%s deny=%s: %s", c->allow, c->deny, c->address);
		g_assert_true(pb_address_rules_set(rules, c->allow, c->deny, &error));
		g_assert_no_error(error);
		g_assert_cmpint(pb_address_rules_check(rules, address), ==, c->taken);
		n_refused += !c->taken;
		g_assert_cmpuint(pb_address_rules_get_n_refused(rules), ==, n_refused);
	}
	g_assert_false(pb_address_rules_set(rules, "192.0.2.1", "127.0.0.300", &error));
	g_assert_nonnull(strstr(error->message, "--deny"));
	g_assert_nonnull(strstr(error->message, "“127.0.0.300”"));
	{
		g_autoptr(GInetAddress) address = g_inet_address_new_from_string("127.0.0.1");

		/* the rules before stay: allow 10.0.0.0/8 and 127.0.0.1 */
		g_assert_true(pb_address_rules_check(rules, address));
	}
}

static void
test_config_allow_deny(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *token = pb_test_write_file(dir, "token", "shared-token-0123456789\n");
	g_autofree char *path =
	    pb_test_write_file(dir, "serve.conf",
			       "[serve]\nport=0\nlisten=127.0.0.1\n"
			       "tunnel-host=127.0.0.1\nlog=plain\ntoken-file=token\n"
			       "metrics=public\n"
			       "allow=127.0.0.0/8\ndeny=127.0.0.2\n");
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autofree char *metrics = NULL;
	g_autoptr(GSocket) taken = NULL;
	g_autoptr(GSocket) refused = NULL;
	PbTestProc *server;
	PbTestProc *client;
	guint16 port;
	guint16 public_port;

	g_test_summary("allow= and deny= on the public ports: a refused address is closed at "
		       "accept, counted in /metrics and logged; a reload brings new rules for "
		       "new connections, open ones stay");
	server =
	    pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "--config", path, NULL);
	port = pb_test_proc_wait_port(server, "Listening on ws://127.0.0.1:");
	client = forward(port, pb_test_service_get_port(echo), token, NULL);
	public_port = forward_wait_port(client);

	taken = connect_from("127.0.0.3", public_port);
	assert_echoes(taken, 'x');
	refused = connect_from("127.0.0.2", public_port);
	assert_closed(refused);
	g_clear_object(&refused);
	pb_test_wait_until(
	    pb_test_proc_said(server, "Refused 1 public connection(s), the last from 127.0.0.2: "
				      "deny=127.0.0.2"),
	    10);
	metrics = http_get(port, "/metrics");
	g_assert_nonnull(strstr(metrics, "\npiggyback_address_refused_total 1\n"));

	/* a reload: 127.0.0.3 is no longer allowed, its open connection stays */
	g_free(pb_test_write_file(dir, "serve.conf",
				  "[serve]\nport=0\nlisten=127.0.0.1\n"
				  "tunnel-host=127.0.0.1\nlog=plain\ntoken-file=token\n"
				  "metrics=public\nallow=127.0.0.1,127.0.0.2\n"));
	kill(pb_test_proc_get_pid(server), SIGHUP);
	pb_test_wait_until(pb_test_proc_said(server, "configuration reloaded"), 10);
	refused = connect_from("127.0.0.3", public_port);
	assert_closed(refused);
	g_clear_object(&refused);
	pb_test_wait_until(pb_test_proc_said(server, "the last from 127.0.0.3: in no allow="), 10);
	assert_echoes(taken, 'y');
	refused = connect_from("127.0.0.2", public_port);
	assert_echoes(refused, 'z');
	g_clear_pointer(&metrics, g_free);
	metrics = http_get(port, "/metrics");
	g_assert_nonnull(strstr(metrics, "\npiggyback_address_refused_total 2\n"));

	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	pb_test_service_free(echo);
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

/* A public connection to a client's port from an address, and whether it is taken. */
typedef struct {
	const char *client; /* "alice", "bob" */
	const char *from;
	gboolean taken;
} ClientAddressCase;

static const ClientAddressCase client_address_cases[] = {
    /* alice's own deny=, on top of the server's deny=127.0.0.4 */
    {"alice", "127.0.0.1", TRUE},
    {"alice", "127.0.0.2", FALSE},
    {"alice", "127.0.0.3", TRUE},
    {"alice", "127.0.0.4", FALSE},
    /* bob's allow=: only its range */
    {"bob", "127.0.0.1", FALSE},
    {"bob", "127.0.0.2", FALSE},
    {"bob", "127.0.0.3", TRUE},
    {"bob", "127.0.0.4", FALSE},
    {"bob", "127.0.0.5", FALSE},
};

static void
test_config_client_allow_deny(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *alice_token =
	    pb_test_write_file(dir, "alice.token", "alice-token-0123456789\n");
	g_autofree char *bob_token = pb_test_write_file(dir, "bob.token", "bob-token-0123456789\n");
	g_autofree char *path = clients_config(dir, "deny=127.0.0.4\n"
						    "[client alice]\n"
						    "token-file=alice.token\n"
						    "deny=127.0.0.2\n"
						    "[client bob]\n"
						    "token-file=bob.token\n"
						    "allow=127.0.0.3/32,::1\n");
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autofree char *metrics = NULL;
	PbTestProc *server;
	PbTestProc *clients[2];
	guint16 public_ports[2];
	guint n_refused = 0;
	guint16 port;

	g_test_summary("allow= and deny= of a [client] group: its public connections only, "
		       "after the server's; a refused one is closed at accept, counted in "
		       "/metrics and logged with the client's name");
	server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "--config", path,
				    "--metrics", "public", NULL);
	port = pb_test_proc_wait_port(server, "Listening on ws://127.0.0.1:");
	clients[0] = forward(port, pb_test_service_get_port(echo), alice_token, "alice");
	clients[1] = forward(port, pb_test_service_get_port(echo), bob_token, "bob");
	for (guint i = 0; i < G_N_ELEMENTS(clients); i++)
		public_ports[i] = forward_wait_port(clients[i]);

	for (guint i = 0; i < G_N_ELEMENTS(client_address_cases); i++) {
		const ClientAddressCase *row = &client_address_cases[i];
		guint16 public_port = public_ports[g_strcmp0(row->client, "bob") == 0];
		g_autoptr(GSocket) socket = connect_from(row->from, public_port);

		g_test_message("%s from %s", row->client, row->from);
		if (row->taken) {
			assert_echoes(socket, 'x');
		} else {
			assert_closed(socket);
			n_refused++;
		}
	}
	pb_test_wait_until(pb_test_proc_said(server, "Client alice: Refused 1 public "
						     "connection(s), the last from 127.0.0.2: "
						     "deny=127.0.0.2"),
			   10);
	pb_test_wait_until(pb_test_proc_said(server, "Client bob: Refused 1 public "
						     "connection(s), the last from 127.0.0.1: in "
						     "no allow= range"),
			   10);
	metrics = http_get(port, "/metrics");
	{
		g_autofree char *series =
		    g_strdup_printf("\npiggyback_address_refused_total %u\n", n_refused);

		g_assert_nonnull(strstr(metrics, series));
	}
	for (guint i = 0; i < G_N_ELEMENTS(clients); i++)
		g_assert_cmpint(pb_test_proc_finish(clients[i]), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	pb_test_service_free(echo);
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

/* Whether @socket, a public connection through a tunnel to an echo service, echoes a
 * byte: a refused one is closed instead. */
static gboolean
echoes(GSocket *socket, char byte)
{
	Exchange exchange = {socket, byte};

	return GPOINTER_TO_INT(pb_test_run_in_thread(exchange_cb, &exchange, 10));
}

/* One more public connection, kept open, and whether the limits take it. */
static const ClientAddressCase per_address_steps[] = {
    /* alice's max-connections-per-address=1 */
    {"alice", "127.0.0.2", TRUE},
    {"alice", "127.0.0.2", FALSE},
    {"alice", "127.0.0.3", TRUE},
    /* the server's 2, all tunnels together: 127.0.0.2 has one (alice's) */
    {"bob", "127.0.0.2", TRUE},
    {"bob", "127.0.0.2", FALSE},
    {"bob", "127.0.0.3", TRUE},
    {"bob", "127.0.0.4", TRUE},
    {"bob", "127.0.0.4", TRUE},
    {"bob", "127.0.0.4", FALSE},
};

static void
test_config_max_per_address(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *alice_token =
	    pb_test_write_file(dir, "alice.token", "alice-token-0123456789\n");
	g_autofree char *bob_token = pb_test_write_file(dir, "bob.token", "bob-token-0123456789\n");
	g_autofree char *path = clients_config(dir, "max-connections-per-address=2\n"
						    "[client alice]\n"
						    "token-file=alice.token\n"
						    "max-connections-per-address=1\n"
						    "[client bob]\n"
						    "token-file=bob.token\n");
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autoptr(GPtrArray) open = g_ptr_array_new_with_free_func(g_object_unref);
	g_autofree char *metrics = NULL;
	g_autofree char *series = NULL;
	PbTestProc *server;
	PbTestProc *clients[2];
	guint16 public_ports[2];
	guint n_refused = 0;
	gboolean taken = FALSE;
	gint64 deadline;
	guint16 port;

	g_test_summary("max-connections-per-address= of the server (all tunnels together) and "
		       "of a [client] group: a further public connection from that address is "
		       "closed at once, counted and logged; one closed frees its place");
	server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "--config", path,
				    "--metrics", "public", NULL);
	port = pb_test_proc_wait_port(server, "Listening on ws://127.0.0.1:");
	clients[0] = forward(port, pb_test_service_get_port(echo), alice_token, "alice");
	clients[1] = forward(port, pb_test_service_get_port(echo), bob_token, "bob");
	for (guint i = 0; i < G_N_ELEMENTS(clients); i++)
		public_ports[i] = forward_wait_port(clients[i]);

	for (guint i = 0; i < G_N_ELEMENTS(per_address_steps); i++) {
		const ClientAddressCase *row = &per_address_steps[i];
		guint16 public_port = public_ports[g_strcmp0(row->client, "bob") == 0];
		GSocket *socket = connect_from(row->from, public_port);

		g_test_message("%s from %s", row->client, row->from);
		g_assert_cmpint(echoes(socket, 'x'), ==, row->taken);
		if (row->taken)
			g_ptr_array_add(open, socket);
		else
			g_object_unref(socket);
		n_refused += !row->taken;
	}
	pb_test_wait_until(pb_test_proc_said(server,
					     "Client alice: Refused 1 public "
					     "connection(s), the last from 127.0.0.2: 1 "
					     "open from there (max-connections-per-address)"),
			   10);
	pb_test_wait_until(pb_test_proc_said(server, "Refused 1 public connection(s), the last "
						     "from 127.0.0.2: 2 open from there"),
			   10);
	metrics = http_get(port, "/metrics");
	series = g_strdup_printf("\npiggyback_address_refused_total %u\n", n_refused);
	g_assert_nonnull(strstr(metrics, series));

	/* alice's connection from 127.0.0.2 closes: another from there is taken, once the
	 * server has let the first go */
	g_ptr_array_remove_index(open, 0);
	deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	while (!taken && g_get_monotonic_time() < deadline) {
		g_autoptr(GSocket) socket = connect_from("127.0.0.2", public_ports[0]);

		taken = echoes(socket, 'y');
		if (taken)
			g_ptr_array_add(open, g_steal_pointer(&socket));
		else
			g_usleep(50 * 1000);
	}
	g_assert_true(taken);

	g_ptr_array_set_size(open, 0);
	for (guint i = 0; i < G_N_ELEMENTS(clients); i++)
		g_assert_cmpint(pb_test_proc_finish(clients[i]), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	pb_test_service_free(echo);
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

/* An address and what max-connections-per-address counts it under. */
static const struct {
	const char *address;
	const char *key;
} address_keys[] = {
    {"192.0.2.1", "192.0.2.1"},
    {"::ffff:192.0.2.1", "192.0.2.1"}, /* an IPv4 client of a dual-stack port */
    {"2001:db8:1:2::5", "2001:db8:1:2::/64"},
    {"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
    {"2001:db8:1:3::5", "2001:db8:1:3::/64"},
    {"::1", "::/64"},
};

static void
test_config_address_keys(void)
{
	g_test_summary("max-connections-per-address counts an IPv4 address (mapped or not) as "
		       "itself and an IPv6 address by its /64");
	for (guint i = 0; i < G_N_ELEMENTS(address_keys); i++) {
		g_autoptr(GInetAddress) address =
		    g_inet_address_new_from_string(address_keys[i].address);
		g_autofree char *key = pb_address_rules_key(address);

		g_assert_cmpstr(key, ==, address_keys[i].key);
	}
}

/* A connection to the WebSocket port from an address, and whether it is served. */
typedef struct {
	const char *from;
	gboolean taken;
} ListenCase;

static const ListenCase listen_before[] = {
    {"127.0.0.1", TRUE},
    {"127.0.0.2", FALSE},
    {"127.0.0.3", TRUE},
};

/* after a reload to listen-allow=127.0.0.3 (the file's listen-deny= goes) */
static const ListenCase listen_after[] = {
    {"127.0.0.1", FALSE},
    {"127.0.0.2", FALSE},
    {"127.0.0.3", TRUE},
};

/* Whether the WebSocket port on @port answers GET /healthz from @from. */
static gboolean
listen_answers(const char *from, guint16 port)
{
	const char *request =
	    "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	g_autoptr(GSocket) socket = connect_from(from, port);
	char buf[64];

	/* a refused connection may be gone before the request is written */
	g_socket_send(socket, request, strlen(request), NULL, NULL);
	return g_socket_receive(socket, buf, sizeof buf, NULL, NULL) > 0;
}

static void
test_config_listen_allow_deny(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-config");
	g_autofree char *path =
	    pb_test_write_file(dir, "serve.conf",
			       "[serve]\nport=0\nlisten=127.0.0.1\n"
			       "tunnel-host=127.0.0.1\nlog=plain\nmetrics=public\n"
			       "listen-deny=127.0.0.2\n");
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	g_autofree char *metrics = NULL;
	g_autofree char *output = NULL;
	PbTestProc *server;
	guint16 port;

	g_test_summary("listen-allow= and listen-deny=: who may connect to the WebSocket port "
		       "(open a tunnel), checked at accept: a refused address is closed at once, "
		       "counted in /metrics and logged; a reload brings new ranges; a bad range "
		       "exits 2 naming its place");
	{
		g_autofree char *bad =
		    pb_test_write_file(dir, "bad.conf", "[serve]\nlisten-allow=10.0.0.0/40\n");
		const char *const args[] = {"--config", bad, "-p", "0", NULL};

		g_assert_cmpint(serve_fails(args, &output), ==, 2);
		g_assert_nonnull(
		    strstr(output, "bad.conf:2: listen-allow=10.0.0.0/40: --listen-allow takes"));
	}
	server =
	    pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "--config", path, NULL);
	port = pb_test_proc_wait_port(server, "Listening on ws://127.0.0.1:");
	for (guint i = 0; i < G_N_ELEMENTS(listen_before); i++) {
		g_test_message("from %s", listen_before[i].from);
		g_assert_cmpint(listen_answers(listen_before[i].from, port), ==,
				listen_before[i].taken);
	}
	pb_test_wait_until(pb_test_proc_said(server, "Refused 1 connection(s) to the WebSocket "
						     "port, the last from 127.0.0.2: "
						     "listen-deny=127.0.0.2"),
			   10);
	metrics = http_get(port, "/metrics");
	g_assert_nonnull(strstr(metrics, "\npiggyback_listen_refused_total 1\n"));

	g_free(pb_test_write_file(dir, "serve.conf",
				  "[serve]\nport=0\nlisten=127.0.0.1\n"
				  "tunnel-host=127.0.0.1\nlog=plain\nmetrics=public\n"
				  "listen-allow=127.0.0.3\n"));
	kill(pb_test_proc_get_pid(server), SIGHUP);
	pb_test_wait_until(pb_test_proc_said(server, "configuration reloaded"), 10);
	for (guint i = 0; i < G_N_ELEMENTS(listen_after); i++) {
		g_test_message("after the reload, from %s", listen_after[i].from);
		g_assert_cmpint(listen_answers(listen_after[i].from, port), ==,
				listen_after[i].taken);
	}
	pb_test_wait_until(pb_test_proc_said(server, "the last from 127.0.0.1: in no "
						     "listen-allow= range"),
			   10);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	pb_test_temp_dir_free(g_steal_pointer(&dir));
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
	g_test_add_func("/config/clients", test_config_clients);
	g_test_add_func("/config/clients-bad", test_config_clients_bad);
	g_test_add_func("/config/max-services", test_config_max_services);
	g_test_add_func("/config/reload", test_config_reload);
	g_test_add_func("/config/address-rules", test_config_address_rules);
	g_test_add_func("/config/allow-deny", test_config_allow_deny);
	g_test_add_func("/config/client-allow-deny", test_config_client_allow_deny);
	g_test_add_func("/config/max-per-address", test_config_max_per_address);
	g_test_add_func("/config/address-keys", test_config_address_keys);
	g_test_add_func("/config/listen-allow-deny", test_config_listen_allow_deny);
	return g_test_run();
}
