/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-frame.h"
#include "pb-memory.h"
#include "pb-proxy-header.h"
#include "pb-text.h"
#include "pb-tunnel-private.h"

/*
 * One WebSocket and the TCP connections multiplexed over it: the part of PiggyBack that
 * the server and the client share.
 *
 * TCP → WebSocket: a readable stream is read into one frame buffer (header room first)
 * and sent from there as one DATA message. While more than PB_WS_HIGH_WATERMARK is queued
 * unsent on the WebSocket, no stream is read, until the queue drops under
 * PB_WS_LOW_WATERMARK.
 *
 * WebSocket → TCP: DATA goes to its stream, which queues what its socket does not take.
 * While any stream is congested the WebSocket is not read (protocol v1 has no other way
 * to push back), so memory stays bounded whatever the peers do. What all streams queue is
 * also the tunnel's share of a budget for the whole server (PbQueueBudget, --max-buffer):
 * a tunnel held over it stops reading its WebSocket (v1) or gives no credit back (v2).
 *
 * Protocol v2, when negotiated: with `flow` a stream is read only as far as its credit
 * goes and gives credit back (WINDOW) as its socket takes what came (see PbFlow), so a
 * slow reader stops only its own sender; the WebSocket-wide pause stays as a safety net
 * far above any window. With `eof` the end of a socket's stream is passed on as EOF and
 * becomes a shutdown of the other socket's write half; the connection ends when both
 * directions have.
 */

/* A read goes straight into a connection's replay buffer when the buffer holds at least
 * this much, or has room for it at once (or for all the read may take). */
#define PB_TUNNEL_REPLAY_READ_MIN (16 * 1024)

guint pb_tunnel_signals[PB_TUNNEL_SIGNAL_LAST] = {0};

G_DEFINE_FINAL_TYPE(PbTunnel, pb_tunnel, G_TYPE_OBJECT)

void
pb_tunnel_log_stream(PbTunnel *self, guint32 id, const char *what)
{
	char id_str[11];

	g_snprintf(id_str, sizeof id_str, "%u", id);
	g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_DEBUG, "PB_STREAM", id_str, "MESSAGE",
			 "tunnel %p stream %u: %s", self, id, what);
}

/* Sends the message whose payload is at frame_buf + PB_TUNNEL_PAYLOAD_OFFSET: the headers
 * go in the room before it, and the output frames and masks it right there. */
void
pb_tunnel_send(PbTunnel *self, guint8 type, guint32 id, gsize payload_len)
{
	guint8 *message = self->frame_buf + PB_WS_FRAME_HEADER_MAX;

	if (soup_websocket_connection_get_state(self->ws) != SOUP_WEBSOCKET_STATE_OPEN)
		return;
	pb_frame_write_header(message, type, id);
	self->frames_out++;
	self->queued += pb_ws_output_send_message(pb_ws_stream_get_output(self->ws_stream), message,
						  PB_FRAME_HEADER_SIZE + payload_len);
}

void
pb_tunnel_send_control(PbTunnel *self, guint8 type, guint32 id, const void *payload, gsize len)
{
	g_return_if_fail(len <= PB_READ_CHUNK);

	if (len > 0)
		memcpy(self->frame_buf + PB_TUNNEL_PAYLOAD_OFFSET, payload, len);
	pb_tunnel_send(self, type, id, len);
}

void
pb_tunnel_update_ws_reading(PbTunnel *self)
{
	/* with `flow`, credit holds the peer back instead (see pb_tunnel_stream_wrote_cb()) */
	gboolean held = pb_queue_share_is_held(&self->share) && !(self->features & PB_FEATURE_FLOW);

	pb_ws_input_set_paused(pb_ws_stream_get_input(self->ws_stream),
			       self->n_congested > 0 || held);
}

/* The WebSocket's queue has dropped under the low watermark. */
static void
pb_tunnel_ws_drained_cb(PbWsOutput *output, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);

	pb_connection_table_set_reading(self->table, TRUE);
}

/* Stops reading the streams if the WebSocket has too much queued; @last (nullable) is the
 * stream that just sent: the others get their turn first when reading starts again. */
