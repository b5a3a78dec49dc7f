/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pb-console.h"
#include "pb-dashboard-view.h"
#include "pb-dbus-exporter.h"
#include "pb-flow.h"
#include "pb-hello.h"
#include "pb-log.h"
#include "pb-notifier.h"
#include "pb-server-url.h"
#include "pb-tls.h"
#include "pb-token.h"
#include "pb-tunnel-client.h"
#include "pb-tunnel-server.h"

/* Exit statuses: 2 for a usage error, 1 for a failure at run time (sysexits-like, and what
 * systemd's RestartPreventExitStatus= can tell apart). */
#define PB_EXIT_RUNTIME 1
#define PB_EXIT_USAGE	2

typedef struct {
	GMainLoop *loop; /* (unowned) */
	int status;
	guint sigint; /* source ids */
	guint sigterm;
	PbDashboardView *view; /* (owned) (nullable) the live dashboard, on a terminal */
} PbMain;

/* How both commands show what happens (-v, -q, --log). */
static struct {
	gboolean verbose;
	gboolean quiet;
	char *log; /* (owned) (nullable) "auto" or "plain" */
} pb_main_output;

static const GOptionEntry pb_main_output_entries[] = {
    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &pb_main_output.verbose,
     N_("Also log each connection (like G_MESSAGES_DEBUG=piggyback)"), NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &pb_main_output.quiet, N_("Log warnings and errors only"),
     NULL},
    {"log", 0, 0, G_OPTION_ARG_STRING, &pb_main_output.log,
     N_("auto: a live dashboard on a terminal, plain lines otherwise (default); plain: "
	"plain lines always (or set PIGGY_LOG=plain)"),
     N_("MODE")},
    G_OPTION_ENTRY_NULL,
};

/* Gives the terminal back, so what comes next is printed on the ordinary screen. */
static void
pb_main_stop_view(PbMain *main)
{
	if (main->view != NULL)
		pb_dashboard_view_stop(main->view);
}

static gboolean
pb_main_signal_cb(gpointer user_data)
{
	PbMain *main = user_data;

	main->status = EXIT_SUCCESS;
	g_main_loop_quit(main->loop);
	return G_SOURCE_CONTINUE;
}

static void
pb_main_print(const char *format, ...) G_GNUC_PRINTF(1, 2);

/* stdout carries the lines scripts read (the access URL): flush each at once. */
static void
pb_main_print(const char *format, ...)
{
	va_list args;

	va_start(args, format);
	vfprintf(stdout, format, args);
	va_end(args);
	fflush(stdout);
}

static int
pb_main_usage_error(const char *message)
{
	g_printerr("%s: %s\n", g_get_prgname(), message);
	g_printerr(_("Try “%s --help” for more information.\n"), g_get_prgname());
	return PB_EXIT_USAGE;
}

static gboolean
pb_main_check_port(int port, gboolean zero_ok, const char *option, int *status)
{
	g_autofree char *message = NULL;

	if (port >= (zero_ok ? 0 : 1) && port <= G_MAXUINT16)
		return TRUE;
	message = g_strdup_printf(_("%s must be a port between %d and 65535, not %d"), option,
				  zero_ok ? 0 : 1, port);
	*status = pb_main_usage_error(message);
	return FALSE;
}

static gboolean
pb_main_check_address(const char *value, const char *option, int *status)
{
	g_autoptr(GInetAddress) address = g_inet_address_new_from_string(value);
	g_autofree char *message = NULL;

	if (address != NULL)
		return TRUE;
	message = g_strdup_printf(_("%s must be an IP address, not “%s”"), option, value);
	*status = pb_main_usage_error(message);
	return FALSE;
}

/* A token from @file (the option @option), else from the environment variable @variable
 * (never from the command line, where ps shows it); *token stays NULL if neither is set. */
static gboolean
pb_main_read_token(const char *file, const char *option, const char *variable, char **token,
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

		*status = pb_main_usage_error(file != NULL ? message : error->message);
		return FALSE;
	}
	return TRUE;
}

/* The tunnel token: --token-file, else $PIGGY_TOKEN. */
static gboolean
pb_main_get_token(const char *token_file, char **token, int *status)
{
	return pb_main_read_token(token_file, "--token-file", "PIGGY_TOKEN", token, status);
}

