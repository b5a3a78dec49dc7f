/* SPDX-License-Identifier: ISC */
#pragma once

/* What the files of PbTunnel share: pb-tunnel.c (the connections over the WebSocket and
 * what they send), pb-tunnel-receive.c (what the peer sends), pb-tunnel-websocket.c (the
 * WebSocket's end), pb-tunnel-stats.c (what the connections carried) and
 * pb-tunnel-resume.c (connections that outlive a lost WebSocket). Nothing else includes
 * this. */

#include "pb-connection-table.h"
#include "pb-tunnel.h"
#include "pb-watchdog.h"
#include "pb-ws-frame.h"
#include "pb-ws-stream.h"

/* Where a message's payload goes in frame_buf: after room for the longest WebSocket
 * header and the PiggyBack header, so a message is framed where it was read. */
#define PB_TUNNEL_PAYLOAD_OFFSET (PB_WS_FRAME_HEADER_MAX + PB_FRAME_HEADER_SIZE)

struct _PbTunnel {
	GObject parent_instance;
	SoupWebsocketConnection *ws;	  /* (owned) */
	PbWsStream *ws_stream;		  /* (owned) what @ws runs on */
	SoupWebsocketConnectionType role; /* server: accepts public connections */
	PbConnectionTable *table;	  /* (owned) */
	PbFeatures features;		  /* protocol v2 features in use */
	guint32 window;			  /* initial credit of every connection, with `flow` */
	guint64 growth_budget;		  /* how much all windows may still grow */
	guint8 *frame_buf;	       /* (owned) room for both headers, then PB_READ_CHUNK bytes */
	guint64 queued;		       /* bytes of our frames handed to the WebSocket's output */
	guint n_congested;	       /* streams over their high watermark */
	PbQueueShare share;	       /* what the streams queue, in the server's --max-buffer */
	guint64 bytes_in;	       /* tunneled payload received from the peer */
	guint64 bytes_out;	       /* tunneled payload sent to the peer */
	guint64 n_streams_total;       /* connections ever opened on this tunnel */
	PbServiceStats *service_stats; /* (owned) (nullable) indexed by the streams' service */
	guint n_service_stats;	       /* up to the highest service index seen, + 1 */
	guint64 frames_in;	 /* messages libsoup delivered (the fast path counts its own) */
	guint64 frames_out;	 /* messages we sent */
	guint64 protocol_errors; /* the peer broke the protocol: the tunnel or a connection */
	PbWatchdog *watchdog;	 /* (owned) closes the WebSocket when the peer falls silent */
	guint idle_timeout_s;	 /* a connection without traffic that long is closed; 0 = never */
	guint idle_id;		 /* (nullable) the check for such connections */
	gboolean peer_closed_first; /* the close handshake was the peer's: it said goodbye */
	gboolean closed_for_good;   /* we ended the WebSocket on purpose, not to come back */
	/* `resume` (pb-tunnel-resume.c) */
	gboolean parked;	 /* the WebSocket was lost: the connections wait, unread */
	gboolean resume_sent;	 /* our RESUME went out */
	gboolean resume_taken;	 /* the peer's RESUME came */
	GHashTable *resuming;	 /* (owned) (nullable) connIds taken over from a lost tunnel,
				  * waiting for the peer's RESUME */
	guint64 streams_resumed; /* connections that went on after a lost WebSocket */
	guint64 streams_dropped; /* connections the resumption could not keep */
	guint trim_id;		 /* (nullable) frees the replay rings of quiet connections */
	GQueue lingering;	 /* live streams ended both ways that wait for the peer's CLOSE,
				  * oldest first (the table holds them) */
};

enum {
	PB_TUNNEL_SIGNAL_OPEN_REQUESTED,
	PB_TUNNEL_SIGNAL_HELLO,
	PB_TUNNEL_SIGNAL_PROTOCOL_ERROR,
	PB_TUNNEL_SIGNAL_RESUMED,
	PB_TUNNEL_SIGNAL_CLOSED,
	PB_TUNNEL_SIGNAL_LAST
};
extern guint pb_tunnel_signals[PB_TUNNEL_SIGNAL_LAST];

void
pb_tunnel_log_stream(PbTunnel *self, guint32 id, const char *what);
void
pb_tunnel_send(PbTunnel *self, guint8 type, guint32 id, gsize payload_len);
void
pb_tunnel_send_control(PbTunnel *self, guint8 type, guint32 id, const void *payload, gsize len);
void
pb_tunnel_attach_stream(PbTunnel *self, PbStream *stream);
void
pb_tunnel_detach_stream(PbTunnel *self, PbStream *stream);
PbStream *
pb_tunnel_insert_stream(PbTunnel *self, guint32 id);
void
pb_tunnel_drop_stream(PbTunnel *self, PbStream *stream);
void
pb_tunnel_end_stream(PbTunnel *self, PbStream *stream, gboolean send_close);
void
pb_tunnel_end_half(PbTunnel *self, PbStream *stream);
void
pb_tunnel_fail_stream(PbTunnel *self, PbStream *stream, const GError *error);
void
pb_tunnel_update_ws_reading(PbTunnel *self);
void
pb_tunnel_check_ws_congestion(PbTunnel *self, PbStream *last);
void
pb_tunnel_protocol_error(PbTunnel *self, const char *reason);
void
pb_tunnel_abort_all(PbTunnel *self);

/* pb-tunnel-receive.c */
void
pb_tunnel_receive_start(PbTunnel *self);

/* pb-tunnel-websocket.c */
void
pb_tunnel_watch_websocket(PbTunnel *self);
void
pb_tunnel_close_broken(PbTunnel *self, gushort code, const char *what);

/* pb-tunnel-stats.c */
PbServiceStats *
pb_tunnel_count_service(PbTunnel *self, guint32 service);
void
pb_tunnel_set_stream_service(PbTunnel *self, PbStream *stream, guint32 service);

/* The counters of @stream's service, or %NULL for one not counted. */
static inline PbServiceStats *
pb_tunnel_get_stream_stats(PbTunnel *self, PbStream *stream)
{
	guint32 service = pb_stream_get_service(stream);

	return service < self->n_service_stats ? &self->service_stats[service] : NULL;
}

/* pb-tunnel-resume.c */
void
pb_tunnel_resume_init_stream(PbTunnel *self, PbStream *stream);
gsize
pb_tunnel_resume_sendable(PbStream *stream, gsize want);
void
pb_tunnel_resume_sent(PbTunnel *self, PbStream *stream, const guint8 *data, gsize len);
gsize
pb_tunnel_resume_write_window(PbTunnel *self, PbStream *stream, guint8 *payload, guint32 increment);
gboolean
pb_tunnel_resume_take_window(PbTunnel *self, PbStream *stream, const PbFrame *frame);
gboolean
pb_tunnel_resume_is_waiting(PbTunnel *self, PbStream *stream);
gboolean
pb_tunnel_resume_linger(PbTunnel *self, PbStream *stream);
void
pb_tunnel_resume_unlinger(PbTunnel *self, PbStream *stream);
void
pb_tunnel_receive_resume(PbTunnel *self, const PbFrame *frame);
gboolean
pb_tunnel_may_park(PbTunnel *self);
void
pb_tunnel_park(PbTunnel *self);
void
pb_tunnel_resume_clear(PbTunnel *self);
