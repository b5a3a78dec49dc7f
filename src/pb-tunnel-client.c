/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "pb-client-services.h"
#include "pb-local-dialer.h"
#include "pb-local-opener.h"
#include "pb-lost-tunnel.h"
#include "pb-name.h"
#include "pb-text.h"
#include "pb-tunnel-client-private.h"
#include "pb-tunnel.h"

/*
 * `piggyback forward`: runs a PbTunnel on the connection pb-tunnel-client-connect.c
 * dials, takes its HELLO (pb-tunnel-client-hello.c), and answers every OPEN with a fresh
 * connection to the local service. It is also the model the views (D-Bus, notifications,
 * the plain lines of pb-main.c) show: state, URLs, counters and recent events as
 * properties and signals.
 */

guint pb_tunnel_client_signals[PB_TUNNEL_CLIENT_SIGNAL_LAST] = {0};
GParamSpec *pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_LAST] = {NULL};

G_DEFINE_FINAL_TYPE(PbTunnelClient, pb_tunnel_client, G_TYPE_OBJECT)

G_DEFINE_ENUM_TYPE(PbTunnelClientState, pb_tunnel_client_state,
		   G_DEFINE_ENUM_VALUE(PB_TUNNEL_CLIENT_STATE_CONNECTING, "connecting"),
		   G_DEFINE_ENUM_VALUE(PB_TUNNEL_CLIENT_STATE_ONLINE, "online"),
		   G_DEFINE_ENUM_VALUE(PB_TUNNEL_CLIENT_STATE_RECONNECTING, "reconnecting"),
		   G_DEFINE_ENUM_VALUE(PB_TUNNEL_CLIENT_STATE_OFFLINE, "offline"))

static void
pb_tunnel_client_event_free(PbTunnelClientEvent *event)
{
	g_free(event->message);
	g_free(event);
}

void
pb_tunnel_client_add_event(PbTunnelClient *self, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* Remembers one line of history (the last PB_TUNNEL_CLIENT_MAX_EVENTS) and emits "event". */
void
pb_tunnel_client_add_event(PbTunnelClient *self, const char *format, ...)
{
	PbTunnelClientEvent *event = g_new0(PbTunnelClientEvent, 1);
	g_autofree char *text = NULL;
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	/* it goes to terminals, the log and D-Bus, and may quote the server */
	event->message = pb_text_escape(text, -1);
	event->time = g_get_real_time();
	g_queue_push_tail(&self->events, event);
	while (self->events.length > PB_TUNNEL_CLIENT_MAX_EVENTS)
		pb_tunnel_client_event_free(g_queue_pop_head(&self->events));
	g_debug("event: %s", event->message);
	g_signal_emit(self, pb_tunnel_client_signals[PB_TUNNEL_CLIENT_SIGNAL_EVENT], 0, event->time,
		      event->message);
}

void
pb_tunnel_client_set_state(PbTunnelClient *self, PbTunnelClientState state)
{
	if (self->state == state)
		return;
	self->state = state;
	g_object_notify_by_pspec(G_OBJECT(self),
				 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_STATE]);
	if (state != PB_TUNNEL_CLIENT_STATE_ONLINE && self->connected_since != 0) {
		self->connected_since = 0;
		g_object_notify_by_pspec(
		    G_OBJECT(self), pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_CONNECTED_SINCE]);
	}
}

/* Drops the current tunnel, keeping what it counted. */
void
pb_tunnel_client_drop_tunnel(PbTunnelClient *self)
{
	guint n_services = pb_tunnel_client_get_n_services(self);
	g_autofree PbServiceStats *stats = NULL;

	if (self->tunnel == NULL)
		return;
	self->bytes_in_before += pb_tunnel_get_bytes_in(self->tunnel);
	self->bytes_out_before += pb_tunnel_get_bytes_out(self->tunnel);
	stats = g_new0(PbServiceStats, n_services);
	pb_tunnel_get_service_stats(self->tunnel, stats, n_services);
	for (guint i = 0; i < n_services; i++) {
		self->service_before[i].bytes_in += stats[i].bytes_in;
		self->service_before[i].bytes_out += stats[i].bytes_out;
	}
	g_signal_handlers_disconnect_by_data(self->tunnel, self);
	g_clear_object(&self->tunnel);
}

