/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signal.h>

#include "pb-cli.h"
#include "pb-config-file.h"
#include "pb-forward-options.h"
#include "pb-test-utils.h"

/*
 * forward --config FILE: every key of data/forward.conf.example sets its option, each
 * [service NAME] group is a further service, every kind of bad file is refused naming its
 * place, and the real `piggyback forward` takes its options and services from a file with
 * the command line winning.
 */

static const char *const forward_groups[] = {"forward", "service ", NULL};

/* How each option of PbForwardOptions is found, to check the file set it. */
typedef struct {
	const char *key;
	gsize offset;
} ForwardKey;

#define FORWARD_KEY(key, field)                                                                    \
	{                                                                                          \
		key, G_STRUCT_OFFSET(PbForwardOptions, field)                                      \
	}

static const ForwardKey forward_keys[] = {
    FORWARD_KEY("port", port),
    FORWARD_KEY("host", host),
    FORWARD_KEY("server", server),
    FORWARD_KEY("features", features),
    FORWARD_KEY("name", name),
    FORWARD_KEY("proxy-protocol", proxy_protocol),
    FORWARD_KEY("no-dbus", no_dbus),
    FORWARD_KEY("no-reconnect", no_reconnect),
    FORWARD_KEY("max-connections", max_connections),
    FORWARD_KEY("token-file", token_file),
    FORWARD_KEY("ca-file", ca_file),
    FORWARD_KEY("pin-sha256", pin_sha256),
};

/* The keys of the options every command has (pb-cli.c), checked through the place an
 * error about them names. */
static const char *const cli_keys[] = {
    "keepalive", "max-message-size", "verbose", "quiet", "log",
};

/* Options that are not keys of [forward]: the file itself, and --expose, whose file form
 * is the [service NAME] groups. */
static gboolean
is_no_key(const char *option)
{
	return g_strcmp0(option, "config") == 0 || g_strcmp0(option, "expose") == 0;
}

