/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "pb-flow.h"
#include "pb-frame.h"
#include "pb-poller.h"
#include "pb-queue-budget.h"
#include "pb-socket-io.h"

/*
 * One tunneled TCP connection: its socket, and the bytes received for it from the
 * WebSocket that its socket has not taken yet.
 *
 * The stream does not read by itself: while reading is on it calls its readable function
 * and the tunnel reads into its own frame buffer, so an idle stream holds no read buffer. Writes
 * go to the socket at once; what the socket does not take waits in a queue of GBytes
 * slices (no copy), and the stream is "congested" from PB_STREAM_HIGH_WATERMARK queued
 * bytes until the queue drops under PB_STREAM_LOW_WATERMARK ("relieved").
 *
 * Before the connection exists (the client is still dialing its local service) writes
 * only queue up.
 *
 * For protocol v2 a stream also carries its credit (PbFlow; the wrote function tells the
 * tunnel what reached the socket), can be blocked while it has no credit, and its two directions
 * end apart: reading ends at the socket's end of stream, writing with a shutdown once the queue is
 * written (a TCP half-close).
 */

struct _PbStream {
	GObject parent_instance;
	guint32 id;
	guint32 service; /* which of the client's services it is for (`services`); 0 = the first */
	GSocketConnection *connection; /* (owned) (nullable) until connected */
	GSocket *socket;	       /* (unowned) the connection's */
	PbPollerWatch *watch;	       /* (owned) (nullable) while connected and open */
	gboolean want_read;	       /* the watch calls pb_stream_readable_cb */
	gboolean want_write;	       /* the watch calls pb_stream_writable_cb */
	GQueue pending;		       /* (owned) GBytes the socket has not taken */
	gsize pending_offset;	       /* bytes of the head already written */
	gsize pending_bytes;
	PbQueueShare *share; /* (unowned) (nullable) where @pending_bytes are counted too */
	gboolean reading;
	gboolean blocked;     /* no credit to send what it would read */
	gboolean read_ended;  /* the socket's end of stream was seen */
	gboolean write_ended; /* shut down writing once the queue is written */
	gboolean shut_down;   /* ... and it has been */
	gboolean congested;
	gsize high_watermark;
	PbFlow flow;
	PbReplay *replay;   /* (owned) (nullable) with `resume`: what the peer may not have */
	gboolean finishing; /* close once the queue is empty */
	gboolean closed;
	gint64 last_active; /* monotonic µs of the last byte read from or written to the socket */
	const PbStreamIoFuncs *io_funcs; /* (nullable) */
	gpointer io_data;
};

enum { SIGNAL_RELIEVED, SIGNAL_CLOSED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST] = {0};

G_DEFINE_FINAL_TYPE(PbStream, pb_stream, G_TYPE_OBJECT)

static void
pb_stream_readable_cb(gpointer user_data)
{
	g_autoptr(PbStream) self = g_object_ref(PB_STREAM(user_data)); /* the tunnel may drop it */

	if (self->io_funcs != NULL)
		self->io_funcs->readable(self, self->io_data);
}

static void
pb_stream_update_watch(PbStream *self)
{
	if (self->watch != NULL)
		pb_poller_watch_set(self->watch, self->want_read, self->want_write);
}

static void
pb_stream_update_reading(PbStream *self)
{
	self->want_read = self->reading && !self->blocked && !self->read_ended &&
			  self->socket != NULL && !self->finishing && !self->closed;
	pb_stream_update_watch(self);
}

static void
pb_stream_close_socket(PbStream *self)
{
	self->closed = TRUE;
	self->want_read = self->want_write = FALSE;
	g_clear_pointer(&self->watch, pb_poller_watch_free); /* before the fd is closed */
	g_queue_clear_full(&self->pending, (GDestroyNotify)g_bytes_unref);
	if (self->share != NULL)
		pb_queue_share_remove(self->share, self->pending_bytes);
	self->share = NULL; /* nothing is queued once closed */
	self->pending_bytes = self->pending_offset = 0;
	if (self->connection != NULL)
		g_io_stream_close(G_IO_STREAM(self->connection), NULL, NULL);
}

