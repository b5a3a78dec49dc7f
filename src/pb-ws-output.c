/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-ws-output.h"

#include <errno.h>
#include <string.h>

#include "pb-batch.h"
#include "pb-socket-io.h"
#include "pb-ws-frame.h"

/*
 * The output side of the stream libsoup's SoupWebsocketConnection runs on, shared by two
 * writers that take turns at frame boundaries:
 *
 * - PiggyBack's own frames (pb_ws_output_send_message()): every PiggyBack message, framed
 *   and masked (eight bytes at a time) in the tunnel's buffer where it read the data, and
 *   written to the socket from there;
 *   only what the socket does not take at once is copied into a queue. libsoup would copy
 *   each message and mask it one byte at a time, and keeps no count of what it queued.
 * - libsoup's own frames: ping, pong and close, written through the GPollableOutputStream
 *   interface as usual.
 *
 * A frame once started is finished before the other writer gets a turn; libsoup is told
 * its write would block meanwhile. After libsoup starts a close frame, nothing of ours
 * follows: a WebSocket ends with its close frame.
 *
 * Small frames of ours sent during a batch of the main loop's work (see pb-batch.c) are
 * gathered and written together at its end, or in front of the next frame that is not
 * small, or of libsoup's next frame: a burst of new connections, or of WINDOWs, costs one
 * write, not one per frame. Our frames keep their order in all cases.
 *
 * The bytes of our frames that reached the socket are counted ("sent"), so the tunnel
 * knows how much is still queued, and "drained" is emitted when a watched count is reached.
 */

/* Frames of at most this size wait for the end of the batch, in a buffer of PB_WS_BATCH */
#define PB_WS_BATCH_FRAME_MAX 512
#define PB_WS_BATCH	      4096

typedef enum {
	PB_WS_WRITER_NONE, /* at a frame boundary */
	PB_WS_WRITER_OURS,
	PB_WS_WRITER_LIBSOUP,
} PbWsWriter;

struct _PbWsOutput {
	GOutputStream parent_instance;
	GOutputStream *base;   /* (owned) pollable */
	GSocket *socket;       /* (owned) (nullable) under @base when there is no TLS between */
	gboolean masked;       /* we are the WebSocket client: our frames are masked */
	PbWsWriter writer;     /* whose frame is being written */
	guint64 frame_left;    /* bytes of that frame not written yet */
	GQueue queue;	       /* (owned) GBytes: our frames, or what is left of them */
	gsize head_offset;     /* bytes of the queue's head already written */
	GSource *flush_source; /* (owned) (nullable) waits for the socket to take our queue */
	gboolean closing;      /* libsoup wrote a close frame: ours are dropped */
	guint64 sent;	       /* bytes of our frames written to @base */
	guint64 watch;	       /* emit "drained" when @sent reaches this; 0 = off */
	gboolean deferred;     /* the end of the batch writes @batch (it holds a reference) */
	gsize batch_len;       /* whole small frames of ours in @batch; the queue is empty */
	guint8 batch[PB_WS_BATCH];
};

enum { SIGNAL_DRAINED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST] = {0};

static void
pb_ws_output_pollable_iface_init(GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(PbWsOutput, pb_ws_output, G_TYPE_OUTPUT_STREAM,
			      G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_OUTPUT_STREAM,
						    pb_ws_output_pollable_iface_init))

static void
pb_ws_output_count_sent(PbWsOutput *self, gsize n)
{
	self->sent += n;
	if (self->watch != 0 && self->sent >= self->watch) {
		self->watch = 0;
		g_signal_emit(self, signals[SIGNAL_DRAINED], 0);
	}
}

/* Writes the next bytes of our frame, in @n_vectors pieces, without blocking; how many went,
 * or -1. */