/* Parses a command's options; it takes no other arguments. */
static gboolean
pb_main_parse(GOptionContext *context, const GOptionEntry *entries, int *argc, char ***argv,
	      int *status)
{
	g_autoptr(GError) error = NULL;

	g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
	g_option_context_add_main_entries(context, pb_main_output_entries, GETTEXT_PACKAGE);
	g_option_context_set_translation_domain(context, GETTEXT_PACKAGE);
	if (!g_option_context_parse(context, argc, argv, &error)) {
		*status = pb_main_usage_error(error->message);
		return FALSE;
	}
	if (*argc > 1) {
		g_autofree char *message =
		    g_strdup_printf(_("unexpected argument “%s”"), (*argv)[1]);

		*status = pb_main_usage_error(message);
		return FALSE;
	}
	if (pb_main_output.verbose && pb_main_output.quiet) {
		*status = pb_main_usage_error(_("--verbose and --quiet go against each other"));
		return FALSE;
	}
	if (pb_main_output.log != NULL && g_strcmp0(pb_main_output.log, "auto") != 0 &&
	    g_strcmp0(pb_main_output.log, "plain") != 0) {
		g_autofree char *message =
		    g_strdup_printf(_("--log must be auto or plain, not “%s”"), pb_main_output.log);

		*status = pb_main_usage_error(message);
		return FALSE;
	}
	pb_log_init(pb_main_output.verbose ? PB_LOG_VERBOSE
		    : pb_main_output.quiet ? PB_LOG_QUIET
					   : PB_LOG_NORMAL);
	return TRUE;
}

/* Returns: (transfer full) (nullable): the terminal to draw the dashboard on, or %NULL for
 * plain lines (not a terminal, --log=plain, PIGGY_LOG=plain) */
static PbConsole *
pb_main_dashboard_console(void)
{
	g_autoptr(PbConsole) console = NULL;

	if (g_strcmp0(pb_main_output.log, "plain") == 0 ||
	    g_strcmp0(g_getenv("PIGGY_LOG"), "plain") == 0)
		return NULL;
	console = pb_console_new(STDOUT_FILENO);
	return pb_console_is_interactive(console) ? g_steal_pointer(&console) : NULL;
}

/* From now on SIGINT and SIGTERM end the main loop (status 0), also before it runs: a
 * script may send them as soon as it reads a line of ours. */
static void
pb_main_watch_signals(PbMain *main)
{
	main->sigint = g_unix_signal_add(SIGINT, pb_main_signal_cb, main);
	main->sigterm = g_unix_signal_add(SIGTERM, pb_main_signal_cb, main);
}

/* Runs the main loop until a signal or a callback quits it. */
static int
pb_main_run(PbMain *main)
{
	if (main->view != NULL)
		pb_dashboard_view_start(main->view);
	g_main_loop_run(main->loop);
	pb_main_stop_view(main);
	g_clear_object(&main->view);
	g_clear_handle_id(&main->sigint, g_source_remove);
	g_clear_handle_id(&main->sigterm, g_source_remove);
	return main->status;
}

/* --features: protocol v2 features by name, comma-separated; "none" speaks version 1 only. */
static gboolean
pb_main_check_keepalive(int keepalive, int *status)
{
	if (keepalive >= 0 && keepalive <= 3600)
		return TRUE;
	*status = pb_main_usage_error(
	    _("--keepalive must be a number of seconds from 0 (no pings) to 3600"));
	return FALSE;
}

/* The peer sends DATA of up to PB_READ_CHUNK bytes (PiggyBack 1.1: 64 KiB) plus a header:
 * anything smaller would refuse its ordinary messages. */
static gboolean
pb_main_check_max_message(int kib, int *status)
{
	const int min_kib = PB_READ_CHUNK / 1024 + 1;
	g_autofree char *message = NULL;

	if (kib >= min_kib && kib <= 65536)
		return TRUE;
	message = g_strdup_printf(_("--max-message-size must be from %d to 65536 KiB, not %d"),
				  min_kib, kib);
	*status = pb_main_usage_error(message);
	return FALSE;
}