static void
pb_stream_writable_cb(gpointer user_data);

static void
pb_stream_wrote(PbStream *self, gsize n)
{
	if (n > 0)
		self->last_active = g_get_monotonic_time();
	if (n > 0 && self->io_funcs != NULL) {
		/* the caller goes on with it */
		G_GNUC_UNUSED g_autoptr(PbStream) keep = g_object_ref(self);

		self->io_funcs->wrote(self, (guint64)n, self->io_data);
	}
}

/* Once the queue is written, a stream whose writing ended shuts its socket's write half. */
static void
pb_stream_maybe_shut_down(PbStream *self)
{
	if (self->write_ended && !self->shut_down && self->socket != NULL && !self->closed &&
	    g_queue_is_empty(&self->pending)) {
		self->shut_down = TRUE;
		g_socket_shutdown(self->socket, FALSE, TRUE, NULL);
	}
}

/* Writes as much of the queue as the socket takes. */
static gboolean
pb_stream_flush(PbStream *self, GError **error)
{
	while (!g_queue_is_empty(&self->pending)) {
		GBytes *head = g_queue_peek_head(&self->pending);
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(head, &len);
		gssize n = pb_socket_io_send(
		    self->socket,
		    &(GOutputVector){data + self->pending_offset, len - self->pending_offset}, 1,
		    error);

		if (n < 0) {
			if (!g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
				return FALSE;
			g_clear_error(error);
			break;
		}
		self->pending_offset += (gsize)n;
		self->pending_bytes -= (gsize)n;
		if (self->share != NULL)
			pb_queue_share_remove(self->share, (gsize)n);
		pb_stream_wrote(self, (gsize)n);
		if (self->pending_offset < len)
			break; /* the socket is full */
		g_bytes_unref(g_queue_pop_head(&self->pending));
		self->pending_offset = 0;
	}

	self->want_write = !g_queue_is_empty(&self->pending);
	pb_stream_update_watch(self);
	pb_stream_maybe_shut_down(self);
	return TRUE;
}

/* Flushes outside any call from the tunnel, and says what came of it: "closed" on an error
 * or once a finishing stream is done, "relieved" when the queue got short again. */
static void
pb_stream_flush_and_report(PbStream *self)
{
	G_GNUC_UNUSED g_autoptr(PbStream) ref = g_object_ref(self); /* handlers may drop it */
	g_autoptr(GError) error = NULL;

	if (!pb_stream_flush(self, &error)) {
		pb_stream_close_socket(self);
		g_signal_emit(self, signals[SIGNAL_CLOSED], 0, error);
		return;
	}
	if (self->congested && self->pending_bytes <= PB_STREAM_LOW_WATERMARK) {
		self->congested = FALSE;
		g_signal_emit(self, signals[SIGNAL_RELIEVED], 0);
	}
	if (self->finishing && g_queue_is_empty(&self->pending) && !self->closed) {
		pb_stream_close_socket(self);
		g_signal_emit(self, signals[SIGNAL_CLOSED], 0, NULL);
	}
}

static void
pb_stream_writable_cb(gpointer user_data)
{
	pb_stream_flush_and_report(PB_STREAM(user_data)); /* stops watching once it is empty */
}

/**
 * pb_stream_set_io_funcs:
 * @funcs: (nullable): what to call, or %NULL for nothing; it must outlive its use
 *
 * Whom the stream tells, for every read and every write, that its socket is readable and
 * how many bytes reached it. Plain function calls rather than signals: they come with
 * every message, and an emission cost 700 instructions, 2 300 with the guint64 of
 * "wrote" (marshalled through libffi), a fifth of all a tunnel end did per round trip.
 */
void
pb_stream_set_io_funcs(PbStream *self, const PbStreamIoFuncs *funcs, gpointer user_data)
{
	g_return_if_fail(PB_IS_STREAM(self));
	self->io_funcs = funcs;
	self->io_data = user_data;
}

/* Which of the client's services the connection is for: 0 is the first (see OPEN). */
guint32
pb_stream_get_service(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), 0);
	return self->service;
}

