/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-ws-input.h"

#include <errno.h>
#include <string.h>

#include "pb-batch.h"
#include "pb-frame.h"
#include "pb-socket-io.h"
#include "pb-ws-frame.h"

/*
 * The input side of the stream libsoup's SoupWebsocketConnection runs on.
 *
 * libsoup reads its stream 1 KiB at a time, copies every message twice and unmasks one
 * byte at a time; together that was half of a tunnel's CPU time. This stream reads the
 * socket in PB_WS_READ_BUFFER_SIZE chunks and looks at each WebSocket frame in it:
 *
 * - A PiggyBack DATA message in one plain binary frame (the bulk of the traffic) takes the
 *   fast path: it is unmasked eight bytes at a time where it lies and its payload is
 *   handed to the PbWsDataFunc in pieces, to be written straight to its TCP socket.
 * - So does any other PiggyBack message of at most PB_WS_SHORT_MESSAGE bytes in one plain
 *   binary frame (WINDOW, OPEN, EOF, CLOSE), handed whole to the PbWsMessageFunc. Through
 *   libsoup each cost a GBytes, a signal, and two wake-ups of the main loop (its source's
 *   ready time set and cleared, an eventfd write each): a WINDOW every quarter window of
 *   a stream, three or four messages per connection opened.
 * - Every other frame (control frames, HELLO and other long messages, fragments, anything
 *   odd or invalid) is left to libsoup, which reads exactly that frame's bytes from memory and
 *   handles it as always: pings, the close handshake, protocol errors.
 *
 * Order is kept: the fast path stops at a frame for libsoup until libsoup has read it.
 *
 * Every frame header is checked here before any of its payload is taken, since this is
 * where a frame's length decides how many bytes are whose: a 64-bit length with its top
 * bit set is refused with 1002 (RFC 6455 §5.2), and a frame, or a fragmented message
 * added up over its fragments, longer than the largest message with 1009 (libsoup checks
 * each fragment alone, and would reassemble a message of any size). Once refused, nothing
 * more is read or delivered: "refused" says why, and the owner closes the WebSocket.
 *
 * The stream can also be paused, which libsoup itself cannot: while paused nothing is
 * delivered or read, so a slow consumer holds the peer back through TCP.
 *
 * The socket is read only in the dispatch of this stream's own pollable source, once per
 * dispatch: libsoup reads until a read would block, so refilling inside read_nonblocking()
 * would let one busy WebSocket starve every other source of the main loop.
 */

struct _PbWsInput {
	GInputStream parent_instance;
	GInputStream *base; /* (owned) pollable */
	GSocket *socket;    /* (owned) (nullable) under @base when there is no TLS between */
	gboolean read_once; /* @base was read: nothing waits in its buffers unseen by poll() */
	gboolean masked;    /* frames from the peer are masked: we are the server */
	guint8 *buf;	    /* (owned) PB_WS_READ_BUFFER_SIZE bytes */
	gsize start;	    /* unread bytes are buf[start, end) */
	gsize end;
	gboolean eof;
	GError *error; /* (owned) (nullable) a read error not reported yet */
	gboolean paused;
	gboolean want_more;	    /* what is buffered is not enough to go on: read the socket */
	guint64 pass_left;	    /* bytes of the current frame that are for libsoup */
	gboolean passing_fragments; /* libsoup is in a fragmented message: it gets all */
	guint64 data_left;	    /* payload bytes of the current fast-path frame to come */
	guint64 data_offset;	    /* where in its payload the fast path is (for the mask) */
	guint32 data_conn_id;
	guint8 data_mask[4];
	guint64 max_message_size; /* a longer message is refused */
	guint64 message_len;	  /* the fragments of the current message so far */
	gushort refused_code;	  /* (nullable) why the stream stopped: a close code */
	const char *refused_reason;
	gboolean refused_told;	/* "refused" was emitted */
	guint64 n_fast_frames;	/* messages that took the fast path */
	PbWsDataFunc data_func; /* (nullable) */
	gpointer data_func_user_data;
	PbWsMessageFunc message_func; /* (nullable) */
	gpointer message_func_user_data;
	GSList *sources; /* (unowned) live PbWsInputSource */
};