static gboolean
pb_main_check_features(const char *value, PbFeatures *features, int *status)
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

		if (one == 0) {
			g_autofree char *message = g_strdup_printf(
			    _("--features takes flow, eof or none, not “%s”"), names[i]);

			*status = pb_main_usage_error(message);
			return FALSE;
		}
		*features |= one;
	}
	return TRUE;
}

static int
pb_main_serve(int argc, char **argv)
{
	int port = 8080;
	int tunnel_port = 0;
	g_autofree char *listen_host = NULL;
	g_autofree char *tunnel_host = NULL; /* GOption does not free a default it replaces */
	g_autofree char *public_host = NULL;
	g_autofree char *features_option = NULL;
	int window = PB_FLOW_WINDOW_DEFAULT;
	int keepalive = PB_KEEPALIVE_DEFAULT;
	int max_message_kib = PB_MAX_MESSAGE_SIZE / 1024;
	int grace = PB_GRACE_DEFAULT;
	int max_clients = PB_MAX_CLIENTS_DEFAULT;
	int max_connections = PB_MAX_CONNECTIONS_DEFAULT;
	int handshake_timeout = PB_HANDSHAKE_TIMEOUT_DEFAULT;
	int idle_timeout = 0;
	g_autofree char *metrics = NULL;
	g_autofree char *metrics_token_file = NULL;
	g_autofree char *metrics_token = NULL;
	PbFeatures features = PB_FEATURES_ALL;
	g_autofree char *token_file = NULL;
	g_autofree char *token = NULL;
	g_autofree char *tls_cert = NULL;
	g_autofree char *tls_key = NULL;
	g_autoptr(GTlsCertificate) certificate = NULL;
	const GOptionEntry entries[] = {
	    {"port", 'p', 0, G_OPTION_ARG_INT, &port, N_("WebSocket port (default 8080)"),
	     N_("PORT")},
	    {"listen", 'l', 0, G_OPTION_ARG_STRING, &listen_host,
	     N_("Address the WebSocket port binds to (default: all)"), N_("ADDRESS")},
	    {"tunnel-port", 't', 0, G_OPTION_ARG_INT, &tunnel_port,
	     N_("Public TCP port (default 0: a random free port)"), N_("PORT")},
	    {"tunnel-host", 'H', 0, G_OPTION_ARG_STRING, &tunnel_host,
	     N_("Address the public port binds to (default 0.0.0.0)"), N_("ADDRESS")},
	    {"public-host", 0, 0, G_OPTION_ARG_STRING, &public_host,
	     N_("Host name clients are told to use (default: the one they connected to)"),
	     N_("HOST")},
	    {"features", 0, 0, G_OPTION_ARG_STRING, &features_option,
	     N_("Protocol 2 features to offer: flow, eof, or none for protocol 1 (default "
		"flow,eof)"),
	     N_("LIST")},
	    {"window", 0, 0, G_OPTION_ARG_INT, &window,
	     N_("Initial flow-control window per connection, in bytes (default 262144)"),
	     N_("BYTES")},
	    {"max-clients", 0, 0, G_OPTION_ARG_INT, &max_clients,
	     N_("Take at most N tunnels at once (default 64)"), N_("N")},
	    {"max-connections", 0, 0, G_OPTION_ARG_INT, &max_connections,
	     N_("Keep at most N connections open per tunnel (default 1000)"), N_("N")},
	    {"handshake-timeout", 0, 0, G_OPTION_ARG_INT, &handshake_timeout,
	     N_("Close a connection to the WebSocket port that is no tunnel after SECONDS "
		"(default 10)"),
	     N_("SECONDS")},
	    {"idle-timeout", 0, 0, G_OPTION_ARG_INT, &idle_timeout,
	     N_("Close a tunneled connection that moved no data for SECONDS (default 0: "
		"never)"),
	     N_("SECONDS")},
	    {"grace", 0, 0, G_OPTION_ARG_INT, &grace,
	     N_("Keep a lost client's public port for it for SECONDS (default 30, 0 = close "
		"at once)"),
	     N_("SECONDS")},
	    {"max-message-size", 0, 0, G_OPTION_ARG_INT, &max_message_kib,
	     N_("Largest WebSocket message taken from the peer, in KiB (default 1024)"), N_("KIB")},
	    {"keepalive", 0, 0, G_OPTION_ARG_INT, &keepalive,
	     N_("Ping every SECONDS; no answer for two intervals ends the tunnel (default 15, 0 = "
		"never)"),
	     N_("SECONDS")},
	    {"token-file", 0, 0, G_OPTION_ARG_FILENAME, &token_file,
	     N_("Require the token in FILE from clients (or set PIGGY_TOKEN)"), N_("FILE")},
	    {"metrics", 0, 0, G_OPTION_ARG_STRING, &metrics,
	     N_("on: answer GET /metrics on the WebSocket port (default); off: do not"),
	     N_("on|off")},
	    {"metrics-token-file", 0, 0, G_OPTION_ARG_FILENAME, &metrics_token_file,
	     N_("Require the token in FILE on GET /metrics (or set PIGGY_METRICS_TOKEN)"),
	     N_("FILE")},
	    {"tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &tls_cert,
	     N_("Serve wss:// with the PEM certificate (chain) in FILE"), N_("FILE")},
	    {"tls-key", 0, 0, G_OPTION_ARG_FILENAME, &tls_key,
	     N_("The PEM private key of --tls-cert"), N_("FILE")},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GOptionContext) context =
	    g_option_context_new(_("— run the tunnel server on a public machine"));
	g_autoptr(GError) error = NULL;
	g_autoptr(PbTunnelServer) server = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	PbMain main = {loop, EXIT_SUCCESS, 0, 0, NULL};
	int status = EXIT_SUCCESS;

	if (!pb_main_parse(context, entries, &argc, &argv, &status))
		return status;
	if (tunnel_host == NULL)
		tunnel_host = g_strdup("0.0.0.0");
	if (!pb_main_check_port(port, TRUE, "--port", &status) ||
	    !pb_main_check_port(tunnel_port, TRUE, "--tunnel-port", &status))
		return status;
	if (!pb_main_check_address(tunnel_host, "--tunnel-host", &status) ||
	    (listen_host != NULL && !pb_main_check_address(listen_host, "--listen", &status)) ||
	    !pb_main_check_features(features_option, &features, &status))
		return status;
	if (window < 1024 || window > PB_FLOW_WINDOW_MAX) {
		g_autofree char *message =
		    g_strdup_printf(_("--window must be between 1024 and %d bytes, not %d"),
				    PB_FLOW_WINDOW_MAX, window);
		return pb_main_usage_error(message);
	}
	if (!pb_main_check_keepalive(keepalive, &status))
		return status;
	if (!pb_main_check_max_message(max_message_kib, &status))
		return status;
	if (max_clients < 1 || max_connections < 1)
		return pb_main_usage_error(
		    _("--max-clients and --max-connections must be at least 1"));
	if (handshake_timeout < 1 || handshake_timeout > 3600)
		return pb_main_usage_error(
		    _("--handshake-timeout must be a number of seconds from 1 to 3600"));
	if (idle_timeout < 0 || idle_timeout > 7 * 86400)
		return pb_main_usage_error(
		    _("--idle-timeout must be a number of seconds from 0 (never) to 604800"));
	if (grace < 0 || grace > 86400)
		return pb_main_usage_error(
		    _("--grace must be a number of seconds from 0 (none) to 86400"));
	if (!pb_main_get_token(token_file, &token, &status))
		return status;
	if (metrics != NULL && g_strcmp0(metrics, "on") != 0 && g_strcmp0(metrics, "off") != 0) {
		g_autofree char *message =
		    g_strdup_printf(_("--metrics must be on or off, not “%s”"), metrics);

		return pb_main_usage_error(message);
	}
	if (!pb_main_read_token(metrics_token_file, "--metrics-token-file", "PIGGY_METRICS_TOKEN",
				&metrics_token, &status))
		return status;
	if ((tls_cert != NULL) != (tls_key != NULL))
		return pb_main_usage_error(_("--tls-cert and --tls-key go together"));
	if (tls_cert != NULL) {
		certificate = g_tls_certificate_new_from_files(tls_cert, tls_key, &error);
		if (certificate == NULL) {
			g_autofree char *message =
			    g_strdup_printf(_("cannot use --tls-cert %s with --tls-key %s: %s"),
					    tls_cert, tls_key, error->message);

			return pb_main_usage_error(message);
		}
	}

	server =
	    pb_tunnel_server_new((guint16)port, tunnel_host, (guint16)tunnel_port, public_host);
	pb_tunnel_server_set_listen_host(server, listen_host);
	pb_tunnel_server_set_features(server, features, (guint32)window);
	pb_tunnel_server_set_keepalive(server, (guint)keepalive);
	pb_tunnel_server_set_max_message_size(server, (guint64)max_message_kib * 1024);
	pb_tunnel_server_set_grace(server, (guint)grace);
	pb_tunnel_server_set_idle_timeout(server, (guint)idle_timeout);
	pb_tunnel_server_set_limits(server, (guint)max_clients, (guint)max_connections);
	pb_tunnel_server_set_handshake_limits(server, (guint)handshake_timeout,
					      PB_MAX_PENDING_DEFAULT,
					      PB_MAX_PENDING_PER_ADDRESS_DEFAULT);
	pb_tunnel_server_set_token(server, token);
	pb_tunnel_server_set_metrics(server, g_strcmp0(metrics, "off") != 0, metrics_token);
	pb_tunnel_server_set_tls_certificate(server, certificate);
	if (!pb_tunnel_server_start(server, &error)) {
		g_printerr(_("%s: cannot listen on port %d: %s\n"), g_get_prgname(), port,
			   error->message);
		return PB_EXIT_RUNTIME;
	}
	if (token == NULL)
		g_printerr(_("%s: warning: no token (--token-file or PIGGY_TOKEN): anyone who can "
			     "reach this port can open a tunnel\n"),
			   g_get_prgname());
	pb_main_watch_signals(&main);
	{
		const char *shown = listen_host != NULL ? listen_host : "0.0.0.0";
		gboolean ipv6 = strchr(shown, ':') != NULL;
		g_autofree char *listen_url = g_strdup_printf(
		    "%s://%s%s%s:%u" PB_WS_PATH, certificate != NULL ? "wss" : "ws",
		    ipv6 ? "[" : "", shown, ipv6 ? "]" : "", pb_tunnel_server_get_port(server));
		g_autoptr(PbConsole) console = pb_main_dashboard_console();

		/* not translated: scripts read this line */
		pb_main_print("Listening on %s\n", listen_url);
		if (console != NULL)
			main.view = pb_dashboard_view_new_for_server(server, listen_url, console);
	}

	status = pb_main_run(&main);
	pb_tunnel_server_stop(server);
	return status;
}