void
pb_stream_set_service(PbStream *self, guint32 service)
{
	g_return_if_fail(PB_IS_STREAM(self));
	self->service = service;
}

guint32
pb_stream_get_id(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), 0);
	return self->id;
}

/**
 * pb_stream_set_connection:
 *
 * Attaches the TCP connection, with TCP_NODELAY: a tunnel must not add latency to small
 * writes, it already sends what one read returned as one frame. Writes what was queued
 * meanwhile; a stream that was finished closes once that is written, emitting "closed".
 */
void
pb_stream_set_connection(PbStream *self, GSocketConnection *connection)
{
	g_autoptr(GError) error = NULL;

	g_return_if_fail(PB_IS_STREAM(self));
	g_return_if_fail(self->connection == NULL);

	self->connection = g_object_ref(connection);
	if (self->closed) {
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL); /* aborted meanwhile */
		return;
	}
	self->socket = g_socket_connection_get_socket(connection);
	g_socket_set_option(self->socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
	self->watch = pb_poller_watch_new(g_socket_get_fd(self->socket), pb_stream_readable_cb,
					  pb_stream_writable_cb, self, &error);
	if (self->watch == NULL) {
		pb_stream_close_socket(self);
		g_signal_emit(self, signals[SIGNAL_CLOSED], 0, error);
		return;
	}
	pb_stream_update_reading(self);
	pb_stream_flush_and_report(self);
}

gboolean
pb_stream_is_connected(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), FALSE);
	return self->socket != NULL;
}

/* While on (and connected), the readable function is called whenever the socket has data or
 * ended. */
void
pb_stream_set_reading(PbStream *self, gboolean reading)
{
	g_return_if_fail(PB_IS_STREAM(self));

	self->reading = reading;
	pb_stream_update_reading(self);
}

/**
 * pb_stream_receive:
 *
 * Reads what the socket has, without blocking.
 *
 * Returns: the number of bytes read, 0 at the end of the stream, -1 on error
 *   (%G_IO_ERROR_WOULD_BLOCK when there was nothing to read after all)
 */
gssize
pb_stream_receive(PbStream *self, guint8 *buf, gsize size, GError **error)
{
	g_return_val_if_fail(PB_IS_STREAM(self), -1);
	gssize n;

	g_return_val_if_fail(self->socket != NULL, -1);

	n = pb_socket_io_receive(self->socket, buf, size, error);
	if (n > 0)
		self->last_active = g_get_monotonic_time();
	return n;
}

/* Monotonic µs of the last byte that went through the socket, either way (or of the
 * stream's creation). */
gint64
pb_stream_get_last_active(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), 0);
	return self->last_active;
}

/* Queues @bytes (a reference, no copy) and writes what the socket takes now. */
static gboolean
pb_stream_queue(PbStream *self, GBytes *bytes, GError **error)
{
	g_queue_push_tail(&self->pending, bytes);
	self->pending_bytes += g_bytes_get_size(bytes);
	if (self->share != NULL)
		pb_queue_share_add(self->share, g_bytes_get_size(bytes));
	if (self->socket != NULL && !self->want_write && !pb_stream_flush(self, error)) {
		pb_stream_close_socket(self);
		return FALSE;
	}
	if (self->pending_bytes >= self->high_watermark)
		self->congested = TRUE;
	return TRUE;
}

/**
 * pb_stream_write:
 * @bytes: data for the socket
 * @offset: where in @bytes the data starts
 *
 * Writes what the socket takes now and queues the rest (a reference to @bytes, no copy).
 * Check pb_stream_is_congested() afterwards.
 *
 * Returns: %FALSE if the socket failed; the stream is closed then.
 */