typedef struct {
	GSource source;
	PbWsInput *stream; /* (owned) */
	GSource *child;	   /* (owned) (nullable) the base stream's source while we wait for it */
	gpointer fd_tag;   /* (nullable) instead of @child: the socket's fd, polled directly */
} PbWsInputSource;

static void
pb_ws_input_pollable_iface_init(GPollableInputStreamInterface *iface);

enum { SIGNAL_REFUSED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST] = {0};

G_DEFINE_FINAL_TYPE_WITH_CODE(PbWsInput, pb_ws_input, G_TYPE_INPUT_STREAM,
			      G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_INPUT_STREAM,
						    pb_ws_input_pollable_iface_init))

/* Whether a frame holds a whole PiggyBack message that the fast path may take: one plain
 * binary frame, masked as the peer must, with at least a PiggyBack header. */
static gboolean
pb_ws_input_is_plain(PbWsInput *self, const PbWsFrameHeader *header)
{
	return header->fin && header->rsv == 0 && header->opcode == 0x2 &&
	       header->masked == self->masked && header->payload_len >= PB_FRAME_HEADER_SIZE &&
	       !self->passing_fragments;
}

/* Stops the stream for good; the owner learns why from "refused" (see dispatch). */
static void
pb_ws_input_refuse(PbWsInput *self, gushort code, const char *reason)
{
	self->refused_code = code;
	self->refused_reason = reason;
}

/* Checks what a frame's header announces, before any of its payload is taken: returns
 * FALSE (and refuses the stream) for a frame nobody may send us. No sum here can wrap: a
 * length is under 2^63 once checked, and message_len never passes max_message_size. */
static gboolean
pb_ws_input_check_frame(PbWsInput *self, const PbWsFrameHeader *header)
{
	gboolean control = (header->opcode & 0x8) != 0;

	if (header->payload_len >> 63) {
		pb_ws_input_refuse(self, 1002, "frame length with its most significant bit set");
		return FALSE;
	}
	if (control) {
		if (header->payload_len > 125) {
			pb_ws_input_refuse(self, 1002, "control frame longer than 125 bytes");
			return FALSE;
		}
		return TRUE; /* control frames may come between fragments */
	}
	if (header->opcode != 0x0)
		self->message_len = 0; /* a new message (libsoup refuses one inside another) */
	if (self->message_len > self->max_message_size ||
	    header->payload_len > self->max_message_size - self->message_len) {
		pb_ws_input_refuse(self, 1009, "message too big");
		return FALSE;
	}
	self->message_len = header->fin ? 0 : self->message_len + header->payload_len;
	return TRUE;
}

