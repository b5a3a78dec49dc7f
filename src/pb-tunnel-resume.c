/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-error.h"
#include "pb-frame.h"
#include "pb-replay.h"
#include "pb-resume.h"
#include "pb-tunnel-private.h"

/*
 * Protocol 2 `resume` (needs `flow`): the tunneled connections outlive a lost WebSocket.
 *
 * While the WebSocket is up, each connection keeps what it sent until the peer confirmed
 * it (PbReplay): with `resume` a WINDOW frame carries, after its increment, how many bytes
 * its sender received on that connection in all. Credit comes back only for bytes written
 * on, so what a side keeps is bounded by the peer's window.
 *
 * When the WebSocket is lost rather than closed on purpose (no close frame, a reset, an
 * expired keepalive, a client reconnecting: close code 4000), the tunnel parks: its
 * connections stay open and are no longer read, and the tunnel says "closed". Its owner
 * keeps it for the grace period (the server in its session table, the client until its
 * next HELLO), or drops it, which closes them as before.
 *
 * A new tunnel of the same session takes the parked connections over (pb_tunnel_resume())
 * and sends RESUME: per connection, how much it received, how much more the peer may send
 * (the credit, WINDOW frames lost with the WebSocket included) and whether the peer's EOF
 * came. Each side sends exactly one RESUME, before any frame of the connections it lists:
 * the server right after HELLO, the client as it takes HELLO. Its connections stay unread
 * until the peer's RESUME comes; then each side sends again what the peer did not receive
 * (and EOF if that was lost), takes the credit the peer gives, and goes on. A connection
 * only one side lists is one the other no longer has: the side that has it closes it. A
 * peer that lies about a connection (more received than sent, less credit than it had, an
 * EOF never sent) gets that connection closed; a malformed or second RESUME closes the
 * tunnel (1002).
 *
 * A connection whose two directions have ended lingers until the peer says it has all we
 * sent: each side then sends CLOSE (which comes after all its DATA and its EOF, so it says
 * "I have everything of yours") and keeps the connection, its socket closed, until the
 * peer's CLOSE. Without that, the side that ended first forgot a connection whose last
 * bytes and EOF were still on a path that was then lost: the peer listed it in RESUME, we
 * did not, and the peer closed it without them.
 */

/* As many entries as a RESUME sent in one frame holds. */
#define PB_RESUME_MAX_ENTRIES (PB_READ_CHUNK / PB_RESUME_ENTRY_SIZE)

/* Seconds between walks that free the replay rings of connections with nothing kept. */
#define PB_RESUME_TRIM_S 2

/* At most this many connections of a tunnel linger; past it the oldest goes (it can no
 * longer be resumed). A peer's CLOSE comes within a round trip, so these are the
 * connections that ended in the last one; a peer that never sends it (a hostile one, or
 * a build from before lingering) costs no more. */
#define PB_RESUME_LINGER_MAX 128

static gboolean
pb_tunnel_resume_trim_cb(gpointer user_data)
{
	PbTunnel *self = PB_TUNNEL(user_data);
	g_autoptr(GPtrArray) live = pb_connection_table_list_live(self->table);

	for (guint i = 0; i < live->len; i++) {
		PbReplay *replay = pb_stream_get_replay(live->pdata[i]);

		if (replay != NULL)
			pb_replay_trim(replay);
	}
	return G_SOURCE_CONTINUE;
}

/* With `resume`, a new stream keeps what it sends until confirmed: at most the largest
 * window the peer may give it. A ring whose bytes are all confirmed is freed by a walk
 * every PB_RESUME_TRIM_S, not at once: a busy connection keeps its ring. */
void
pb_tunnel_resume_init_stream(PbTunnel *self, PbStream *stream)
{
	if (!(self->features & PB_FEATURE_RESUME))
		return;
	pb_stream_set_replay(stream, pb_replay_new(MAX(self->window, PB_FLOW_WINDOW_MAX)));
	if (self->trim_id == 0)
		self->trim_id =
		    g_timeout_add_seconds(PB_RESUME_TRIM_S, pb_tunnel_resume_trim_cb, self);
}

/* How much of @want (what credit allows) @stream may send now: no more than its replay
 * buffer has room for, whatever credit a peer gives. */
gsize
pb_tunnel_resume_sendable(PbStream *stream, gsize want)
{
	PbReplay *replay = pb_stream_get_replay(stream);

	return replay != NULL ? MIN(want, pb_replay_get_room(replay)) : want;
}

