/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "pb-client-policy.h"
#include "pb-client-registry.h"
#include "pb-error.h"
#include "pb-frame.h"
#include "pb-metrics.h"
#include "pb-name.h"
#include "pb-router.h"
#include "pb-server-client.h"
#include "pb-services.h"
#include "pb-text.h"
#include "pb-token.h"
#include "pb-tunnel-server-private.h"
#include "pb-tunnel.h"
#include "pb-web-port.h"
#include "pb-ws-stream.h"

/*
 * The WebSocket port's HTTP side: /healthz, /metrics, and the upgrade of a client. A
 * request to PB_WS_PATH is checked before anything is given (its token, its Host, the
 * names and services it asks for and what its token may claim, a place on the server),
 * answered 101, and the connection taken from libsoup once that is written: the client
 * then gets its public ports and names (those its session kept, or new ones) and HELLO.
 * When its tunnel closes, what it held is freed, or kept for --grace.
 */

/* The names the further services of a request ask for (Piggyback-Services, checked in
 * pb_tunnel_server_check_services()); none without the `services` feature. */
static GPtrArray *
pb_tunnel_server_get_services(PbTunnelServer *self, SoupMessageHeaders *request,
			      PbFeatures features)
{
	const char *header = soup_message_headers_get_one(request, PB_SERVICES_HEADER);
	GPtrArray *names = NULL;

	if ((features & PB_FEATURE_SERVICES) && header != NULL)
		names = pb_services_header_parse(header, self->max_services - 1, NULL);
	return names != NULL ? names : g_ptr_array_new_with_free_func(g_free);
}

/* The protocol 2 features a client's request asks for that this server gives it. */
static PbFeatures
pb_tunnel_server_get_features(PbTunnelServer *self, SoupMessageHeaders *request)
{
	PbFeatures features =
	    self->features &
	    pb_features_parse(soup_message_headers_get_one(request, PB_FEATURES_HEADER));

	if (self->domain == NULL)
		features &= ~PB_FEATURE_NAME;
	if ((features & PB_FEATURES_PROXY) == PB_FEATURES_PROXY)
		features &= ~PB_FEATURE_PROXY_V1; /* one header per connection: the newer one */
	/* connections wait for a lost client as long as its port does, and need credit */
	if (!(features & PB_FEATURE_FLOW) || self->grace_s == 0)
		features &= ~PB_FEATURE_RESUME;
	return features;
}

/* The client went away: every connection on its public port closes with the tunnel. The
 * port itself closes too, or, if the client was lost rather than said goodbye and there is
 * a grace period, stays bound but not accepting, so that nobody else can take it and the
 * same client (its session) gets it back, with its name; with `resume`, its connections
 * too (the tunnel is parked, see pb-tunnel-resume.c). */
static void
pb_tunnel_server_closed_cb(PbTunnel *tunnel, gpointer user_data)
{
	PbServerClient *client = user_data;
	PbTunnelServer *self = PB_TUNNEL_SERVER(client->owner);
	g_autofree char *what = pb_server_client_describe(client);
	PbTunnelStats stats;

	pb_tunnel_get_stats(tunnel, &stats);
	stats.streams_open = stats.send_queue = 0; /* gauges: nothing is open or queued now */
	pb_tunnel_stats_add(&self->ended, &stats);
	pb_client_registry_remove(self->clients, client);
	pb_server_client_close_ports(client);
	if (pb_tunnel_get_said_goodbye(tunnel)) {
		g_message("Client %s disconnected: it said goodbye, %s closed", client->peer, what);
		g_ptr_array_set_size(client->services, 0); /* its ports free for the next now */
	} else if (self->grace_s == 0 || client->session == NULL) {
		g_message("Client %s disconnected, %s closed", client->peer, what);
		g_ptr_array_set_size(client->services, 0);
	} else if (pb_tunnel_is_parked(tunnel)) {
		g_message("Client %s lost, %s kept for it for %u s, with its %u connections",
			  client->peer, what, self->grace_s, pb_tunnel_get_n_streams(tunnel));
		pb_client_registry_keep(self->clients, client, self->grace_s);
	} else {
		g_message("Client %s disconnected, %s kept for it for %u s", client->peer, what,
			  self->grace_s);
		pb_client_registry_keep(self->clients, client, self->grace_s);
	}
	/* we are inside the tunnel's own signal: free it once that has returned */
	pb_server_client_free_later(client);
}

