/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	GMainLoop *loop; /* (owned) */
	int status;
} PbMain;

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

/* The token from --token-file, else from $PIGGY_TOKEN (never from the command line, where
 * ps shows it); *token stays NULL if there is neither. */
static gboolean
pb_main_get_token(const char *token_file, char **token, int *status)
{
	g_autoptr(GError) error = NULL;
	const char *env = g_getenv("PIGGY_TOKEN");

	if (token_file != NULL)
		*token = pb_token_read_file(token_file, &error);
	else if (env != NULL && pb_token_validate(env, "PIGGY_TOKEN", &error))
		*token = g_strdup(env);
	if (error != NULL) {
		g_autofree char *message = g_strdup_printf(_("--token-file: %s"), error->message);

		*status = pb_main_usage_error(token_file != NULL ? message : error->message);
		return FALSE;
	}
	return TRUE;
}

/* Parses a command's options; it takes no other arguments. */
static gboolean
pb_main_parse(GOptionContext *context, const GOptionEntry *entries, int *argc, char ***argv,
	      int *status)
{
	g_autoptr(GError) error = NULL;

	g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
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
	return TRUE;
}

/* Runs the main loop until SIGINT or SIGTERM (status 0) or a callback quits it. */
static int
pb_main_run(PbMain *main)
{
	guint sigint = g_unix_signal_add(SIGINT, pb_main_signal_cb, main);
	guint sigterm = g_unix_signal_add(SIGTERM, pb_main_signal_cb, main);

	g_main_loop_run(main->loop);
	g_source_remove(sigint);
	g_source_remove(sigterm);
	return main->status;
}

static int
pb_main_serve(int argc, char **argv)
{
	int port = 8080;
	int tunnel_port = 0;
	g_autofree char *listen_host = NULL;
	g_autofree char *tunnel_host = NULL; /* GOption does not free a default it replaces */
	g_autofree char *public_host = NULL;
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
	    {"token-file", 0, 0, G_OPTION_ARG_FILENAME, &token_file,
	     N_("Require the token in FILE from clients (or set PIGGY_TOKEN)"), N_("FILE")},
	    {"tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &tls_cert,
	     N_("Serve wss:// with the PEM certificate (chain) in FILE"), N_("FILE")},
	    {"tls-key", 0, 0, G_OPTION_ARG_FILENAME, &tls_key,
	     N_("The PEM private key of --tls-cert"), N_("FILE")},
	    {NULL},
	};
	g_autoptr(GOptionContext) context =
	    g_option_context_new(_("— run the tunnel server on a public machine"));
	g_autoptr(GError) error = NULL;
	g_autoptr(PbTunnelServer) server = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	PbMain main = {loop, EXIT_SUCCESS};
	int status = EXIT_SUCCESS;

	if (!pb_main_parse(context, entries, &argc, &argv, &status))
		return status;
	if (tunnel_host == NULL)
		tunnel_host = g_strdup("0.0.0.0");
	if (!pb_main_check_port(port, TRUE, "--port", &status) ||
	    !pb_main_check_port(tunnel_port, TRUE, "--tunnel-port", &status))
		return status;
	if (!pb_main_check_address(tunnel_host, "--tunnel-host", &status) ||
	    (listen_host != NULL && !pb_main_check_address(listen_host, "--listen", &status)))
		return status;
	if (!pb_main_get_token(token_file, &token, &status))
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
	pb_tunnel_server_set_token(server, token);
	pb_tunnel_server_set_tls_certificate(server, certificate);
	if (!pb_tunnel_server_start(server, &error)) {
		g_printerr(_("%s: cannot listen on port %d: %s\n"), g_get_prgname(), port,
			   error->message);
		return PB_EXIT_RUNTIME;
	}
	{
		const char *shown = listen_host != NULL ? listen_host : "0.0.0.0";
		gboolean ipv6 = strchr(shown, ':') != NULL;

		pb_main_print(_("Listening on %s://%s%s%s:%u/http-stream\n"),
			      certificate != NULL ? "wss" : "ws", ipv6 ? "[" : "", shown,
			      ipv6 ? "]" : "", pb_tunnel_server_get_port(server));
	}
	if (token == NULL)
		g_printerr(_("%s: warning: no token (--token-file or PIGGY_TOKEN): anyone who can "
			     "reach this port can open a tunnel\n"),
			   g_get_prgname());

	status = pb_main_run(&main);
	pb_tunnel_server_stop(server);
	return status;
}

