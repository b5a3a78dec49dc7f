/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-client-services.h"
#include "pb-frame.h"
#include "pb-services.h"
#include "pb-tunnel.h"

G_BEGIN_DECLS

/**
 * PbTunnelClientState:
 * @PB_TUNNEL_CLIENT_STATE_CONNECTING: dialling the server for the first time
 * @PB_TUNNEL_CLIENT_STATE_ONLINE: the server opened the public port (HELLO arrived)
 * @PB_TUNNEL_CLIENT_STATE_RECONNECTING: dialling again, or waiting to, after the tunnel was
 *   lost (with auto-reconnect) or pb_tunnel_client_reconnect()
 * @PB_TUNNEL_CLIENT_STATE_OFFLINE: not connected and not trying: the tunnel is over
 *
 * The nicks ("connecting", "online", …) are what the D-Bus State property shows.
 */
typedef enum {
	PB_TUNNEL_CLIENT_STATE_CONNECTING,
	PB_TUNNEL_CLIENT_STATE_ONLINE,
	PB_TUNNEL_CLIENT_STATE_RECONNECTING,
	PB_TUNNEL_CLIENT_STATE_OFFLINE,
} PbTunnelClientState;

#define PB_TYPE_TUNNEL_CLIENT_STATE (pb_tunnel_client_state_get_type())
GType
pb_tunnel_client_state_get_type(void);

/* One line of the client's history, as "event" reports it. */
typedef struct {
	gint64 time;   /* Unix µs */
	char *message; /* (owned) translated, for people */
} PbTunnelClientEvent;

/* How many events pb_tunnel_client_get_recent_events() keeps. */
#define PB_TUNNEL_CLIENT_MAX_EVENTS 50

#define PB_TYPE_TUNNEL_CLIENT (pb_tunnel_client_get_type())
G_DECLARE_FINAL_TYPE(PbTunnelClient, pb_tunnel_client, PB, TUNNEL_CLIENT, GObject)

PbTunnelClient *
pb_tunnel_client_new(const char *server_url, const char *local_host, guint16 local_port);
void
pb_tunnel_client_set_name(PbTunnelClient *self, const char *name);
void
pb_tunnel_client_add_service(PbTunnelClient *self, const PbServiceSpec *spec);
PbClientServices *
pb_tunnel_client_get_services(PbTunnelClient *self);
guint
pb_tunnel_client_get_n_services(PbTunnelClient *self);
void
pb_tunnel_client_get_service_stats(PbTunnelClient *self, PbServiceStats *stats, guint n_stats);
GVariant *
pb_tunnel_client_get_services_variant(PbTunnelClient *self);
void
pb_tunnel_client_set_features(PbTunnelClient *self, PbFeatures features);
PbFeatures
pb_tunnel_client_get_features(PbTunnelClient *self);
void
pb_tunnel_client_set_token(PbTunnelClient *self, const char *token);
void
pb_tunnel_client_set_tls(PbTunnelClient *self, GTlsDatabase *database, const char *pin_sha256);
void
pb_tunnel_client_connect_async(PbTunnelClient *self, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
gboolean
pb_tunnel_client_connect_finish(PbTunnelClient *self, GAsyncResult *result, GError **error);
const char *
pb_tunnel_client_get_access_url(PbTunnelClient *self);
const char *
pb_tunnel_client_get_http_url(PbTunnelClient *self);
const char *
pb_tunnel_client_get_name(PbTunnelClient *self);
const char *
pb_tunnel_client_get_public_host(PbTunnelClient *self);
guint16
pb_tunnel_client_get_tunnel_port(PbTunnelClient *self);
PbTunnelClientState
pb_tunnel_client_get_state(PbTunnelClient *self);
const char *
pb_tunnel_client_get_server_url(PbTunnelClient *self);
const char *
pb_tunnel_client_get_local_address(PbTunnelClient *self);
gint64
pb_tunnel_client_get_connected_since(PbTunnelClient *self);
guint64
pb_tunnel_client_get_connections_total(PbTunnelClient *self);
guint
pb_tunnel_client_get_connections_active(PbTunnelClient *self);
guint64
pb_tunnel_client_get_bytes_in(PbTunnelClient *self);
guint64
pb_tunnel_client_get_bytes_out(PbTunnelClient *self);
const GQueue *
pb_tunnel_client_get_recent_events(PbTunnelClient *self);
void
pb_tunnel_client_set_max_message_size(PbTunnelClient *self, guint64 size);
void
pb_tunnel_client_set_keepalive(PbTunnelClient *self, guint interval_s);
void
pb_tunnel_client_set_max_connections(PbTunnelClient *self, guint max_connections);
void
pb_tunnel_client_set_local_connect_timeout(PbTunnelClient *self, guint timeout_s);
void
pb_tunnel_client_set_auto_reconnect(PbTunnelClient *self, gboolean auto_reconnect);
void
pb_tunnel_client_reconnect(PbTunnelClient *self);
void
pb_tunnel_client_network_changed(PbTunnelClient *self);
void
pb_tunnel_client_close(PbTunnelClient *self);

G_END_DECLS