/* What a part of the client says (a PbLocalOpenerEventFunc, a PbLostTunnelEventFunc). */
static void
pb_tunnel_client_part_event_cb(const char *message, gpointer user_data)
{
	pb_tunnel_client_add_event(PB_TUNNEL_CLIENT(user_data), "%s", message);
}

void
pb_tunnel_client_open_requested_cb(PbTunnel *tunnel, PbStream *stream, gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(user_data);
	guint32 service = pb_stream_get_service(stream);
	PbLocalDialer *dialer = service == 0
				    ? self->local_dialer
				    : pb_client_services_get_dialer(self->services, service);
	const char *address;

	if (dialer == NULL) {
		/* a service we do not have: the server made it up */
		g_info("Refusing a connection for service %u: there is no such service", service);
		pb_tunnel_refuse_stream(tunnel, stream);
		return;
	}
	address = service == 0 ? self->local_address
			       : pb_client_services_get(self->services, service - 1)->address;
	if (!pb_local_opener_open(self->opener, tunnel, stream, dialer, address, self->cancellable))
		return;
	self->connections_total++;
	self->service_before[service].streams_total++; /* @dialer: a service we have */
	g_object_notify_by_pspec(G_OBJECT(self),
				 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_CONNECTIONS_TOTAL]);
}

/* The features we ask for: those set, and `services` when there are further services. */
PbFeatures
pb_tunnel_client_get_asked(PbTunnelClient *self)
{
	return self->features |
	       (pb_client_services_get_len(self->services) > 0 ? PB_FEATURE_SERVICES : 0);
}

/**
 * pb_tunnel_client_set_features:
 * @features: the protocol v2 features to ask for (all by default; 0 = version 1 only)
 */
void
pb_tunnel_client_set_features(PbTunnelClient *self, PbFeatures features)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	self->features = features;
}

/**
 * pb_tunnel_client_set_name:
 * @name: (nullable): the name to ask for (pb_name_is_valid()); %NULL: the server picks one
 *
 * A server with names (serve --domain) reaches the tunnel as NAME.DOMAIN too.
 */
void
pb_tunnel_client_set_name(PbTunnelClient *self, const char *name)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	g_return_if_fail(name == NULL || pb_name_is_valid(name));
	g_free(self->name);
	self->name = g_strdup(name);
}

/* The protocol v2 features in use, once HELLO came; 0 means version 1. */
PbFeatures
pb_tunnel_client_get_features(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), 0);
	return self->tunnel != NULL ? pb_tunnel_get_features(self->tunnel) : 0;
}

/**
 * pb_tunnel_client_set_token:
 * @token: (nullable): sent as `Authorization: Bearer` on the upgrade; a valid token (see
 *   pb_token_validate())
 *
 * Call before pb_tunnel_client_connect_async().
 */
void
pb_tunnel_client_set_token(PbTunnelClient *self, const char *token)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));

	g_free(self->token);
	self->token = g_strdup(token);
}

/**
 * pb_tunnel_client_set_tls:
 * @database: (nullable): the CAs to trust for a wss:// server; %NULL = the system's
 * @pin_sha256: (nullable): the SHA-256 of the server certificate's DER, as
 *   pb_tls_pin_parse() returns it; the certificate must then be this one (a matching pin
 *   also accepts a certificate no trusted CA signed, or made out for another name)
 *
 * Call before pb_tunnel_client_connect_async().
 */
void
pb_tunnel_client_set_tls(PbTunnelClient *self, GTlsDatabase *database, const char *pin_sha256)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	g_return_if_fail(database == NULL || G_IS_TLS_DATABASE(database));

	g_set_object(&self->tls_database, database);
	g_free(self->pin_sha256);
	self->pin_sha256 = g_strdup(pin_sha256);
}

/* Returns: (nullable): tcp://host:port once the server said it */
const char *
pb_tunnel_client_get_access_url(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), NULL);
	return self->access_url;
}

