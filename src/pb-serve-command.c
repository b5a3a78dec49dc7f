/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gi18n.h>
#include <signal.h>
#include <string.h>

#include "pb-cli.h"
#include "pb-client-policy.h"
#include "pb-flow.h"
#include "pb-hello.h"
#include "pb-name.h"
#include "pb-queue-budget.h"
#include "pb-serve-drain.h"
#include "pb-serve-options.h"
#include "pb-signal.h"
#include "pb-text.h"
#include "pb-tls.h"
#include "pb-tunnel-server.h"

/* `piggyback serve`: the tunnel server, on a public machine. */

/* The groups of its --config file */
static const char *const pb_serve_config_groups[] = {"serve", "client ", NULL};

/* What SIGHUP needs to read the configuration file again. */
typedef struct {
	PbTunnelServer *server;	     /* (unowned) */
	const char *path;	     /* (unowned) (nullable) --config */
	const GOptionEntry *entries; /* (unowned) serve's options, which [serve] is checked with */
	const PbServeOptions *options; /* (unowned) as serve started */
	gboolean allow_given;	       /* --allow, --deny on the command line: they stay */
	gboolean deny_given;
	gboolean listen_allow_given; /* --listen-allow, --listen-deny likewise */
	gboolean listen_deny_given;
} PbServeReload;

/* A range list for a reload: the command line's, which wins, else the file's. */
static char *
pb_serve_reload_ranges(GKeyFile *key_file, gboolean given, const char *value, const char *key)
{
	return given ? g_strdup(value) : g_key_file_get_string(key_file, "serve", key, NULL);
}

/* SIGHUP (systemctl reload): the [client] groups of the file again, if it still parses (the
 * running configuration stays otherwise); [serve] is checked but takes effect at the next
 * start, as most of it (ports, TLS) cannot change under running tunnels. */
