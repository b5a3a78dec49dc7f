/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "pb-client-policy.h"
#include "pb-client-registry.h"
#include "pb-flow.h"
#include "pb-frame.h"
#include "pb-public-ports.h"
#include "pb-queue-budget.h"
#include "pb-server-client.h"
#include "pb-tunnel-server-private.h"
#include "pb-tunnel.h"
#include "pb-web-port.h"

/*
 * `piggyback serve`: a SoupServer whose handler (pb-server-handshake.c) answers /healthz
 * and /metrics and does a client's WebSocket handshake, then takes the connection from
 * libsoup once the 101 response is written, so the WebSocket runs on PiggyBack's own
 * stream (see PbWsStream). The SoupServer does not listen itself: PbWebPort accepts for it
 * and bounds connections that are not a tunnel yet. Each client gets a public TCP listener
 * per service (and, with --domain, a name on the shared ports); every connection accepted
 * there becomes a stream of its tunnel. This file: the object, its settings, its ports,
 * and what its views read.
 */

G_DEFINE_FINAL_TYPE(PbTunnelServer, pb_tunnel_server, G_TYPE_OBJECT)

/* Listens on --listen-host, or on every address of both families on the same port (like
 * soup_server_listen_all()). */
static gboolean
pb_tunnel_server_listen(PbTunnelServer *self, PbWebPort *web_port, guint16 port, GError **error)
{
	g_autoptr(GInetAddress) any4 = g_inet_address_new_any(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GInetAddress) any6 = g_inet_address_new_any(G_SOCKET_FAMILY_IPV6);
	g_autoptr(GError) error6 = NULL;

	if (self->listen_host != NULL) {
		g_autoptr(GInetAddress) address = g_inet_address_new_from_string(self->listen_host);

		if (address == NULL) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
				    "“%s” is not an IP address", self->listen_host);
			return FALSE;
		}
		return pb_web_port_listen(web_port, address, port, error);
	}
	if (!pb_web_port_listen(web_port, any4, port, error))
		return FALSE;
	if (!pb_web_port_listen(web_port, any6, pb_web_port_get_port(web_port), &error6))
		g_debug("Not listening on IPv6: %s", error6->message);
	return TRUE;
}

/* A request on a shared port whose Host is NAME.DOMAIN: a public connection of that
 * tunnel, as on its own port; if its client is away within its grace period, a 503 that
 * says to come back (the public port of such a client keeps its connections waiting). */
static PbRoute
pb_tunnel_server_route_cb(const char *name, GSocketConnection *connection,
			  GSocketConnection *origin, gpointer user_data)
{
	PbTunnelServer *self = PB_TUNNEL_SERVER(user_data);
	guint32 service = 0;
	PbServerClient *client = pb_client_registry_find_name(self->clients, name, &service);

	if (client == NULL)
		return pb_client_registry_is_away(self->clients, name) ? PB_ROUTE_AWAY
								       : PB_ROUTE_UNKNOWN;
	pb_server_client_add_connection(client, service, connection, origin);
	return PB_ROUTE_TAKEN;
}

/* Starts @web_port (taken), a further port that routes by name only, on @port (0: a free
 * one). Returns: (transfer full) (nullable): it, or %NULL on error */
static PbWebPort *
pb_tunnel_server_start_names_port(PbTunnelServer *self, PbWebPort *web_port, int port,
				  GError **error)
{
	g_autoptr(PbWebPort) owned = web_port;

	pb_web_port_set_limits(web_port, self->handshake_timeout_s, self->max_pending,
			       self->max_pending_per_address);
	pb_web_port_set_router(web_port, self->domain, pb_tunnel_server_route_cb, self);
	if (!pb_tunnel_server_listen(self, web_port, (guint16)port, error))
		return NULL;
	return g_steal_pointer(&owned);
}

gboolean
pb_tunnel_server_start(PbTunnelServer *self, GError **error)
{
	g_return_val_if_fail(PB_IS_TUNNEL_SERVER(self), FALSE);
	g_return_val_if_fail(self->web_port == NULL, FALSE);

	self->web_port = pb_web_port_new(self->soup, self->certificate);
	pb_web_port_set_limits(self->web_port, self->handshake_timeout_s, self->max_pending,
			       self->max_pending_per_address);
	pb_web_port_set_address_rules(self->web_port, self->listen_rules);
	if (self->domain != NULL)
		pb_web_port_set_router(self->web_port, self->domain, pb_tunnel_server_route_cb,
				       self);
	if (!pb_tunnel_server_listen(self, self->web_port, self->port, error))
		return FALSE;
	self->port = pb_web_port_get_port(self->web_port);
	if (self->domain != NULL && self->http_port >= 0) {
		self->http_web_port = pb_tunnel_server_start_names_port(
		    self, pb_web_port_new(NULL, NULL), self->http_port, error);
		if (self->http_web_port == NULL)
			return FALSE;
	}
	if (self->domain != NULL && self->sni_port >= 0) {
		self->sni_web_port = pb_tunnel_server_start_names_port(
		    self, pb_web_port_new_passthrough(), self->sni_port, error);
		if (self->sni_web_port == NULL)
			return FALSE;
	}
	return TRUE;
}

