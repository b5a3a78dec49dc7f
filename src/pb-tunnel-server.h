/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-address-rules.h"
#include "pb-frame.h"
#include "pb-tunnel.h"

G_BEGIN_DECLS

/* The [client NAME] groups of serve --config (pb-client-policy.h). */
typedef struct _PbClientPolicy PbClientPolicy;

/* What the server's views show of one of a client's services (forward --expose). */
typedef struct {
	char *name;	      /* (owned) (nullable) its name (NAME of NAME.DOMAIN), if any */
	guint16 tunnel_port;  /* its public port; 0 with names only */
	PbServiceStats stats; /* its connections and bytes */
} PbServerServiceInfo;

/* What the server's views (dashboard, /metrics) show of one connected client. */
typedef struct {
	char *peer;		/* (owned) the client's address, as "host:port" */
	char *name;		/* (owned) (nullable) its name (NAME of NAME.DOMAIN), if any */
	char *client;		/* (owned) (nullable) NAME of its [client NAME] (--config) */
	guint16 tunnel_port;	/* its public port */
	gint64 connected_since; /* Unix µs */
	PbTunnelStats stats;	/* the tunnel's counters: connections, bytes, frames */
	PbServerServiceInfo *services; /* (owned) (array length=n_services) every service, the
					* first (name, tunnel_port above) first */
	guint n_services;
} PbServerClientInfo;

void
pb_server_client_info_free(PbServerClientInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbServerClientInfo, pb_server_client_info_free)

#define PB_TYPE_TUNNEL_SERVER (pb_tunnel_server_get_type())
G_DECLARE_FINAL_TYPE(PbTunnelServer, pb_tunnel_server, PB, TUNNEL_SERVER, GObject)

PbTunnelServer *
pb_tunnel_server_new(guint16 port, const char *tunnel_host, guint16 tunnel_port,
		     const char *public_host);
void
pb_tunnel_server_set_max_services(PbTunnelServer *self, guint max_services);
void
pb_tunnel_server_set_names_only(PbTunnelServer *self, gboolean names_only);
void
pb_tunnel_server_set_draining(PbTunnelServer *self, gboolean draining);
void
pb_tunnel_server_set_public_url(PbTunnelServer *self, const char *scheme, guint16 port);
void
pb_tunnel_server_set_listen_host(PbTunnelServer *self, const char *host);
void
pb_tunnel_server_set_features(PbTunnelServer *self, PbFeatures features, guint32 window);
void
pb_tunnel_server_set_tunnel_ports(PbTunnelServer *self, guint16 first, guint16 last);
void
pb_tunnel_server_set_limits(PbTunnelServer *self, guint max_clients, guint max_connections);
void
pb_tunnel_server_set_handshake_limits(PbTunnelServer *self, guint timeout_s, guint max_pending,
				      guint max_pending_per_address);
void
pb_tunnel_server_set_max_buffer(PbTunnelServer *self, guint64 bytes);
void
pb_tunnel_server_set_max_message_size(PbTunnelServer *self, guint64 size);
void
pb_tunnel_server_set_idle_timeout(PbTunnelServer *self, guint timeout_s);
void
pb_tunnel_server_set_grace(PbTunnelServer *self, guint grace_s);
void
pb_tunnel_server_set_domain(PbTunnelServer *self, const char *domain, int http_port, int sni_port);
guint16
pb_tunnel_server_get_http_port(PbTunnelServer *self);
guint16
pb_tunnel_server_get_sni_port(PbTunnelServer *self);
void
pb_tunnel_server_set_keepalive(PbTunnelServer *self, guint interval_s);
void
pb_tunnel_server_set_token(PbTunnelServer *self, const char *token);
void
pb_tunnel_server_set_client_policy(PbTunnelServer *self, PbClientPolicy *policy);
guint
pb_tunnel_server_get_n_client_rules(PbTunnelServer *self);
PbAddressRules *
pb_tunnel_server_get_address_rules(PbTunnelServer *self);
PbAddressRules *
pb_tunnel_server_get_listen_rules(PbTunnelServer *self);
void
pb_tunnel_server_set_tls_certificate(PbTunnelServer *self, GTlsCertificate *certificate);
gboolean
pb_tunnel_server_start(PbTunnelServer *self, GError **error);
guint16
pb_tunnel_server_get_port(PbTunnelServer *self);
guint
pb_tunnel_server_get_n_clients(PbTunnelServer *self);
GPtrArray *
pb_tunnel_server_list_clients(PbTunnelServer *self);
void
pb_tunnel_server_get_totals(PbTunnelServer *self, PbTunnelStats *totals);
guint
pb_tunnel_server_get_n_pending(PbTunnelServer *self);
void
pb_tunnel_server_set_metrics(PbTunnelServer *self, gboolean enabled, const char *token);
void
pb_tunnel_server_stop(PbTunnelServer *self);

G_END_DECLS
