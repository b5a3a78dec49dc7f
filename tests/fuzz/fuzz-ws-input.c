/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-frame.h"
#include "pb-ws-input.h"

#include "fuzz.h"

/*
 * PbWsInput as a peer drives it: any byte stream, read by a stand-in for libsoup (1 KiB
 * reads until one would block, as soup-websocket-connection.c does) and by the fast path,
 * through the stream's own source in a main loop. The first byte picks the role (server:
 * the peer masks), the message limit, leftover bytes from the upgrade and whether the fast
 * path pauses the stream now and then.
 *
 * The work is bounded per input byte: a loop that makes no progress fails the target
 * (one that never returns is caught by libFuzzer's -timeout). Nothing is delivered or read
 * after "refused", and never more bytes than came in.
 */

typedef struct {
	PbWsInput *input;
	gboolean pause_often;
	guint64 delivered; /* payload bytes on the fast path */
	guint64 read;	   /* bytes libsoup read */
	guint64 messages;  /* short messages on the fast path */
	gboolean ended;	   /* libsoup saw the end or an error */
	gboolean refused;
	guint refused_code;
} Peer;

static void
data_cb(guint32 conn_id, const guint8 *data, gsize len, gpointer user_data)
{
	Peer *peer = user_data;

	g_assert_false(peer->refused);
	g_assert_cmpuint(len, >, 0);
	peer->delivered += len;
	if (peer->pause_often && (data[0] & 1))
		pb_ws_input_set_paused(peer->input, TRUE); /* resumed by the main loop below */
}

static void
message_cb(const guint8 *message, gsize len, gpointer user_data)
{
	Peer *peer = user_data;

	g_assert_false(peer->refused);
	g_assert_cmpuint(len, >=, PB_FRAME_HEADER_SIZE);
	g_assert_cmpuint(len, <=, PB_WS_SHORT_MESSAGE);
	g_assert_cmpuint(message[0], !=, PB_FRAME_DATA);
	peer->messages++;
	if (peer->pause_often && (message[len - 1] & 1))
		pb_ws_input_set_paused(peer->input, TRUE); /* resumed by the main loop below */
}

static void
refused_cb(PbWsInput *input, guint code, const char *reason, gpointer user_data)
{
	Peer *peer = user_data;

	g_assert_false(peer->refused);
	g_assert_true(code == 1002 || code == 1009);
	g_assert_nonnull(reason);
	peer->refused = TRUE;
	peer->refused_code = code;
}

/* libsoup's on_web_socket_input(): reads 1 KiB at a time until a read would block. */
static gboolean
libsoup_read_cb(GObject *stream, gpointer user_data)
{
	Peer *peer = user_data;

	for (guint i = 0; i < 1000000; i++) {
		g_autoptr(GError) error = NULL;
		guint8 buf[1024];
		gssize n = g_pollable_input_stream_read_nonblocking(G_POLLABLE_INPUT_STREAM(stream),
								    buf, sizeof buf, NULL, &error);

		if (n > 0) {
			g_assert_false(peer->refused);
			peer->read += (guint64)n;
			continue;
		}
		if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			return G_SOURCE_CONTINUE;
		peer->ended = TRUE;
		return G_SOURCE_REMOVE;
	}
	g_error("a read that never blocks");
	return G_SOURCE_REMOVE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GMainContext) context = NULL;
	g_autoptr(GInputStream) base = NULL;
	g_autoptr(GBytes) leftover = NULL;
	g_autoptr(GSource) source = NULL;
	static const gsize leftover_lens[] = {0, 1, 13, 300};
	Peer peer = {0};
	gsize leftover_len;
	guint max_iterations;
	guint8 flags;

	pb_fuzz_set_up();
	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	/* bits 2-3: bytes that came with the upgrade response (0, 1, 13 or up to 300) */
	leftover_len = MIN(size, leftover_lens[(flags >> 2) & 3]);
	leftover = g_bytes_new(data, leftover_len);
	base = g_memory_input_stream_new_from_data(data + leftover_len, size - leftover_len, NULL);

	context = g_main_context_new();
	g_main_context_push_thread_default(context);
	/* bit 0: the role */
	peer.input = pb_ws_input_new(base, leftover, (flags & 1) != 0);
	/* bit 1: a small limit, so that fragments and frames pass it in short inputs */
	pb_ws_input_set_max_message_size(peer.input, (flags & 2) ? 64 : PB_MAX_MESSAGE_SIZE);
	/* bits 4, 5, 6: pauses from the callbacks; no DATA fast path; no short-message one */
	peer.pause_often = (flags & 0x10) != 0;
	if ((flags & 0x20) == 0)
		pb_ws_input_set_data_func(peer.input, data_cb, &peer);
	if ((flags & 0x40) == 0)
		pb_ws_input_set_message_func(peer.input, message_cb, &peer);
	g_signal_connect(peer.input, "refused", G_CALLBACK(refused_cb), &peer);
	source = g_pollable_input_stream_create_source(G_POLLABLE_INPUT_STREAM(peer.input), NULL);
	g_source_set_callback(source, G_SOURCE_FUNC(libsoup_read_cb), &peer, NULL);
	g_source_attach(source, context);

	/* each iteration moves at least a byte or a frame on, or resumes a pause */
	max_iterations = 16 + 4 * (guint)size;
	for (guint i = 0; !peer.ended && !peer.refused; i++) {
		if (i == max_iterations)
			g_error("no progress after %u main loop iterations for %zu bytes", i, size);
		g_main_context_iteration(context, FALSE);
		pb_ws_input_set_paused(peer.input, FALSE);
	}
	g_assert_cmpuint(peer.delivered + peer.read, <=, size);
	/* refused is for good: the callbacks fail if anything more comes */
	for (guint i = 0; peer.refused && i < 4; i++)
		g_main_context_iteration(context, FALSE);

	g_source_destroy(source);
	g_clear_object(&peer.input);
	/* what the stream's source left behind (it holds a reference to the stream) */
	while (g_main_context_iteration(context, FALSE))
		;
	g_main_context_pop_thread_default(context);
	return 0;
}