static void
pb_main_forward_ready_cb(PbTunnelClient *client, const char *access_url, const char *http_url,
			 gpointer user_data)
{
	PbMain *main = user_data;

	if (main->view != NULL)
		return; /* the dashboard shows them */
	/* not translated: scripts read these lines (the dashboard and D-Bus are for people) */
	pb_main_print("Access URL: %s\n", access_url);
	pb_main_print("HTTP URL: %s\n", http_url);
}

/* Plain logs: the client's events ("Online at …", "Reconnecting in 1.2 s") as log lines. */
static void
pb_main_forward_event_cb(PbTunnelClient *client, gint64 time, const char *message,
			 gpointer user_data)
{
	g_message("%s", message);
}

static void
pb_main_forward_disconnected_cb(PbTunnelClient *client, const char *reason, gpointer user_data)
{
	PbMain *main = user_data;

	pb_main_stop_view(main);
	g_printerr(_("%s: the tunnel is closed: %s\n"), g_get_prgname(), reason);
	main->status = PB_EXIT_RUNTIME;
	g_main_loop_quit(main->loop);
}

/* Any change, also to "no default route": a server on the LAN or on loopback may still be
 * reachable, and a check costs one ping. */
static void
pb_main_forward_network_changed_cb(GNetworkMonitor *monitor, gboolean available, gpointer user_data)
{
	pb_tunnel_client_network_changed(PB_TUNNEL_CLIENT(user_data));
}