static void
pb_main_forward_ready_cb(PbTunnelClient *client, const char *access_url, const char *http_url,
			 gpointer user_data)
{
	pb_main_print(_("Access URL: %s\n"), access_url);
	pb_main_print(_("HTTP URL: %s\n"), http_url);
}

static void
pb_main_forward_disconnected_cb(PbTunnelClient *client, const char *reason, gpointer user_data)
{
	PbMain *main = user_data;

	g_printerr(_("%s: the tunnel is closed: %s\n"), g_get_prgname(), reason);
	main->status = PB_EXIT_RUNTIME;
	g_main_loop_quit(main->loop);
}

static void
pb_main_forward_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	PbMain *main = user_data;
	g_autoptr(GError) error = NULL;

	if (!pb_tunnel_client_connect_finish(PB_TUNNEL_CLIENT(source), res, &error)) {
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_printerr(_("%s: cannot open a tunnel: %s\n"), g_get_prgname(),
				   error->message);
		main->status = PB_EXIT_RUNTIME;
		g_main_loop_quit(main->loop);
	}
}

static int
pb_main_forward(int argc, char **argv)
{
	int port = -1;
	g_autofree char *host = NULL; /* GOption does not free a default it replaces */
	g_autofree char *server_input = NULL;
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
	    {"token-file", 0, 0, G_OPTION_ARG_FILENAME, &token_file,
	     N_("Present the token in FILE to the server (or set PIGGY_TOKEN)"), N_("FILE")},
	    {"ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca_file,
	     N_("Trust the CA certificates in FILE (PEM) for a wss:// server, instead of the "
		"system's"),
	     N_("FILE")},
	    {"pin-sha256", 0, 0, G_OPTION_ARG_STRING, &pin_input,
	     N_("Accept only the wss:// server certificate with this SHA-256 (hex)"), N_("HASH")},
	    {NULL},
	};
	g_autoptr(GOptionContext) context =
	    g_option_context_new(_("— expose a local TCP service through a tunnel server"));
	g_autoptr(GError) error = NULL;
	g_autoptr(PbTunnelClient) client = NULL;
	g_autofree char *server_url = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	PbMain main = {loop, EXIT_SUCCESS};
	int status = EXIT_SUCCESS;

	if (!pb_main_parse(context, entries, &argc, &argv, &status))
		return status;
	if (host == NULL)
		host = g_strdup("localhost");
	if (server_input == NULL)
		server_input = g_strdup("localhost:8080");
	if (port == -1)
		return pb_main_usage_error(_("--port is required: the port of the local service"));
	if (!pb_main_check_port(port, FALSE, "--port", &status))
		return status;
	if (host == NULL || *host == '\0')
		return pb_main_usage_error(_("--host is empty"));
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

	client = pb_tunnel_client_new(server_url, host, (guint16)port);
	pb_tunnel_client_set_token(client, token);
	pb_tunnel_client_set_tls(client, tls_database, pin);
	g_signal_connect(client, "ready", G_CALLBACK(pb_main_forward_ready_cb), &main);
	g_signal_connect(client, "disconnected", G_CALLBACK(pb_main_forward_disconnected_cb),
			 &main);
	pb_main_print(_("Connecting to %s, forwarding to %s:%d\n"), server_url, host, port);
	pb_tunnel_client_connect_async(client, NULL, pb_main_forward_connected_cb, &main);
	status = pb_main_run(&main);
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
	g_log_writer_default_set_use_stderr(TRUE);

	if (g_str_has_prefix(name, "piggyback-forward")) {
		g_set_prgname("piggyback-forward");
		return pb_main_forward(argc, argv);
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
		return pb_main_forward(argc - 1, argv + 1);
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