static gboolean
pb_serve_reload_cb(gpointer user_data)
{
	PbServeReload *reload = user_data;
	g_autoptr(PbConfigFile) config = NULL;
	g_autoptr(PbClientPolicy) policy = NULL;
	g_autoptr(GError) error = NULL;
	guint n_rules;

	if (reload->path == NULL) {
		g_message("SIGHUP: there is no configuration file (--config) to read again");
		return G_SOURCE_CONTINUE;
	}
	config = pb_cli_load_config(reload->path, "serve", reload->entries, pb_serve_config_groups,
				    TRUE, &error);
	if (config != NULL)
		policy = pb_client_policy_new_from_config(config, &error);
	if (policy != NULL) {
		GKeyFile *key_file = pb_config_file_get_key_file(config);
		const PbServeOptions *o = reload->options;
		g_autofree char *allow =
		    pb_serve_reload_ranges(key_file, reload->allow_given, o->allow, "allow");
		g_autofree char *deny =
		    pb_serve_reload_ranges(key_file, reload->deny_given, o->deny, "deny");
		g_autofree char *listen_allow = pb_serve_reload_ranges(
		    key_file, reload->listen_allow_given, o->listen_allow, "listen-allow");
		g_autofree char *listen_deny = pb_serve_reload_ranges(
		    key_file, reload->listen_deny_given, o->listen_deny, "listen-deny");
		g_autoptr(PbAddressRules) check = pb_address_rules_new();

		pb_address_rules_set_what(check, "", "listen-"); /* for its messages */

		/* new rules for new connections: those open stay; both sets or neither */
		if (!pb_address_rules_set(check, listen_allow, listen_deny, &error) ||
		    !pb_address_rules_set(pb_tunnel_server_get_address_rules(reload->server), allow,
					  deny, &error))
			g_clear_pointer(&policy, pb_client_policy_free);
		else
			pb_address_rules_set(pb_tunnel_server_get_listen_rules(reload->server),
					     listen_allow, listen_deny, NULL);
	}
	if (policy == NULL) {
		g_warning("Configuration not reloaded, the running one stays: %s", error->message);
		return G_SOURCE_CONTINUE;
	}
	n_rules = pb_client_policy_get_n_rules(policy);
	pb_tunnel_server_set_client_policy(reload->server, g_steal_pointer(&policy));
	g_message("%s: configuration reloaded, %u [client] groups", reload->path, n_rules);
	return G_SOURCE_CONTINUE;
}

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
	g_auto(PbServeOptions) o = {0};
	g_autofree GOptionEntry *entries = NULL;
	guint16 tunnel_port = 0, tunnel_port_last = 0;
	gboolean names_only = FALSE;
	g_autofree char *url_scheme = NULL;
	guint16 url_port = 0;
	g_autofree char *metrics_token = NULL;
	PbFeatures features = PB_FEATURES_ALL;
	g_autofree char *token = NULL;
	g_autoptr(GTlsCertificate) certificate = NULL;
	g_autoptr(PbConfigFile) config = NULL;
	g_autoptr(PbClientPolicy) policy = NULL;
	PbServeReload reload = {0};
	g_autoptr(GOptionContext) context =
	    g_option_context_new(_("— run the tunnel server on a public machine"));
	g_autoptr(GError) error = NULL;
	g_autoptr(PbTunnelServer) server = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	PbCli cli = {.loop = loop, .status = EXIT_SUCCESS};
	g_autoptr(PbServeDrain) drainer = NULL; /* after cli: it holds cli's SIGTERM */
	int status = EXIT_SUCCESS;

	pb_serve_options_init(&o);
	entries = pb_serve_options_get_entries(&o);
	reload.allow_given = pb_config_file_find_option(argc, argv, "allow") != NULL;
	reload.deny_given = pb_config_file_find_option(argc, argv, "deny") != NULL;
	reload.listen_allow_given = pb_config_file_find_option(argc, argv, "listen-allow") != NULL;
	reload.listen_deny_given = pb_config_file_find_option(argc, argv, "listen-deny") != NULL;
	if (!pb_cli_parse_config(context, entries, "serve", pb_serve_config_groups, &config, &argc,
				 &argv, &status))
		return status;
	if (!pb_cli_check_port(o.port, TRUE, "--port", &status) ||
	    (o.tunnel_ports != NULL &&
	     !pb_serve_parse_tunnel_ports(o.tunnel_ports, &tunnel_port, &tunnel_port_last,
					  &names_only, &status)))
		return status;
	if ((o.tunnel_host != NULL &&
	     !pb_cli_check_address(o.tunnel_host, "--tunnel-host", &status)) ||
	    (o.listen_host != NULL && !pb_cli_check_address(o.listen_host, "--listen", &status)) ||
	    !pb_cli_check_features(o.features, &features, &status))
		return status;
	if (o.public_host != NULL && !pb_text_is_host(o.public_host)) {
		g_autofree char *shown = pb_text_escape(o.public_host, -1);
		g_autofree char *message = g_strdup_printf(
		    _("--public-host must be a host name or an IP address, not “%s”"), shown);

		/* a client refuses any other in its HELLO */
		return pb_cli_usage_error(message);
	}
	if (o.window < 1024 || o.window > PB_FLOW_WINDOW_MAX) {
		g_autofree char *message =
		    g_strdup_printf(_("--window must be between 1024 and %d bytes, not %d"),
				    PB_FLOW_WINDOW_MAX, o.window);
		return pb_cli_usage_error(message);
	}
	if (o.max_clients < 1 || o.max_connections < 1)
		return pb_cli_usage_error(
		    _("--max-clients and --max-connections must be at least 1"));
	if (o.max_services < 1 || o.max_services > PB_HELLO_MAX_SERVICES)
		return pb_cli_usage_error(_("--max-services must be from 1 to 256"));
	if (o.max_connections_per_address < 0)
		return pb_cli_usage_error(
		    _("--max-connections-per-address must be a number, 0 for no limit"));
	if (o.max_buffer_mib < 1 || o.max_buffer_mib > 1024 * 1024)
		return pb_cli_usage_error(_("--max-buffer must be from 1 to 1048576 MiB"));
	if (o.handshake_timeout < 1 || o.handshake_timeout > 3600)
		return pb_cli_usage_error(
		    _("--handshake-timeout must be a number of seconds from 1 to 3600"));
	if (o.idle_timeout < 0 || o.idle_timeout > 7 * 86400)
		return pb_cli_usage_error(
		    _("--idle-timeout must be a number of seconds from 0 (never) to 604800"));
	if (o.grace < 0 || o.grace > 86400)
		return pb_cli_usage_error(
		    _("--grace must be a number of seconds from 0 (none) to 86400"));
	if (o.drain < 0 || o.drain > PB_DRAIN_MAX_S)
		return pb_cli_usage_error(
		    _("--drain must be a number of seconds from 0 (none) to 3600"));
	if (!pb_cli_get_token(o.token_file, &token, &status))
		return status;
	if (config != NULL) {
		policy = pb_client_policy_new_from_config(config, &error);
		if (policy == NULL)
			return pb_cli_usage_error(error->message);
	}
	if (o.metrics != NULL && g_strcmp0(o.metrics, "on") != 0 &&
	    g_strcmp0(o.metrics, "off") != 0 && g_strcmp0(o.metrics, "public") != 0) {
		g_autofree char *message =
		    g_strdup_printf(_("--metrics must be on, off or public, not “%s”"), o.metrics);

		return pb_cli_usage_error(message);
	}
	if (!pb_cli_read_token(o.metrics_token_file, "--metrics-token-file", "PIGGY_METRICS_TOKEN",
			       &metrics_token, &status))
		return status;
	if (g_strcmp0(o.metrics, "public") == 0 && metrics_token != NULL)
		return pb_cli_usage_error(_("--metrics public takes no metrics token "
					    "(--metrics-token-file or PIGGY_METRICS_TOKEN)"));
	/* /metrics lists every public port and its traffic: with a tunnel token it is not open
	 * to anyone unless asked for */
	if (metrics_token == NULL && token != NULL && g_strcmp0(o.metrics, "public") != 0)
		metrics_token = g_strdup(token);
	/* nor when only the tokens of [client] groups are, which say who may open a tunnel,
	 * not who may see everyone's */
	if (metrics_token == NULL && pb_client_policy_get_n_rules(policy) > 0 &&
	    (o.metrics == NULL || g_strcmp0(o.metrics, "on") == 0))
		return pb_cli_usage_error(_("with [client] groups and no --token-file, --metrics "
					    "needs --metrics-token-file, or public or off"));
	if ((o.tls_cert != NULL) != (o.tls_key != NULL))
		return pb_cli_usage_error(_("--tls-cert and --tls-key go together"));
	if (o.tls_cert != NULL) {
		certificate = g_tls_certificate_new_from_files(o.tls_cert, o.tls_key, &error);
		if (certificate == NULL) {
			g_autofree char *message =
			    g_strdup_printf(_("cannot use --tls-cert %s with --tls-key %s: %s"),
					    o.tls_cert, o.tls_key, error->message);

			return pb_cli_usage_error(message);
		}
	}

	if (o.domain != NULL && !pb_text_is_host(o.domain)) {
		g_autofree char *shown = pb_text_escape(o.domain, -1);
		g_autofree char *message =
		    g_strdup_printf(_("--domain “%s” is not a host name"), shown);

		return pb_cli_usage_error(message);
	}
	if (o.http_port != -1 && o.domain == NULL)
		return pb_cli_usage_error(_("--http-port needs --domain"));
	if (o.http_port != -1 && !pb_cli_check_port(o.http_port, TRUE, "--http-port", &status))
		return status;
	if (o.sni_port != -1 && o.domain == NULL)
		return pb_cli_usage_error(_("--sni-port needs --domain"));
	if (o.sni_port != -1 && !pb_cli_check_port(o.sni_port, TRUE, "--sni-port", &status))
		return status;
	if (names_only && o.domain == NULL)
		return pb_cli_usage_error(_("--tunnel-port off needs --domain: tunnels are then "
					    "reached by name only"));
	if (names_only && features == 0)
		return pb_cli_usage_error(_("--tunnel-port off needs protocol 2 (names), not "
					    "--features none"));
	if (o.public_url != NULL &&
	    !pb_serve_parse_public_url(o.public_url, o.domain, &url_scheme, &url_port, &status))
		return status;
	/* a PROXY header only goes to a client that asked for it (forward --proxy-protocol); a
	 * name only to one that asked for the feature */
	if (features != 0)
		features |= PB_FEATURES_PROXY | PB_FEATURE_NAME | PB_FEATURE_SERVICES;
	server = pb_tunnel_server_new((guint16)o.port, o.tunnel_host, tunnel_port, o.public_host);
	if (tunnel_port_last > tunnel_port)
		pb_tunnel_server_set_tunnel_ports(server, tunnel_port, tunnel_port_last);
	pb_tunnel_server_set_listen_host(server, o.listen_host);
	pb_tunnel_server_set_features(server, features, (guint32)o.window);
	pb_tunnel_server_set_keepalive(server, pb_cli_get_keepalive());
	pb_tunnel_server_set_max_message_size(server, pb_cli_get_max_message_size());
	pb_tunnel_server_set_grace(server, (guint)o.grace);
	pb_tunnel_server_set_idle_timeout(server, (guint)o.idle_timeout);
	pb_tunnel_server_set_limits(server, (guint)o.max_clients, (guint)o.max_connections);
	pb_tunnel_server_set_max_services(server, (guint)o.max_services);
	pb_tunnel_server_set_max_buffer(server, (guint64)o.max_buffer_mib * 1024 * 1024);
	pb_tunnel_server_set_handshake_limits(server, (guint)o.handshake_timeout,
					      PB_MAX_PENDING_DEFAULT,
					      PB_MAX_PENDING_PER_ADDRESS_DEFAULT);
	pb_tunnel_server_set_token(server, token);
	pb_tunnel_server_set_client_policy(server, g_steal_pointer(&policy));
	if (!pb_address_rules_set(pb_tunnel_server_get_address_rules(server), o.allow, o.deny,
				  &error))
		return pb_cli_usage_error(error->message);
	if (!pb_address_rules_set(pb_tunnel_server_get_listen_rules(server), o.listen_allow,
				  o.listen_deny, &error))
		return pb_cli_usage_error(error->message);
	pb_address_rules_set_max_per_address(pb_tunnel_server_get_address_rules(server),
					     (guint)o.max_connections_per_address);
	pb_tunnel_server_set_metrics(server, g_strcmp0(o.metrics, "off") != 0, metrics_token);
	pb_tunnel_server_set_tls_certificate(server, certificate);
	pb_tunnel_server_set_domain(server, o.domain, o.http_port, o.sni_port);
	pb_tunnel_server_set_names_only(server, names_only);
	pb_tunnel_server_set_public_url(server, url_scheme, url_port);
	if (!pb_tunnel_server_start(server, &error)) {
		g_printerr(_("%s: cannot listen on port %d: %s\n"), g_get_prgname(), o.port,
			   error->message);
		return PB_EXIT_RUNTIME;
	}
	if (token == NULL && pb_tunnel_server_get_n_client_rules(server) == 0)
		g_printerr(_("%s: warning: no token (--token-file or PIGGY_TOKEN): anyone who can "
			     "reach this port can open a tunnel\n"),
			   g_get_prgname());
	if (o.domain != NULL && certificate != NULL &&
	    !pb_tls_certificate_covers_names(certificate, o.domain))
		g_printerr(_("%s: warning: the certificate does not cover *.%s: clients will not "
			     "trust it for https://NAME.%s\n"),
			   g_get_prgname(), o.domain, o.domain);
	pb_cli_begin(&cli);
	drainer = pb_serve_drain_new(&cli, server, (guint)o.drain);
	/* a server reloads on SIGHUP, as daemons do (systemctl reload), rather than end */
	reload.server = server;
	reload.path = o.config;
	reload.entries = entries;
	reload.options = &o;
	{
		guint ending = cli.sighup; /* replaced without a moment when SIGHUP is fatal */

		cli.sighup = pb_signal_add(SIGHUP, pb_serve_reload_cb, &reload);
		g_clear_handle_id(&ending, pb_signal_remove);
	}
	{
		const char *shown = o.listen_host != NULL ? o.listen_host : "0.0.0.0";
		gboolean ipv6 = strchr(shown, ':') != NULL;
		g_autofree char *listen_url = g_strdup_printf(
		    "%s://%s%s%s:%u" PB_WS_PATH, certificate != NULL ? "wss" : "ws",
		    ipv6 ? "[" : "", shown, ipv6 ? "]" : "", pb_tunnel_server_get_port(server));
		g_autoptr(PbConsole) console = pb_cli_dashboard_console();

		/* not translated: scripts read this line */
		pb_cli_print("Listening on %s\n", listen_url);
		if (o.domain != NULL) {
			/* as the clients' HTTP URLs will be: --public-url, else this port */
			g_autofree char *names = pb_name_get_http_url(
			    "*", o.domain,
			    url_scheme != NULL	  ? url_scheme
			    : certificate != NULL ? "https"
						  : "http",
			    url_scheme != NULL ? url_port : pb_tunnel_server_get_port(server));

			pb_cli_print("Names: %s\n", names);
		}
		if (pb_tunnel_server_get_http_port(server) != 0)
			pb_cli_print("Names on --http-port: http://*.%s:%u\n", o.domain,
				     pb_tunnel_server_get_http_port(server));
		if (pb_tunnel_server_get_sni_port(server) != 0)
			pb_cli_print("Names on --sni-port: https://*.%s:%u\n", o.domain,
				     pb_tunnel_server_get_sni_port(server));
		if (console != NULL)
			cli.view = pb_dashboard_view_new_for_server(server, listen_url, console);
	}

	status = pb_cli_run(&cli);
	pb_tunnel_server_stop(server);
	return status;
}