/* @len bytes of DATA are being sent on @stream: kept until the peer confirms them. */
void
pb_tunnel_resume_sent(PbTunnel *self, PbStream *stream, const guint8 *data, gsize len)
{
	PbReplay *replay = pb_stream_get_replay(stream);

	if (replay != NULL && !pb_replay_push(replay, data, len))
		g_warn_if_reached(); /* pb_tunnel_resume_sendable() left room for it */
}

/* Writes WINDOW's payload: the increment, then with `resume` the bytes received in all.
 * Returns: its length */
gsize
pb_tunnel_resume_write_window(PbTunnel *self, PbStream *stream, guint8 *payload, guint32 increment)
{
	pb_frame_write_u32(payload, increment);
	if (!(self->features & PB_FEATURE_RESUME))
		return 4;
	pb_frame_write_u64(payload + 4, pb_stream_get_flow(stream)->received);
	return 12;
}

/* Fails @stream for a peer that lies about it: that connection closes, not the tunnel. */
static void
pb_tunnel_resume_refuse_lie(PbTunnel *self, PbStream *stream, const char *what)
{
	g_autoptr(GError) error = g_error_new_literal(PB_ERROR, PB_ERROR_PROTOCOL, what);

	self->protocol_errors++;
	pb_tunnel_fail_stream(self, stream, error);
}

/**
 * pb_tunnel_resume_take_window:
 * @frame: a WINDOW frame for @stream, of the length its features call for
 *
 * With `resume`, what the peer received is not kept any longer. A count it cannot have
 * (less than before, more than we sent) closes the connection.
 *
 * Returns: whether @stream goes on
 */
gboolean
pb_tunnel_resume_take_window(PbTunnel *self, PbStream *stream, const PbFrame *frame)
{
	PbReplay *replay = pb_stream_get_replay(stream);

	if (!(self->features & PB_FEATURE_RESUME) || replay == NULL)
		return TRUE;
	if (pb_replay_acknowledge(replay, pb_frame_read_u64(frame->payload + 4)))
		return TRUE;
	pb_tunnel_resume_refuse_lie(self, stream,
				    "WINDOW says more was received than was sent, or less than "
				    "before");
	return FALSE;
}

/* Whether @stream was taken over from a lost tunnel and waits for the peer's RESUME. */
gboolean
pb_tunnel_resume_is_waiting(PbTunnel *self, PbStream *stream)
{
	return self->resuming != NULL &&
	       g_hash_table_contains(self->resuming, GUINT_TO_POINTER(pb_stream_get_id(stream)));
}

static void
pb_tunnel_resume_keep_lingering(PbTunnel *self, PbStream *stream)
{
	g_queue_push_tail(&self->lingering, stream);
	if (self->lingering.length > PB_RESUME_LINGER_MAX) {
		PbStream *oldest = g_queue_pop_head(&self->lingering);

		pb_tunnel_log_stream(self, pb_stream_get_id(oldest), "lingered too long");
		pb_tunnel_end_stream(self, oldest, FALSE);
	}
}

/**
 * pb_tunnel_resume_linger:
 *
 * Both directions of @stream have ended. With `resume`, tells the peer with CLOSE that all
 * it sent came, closes the socket once it took what was queued, and keeps @stream until the
 * peer's CLOSE says the same of ours (then it ends as any connection the peer closed).
 *
 * Returns: whether @stream lingers; without `resume` it does not
 */
gboolean
pb_tunnel_resume_linger(PbTunnel *self, PbStream *stream)
{
	if (!(self->features & PB_FEATURE_RESUME))
		return FALSE;
	pb_tunnel_log_stream(self, pb_stream_get_id(stream), "lingers for the peer's CLOSE");
	pb_tunnel_send_control(self, PB_FRAME_CLOSE, pb_stream_get_id(stream), NULL, 0);
	pb_stream_finish(stream);
	pb_tunnel_resume_keep_lingering(self, stream);
	return TRUE;
}

/* @stream stops being live here: it no longer lingers. (A retired one never does.) */
void
pb_tunnel_resume_unlinger(PbTunnel *self, PbStream *stream)
{
	if (self->lingering.length > 0 && pb_stream_get_ended(stream) &&
	    pb_connection_table_is_live(self->table, stream))
		g_queue_remove(&self->lingering, stream);
}

/* Whether the WebSocket that just closed was lost, not ended on purpose: its connections
 * may then wait for a resumption. A peer that closed first said goodbye, unless with 4000. */
gboolean
pb_tunnel_may_park(PbTunnel *self)
{
	if (!(self->features & PB_FEATURE_RESUME) || self->closed_for_good)
		return FALSE;
	return !self->peer_closed_first ||
	       soup_websocket_connection_get_close_code(self->ws) == PB_CLOSE_COMING_BACK;
}

