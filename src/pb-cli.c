/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-cli.h"

#include <glib/gi18n.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pb-log.h"
#include "pb-poller.h"
#include "pb-signal.h"
#include "pb-token.h"

/*
 * What both commands share: their output options (-v, -q, --log), checks of option values
 * with a clear message and exit status 2, tokens from a file or the environment, and the
 * main loop with its signals and dashboard.
 */

/* How both commands show what happens (-v, -q, --log). */
static struct {
	gboolean verbose;
	gboolean quiet;
	char *log; /* (owned) (nullable) "auto" or "plain" */
} pb_cli_output;

static const GOptionEntry pb_cli_output_entries[] = {
    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &pb_cli_output.verbose,
     N_("Also log each connection (like G_MESSAGES_DEBUG=piggyback)"), NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &pb_cli_output.quiet, N_("Log warnings and errors only"),
     NULL},
    {"log", 0, 0, G_OPTION_ARG_STRING, &pb_cli_output.log,
     N_("auto: a live dashboard on a terminal, plain lines otherwise (default); plain: "
	"plain lines always (or set PIGGY_LOG=plain)"),
     N_("MODE")},
    G_OPTION_ENTRY_NULL,
};

/* The WebSocket options both ends have. */
static struct {
	int keepalive;
	int max_message_kib;
} pb_cli_link = {PB_KEEPALIVE_DEFAULT, PB_MAX_MESSAGE_SIZE / 1024};

static const GOptionEntry pb_cli_link_entries[] = {
    {"max-message-size", 0, 0, G_OPTION_ARG_INT, &pb_cli_link.max_message_kib,
     N_("Largest WebSocket message taken from the peer, in KiB (default 1024)"), N_("KIB")},
    {"keepalive", 0, 0, G_OPTION_ARG_INT, &pb_cli_link.keepalive,
     N_("Ping every SECONDS; no answer for two intervals ends the tunnel (default 15, 0 = "
	"never)"),
     N_("SECONDS")},
    G_OPTION_ENTRY_NULL,
};

/* (unowned) (nullable) the --config file of the command, whose place usage errors name */
static PbConfigFile *pb_cli_config;

static gboolean
pb_cli_check_keepalive(int keepalive, int *status);
static gboolean
pb_cli_check_max_message(int kib, int *status);

/* Seconds between pings (--keepalive), once pb_cli_parse() has checked it. */
guint
pb_cli_get_keepalive(void)
{
	return (guint)pb_cli_link.keepalive;
}

/* The largest WebSocket message taken from the peer, in bytes (--max-message-size). */
guint64
pb_cli_get_max_message_size(void)
{
	return (guint64)pb_cli_link.max_message_kib * 1024;
}

/* Gives the terminal back, so what comes next is printed on the ordinary screen. */
void
pb_cli_stop_view(PbCli *cli)
{
	if (cli->view != NULL)
		pb_dashboard_view_stop(cli->view);
}

static gboolean
pb_cli_signal_cb(gpointer user_data)
{
	PbCli *cli = user_data;

	cli->status = EXIT_SUCCESS;
	g_main_loop_quit(cli->loop);
	return G_SOURCE_CONTINUE;
}

/* stdout carries the lines scripts read (the access URL): flush each at once. */
void
pb_cli_print(const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vfprintf(stdout, format, args);
	va_end(args);
	fflush(stdout);
}

int
pb_cli_usage_error(const char *message)
{
	g_autofree char *annotated = pb_cli_config != NULL
					 ? pb_config_file_annotate(pb_cli_config, message)
					 : g_strdup(message);

	g_printerr("%s: %s\n", g_get_prgname(), annotated);
	g_printerr(_("Try “%s --help” for more information.\n"), g_get_prgname());
	return PB_EXIT_USAGE;
}

gboolean
pb_cli_check_port(int port, gboolean zero_ok, const char *option, int *status)
{
	g_autofree char *message = NULL;

	if (port >= (zero_ok ? 0 : 1) && port <= G_MAXUINT16)
		return TRUE;
	message = g_strdup_printf(_("%s must be a port between %d and 65535, not %d"), option,
				  zero_ok ? 0 : 1, port);
	*status = pb_cli_usage_error(message);
	return FALSE;
}

gboolean
pb_cli_check_address(const char *value, const char *option, int *status)
{
	g_autoptr(GInetAddress) address = g_inet_address_new_from_string(value);
	g_autofree char *message = NULL;

	if (address != NULL)
		return TRUE;
	message = g_strdup_printf(_("%s must be an IP address, not “%s”"), option, value);
	*status = pb_cli_usage_error(message);
	return FALSE;
}

/* A token from @file (the option @option), else from the environment variable @variable
 * (never from the command line, where ps shows it); *token stays NULL if neither is set. */