/* Returns: (nullable): http://host:port once the server said it */
const char *
pb_tunnel_client_get_http_url(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), NULL);
	return self->http_url;
}

/* Returns: (nullable): the tunnel's name, as the server gave it while online; %NULL
 * without names (a server without --domain, or a client without protocol 2) */
const char *
pb_tunnel_client_get_name(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), NULL);
	return self->given_name;
}

/* Returns: (nullable): the host name the server told, once it did */
const char *
pb_tunnel_client_get_public_host(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), NULL);
	return self->public_host;
}

/* Returns: the public port, 0 until the server said it */
guint16
pb_tunnel_client_get_tunnel_port(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), 0);
	return self->tunnel_port;
}

PbTunnelClientState
pb_tunnel_client_get_state(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), PB_TUNNEL_CLIENT_STATE_OFFLINE);
	return self->state;
}

/* Returns: the WebSocket URL the client dials */
const char *
pb_tunnel_client_get_server_url(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), NULL);
	return self->server_url;
}

/* Returns: host:port of the local service */
const char *
pb_tunnel_client_get_local_address(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), NULL);
	return self->local_address;
}

/* Returns: Unix µs of the HELLO that brought the tunnel online, 0 when it is not */
gint64
pb_tunnel_client_get_connected_since(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), 0);
	return self->connected_since;
}

/* Returns: how many public connections the server opened, over every tunnel */
guint64
pb_tunnel_client_get_connections_total(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), 0);
	return self->connections_total;
}

/* Returns: how many connections are open now (not notified: poll it) */
guint
pb_tunnel_client_get_connections_active(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), 0);
	/* with `resume`, those a lost tunnel keeps for the next are open too */
	return (self->tunnel != NULL ? pb_tunnel_get_n_streams(self->tunnel) : 0) +
	       pb_lost_tunnel_get_n_streams(self->lost);
}

/* Returns: bytes received from the server, over every tunnel (not notified: poll it) */
guint64
pb_tunnel_client_get_bytes_in(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), 0);
	return self->bytes_in_before +
	       (self->tunnel != NULL ? pb_tunnel_get_bytes_in(self->tunnel) : 0);
}

/* Returns: bytes sent to the server, over every tunnel (not notified: poll it) */
guint64
pb_tunnel_client_get_bytes_out(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), 0);
	return self->bytes_out_before +
	       (self->tunnel != NULL ? pb_tunnel_get_bytes_out(self->tunnel) : 0);
}

/* Returns: (transfer none) (element-type PbTunnelClientEvent): the last events, oldest first */
const GQueue *
pb_tunnel_client_get_recent_events(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), NULL);
	return &self->events;
}

/* The largest WebSocket message the server may send (see pb_tunnel_set_max_message_size()). */
void
pb_tunnel_client_set_max_message_size(PbTunnelClient *self, guint64 size)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	self->max_message_size = size;
}

/**
 * pb_tunnel_client_set_max_connections:
 * @max_connections: connections to the local service at once, at least 1
 *
 * An OPEN beyond them is answered with CLOSE at once, without a local connection; an
 * event says how many were refused, at most every 10 s.
 */
void
pb_tunnel_client_set_max_connections(PbTunnelClient *self, guint max_connections)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	g_return_if_fail(max_connections >= 1);
	pb_local_opener_set_max_connections(self->opener, max_connections);
}

/* Seconds a connection to the local service may take (PB_LOCAL_CONNECT_TIMEOUT_S). */
void
pb_tunnel_client_set_local_connect_timeout(PbTunnelClient *self, guint timeout_s)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	pb_local_dialer_set_timeout(self->local_dialer, timeout_s);
	pb_client_services_set_timeout(self->services, timeout_s);
}

/**
 * pb_tunnel_client_add_service:
 * @spec: a further service (forward --expose): the public reaches it on a port (and name)
 *   of its own; needs a server with the `services` feature
 *
 * Call before connecting.
 */
