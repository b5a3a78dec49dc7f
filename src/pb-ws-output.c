/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-ws-output.h"

/*
 * The output side of the stream libsoup's SoupWebsocketConnection runs on.
 *
 * libsoup queues outgoing messages without bound and says nothing of how much is queued.
 * This stream counts the payload bytes of data messages that reached the socket, so the
 * tunnel (which counts what it queued) knows the buffered amount, and it emits "drained"
 * once a watched count is reached. Control frames (ping, pong, close) are not counted:
 * the tunnel never queued them.
 *
 * libsoup writes each frame from its first byte and the whole of it in one call, continuing
 * with the rest after a partial write; so when no frame is in progress, a write starts with
 * a complete frame header.
 */

struct _PbWsOutput {
	GOutputStream parent_instance;
	GOutputStream *base;	/* (owned) pollable */
	guint64 frame_left;	/* bytes of the current frame not written yet */
	guint64 header_left;	/* of which header bytes */
	gboolean frame_is_data; /* text, binary or continuation frame */
	guint64 data_written;	/* payload bytes of data frames written to @base */
	guint64 watch;		/* emit "drained" when data_written reaches this; 0 = off */
};

enum { SIGNAL_DRAINED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST] = {0};

static void
pb_ws_output_pollable_iface_init(GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(PbWsOutput, pb_ws_output, G_TYPE_OUTPUT_STREAM,
			      G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_OUTPUT_STREAM,
						    pb_ws_output_pollable_iface_init))

/* Reads the header of a frame that starts at @buf (RFC 6455 §5.2). */
static void
pb_ws_output_begin_frame(PbWsOutput *self, const guint8 *buf, gsize count)
{
	guint64 payload_len = buf[1] & 0x7f;
	guint64 header_len = 2;
	guint opcode = buf[0] & 0x0f;

	if (payload_len == 126) {
		header_len = 4;
		payload_len = (guint64)buf[2] << 8 | buf[3];
	} else if (payload_len == 127) {
		header_len = 10;
		payload_len = 0;
		for (int i = 2; i < 10; i++)
			payload_len = payload_len << 8 | buf[i];
	}
	if (buf[1] & 0x80)
		header_len += 4; /* masking key */
	g_return_if_fail(count >= header_len);

	self->frame_left = header_len + payload_len;
	self->header_left = header_len;
	self->frame_is_data = opcode <= 0x2;
}

static void
pb_ws_output_account(PbWsOutput *self, const guint8 *buf, gsize count, gsize written)
{
	while (written > 0) {
		guint64 chunk;
		guint64 header;

		if (self->frame_left == 0) {
			pb_ws_output_begin_frame(self, buf, count);
			if (self->frame_left == 0)
				return; /* not a frame start: nothing we can count */
		}
		chunk = MIN(written, self->frame_left);
		header = MIN(chunk, self->header_left);
		self->header_left -= header;
		self->frame_left -= chunk;
		if (self->frame_is_data)
			self->data_written += chunk - header;
		buf += chunk;
		count -= chunk;
		written -= chunk;
	}
	if (self->watch != 0 && self->data_written >= self->watch) {
		self->watch = 0;
		g_signal_emit(self, signals[SIGNAL_DRAINED], 0);
	}
}

static gssize
pb_ws_output_write_nonblocking(GPollableOutputStream *stream, const void *buffer, gsize count,
			       GError **error)
{
	PbWsOutput *self = PB_WS_OUTPUT(stream);
	gssize n = g_pollable_output_stream_write_nonblocking(G_POLLABLE_OUTPUT_STREAM(self->base),
							      buffer, count, NULL, error);

	if (n > 0)
		pb_ws_output_account(self, buffer, count, (gsize)n);
	return n;
}

static gboolean
pb_ws_output_is_writable(GPollableOutputStream *stream)
{
	PbWsOutput *self = PB_WS_OUTPUT(stream);

	return g_pollable_output_stream_is_writable(G_POLLABLE_OUTPUT_STREAM(self->base));
}

static GSource *
pb_ws_output_create_source(GPollableOutputStream *stream, GCancellable *cancellable)
{
	PbWsOutput *self = PB_WS_OUTPUT(stream);
	g_autoptr(GSource) base_source =
	    g_pollable_output_stream_create_source(G_POLLABLE_OUTPUT_STREAM(self->base), NULL);

	return g_pollable_source_new_full(self, base_source, cancellable);
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

static gssize
pb_ws_output_write(GOutputStream *stream, const void *buffer, gsize count,
		   GCancellable *cancellable, GError **error)
{
	PbWsOutput *self = PB_WS_OUTPUT(stream);
	gssize n = g_output_stream_write(self->base, buffer, count, cancellable, error);

	if (n > 0)
		pb_ws_output_account(self, buffer, count, (gsize)n);
	return n;
}

static gboolean
pb_ws_output_flush(GOutputStream *stream, GCancellable *cancellable, GError **error)
{
	return g_output_stream_flush(PB_WS_OUTPUT(stream)->base, cancellable, error);
}

guint64
pb_ws_output_get_data_written(PbWsOutput *self)
{
	g_return_val_if_fail(PB_IS_WS_OUTPUT(self), 0);
	return self->data_written;
}

/**
 * pb_ws_output_watch:
 * @data_written: emit "drained" once this many payload bytes have been written; 0 cancels
 *
 * One watch at a time; it fires once.
 */
void
pb_ws_output_watch(PbWsOutput *self, guint64 data_written)
{
	g_return_if_fail(PB_IS_WS_OUTPUT(self));

	self->watch = data_written;
	if (data_written != 0 && self->data_written >= data_written) {
		self->watch = 0;
		g_signal_emit(self, signals[SIGNAL_DRAINED], 0);
	}
}

static void
pb_ws_output_finalize(GObject *object)
{
	PbWsOutput *self = PB_WS_OUTPUT(object);

	g_clear_object(&self->base);
	G_OBJECT_CLASS(pb_ws_output_parent_class)->finalize(object);
}

static void
pb_ws_output_class_init(PbWsOutputClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GOutputStreamClass *output_class = G_OUTPUT_STREAM_CLASS(klass);

	object_class->finalize = pb_ws_output_finalize;
	output_class->write_fn = pb_ws_output_write;
	output_class->flush = pb_ws_output_flush;

	/**
	 * PbWsOutput::drained:
	 *
	 * The watched number of payload bytes has reached the socket.
	 */
	signals[SIGNAL_DRAINED] =
	    g_signal_new("drained", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 0);
}

static void
pb_ws_output_init(PbWsOutput *self)
{
}

PbWsOutput *
pb_ws_output_new(GOutputStream *base)
{
	PbWsOutput *self;

	g_return_val_if_fail(G_IS_POLLABLE_OUTPUT_STREAM(base), NULL);

	self = g_object_new(PB_TYPE_WS_OUTPUT, NULL);
	self->base = g_object_ref(base);
	return self;
}