static gssize
pb_ws_output_write_ours(PbWsOutput *self, const GOutputVector *vectors, gsize n_vectors)
{
	g_autoptr(GError) error = NULL;
	gsize n = 0;

	if (self->socket != NULL) {
		gssize sent = pb_socket_io_send(self->socket, vectors, n_vectors, &error);

		if (sent >= 0)
			n = (gsize)sent;
		else if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			goto failed;
	} else if (g_pollable_output_stream_writev_nonblocking(G_POLLABLE_OUTPUT_STREAM(self->base),
							       vectors, n_vectors, &n, NULL,
							       &error) != G_POLLABLE_RETURN_OK) {
		if (error != NULL)
			goto failed;
		n = 0; /* would block */
	}
	self->frame_left -= n;
	self->writer = self->frame_left == 0 ? PB_WS_WRITER_NONE : PB_WS_WRITER_OURS;
	return (gssize)n;

failed:
	/* the connection is broken: libsoup finds out too when it reads or writes */
	g_debug("WebSocket write failed: %s", error->message);
	return -1;
}

static gboolean
pb_ws_output_flush_cb(GObject *stream, gpointer user_data);

/* Writes as much of our queue as the socket takes, waiting for it to take the rest. */
static void
pb_ws_output_flush(PbWsOutput *self)
{
	while (!g_queue_is_empty(&self->queue) && self->writer != PB_WS_WRITER_LIBSOUP) {
		GBytes *head = g_queue_peek_head(&self->queue);
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(head, &len);
		gssize n;

		if (self->writer == PB_WS_WRITER_NONE) {
			self->writer = PB_WS_WRITER_OURS;
			self->frame_left = len;
		}
		n = pb_ws_output_write_ours(
		    self, &(GOutputVector){data + self->head_offset, len - self->head_offset}, 1);
		if (n < 0) {
			g_queue_clear_full(&self->queue, (GDestroyNotify)g_bytes_unref);
			self->head_offset = 0;
			break;
		}
		self->head_offset += (gsize)n;
		pb_ws_output_count_sent(self, (gsize)n);
		if (self->head_offset < len)
			break; /* the socket is full */
		g_bytes_unref(g_queue_pop_head(&self->queue));
		self->head_offset = 0;
	}

	if (!g_queue_is_empty(&self->queue) && self->writer != PB_WS_WRITER_LIBSOUP) {
		if (self->flush_source == NULL) {
			self->flush_source = g_pollable_output_stream_create_source(
			    G_POLLABLE_OUTPUT_STREAM(self->base), NULL);
			g_source_set_callback(self->flush_source,
					      G_SOURCE_FUNC(pb_ws_output_flush_cb), self, NULL);
			g_source_set_can_recurse(self->flush_source, TRUE); /* see PbPoller */
			g_source_attach(self->flush_source, g_main_context_get_thread_default());
		}
	} else if (self->flush_source != NULL) {
		g_source_destroy(self->flush_source);
		g_clear_pointer(&self->flush_source, g_source_unref);
	}
}

static gboolean
pb_ws_output_flush_cb(GObject *stream, gpointer user_data)
{
	g_autoptr(PbWsOutput) self = g_object_ref(PB_WS_OUTPUT(user_data));

	pb_ws_output_flush(self);
	return G_SOURCE_CONTINUE; /* a flush that is done destroyed the source */
}

/* Writes frames of ours, in @n_vectors pieces: straight from them if the socket takes them,
 * the rest copied in one piece and queued (unbounded: the caller counts with
 * pb_ws_output_get_sent() and stops in time). */
static void
pb_ws_output_write_frames(PbWsOutput *self, const GOutputVector *vectors, gsize n_vectors)
{
	gsize len = 0;
	gsize done = 0;
	gsize at = 0;
	guint8 *rest;

	for (gsize i = 0; i < n_vectors; i++)
		len += vectors[i].size;
	if (self->writer == PB_WS_WRITER_NONE && g_queue_is_empty(&self->queue)) {
		gssize n;

		self->writer = PB_WS_WRITER_OURS;
		self->frame_left = len;
		n = pb_ws_output_write_ours(self, vectors, n_vectors);
		if (n < 0)
			return;
		pb_ws_output_count_sent(self, (gsize)n);
		if ((gsize)n == len)
			return;
		done = (gsize)n;
	}
	rest = g_malloc(len - done); /* exactly: the queue is counted by its bytes' sizes */
	for (gsize i = 0; i < n_vectors; i++) {
		gsize skip = MIN(done, vectors[i].size);

		memcpy(rest + at, (const guint8 *)vectors[i].buffer + skip, vectors[i].size - skip);
		at += vectors[i].size - skip;
		done -= skip;
	}
	g_queue_push_tail(&self->queue, g_bytes_new_take(rest, at));
	pb_ws_output_flush(self);
}