/**
 * pb_tunnel_server_set_domain:
 * @domain: (nullable): tunnels get names, reached as NAME.@domain on the WebSocket port (a
 *   plain one) and on the --http-port; %NULL: no names
 * @http_port: with @domain, a further plain HTTP port that routes by name only: -1 for
 *   none, 0 for a free one (see pb_tunnel_server_get_http_port())
 * @sni_port: with @domain, a further port that passes TLS through to the tunnel its
 *   ClientHello's server_name names, without terminating it: -1 for none, 0 for a free one
 *   (see pb_tunnel_server_get_sni_port())
 *
 * Call before pb_tunnel_server_start().
 */
void
pb_tunnel_server_set_domain(PbTunnelServer *self, const char *domain, int http_port, int sni_port)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	g_return_if_fail(http_port >= -1 && http_port <= G_MAXUINT16);
	g_return_if_fail(sni_port >= -1 && sni_port <= G_MAXUINT16);

	g_free(self->domain);
	self->domain = g_ascii_strdown(domain != NULL ? domain : "", -1);
	if (domain == NULL)
		g_clear_pointer(&self->domain, g_free);
	self->http_port = http_port;
	self->sni_port = sni_port;
}

/**
 * pb_tunnel_server_set_names_only:
 * @names_only: clients get a name and no public port (serve --tunnel-port off); needs
 *   pb_tunnel_server_set_domain()
 */
void
pb_tunnel_server_set_names_only(PbTunnelServer *self, gboolean names_only)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	self->public_ports.off = names_only;
}

/**
 * pb_tunnel_server_set_draining:
 * @draining: answer /healthz with 503, so that a load balancer sends no new client here;
 *   tunnels and everything else are served as before
 */
void
pb_tunnel_server_set_draining(PbTunnelServer *self, gboolean draining)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	self->draining = draining;
}

/**
 * pb_tunnel_server_set_public_url:
 * @scheme: (nullable): "http" or "https": how public clients reach names, where a load
 *   balancer in front changes it; %NULL: as each client reaches the server
 * @port: the port they reach; 0 = @scheme's
 *
 * Clients are told in HELLO, and name their HTTP URL after it.
 */
void
pb_tunnel_server_set_public_url(PbTunnelServer *self, const char *scheme, guint16 port)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	g_free(self->url_scheme);
	self->url_scheme = g_strdup(scheme);
	self->url_port = port;
}

/* The --http-port once started; 0 for none. */
guint16
pb_tunnel_server_get_http_port(PbTunnelServer *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_SERVER(self), 0);
	return self->http_web_port != NULL ? pb_web_port_get_port(self->http_web_port) : 0;
}

/* The --sni-port once started; 0 for none. */
guint16
pb_tunnel_server_get_sni_port(PbTunnelServer *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_SERVER(self), 0);
	return self->sni_web_port != NULL ? pb_web_port_get_port(self->sni_web_port) : 0;
}

/**
 * pb_tunnel_server_set_listen_host:
 * @host: (nullable): the IP address the WebSocket port binds to; %NULL for all
 *
 * Call before pb_tunnel_server_start().
 */
void
pb_tunnel_server_set_listen_host(PbTunnelServer *self, const char *host)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));

	g_free(self->listen_host);
	self->listen_host = g_strdup(host);
}

/**
 * pb_tunnel_server_set_features:
 * @features: the protocol v2 features clients may use (all by default; 0 = version 1 only)
 * @window: the initial credit of every connection with `flow`
 */
void
pb_tunnel_server_set_features(PbTunnelServer *self, PbFeatures features, guint32 window)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));

	self->features = features;
	self->window = window;
}

/**
 * pb_tunnel_server_set_token:
 * @token: (nullable): the token every client must present; %NULL lets anyone in
 *
 * Call before pb_tunnel_server_start().
 */