/* The client's RESUME came: what it took over of its lost tunnel's connections. */
static void
pb_tunnel_server_resumed_cb(PbTunnel *tunnel, guint resumed, guint dropped, gpointer user_data)
{
	PbServerClient *client = user_data;

	if (resumed + dropped > 0)
		g_message("Client %s resumed %u connections, %u could not be", client->peer,
			  resumed, dropped);
}

/* The session id a request presents, if it has the form of those the server gives: only
 * those are looked for (each look is a hash per client). */
static const char *
pb_tunnel_server_get_session(SoupMessageHeaders *request)
{
	const char *session = soup_message_headers_get_one(request, PB_SESSION_HEADER);

	return session != NULL && strlen(session) == 32 ? session : NULL;
}

/* Whether another client holds @port: a PbPortTakenFunc. */
static gboolean
pb_tunnel_server_port_taken_cb(guint16 port, gpointer user_data)
{
	PbTunnelServer *self = PB_TUNNEL_SERVER(user_data);

	return pb_client_registry_port_taken(self->clients, port);
}

/* Whether a new client from @address (nullable) may have a public port, see
 * pb_session_table_admit(). */
static PbAdmit
pb_tunnel_server_admit(PbTunnelServer *self, GInetAddress *address)
{
	guint n_ports = pb_public_ports_get_n_range(&self->public_ports);

	return pb_client_registry_admit(self->clients, self->max_clients, n_ports, address);
}

/* The IP address of a request's client, if it has one. */
static GInetAddress *
pb_tunnel_server_remote_address(SoupServerMessage *msg)
{
	GSocketAddress *remote = soup_server_message_get_remote_address(msg);

	return G_IS_INET_SOCKET_ADDRESS(remote)
		   ? g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote))
		   : NULL;
}

/* The Host header without its port, as a client reaches this server. */
static char *
pb_tunnel_server_host_from_header(const char *host)
{
	const char *colon;

	if (host == NULL || *host == '\0')
		return g_strdup("localhost");
	if (host[0] == '[') {
		const char *end = strchr(host, ']');

		return end != NULL ? g_strndup(host + 1, end - host - 1) : g_strdup(host);
	}
	colon = strchr(host, ':');
	return colon != NULL ? g_strndup(host, colon - host) : g_strdup(host);
}

/* Whether the stream libsoup hands over runs over TLS: libsoup 3.2 gives a SoupIOStream
 * whose "base-iostream" is the GTlsServerConnection, so reading and writing it is TLS. */
static gboolean
pb_tunnel_server_stream_is_tls(GIOStream *stream)
{
	g_autoptr(GIOStream) base = pb_ws_stream_unwrap_soup(stream);

	return G_IS_TLS_CONNECTION(stream) || (base != NULL && G_IS_TLS_CONNECTION(base));
}

/* Closes the tunnel of @client, not in the registry, with @code and @reason. */
static void
pb_tunnel_server_refuse(PbServerClient *client, gushort code, const char *reason)
{
	pb_tunnel_close(client->tunnel, code, reason);
	pb_server_client_free_later(client);
}

/* Gives @client, new, @n_services services, each with a public port (unless names only)
 * and a name (with the `name` feature): those its session kept, else new ones. FALSE if it
 * is refused. */