gboolean
pb_stream_write(PbStream *self, GBytes *bytes, gsize offset, GError **error)
{
	gsize len = g_bytes_get_size(bytes);

	g_return_val_if_fail(PB_IS_STREAM(self), FALSE);
	g_return_val_if_fail(offset <= len, FALSE);

	if (self->closed || offset == len)
		return TRUE;
	return pb_stream_queue(self,
			       offset == 0 ? g_bytes_ref(bytes)
					   : g_bytes_new_from_bytes(bytes, offset, len - offset),
			       error);
}

/**
 * pb_stream_write_data:
 * @data: (array length=len): data for the socket, valid during the call only
 *
 * Like pb_stream_write(), for bytes the caller keeps: when nothing is queued they go to
 * the socket straight from @data, and only what the socket does not take is copied.
 */
gboolean
pb_stream_write_data(PbStream *self, const guint8 *data, gsize len, GError **error)
{
	gssize n = 0;

	g_return_val_if_fail(PB_IS_STREAM(self), FALSE);

	if (self->closed || len == 0)
		return TRUE;
	if (self->socket != NULL && g_queue_is_empty(&self->pending)) {
		n = pb_socket_io_send(self->socket, &(GOutputVector){data, len}, 1, error);
		if (n < 0) {
			if (!g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
				pb_stream_close_socket(self);
				return FALSE;
			}
			g_clear_error(error);
			n = 0;
		}
		pb_stream_wrote(self, (gsize)n);
		if ((gsize)n == len)
			return TRUE;
	}
	return pb_stream_queue(self, g_bytes_new(data + n, len - (gsize)n), error);
}

/* Protocol v2 state of the stream, for the tunnel to keep. */
PbFlow *
pb_stream_get_flow(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), NULL);
	return &self->flow;
}

/* With `resume`: what was sent on the stream and the peer has not confirmed. */
PbReplay *
pb_stream_get_replay(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), NULL);
	return self->replay;
}

/* @replay: (transfer full) */
void
pb_stream_set_replay(PbStream *self, PbReplay *replay)
{
	g_return_if_fail(PB_IS_STREAM(self));

	pb_replay_free(self->replay);
	self->replay = replay;
}

/* A blocked stream is not read (it has no credit); reading resumes when unblocked. */
void
pb_stream_set_blocked(PbStream *self, gboolean blocked)
{
	g_return_if_fail(PB_IS_STREAM(self));

	self->blocked = blocked;
	pb_stream_update_reading(self);
}

gboolean
pb_stream_get_blocked(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), FALSE);
	return self->blocked;
}

/* The socket's end of stream was read: reading is over, writing goes on. */
void
pb_stream_end_reading(PbStream *self)
{
	g_return_if_fail(PB_IS_STREAM(self));

	self->read_ended = TRUE;
	pb_stream_update_reading(self);
}

gboolean
pb_stream_get_read_ended(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), FALSE);
	return self->read_ended;
}

/* Nothing more will be written: shut down the socket's write half once the queue is out. */
void
pb_stream_end_writing(PbStream *self)
{
	g_return_if_fail(PB_IS_STREAM(self));

	self->write_ended = TRUE;
	pb_stream_maybe_shut_down(self);
}

gboolean
pb_stream_get_write_ended(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), FALSE);
	return self->write_ended;
}

/* Returns: whether both directions ended (`eof`): nothing more is read or written */
gboolean
pb_stream_get_ended(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), FALSE);
	return self->read_ended && self->write_ended;
}

/**
 * pb_stream_set_queue_share:
 * @share: (nullable): counts what the stream queues too (the tunnel's part of the server's
 *   --max-buffer); it must outlive the stream's socket
 *
 * What is queued now moves from the share before to @share (a stream that a resumption
 * moves to a new tunnel).
 */
