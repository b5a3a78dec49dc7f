/* SPDX-License-Identifier: ISC */
#pragma once

#include "pb-tunnel.h"

G_BEGIN_DECLS

/* The client's side of `resume`: the tunnel it lost, whose local connections wait for the
 * next tunnel to take them over. */
typedef struct _PbLostTunnel PbLostTunnel;

/* Says something for people (the client's events). */
typedef void (*PbLostTunnelEventFunc)(const char *message, gpointer user_data);

PbLostTunnel *
pb_lost_tunnel_new(PbLostTunnelEventFunc event_func, gpointer user_data);
void
pb_lost_tunnel_set_grace(PbLostTunnel *self, guint grace_s);
void
pb_lost_tunnel_keep(PbLostTunnel *self, PbTunnel *tunnel);
void
pb_lost_tunnel_hand_over(PbLostTunnel *self, PbTunnel *tunnel);
void
pb_lost_tunnel_drop(PbLostTunnel *self);
guint
pb_lost_tunnel_get_n_streams(PbLostTunnel *self);
void
pb_lost_tunnel_free(PbLostTunnel *self);

G_END_DECLS
