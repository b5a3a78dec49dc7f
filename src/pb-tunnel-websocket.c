/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-text.h"
#include "pb-tunnel-private.h"

/*
 * A tunnel's WebSocket: how it ends and what that means. Either side may start the close
 * handshake; a peer that does with 1000 or 1001 said goodbye. A WebSocket lost rather than
 * closed on purpose parks the tunnel when it has `resume` (pb-tunnel-resume.c); otherwise
 * every connection ends with it. The watchdog pings the peer and closes a WebSocket whose
 * peer fell silent (4000: to come back); PbWsInput refuses frames no peer may send.
 */

/* The peer broke the rules: counted, logged and closed with @code, unless closing already.
 * @what may quote the peer: escaped, and cut to what a close frame holds (123 bytes). */
void
pb_tunnel_close_broken(PbTunnel *self, gushort code, const char *what)
{
	g_autofree char *shown = pb_text_escape(what, -1);
	g_autofree char *close_reason = pb_text_truncate(shown, 123);

	g_message("Closing the tunnel: %s (%u)", shown, code);
	self->protocol_errors++;
	pb_tunnel_close(self, code, close_reason);
}

static void
pb_tunnel_ws_closed_cb(SoupWebsocketConnection *ws, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);

	pb_watchdog_stop(self->watchdog);
	if (pb_tunnel_may_park(self))
		pb_tunnel_park(self); /* a resumption may take its connections over */
	else
		pb_tunnel_abort_all(self);
	g_signal_emit(self, pb_tunnel_signals[PB_TUNNEL_SIGNAL_CLOSED], 0);
}

/* Either side starts the close handshake. When the peer did, libsoup has its close code
 * before it answers (and emits this); when we did, there is none yet. */
static void
pb_tunnel_ws_closing_cb(SoupWebsocketConnection *ws, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);

	self->peer_closed_first = soup_websocket_connection_get_close_code(ws) != 0;
}

/**
 * pb_tunnel_get_said_goodbye:
 *
 * Returns: whether the peer ended the WebSocket on purpose: it started the close handshake
 *   with 1000 (normal) or 1001 (going away). A peer that was lost (no close frame, a reset,
 *   a keepalive that expired) or that we closed did not.
 */
gboolean
pb_tunnel_get_said_goodbye(PbTunnel *self)
{
	gushort code;

	g_return_val_if_fail(PB_IS_TUNNEL(self), FALSE);

	code = soup_websocket_connection_get_close_code(self->ws);
	return self->peer_closed_first &&
	       (code == SOUP_WEBSOCKET_CLOSE_NORMAL || code == SOUP_WEBSOCKET_CLOSE_GOING_AWAY);
}

/* libsoup found the peer breaking RFC 6455 (unmasked, oversized, invalid frames) or the
 * connection failed. */
static void
pb_tunnel_ws_error_cb(SoupWebsocketConnection *ws, GError *error, gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);

	if (error->domain == SOUP_WEBSOCKET_ERROR) {
		self->protocol_errors++;
		self->closed_for_good = TRUE; /* libsoup closes with 1002: not to resume */
	}
	g_info("WebSocket error: %s", error->message);
}

/* PbWsInput refused a frame header (a length with its top bit set, a message over the
 * limit, fragments included): nothing more is read; the close frame says why. */
static void
pb_tunnel_ws_refused_cb(PbWsInput *input, guint code, const char *reason, gpointer user_data)
{
	pb_tunnel_close_broken(PB_TUNNEL(user_data), (gushort)code, reason);
}

SoupWebsocketConnection *
pb_tunnel_get_websocket(PbTunnel *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL(self), NULL);
	return self->ws;
}

void
pb_tunnel_close(PbTunnel *self, gushort code, const char *reason)
{
	g_return_if_fail(PB_IS_TUNNEL(self));

	if (soup_websocket_connection_get_state(self->ws) != SOUP_WEBSOCKET_STATE_OPEN)
		return;
	if (code != PB_CLOSE_COMING_BACK)
		self->closed_for_good = TRUE;
	soup_websocket_connection_close(self->ws, code, reason);
}

/**
 * pb_tunnel_set_keepalive:
 * @interval_s: seconds between pings; 0 = none
 *
 * Pings the peer every @interval_s and closes the tunnel when nothing at all came from it
 * for two intervals (see PbWatchdog); "closed" follows.
 */
void
pb_tunnel_set_keepalive(PbTunnel *self, guint interval_s)
{
	g_return_if_fail(PB_IS_TUNNEL(self));
	pb_watchdog_set_interval(self->watchdog, interval_s);
}

/**
 * pb_tunnel_set_max_message_size:
 * @size: the largest WebSocket message accepted from the peer, in bytes; a larger one
 *   closes the tunnel with 1009 (message too big)
 */
void
pb_tunnel_set_max_message_size(PbTunnel *self, guint64 size)
{
	g_return_if_fail(PB_IS_TUNNEL(self));

	soup_websocket_connection_set_max_incoming_payload_size(self->ws, size);
	pb_ws_input_set_max_message_size(pb_ws_stream_get_input(self->ws_stream), size);
}

/**
 * pb_tunnel_probe:
 * @timeout_s: how long the peer has to answer
 *
 * Checks at once that the peer still answers (see pb_watchdog_probe()): for when the
 * network changed under the WebSocket.
 */
void
pb_tunnel_probe(PbTunnel *self, guint timeout_s)
{
	g_return_if_fail(PB_IS_TUNNEL(self));
	pb_watchdog_probe(self->watchdog, timeout_s);
}

/* Listens to the WebSocket and what it runs on; called once, by pb_tunnel_new(). */
void
pb_tunnel_watch_websocket(PbTunnel *self)
{
	g_signal_connect(self->ws, "closed", G_CALLBACK(pb_tunnel_ws_closed_cb), self);
	g_signal_connect(self->ws, "error", G_CALLBACK(pb_tunnel_ws_error_cb), self);
	g_signal_connect(self->ws, "closing", G_CALLBACK(pb_tunnel_ws_closing_cb), self);
	g_signal_connect(pb_ws_stream_get_input(self->ws_stream), "refused",
			 G_CALLBACK(pb_tunnel_ws_refused_cb), self);
	self->watchdog = pb_watchdog_new(self->ws, pb_ws_stream_get_input(self->ws_stream));
}