void
pb_tunnel_client_add_service(PbTunnelClient *self, const PbServiceSpec *spec)
{
	guint n_services;

	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	pb_client_services_add(self->services, spec);
	n_services = pb_tunnel_client_get_n_services(self);
	self->service_before = g_renew(PbServiceStats, self->service_before, n_services);
	memset(&self->service_before[n_services - 1], 0, sizeof(PbServiceStats));
	pb_tunnel_client_update_services(self);
}

/* Returns: how many services the client has: the first one and the further ones */
guint
pb_tunnel_client_get_n_services(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), 1);
	return 1 + pb_client_services_get_len(self->services);
}

/**
 * pb_tunnel_client_get_service_stats:
 * @stats: (out caller-allocates) (array length=n_stats): the counters of services 0 (the
 *   first) to @n_stats - 1, at most pb_tunnel_client_get_n_services()
 *
 * Each service's share of the client's counters, over every tunnel: connections the
 * server handed over (answered) and open now, bytes in and out. Not notified: poll them.
 */
void
pb_tunnel_client_get_service_stats(PbTunnelClient *self, PbServiceStats *stats, guint n_stats)
{
	g_autofree PbServiceStats *now = NULL;

	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	g_return_if_fail(n_stats <= pb_tunnel_client_get_n_services(self));

	now = g_new0(PbServiceStats, n_stats);
	if (self->tunnel != NULL)
		pb_tunnel_get_service_stats(self->tunnel, now, n_stats);
	for (guint i = 0; i < n_stats; i++) {
		stats[i] = self->service_before[i];
		stats[i].streams_open = now[i].streams_open;
		stats[i].bytes_in += now[i].bytes_in;
		stats[i].bytes_out += now[i].bytes_out;
	}
}

/* Returns: (transfer none): every service, the first first, as (name, local address,
 * access URL, HTTP URL), "" for what is not known: D-Bus' Services */
GVariant *
pb_tunnel_client_get_services_variant(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), NULL);
	return self->services_variant;
}

/* Returns: (transfer none): the further services, and where the server put them */
PbClientServices *
pb_tunnel_client_get_services(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), NULL);
	return self->services;
}

/* Seconds between pings to the server; 0 = none (see pb_tunnel_set_keepalive()). */
void
pb_tunnel_client_set_keepalive(PbTunnelClient *self, guint interval_s)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	self->keepalive_s = interval_s;
}

/**
 * pb_tunnel_client_set_auto_reconnect:
 *
 * When on, losing an online tunnel is no "disconnected": the client goes "reconnecting"
 * and dials again, waiting 0.5 s, then longer each time up to 30 s, with jitter, until the
 * server takes it or refuses it for good (401, 403: then "disconnected").
 */
void
pb_tunnel_client_set_auto_reconnect(PbTunnelClient *self, gboolean auto_reconnect)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	self->auto_reconnect = auto_reconnect;
}