static gboolean
pb_tunnel_server_place_client(PbTunnelServer *self, PbServerClient *client, PbFeatures features,
			      SoupMessageHeaders *request, const char *const *names,
			      guint n_services)
{
	if (pb_client_registry_take_session(self->clients, pb_tunnel_server_get_session(request),
					    client)) {
		g_autofree char *what = pb_server_client_describe(client);

		g_message("Client %s is back: its %s again", client->peer, what);
	} else if (pb_tunnel_server_admit(self, client->address) != PB_ADMIT_OK) {
		/* others took the last place between its request and the upgrade */
		g_message("Refusing client %s: the server filled up during its upgrade",
			  client->peer);
		pb_tunnel_server_refuse(client, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
					"server full");
		return FALSE;
	}
	/* a session kept as many services as the client had then */
	g_ptr_array_set_size(client->services, MIN(client->services->len, n_services));
	while (client->services->len < n_services)
		g_ptr_array_add(client->services, pb_server_service_new());
	for (guint i = 0; i < n_services && !self->public_ports.off; i++) {
		PbServerService *service = client->services->pdata[i];
		PbPublicPorts ports = self->public_ports; /* (unowned) host */
		g_autoptr(GError) error = NULL;

		if (service->listener != NULL)
			continue;
		pb_client_rule_limit_ports(client->rule, &ports);
		service->listener = pb_public_ports_listen(&ports, pb_tunnel_server_port_taken_cb,
							   self, &service->port, &error);
		if (service->listener == NULL) {
			g_warning("Refusing client %s: cannot open a public port: %s", client->peer,
				  error->message);
			pb_tunnel_server_refuse(client, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR,
						"cannot open a public port");
			return FALSE;
		}
	}
	/* a PiggyBack 1.1 client (no Piggyback-Features) never comes back with a session */
	if (soup_message_headers_get_one(request, PB_FEATURES_HEADER) != NULL)
		client->session = pb_server_client_new_session();
	if (!(features & PB_FEATURE_NAME)) {
		for (guint i = 0; i < n_services; i++)
			g_clear_pointer(&pb_server_client_get_service(client, i)->name, g_free);
		return TRUE;
	}
	/* the names asked for were checked in pb_tunnel_server_check_names() */
	if (!pb_client_registry_give_names(self->clients, client, names, n_services)) {
		pb_tunnel_server_refuse(client, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
					"name taken by another client");
		return FALSE;
	}
	return TRUE;
}

/* Where @client's services are reached, for the log: "on port 41877", "on port 41877,
 * named alpha.DOMAIN", "named alpha.DOMAIN (names only)", joined by "; ". */
static char *
pb_tunnel_server_describe_open(PbTunnelServer *self, PbServerClient *client)
{
	g_autoptr(GString) text = g_string_new(NULL);

	for (guint i = 0; i < client->services->len; i++) {
		PbServerService *service = client->services->pdata[i];

		if (i > 0)
			g_string_append(text, "; ");
		if (service->port != 0 && self->public_ports.host != NULL)
			g_string_append_printf(text, "on %s port %u", self->public_ports.host,
					       service->port);
		else if (service->port != 0)
			g_string_append_printf(text, "on port %u", service->port);
		if (service->name != NULL)
			g_string_append_printf(
			    text, "%snamed %s.%s%s", service->port != 0 ? ", " : "", service->name,
			    self->domain, service->port != 0 ? "" : " (names only)");
	}
	return g_string_free(g_steal_pointer(&text), FALSE);
}

