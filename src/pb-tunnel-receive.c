/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-error.h"
#include "pb-frame.h"
#include "pb-tunnel-private.h"

/*
 * What the peer sends a PbTunnel: every PiggyBack message, whichever way it came. Most
 * come from PbWsInput's fast path, DATA payload straight from its read buffer and short
 * messages whole; the rest (HELLO, anything long or fragmented) through libsoup's
 * "message". Each goes to its connection: DATA to the stream's socket, OPEN makes a
 * stream, WINDOW gives credit, EOF and CLOSE end one or both directions.
 *
 * A peer may send anything: a message that breaks the protocol for one connection (data
 * past its credit or after its EOF) ends that connection; one that breaks it for all (a
 * text message, a malformed frame or HELLO) ends the tunnel.
 */

/* DATA payload (all of a message, or a piece on the fast path) for the connection @id. */
static void
pb_tunnel_deliver(PbTunnel *self, guint32 id, GBytes *message, const guint8 *data, gsize len)
{
	PbStream *stream = pb_connection_table_lookup(self->table, id);
	PbServiceStats *service_stats;
	g_autoptr(GError) error = NULL;
	gboolean was_congested;
	gboolean ok;

	if (stream == NULL)
		return; /* it raced with our CLOSE */
	if ((self->features & PB_FEATURE_FLOW) && !pb_flow_receive(pb_stream_get_flow(stream), len))
		error = g_error_new_literal(PB_ERROR, PB_ERROR_PROTOCOL,
					    "the peer sent beyond its credit");
	else if (pb_stream_get_write_ended(stream))
		error = g_error_new_literal(PB_ERROR, PB_ERROR_PROTOCOL,
					    "the peer sent data after EOF");
	if (error != NULL) {
		self->protocol_errors++;
		pb_tunnel_fail_stream(self, stream, error); /* that connection, not the tunnel */
		return;
	}
	self->bytes_in += len;
	service_stats = pb_tunnel_get_stream_stats(self, stream);
	if (service_stats != NULL)
		service_stats->bytes_in += len;
	was_congested = pb_stream_is_congested(stream);
	if (message != NULL)
		ok = pb_stream_write(stream, message, PB_FRAME_HEADER_SIZE, &error);
	else
		ok = pb_stream_write_data(stream, data, len, &error);
	if (!ok) {
		pb_tunnel_fail_stream(self, stream, error);
		return;
	}
	if (!was_congested && pb_stream_is_congested(stream)) {
		self->n_congested++;
		pb_tunnel_update_ws_reading(self);
	}
	if (!pb_queue_share_is_held(&self->share) && pb_queue_share_check(&self->share))
		pb_tunnel_update_ws_reading(self);
}

/* The fast path of PbWsInput: DATA payload straight from the WebSocket's read buffer. */
static void
pb_tunnel_ws_data_cb(guint32 conn_id, const guint8 *data, gsize len, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);

	pb_watchdog_heard(self->watchdog);
	pb_tunnel_deliver(self, conn_id, NULL, data, len);
}

static void
pb_tunnel_receive_open(PbTunnel *self, const PbFrame *frame)
{
	guint32 id = frame->conn_id;
	PbStream *old = pb_connection_table_lookup(self->table, id);
	PbStream *stream;
	guint32 service = 0;

	if (self->role != SOUP_WEBSOCKET_CONNECTION_CLIENT || id == PB_CONTROL_ID)
		return;
	/* with `services`, the payload is the service's index (none: the first); without, a
	 * payload is ignored as version 1 does */
	if ((self->features & PB_FEATURE_SERVICES) && frame->payload_len != 0) {
		if (frame->payload_len != 4) {
			pb_tunnel_protocol_error(self,
						 "OPEN with a payload that is no service index");
			return;
		}
		service = pb_frame_read_u32(frame->payload);
	}
	if (old != NULL) {
		pb_stream_abort(old); /* the peer reused an id it had not closed */
		pb_tunnel_drop_stream(self, old);
	}
	stream = pb_tunnel_insert_stream(self, id);
	pb_tunnel_set_stream_service(self, stream, service);
	pb_tunnel_log_stream(self, id, "opened by the peer");
	g_signal_emit(self, pb_tunnel_signals[PB_TUNNEL_SIGNAL_OPEN_REQUESTED], 0, stream);
}

/* More credit for sending on a connection (`flow`); with `resume`, also how much of it
 * the peer received. */
