/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-watchdog.h"

#include "pb-frame.h"

/*
 * libsoup 3.2 pings but never gives up waiting for the pong: a peer that stopped answering
 * (killed without a FIN, a dead network path, a stopped process) would hold a tunnel, and
 * on the server its public port, forever. The watchdog closes the WebSocket when nothing at
 * all (a pong, a frame, anything) came from the peer for two ping intervals, or, after
 * pb_watchdog_probe(), within a few seconds. Time while we do not read the WebSocket
 * ourselves (a congested local socket, protocol 1) is no silence of the peer's. libsoup
 * then ends the close handshake on its own timeout if the peer does not answer that
 * either.
 */

struct _PbWatchdog {
	SoupWebsocketConnection *ws; /* (unowned) the tunnel's, which outlives the watchdog */
	PbWsInput *input;	     /* (unowned) what it reads from */
	guint interval_s;	     /* ping interval; 0 = none */
	guint deadline_id;	     /* (nullable) checks the silence every interval */
	gint64 last_heard;	     /* monotonic µs of the last sign of life */
	guint probe_id;		     /* (nullable) the deadline of a probe */
	gint64 probe_since;	     /* monotonic µs when the probe began */
};

static void
pb_watchdog_pong_cb(SoupWebsocketConnection *ws, GBytes *message, gpointer user_data)
{
	pb_watchdog_heard(user_data);
}

/* Something came from the peer. */
void
pb_watchdog_heard(PbWatchdog *self)
{
	self->last_heard = g_get_monotonic_time();
}

static gboolean
pb_watchdog_deadline_cb(gpointer user_data)
{
	PbWatchdog *self = user_data;
	gint64 now = g_get_monotonic_time();

	if (pb_ws_input_get_paused(self->input))
		self->last_heard = now;
	if (now - self->last_heard <= 2 * (gint64)self->interval_s * G_USEC_PER_SEC)
		return G_SOURCE_CONTINUE;
	g_message("Closing the tunnel: no answer from the peer for %u s",
		  (guint)((now - self->last_heard) / G_USEC_PER_SEC));
	self->deadline_id = 0;
	soup_websocket_connection_close(self->ws, PB_CLOSE_COMING_BACK, "no answer to pings");
	return G_SOURCE_REMOVE;
}

/**
 * pb_watchdog_set_interval:
 * @interval_s: seconds between pings; 0 = none
 */
void
pb_watchdog_set_interval(PbWatchdog *self, guint interval_s)
{
	self->interval_s = interval_s;
	g_clear_handle_id(&self->deadline_id, g_source_remove);
	soup_websocket_connection_set_keepalive_interval(self->ws, interval_s);
	if (interval_s == 0)
		return;
	self->last_heard = g_get_monotonic_time();
	self->deadline_id = g_timeout_add_seconds(interval_s, pb_watchdog_deadline_cb, self);
}

static gboolean
pb_watchdog_probe_cb(gpointer user_data)
{
	PbWatchdog *self = user_data;

	self->probe_id = 0;
	soup_websocket_connection_set_keepalive_interval(self->ws, self->interval_s);
	if (self->last_heard >= self->probe_since || pb_ws_input_get_paused(self->input))
		return G_SOURCE_REMOVE;
	g_message("Closing the tunnel: no answer from the peer since the network changed");
	soup_websocket_connection_close(self->ws, PB_CLOSE_COMING_BACK,
					"no answer after a network change");
	return G_SOURCE_REMOVE;
}

/**
 * pb_watchdog_probe:
 * @timeout_s: how long the peer has to answer
 *
 * Checks at once that the peer still answers, instead of at the next deadline: pings every
 * second, and closes the WebSocket if nothing at all came from the peer within @timeout_s.
 * For when the network changed under the WebSocket (a new address, another route), which
 * leaves a TCP connection dead without a word.
 */
void
pb_watchdog_probe(PbWatchdog *self, guint timeout_s)
{
	if (self->probe_id != 0 ||
	    soup_websocket_connection_get_state(self->ws) != SOUP_WEBSOCKET_STATE_OPEN)
		return;
	self->probe_since = g_get_monotonic_time();
	soup_websocket_connection_set_keepalive_interval(self->ws, 1);
	self->probe_id = g_timeout_add_seconds(timeout_s, pb_watchdog_probe_cb, self);
}

/* The WebSocket is closed: nothing more to watch. */
void
pb_watchdog_stop(PbWatchdog *self)
{
	g_clear_handle_id(&self->deadline_id, g_source_remove);
	g_clear_handle_id(&self->probe_id, g_source_remove);
}

PbWatchdog *
pb_watchdog_new(SoupWebsocketConnection *ws, PbWsInput *input)
{
	PbWatchdog *self = g_new0(PbWatchdog, 1);

	self->ws = ws;
	self->input = input;
	self->last_heard = g_get_monotonic_time();
	g_signal_connect(ws, "pong", G_CALLBACK(pb_watchdog_pong_cb), self);
	return self;
}

void
pb_watchdog_free(PbWatchdog *self)
{
	if (self == NULL)
		return;
	pb_watchdog_stop(self);
	g_signal_handlers_disconnect_by_data(self->ws, self);
	g_free(self);
}