static void
pb_tunnel_server_upgraded_cb(SoupServerMessage *msg, gpointer user_data)
{
	PbTunnelServer *self = PB_TUNNEL_SERVER(user_data);
	g_autoptr(GIOStream) connection = NULL;
	g_autoptr(PbHello) hello = NULL;
	g_autofree char *public_host = NULL;
	SoupMessageHeaders *request = soup_server_message_get_request_headers(msg);
	PbFeatures features = pb_tunnel_server_get_features(self, request);
	g_autoptr(GPtrArray) further = NULL;
	g_autofree const char **names = NULL;
	g_autofree char *what = NULL;
	PbServerService *first;
	PbClientRule *rule = pb_client_policy_lookup(
	    self->policy, soup_message_headers_get_one(request, "Authorization"));
	PbTunnel *tunnel;
	PbServerClient *client;

	g_signal_handlers_disconnect_by_data(msg, self);
	public_host = self->public_host != NULL
			  ? g_strdup(self->public_host)
			  : pb_tunnel_server_host_from_header(soup_message_headers_get_one(
				soup_server_message_get_request_headers(msg), "Host"));
	connection = soup_server_message_steal_connection(msg);
	pb_web_port_upgraded(self->web_port, connection);
	if (self->certificate != NULL && !pb_tunnel_server_stream_is_tls(connection)) {
		g_warning("Refusing a client: its connection is not the TLS one");
		g_io_stream_close(connection, NULL, NULL);
		return;
	}

	tunnel = pb_tunnel_new(connection, NULL, soup_server_message_get_uri(msg),
			       SOUP_WEBSOCKET_CONNECTION_SERVER);
	pb_tunnel_set_features(tunnel, features, self->window);
	pb_tunnel_set_keepalive(tunnel, self->keepalive_s);
	pb_tunnel_set_idle_timeout(tunnel, self->idle_timeout_s);
	pb_tunnel_set_max_message_size(tunnel, self->max_message_size);
	pb_tunnel_set_queue_budget(tunnel, self->queue_budget);
	client = pb_server_client_new(tunnel, soup_server_message_get_remote_address(msg),
				      self->max_connections);
	client->owner = self;
	client->address_rules = self->address_rules;
	if (rule != NULL)
		pb_client_rule_adopt(rule, client, self->max_connections);
	further = pb_tunnel_server_get_services(self, request, features);
	names = g_new0(const char *, further->len + 1);
	names[0] = soup_message_headers_get_one(request, PB_NAME_HEADER);
	for (guint i = 0; i < further->len; i++)
		names[i + 1] = further->pdata[i];
	if (!pb_tunnel_server_place_client(self, client, features, request, names,
					   further->len + 1))
		return;
	pb_server_client_open(client);
	g_signal_connect(client->tunnel, "closed", G_CALLBACK(pb_tunnel_server_closed_cb), client);
	pb_client_registry_add(self->clients, client);

	first = pb_server_client_get_service(client, 0);
	hello = pb_hello_new(public_host, first->port, PACKAGE_VERSION);
	hello->features = features; /* a 1.1 client asks for none and is told of none */
	hello->window = self->window;
	hello->session = g_strdup(client->session);
	hello->name = g_strdup(first->name);
	hello->domain = g_strdup(self->domain);
	hello->url_scheme = g_strdup(self->url_scheme);
	hello->url_port = self->url_port;
	for (guint i = 1; i < client->services->len; i++) {
		PbServerService *service = client->services->pdata[i];

		pb_hello_add_service(hello, service->port, service->name);
	}
	hello->grace = MIN(self->grace_s, PB_HELLO_MAX_GRACE);
	pb_tunnel_send_hello(client->tunnel, hello);
	if (features & PB_FEATURE_RESUME) {
		g_signal_connect(client->tunnel, "resumed", G_CALLBACK(pb_tunnel_server_resumed_cb),
				 client);
		pb_tunnel_resume(client->tunnel, client->lost); /* RESUME, right after HELLO */
	}
	g_clear_object(&client->lost); /* without `resume`, its connections close with it */
	what = pb_tunnel_server_describe_open(self, client);
	g_message("Client %s connected: tunnel open %s", client->peer, what);
}

/* Answers @status with @text as the body; @phrase (nullable) replaces the status line's
 * usual reason phrase, which is all of the answer a client shows in its error. */
static void
pb_tunnel_server_reply_full(SoupServerMessage *msg, guint status, const char *phrase,
			    const char *text)
{
	soup_server_message_set_status(msg, status, phrase);
	soup_server_message_set_response(msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY, text,
					 strlen(text));
}

static void
pb_tunnel_server_reply(SoupServerMessage *msg, guint status, const char *text)
{
	pb_tunnel_server_reply_full(msg, status, NULL, text);
}

/* Prometheus' text format, with every counter of the server and of each tunnel port. */
static void
pb_tunnel_server_reply_metrics(PbTunnelServer *self, SoupServerMessage *msg)
{
	g_autoptr(GPtrArray) clients = NULL;
	g_autofree char *body = NULL;
	g_autofree char *refused = NULL;
	g_autofree char *listen_refused = NULL;
	g_autofree char *text = NULL;
	PbTunnelStats totals;
	gsize len;

	if (self->metrics_token != NULL &&
	    !pb_token_authorize(soup_message_headers_get_one(
				    soup_server_message_get_request_headers(msg), "Authorization"),
				self->metrics_token)) {
		soup_message_headers_replace(soup_server_message_get_response_headers(msg),
					     "WWW-Authenticate",
					     "Bearer realm=\"piggyback-metrics\"");
		pb_tunnel_server_reply(msg, SOUP_STATUS_UNAUTHORIZED,
				       "/metrics requires a bearer token: the metrics token, or "
				       "else the tunnel token.\n");
		return;
	}
	clients = pb_tunnel_server_list_clients(self);
	pb_tunnel_server_get_totals(self, &totals);
	body = pb_metrics_render(&totals, clients, pb_tunnel_server_get_n_pending(self),
				 self->queue_budget);
	refused = pb_address_rules_render_metrics(
	    self->address_rules, "piggyback_address_refused_total",
	    "Public connections refused by allow=, deny= and max-connections-per-address= (the "
	    "server's and [client] groups').");
	listen_refused = pb_address_rules_render_metrics(
	    self->listen_rules, "piggyback_listen_refused_total",
	    "Connections to the WebSocket port refused by listen-allow= and listen-deny=.");
	text = g_strconcat(body, refused, listen_refused, NULL);
	len = strlen(text);
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, "text/plain; version=0.0.4; charset=utf-8",
					 SOUP_MEMORY_TAKE, g_steal_pointer(&text), len);
}