void
pb_tunnel_check_ws_congestion(PbTunnel *self, PbStream *last)
{
	PbWsOutput *output = pb_ws_stream_get_output(self->ws_stream);
	guint64 unsent = self->queued - pb_ws_output_get_sent(output);

	if (!pb_connection_table_get_reading(self->table) || unsent <= PB_WS_HIGH_WATERMARK)
		return;
	pb_connection_table_pause_reading(self->table, last);
	pb_ws_output_watch(output, self->queued - PB_WS_LOW_WATERMARK);
}

/* Lets go of @stream (live or retired), which goes on elsewhere: another tunnel takes it
 * over (a resumption). Its window's growth stays with it. */
void
pb_tunnel_detach_stream(PbTunnel *self, PbStream *stream)
{
	pb_tunnel_resume_unlinger(self, stream);
	if (pb_stream_is_congested(stream)) {
		self->n_congested--;
		pb_tunnel_update_ws_reading(self);
	}
	if (self->resuming != NULL && pb_connection_table_is_live(self->table, stream))
		g_hash_table_remove(self->resuming, GUINT_TO_POINTER(pb_stream_get_id(stream)));
	g_signal_handlers_disconnect_by_data(stream, self);
	pb_stream_set_io_funcs(stream, NULL, NULL);
	pb_connection_table_remove(self->table, stream);
}

/* Forgets @stream (live or retired), which is closed or about to be. */
void
pb_tunnel_drop_stream(PbTunnel *self, PbStream *stream)
{
	if (self->features & PB_FEATURE_FLOW)
		pb_flow_release(pb_stream_get_flow(stream), &self->growth_budget);
	pb_tunnel_detach_stream(self, stream);
	pb_memory_release_soon();
}

/* The connection is over on our side: tell the peer, flush what we have, close. */
void
pb_tunnel_end_stream(PbTunnel *self, PbStream *stream, gboolean send_close)
{
	if (send_close)
		pb_tunnel_send_control(self, PB_FRAME_CLOSE, pb_stream_get_id(stream), NULL, 0);
	pb_tunnel_resume_unlinger(self, stream);
	pb_connection_table_retire(self->table, stream);
	if (pb_stream_finish(stream))
		pb_tunnel_drop_stream(self, stream);
}

void
pb_tunnel_fail_stream(PbTunnel *self, PbStream *stream, const GError *error)
{
	g_autofree char *what = g_strdup_printf("failed: %s", error->message);

	pb_tunnel_log_stream(self, pb_stream_get_id(stream), what);
	pb_tunnel_send_control(self, PB_FRAME_CLOSE, pb_stream_get_id(stream), NULL, 0);
	pb_stream_abort(stream);
	pb_tunnel_drop_stream(self, stream);
}

/* With `eof`, a connection is over once both directions are (with `resume`, once the peer
 * also said it has all we sent). */
void
pb_tunnel_end_half(PbTunnel *self, PbStream *stream)
{
	if (!pb_stream_get_ended(stream))
		return;
	if (!pb_tunnel_resume_linger(self, stream))
		pb_tunnel_end_stream(self, stream, FALSE);
}

/* The socket's end of stream: v2 passes it on as EOF, v1 ends the connection. */
static void
pb_tunnel_stream_ended(PbTunnel *self, PbStream *stream)
{
	pb_tunnel_log_stream(self, pb_stream_get_id(stream), "ended");
	if (!(self->features & PB_FEATURE_EOF)) {
		pb_tunnel_end_stream(self, stream, TRUE);
		return;
	}
	pb_tunnel_send_control(self, PB_FRAME_EOF, pb_stream_get_id(stream), NULL, 0);
	pb_stream_end_reading(stream);
	pb_tunnel_end_half(self, stream);
}

/* Sends DATA whose payload is elsewhere than frame_buf: in @stream's replay buffer. */
static void
pb_tunnel_send_data_from(PbTunnel *self, PbStream *stream, const guint8 *payload, gsize len)
{
	guint8 *message = self->frame_buf + PB_WS_FRAME_HEADER_MAX;

	if (soup_websocket_connection_get_state(self->ws) != SOUP_WEBSOCKET_STATE_OPEN)
		return;
	pb_frame_write_header(message, PB_FRAME_DATA, pb_stream_get_id(stream));
	self->frames_out++;
	self->queued += pb_ws_output_send_message_parts(
	    pb_ws_stream_get_output(self->ws_stream), message, PB_FRAME_HEADER_SIZE, payload, len);
}

