/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-serve-options.h"

#include <glib/gi18n.h>

#include "pb-flow.h"
#include "pb-frame.h"
#include "pb-queue-budget.h"

/*
 * The options of `piggyback serve`: one table for its command line and for the [serve]
 * group of its --config file (PbConfigFile sets an option from the key of its long name),
 * so that every option works in the file with no second list to keep in step.
 */

void
pb_serve_options_init(PbServeOptions *self)
{
	*self = (PbServeOptions){
	    .port = 8080,
	    .http_port = -1,
	    .sni_port = -1,
	    .window = PB_FLOW_WINDOW_DEFAULT,
	    .max_clients = PB_MAX_CLIENTS_DEFAULT,
	    .max_connections = PB_MAX_CONNECTIONS_DEFAULT,
	    .max_services = PB_MAX_SERVICES_DEFAULT,
	    .max_buffer_mib = PB_MAX_BUFFER_DEFAULT / (1024 * 1024),
	    .handshake_timeout = PB_HANDSHAKE_TIMEOUT_DEFAULT,
	    .grace = PB_GRACE_DEFAULT,
	};
}

/* Returns: (transfer full): the options' GOptionEntry table, pointing into @self */
GOptionEntry *
pb_serve_options_get_entries(PbServeOptions *self)
{
	const GOptionEntry entries[] = {
	    {"config", 0, 0, G_OPTION_ARG_FILENAME, &self->config,
	     N_("Read options from FILE, a key file: [serve] holds options by their long "
		"names, [client NAME] groups a token each and what it may claim; options on "
		"the command line win; SIGHUP reads it again"),
	     N_("FILE")},
	    {"port", 'p', 0, G_OPTION_ARG_INT, &self->port, N_("WebSocket port (default 8080)"),
	     N_("PORT")},
	    {"listen", 'l', 0, G_OPTION_ARG_STRING, &self->listen_host,
	     N_("Address the WebSocket port binds to (default: all)"), N_("ADDRESS")},
	    {"tunnel-port", 't', 0, G_OPTION_ARG_STRING, &self->tunnel_ports,
	     N_("Public TCP port, or a range to give each client a port of (default 0: a "
		"random free port); off: no port, names only (with --domain)"),
	     N_("PORT|FIRST-LAST|off")},
	    {"tunnel-host", 'H', 0, G_OPTION_ARG_STRING, &self->tunnel_host,
	     N_("Address the public ports bind to (default: all, IPv4 and IPv6)"), N_("ADDRESS")},
	    {"public-host", 0, 0, G_OPTION_ARG_STRING, &self->public_host,
	     N_("Host name clients are told to use (default: the one they connected to)"),
	     N_("HOST")},
	    {"domain", 0, 0, G_OPTION_ARG_STRING, &self->domain,
	     N_("Give tunnels names: a request for NAME.DOMAIN on the WebSocket port goes "
		"through tunnel NAME"),
	     N_("DOMAIN")},
	    {"http-port", 0, 0, G_OPTION_ARG_INT, &self->http_port,
	     N_("With --domain, a further plain HTTP port that routes by name only"), N_("PORT")},
	    {"public-url", 0, 0, G_OPTION_ARG_STRING, &self->public_url,
	     N_("With --domain, where the public reaches names, if a load balancer in front "
		"changes the scheme or port, e.g. https://DOMAIN (default: as clients reach "
		"this server)"),
	     N_("URL")},
	    {"sni-port", 0, 0, G_OPTION_ARG_INT, &self->sni_port,
	     N_("With --domain, a further port that passes TLS for NAME.DOMAIN (by SNI) "
		"untouched to tunnel NAME, whose local service holds the certificate"),
	     N_("PORT")},
	    {"features", 0, 0, G_OPTION_ARG_STRING, &self->features,
	     N_("Protocol 2 features to offer: flow, eof, resume, or none for protocol 1 "
		"(default flow,eof,resume)"),
	     N_("LIST")},
	    {"window", 0, 0, G_OPTION_ARG_INT, &self->window,
	     N_("Initial flow-control window per connection, in bytes (default 262144)"),
	     N_("BYTES")},
	    {"max-clients", 0, 0, G_OPTION_ARG_INT, &self->max_clients,
	     N_("Take at most N clients at once, those whose port is still kept (--grace) "
		"included (default 64)"),
	     N_("N")},
	    {"max-connections", 0, 0, G_OPTION_ARG_INT, &self->max_connections,
	     N_("Keep at most N connections open per tunnel (default 1000)"), N_("N")},
	    {"max-services", 0, 0, G_OPTION_ARG_INT, &self->max_services,
	     N_("Take at most N services per client (forward --expose) (default 16)"), N_("N")},
	    {"max-buffer", 0, 0, G_OPTION_ARG_INT, &self->max_buffer_mib,
	     N_("Queue at most MIB mebibytes for public connections that read slowly, all "
		"tunnels together; a tunnel over its part is held back (default 64)"),
	     N_("MIB")},
	    {"handshake-timeout", 0, 0, G_OPTION_ARG_INT, &self->handshake_timeout,
	     N_("Close a connection to the WebSocket port that is no tunnel after SECONDS "
		"(default 10)"),
	     N_("SECONDS")},
	    {"idle-timeout", 0, 0, G_OPTION_ARG_INT, &self->idle_timeout,
	     N_("Close a tunneled connection that moved no data for SECONDS (default 0: "
		"never)"),
	     N_("SECONDS")},
	    {"grace", 0, 0, G_OPTION_ARG_INT, &self->grace,
	     N_("Keep a lost client's public port for it for SECONDS (default 30, 0 = close "
		"at once)"),
	     N_("SECONDS")},
	    {"drain", 0, 0, G_OPTION_ARG_INT, &self->drain,
	     N_("On SIGTERM, answer /healthz with 503 for SECONDS while still serving, so a "
		"load balancer sends no new client here, then stop (default 0: stop at once)"),
	     N_("SECONDS")},
	    {"token-file", 0, 0, G_OPTION_ARG_FILENAME, &self->token_file,
	     N_("Require the token in FILE from clients (or set PIGGY_TOKEN)"), N_("FILE")},
	    {"metrics", 0, 0, G_OPTION_ARG_STRING, &self->metrics,
	     N_("on: answer GET /metrics on the WebSocket port, with the metrics token or else "
		"the tunnel token if one is set (default); public: without a token; off: do not"),
	     N_("on|off|public")},
	    {"metrics-token-file", 0, 0, G_OPTION_ARG_FILENAME, &self->metrics_token_file,
	     N_("Require the token in FILE on GET /metrics (or set PIGGY_METRICS_TOKEN)"),
	     N_("FILE")},
	    {"tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &self->tls_cert,
	     N_("Serve wss:// with the PEM certificate (chain) in FILE"), N_("FILE")},
	    {"tls-key", 0, 0, G_OPTION_ARG_FILENAME, &self->tls_key,
	     N_("The PEM private key of --tls-cert"), N_("FILE")},
	    {"allow", 0, 0, G_OPTION_ARG_STRING, &self->allow,
	     N_("Take public connections only from these IP addresses and CIDR ranges, "
		"comma-separated (default: from anywhere)"),
	     N_("RANGES")},
	    {"deny", 0, 0, G_OPTION_ARG_STRING, &self->deny,
	     N_("Refuse public connections from these IP addresses and CIDR ranges, "
		"comma-separated; before --allow"),
	     N_("RANGES")},
	    {"max-connections-per-address", 0, 0, G_OPTION_ARG_INT,
	     &self->max_connections_per_address,
	     N_("Keep at most N public connections open at once from one IPv4 address or IPv6 "
		"/64, all tunnels together; more are closed at once (default 0: no limit)"),
	     N_("N")},
	    {"listen-allow", 0, 0, G_OPTION_ARG_STRING, &self->listen_allow,
	     N_("Take connections to the WebSocket port (tunnels, and names on it) only from "
		"these IP addresses and CIDR ranges, comma-separated (default: from anywhere)"),
	     N_("RANGES")},
	    {"listen-deny", 0, 0, G_OPTION_ARG_STRING, &self->listen_deny,
	     N_("Refuse connections to the WebSocket port from these IP addresses and CIDR "
		"ranges, comma-separated; before --listen-allow"),
	     N_("RANGES")},
	    G_OPTION_ENTRY_NULL,
	};

	return g_memdup2(entries, sizeof entries);
}

void
pb_serve_options_clear(PbServeOptions *self)
{
	g_free(self->config);
	g_free(self->listen_host);
	g_free(self->tunnel_ports);
	g_free(self->tunnel_host);
	g_free(self->public_host);
	g_free(self->domain);
	g_free(self->public_url);
	g_free(self->features);
	g_free(self->token_file);
	g_free(self->metrics);
	g_free(self->metrics_token_file);
	g_free(self->tls_cert);
	g_free(self->tls_key);
	g_free(self->allow);
	g_free(self->deny);
	g_free(self->listen_allow);
	g_free(self->listen_deny);
	pb_serve_options_init(self);
}