void
pb_tunnel_server_set_token(PbTunnelServer *self, const char *token)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));

	if (self->token != NULL)
		memset(self->token, 0, strlen(self->token));
	g_free(self->token);
	self->token = g_strdup(token);
}

/**
 * pb_tunnel_server_set_tls_certificate:
 * @certificate: (nullable): the certificate, with its private key, to serve wss:// with;
 *   %NULL for plain ws://
 *
 * Call before pb_tunnel_server_start().
 */
void
pb_tunnel_server_set_tls_certificate(PbTunnelServer *self, GTlsCertificate *certificate)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	g_return_if_fail(certificate == NULL || G_IS_TLS_CERTIFICATE(certificate));

	g_set_object(&self->certificate, certificate);
}

guint16
pb_tunnel_server_get_port(PbTunnelServer *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_SERVER(self), 0);
	return self->port;
}

guint
pb_tunnel_server_get_n_clients(PbTunnelServer *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_SERVER(self), 0);
	return pb_client_registry_get_n_clients(self->clients);
}

void
pb_server_client_info_free(PbServerClientInfo *info)
{
	g_free(info->peer);
	g_free(info->name);
	pb_server_service_infos_free(info->services, info->n_services);
	g_free(info->client);
	g_free(info);
}

/**
 * pb_tunnel_server_list_clients:
 *
 * Returns: (transfer full) (element-type PbServerClientInfo): a snapshot of the connected
 * clients, oldest first
 */
GPtrArray *
pb_tunnel_server_list_clients(PbTunnelServer *self)
{
	GPtrArray *infos =
	    g_ptr_array_new_with_free_func((GDestroyNotify)pb_server_client_info_free);

	g_return_val_if_fail(PB_IS_TUNNEL_SERVER(self), infos);
	/* the registry lists the newest first */
	for (const GList *l = g_list_last((GList *)pb_client_registry_get_clients(self->clients));
	     l != NULL; l = l->prev) {
		PbServerClient *client = l->data;
		PbServerService *first = pb_server_client_get_service(client, 0);
		PbServerClientInfo *info = g_new0(PbServerClientInfo, 1);

		info->peer = g_strdup(client->peer);
		info->name = g_strdup(first->name);
		info->client =
		    client->rule != NULL ? g_strdup(pb_client_rule_get_name(client->rule)) : NULL;
		info->tunnel_port = first->port;
		info->connected_since = client->connected_since;
		pb_tunnel_get_stats(client->tunnel, &info->stats);
		info->services = pb_server_client_list_services(client, &info->n_services);
		g_ptr_array_add(infos, info);
	}
	return infos;
}

/* The counters of every tunnel since the server started, those open now and those closed. */
void
pb_tunnel_server_get_totals(PbTunnelServer *self, PbTunnelStats *totals)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));

	*totals = self->ended;
	for (const GList *l = pb_client_registry_get_clients(self->clients); l != NULL;
	     l = l->next) {
		PbServerClient *client = l->data;
		PbTunnelStats stats;

		pb_tunnel_get_stats(client->tunnel, &stats);
		pb_tunnel_stats_add(totals, &stats);
	}
}

/* Connections to the WebSocket port that are not a tunnel (yet). */
guint
pb_tunnel_server_get_n_pending(PbTunnelServer *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_SERVER(self), 0);
	return (self->web_port != NULL ? pb_web_port_get_n_pending(self->web_port) : 0) +
	       (self->http_web_port != NULL ? pb_web_port_get_n_pending(self->http_web_port) : 0) +
	       (self->sni_web_port != NULL ? pb_web_port_get_n_pending(self->sni_web_port) : 0);
}

/**
 * pb_tunnel_server_set_client_policy:
 * @policy: (transfer full) (nullable): the [client] groups of --config
 *
 * Also on a reload: a client of a group that is gone, or that no longer lets it have its
 * name or port, is disconnected (1008, with the reason); the others keep their tunnels.
 */
void
pb_tunnel_server_set_client_policy(PbTunnelServer *self, PbClientPolicy *policy)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));

	pb_client_policy_apply(policy, pb_client_registry_get_clients(self->clients),
			       self->max_connections);
	g_clear_pointer(&self->policy, pb_client_policy_free);
	/* none: the shared token alone, or anyone without one */
	if (pb_client_policy_get_n_rules(policy) > 0)
		self->policy = policy;
	else
		pb_client_policy_free(policy);
}

/* Returns: (transfer none): who may connect to the WebSocket port (--listen-allow,
 * --listen-deny) */