static void
pb_tunnel_stream_readable_cb(PbStream *stream, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);
	PbFlow *flow = pb_stream_get_flow(stream);
	PbReplay *replay = pb_stream_get_replay(stream);
	guint8 *buf = self->frame_buf + PB_TUNNEL_PAYLOAD_OFFSET;
	gboolean flow_on = (self->features & PB_FEATURE_FLOW) != 0;
	gsize want = flow_on
			 ? pb_tunnel_resume_sendable(stream, pb_flow_sendable(flow, PB_READ_CHUNK))
			 : PB_READ_CHUNK;
	gboolean direct = FALSE; /* read straight into the replay buffer */
	g_autoptr(GError) error = NULL;
	gssize n;

	if (want == 0) {
		pb_stream_set_blocked(stream, TRUE); /* until WINDOW comes */
		return;
	}
	/* With `resume`, read into the replay buffer and send from there: no copy. Unless the
	 * buffer is small (a new connection's is 64 bytes) and has little room: then read into
	 * frame_buf and keep a copy, so that a 1 KiB request is one read and one message, not
	 * a 64-byte one and the rest. (A big ring that wraps is read up to its end: a short
	 * read costs less than copying a whole read.) */
	if (replay != NULL) {
		gsize room;
		guint8 *place = pb_replay_begin_push(replay, want, &room);

		if (room >= MIN(want, PB_TUNNEL_REPLAY_READ_MIN) ||
		    pb_replay_get_capacity(replay) >= PB_TUNNEL_REPLAY_READ_MIN) {
			buf = place;
			want = room;
			direct = TRUE;
		}
	}
	n = pb_stream_receive(stream, buf, want, &error);
	if (n > 0) {
		PbServiceStats *service_stats = pb_tunnel_get_stream_stats(self, stream);

		if (direct) {
			pb_replay_end_push(replay, (gsize)n);
			pb_tunnel_send_data_from(self, stream, buf, (gsize)n);
		} else {
			/* within the window, so within the replay buffer's bound */
			if (replay != NULL)
				pb_replay_push(replay, buf, (gsize)n);
			pb_tunnel_send(self, PB_FRAME_DATA, pb_stream_get_id(stream), (gsize)n);
		}
		self->bytes_out += (gsize)n;
		if (service_stats != NULL)
			service_stats->bytes_out += (gsize)n;
		if (flow_on) {
			pb_flow_sent(flow, (gsize)n);
			if (pb_tunnel_resume_sendable(stream, pb_flow_sendable(flow, 1)) == 0)
				pb_stream_set_blocked(stream, TRUE);
		}
		pb_tunnel_check_ws_congestion(self, stream);
	} else if (n == 0) {
		pb_tunnel_stream_ended(self, stream);
	} else if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
		pb_tunnel_fail_stream(self, stream, error);
	}
}

/* Bytes from the peer reached @stream's socket: with `flow`, give the credit back, unless
 * the tunnel is held over the server's --max-buffer (then it is kept until released). */
static void
pb_tunnel_stream_wrote_cb(PbStream *stream, guint64 n, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);
	PbFlow *flow = pb_stream_get_flow(stream);
	guint32 increment;
	guint8 payload[12];

	if (!(self->features & PB_FEATURE_FLOW) ||
	    !pb_connection_table_is_live(self->table, stream))
		return;
	if (pb_stream_get_ended(stream))
		return; /* lingering: our CLOSE said all came, no credit is needed */
	if (pb_queue_share_is_held(&self->share)) {
		pb_flow_hold(flow, (gsize)n);
		return;
	}
	increment = pb_flow_consumed(flow, (gsize)n, pb_stream_get_pending(stream) == 0,
				     &self->growth_budget);
	if (increment == 0)
		return;
	pb_tunnel_send_control(self, PB_FRAME_WINDOW, pb_stream_get_id(stream), payload,
			       pb_tunnel_resume_write_window(self, stream, payload, increment));
}