static void
pb_tunnel_client_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(object);

	switch (prop_id) {
	case PB_TUNNEL_CLIENT_PROP_STATE:
		g_value_set_enum(value, self->state);
		break;
	case PB_TUNNEL_CLIENT_PROP_SERVER_URL:
		g_value_set_string(value, self->server_url);
		break;
	case PB_TUNNEL_CLIENT_PROP_LOCAL_ADDRESS:
		g_value_set_string(value, self->local_address);
		break;
	case PB_TUNNEL_CLIENT_PROP_ACCESS_URL:
		g_value_set_string(value, self->access_url);
		break;
	case PB_TUNNEL_CLIENT_PROP_HTTP_URL:
		g_value_set_string(value, self->http_url);
		break;
	case PB_TUNNEL_CLIENT_PROP_NAME:
		g_value_set_string(value, self->given_name);
		break;
	case PB_TUNNEL_CLIENT_PROP_PUBLIC_HOST:
		g_value_set_string(value, self->public_host);
		break;
	case PB_TUNNEL_CLIENT_PROP_TUNNEL_PORT:
		g_value_set_uint(value, self->tunnel_port);
		break;
	case PB_TUNNEL_CLIENT_PROP_CONNECTED_SINCE:
		g_value_set_int64(value, self->connected_since);
		break;
	case PB_TUNNEL_CLIENT_PROP_CONNECTIONS_TOTAL:
		g_value_set_uint64(value, self->connections_total);
		break;
	case PB_TUNNEL_CLIENT_PROP_CONNECTIONS_ACTIVE:
		g_value_set_uint(value, pb_tunnel_client_get_connections_active(self));
		break;
	case PB_TUNNEL_CLIENT_PROP_BYTES_IN:
		g_value_set_uint64(value, pb_tunnel_client_get_bytes_in(self));
		break;
	case PB_TUNNEL_CLIENT_PROP_BYTES_OUT:
		g_value_set_uint64(value, pb_tunnel_client_get_bytes_out(self));
		break;
	case PB_TUNNEL_CLIENT_PROP_SERVICES:
		g_value_set_variant(value, self->services_variant);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
pb_tunnel_client_dispose(GObject *object)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(object);

	g_cancellable_cancel(self->cancellable);
	g_clear_handle_id(&self->retry_id, g_source_remove);
	g_clear_pointer(&self->opener, pb_local_opener_free);
	g_clear_pointer(&self->lost, pb_lost_tunnel_free);
	if (self->tunnel != NULL) {
		g_signal_handlers_disconnect_by_data(self->tunnel, self);
		g_clear_object(&self->tunnel);
	}
	G_OBJECT_CLASS(pb_tunnel_client_parent_class)->dispose(object);
}

static void
pb_tunnel_client_finalize(GObject *object)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(object);

	g_uri_unref(self->server_uri);
	g_clear_object(&self->local_dialer);
	pb_client_services_free(self->services);
	g_object_unref(self->cancellable);
	g_free(self->access_url);
	g_free(self->http_url);
	g_free(self->name);
	g_free(self->public_host);
	g_free(self->server_url);
	g_free(self->local_address);
	g_queue_clear_full(&self->events, (GDestroyNotify)pb_tunnel_client_event_free);
	g_free(self->token);
	g_clear_object(&self->tls_database);
	g_free(self->pin_sha256);
	g_free(self->session);
	g_free(self->refusal);
	g_free(self->service_before);
	g_clear_pointer(&self->services_variant, g_variant_unref);
	G_OBJECT_CLASS(pb_tunnel_client_parent_class)->finalize(object);
}

static void
pb_tunnel_client_class_init(PbTunnelClientClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = pb_tunnel_client_dispose;
	object_class->finalize = pb_tunnel_client_finalize;
	object_class->get_property = pb_tunnel_client_get_property;

#define PB_PROP_FLAGS (G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS)
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_STATE] =
	    g_param_spec_enum("state", NULL, NULL, PB_TYPE_TUNNEL_CLIENT_STATE,
			      PB_TUNNEL_CLIENT_STATE_OFFLINE, PB_PROP_FLAGS);
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_SERVER_URL] =
	    g_param_spec_string("server-url", NULL, NULL, NULL, PB_PROP_FLAGS);
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_LOCAL_ADDRESS] =
	    g_param_spec_string("local-address", NULL, NULL, NULL, PB_PROP_FLAGS);
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_ACCESS_URL] =
	    g_param_spec_string("access-url", NULL, NULL, NULL, PB_PROP_FLAGS);
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_HTTP_URL] =
	    g_param_spec_string("http-url", NULL, NULL, NULL, PB_PROP_FLAGS);
	/* the name HELLO gave (NAME of http(s)://NAME.DOMAIN), while online; NULL without */
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_NAME] =
	    g_param_spec_string("name", NULL, NULL, NULL, PB_PROP_FLAGS);
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_PUBLIC_HOST] =
	    g_param_spec_string("public-host", NULL, NULL, NULL, PB_PROP_FLAGS);
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_TUNNEL_PORT] =
	    g_param_spec_uint("tunnel-port", NULL, NULL, 0, G_MAXUINT16, 0, PB_PROP_FLAGS);
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_CONNECTED_SINCE] =
	    g_param_spec_int64("connected-since", NULL, NULL, 0, G_MAXINT64, 0, PB_PROP_FLAGS);
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_CONNECTIONS_TOTAL] =
	    g_param_spec_uint64("connections-total", NULL, NULL, 0, G_MAXUINT64, 0, PB_PROP_FLAGS);
	/* The last three change with every packet and are never notified: poll them. */
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_CONNECTIONS_ACTIVE] =
	    g_param_spec_uint("connections-active", NULL, NULL, 0, G_MAXUINT, 0, PB_PROP_FLAGS);
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_BYTES_IN] =
	    g_param_spec_uint64("bytes-in", NULL, NULL, 0, G_MAXUINT64, 0, PB_PROP_FLAGS);
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_BYTES_OUT] =
	    g_param_spec_uint64("bytes-out", NULL, NULL, 0, G_MAXUINT64, 0, PB_PROP_FLAGS);
	/* a(ssss): every service, see pb_tunnel_client_get_services_variant(); notified when
	 * one changes (online, offline, reconnected) */
	pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_SERVICES] = g_param_spec_variant(
	    "services", NULL, NULL, G_VARIANT_TYPE("a(ssss)"), NULL, PB_PROP_FLAGS);