static void
test_forward_config_example(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-forward-config");
	g_autofree char *text = pb_test_example_uncommented("forward.conf.example", "service");
	g_autofree char *path = pb_test_write_file(dir, "forward.conf", text);
	g_autoptr(GKeyFile) key_file = g_key_file_new();
	g_auto(PbForwardOptions) options = {0};
	g_autofree GOptionEntry *entries = NULL;
	g_autoptr(PbConfigFile) config = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) keys = NULL;
	g_auto(GStrv) services = NULL;
	guint n_checked = 0;

	g_test_summary("Every key of data/forward.conf.example, uncommented, parses and sets "
		       "its option, its [service] group is a further service; every option of "
		       "forward is in the example");
	pb_forward_options_init(&options);
	entries = pb_forward_options_get_entries(&options);
	config = pb_cli_load_config(path, "forward", entries, forward_groups, FALSE, &error);
	g_assert_no_error(error);
	g_assert_nonnull(config);
	g_key_file_load_from_data(key_file, text, -1, G_KEY_FILE_NONE, &error);
	g_assert_no_error(error);

	keys = g_key_file_get_keys(key_file, "forward", NULL, &error);
	g_assert_no_error(error);
	for (guint i = 0; keys[i] != NULL; i++) {
		g_autofree char *value = g_key_file_get_string(key_file, "forward", keys[i], NULL);
		g_autofree char *message = g_strdup_printf("--%s is wrong", keys[i]);
		g_autofree char *annotated = pb_config_file_annotate(config, message);
		guint line = pb_config_file_get_line(config, "forward", keys[i]);
		g_autofree char *expected =
		    g_strdup_printf("%s:%u: %s=%s: %s", path, line, keys[i], value, message);
		gboolean found = FALSE;

		/* the file set the option: an error about it names its place and value */
		g_assert_cmpstr(annotated, ==, expected);
		for (guint k = 0; k < G_N_ELEMENTS(forward_keys); k++) {
			const ForwardKey *row = &forward_keys[k];
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
			} else if (entry->arg == G_OPTION_ARG_NONE) {
				g_assert_cmpint(*(gboolean *)field, ==,
						g_strcmp0(value, "true") == 0);
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
	/* every option is in the example: forward's, those of every command */
	g_assert_cmpuint(n_checked, ==, G_N_ELEMENTS(forward_keys) + G_N_ELEMENTS(cli_keys));
	for (guint e = 0; entries[e].long_name != NULL; e++) {
		if (!is_no_key(entries[e].long_name) &&
		    !g_key_file_has_key(key_file, "forward", entries[e].long_name, NULL))
			g_error("the example has no key %s", entries[e].long_name);
	}
	pb_config_file_settle(config);

	/* its [service web] is --expose web=localhost:8000 */
	services = pb_forward_options_read_services(config, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_strv_length(services), ==, 1);
	g_assert_cmpstr(services[0], ==, "web=localhost:8000");
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

/* A file and the services it gives, as --expose values joined by spaces. */
typedef struct {
	const char *contents;
	const char *services;
} ServiceCase;

static const ServiceCase service_cases[] = {
    {"[forward]\nport=1\n", ""},
    {"[service web]\nport=8000\n", "web=localhost:8000"},
    {"[service web]\nport=8000\nhost=\n", "web=localhost:8000"},
    {"[service db]\nhost=127.0.0.2\nport=5432\n[service web]\nport=80\n",
     "db=127.0.0.2:5432 web=localhost:80"},
    {"[service v6]\nhost=::1\nport=22\n", "v6=[::1]:22"},
    {"[service host]\nhost=box.example.com\nport=65535\n", "host=box.example.com:65535"},
};

static void
test_forward_config_services(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-forward-config");

	g_test_summary("Each [service NAME] group is the --expose NAME=HOST:PORT of its keys, "
		       "in the order of the file; host= defaults to localhost");
	for (guint i = 0; i < G_N_ELEMENTS(service_cases); i++) {
		const ServiceCase *row = &service_cases[i];
		g_autofree char *path = pb_test_write_file(dir, "forward.conf", row->contents);
		g_auto(PbForwardOptions) options = {0};
		g_autofree GOptionEntry *entries = NULL;
		g_autoptr(PbConfigFile) config = NULL;
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) services = NULL;
		g_autofree char *joined = NULL;

		pb_forward_options_init(&options);
		entries = pb_forward_options_get_entries(&options);
		config =
		    pb_cli_load_config(path, "forward", entries, forward_groups, FALSE, &error);
		g_assert_no_error(error);
		services = pb_forward_options_read_services(config, &error);
		g_assert_no_error(error);
		joined = g_strjoinv(" ", services);
		g_assert_cmpstr(joined, ==, row->services);
		pb_config_file_settle(config);
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
    {"unknown group", "[forward]\nport=1\n[services web]\nport=2\n", {":3:", "[services web]"}},
    {"serve's group", "[serve]\nport=1\n", {":1:", "[serve]"}},
    {"unknown key", "[forward]\nport=1\nbogus=yes\n", {":3:", "“bogus”", "[forward]"}},
    {"a serve option", "[forward]\ngrace=3\n", {":2:", "“grace”", "[forward]"}},
    {"expose in the file", "[forward]\nexpose=web=8000\n", {":2:", "expose"}},
    {"not a number", "[forward]\n\n# port\nport=http\n", {":4:", "port", "“http”"}},
    {"not a boolean", "[forward]\nno-dbus=maybe\n", {":2:", "no-dbus", "“maybe”"}},
    {"service without a port",
     "[forward]\nport=1\n[service web]\nhost=::1\n",
     {":3:", "[service web]", "port="}},
    {"service port not a port",
     "[service web]\nhost=::1\nport=70000\n",
     {":3:", "port", "“70000”"}},
    {"service port not a number", "[service web]\nport=eighty\n", {":2:", "port", "“eighty”"}},
    {"service host", "[service web]\nport=80\nhost=a b\n", {":3:", "host", "“a b”"}},
    {"service name", "[forward]\n[service Web_1]\nport=80\n", {":2:", "“Web_1”"}},
    {"service unknown key",
     "[service web]\nport=80\nname=web\n",
     {":3:", "“name”", "[service web]"}},
    {"no key=value", "[forward]\nport=1\nport\n", {":3:", "“port”"}},
};

static void
test_forward_config_bad(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-forward-config");

	g_test_summary("Every kind of bad forward configuration file is refused with its "
		       "file, line, key and value");
	for (guint i = 0; i < G_N_ELEMENTS(bad_files); i++) {
		const BadFile *bad = &bad_files[i];
		g_autofree char *path = pb_test_write_file(dir, "bad.conf", bad->contents);
		g_auto(PbForwardOptions) options = {0};
		g_autofree GOptionEntry *entries = NULL;
		g_autoptr(PbConfigFile) config = NULL;
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) services = NULL;

		g_test_message("%s", bad->what);
		pb_forward_options_init(&options);
		entries = pb_forward_options_get_entries(&options);
		config =
		    pb_cli_load_config(path, "forward", entries, forward_groups, FALSE, &error);
		if (config != NULL) {
			pb_config_file_settle(config);
			services = pb_forward_options_read_services(config, &error);
			g_assert_null(services);
		}
		g_assert_nonnull(error);
		g_assert_true(g_str_has_prefix(error->message, path));
		for (guint s = 0; s < G_N_ELEMENTS(bad->says) && bad->says[s] != NULL; s++) {
			if (strstr(error->message, bad->says[s]) == NULL)
				g_error("%s: no “%s” in: %s", bad->what, bad->says[s],
					error->message);
		}
	}
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

/* A test that fails leaves no piggyback behind; no PIGGY_TOKEN of the caller's reaches it. */
static GSubprocessLauncher *
launcher_new(void)
{
	GSubprocessLauncher *launcher = pb_test_proc_launcher_new();

	g_subprocess_launcher_unsetenv(launcher, "PIGGY_TOKEN");
	return launcher;
}

/* `@program forward` (or piggyback-forward) with @args: its exit status and output. */
static int
forward_fails(const char *program, const char *const *args, char **output)
{
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	PbTestProc *bad;

	g_ptr_array_add(argv, (gpointer)program);
	if (g_strcmp0(program, g_getenv("PB_PIGGYBACK")) == 0)
		g_ptr_array_add(argv, "forward");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	bad = pb_test_proc_spawnv(launcher, (const char *const *)argv->pdata);
	pb_test_proc_wait_exit(bad);
	*output = g_strdup(pb_test_proc_get_output(bad));
	return pb_test_proc_finish(bad);
}

/* Command lines over a file, and what forward says as it exits 2. */
typedef struct {
	const char *contents;
	const char *args[4];
	const char *says;
} CommandCase;

static const CommandCase command_cases[] = {
    /* the file's value, with its place */
    {"[forward]\nport=99999\n", {NULL}, "forward.conf:2: port=99999: --port must be"},
    /* the command line wins: its --port is good, the next bad value is the file's */
    {"[forward]\nport=99999\nproxy-protocol=v3\n",
     {"--port", "1", NULL},
     "forward.conf:3: proxy-protocol=v3: --proxy-protocol must be v1 or v2"},
    /* a bad value the command line gave needs no place */
    {"[forward]\nport=1\nproxy-protocol=v1\n",
     {"--proxy-protocol", "v9", NULL},
     ": --proxy-protocol must be v1 or v2, not “v9”"},
    /* a [service] group is checked as forward starts */
    {"[forward]\nport=1\n[service web]\nport=0\n", {NULL}, "forward.conf:4: port must be"},
    /* and is one more service: its name taken twice is refused */
    {"[forward]\nport=1\n[service web]\nport=2\n",
     {"--expose", "web=3", NULL},
     "another service asks for the name web"},
};

static void
test_forward_config_command(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-forward-config");

	g_test_summary("piggyback forward --config FILE: a bad value exits 2 naming the file, "
		       "line, key and value; the command line wins; piggyback-forward reads a "
		       "file too");
	for (guint i = 0; i < G_N_ELEMENTS(command_cases); i++) {
		const CommandCase *row = &command_cases[i];
		g_autofree char *path = pb_test_write_file(dir, "forward.conf", row->contents);
		const char *const programs[] = {g_getenv("PB_PIGGYBACK"),
						g_getenv("PB_PIGGYBACK_FORWARD")};

		for (guint p = 0; p < G_N_ELEMENTS(programs); p++) {
			g_autoptr(GPtrArray) args = g_ptr_array_new();
			g_autofree char *output = NULL;

			g_ptr_array_add(args, "--config");
			g_ptr_array_add(args, path);
			for (guint a = 0; row->args[a] != NULL; a++)
				g_ptr_array_add(args, (gpointer)row->args[a]);
			g_ptr_array_add(args, NULL);
			g_assert_cmpint(
			    forward_fails(programs[p], (const char *const *)args->pdata, &output),
			    ==, 2);
			if (strstr(output, row->says) == NULL)
				g_error("case %u: no “%s” in: %s", i, row->says, output);
		}
	}
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

static void
test_forward_config_tunnel(void)
{
	g_autofree char *dir = pb_test_temp_dir_new("pb-forward-config");
	PbTestService *main_service = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	PbTestService *web = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	PbTestService *api = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autoptr(GSubprocessLauncher) launcher = launcher_new();
	g_autofree char *text = NULL;
	g_autofree char *path = NULL;
	g_autofree char *server_url = NULL;
	g_autofree char *api_spec = NULL;
	PbTestProc *server;
	PbTestProc *client;
	guint16 ws_port;
	PbTestService *services[] = {main_service, web, api};
	const char *const labels[] = {
	    "Access URL: tcp://127.0.0.1:", "Access URL (web): tcp://127.0.0.1:",
	    "Access URL (api): tcp://127.0.0.1:"};

	g_test_summary("forward --config: [forward] sets the tunnel, each [service NAME] is a "
		       "further service, --expose adds to them; bytes go through each");
	server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p", "0", "-l",
				    "127.0.0.1", "-H", "127.0.0.1", "--log", "plain", NULL);
	ws_port = pb_test_proc_wait_port(server, "Listening on ws://127.0.0.1:");
	server_url = g_strdup_printf("127.0.0.1:%u", ws_port);
	text = g_strdup_printf("[forward]\nserver=%s\nport=%u\nhost=127.0.0.1\nno-dbus=true\n"
			       "log=plain\n\n[service web]\nhost=127.0.0.1\nport=%u\n",
			       server_url, pb_test_service_get_port(main_service),
			       pb_test_service_get_port(web));
	path = pb_test_write_file(dir, "forward.conf", text);
	api_spec = g_strdup_printf("api=127.0.0.1:%u", pb_test_service_get_port(api));
	client = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "--config", path,
				    "--expose", api_spec, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(labels); i++) {
		PbTestEchoJob job = {.size = 64 * 1024};

		job.port = pb_test_proc_wait_port(client, labels[i]);
		pb_test_run_in_thread(pb_test_echo_job_cb, &job, 20);
		/* the service counts what it read as it goes: wait for all of it */
		pb_test_wait_until(pb_test_service_get_bytes(services[i]) >= job.size, 10);
	}
	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	for (guint i = 0; i < G_N_ELEMENTS(services); i++)
		pb_test_service_free(services[i]);
	pb_test_temp_dir_free(g_steal_pointer(&dir));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/forward-config/example", test_forward_config_example);
	g_test_add_func("/forward-config/services", test_forward_config_services);
	g_test_add_func("/forward-config/bad", test_forward_config_bad);
	g_test_add_func("/forward-config/command", test_forward_config_command);
	g_test_add_func("/forward-config/tunnel", test_forward_config_tunnel);
	return g_test_run();
}