/* The tunnel is no longer held over --max-buffer: read again (v1), give the credit kept
 * back (v2). */
static void
pb_tunnel_share_released_cb(PbQueueShare *share, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);
	g_autoptr(GPtrArray) live = NULL;

	pb_tunnel_update_ws_reading(self);
	if (!(self->features & PB_FEATURE_FLOW))
		return;
	live = pb_connection_table_list_live(self->table);
	for (guint i = 0; i < live->len; i++)
		pb_tunnel_stream_wrote_cb(live->pdata[i], 0, self);
}

static void
pb_tunnel_stream_relieved_cb(PbStream *stream, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);

	self->n_congested--;
	pb_tunnel_update_ws_reading(self);
}

static void
pb_tunnel_stream_closed_cb(PbStream *stream, const GError *error, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);

	if (!pb_connection_table_is_live(self->table, stream))
		pb_tunnel_drop_stream(self, stream);
	else if (error != NULL)
		pb_tunnel_fail_stream(self, stream, error);
	/* else lingering (`resume`): its socket is done, it waits for the peer's CLOSE */
}

/* Makes @stream one of ours, live: a new one, or one taken over from a lost tunnel. */
void
pb_tunnel_attach_stream(PbTunnel *self, PbStream *stream)
{
	static const PbStreamIoFuncs io_funcs = {
	    .readable = pb_tunnel_stream_readable_cb,
	    .wrote = pb_tunnel_stream_wrote_cb,
	};

	pb_stream_set_io_funcs(stream, &io_funcs, self);
	g_signal_connect(stream, "relieved", G_CALLBACK(pb_tunnel_stream_relieved_cb), self);
	g_signal_connect(stream, "closed", G_CALLBACK(pb_tunnel_stream_closed_cb), self);
	if (self->features & PB_FEATURE_FLOW) {
		/* credit bounds each queue: the WebSocket-wide pause is only a safety net */
		pb_stream_set_high_watermark(stream, PB_FLOW_WINDOW_MAX + PB_STREAM_HIGH_WATERMARK);
	}
	pb_stream_set_queue_share(stream, &self->share);
	pb_connection_table_add(self->table, stream);
	if (pb_stream_is_congested(stream)) {
		self->n_congested++;
		pb_tunnel_update_ws_reading(self);
	}
}

/* Returns: (transfer none): a new live stream for @id */
PbStream *
pb_tunnel_insert_stream(PbTunnel *self, guint32 id)
{
	g_autoptr(PbStream) stream = pb_stream_new(id);

	if (self->features & PB_FEATURE_FLOW)
		pb_flow_init(pb_stream_get_flow(stream), self->window);
	pb_tunnel_resume_init_stream(self, stream);
	pb_tunnel_attach_stream(self, stream);
	self->n_streams_total++;
	return stream;
}

void
pb_tunnel_protocol_error(PbTunnel *self, const char *reason)
{
	g_autofree char *shown = pb_text_escape(reason, -1);
	g_autofree char *what = g_strdup_printf("protocol error: %s", shown);

	g_signal_emit(self, pb_tunnel_signals[PB_TUNNEL_SIGNAL_PROTOCOL_ERROR], 0, shown);
	pb_tunnel_close_broken(self, SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR, what);
}

/* Ends every connection at once: the WebSocket is gone. Aborted streams emit nothing. */
void
pb_tunnel_abort_all(PbTunnel *self)
{
	pb_connection_table_clear(self->table);
	self->n_congested = 0;
}

void
pb_tunnel_send_hello(PbTunnel *self, const PbHello *hello)
{
	g_autofree char *json = NULL;

	g_return_if_fail(PB_IS_TUNNEL(self));

	json = pb_hello_to_json(hello);
	pb_tunnel_send_control(self, PB_FRAME_HELLO, PB_CONTROL_ID, json, strlen(json));
}

