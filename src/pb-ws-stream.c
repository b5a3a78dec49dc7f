/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-ws-stream.h"

/*
 * The GIOStream a SoupWebsocketConnection runs on: a PbWsInput (large reads, pausable) and
 * a PbWsOutput (counts what reached the socket) over the connection's own stream, which
 * this stream owns and closes.
 */

struct _PbWsStream {
	GIOStream parent_instance;
	GIOStream *base;    /* (owned) socket or TLS connection */
	PbWsInput *input;   /* (owned) */
	PbWsOutput *output; /* (owned) */
};

G_DEFINE_FINAL_TYPE(PbWsStream, pb_ws_stream, G_TYPE_IO_STREAM)

static GInputStream *
pb_ws_stream_get_input_stream(GIOStream *stream)
{
	return G_INPUT_STREAM(PB_WS_STREAM(stream)->input);
}

static GOutputStream *
pb_ws_stream_get_output_stream(GIOStream *stream)
{
	return G_OUTPUT_STREAM(PB_WS_STREAM(stream)->output);
}

static gboolean
pb_ws_stream_close_fn(GIOStream *stream, GCancellable *cancellable, GError **error)
{
	return g_io_stream_close(PB_WS_STREAM(stream)->base, cancellable, error);
}

static void
pb_ws_stream_close_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	GError *error = NULL;

	if (!g_io_stream_close_finish(G_IO_STREAM(source), res, &error))
		g_task_return_error(task, error);
	else
		g_task_return_boolean(task, TRUE);
}

/* GIOStream's default would close in a worker thread; the base can do it asynchronously. */
static void
pb_ws_stream_close_async(GIOStream *stream, int io_priority, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(stream, cancellable, callback, user_data);

	g_task_set_source_tag(task, (gpointer)(guintptr)pb_ws_stream_close_async);
	g_io_stream_close_async(PB_WS_STREAM(stream)->base, io_priority, cancellable,
				pb_ws_stream_close_cb, task);
}

static gboolean
pb_ws_stream_close_finish(GIOStream *stream, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, stream), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

PbWsInput *
pb_ws_stream_get_input(PbWsStream *self)
{
	g_return_val_if_fail(PB_IS_WS_STREAM(self), NULL);
	return self->input;
}

PbWsOutput *
pb_ws_stream_get_output(PbWsStream *self)
{
	g_return_val_if_fail(PB_IS_WS_STREAM(self), NULL);
	return self->output;
}

static void
pb_ws_stream_finalize(GObject *object)
{
	PbWsStream *self = PB_WS_STREAM(object);

	g_clear_object(&self->input);
	g_clear_object(&self->output);
	g_clear_object(&self->base);
	G_OBJECT_CLASS(pb_ws_stream_parent_class)->finalize(object);
}

static void
pb_ws_stream_class_init(PbWsStreamClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GIOStreamClass *stream_class = G_IO_STREAM_CLASS(klass);

	object_class->finalize = pb_ws_stream_finalize;
	stream_class->get_input_stream = pb_ws_stream_get_input_stream;
	stream_class->get_output_stream = pb_ws_stream_get_output_stream;
	stream_class->close_fn = pb_ws_stream_close_fn;
	stream_class->close_async = pb_ws_stream_close_async;
	stream_class->close_finish = pb_ws_stream_close_finish;
}

static void
pb_ws_stream_init(PbWsStream *self)
{
}

/**
 * pb_ws_stream_unwrap_soup:
 * @stream: a connection libsoup handed over (soup_server_message_steal_connection())
 *
 * Returns: (transfer full) (nullable): what libsoup's SoupIOStream wraps (its
 *   "base-iostream": the TLS or socket connection), or %NULL for any other stream
 */
GIOStream *
pb_ws_stream_unwrap_soup(GIOStream *stream)
{
	GIOStream *base = NULL;

	if (g_object_class_find_property(G_OBJECT_GET_CLASS(stream), "base-iostream") != NULL)
		g_object_get(stream, "base-iostream", &base, NULL);
	return base;
}

/* The socket a connection runs on, if nothing but buffering is in between (no TLS): libsoup's
 * SoupIOStream and GSocketConnection. */
static GSocket *
pb_ws_stream_find_socket(GIOStream *stream)
{
	g_autoptr(GIOStream) base = NULL;

	if (G_IS_TLS_CONNECTION(stream))
		return NULL;
	/* a socket connection made of another stream over the socket: TLS, when serve
	 * terminates it itself */
	if (G_IS_TCP_WRAPPER_CONNECTION(stream))
		return pb_ws_stream_find_socket(
		    g_tcp_wrapper_connection_get_base_io_stream(G_TCP_WRAPPER_CONNECTION(stream)));
	if (G_IS_SOCKET_CONNECTION(stream))
		return g_object_ref(g_socket_connection_get_socket(G_SOCKET_CONNECTION(stream)));
	base = pb_ws_stream_unwrap_soup(stream);
	return base != NULL ? pb_ws_stream_find_socket(base) : NULL;
}

/**
 * pb_ws_stream_new:
 * @base: the connection, past its HTTP upgrade
 * @leftover: (nullable): bytes read from @base after the upgrade headers
 * @server: whether we are the WebSocket server (the client masks its frames)
 */
PbWsStream *
pb_ws_stream_new(GIOStream *base, GBytes *leftover, gboolean server)
{
	g_autoptr(GSocket) socket = NULL;
	PbWsStream *self;

	g_return_val_if_fail(G_IS_IO_STREAM(base), NULL);

	self = g_object_new(PB_TYPE_WS_STREAM, NULL);
	self->base = g_object_ref(base);
	socket = pb_ws_stream_find_socket(base);
	self->input = pb_ws_input_new(g_io_stream_get_input_stream(base), leftover, server);
	if (socket != NULL)
		pb_ws_input_set_socket(self->input, socket);
	self->output = pb_ws_output_new(g_io_stream_get_output_stream(base), !server);
	if (socket != NULL)
		pb_ws_output_set_socket(self->output, socket);
	return self;
}