static void
pb_main_forward_quit_requested_cb(PbDbusExporter *exporter, gpointer user_data)
{
	PbMain *main = user_data;

	main->status = EXIT_SUCCESS;
	g_main_loop_quit(main->loop);
}

static void
pb_main_forward_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	PbMain *main = user_data;
	g_autoptr(GError) error = NULL;

	if (!pb_tunnel_client_connect_finish(PB_TUNNEL_CLIENT(source), res, &error)) {
		pb_main_stop_view(main);
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_printerr(_("%s: cannot open a tunnel: %s\n"), g_get_prgname(),
				   error->message);
		main->status = PB_EXIT_RUNTIME;
		g_main_loop_quit(main->loop);
	}
}

/* The defaults of `piggyback-forward`, or NULL when the schema is not installed
 * (g_settings_new() would abort then). */
static GSettings *
pb_main_settings_new(void)
{
	GSettingsSchemaSource *source = g_settings_schema_source_get_default();
	g_autoptr(GSettingsSchema) schema = NULL;

	if (source != NULL)
		schema = g_settings_schema_source_lookup(source, APP_ID, TRUE);
	if (schema == NULL) {
		g_debug("GSettings schema %s is not installed: no defaults", APP_ID);
		return NULL;
	}
	return g_settings_new_full(schema, NULL, NULL);
}