/* With `proxy-v1`/`proxy-v2`: the connection's first DATA says who the public client is. */
static void
pb_tunnel_send_proxy_header(PbTunnel *self, PbStream *stream, GSocketConnection *connection)
{
	g_autoptr(GSocketAddress) source = g_socket_connection_get_remote_address(connection, NULL);
	g_autoptr(GSocketAddress) destination =
	    g_socket_connection_get_local_address(connection, NULL);
	PbFeatures version = (self->features & PB_FEATURE_PROXY_V2) ? PB_FEATURE_PROXY_V2
								    : PB_FEATURE_PROXY_V1;
	gsize len = pb_proxy_header_write(self->frame_buf + PB_TUNNEL_PAYLOAD_OFFSET, version,
					  source, destination);

	PbServiceStats *service_stats = pb_tunnel_get_stream_stats(self, stream);

	pb_tunnel_resume_sent(self, stream, self->frame_buf + PB_TUNNEL_PAYLOAD_OFFSET, len);
	pb_tunnel_send(self, PB_FRAME_DATA, pb_stream_get_id(stream), len);
	self->bytes_out += len;
	if (service_stats != NULL)
		service_stats->bytes_out += len;
	if (self->features & PB_FEATURE_FLOW)
		pb_flow_sent(pb_stream_get_flow(stream), len); /* far below any window */
}

/**
 * pb_tunnel_add_stream:
 * @connection: a public connection the server accepted
 * @origin: the public client's TCP connection, whose addresses the PROXY header gives:
 *   @connection, or the one under TLS the server terminated (then @connection is the
 *   plain side of a socketpair, which has no IP addresses)
 * @service: which of the client's services it is for (0 = the first; others need the
 *   `services` feature)
 *
 * Gives it a connId that is not 0 and not in use, and sends OPEN (and, with a
 * `proxy-*` feature, the PROXY header).
 *
 * Returns: the connId
 */
guint32
pb_tunnel_add_stream(PbTunnel *self, GSocketConnection *connection, GSocketConnection *origin,
		     guint32 service)
{
	PbStream *stream;
	guint32 id;
	guint8 index[4];

	g_return_val_if_fail(PB_IS_TUNNEL(self), 0);
	g_return_val_if_fail(service == 0 || (self->features & PB_FEATURE_SERVICES), 0);

	id = pb_connection_table_next_id(self->table);
	pb_frame_write_u32(index, service);
	/* the first service's OPEN stays empty: what a peer without `services` expects */
	pb_tunnel_send_control(self, PB_FRAME_OPEN, id, index, service != 0 ? sizeof index : 0);
	stream = pb_tunnel_insert_stream(self, id);
	pb_tunnel_set_stream_service(self, stream, service);
	if (self->features & PB_FEATURES_PROXY)
		pb_tunnel_send_proxy_header(self, stream, origin);
	pb_stream_set_connection(stream, connection);
	pb_tunnel_log_stream(self, id, "opened");
	return id;
}

/* The client reached its local service for @stream's OPEN. */
void
pb_tunnel_connect_stream(PbTunnel *self, PbStream *stream, GSocketConnection *connection)
{
	g_return_if_fail(PB_IS_TUNNEL(self));

	/* after a CLOSE it may be finishing: it writes what came, then closes ("closed") */
	pb_stream_set_connection(stream, connection);
}

/* The client could not reach its local service for @stream's OPEN: the tunnel that holds
 * the stream now (a resumption may have taken it over meanwhile) answers CLOSE. */
void
pb_tunnel_refuse_stream(PbTunnel *self, PbStream *stream)
{
	g_autoptr(GError) error = NULL;

	g_return_if_fail(PB_IS_TUNNEL(self));

	error = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED,
				    "the local service cannot be reached");
	pb_stream_fail(stream, error);
}

/**
 * pb_tunnel_set_features:
 * @features: the protocol v2 features both sides agreed on; 0 for version 1
 * @window: the initial credit of every connection, with %PB_FEATURE_FLOW
 *
 * Call before the first connection exists (before sending or receiving HELLO's effects).
 */
