/* SPDX-License-Identifier: ISC */
#pragma once

#include <libsoup/soup.h>

#include "pb-hello.h"
#include "pb-stream.h"

G_BEGIN_DECLS

/* A tunnel's counters (see pb_tunnel_get_stats()). */
typedef struct {
	guint64 streams_open;
	guint64 streams_total;
	guint64 bytes_in;   /* tunneled payload received from the peer */
	guint64 bytes_out;  /* tunneled payload sent to the peer */
	guint64 frames_in;  /* WebSocket messages received */
	guint64 frames_out; /* WebSocket messages sent (ours; libsoup's pings and closes not) */
	guint64 protocol_errors; /* times the peer broke the protocol */
	guint64 send_queue;	 /* bytes of our messages not written to the socket yet */
	guint64 streams_resumed; /* connections that went on after a lost WebSocket (`resume`) */
	guint64 streams_dropped; /* connections a resumption could not keep */
} PbTunnelStats;

/* What one service of a tunnel carried (see pb_tunnel_get_service_stats()). */
typedef struct {
	guint64 streams_open;  /* connections open now */
	guint64 streams_total; /* connections opened */
	guint64 bytes_in;      /* tunneled payload received from the peer */
	guint64 bytes_out;     /* tunneled payload sent to the peer */
} PbServiceStats;

#define PB_TYPE_TUNNEL (pb_tunnel_get_type())
G_DECLARE_FINAL_TYPE(PbTunnel, pb_tunnel, PB, TUNNEL, GObject)

PbTunnel *
pb_tunnel_new(GIOStream *connection, GBytes *leftover, GUri *uri, SoupWebsocketConnectionType role);
SoupWebsocketConnection *
pb_tunnel_get_websocket(PbTunnel *self);
void
pb_tunnel_send_hello(PbTunnel *self, const PbHello *hello);
guint32
pb_tunnel_add_stream(PbTunnel *self, GSocketConnection *connection, GSocketConnection *origin,
		     guint32 service);
void
pb_tunnel_connect_stream(PbTunnel *self, PbStream *stream, GSocketConnection *connection);
void
pb_tunnel_refuse_stream(PbTunnel *self, PbStream *stream);
void
pb_tunnel_set_features(PbTunnel *self, PbFeatures features, guint32 window);
PbFeatures
pb_tunnel_get_features(PbTunnel *self);
void
pb_tunnel_resume(PbTunnel *self, PbTunnel *lost);
gboolean
pb_tunnel_is_parked(PbTunnel *self);
gboolean
pb_tunnel_get_said_goodbye(PbTunnel *self);
void
pb_tunnel_set_queue_budget(PbTunnel *self, PbQueueBudget *budget);
void
pb_tunnel_set_keepalive(PbTunnel *self, guint interval_s);
void
pb_tunnel_set_max_message_size(PbTunnel *self, guint64 size);
void
pb_tunnel_probe(PbTunnel *self, guint timeout_s);
void
pb_tunnel_set_idle_timeout(PbTunnel *self, guint timeout_s);
void
pb_tunnel_close(PbTunnel *self, gushort code, const char *reason);
void
pb_tunnel_get_stats(PbTunnel *self, PbTunnelStats *stats);
void
pb_tunnel_stats_add(PbTunnelStats *sum, const PbTunnelStats *stats);
guint
pb_tunnel_get_n_streams(PbTunnel *self);
guint
pb_tunnel_get_n_streams_held(PbTunnel *self);
guint64
pb_tunnel_get_bytes_in(PbTunnel *self);
guint64
pb_tunnel_get_bytes_out(PbTunnel *self);
void
pb_tunnel_get_service_stats(PbTunnel *self, PbServiceStats *stats, guint n_stats);

G_END_DECLS