/* Writes the small frames gathered so far. */
static void
pb_ws_output_write_batch(PbWsOutput *self)
{
	gsize len = self->batch_len;

	if (len == 0)
		return;
	self->batch_len = 0;
	pb_ws_output_write_frames(self, &(GOutputVector){self->batch, len}, 1);
}

static void
pb_ws_output_batch_end_cb(gpointer user_data)
{
	g_autoptr(PbWsOutput) self = user_data; /* the batch's reference */

	self->deferred = FALSE;
	pb_ws_output_write_batch(self);
}

/* Sends a frame of ours, in @n_vectors pieces (at most 2): gathered for the end of the
 * batch if small, else written with the small ones before it. */
static void
pb_ws_output_send_vectors(PbWsOutput *self, const GOutputVector *vectors, gsize n_vectors)
{
	GOutputVector all[3];
	gsize len = 0;

	g_assert(n_vectors <= 2);
	if (self->closing)
		return;
	for (gsize i = 0; i < n_vectors; i++)
		len += vectors[i].size;
	if (len <= PB_WS_BATCH_FRAME_MAX && g_queue_is_empty(&self->queue)) {
		if (self->batch_len + len > PB_WS_BATCH)
			pb_ws_output_write_batch(self);
		if (!self->deferred && g_queue_is_empty(&self->queue) &&
		    pb_batch_defer(pb_ws_output_batch_end_cb, self)) {
			self->deferred = TRUE;
			g_object_ref(self); /* the batch's */
		}
		/* else (not in a batch, or the socket is full) it goes at once, or is queued */
		if (self->deferred && g_queue_is_empty(&self->queue)) {
			for (gsize i = 0; i < n_vectors; i++) {
				memcpy(self->batch + self->batch_len, vectors[i].buffer,
				       vectors[i].size);
				self->batch_len += vectors[i].size;
			}
			return;
		}
	}
	/* the small frames first, in the same system call */
	all[0] = (GOutputVector){self->batch, self->batch_len};
	memcpy(all + 1, vectors, n_vectors * sizeof *vectors);
	self->batch_len = 0;
	if (all[0].size > 0)
		pb_ws_output_write_frames(self, all, n_vectors + 1);
	else
		pb_ws_output_write_frames(self, vectors, n_vectors);
}

/**
 * pb_ws_output_send:
 * @frame: (array length=len): one whole WebSocket frame, masked if we are the client
 *
 * Sends a frame of ours: straight from @frame if the socket takes it, the rest copied and
 * queued (unbounded: the caller counts with pb_ws_output_get_sent() and stops in time).
 */
void
pb_ws_output_send(PbWsOutput *self, const guint8 *frame, gsize len)
{
	g_return_if_fail(PB_IS_WS_OUTPUT(self));
	g_return_if_fail(len > 0);

	pb_ws_output_send_vectors(self, &(GOutputVector){frame, len}, 1);
}

/**
 * pb_ws_output_send_message:
 * @message: (array length=len): a message with PB_WS_FRAME_HEADER_MAX writable bytes
 *   before it, where its frame header goes; a client's message is masked in place
 *
 * Frames @message as one final binary frame and sends it with pb_ws_output_send().
 *
 * Returns: the size of the frame, header included
 */
gsize
pb_ws_output_send_message(PbWsOutput *self, guint8 *message, gsize len)
{
	gsize header_len = pb_ws_frame_header_size(len, self->masked);
	guint32 mask = 0;

	g_return_val_if_fail(PB_IS_WS_OUTPUT(self), 0);

	if (self->masked) {
		mask = g_random_int(); /* like libsoup: a fresh key for every frame */
		pb_ws_frame_unmask(message, len, (const guint8 *)&mask, 0);
	}
	pb_ws_frame_header_write(message - header_len, len,
				 self->masked ? (const guint8 *)&mask : NULL);
	pb_ws_output_send(self, message - header_len, header_len + len);
	return header_len + len;
}