gboolean
pb_cli_read_token(const char *file, const char *option, const char *variable, char **token,
		  int *status)
{
	g_autoptr(GError) error = NULL;
	const char *env = g_getenv(variable);

	if (file != NULL)
		*token = pb_token_read_file(file, &error);
	else if (env != NULL && pb_token_validate(env, variable, &error))
		*token = g_strdup(env);
	if (error != NULL) {
		g_autofree char *message = g_strdup_printf("%s: %s", option, error->message);

		*status = pb_cli_usage_error(file != NULL ? message : error->message);
		return FALSE;
	}
	return TRUE;
}

/* The tunnel token: --token-file, else $PIGGY_TOKEN. */
gboolean
pb_cli_get_token(const char *token_file, char **token, int *status)
{
	return pb_cli_read_token(token_file, "--token-file", "PIGGY_TOKEN", token, status);
}

/* Parses a command's options; it takes no other arguments. */
gboolean
pb_cli_parse(GOptionContext *context, const GOptionEntry *entries, int *argc, char ***argv,
	     int *status)
{
	g_autoptr(GError) error = NULL;

	g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
	g_option_context_add_main_entries(context, pb_cli_link_entries, GETTEXT_PACKAGE);
	g_option_context_add_main_entries(context, pb_cli_output_entries, GETTEXT_PACKAGE);
	g_option_context_set_translation_domain(context, GETTEXT_PACKAGE);
	if (!g_option_context_parse(context, argc, argv, &error)) {
		*status = pb_cli_usage_error(error->message);
		return FALSE;
	}
	if (*argc > 1) {
		g_autofree char *message =
		    g_strdup_printf(_("unexpected argument “%s”"), (*argv)[1]);

		*status = pb_cli_usage_error(message);
		return FALSE;
	}
	if (pb_cli_output.verbose && pb_cli_output.quiet) {
		*status = pb_cli_usage_error(_("--verbose and --quiet go against each other"));
		return FALSE;
	}
	if (pb_cli_output.log != NULL && g_strcmp0(pb_cli_output.log, "auto") != 0 &&
	    g_strcmp0(pb_cli_output.log, "plain") != 0) {
		g_autofree char *message =
		    g_strdup_printf(_("--log must be auto or plain, not “%s”"), pb_cli_output.log);

		*status = pb_cli_usage_error(message);
		return FALSE;
	}
	if (!pb_cli_check_keepalive(pb_cli_link.keepalive, status) ||
	    !pb_cli_check_max_message(pb_cli_link.max_message_kib, status))
		return FALSE;
	pb_log_init(pb_cli_output.verbose ? PB_LOG_VERBOSE
		    : pb_cli_output.quiet ? PB_LOG_QUIET
					  : PB_LOG_NORMAL);
	return TRUE;
}

/* A copy of @entries whose variables are in *@cells, zeroed: to check a file's values
 * without changing the options in use. */
static GOptionEntry *
pb_cli_scratch_entries(const GOptionEntry *entries, gint64 **cells)
{
	guint n = 0;
	GOptionEntry *copy;

	while (entries[n].long_name != NULL)
		n++;
	copy = g_memdup2(entries, (n + 1) * sizeof *entries);
	*cells = g_new0(gint64, n + 1);
	for (guint i = 0; i < n; i++)
		copy[i].arg_data = &(*cells)[i];
	return copy;
}

static void
pb_cli_scratch_clear(const GOptionEntry *entries, gint64 *cells)
{
	for (guint i = 0; entries[i].long_name != NULL; i++) {
		if (entries[i].arg == G_OPTION_ARG_STRING ||
		    entries[i].arg == G_OPTION_ARG_FILENAME)
			g_free(*(char **)&cells[i]);
	}
}

/**
 * pb_cli_load_config:
 * @group: the command's group ("serve"), which holds its options by their long names
 * @entries: the command's options, set from @group; with @check_only, left alone
 * @groups: the groups the file may have (see pb_config_file_check_groups())
 * @check_only: only check the file: set no option (a reload)
 *
 * Returns: (transfer full): the file, its @group applied to @entries and to the options
 *   every command has; %NULL if it cannot be read or holds a key or value none takes
 */
PbConfigFile *
pb_cli_load_config(const char *path, const char *group, const GOptionEntry *entries,
		   const char *const *groups, gboolean check_only, GError **error)
{
	const GOptionEntry *tables[] = {entries, pb_cli_link_entries, pb_cli_output_entries};
	g_autoptr(PbConfigFile) config = pb_config_file_load(path, error);

	if (config == NULL || !pb_config_file_check_groups(config, groups, error))
		return NULL;
	for (guint t = 0; t < G_N_ELEMENTS(tables); t++) {
		g_autofree gint64 *cells = NULL;
		g_autofree GOptionEntry *scratch = NULL;
		gboolean ok;

		if (!check_only) {
			if (!pb_config_file_apply(config, group, tables[t], error))
				return NULL;
			continue;
		}
		scratch = pb_cli_scratch_entries(tables[t], &cells);
		ok = pb_config_file_apply(config, group, scratch, error);
		pb_cli_scratch_clear(scratch, cells);
		if (!ok)
			return NULL;
	}
	if (!pb_config_file_check_keys(config, group, error))
		return NULL;
	return g_steal_pointer(&config);
}