void
pb_tunnel_set_features(PbTunnel *self, PbFeatures features, guint32 window)
{
	g_return_if_fail(PB_IS_TUNNEL(self));
	g_return_if_fail(pb_connection_table_get_n_live(self->table) == 0);

	self->features = features;
	self->window = window;
}

PbFeatures
pb_tunnel_get_features(PbTunnel *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL(self), 0);
	return self->features;
}

static void
pb_tunnel_dispose(GObject *object)
{
	PbTunnel *self = PB_TUNNEL(object);

	g_clear_handle_id(&self->idle_id, g_source_remove);
	g_clear_pointer(&self->watchdog, pb_watchdog_free);
	if (self->ws != NULL) {
		g_signal_handlers_disconnect_by_data(self->ws, self);
		g_signal_handlers_disconnect_by_data(pb_ws_stream_get_output(self->ws_stream),
						     self);
		g_signal_handlers_disconnect_by_data(pb_ws_stream_get_input(self->ws_stream), self);
		pb_ws_input_set_data_func(pb_ws_stream_get_input(self->ws_stream), NULL, NULL);
		pb_ws_input_set_message_func(pb_ws_stream_get_input(self->ws_stream), NULL, NULL);
		pb_tunnel_abort_all(self);
		g_clear_object(&self->ws);
	}
	pb_tunnel_resume_clear(self);
	pb_queue_share_clear(&self->share); /* after the streams: nothing is queued now */
	g_clear_object(&self->ws_stream);
	G_OBJECT_CLASS(pb_tunnel_parent_class)->dispose(object);
}

static void
pb_tunnel_finalize(GObject *object)
{
	PbTunnel *self = PB_TUNNEL(object);

	g_object_unref(self->table);
	g_free(self->frame_buf);
	g_free(self->service_stats);
	pb_memory_release_soon();
	G_OBJECT_CLASS(pb_tunnel_parent_class)->finalize(object);
}