/* Whether @asked (nullable), a name a request asks for, is free: 409 if another client
 * holds it. */
static gboolean
pb_tunnel_server_check_name_free(PbTunnelServer *self, SoupServerMessage *msg,
				 SoupMessageHeaders *request, const char *asked)
{
	g_autofree char *phrase = NULL;

	if (asked == NULL || !pb_client_registry_name_taken(self->clients, asked,
							    pb_tunnel_server_get_session(request)))
		return TRUE;
	g_message("Refusing a client: the name %s is held by another client", asked);
	phrase = g_strdup_printf("The name %s is held by another client", asked);
	pb_tunnel_server_reply_full(msg, SOUP_STATUS_CONFLICT, phrase,
				    "Another client holds this name: ask for another one.\n");
	return FALSE;
}

/* The names a client asks for (Piggyback-Name, and Piggyback-Services for its further
 * services), if the server has names: 400 if one is not a name, or asked for twice; 409
 * if another client holds it. And how many services: 403 over --max-services. */
static gboolean
pb_tunnel_server_check_names(PbTunnelServer *self, SoupServerMessage *msg,
			     SoupMessageHeaders *request)
{
	PbFeatures features = pb_tunnel_server_get_features(self, request);
	const char *asked = soup_message_headers_get_one(request, PB_NAME_HEADER);
	const char *services = soup_message_headers_get_one(request, PB_SERVICES_HEADER);
	g_autoptr(GPtrArray) further = NULL;
	g_autoptr(GError) error = NULL;

	if ((features & PB_FEATURE_NAME) && asked != NULL && !pb_name_is_valid(asked)) {
		pb_tunnel_server_reply_full(
		    msg, SOUP_STATUS_BAD_REQUEST, "Invalid name",
		    "A tunnel name is 1 to 63 characters of a-z, 0-9 and -, not starting or "
		    "ending with -.\n");
		return FALSE;
	}
	if ((features & PB_FEATURE_SERVICES) && services != NULL) {
		further = pb_services_header_parse(services, self->max_services - 1, &error);
		if (further == NULL && g_error_matches(error, PB_ERROR, PB_ERROR_REFUSED)) {
			g_autofree char *text =
			    g_strdup_printf("This server takes at most %u services per client.\n",
					    self->max_services);

			g_message("Refusing a client: it asks for more than %u services "
				  "(--max-services)",
				  self->max_services);
			pb_tunnel_server_reply_full(msg, SOUP_STATUS_FORBIDDEN,
						    "Too many services (--max-services)", text);
			return FALSE;
		}
		if (further == NULL) {
			g_autofree char *text = g_strdup_printf("Bad %s header: %s.\n",
								PB_SERVICES_HEADER, error->message);

			pb_tunnel_server_reply_full(msg, SOUP_STATUS_BAD_REQUEST,
						    "Invalid services", text);
			return FALSE;
		}
	}
	if (!(features & PB_FEATURE_NAME))
		return TRUE;
	if (!pb_tunnel_server_check_name_free(self, msg, request, asked))
		return FALSE;
	for (guint i = 0; further != NULL && i < further->len; i++) {
		if (asked != NULL && g_strcmp0(further->pdata[i], asked) == 0) {
			pb_tunnel_server_reply_full(msg, SOUP_STATUS_BAD_REQUEST,
						    "Invalid services",
						    "Two services ask for the same name.\n");
			return FALSE;
		}
		if (!pb_tunnel_server_check_name_free(self, msg, request, further->pdata[i]))
			return FALSE;
	}
	return TRUE;
}

/* What the token of @rule (a [client] group) may claim: 403 with the reason if it asks for
 * more. */