/* Starts on the frame at buf[start]; FALSE if more bytes are needed first. */
static gboolean
pb_ws_input_begin_frame(PbWsInput *self)
{
	const guint8 *frame = self->buf + self->start;
	gsize avail = self->end - self->start;
	PbWsFrameHeader header;
	guint8 pb_header[PB_FRAME_HEADER_SIZE] = {0};
	gboolean plain;

	if (!pb_ws_frame_header_parse(frame, avail, &header))
		return FALSE;
	if (!pb_ws_input_check_frame(self, &header))
		return FALSE;
	if (avail < header.header_len + PB_FRAME_HEADER_SIZE &&
	    header.payload_len >= PB_FRAME_HEADER_SIZE)
		return FALSE; /* the PiggyBack header decides; wait for it */

	if (header.payload_len >= PB_FRAME_HEADER_SIZE) {
		memcpy(pb_header, frame + header.header_len, PB_FRAME_HEADER_SIZE);
		if (header.masked)
			pb_ws_frame_unmask(pb_header, PB_FRAME_HEADER_SIZE, header.mask, 0);
	}
	plain = pb_ws_input_is_plain(self, &header);
	if (plain && pb_header[0] != PB_FRAME_DATA && header.payload_len <= PB_WS_SHORT_MESSAGE &&
	    self->message_func != NULL) {
		guint8 message[PB_WS_SHORT_MESSAGE];
		gsize len = (gsize)header.payload_len;

		if (avail < header.header_len + len)
			return FALSE; /* it is short: wait for all of it */
		memcpy(message, frame + header.header_len, len);
		if (header.masked)
			pb_ws_frame_unmask(message, len, header.mask, 0);
		self->start += header.header_len + len;
		self->n_fast_frames++;
		self->message_func(message, len, self->message_func_user_data);
		return TRUE;
	}
	if (!plain || pb_header[0] != PB_FRAME_DATA || self->data_func == NULL) {
		self->pass_left = header.header_len + header.payload_len;
		if (!(header.opcode & 0x8)) /* control frames may come between fragments */
			self->passing_fragments = !header.fin;
		return TRUE;
	}
	self->n_fast_frames++;
	memcpy(self->data_mask, header.mask, sizeof self->data_mask);
	self->data_conn_id = pb_frame_read_u32(pb_header + 1);
	self->data_offset = PB_FRAME_HEADER_SIZE;
	self->data_left = header.payload_len - PB_FRAME_HEADER_SIZE;
	self->start += header.header_len + PB_FRAME_HEADER_SIZE;
	return TRUE;
}

/* Paused for now, or refused for good: nothing is read or delivered. */
static gboolean
pb_ws_input_is_stopped(PbWsInput *self)
{
	return self->paused || self->refused_code != 0;
}

/* Delivers fast-path payload until a frame for libsoup, a pause, a refused frame or the end
 * of the buffer. */
static void
pb_ws_input_pump(PbWsInput *self)
{
	while (!pb_ws_input_is_stopped(self) && self->pass_left == 0) {
		gsize avail = self->end - self->start;

		if (self->data_left > 0) {
			gsize n = (gsize)MIN(avail, self->data_left);
			guint8 *data = self->buf + self->start;

			if (n == 0) {
				self->want_more = TRUE;
				return;
			}
			if (self->masked)
				pb_ws_frame_unmask(data, n, self->data_mask, self->data_offset);
			self->start += n;
			self->data_left -= n;
			self->data_offset += n;
			self->data_func(self->data_conn_id, data, n, self->data_func_user_data);
		} else if (!pb_ws_input_begin_frame(self)) {
			self->want_more = self->refused_code == 0;
			return;
		}
	}
}

/* Whether the source should fire without waiting for the socket. */
static gboolean
pb_ws_input_has_news(PbWsInput *self)
{
	if (self->refused_code != 0)
		return !self->refused_told;
	return !self->paused && ((self->start < self->end && !self->want_more) || self->eof ||
				 self->error != NULL || (self->socket != NULL && !self->read_once));
}

/* Whether libsoup has something to read: bytes of a frame for it, the end, or an error. */
static gboolean
pb_ws_input_has_news_for_libsoup(PbWsInput *self)
{
	return !pb_ws_input_is_stopped(self) && ((self->pass_left > 0 && self->start < self->end) ||
						 self->eof || self->error != NULL);
}

/* Ready at once while there is something to do, and when the socket is readable unless
 * paused. What watches the socket stays while not paused: adding and removing it for every
 * message cost the main loop two wake-ups (system calls) each. Over plain TCP that is the
 * socket's fd itself: the base stream's source is a chain of three (libsoup's stream,
 * GSocketInputStream's, GSocket's), and GLib dispatches each ready one, removing its fds
 * from the poll set and adding them back around it, six more wake-ups per message. */