PbAddressRules *
pb_tunnel_server_get_listen_rules(PbTunnelServer *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_SERVER(self), NULL);
	return self->listen_rules;
}

/* Returns: (transfer none): who may connect to the public ports (--allow, --deny) */
PbAddressRules *
pb_tunnel_server_get_address_rules(PbTunnelServer *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_SERVER(self), NULL);
	return self->address_rules;
}

/* How many [client] groups have a token of their own. */
guint
pb_tunnel_server_get_n_client_rules(PbTunnelServer *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_SERVER(self), 0);
	return pb_client_policy_get_n_rules(self->policy);
}

/**
 * pb_tunnel_server_set_metrics:
 * @enabled: whether GET /metrics answers (404 otherwise)
 * @token: (nullable): the bearer token GET /metrics must present; %NULL for none
 */
void
pb_tunnel_server_set_metrics(PbTunnelServer *self, gboolean enabled, const char *token)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));

	self->metrics = enabled;
	if (self->metrics_token != NULL)
		memset(self->metrics_token, 0, strlen(self->metrics_token));
	g_free(self->metrics_token);
	self->metrics_token = g_strdup(token);
}

/* Closes every tunnel ("going away") and stops listening. */
void
pb_tunnel_server_stop(PbTunnelServer *self)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));

	g_clear_pointer(&self->web_port, pb_web_port_free);
	g_clear_pointer(&self->http_web_port, pb_web_port_free);
	g_clear_pointer(&self->sni_web_port, pb_web_port_free);
	soup_server_disconnect(self->soup);
	/* the ports kept for clients that left are closed too */
	pb_client_registry_clear(self->clients);
}

static void
pb_tunnel_server_dispose(GObject *object)
{
	PbTunnelServer *self = PB_TUNNEL_SERVER(object);

	if (self->soup != NULL)
		pb_tunnel_server_stop(self);
	g_clear_object(&self->soup);
	G_OBJECT_CLASS(pb_tunnel_server_parent_class)->dispose(object);
}

static void
pb_tunnel_server_finalize(GObject *object)
{
	PbTunnelServer *self = PB_TUNNEL_SERVER(object);

	g_clear_object(&self->certificate);
	pb_client_registry_free(self->clients);
	g_free(self->listen_host);
	pb_public_ports_clear(&self->public_ports);
	g_free(self->public_host);
	g_free(self->domain);
	g_free(self->url_scheme);
	pb_tunnel_server_set_token(self, NULL);
	g_clear_pointer(&self->policy, pb_client_policy_free);
	g_clear_pointer(&self->address_rules, pb_address_rules_free);
	g_clear_pointer(&self->listen_rules, pb_address_rules_free);
	pb_tunnel_server_set_metrics(self, FALSE, NULL);
	pb_queue_budget_unref(self->queue_budget);
	G_OBJECT_CLASS(pb_tunnel_server_parent_class)->finalize(object);
}

static void
pb_tunnel_server_class_init(PbTunnelServerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = pb_tunnel_server_dispose;
	object_class->finalize = pb_tunnel_server_finalize;
}

static void
pb_tunnel_server_init(PbTunnelServer *self)
{
	self->soup = soup_server_new("server-header", "piggyback/" PACKAGE_VERSION " ", NULL);
	self->address_rules = pb_address_rules_new();
	self->listen_rules = pb_address_rules_new();
	pb_address_rules_set_what(self->listen_rules, "connection(s) to the WebSocket port",
				  "listen-");
	self->features =
	    PB_FEATURES_ALL | PB_FEATURES_PROXY | PB_FEATURE_NAME | PB_FEATURE_SERVICES;
	self->window = PB_FLOW_WINDOW_DEFAULT;
	self->keepalive_s = PB_KEEPALIVE_DEFAULT;
	self->grace_s = PB_GRACE_DEFAULT;
	self->max_clients = PB_MAX_CLIENTS_DEFAULT;
	self->max_connections = PB_MAX_CONNECTIONS_DEFAULT;
	self->max_services = PB_MAX_SERVICES_DEFAULT;
	self->handshake_timeout_s = PB_HANDSHAKE_TIMEOUT_DEFAULT;
	self->max_message_size = PB_MAX_MESSAGE_SIZE;
	self->queue_budget = pb_queue_budget_new(PB_MAX_BUFFER_DEFAULT);
	self->metrics = TRUE;
	self->max_pending = PB_MAX_PENDING_DEFAULT;
	self->max_pending_per_address = PB_MAX_PENDING_PER_ADDRESS_DEFAULT;
	self->clients = pb_client_registry_new();
	self->http_port = -1;
	self->sni_port = -1;
}