void
pb_stream_set_queue_share(PbStream *self, PbQueueShare *share)
{
	g_return_if_fail(PB_IS_STREAM(self));

	if (self->share != NULL)
		pb_queue_share_remove(self->share, self->pending_bytes);
	self->share = self->closed ? NULL : share; /* nothing is queued once closed */
	if (self->share != NULL)
		pb_queue_share_add(self->share, self->pending_bytes);
}

/* From @high queued bytes the stream is congested (until the low watermark). */
void
pb_stream_set_high_watermark(PbStream *self, gsize high)
{
	g_return_if_fail(PB_IS_STREAM(self));
	self->high_watermark = high;
}

gsize
pb_stream_get_pending(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), 0);
	return self->pending_bytes;
}

gboolean
pb_stream_is_congested(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), FALSE);
	return self->congested;
}

/**
 * pb_stream_finish:
 *
 * Nothing more will be written or read: closes the socket once the queue is written (if
 * the stream is still connecting, once it has connected and written it).
 *
 * Returns: %TRUE if the stream closed at once; otherwise "closed" follows.
 */
gboolean
pb_stream_finish(PbStream *self)
{
	g_return_val_if_fail(PB_IS_STREAM(self), TRUE);

	self->finishing = TRUE;
	pb_stream_update_reading(self);
	if (self->closed)
		return TRUE;
	if (g_queue_is_empty(&self->pending)) {
		pb_stream_close_socket(self);
		return TRUE;
	}
	return FALSE; /* flushing, or still connecting with data to deliver */
}

/* Closes the socket now, dropping anything queued. */
void
pb_stream_abort(PbStream *self)
{
	g_return_if_fail(PB_IS_STREAM(self));

	if (!self->closed)
		pb_stream_close_socket(self);
}

/* The connection cannot go on (its local service cannot be reached): closes the socket
 * and emits "closed" with @error, for whichever tunnel holds the stream now. */
void
pb_stream_fail(PbStream *self, const GError *error)
{
	G_GNUC_UNUSED g_autoptr(PbStream) ref = NULL;

	g_return_if_fail(PB_IS_STREAM(self));
	g_return_if_fail(error != NULL);

	if (self->closed)
		return;
	ref = g_object_ref(self); /* handlers may drop it */
	pb_stream_close_socket(self);
	g_signal_emit(self, signals[SIGNAL_CLOSED], 0, error);
}

static void
pb_stream_dispose(GObject *object)
{
	pb_stream_abort(PB_STREAM(object));
	G_OBJECT_CLASS(pb_stream_parent_class)->dispose(object);
}

static void
pb_stream_finalize(GObject *object)
{
	PbStream *self = PB_STREAM(object);

	g_clear_object(&self->connection);
	pb_replay_free(self->replay);
	G_OBJECT_CLASS(pb_stream_parent_class)->finalize(object);
}

static void
pb_stream_class_init(PbStreamClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = pb_stream_dispose;
	object_class->finalize = pb_stream_finalize;

	/**
	 * PbStream::relieved:
	 *
	 * The stream was congested and its queue has dropped under the low watermark.
	 */
	signals[SIGNAL_RELIEVED] =
	    g_signal_new("relieved", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 0);
	/**
	 * PbStream::closed:
	 * @error: (nullable): why writing failed, or %NULL when a finish completed
	 *
	 * The socket is closed; emitted from the stream's own write watch, or from
	 * pb_stream_set_connection() when it finishes there.
	 */
	signals[SIGNAL_CLOSED] = g_signal_new("closed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
					      0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
pb_stream_init(PbStream *self)
{
	g_queue_init(&self->pending);
	self->high_watermark = PB_STREAM_HIGH_WATERMARK;
	self->last_active = g_get_monotonic_time();
}

PbStream *
pb_stream_new(guint32 id)
{
	PbStream *self = g_object_new(PB_TYPE_STREAM, NULL);

	self->id = id;
	return self;
}