static void
pb_ws_input_source_update(PbWsInputSource *src)
{
	PbWsInput *self = src->stream;
	gboolean wait_base = !pb_ws_input_is_stopped(self);

	if (g_source_is_destroyed(&src->source))
		return; /* its children went with it */
	if (self->socket != NULL) {
		/* removed, not just asked for nothing, while paused: poll() reports an error or
		 * a hang-up whatever it was asked */
		if (wait_base && src->fd_tag == NULL)
			src->fd_tag = g_source_add_unix_fd(&src->source,
							   g_socket_get_fd(self->socket), G_IO_IN);
		else if (!wait_base && src->fd_tag != NULL) {
			g_source_remove_unix_fd(&src->source, src->fd_tag);
			src->fd_tag = NULL;
		}
	} else if (wait_base && src->child == NULL) {
		src->child = g_pollable_input_stream_create_source(
		    G_POLLABLE_INPUT_STREAM(self->base), NULL);
		g_source_set_dummy_callback(src->child);
		g_source_add_child_source(&src->source, src->child);
	} else if (!wait_base && src->child != NULL) {
		g_source_remove_child_source(&src->source, src->child);
		g_clear_pointer(&src->child, g_source_unref);
	}
	g_source_set_ready_time(&src->source, pb_ws_input_has_news(self) ? 0 : -1);
}

static void
pb_ws_input_update_sources(PbWsInput *self)
{
	for (GSList *l = self->sources; l != NULL; l = l->next)
		pb_ws_input_source_update(l->data);
}

/* One read from the socket, after what is still buffered (at most a frame's head). */
static void
pb_ws_input_refill(PbWsInput *self)
{
	gssize n;

	if (self->start > 0) {
		memmove(self->buf, self->buf + self->start, self->end - self->start);
		self->end -= self->start;
		self->start = 0;
	}
	self->read_once = TRUE;
	if (self->socket != NULL)
		n = pb_socket_io_receive(self->socket, self->buf + self->end,
					 PB_WS_READ_BUFFER_SIZE - self->end, &self->error);
	else
		n = g_pollable_input_stream_read_nonblocking(
		    G_POLLABLE_INPUT_STREAM(self->base), self->buf + self->end,
		    PB_WS_READ_BUFFER_SIZE - self->end, NULL, &self->error);
	if (n > 0) {
		self->end += (gsize)n;
		self->want_more = FALSE;
	} else if (n == 0) {
		self->eof = TRUE;
	} else if (g_error_matches(self->error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
		g_clear_error(&self->error);
	}
}

static gboolean
pb_ws_input_source_dispatch_batch(PbWsInputSource *src, PbWsInput *self, GSourceFunc callback,
				  gpointer user_data)
{
	gboolean again;

	if (!pb_ws_input_is_stopped(self)) {
		if ((self->want_more || self->start == self->end) && !self->eof &&
		    self->error == NULL)
			pb_ws_input_refill(self);
		pb_ws_input_pump(self);
	}
	if (self->refused_code != 0 && !self->refused_told) {
		/* here, not in libsoup's read: the owner closes the WebSocket */
		self->refused_told = TRUE;
		g_signal_emit(self, signals[SIGNAL_REFUSED], 0, (guint)self->refused_code,
			      self->refused_reason);
	}
	/* Only DATA for the fast path came: nothing for libsoup, which on every call destroys
	 * its source and makes a new one (libsoup 3.2 reads that way), a few allocations and
	 * main-loop wake-ups per message. */
	if (!pb_ws_input_has_news_for_libsoup(self)) {
		pb_ws_input_source_update(src);
		return G_SOURCE_CONTINUE;
	}
	/* libsoup reads what is for it, or learns of the end */
	again = ((GPollableSourceFunc)(void (*)(void))callback)(G_OBJECT(self), user_data);
	if (again)
		pb_ws_input_source_update(src);
	return again;
}

static gboolean
pb_ws_input_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	PbWsInputSource *src = (PbWsInputSource *)source;
	g_autoptr(PbWsInput) self = g_object_ref(src->stream);
	gboolean again;

	pb_batch_begin(); /* what the messages make us send goes out together */
	again = pb_ws_input_source_dispatch_batch(src, self, callback, user_data);
	pb_batch_end();
	return again;
}