/* Returns: (nullable): the setting, or NULL when it is empty */
static char *
pb_main_setting_string(GSettings *settings, const char *key)
{
	g_autofree char *value = g_settings_get_string(settings, key);

	return *value != '\0' ? g_steal_pointer(&value) : NULL;
}

/* Fills in what the command line left out from @settings; 0 for local-port means unset. */
static void
pb_main_forward_defaults(GSettings *settings, char **host, char **server_input, int *port)
{
	g_autoptr(GVariant) local_port = g_settings_get_value(settings, "local-port");

	if (*host == NULL)
		*host = pb_main_setting_string(settings, "local-host");
	if (*server_input == NULL)
		*server_input = pb_main_setting_string(settings, "server");
	if (*port == -1 && g_variant_get_uint16(local_port) != 0)
		*port = g_variant_get_uint16(local_port);
}

/* Desktop notifications need a registered GApplication (without a bus it registers too,
 * and the notifier stays quiet). */
static void
pb_main_forward_notifier(PbTunnelClient *client, GApplication **application, PbNotifier **notifier)
{
	g_autoptr(GError) error = NULL;

	*application = g_application_new(APP_ID, G_APPLICATION_NON_UNIQUE);
	if (!g_application_register(*application, NULL, &error)) {
		g_debug("No notifications: %s", error->message);
		return;
	}
	*notifier = pb_notifier_new(client, *application);
}

/* `piggyback forward`; @use_settings for `piggyback-forward`, which a desktop session may
 * start without options: then GSettings has the defaults. */
