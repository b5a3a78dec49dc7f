/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PB_TYPE_TUNNEL_CLIENT (pb_tunnel_client_get_type())
G_DECLARE_FINAL_TYPE(PbTunnelClient, pb_tunnel_client, PB, TUNNEL_CLIENT, GObject)

PbTunnelClient *
pb_tunnel_client_new(const char *server_url, const char *local_host, guint16 local_port);
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
void
pb_tunnel_client_close(PbTunnelClient *self);

G_END_DECLS