static void
pb_tunnel_receive_window(PbTunnel *self, const PbFrame *frame)
{
	PbStream *stream = pb_connection_table_lookup(self->table, frame->conn_id);
	gsize expected = (self->features & PB_FEATURE_RESUME) ? 12 : 4;

	if (frame->payload_len != expected) {
		pb_tunnel_protocol_error(self, expected == 4
						   ? "WINDOW without a 4-byte increment"
						   : "WINDOW without an increment and a count");
		return;
	}
	if (stream == NULL || !pb_tunnel_resume_take_window(self, stream, frame))
		return;
	pb_flow_add_send_credit(pb_stream_get_flow(stream), pb_frame_read_u32(frame->payload));
	/* one taken over from a lost tunnel waits for the peer's RESUME */
	if (pb_stream_get_blocked(stream) && !pb_tunnel_resume_is_waiting(self, stream))
		pb_stream_set_blocked(stream, FALSE);
}

/* The peer's side of a connection stopped writing (`eof`): so do we, once flushed. */
static void
pb_tunnel_receive_eof(PbTunnel *self, guint32 id)
{
	PbStream *stream = pb_connection_table_lookup(self->table, id);

	if (stream == NULL || pb_stream_get_write_ended(stream))
		return; /* a second EOF says nothing new */
	pb_tunnel_log_stream(self, id, "ended by the peer");
	pb_stream_end_writing(stream);
	pb_tunnel_end_half(self, stream);
}

static void
pb_tunnel_receive_hello(PbTunnel *self, const PbFrame *frame)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(PbHello) hello = NULL;

	if (self->role != SOUP_WEBSOCKET_CONNECTION_CLIENT)
		return;
	hello = pb_hello_parse(frame->payload, frame->payload_len, &error);
	if (hello == NULL) {
		pb_tunnel_protocol_error(self, error->message);
		return;
	}
	g_signal_emit(self, pb_tunnel_signals[PB_TUNNEL_SIGNAL_HELLO], 0, hello);
}

/* A PiggyBack message from the peer; @message (nullable) holds it for DATA's payload. */
static void
pb_tunnel_receive_frame(PbTunnel *self, GBytes *message, const PbFrame *frame)
{
	switch (frame->type) {
	case PB_FRAME_DATA:
		pb_tunnel_deliver(self, frame->conn_id, message, frame->payload,
				  frame->payload_len);
		break;
	case PB_FRAME_CLOSE: {
		PbStream *stream = pb_connection_table_lookup(self->table, frame->conn_id);

		if (stream != NULL) {
			pb_tunnel_log_stream(self, frame->conn_id, "closed by the peer");
			pb_tunnel_end_stream(self, stream, FALSE);
		}
		break;
	}
	case PB_FRAME_OPEN:
		pb_tunnel_receive_open(self, frame);
		break;
	case PB_FRAME_WINDOW:
		if (self->features & PB_FEATURE_FLOW)
			pb_tunnel_receive_window(self, frame);
		break;
	case PB_FRAME_EOF:
		if (self->features & PB_FEATURE_EOF)
			pb_tunnel_receive_eof(self, frame->conn_id);
		break;
	case PB_FRAME_HELLO:
		pb_tunnel_receive_hello(self, frame);
		break;
	case PB_FRAME_RESUME:
		if (self->features & PB_FEATURE_RESUME)
			pb_tunnel_receive_resume(self, frame);
		break;
	default:
		break; /* unknown types are dropped, so later versions can add some */
	}
}

static void
pb_tunnel_message_cb(SoupWebsocketConnection *ws, int type, GBytes *message, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);
	g_autoptr(GError) error = NULL;
	PbFrame frame;

	pb_watchdog_heard(self->watchdog);
	self->frames_in++;
	if (type != SOUP_WEBSOCKET_DATA_BINARY) {
		pb_tunnel_protocol_error(self, "text message");
		return;
	}
	if (!pb_frame_parse(message, &frame, &error)) {
		pb_tunnel_protocol_error(self, error->message);
		return;
	}
	pb_tunnel_receive_frame(self, message, &frame);
}

/* A short message other than DATA from PbWsInput's fast path (at least a header long). */
static void
pb_tunnel_ws_message_cb(const guint8 *message, gsize len, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);
	PbFrame frame;

	pb_watchdog_heard(self->watchdog);
	if (pb_frame_parse_data(message, len, &frame, NULL)) /* PbWsInput checked its length */
		pb_tunnel_receive_frame(self, NULL, &frame);
}

/* Takes the peer's messages from now on: the fast path's and libsoup's. */
void
pb_tunnel_receive_start(PbTunnel *self)
{
	PbWsInput *input = pb_ws_stream_get_input(self->ws_stream);

	pb_ws_input_set_data_func(input, pb_tunnel_ws_data_cb, self);
	pb_ws_input_set_message_func(input, pb_tunnel_ws_message_cb, self);
	g_signal_connect(self->ws, "message", G_CALLBACK(pb_tunnel_message_cb), self);
}