/**
 * pb_ws_output_send_message_parts:
 * @head: (array length=head_len): the start of a message (its PiggyBack header), with
 *   PB_WS_FRAME_HEADER_MAX writable bytes before it and, for a client, room for
 *   @payload_len more after it
 * @payload: (array length=payload_len): the rest, kept elsewhere (`resume`'s replay
 *   buffer), which is not written to
 *
 * Like pb_ws_output_send_message() for a message in two pieces, without copying the
 * payload where that can be helped: a server writes both pieces with one writev(); a
 * client, which must mask, masks the payload while copying it after @head.
 *
 * Returns: the size of the frame, header included
 */
gsize
pb_ws_output_send_message_parts(PbWsOutput *self, guint8 *head, gsize head_len,
				const guint8 *payload, gsize payload_len)
{
	gsize len = head_len + payload_len;
	gsize header_len = pb_ws_frame_header_size(len, self->masked);

	g_return_val_if_fail(PB_IS_WS_OUTPUT(self), 0);

	if (self->masked) {
		guint32 mask = g_random_int();

		pb_ws_frame_mask_copy(head + head_len, payload, payload_len, (const guint8 *)&mask,
				      head_len);
		pb_ws_frame_unmask(head, head_len, (const guint8 *)&mask, 0);
		pb_ws_frame_header_write(head - header_len, len, (const guint8 *)&mask);
		pb_ws_output_send(self, head - header_len, header_len + len);
	} else {
		pb_ws_frame_header_write(head - header_len, len, NULL);
		pb_ws_output_send_vectors(
		    self,
		    (const GOutputVector[]){{head - header_len, header_len + head_len},
					    {payload, payload_len}},
		    2);
	}
	return header_len + len;
}

/* libsoup's frames: each written from its start, whole or continued after a short write. */
static gssize
pb_ws_output_write_nonblocking(GPollableOutputStream *stream, const void *buffer, gsize count,
			       GError **error)
{
	PbWsOutput *self = PB_WS_OUTPUT(stream);
	guint64 frame_left;
	PbWsFrameHeader header;
	gssize n;

	if (self->writer != PB_WS_WRITER_LIBSOUP)
		pb_ws_output_write_batch(self); /* ours came first */
	frame_left = self->frame_left;
	if (self->writer == PB_WS_WRITER_OURS) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, g_strerror(EAGAIN));
		return -1;
	}
	if (self->writer == PB_WS_WRITER_NONE) {
		if (!pb_ws_frame_header_parse(buffer, count, &header)) {
			g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
					    "not a WebSocket frame");
			return -1;
		}
		frame_left = header.header_len + header.payload_len;
	}
	/* one frame at a time, so frame_left never goes below 0 */
	n = g_pollable_output_stream_write_nonblocking(G_POLLABLE_OUTPUT_STREAM(self->base), buffer,
						       (gsize)MIN(count, frame_left), NULL, error);
	if (n <= 0)
		return n;
	if (self->writer == PB_WS_WRITER_NONE && header.opcode == 0x8 && !self->closing) {
		self->closing = TRUE; /* nothing of ours may follow a close frame */
		g_queue_clear_full(&self->queue, (GDestroyNotify)g_bytes_unref);
		self->head_offset = 0;
	}
	self->frame_left = frame_left - (guint64)n;
	self->writer = self->frame_left == 0 ? PB_WS_WRITER_NONE : PB_WS_WRITER_LIBSOUP;
	if (self->writer == PB_WS_WRITER_NONE && !g_queue_is_empty(&self->queue))
		pb_ws_output_flush(self); /* our turn again */
	return n;
}

static gboolean
pb_ws_output_is_writable(GPollableOutputStream *stream)
{
	PbWsOutput *self = PB_WS_OUTPUT(stream);

	return self->writer != PB_WS_WRITER_OURS &&
	       g_pollable_output_stream_is_writable(G_POLLABLE_OUTPUT_STREAM(self->base));
}