/* The WebSocket is lost: the connections stay open, unread, for a resumption. */
void
pb_tunnel_park(PbTunnel *self)
{
	self->parked = TRUE;
	pb_connection_table_set_reading(self->table, FALSE);
}

/**
 * pb_tunnel_is_parked:
 *
 * Returns: whether the tunnel's WebSocket was lost with `resume`: its connections wait,
 *   unread, for a new tunnel to take them over (pb_tunnel_resume())
 */
gboolean
pb_tunnel_is_parked(PbTunnel *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL(self), FALSE);
	return self->parked;
}

/* Moves @lost's connections to us, unread until the peer's RESUME, and lists the live ones
 * in @entries for ours. Those closing already just finish here. */
static void
pb_tunnel_take_over(PbTunnel *self, PbTunnel *lost, GArray *entries)
{
	g_autoptr(GPtrArray) live = pb_connection_table_list_live(lost->table);
	g_autoptr(GPtrArray) retired = pb_connection_table_list_retired(lost->table);

	/* a new connection never gets the id of one the peer may still hold */
	pb_connection_table_continue_ids(self->table, lost->table);
	for (guint i = 0; i < live->len + retired->len; i++) {
		gboolean is_live = i < live->len;
		PbStream *stream = is_live ? live->pdata[i] : retired->pdata[i - live->len];
		guint32 id = pb_stream_get_id(stream);
		PbFlow *flow = pb_stream_get_flow(stream);
		guint64 growth = flow->window - flow->initial;
		PbResumeEntry entry = {0};

		pb_tunnel_detach_stream(lost, stream);
		if (pb_connection_table_lookup(self->table, id) != NULL ||
		    (is_live && entries->len >= PB_RESUME_MAX_ENTRIES)) {
			pb_stream_abort(stream); /* more than a RESUME lists */
			self->streams_dropped += is_live;
			continue;
		}
		/* its window's growth comes along, out of our budget */
		lost->growth_budget += growth;
		self->growth_budget -= MIN(growth, self->growth_budget);
		pb_tunnel_attach_stream(self, stream);
		pb_tunnel_count_service(self, pb_stream_get_service(stream));
		if (!is_live) {
			pb_connection_table_retire(self->table, stream);
			continue;
		}
		pb_stream_set_blocked(stream, TRUE);
		if (pb_stream_get_ended(stream))
			pb_tunnel_resume_keep_lingering(self, stream);
		g_hash_table_add(self->resuming, GUINT_TO_POINTER(id));
		entry.conn_id = id;
		entry.received = flow->received;
		entry.credit = pb_flow_get_resume_credit(flow);
		entry.eof = pb_stream_get_write_ended(stream);
		g_array_append_val(entries, entry);
	}
	g_clear_pointer(&lost->resuming, g_hash_table_unref);
}

/**
 * pb_tunnel_resume:
 * @lost: (nullable): the tunnel of the same session whose WebSocket was lost; %NULL when
 *   there is none (the server had no such session, the client none to come back with)
 *
 * With `resume`, once HELLO is sent (server) or taken (client): takes over @lost's
 * connections, if any, and sends RESUME listing them. Call it once. "resumed" follows the
 * peer's RESUME.
 */
void
pb_tunnel_resume(PbTunnel *self, PbTunnel *lost)
{
	g_autoptr(GArray) entries = g_array_new(FALSE, FALSE, sizeof(PbResumeEntry));
	g_autoptr(GBytes) payload = NULL;

	g_return_if_fail(PB_IS_TUNNEL(self));
	g_return_if_fail(lost == NULL || PB_IS_TUNNEL(lost));
	g_return_if_fail(self->features & PB_FEATURE_RESUME);
	g_return_if_fail(!self->resume_sent);

	self->resume_sent = TRUE;
	self->resuming = g_hash_table_new(NULL, NULL);
	if (lost != NULL && lost != self)
		pb_tunnel_take_over(self, lost, entries);
	payload = pb_resume_write((const PbResumeEntry *)(gpointer)entries->data, entries->len);
	pb_tunnel_send_control(self, PB_FRAME_RESUME, PB_CONTROL_ID,
			       g_bytes_get_data(payload, NULL), g_bytes_get_size(payload));
}

/* The peer listed @stream, which we took over, as @entry: send again what it did not get
 * and carry on. Returns: FALSE if the peer lied about it (then it is closed). */