static void
pb_ws_input_source_finalize(GSource *source)
{
	PbWsInputSource *src = (PbWsInputSource *)source;

	src->stream->sources = g_slist_remove(src->stream->sources, src);
	g_clear_pointer(&src->child, g_source_unref);
	g_clear_object(&src->stream);
}

static GSourceFuncs pb_ws_input_source_funcs = {
    .dispatch = pb_ws_input_source_dispatch,
    .finalize = pb_ws_input_source_finalize,
};

static GSource *
pb_ws_input_create_source(GPollableInputStream *stream, GCancellable *cancellable)
{
	PbWsInput *self = PB_WS_INPUT(stream);
	GSource *source = g_source_new(&pb_ws_input_source_funcs, sizeof(PbWsInputSource));
	PbWsInputSource *src = (PbWsInputSource *)source;

	g_source_set_static_name(source, "PbWsInput");
	/* see pb_poller_get(): no blocking, so no wake-ups, around each dispatch */
	g_source_set_can_recurse(source, TRUE);
	src->stream = g_object_ref(self);
	self->sources = g_slist_prepend(self->sources, src);
	if (cancellable != NULL) {
		g_autoptr(GSource) cancel = g_cancellable_source_new(cancellable);

		g_source_set_dummy_callback(cancel);
		g_source_add_child_source(source, cancel);
	}
	pb_ws_input_source_update(src);
	return source;
}

static gboolean
pb_ws_input_is_readable(GPollableInputStream *stream)
{
	return pb_ws_input_has_news(PB_WS_INPUT(stream));
}

/* libsoup's reads: the bytes of frames left to it, else the end or an error. */
static gssize
pb_ws_input_read_nonblocking(GPollableInputStream *stream, void *buffer, gsize count,
			     GError **error)
{
	PbWsInput *self = PB_WS_INPUT(stream);

	if (!pb_ws_input_is_stopped(self)) {
		pb_ws_input_pump(self);
		if (self->pass_left > 0 && self->start < self->end) {
			gsize n = (gsize)MIN(MIN(count, self->pass_left), self->end - self->start);

			memcpy(buffer, self->buf + self->start, n);
			self->start += n;
			self->pass_left -= n;
			return (gssize)n;
		}
		if (self->pass_left > 0)
			self->want_more = TRUE;
		if (self->refused_code != 0) {
			/* refused in this read: the source fires at once to say so */
			pb_ws_input_update_sources(self);
		} else if (self->error != NULL) {
			g_propagate_error(error, g_steal_pointer(&self->error));
			self->eof = TRUE;
			return -1;
		} else if (self->eof) {
			return 0;
		}
	}
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, g_strerror(EAGAIN));
	return -1;
}

static gboolean
pb_ws_input_can_poll(GPollableInputStream *stream)
{
	return TRUE;
}

static void
pb_ws_input_pollable_iface_init(GPollableInputStreamInterface *iface)
{
	iface->can_poll = pb_ws_input_can_poll;
	iface->is_readable = pb_ws_input_is_readable;
	iface->create_source = pb_ws_input_create_source;
	iface->read_nonblocking = pb_ws_input_read_nonblocking;
}

/* libsoup only reads without blocking; a blocking read is not supported. */
static gssize
pb_ws_input_read(GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
		 GError **error)
{
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
			    "PbWsInput is read without blocking only");
	return -1;
}

/**
 * pb_ws_input_set_data_func:
 * @func: (nullable): takes DATA payload on the fast path; %NULL leaves all to libsoup
 */
void
pb_ws_input_set_data_func(PbWsInput *self, PbWsDataFunc func, gpointer user_data)
{
	g_return_if_fail(PB_IS_WS_INPUT(self));

	self->data_func = func;
	self->data_func_user_data = user_data;
}

/**
 * pb_ws_input_set_message_func:
 * @func: (nullable): takes short messages other than DATA on the fast path; %NULL leaves
 *   them to libsoup
 */