static gboolean
pb_tunnel_server_check_rule(PbTunnelServer *self, SoupServerMessage *msg,
			    SoupMessageHeaders *request, PbClientRule *rule)
{
	PbFeatures features = pb_tunnel_server_get_features(self, request);
	const char *asked = soup_message_headers_get_one(request, PB_NAME_HEADER);
	g_autoptr(GPtrArray) further = pb_tunnel_server_get_services(self, request, features);
	g_autofree char *reason = NULL;
	g_autofree char *text = NULL;

	/* without names (no --domain, or a client that takes none) there is no name to check,
	 * but its services are counted all the same */
	if (pb_client_rule_check_services(rule, 1 + further->len, &reason) &&
	    !(features & PB_FEATURE_NAME))
		return TRUE;
	if (reason == NULL && pb_client_rule_check_name(rule, asked, &reason)) {
		/* each further service's name too; one that asks for none is named after the
		 * first, which the rule allowed */
		for (guint i = 0; i < further->len && reason == NULL; i++) {
			if (further->pdata[i] != NULL)
				pb_client_rule_check_name(rule, further->pdata[i], &reason);
		}
		if (reason == NULL)
			return TRUE;
	}
	g_message("Refusing client %s: %s", pb_client_rule_get_name(rule), reason);
	text = g_strdup_printf("%s.\n", reason);
	pb_tunnel_server_reply_full(msg, SOUP_STATUS_FORBIDDEN, reason, text);
	return FALSE;
}

/* NAME.DOMAIN is a tunnel's, never the server's own. A request for it reaches libsoup on
 * a TLS port, where the router cannot answer before the handshake, when no client holds
 * the name: 503 with Retry-After if its client is away within its grace period, as the
 * router answers on a plain port, else 404. Returns: whether @msg was such a request */
static gboolean
pb_tunnel_server_reply_name(PbTunnelServer *self, SoupServerMessage *msg,
			    SoupMessageHeaders *request)
{
	g_autofree char *name = NULL;
	g_autofree char *text = NULL;
	g_autofree char *retry = NULL;

	if (self->domain == NULL)
		return FALSE;
	name = pb_name_for_host(soup_message_headers_get_one(request, "Host"), self->domain);
	if (name == NULL)
		return FALSE;
	if (!pb_client_registry_is_away(self->clients, name)) {
		text = g_strdup_printf("No tunnel is named %s.%s.\n", name, self->domain);
		pb_tunnel_server_reply(msg, SOUP_STATUS_NOT_FOUND, text);
		return TRUE;
	}
	retry = g_strdup_printf("%u", PB_ROUTE_RETRY_AFTER_S);
	soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Retry-After",
				     retry);
	text = g_strdup_printf("The client of %s.%s is away: it has a moment to come back.\n", name,
			       self->domain);
	pb_tunnel_server_reply(msg, SOUP_STATUS_SERVICE_UNAVAILABLE, text);
	return TRUE;
}