static int
pb_main_forward(int argc, char **argv, gboolean use_settings)
{
	int port = -1;
	g_autofree char *host = NULL; /* GOption does not free a default it replaces */
	g_autofree char *server_input = NULL;
	g_autofree char *features_option = NULL;
	PbFeatures features = PB_FEATURES_ALL;
	gboolean no_dbus = FALSE;
	gboolean no_reconnect = FALSE;
	int keepalive = PB_KEEPALIVE_DEFAULT;
	int max_message_kib = PB_MAX_MESSAGE_SIZE / 1024;
	g_autofree char *token_file = NULL;
	g_autofree char *token = NULL;
	g_autofree char *ca_file = NULL;
	g_autofree char *pin_input = NULL;
	g_autofree char *pin = NULL;
	g_autoptr(GTlsDatabase) tls_database = NULL;
	const GOptionEntry entries[] = {
	    {"port", 'p', 0, G_OPTION_ARG_INT, &port, N_("Port of the local service (required)"),
	     N_("PORT")},
	    {"host", 'h', 0, G_OPTION_ARG_STRING, &host,
	     N_("Host of the local service (default localhost)"), N_("HOST")},
	    {"server", 's', 0, G_OPTION_ARG_STRING, &server_input,
	     N_("Tunnel server: host:port, ws://… or wss://… (default localhost:8080)"),
	     N_("SERVER")},
	    {"features", 0, 0, G_OPTION_ARG_STRING, &features_option,
	     N_("Protocol 2 features to ask for: flow, eof, or none for protocol 1 (default "
		"flow,eof)"),
	     N_("LIST")},
	    {"no-dbus", 0, 0, G_OPTION_ARG_NONE, &no_dbus,
	     N_("Do not show the tunnel’s status on the session bus"), NULL},
	    {"no-reconnect", 0, 0, G_OPTION_ARG_NONE, &no_reconnect,
	     N_("Exit when the tunnel is lost instead of connecting again"), NULL},
	    {"max-message-size", 0, 0, G_OPTION_ARG_INT, &max_message_kib,
	     N_("Largest WebSocket message taken from the peer, in KiB (default 1024)"), N_("KIB")},
	    {"keepalive", 0, 0, G_OPTION_ARG_INT, &keepalive,
	     N_("Ping every SECONDS; no answer for two intervals ends the tunnel (default 15, 0 = "
		"never)"),
	     N_("SECONDS")},
	    {"token-file", 0, 0, G_OPTION_ARG_FILENAME, &token_file,
	     N_("Present the token in FILE to the server (or set PIGGY_TOKEN)"), N_("FILE")},
	    {"ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca_file,
	     N_("Trust the CA certificates in FILE (PEM) for a wss:// server, instead of the "
		"system's"),
	     N_("FILE")},
	    {"pin-sha256", 0, 0, G_OPTION_ARG_STRING, &pin_input,
	     N_("Accept only the wss:// server certificate with this SHA-256 (hex)"), N_("HASH")},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GOptionContext) context =
	    g_option_context_new(_("— expose a local TCP service through a tunnel server"));
	g_autoptr(GError) error = NULL;
	g_autoptr(PbTunnelClient) client = NULL;
	g_autoptr(PbDbusExporter) exporter = NULL;
	g_autoptr(GApplication) application = NULL;
	g_autoptr(PbNotifier) notifier = NULL;
	g_autoptr(GSettings) settings = NULL;
	g_autofree char *server_url = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	PbMain main = {loop, EXIT_SUCCESS, 0, 0, NULL};
	int status = EXIT_SUCCESS;

	if (!pb_main_parse(context, entries, &argc, &argv, &status))
		return status;
	if (use_settings)
		settings = pb_main_settings_new();
	if (settings != NULL)
		pb_main_forward_defaults(settings, &host, &server_input, &port);
	if (host == NULL)
		host = g_strdup("localhost");
	if (server_input == NULL)
		server_input = g_strdup("localhost:8080");
	if (port == -1 && settings != NULL) {
		g_autofree char *message = g_strdup_printf(
		    /* TRANSLATORS: the command is shown as is; keep PORT in capitals */
		    _("--port is required: the port of the local service (or set a default with "
		      "“gsettings set %s local-port PORT”)"),
		    APP_ID);

		return pb_main_usage_error(message);
	}
	if (port == -1)
		return pb_main_usage_error(_("--port is required: the port of the local service"));
	if (!pb_main_check_port(port, FALSE, "--port", &status))
		return status;
	if (host == NULL || *host == '\0')
		return pb_main_usage_error(_("--host is empty"));
	if (!pb_main_check_keepalive(keepalive, &status))
		return status;
	if (!pb_main_check_max_message(max_message_kib, &status))
		return status;
	if (!pb_main_check_features(features_option, &features, &status))
		return status;
	server_url = pb_server_url_resolve(server_input, &error);
	if (server_url == NULL)
		return pb_main_usage_error(error->message);
	if (!pb_main_get_token(token_file, &token, &status))
		return status;
	if ((ca_file != NULL || pin_input != NULL) && !g_str_has_prefix(server_url, "wss://"))
		return pb_main_usage_error(_("--ca-file and --pin-sha256 need a wss:// server"));
	if (ca_file != NULL) {
		tls_database = pb_tls_database_new(ca_file, &error);
		if (tls_database == NULL) {
			g_autofree char *message =
			    g_strdup_printf(_("--ca-file: %s"), error->message);

			return pb_main_usage_error(message);
		}
	}
	if (pin_input != NULL) {
		pin = pb_tls_pin_parse(pin_input, &error);
		if (pin == NULL) {
			g_autofree char *message =
			    g_strdup_printf(_("--pin-sha256: %s"), error->message);

			return pb_main_usage_error(message);
		}
	}

	pb_main_watch_signals(&main);
	client = pb_tunnel_client_new(server_url, host, (guint16)port);
	pb_tunnel_client_set_auto_reconnect(client, !no_reconnect);
	pb_tunnel_client_set_keepalive(client, (guint)keepalive);
	pb_tunnel_client_set_max_message_size(client, (guint64)max_message_kib * 1024);
	pb_tunnel_client_set_features(client, features);
	pb_tunnel_client_set_token(client, token);
	pb_tunnel_client_set_tls(client, tls_database, pin);
	g_signal_connect(client, "ready", G_CALLBACK(pb_main_forward_ready_cb), &main);
	g_signal_connect(client, "disconnected", G_CALLBACK(pb_main_forward_disconnected_cb),
			 &main);
	g_signal_connect_object(g_network_monitor_get_default(), "network-changed",
				G_CALLBACK(pb_main_forward_network_changed_cb), client, 0);
	if (!no_dbus) {
		exporter = pb_dbus_exporter_new(client);
		g_signal_connect(exporter, "quit-requested",
				 G_CALLBACK(pb_main_forward_quit_requested_cb), &main);
		pb_dbus_exporter_start(exporter, NULL);
		pb_main_forward_notifier(client, &application, &notifier);
	}
	pb_main_print(_("Connecting to %s, forwarding to %s:%d\n"), server_url, host, port);
	{
		g_autoptr(PbConsole) console = pb_main_dashboard_console();

		if (console != NULL)
			main.view = pb_dashboard_view_new_for_client(client, console);
		else
			g_signal_connect(client, "event", G_CALLBACK(pb_main_forward_event_cb),
					 &main);
	}
	pb_tunnel_client_connect_async(client, NULL, pb_main_forward_connected_cb, &main);
	status = pb_main_run(&main);
	if (exporter != NULL) {
		g_signal_handlers_disconnect_by_data(exporter, &main);
		pb_dbus_exporter_stop(exporter);
	}
	g_signal_handlers_disconnect_by_data(client, &main);
	pb_tunnel_client_close(client);
	return status;
}