static gboolean
pb_tunnel_resume_stream(PbTunnel *self, PbStream *stream, const PbResumeEntry *entry)
{
	PbReplay *replay = pb_stream_get_replay(stream);
	PbFlow *flow = pb_stream_get_flow(stream);
	g_autoptr(GPtrArray) resend = NULL;
	guint32 id = entry->conn_id;

	if (!pb_replay_rewind(replay, entry->received, &resend, NULL)) {
		pb_tunnel_resume_refuse_lie(self, stream,
					    "RESUME says more was received than was sent, or less "
					    "than was confirmed");
		return FALSE;
	}
	if (!pb_flow_resume(flow, pb_replay_get_sent(replay), entry->received, entry->credit)) {
		pb_tunnel_resume_refuse_lie(self, stream,
					    "RESUME gives less credit than was taken");
		return FALSE;
	}
	if (entry->eof && !pb_stream_get_read_ended(stream)) {
		pb_tunnel_resume_refuse_lie(self, stream,
					    "RESUME says an EOF came that was not sent");
		return FALSE;
	}
	pb_replay_acknowledge(replay, entry->received);
	for (guint i = 0; i < resend->len; i++) {
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(resend->pdata[i], &len);

		/* each piece is part of one DATA payload sent before: at most PB_READ_CHUNK */
		memcpy(self->frame_buf + PB_TUNNEL_PAYLOAD_OFFSET, data, len);
		pb_tunnel_send(self, PB_FRAME_DATA, id, len);
	}
	if (pb_stream_get_read_ended(stream) && !entry->eof)
		pb_tunnel_send_control(self, PB_FRAME_EOF, id, NULL, 0);
	/* lingering: our CLOSE may have been lost with the path, and the peer waits for it */
	if (pb_stream_get_ended(stream))
		pb_tunnel_send_control(self, PB_FRAME_CLOSE, id, NULL, 0);
	pb_tunnel_check_ws_congestion(self, stream);
	pb_tunnel_log_stream(self, id, "resumed");
	pb_stream_set_blocked(stream,
			      pb_tunnel_resume_sendable(stream, pb_flow_sendable(flow, 1)) == 0);
	return TRUE;
}

/* The peer's RESUME (connId 0): what it received of each connection it kept. */
void
pb_tunnel_receive_resume(PbTunnel *self, const PbFrame *frame)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) entries = NULL;
	g_autoptr(GArray) gone = g_array_new(FALSE, FALSE, sizeof(guint32));
	GHashTableIter iter;
	gpointer key;
	guint resumed = 0;
	guint dropped = 0;

	if (frame->conn_id != PB_CONTROL_ID) {
		pb_tunnel_protocol_error(self, "RESUME on a connection's id");
		return;
	}
	if (self->resume_taken) {
		pb_tunnel_protocol_error(self, "a second RESUME");
		return;
	}
	entries =
	    pb_resume_parse(frame->payload, frame->payload_len, PB_RESUME_MAX_ENTRIES, &error);
	if (entries == NULL) {
		pb_tunnel_protocol_error(self, error->message);
		return;
	}
	self->resume_taken = TRUE;
	for (guint i = 0; i < entries->len; i++) {
		const PbResumeEntry *entry = &g_array_index(entries, PbResumeEntry, i);
		PbStream *stream = pb_connection_table_lookup(self->table, entry->conn_id);

		/* one we did not list, we do not have: the peer closes it on our RESUME */
		if (stream == NULL || self->resuming == NULL ||
		    !g_hash_table_remove(self->resuming, GUINT_TO_POINTER(entry->conn_id)))
			continue;
		if (pb_tunnel_resume_stream(self, stream, entry))
			resumed++;
		else
			dropped++;
	}
	/* ours the peer did not list, it no longer has: they finish as if it had closed them */
	if (self->resuming != NULL) {
		g_hash_table_iter_init(&iter, self->resuming);
		while (g_hash_table_iter_next(&iter, &key, NULL)) {
			guint32 id = GPOINTER_TO_UINT(key);

			g_array_append_val(gone, id);
		}
		g_clear_pointer(&self->resuming, g_hash_table_unref);
	}
	for (guint i = 0; i < gone->len; i++) {
		guint32 id = g_array_index(gone, guint32, i);
		PbStream *stream = pb_connection_table_lookup(self->table, id);

		if (stream == NULL)
			continue;
		pb_tunnel_log_stream(self, id, "not resumed: the peer no longer has it");
		pb_tunnel_end_stream(self, stream, FALSE);
		dropped++;
	}
	self->streams_resumed += resumed;
	self->streams_dropped += dropped;
	g_signal_emit(self, pb_tunnel_signals[PB_TUNNEL_SIGNAL_RESUMED], 0, resumed, dropped);
}

/* The tunnel goes: nothing waits for a RESUME any more. */
void
pb_tunnel_resume_clear(PbTunnel *self)
{
	g_clear_handle_id(&self->trim_id, g_source_remove);
	g_clear_pointer(&self->resuming, g_hash_table_unref);
	g_queue_clear(&self->lingering);
}