/**
 * pb_tunnel_server_set_handshake_limits:
 * @timeout_s: seconds a connection to the WebSocket port has to become a tunnel before it
 *   is closed (plain HTTP requests are answered meanwhile)
 * @max_pending: connections at once that are not a tunnel yet; more are closed at once
 * @max_pending_per_address: of those, from one IP address
 *
 * Call before pb_tunnel_server_start().
 */
void
pb_tunnel_server_set_handshake_limits(PbTunnelServer *self, guint timeout_s, guint max_pending,
				      guint max_pending_per_address)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	self->handshake_timeout_s = timeout_s;
	self->max_pending = max_pending;
	self->max_pending_per_address = max_pending_per_address;
}

/**
 * pb_tunnel_server_set_limits:
 * @max_clients: clients at once, connected or with their port kept (--grace); another
 *   client gets 503 (one coming back with its session takes its own place)
 * @max_connections: open connections per tunnel; another public connection is closed at
 *   once
 */
void
pb_tunnel_server_set_limits(PbTunnelServer *self, guint max_clients, guint max_connections)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	self->max_clients = max_clients;
	self->max_connections = max_connections;
}

/* Services a client may have (forward --expose); one asking for more gets 403. */
void
pb_tunnel_server_set_max_services(PbTunnelServer *self, guint max_services)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	g_return_if_fail(max_services >= 1);
	self->max_services = max_services;
}

/**
 * pb_tunnel_server_set_max_buffer:
 * @bytes: how much all tunnels together may queue towards public connections that do not
 *   read fast enough; a tunnel over its part of it is held back (see PbQueueBudget)
 */
void
pb_tunnel_server_set_max_buffer(PbTunnelServer *self, guint64 bytes)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	pb_queue_budget_set_limit(self->queue_budget, bytes);
}

/* The largest WebSocket message a client may send (see pb_tunnel_set_max_message_size()). */
void
pb_tunnel_server_set_max_message_size(PbTunnelServer *self, guint64 size)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	self->max_message_size = size;
}

/* Seconds a tunneled connection may move no byte before it is closed; 0 = no limit. */
void
pb_tunnel_server_set_idle_timeout(PbTunnelServer *self, guint timeout_s)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	self->idle_timeout_s = timeout_s;
}

/**
 * pb_tunnel_server_set_tunnel_ports:
 * @first: the first public port of the range
 * @last: the last, at least @first
 *
 * Gives each client the lowest port of @first to @last that no other client holds;
 * when every one is held, a new client is refused (503). One port (@first = @last) is
 * pb_tunnel_server_new()'s @tunnel_port.
 */
void
pb_tunnel_server_set_tunnel_ports(PbTunnelServer *self, guint16 first, guint16 last)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	g_return_if_fail(first > 0 && first <= last);
	self->public_ports.first = first;
	self->public_ports.last = last;
}

/* How long a lost client's public port is kept for it (0 = closed at once). */
void
pb_tunnel_server_set_grace(PbTunnelServer *self, guint grace_s)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	self->grace_s = grace_s;
}

/* Seconds between pings to each client; 0 = none (see pb_tunnel_set_keepalive()). */
void
pb_tunnel_server_set_keepalive(PbTunnelServer *self, guint interval_s)
{
	g_return_if_fail(PB_IS_TUNNEL_SERVER(self));
	self->keepalive_s = interval_s;
}

/**
 * pb_tunnel_server_new:
 * @port: the WebSocket port; 0 picks one (see pb_tunnel_server_get_port())
 * @tunnel_host: (nullable): the IP address public listeners bind to; %NULL: every address,
 *   IPv4 and IPv6
 * @tunnel_port: the public port; 0 = random
 * @public_host: (nullable): the host name HELLO advertises; %NULL = the client's Host
 */
PbTunnelServer *
pb_tunnel_server_new(guint16 port, const char *tunnel_host, guint16 tunnel_port,
		     const char *public_host)
{
	PbTunnelServer *self = g_object_new(PB_TYPE_TUNNEL_SERVER, NULL);

	self->port = port;
	self->public_ports.host = g_strdup(tunnel_host);
	self->public_ports.first = self->public_ports.last = tunnel_port;
	self->public_host = g_strdup(public_host);
	soup_server_add_handler(self->soup, NULL, pb_tunnel_server_request_cb, self, NULL);
	return self;
}