/**
 * pb_cli_parse_config:
 * @config: (out) (transfer full): the --config file, if the command line names one
 *
 * Like pb_cli_parse(), over the options of the --config file named on the command line, if
 * any (its @group, see pb_cli_load_config()): they are set first, so the command line wins.
 */
gboolean
pb_cli_parse_config(GOptionContext *context, const GOptionEntry *entries, const char *group,
		    const char *const *groups, PbConfigFile **config, int *argc, char ***argv,
		    int *status)
{
	const char *path = pb_config_file_find_option(*argc, *argv, "config");
	gboolean ok;

	if (path != NULL) {
		g_autoptr(GError) error = NULL;

		*config = pb_cli_load_config(path, group, entries, groups, FALSE, &error);
		if (*config == NULL) {
			*status = pb_cli_usage_error(error->message);
			return FALSE;
		}
		pb_cli_config = *config;
	}
	ok = pb_cli_parse(context, entries, argc, argv, status);
	if (*config != NULL)
		pb_config_file_settle(*config);
	return ok;
}

/* Returns: (transfer full) (nullable): the terminal to draw the dashboard on, or %NULL for
 * plain lines (not a terminal, --log=plain, PIGGY_LOG=plain) */
PbConsole *
pb_cli_dashboard_console(void)
{
	g_autoptr(PbConsole) console = NULL;

	if (g_strcmp0(pb_cli_output.log, "plain") == 0 ||
	    g_strcmp0(g_getenv("PIGGY_LOG"), "plain") == 0)
		return NULL;
	console = pb_console_new(STDOUT_FILENO);
	return pb_console_is_interactive(console) ? g_steal_pointer(&console) : NULL;
}

/* Called before the first line a script reads (it may act on it at once):
 * - from now on SIGINT, SIGTERM and SIGHUP end the main loop (status 0), also before it runs;
 * - the context's poller and GLib's worker thread exist, so the process already holds every fd
 *   it always holds (tests count a server's fds from that line on). */
void
pb_cli_begin(PbCli *cli)
{
	pb_poller_start();
	/* GLib starts its worker thread, with an eventfd, along with the first GTask's type;
	 * the first GTask may come only when a tunnel closes */
	g_type_ensure(G_TYPE_TASK);
	cli->sigint = pb_signal_add(SIGINT, pb_cli_signal_cb, cli);
	cli->sigterm = pb_signal_add(SIGTERM, pb_cli_signal_cb, cli);
	/* the terminal went away: end as cleanly (the client says goodbye to its server) */
	cli->sighup = pb_signal_add(SIGHUP, pb_cli_signal_cb, cli);
}

/* Runs the main loop until a signal or a callback quits it. */
int
pb_cli_run(PbCli *cli)
{
	if (cli->view != NULL)
		pb_dashboard_view_start(cli->view);
	g_main_loop_run(cli->loop);
	pb_cli_stop_view(cli);
	g_clear_object(&cli->view);
	g_clear_handle_id(&cli->sigint, pb_signal_remove);
	g_clear_handle_id(&cli->sigterm, pb_signal_remove);
	g_clear_handle_id(&cli->sighup, pb_signal_remove);
	return cli->status;
}

static gboolean
pb_cli_check_keepalive(int keepalive, int *status)
{
	if (keepalive >= 0 && keepalive <= 3600)
		return TRUE;
	*status = pb_cli_usage_error(
	    _("--keepalive must be a number of seconds from 0 (no pings) to 3600"));
	return FALSE;
}

/* The peer sends DATA of up to PB_READ_CHUNK bytes (PiggyBack 1.1: 64 KiB) plus a header:
 * anything smaller would refuse its ordinary messages. */
static gboolean
pb_cli_check_max_message(int kib, int *status)
{
	const int min_kib = PB_READ_CHUNK / 1024 + 1;
	g_autofree char *message = NULL;

	if (kib >= min_kib && kib <= 65536)
		return TRUE;
	message = g_strdup_printf(_("--max-message-size must be from %d to 65536 KiB, not %d"),
				  min_kib, kib);
	*status = pb_cli_usage_error(message);
	return FALSE;
}

/* --features: protocol v2 features by name, comma-separated; "none" speaks version 1 only. */
gboolean
pb_cli_check_features(const char *value, PbFeatures *features, int *status)
{
	g_auto(GStrv) names = NULL;

	*features = PB_FEATURES_ALL;
	if (value == NULL)
		return TRUE;
	*features = 0;
	if (g_strcmp0(value, "none") == 0)
		return TRUE;
	names = g_strsplit(value, ",", -1);
	for (gsize i = 0; names[i] != NULL; i++) {
		PbFeatures one = pb_features_parse(names[i]);

		if (one == 0 || (one & ~PB_FEATURES_ALL) != 0) { /* proxy-*: --proxy-protocol */
			g_autofree char *message = g_strdup_printf(
			    _("--features takes flow, eof, resume or none, not “%s”"), names[i]);

			*status = pb_cli_usage_error(message);
			return FALSE;
		}
		*features |= one;
	}
	return TRUE;
}