void
pb_ws_input_set_message_func(PbWsInput *self, PbWsMessageFunc func, gpointer user_data)
{
	g_return_if_fail(PB_IS_WS_INPUT(self));

	self->message_func = func;
	self->message_func_user_data = user_data;
}

/**
 * pb_ws_input_set_socket:
 * @socket: the socket under the base stream, with no TLS in between
 *
 * Sources then poll its fd themselves (see pb_ws_input_source_update()). Call before any
 * source is made.
 */
void
pb_ws_input_set_socket(PbWsInput *self, GSocket *socket)
{
	g_return_if_fail(PB_IS_WS_INPUT(self));
	g_return_if_fail(self->sources == NULL);
	g_set_object(&self->socket, socket);
}

/* DATA messages delivered through the PbWsDataFunc (the others reach libsoup). */
guint64
pb_ws_input_get_n_fast_frames(PbWsInput *self)
{
	g_return_val_if_fail(PB_IS_WS_INPUT(self), 0);
	return self->n_fast_frames;
}

/* The largest message the fast path takes: set it to what libsoup accepts. */
void
pb_ws_input_set_max_message_size(PbWsInput *self, guint64 size)
{
	g_return_if_fail(PB_IS_WS_INPUT(self));
	self->max_message_size = size;
}

/* While paused nothing is delivered, neither to libsoup nor on the fast path. */
void
pb_ws_input_set_paused(PbWsInput *self, gboolean paused)
{
	g_return_if_fail(PB_IS_WS_INPUT(self));

	if (self->paused == paused)
		return;
	self->paused = paused;
	pb_ws_input_update_sources(self);
}

gboolean
pb_ws_input_get_paused(PbWsInput *self)
{
	g_return_val_if_fail(PB_IS_WS_INPUT(self), FALSE);
	return self->paused;
}

static void
pb_ws_input_finalize(GObject *object)
{
	PbWsInput *self = PB_WS_INPUT(object);

	g_clear_error(&self->error);
	g_free(self->buf);
	g_clear_object(&self->base);
	g_clear_object(&self->socket);
	G_OBJECT_CLASS(pb_ws_input_parent_class)->finalize(object);
}

static void
pb_ws_input_class_init(PbWsInputClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GInputStreamClass *input_class = G_INPUT_STREAM_CLASS(klass);

	object_class->finalize = pb_ws_input_finalize;
	input_class->read_fn = pb_ws_input_read;

	/**
	 * PbWsInput::refused:
	 * @code: the close code to send: 1002 (protocol error) or 1009 (message too big)
	 * @reason: what the peer sent, for the close frame and the log
	 *
	 * The peer sent a frame nobody may send: nothing more is read from it. The owner
	 * closes the WebSocket with @code (outside libsoup's own reading).
	 */
	signals[SIGNAL_REFUSED] =
	    g_signal_new("refused", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
}

static void
pb_ws_input_init(PbWsInput *self)
{
	self->buf = g_malloc(PB_WS_READ_BUFFER_SIZE);
}

/**
 * pb_ws_input_new:
 * @base: a pollable input stream, usually a socket's or a TLS connection's
 * @leftover: (nullable): bytes already read from @base (after the HTTP upgrade headers)
 *   that come first
 * @masked: whether the peer masks its frames, i.e. we are the WebSocket server
 */
PbWsInput *
pb_ws_input_new(GInputStream *base, GBytes *leftover, gboolean masked)
{
	PbWsInput *self;

	g_return_val_if_fail(G_IS_POLLABLE_INPUT_STREAM(base), NULL);

	self = g_object_new(PB_TYPE_WS_INPUT, NULL);
	self->base = g_object_ref(base);
	self->masked = masked;
	self->max_message_size = PB_MAX_MESSAGE_SIZE;
	if (leftover != NULL) {
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(leftover, &len);

		g_return_val_if_fail(len <= PB_WS_READ_BUFFER_SIZE, self);
		if (len > 0) /* an empty GBytes has no data: memcpy() from NULL is undefined */
			memcpy(self->buf, data, len);
		self->end = len;
	}
	return self;
}