static void
pb_tunnel_class_init(PbTunnelClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = pb_tunnel_dispose;
	object_class->finalize = pb_tunnel_finalize;

	/**
	 * PbTunnel::open-requested:
	 * @stream: the new stream, not connected yet
	 *
	 * Client side: the server accepted a public connection. Answer with
	 * pb_tunnel_connect_stream() or pb_tunnel_refuse_stream(); data for it is queued
	 * meanwhile.
	 */
	pb_tunnel_signals[PB_TUNNEL_SIGNAL_OPEN_REQUESTED] =
	    g_signal_new("open-requested", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
			 NULL, NULL, G_TYPE_NONE, 1, PB_TYPE_STREAM);
	/**
	 * PbTunnel::hello:
	 * @hello: (type gpointer): the PbHello, valid during the emission
	 *
	 * Client side: the server said where the tunnel can be reached.
	 */
	pb_tunnel_signals[PB_TUNNEL_SIGNAL_HELLO] =
	    g_signal_new("hello", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
			 G_TYPE_NONE, 1, G_TYPE_POINTER);
	/**
	 * PbTunnel::protocol-error:
	 * @reason: what the peer did wrong, escaped (pb_text_escape())
	 *
	 * The peer broke the protocol (a malformed frame, a HELLO that is refused): the
	 * WebSocket is closing with 1002, and "closed" follows.
	 */
	pb_tunnel_signals[PB_TUNNEL_SIGNAL_PROTOCOL_ERROR] =
	    g_signal_new("protocol-error", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
			 NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
	/**
	 * PbTunnel::resumed:
	 * @resumed: connections taken over from the lost tunnel that go on
	 * @dropped: those the peer no longer had, or lied about: closed
	 *
	 * With `resume`: the peer's RESUME came, after pb_tunnel_resume().
	 */
	pb_tunnel_signals[PB_TUNNEL_SIGNAL_RESUMED] =
	    g_signal_new("resumed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_UINT);
	/**
	 * PbTunnel::closed:
	 *
	 * The WebSocket is closed, and every tunneled connection with it; with `resume`, unless
	 * it was lost (pb_tunnel_is_parked()): then its connections wait, unread, for a
	 * resumption to take them over (pb_tunnel_resume()), until the tunnel is disposed.
	 */
	pb_tunnel_signals[PB_TUNNEL_SIGNAL_CLOSED] =
	    g_signal_new("closed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
			 G_TYPE_NONE, 0);
}

static void
pb_tunnel_init(PbTunnel *self)
{
	self->table = pb_connection_table_new();
	self->growth_budget = PB_FLOW_GROWTH_BUDGET;
	self->frame_buf = g_malloc(PB_TUNNEL_PAYLOAD_OFFSET + PB_READ_CHUNK);
}

/* Ends the connections that moved no byte for the idle timeout: an open one as if its
 * socket had closed; one that was already finishing (its socket does not take what is
 * queued for it: a peer that does not read) at once, dropping what was queued. */
static gboolean
pb_tunnel_idle_cb(gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);
	gint64 since = g_get_monotonic_time() - (gint64)self->idle_timeout_s * G_USEC_PER_SEC;
	g_autoptr(GPtrArray) idle = pb_connection_table_list_idle(self->table, since);

	for (guint i = 0; i < idle->len; i++) {
		PbStream *stream = idle->pdata[i];

		pb_tunnel_log_stream(self, pb_stream_get_id(stream), "idle");
		if (pb_connection_table_is_live(self->table, stream)) {
			pb_tunnel_end_stream(self, stream, TRUE);
		} else {
			pb_stream_abort(stream);
			pb_tunnel_drop_stream(self, stream);
		}
	}
	if (idle->len > 0)
		g_message("Closed %u connections idle for %u s", idle->len, self->idle_timeout_s);
	return G_SOURCE_CONTINUE;
}

/**
 * pb_tunnel_set_queue_budget:
 * @budget: (nullable): the server-wide budget for bytes queued towards public connections
 *
 * Set it before any connection exists.
 */
void
pb_tunnel_set_queue_budget(PbTunnel *self, PbQueueBudget *budget)
{
	g_return_if_fail(PB_IS_TUNNEL(self));
	g_return_if_fail(pb_connection_table_get_n_live(self->table) == 0);

	pb_queue_share_clear(&self->share);
	pb_queue_share_init(&self->share, budget, pb_tunnel_share_released_cb, self);
}

/**
 * pb_tunnel_set_idle_timeout:
 * @timeout_s: close a tunneled connection whose socket moved no byte, either way, for
 *   this long; 0 = never
 *
 * Checked every quarter of @timeout_s, so a connection goes after up to 1.25 × @timeout_s.
 */
void
pb_tunnel_set_idle_timeout(PbTunnel *self, guint timeout_s)
{
	g_return_if_fail(PB_IS_TUNNEL(self));

	self->idle_timeout_s = timeout_s;
	g_clear_handle_id(&self->idle_id, g_source_remove);
	if (timeout_s > 0)
		self->idle_id =
		    g_timeout_add_seconds(MAX(1, timeout_s / 4), pb_tunnel_idle_cb, self);
}

/**
 * pb_tunnel_new:
 * @connection: the connection, past the WebSocket upgrade
 * @leftover: (nullable): bytes read from @connection after the upgrade response
 * @uri: the WebSocket URI
 * @role: whether we are the WebSocket server or client
 */
PbTunnel *
pb_tunnel_new(GIOStream *connection, GBytes *leftover, GUri *uri, SoupWebsocketConnectionType role)
{
	PbTunnel *self = g_object_new(PB_TYPE_TUNNEL, NULL);

	self->role = role;
	pb_queue_share_init(&self->share, NULL, pb_tunnel_share_released_cb, self);
	self->ws_stream =
	    pb_ws_stream_new(connection, leftover, role == SOUP_WEBSOCKET_CONNECTION_SERVER);
	self->ws = soup_websocket_connection_new(G_IO_STREAM(self->ws_stream), uri, role, NULL,
						 NULL, NULL);
	pb_tunnel_set_max_message_size(self, PB_MAX_MESSAGE_SIZE);
	pb_tunnel_receive_start(self);
	pb_tunnel_watch_websocket(self);
	g_signal_connect(pb_ws_stream_get_output(self->ws_stream), "drained",
			 G_CALLBACK(pb_tunnel_ws_drained_cb), self);
	return self;
}