#undef PB_PROP_FLAGS
	g_object_class_install_properties(object_class, PB_TUNNEL_CLIENT_PROP_LAST,
					  pb_tunnel_client_props);

	/**
	 * PbTunnelClient::ready:
	 * @access_url: tcp://host:port
	 * @http_url: http://host:port
	 *
	 * The server opened the public port.
	 */
	pb_tunnel_client_signals[PB_TUNNEL_CLIENT_SIGNAL_READY] =
	    g_signal_new("ready", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
			 G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
	/**
	 * PbTunnelClient::disconnected:
	 * @reason: why, in words
	 *
	 * The tunnel is over.
	 */
	pb_tunnel_client_signals[PB_TUNNEL_CLIENT_SIGNAL_DISCONNECTED] =
	    g_signal_new("disconnected", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
	/**
	 * PbTunnelClient::event:
	 * @time: Unix µs
	 * @message: what happened, translated
	 *
	 * Something worth a line in a log or an applet happened (see
	 * pb_tunnel_client_get_recent_events()).
	 */
	pb_tunnel_client_signals[PB_TUNNEL_CLIENT_SIGNAL_EVENT] =
	    g_signal_new("event", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
			 G_TYPE_NONE, 2, G_TYPE_INT64, G_TYPE_STRING);
}

static void
pb_tunnel_client_init(PbTunnelClient *self)
{
	self->cancellable = g_cancellable_new();
	self->features = PB_FEATURES_ALL;
	self->keepalive_s = PB_KEEPALIVE_DEFAULT;
	self->max_message_size = PB_MAX_MESSAGE_SIZE;
	self->opener = pb_local_opener_new(pb_tunnel_client_part_event_cb, self);
	self->lost = pb_lost_tunnel_new(pb_tunnel_client_part_event_cb, self);
	self->state = PB_TUNNEL_CLIENT_STATE_OFFLINE;
	g_queue_init(&self->events);
}

/**
 * pb_tunnel_client_new:
 * @server_url: a resolved WebSocket URL (see pb_server_url_resolve())
 * @local_host: the local service's host
 * @local_port: the local service's port
 */
PbTunnelClient *
pb_tunnel_client_new(const char *server_url, const char *local_host, guint16 local_port)
{
	PbTunnelClient *self = g_object_new(PB_TYPE_TUNNEL_CLIENT, NULL);

	self->local_dialer = pb_local_dialer_new(local_host, local_port);
	self->services = pb_client_services_new();
	self->server_url = g_strdup(server_url);
	self->server_uri = g_uri_parse(server_url, G_URI_FLAGS_NONE, NULL);
	g_return_val_if_fail(self->server_uri != NULL, self);
	self->local_address = strchr(local_host, ':') != NULL
				  ? g_strdup_printf("[%s]:%u", local_host, local_port)
				  : g_strdup_printf("%s:%u", local_host, local_port);
	self->service_before = g_new0(PbServiceStats, 1);
	self->services_variant = pb_tunnel_client_build_services(self);
	return self;
}