void
pb_tunnel_server_request_cb(SoupServer *soup, SoupServerMessage *msg, const char *path,
			    GHashTable *query, gpointer user_data)
{
	PbTunnelServer *self = PB_TUNNEL_SERVER(user_data);
	SoupMessageHeaders *request = soup_server_message_get_request_headers(msg);
	const char *authorization = soup_message_headers_get_one(request, "Authorization");
	PbClientRule *rule = NULL;
	g_autoptr(GError) error = NULL;
	PbAdmit admit = PB_ADMIT_OK;

	/* a client's upgrade may name any host; any other request for NAME.DOMAIN is a
	 * tunnel's */
	if (g_strcmp0(path, PB_WS_PATH) != 0 && pb_tunnel_server_reply_name(self, msg, request))
		return;
	if (g_strcmp0(path, "/healthz") == 0) {
		if (self->draining)
			pb_tunnel_server_reply(msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "draining\n");
		else
			pb_tunnel_server_reply(msg, SOUP_STATUS_OK, "ok\n");
		return;
	}
	if (g_strcmp0(path, "/metrics") == 0 && self->metrics) {
		pb_tunnel_server_reply_metrics(self, msg);
		return;
	}
	if (g_strcmp0(path, PB_WS_PATH) != 0) {
		pb_tunnel_server_reply(
		    msg, SOUP_STATUS_NOT_FOUND,
		    "Not found. This is a PiggyBack tunnel server: clients connect to " PB_WS_PATH
		    " with `piggyback forward`; /healthz and /metrics are for monitoring.\n");
		return;
	}
	/* before anything else is looked at: no upgrade, so no public port, without it */
	rule = pb_client_policy_lookup(self->policy, authorization);
	if (rule == NULL && (self->token != NULL || self->policy != NULL) &&
	    (self->token == NULL || !pb_token_authorize(authorization, self->token))) {
		GSocketAddress *remote = soup_server_message_get_remote_address(msg);
		g_autofree char *peer =
		    remote != NULL ? g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(remote))
				   : g_strdup("?");

		g_message("Refusing client %s: missing or wrong token", peer);
		soup_message_headers_replace(soup_server_message_get_response_headers(msg),
					     "WWW-Authenticate", "Bearer realm=\"piggyback\"");
		pb_tunnel_server_reply(msg, SOUP_STATUS_UNAUTHORIZED,
				       "This tunnel server requires a token.\n");
		return;
	}
	/* HELLO tells the client the host it reached us by: a Host header that names no host
	 * (escape sequences, spaces) is refused here, as the client would refuse its HELLO */
	if (self->public_host == NULL) {
		g_autofree char *host = pb_tunnel_server_host_from_header(
		    soup_message_headers_get_one(request, "Host"));

		if (!pb_text_is_host(host)) {
			pb_tunnel_server_reply_full(
			    msg, SOUP_STATUS_BAD_REQUEST, "Bad Host header",
			    "The Host header names no host name or IP address, which a tunnel's "
			    "access URL is made of (or start the server with --public-host).\n");
			return;
		}
	}
	if (!soup_websocket_server_check_handshake(msg, NULL, NULL, NULL, &error)) {
		g_autofree char *text = g_strdup_printf(
		    "This is a PiggyBack tunnel server: %s is its WebSocket endpoint, reached "
		    "with `piggyback forward`, not a web page (%s).\n",
		    PB_WS_PATH, error->message);

		pb_tunnel_server_reply(msg, SOUP_STATUS_BAD_REQUEST, text);
		return;
	}
	if (!pb_tunnel_server_check_names(self, msg, request) ||
	    (rule != NULL && !pb_tunnel_server_check_rule(self, msg, request, rule)))
		return;
	if (self->public_ports.off &&
	    !(pb_tunnel_server_get_features(self, request) & PB_FEATURE_NAME)) {
		g_message("Refusing a client: it asks for no name, and this server gives names "
			  "only (--tunnel-port off)");
		pb_tunnel_server_reply_full(
		    msg, SOUP_STATUS_FORBIDDEN, "This server gives names only (--tunnel-port off)",
		    "This tunnel server gives tunnels names, not public ports: a client that "
		    "takes names (PiggyBack 2, with the name feature) is needed.\n");
		return;
	}
	/* a client coming back with a session the server holds takes its own place; any other
	 * (an unknown or made-up session too) is a new client */
	if (!pb_client_registry_claim_session(self->clients, pb_tunnel_server_get_session(request)))
		admit = pb_tunnel_server_admit(self, pb_tunnel_server_remote_address(msg));
	if (admit == PB_ADMIT_FULL) {
		g_message("Refusing a client: %u tunnels are open or kept for their clients "
			  "(--max-clients)",
			  self->max_clients);
		pb_tunnel_server_reply_full(
		    msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "Server full (--max-clients)",
		    "This tunnel server has as many clients as it takes.\n");
		return;
	}
	if (admit == PB_ADMIT_NO_PORT) {
		g_autofree char *text = g_strdup_printf(
		    "This tunnel server has no free public port: clients hold every port "
		    "from %u to %u.\n",
		    self->public_ports.first, self->public_ports.last);

		g_message("Refusing a client: every public port from %u to %u is held "
			  "(--tunnel-port)",
			  self->public_ports.first, self->public_ports.last);
		pb_tunnel_server_reply_full(msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
					    "No free public port (--tunnel-port)", text);
		return;
	}
	/* no extensions are offered: permessage-deflate is never negotiated */
	soup_websocket_server_process_handshake(msg, NULL, NULL, NULL, NULL);
	g_signal_connect(msg, "wrote-informational", G_CALLBACK(pb_tunnel_server_upgraded_cb),
			 self);
}