static GSource *
pb_ws_output_create_source(GPollableOutputStream *stream, GCancellable *cancellable)
{
	PbWsOutput *self = PB_WS_OUTPUT(stream);
	g_autoptr(GSource) base_source =
	    g_pollable_output_stream_create_source(G_POLLABLE_OUTPUT_STREAM(self->base), NULL);

	GSource *source = g_pollable_source_new_full(self, base_source, cancellable);

	g_source_set_can_recurse(source, TRUE); /* see PbPoller */
	return source;
}

static gboolean
pb_ws_output_can_poll(GPollableOutputStream *stream)
{
	return TRUE;
}

static void
pb_ws_output_pollable_iface_init(GPollableOutputStreamInterface *iface)
{
	iface->can_poll = pb_ws_output_can_poll;
	iface->is_writable = pb_ws_output_is_writable;
	iface->create_source = pb_ws_output_create_source;
	iface->write_nonblocking = pb_ws_output_write_nonblocking;
}

/* libsoup only writes without blocking; a blocking write is not supported. */
static gssize
pb_ws_output_write(GOutputStream *stream, const void *buffer, gsize count,
		   GCancellable *cancellable, GError **error)
{
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
			    "PbWsOutput is written without blocking only");
	return -1;
}

/* Bytes of our frames that reached the socket. */
guint64
pb_ws_output_get_sent(PbWsOutput *self)
{
	g_return_val_if_fail(PB_IS_WS_OUTPUT(self), 0);
	return self->sent;
}

/**
 * pb_ws_output_watch:
 * @sent: emit "drained" once this many bytes of our frames have been written; 0 cancels
 *
 * One watch at a time; it fires once.
 */
void
pb_ws_output_watch(PbWsOutput *self, guint64 sent)
{
	g_return_if_fail(PB_IS_WS_OUTPUT(self));

	self->watch = sent;
	if (sent != 0 && self->sent >= sent) {
		self->watch = 0;
		g_signal_emit(self, signals[SIGNAL_DRAINED], 0);
	}
}

static void
pb_ws_output_dispose(GObject *object)
{
	PbWsOutput *self = PB_WS_OUTPUT(object);

	if (self->flush_source != NULL) {
		g_source_destroy(self->flush_source);
		g_clear_pointer(&self->flush_source, g_source_unref);
	}
	g_queue_clear_full(&self->queue, (GDestroyNotify)g_bytes_unref);
	G_OBJECT_CLASS(pb_ws_output_parent_class)->dispose(object);
}

static void
pb_ws_output_finalize(GObject *object)
{
	PbWsOutput *self = PB_WS_OUTPUT(object);

	g_clear_object(&self->base);
	g_clear_object(&self->socket);
	G_OBJECT_CLASS(pb_ws_output_parent_class)->finalize(object);
}

static void
pb_ws_output_class_init(PbWsOutputClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GOutputStreamClass *output_class = G_OUTPUT_STREAM_CLASS(klass);

	object_class->dispose = pb_ws_output_dispose;
	object_class->finalize = pb_ws_output_finalize;
	output_class->write_fn = pb_ws_output_write;

	/**
	 * PbWsOutput::drained:
	 *
	 * The watched number of bytes of our frames has reached the socket.
	 */
	signals[SIGNAL_DRAINED] =
	    g_signal_new("drained", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 0);
}

static void
pb_ws_output_init(PbWsOutput *self)
{
	g_queue_init(&self->queue);
}

/**
 * pb_ws_output_new:
 * @base: a pollable output stream, usually a socket's or a TLS connection's
 * @masked: whether our frames are masked, i.e. we are the WebSocket client
 */
PbWsOutput *
pb_ws_output_new(GOutputStream *base, gboolean masked)
{
	PbWsOutput *self;

	g_return_val_if_fail(G_IS_POLLABLE_OUTPUT_STREAM(base), NULL);

	self = g_object_new(PB_TYPE_WS_OUTPUT, NULL);
	self->base = g_object_ref(base);
	self->masked = masked;
	return self;
}

/**
 * pb_ws_output_set_socket:
 * @socket: the socket under the base stream, with no TLS in between
 *
 * Our frames are then written to it directly (see pb-socket-io.c).
 */
void
pb_ws_output_set_socket(PbWsOutput *self, GSocket *socket)
{
	g_return_if_fail(PB_IS_WS_OUTPUT(self));
	g_set_object(&self->socket, socket);
}
