/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <string.h>

#include "pb-cli.h"
#include "pb-flow.h"
#include "pb-hello.h"
#include "pb-name.h"
#include "pb-queue-budget.h"
#include "pb-serve-drain.h"
#include "pb-text.h"
#include "pb-tls.h"
#include "pb-tunnel-server.h"

/* `piggyback serve`: the tunnel server, on a public machine. */

/* --tunnel-port: PORT (0 = random) or FIRST-LAST, into *@first and *@last; or off (names
 * only), *@off. */
static gboolean
pb_serve_parse_tunnel_ports(const char *value, guint16 *first, guint16 *last, gboolean *off,
			    int *status)
{
	g_auto(GStrv) parts = g_strsplit(value, "-", 3);
	guint64 a = 0, b = 0;
	g_autofree char *message = NULL;

	if (g_strcmp0(value, "off") == 0) {
		*off = TRUE;
		return TRUE;
	}

	if (g_strv_length(parts) == 1 &&
	    g_ascii_string_to_unsigned(parts[0], 10, 0, G_MAXUINT16, &a, NULL)) {
		*first = *last = (guint16)a;
		return TRUE;
	}
	if (g_strv_length(parts) == 2 &&
	    g_ascii_string_to_unsigned(parts[0], 10, 1, G_MAXUINT16, &a, NULL) &&
	    g_ascii_string_to_unsigned(parts[1], 10, 1, G_MAXUINT16, &b, NULL) && a <= b) {
		*first = (guint16)a;
		*last = (guint16)b;
		return TRUE;
	}
	message = g_strdup_printf(_("--tunnel-port must be a port from 0 to 65535, a range "
				    "FIRST-LAST of ports from 1 to 65535, or off, not “%s”"),
				  value);
	*status = pb_cli_usage_error(message);
	return FALSE;
}

/* --public-url: http[s]://DOMAIN[:PORT], where public clients reach the names of --domain
 * @domain, into *@scheme and *@port. */
static gboolean
pb_serve_parse_public_url(const char *value, const char *domain, char **scheme, guint16 *port,
			  int *status)
{
	g_autofree char *uri_scheme = NULL;
	g_autofree char *host = NULL;
	g_autofree char *path = NULL;
	g_autofree char *userinfo = NULL;
	g_autofree char *query = NULL;
	g_autofree char *fragment = NULL;
	g_autofree char *shown = pb_text_escape(value, -1);
	g_autofree char *message = NULL;
	int uri_port = -1;

	if (domain == NULL) {
		*status = pb_cli_usage_error(_("--public-url needs --domain"));
		return FALSE;
	}
	if (g_uri_split(value, G_URI_FLAGS_NONE, &uri_scheme, &userinfo, &host, &uri_port, &path,
			&query, &fragment, NULL) &&
	    (g_strcmp0(uri_scheme, "http") == 0 || g_strcmp0(uri_scheme, "https") == 0) &&
	    userinfo == NULL && query == NULL && fragment == NULL &&
	    (path == NULL || *path == '\0' || g_strcmp0(path, "/") == 0) && host != NULL &&
	    g_ascii_strcasecmp(host, domain) == 0 && uri_port != 0) {
		*scheme = g_steal_pointer(&uri_scheme);
		*port = uri_port > 0 ? (guint16)uri_port : 0;
		return TRUE;
	}
	message = g_strdup_printf(_("--public-url must be http://%s or https://%s, with a port "
				    "if it is not the scheme's, not “%s”"),
				  domain, domain, shown);
	*status = pb_cli_usage_error(message);
	return FALSE;
}

