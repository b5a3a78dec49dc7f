/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-frame.h"

G_BEGIN_DECLS

#define PB_TYPE_TUNNEL_SERVER (pb_tunnel_server_get_type())
G_DECLARE_FINAL_TYPE(PbTunnelServer, pb_tunnel_server, PB, TUNNEL_SERVER, GObject)

PbTunnelServer *
pb_tunnel_server_new(guint16 port, const char *tunnel_host, guint16 tunnel_port,
		     const char *public_host);
void
pb_tunnel_server_set_listen_host(PbTunnelServer *self, const char *host);
void
pb_tunnel_server_set_features(PbTunnelServer *self, PbFeatures features, guint32 window);
void
pb_tunnel_server_set_token(PbTunnelServer *self, const char *token);
void
pb_tunnel_server_set_tls_certificate(PbTunnelServer *self, GTlsCertificate *certificate);
gboolean
pb_tunnel_server_start(PbTunnelServer *self, GError **error);
guint16
pb_tunnel_server_get_port(PbTunnelServer *self);
guint
pb_tunnel_server_get_n_clients(PbTunnelServer *self);
void
pb_tunnel_server_stop(PbTunnelServer *self);

G_END_DECLS