static int
pb_main_usage(FILE *out)
{
	fprintf(out, "%s",
		_("Usage:\n"
		  "  piggyback serve [OPTION…]     run the tunnel server\n"
		  "  piggyback forward [OPTION…]   expose a local TCP service\n"
		  "  piggyback --version\n"
		  "\n"
		  "“piggyback COMMAND --help” lists a command’s options.\n"));
	return out == stdout ? EXIT_SUCCESS : PB_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	g_autofree char *name = g_path_get_basename(argv[0]);

	setlocale(LC_ALL, "");
	bindtextdomain(GETTEXT_PACKAGE,
		       g_getenv("PB_LOCALEDIR") != NULL ? g_getenv("PB_LOCALEDIR") : LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
	textdomain(GETTEXT_PACKAGE);
	pb_log_init(PB_LOG_NORMAL); /* before anything logs; the options may change the level */

	if (g_str_has_prefix(name, "piggyback-forward")) {
		g_set_prgname("piggyback-forward");
		return pb_main_forward(argc, argv, TRUE);
	}
	g_set_prgname("piggyback");
	if (argc < 2)
		return pb_main_usage(stderr);
	if (strcmp(argv[1], "serve") == 0) {
		g_set_prgname("piggyback serve");
		return pb_main_serve(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "forward") == 0) {
		g_set_prgname("piggyback forward");
		return pb_main_forward(argc - 1, argv + 1, FALSE);
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		pb_main_print("piggyback %s\n", PACKAGE_VERSION);
		return EXIT_SUCCESS;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0)
		return pb_main_usage(stdout);
	g_printerr(_("piggyback: unknown command “%s”\n"), argv[1]);
	return pb_main_usage(stderr);
}