int
pb_serve_command(int argc, char **argv)
{
	int port = 8080;
	g_autofree char *tunnel_ports = NULL;
	guint16 tunnel_port = 0, tunnel_port_last = 0;
	gboolean names_only = FALSE;
	g_autofree char *public_url = NULL;
	g_autofree char *url_scheme = NULL;
	guint16 url_port = 0;
	g_autofree char *listen_host = NULL;
	g_autofree char *tunnel_host = NULL; /* NULL: every address, both families */
	g_autofree char *public_host = NULL;
	g_autofree char *features_option = NULL;
	int window = PB_FLOW_WINDOW_DEFAULT;
	int grace = PB_GRACE_DEFAULT;
	int max_clients = PB_MAX_CLIENTS_DEFAULT;
	int max_connections = PB_MAX_CONNECTIONS_DEFAULT;
	int max_services = PB_MAX_SERVICES_DEFAULT;
	int max_buffer_mib = PB_MAX_BUFFER_DEFAULT / (1024 * 1024);
	int handshake_timeout = PB_HANDSHAKE_TIMEOUT_DEFAULT;
	int idle_timeout = 0;
	int drain = 0;
	g_autofree char *metrics = NULL;
	g_autofree char *metrics_token_file = NULL;
	g_autofree char *metrics_token = NULL;
	PbFeatures features = PB_FEATURES_ALL;
	g_autofree char *token_file = NULL;
	g_autofree char *token = NULL;
	g_autofree char *domain = NULL;
	int http_port = -1;
	int sni_port = -1;
	g_autofree char *tls_cert = NULL;
	g_autofree char *tls_key = NULL;
	g_autoptr(GTlsCertificate) certificate = NULL;
	const GOptionEntry entries[] = {
	    {"port", 'p', 0, G_OPTION_ARG_INT, &port, N_("WebSocket port (default 8080)"),
	     N_("PORT")},
	    {"listen", 'l', 0, G_OPTION_ARG_STRING, &listen_host,
	     N_("Address the WebSocket port binds to (default: all)"), N_("ADDRESS")},
	    {"tunnel-port", 't', 0, G_OPTION_ARG_STRING, &tunnel_ports,
	     N_("Public TCP port, or a range to give each client a port of (default 0: a "
		"random free port); off: no port, names only (with --domain)"),
	     N_("PORT|FIRST-LAST|off")},
	    {"tunnel-host", 'H', 0, G_OPTION_ARG_STRING, &tunnel_host,
	     N_("Address the public ports bind to (default: all, IPv4 and IPv6)"), N_("ADDRESS")},
	    {"public-host", 0, 0, G_OPTION_ARG_STRING, &public_host,
	     N_("Host name clients are told to use (default: the one they connected to)"),
	     N_("HOST")},
	    {"domain", 0, 0, G_OPTION_ARG_STRING, &domain,
	     N_("Give tunnels names: a request for NAME.DOMAIN on the WebSocket port goes "
		"through tunnel NAME"),
	     N_("DOMAIN")},
	    {"http-port", 0, 0, G_OPTION_ARG_INT, &http_port,
	     N_("With --domain, a further plain HTTP port that routes by name only"), N_("PORT")},
	    {"public-url", 0, 0, G_OPTION_ARG_STRING, &public_url,
	     N_("With --domain, where the public reaches names, if a load balancer in front "
		"changes the scheme or port, e.g. https://DOMAIN (default: as clients reach "
		"this server)"),
	     N_("URL")},
	    {"sni-port", 0, 0, G_OPTION_ARG_INT, &sni_port,
	     N_("With --domain, a further port that passes TLS for NAME.DOMAIN (by SNI) "
		"untouched to tunnel NAME, whose local service holds the certificate"),
	     N_("PORT")},
	    {"features", 0, 0, G_OPTION_ARG_STRING, &features_option,
	     N_("Protocol 2 features to offer: flow, eof, or none for protocol 1 (default "
		"flow,eof)"),
	     N_("LIST")},
	    {"window", 0, 0, G_OPTION_ARG_INT, &window,
	     N_("Initial flow-control window per connection, in bytes (default 262144)"),
	     N_("BYTES")},
	    {"max-clients", 0, 0, G_OPTION_ARG_INT, &max_clients,
	     N_("Take at most N clients at once, those whose port is still kept (--grace) "
		"included (default 64)"),
	     N_("N")},
	    {"max-connections", 0, 0, G_OPTION_ARG_INT, &max_connections,
	     N_("Keep at most N connections open per tunnel (default 1000)"), N_("N")},
	    {"max-services", 0, 0, G_OPTION_ARG_INT, &max_services,
	     N_("Take at most N services per client (forward --expose) (default 16)"), N_("N")},
	    {"max-buffer", 0, 0, G_OPTION_ARG_INT, &max_buffer_mib,
	     N_("Queue at most MIB mebibytes for public connections that read slowly, all "
		"tunnels together; a tunnel over its part is held back (default 64)"),
	     N_("MIB")},
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
	    {"drain", 0, 0, G_OPTION_ARG_INT, &drain,
	     N_("On SIGTERM, answer /healthz with 503 for SECONDS while still serving, so a "
		"load balancer sends no new client here, then stop (default 0: stop at once)"),
	     N_("SECONDS")},
	    {"token-file", 0, 0, G_OPTION_ARG_FILENAME, &token_file,
	     N_("Require the token in FILE from clients (or set PIGGY_TOKEN)"), N_("FILE")},
	    {"metrics", 0, 0, G_OPTION_ARG_STRING, &metrics,
	     N_("on: answer GET /metrics on the WebSocket port, with the metrics token or else "
		"the tunnel token if one is set (default); public: without a token; off: do not"),
	     N_("on|off|public")},
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
	PbCli cli = {.loop = loop, .status = EXIT_SUCCESS};
	g_autoptr(PbServeDrain) drainer = NULL; /* after cli: it holds cli's SIGTERM */
	int status = EXIT_SUCCESS;

	if (!pb_cli_parse(context, entries, &argc, &argv, &status))
		return status;
	if (!pb_cli_check_port(port, TRUE, "--port", &status) ||
	    (tunnel_ports != NULL &&
	     !pb_serve_parse_tunnel_ports(tunnel_ports, &tunnel_port, &tunnel_port_last,
					  &names_only, &status)))
		return status;
	if ((tunnel_host != NULL && !pb_cli_check_address(tunnel_host, "--tunnel-host", &status)) ||
	    (listen_host != NULL && !pb_cli_check_address(listen_host, "--listen", &status)) ||
	    !pb_cli_check_features(features_option, &features, &status))
		return status;
	if (public_host != NULL && !pb_text_is_host(public_host)) {
		g_autofree char *shown = pb_text_escape(public_host, -1);
		g_autofree char *message = g_strdup_printf(
		    _("--public-host must be a host name or an IP address, not “%s”"), shown);

		/* a client refuses any other in its HELLO */
		return pb_cli_usage_error(message);
	}
	if (window < 1024 || window > PB_FLOW_WINDOW_MAX) {
		g_autofree char *message =
		    g_strdup_printf(_("--window must be between 1024 and %d bytes, not %d"),
				    PB_FLOW_WINDOW_MAX, window);
		return pb_cli_usage_error(message);
	}
	if (max_clients < 1 || max_connections < 1)
		return pb_cli_usage_error(
		    _("--max-clients and --max-connections must be at least 1"));
	if (max_services < 1 || max_services > PB_HELLO_MAX_SERVICES)
		return pb_cli_usage_error(_("--max-services must be from 1 to 256"));
	if (max_buffer_mib < 1 || max_buffer_mib > 1024 * 1024)
		return pb_cli_usage_error(_("--max-buffer must be from 1 to 1048576 MiB"));
	if (handshake_timeout < 1 || handshake_timeout > 3600)
		return pb_cli_usage_error(
		    _("--handshake-timeout must be a number of seconds from 1 to 3600"));
	if (idle_timeout < 0 || idle_timeout > 7 * 86400)
		return pb_cli_usage_error(
		    _("--idle-timeout must be a number of seconds from 0 (never) to 604800"));
	if (grace < 0 || grace > 86400)
		return pb_cli_usage_error(
		    _("--grace must be a number of seconds from 0 (none) to 86400"));
	if (drain < 0 || drain > PB_DRAIN_MAX_S)
		return pb_cli_usage_error(
		    _("--drain must be a number of seconds from 0 (none) to 3600"));
	if (!pb_cli_get_token(token_file, &token, &status))
		return status;
	if (metrics != NULL && g_strcmp0(metrics, "on") != 0 && g_strcmp0(metrics, "off") != 0 &&
	    g_strcmp0(metrics, "public") != 0) {
		g_autofree char *message =
		    g_strdup_printf(_("--metrics must be on, off or public, not “%s”"), metrics);

		return pb_cli_usage_error(message);
	}
	if (!pb_cli_read_token(metrics_token_file, "--metrics-token-file", "PIGGY_METRICS_TOKEN",
			       &metrics_token, &status))
		return status;
	if (g_strcmp0(metrics, "public") == 0 && metrics_token != NULL)
		return pb_cli_usage_error(_("--metrics public takes no metrics token "
					    "(--metrics-token-file or PIGGY_METRICS_TOKEN)"));
	/* /metrics lists every public port and its traffic: with a tunnel token it is not open
	 * to anyone unless asked for */
	if (metrics_token == NULL && token != NULL && g_strcmp0(metrics, "public") != 0)
		metrics_token = g_strdup(token);
	if ((tls_cert != NULL) != (tls_key != NULL))
		return pb_cli_usage_error(_("--tls-cert and --tls-key go together"));
	if (tls_cert != NULL) {
		certificate = g_tls_certificate_new_from_files(tls_cert, tls_key, &error);
		if (certificate == NULL) {
			g_autofree char *message =
			    g_strdup_printf(_("cannot use --tls-cert %s with --tls-key %s: %s"),
					    tls_cert, tls_key, error->message);

			return pb_cli_usage_error(message);
		}
	}

	if (domain != NULL && !pb_text_is_host(domain)) {
		g_autofree char *shown = pb_text_escape(domain, -1);
		g_autofree char *message =
		    g_strdup_printf(_("--domain “%s” is not a host name"), shown);

		return pb_cli_usage_error(message);
	}
	if (http_port != -1 && domain == NULL)
		return pb_cli_usage_error(_("--http-port needs --domain"));
	if (http_port != -1 && !pb_cli_check_port(http_port, TRUE, "--http-port", &status))
		return status;
	if (sni_port != -1 && domain == NULL)
		return pb_cli_usage_error(_("--sni-port needs --domain"));
	if (sni_port != -1 && !pb_cli_check_port(sni_port, TRUE, "--sni-port", &status))
		return status;
	if (names_only && domain == NULL)
		return pb_cli_usage_error(_("--tunnel-port off needs --domain: tunnels are then "
					    "reached by name only"));
	if (names_only && features == 0)
		return pb_cli_usage_error(_("--tunnel-port off needs protocol 2 (names), not "
					    "--features none"));
	if (public_url != NULL &&
	    !pb_serve_parse_public_url(public_url, domain, &url_scheme, &url_port, &status))
		return status;
	/* a PROXY header only goes to a client that asked for it (forward --proxy-protocol); a
	 * name only to one that asked for the feature */
	if (features != 0)
		features |= PB_FEATURES_PROXY | PB_FEATURE_NAME | PB_FEATURE_SERVICES;
	server = pb_tunnel_server_new((guint16)port, tunnel_host, tunnel_port, public_host);
	if (tunnel_port_last > tunnel_port)
		pb_tunnel_server_set_tunnel_ports(server, tunnel_port, tunnel_port_last);
	pb_tunnel_server_set_listen_host(server, listen_host);
	pb_tunnel_server_set_features(server, features, (guint32)window);
	pb_tunnel_server_set_keepalive(server, pb_cli_get_keepalive());
	pb_tunnel_server_set_max_message_size(server, pb_cli_get_max_message_size());
	pb_tunnel_server_set_grace(server, (guint)grace);
	pb_tunnel_server_set_idle_timeout(server, (guint)idle_timeout);
	pb_tunnel_server_set_limits(server, (guint)max_clients, (guint)max_connections);
	pb_tunnel_server_set_max_services(server, (guint)max_services);
	pb_tunnel_server_set_max_buffer(server, (guint64)max_buffer_mib * 1024 * 1024);
	pb_tunnel_server_set_handshake_limits(server, (guint)handshake_timeout,
					      PB_MAX_PENDING_DEFAULT,
					      PB_MAX_PENDING_PER_ADDRESS_DEFAULT);
	pb_tunnel_server_set_token(server, token);
	pb_tunnel_server_set_metrics(server, g_strcmp0(metrics, "off") != 0, metrics_token);
	pb_tunnel_server_set_tls_certificate(server, certificate);
	pb_tunnel_server_set_domain(server, domain, http_port, sni_port);
	pb_tunnel_server_set_names_only(server, names_only);
	pb_tunnel_server_set_public_url(server, url_scheme, url_port);
	if (!pb_tunnel_server_start(server, &error)) {
		g_printerr(_("%s: cannot listen on port %d: %s\n"), g_get_prgname(), port,
			   error->message);
		return PB_EXIT_RUNTIME;
	}
	if (token == NULL)
		g_printerr(_("%s: warning: no token (--token-file or PIGGY_TOKEN): anyone who can "
			     "reach this port can open a tunnel\n"),
			   g_get_prgname());
	if (domain != NULL && certificate != NULL &&
	    !pb_tls_certificate_covers_names(certificate, domain))
		g_printerr(_("%s: warning: the certificate does not cover *.%s: clients will not "
			     "trust it for https://NAME.%s\n"),
			   g_get_prgname(), domain, domain);
	pb_cli_watch_signals(&cli);
	drainer = pb_serve_drain_new(&cli, server, (guint)drain);
	{
		const char *shown = listen_host != NULL ? listen_host : "0.0.0.0";
		gboolean ipv6 = strchr(shown, ':') != NULL;
		g_autofree char *listen_url = g_strdup_printf(
		    "%s://%s%s%s:%u" PB_WS_PATH, certificate != NULL ? "wss" : "ws",
		    ipv6 ? "[" : "", shown, ipv6 ? "]" : "", pb_tunnel_server_get_port(server));
		g_autoptr(PbConsole) console = pb_cli_dashboard_console();

		/* not translated: scripts read this line */
		pb_cli_print("Listening on %s\n", listen_url);
		if (domain != NULL) {
			/* as the clients' HTTP URLs will be: --public-url, else this port */
			g_autofree char *names = pb_name_get_http_url(
			    "*", domain,
			    url_scheme != NULL	  ? url_scheme
			    : certificate != NULL ? "https"
						  : "http",
			    url_scheme != NULL ? url_port : pb_tunnel_server_get_port(server));

			pb_cli_print("Names: %s\n", names);
		}
		if (pb_tunnel_server_get_http_port(server) != 0)
			pb_cli_print("Names on --http-port: http://*.%s:%u\n", domain,
				     pb_tunnel_server_get_http_port(server));
		if (pb_tunnel_server_get_sni_port(server) != 0)
			pb_cli_print("Names on --sni-port: https://*.%s:%u\n", domain,
				     pb_tunnel_server_get_sni_port(server));
		if (console != NULL)
			cli.view = pb_dashboard_view_new_for_server(server, listen_url, console);
	}

	status = pb_cli_run(&cli);
	pb_tunnel_server_stop(server);
	return status;
}
