/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-ws-input.h"

#include <errno.h>
#include <string.h>

#include "pb-frame.h"

/*
 * The input side of the stream libsoup's SoupWebsocketConnection runs on.
 *
 * libsoup reads its stream 1 KiB at a time; on a socket that is one system call per KiB.
 * This stream reads the socket in PB_WS_READ_BUFFER_SIZE chunks and serves libsoup from
 * memory. It can also be paused, which libsoup itself cannot: while paused it reports
 * nothing to read, so a slow consumer holds the peer back through TCP instead of piling
 * messages up in memory.
 *
 * The socket is read only in the dispatch of this stream's own pollable source, once per
 * dispatch: libsoup reads until a read would block, so refilling inside read_nonblocking()
 * would let one busy WebSocket starve every other source of the main loop.
 */

struct _PbWsInput {
	GInputStream parent_instance;
	GInputStream *base; /* (owned) pollable */
	guint8 *buf;	    /* (owned) PB_WS_READ_BUFFER_SIZE bytes */
	gsize start;	    /* unread bytes are buf[start, end) */
	gsize end;
	gboolean eof;
	GError *error; /* (owned) (nullable) a read error not reported yet */
	gboolean paused;
	GSList *sources; /* (unowned) live PbWsInputSource */
};

typedef struct {
	GSource source;
	PbWsInput *stream; /* (owned) */
	GSource *child;	   /* (owned) (nullable) the base stream's source while we wait for it */
} PbWsInputSource;

static void
pb_ws_input_pollable_iface_init(GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(PbWsInput, pb_ws_input, G_TYPE_INPUT_STREAM,
			      G_IMPLEMENT_INTERFACE(G_TYPE_POLLABLE_INPUT_STREAM,
						    pb_ws_input_pollable_iface_init))

static gboolean
pb_ws_input_has_news(PbWsInput *self)
{
	return self->start < self->end || self->eof || self->error != NULL;
}

/* Ready at once while there is something to report, else wait for the socket. */
static void
pb_ws_input_source_update(PbWsInputSource *src)
{
	PbWsInput *self = src->stream;
	gboolean wait_base = !self->paused && !pb_ws_input_has_news(self);

	if (g_source_is_destroyed(&src->source))
		return; /* its children went with it */
	if (wait_base && src->child == NULL) {
		src->child = g_pollable_input_stream_create_source(
		    G_POLLABLE_INPUT_STREAM(self->base), NULL);
		g_source_set_dummy_callback(src->child);
		g_source_add_child_source(&src->source, src->child);
	} else if (!wait_base && src->child != NULL) {
		g_source_remove_child_source(&src->source, src->child);
		g_clear_pointer(&src->child, g_source_unref);
	}
	g_source_set_ready_time(&src->source, !self->paused && pb_ws_input_has_news(self) ? 0 : -1);
}

static void
pb_ws_input_update_sources(PbWsInput *self)
{
	for (GSList *l = self->sources; l != NULL; l = l->next)
		pb_ws_input_source_update(l->data);
}

static void
pb_ws_input_refill(PbWsInput *self)
{
	gssize n;

	self->start = self->end = 0;
	n = g_pollable_input_stream_read_nonblocking(G_POLLABLE_INPUT_STREAM(self->base), self->buf,
						     PB_WS_READ_BUFFER_SIZE, NULL, &self->error);
	if (n > 0)
		self->end = (gsize)n;
	else if (n == 0)
		self->eof = TRUE;
	else if (g_error_matches(self->error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
		g_clear_error(&self->error);
}

static gboolean
pb_ws_input_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	PbWsInputSource *src = (PbWsInputSource *)source;
	PbWsInput *self = src->stream;
	gboolean again;

	if (!self->paused && !pb_ws_input_has_news(self))
		pb_ws_input_refill(self);
	again = ((GPollableSourceFunc)(void (*)(void))callback)(G_OBJECT(self), user_data);
	if (again)
		pb_ws_input_source_update(src);
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
	PbWsInput *self = PB_WS_INPUT(stream);

	return !self->paused && pb_ws_input_has_news(self);
}

static gssize
pb_ws_input_read_nonblocking(GPollableInputStream *stream, void *buffer, gsize count,
			     GError **error)
{
	PbWsInput *self = PB_WS_INPUT(stream);
	gsize n;

	if (self->paused || !pb_ws_input_has_news(self)) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, g_strerror(EAGAIN));
		return -1;
	}
	if (self->start == self->end) {
		if (self->error != NULL) {
			g_propagate_error(error, g_steal_pointer(&self->error));
			self->eof = TRUE;
			return -1;
		}
		return 0; /* end of stream */
	}
	n = MIN(count, self->end - self->start);
	memcpy(buffer, self->buf + self->start, n);
	self->start += n;
	return (gssize)n;
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

/* Blocking reads are not on PiggyBack's path; they serve the buffer, then the base. */
static gssize
pb_ws_input_read(GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
		 GError **error)
{
	PbWsInput *self = PB_WS_INPUT(stream);

	if (self->start < self->end || self->error != NULL)
		return pb_ws_input_read_nonblocking(G_POLLABLE_INPUT_STREAM(self), buffer, count,
						    error);
	if (self->eof)
		return 0;
	return g_input_stream_read(self->base, buffer, count, cancellable, error);
}

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
	G_OBJECT_CLASS(pb_ws_input_parent_class)->finalize(object);
}

static void
pb_ws_input_class_init(PbWsInputClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GInputStreamClass *input_class = G_INPUT_STREAM_CLASS(klass);

	object_class->finalize = pb_ws_input_finalize;
	input_class->read_fn = pb_ws_input_read;
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
 */
PbWsInput *
pb_ws_input_new(GInputStream *base, GBytes *leftover)
{
	PbWsInput *self;

	g_return_val_if_fail(G_IS_POLLABLE_INPUT_STREAM(base), NULL);

	self = g_object_new(PB_TYPE_WS_INPUT, NULL);
	self->base = g_object_ref(base);
	if (leftover != NULL) {
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(leftover, &len);

		g_return_val_if_fail(len <= PB_WS_READ_BUFFER_SIZE, self);
		memcpy(self->buf, data, len);
		self->end = len;
	}
	return self;
}
