/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "pb-frame.h"
#include "pb-test-utils.h"
#include "pb-ws-frame.h"
#include "pb-ws-input.h"

/*
 * PbWsInput's fast paths over a memory stream: what each function is handed, in which
 * order, and what is left to libsoup (here: to the source's callback, which libsoup would
 * be).
 */

typedef struct {
	GString *log; /* (owned) "D<conn>:<bytes> " per DATA piece, "M<type>:<conn>:<len> " per
		       * short message, "L " when the callback (libsoup) has news */
	guint8 last_message[PB_WS_SHORT_MESSAGE];
	gsize last_len;
} Seen;

static void
data_cb(guint32 conn_id, const guint8 *data, gsize len, gpointer user_data)
{
	Seen *seen = user_data;

	g_string_append_printf(seen->log, "D%u:%" G_GSIZE_FORMAT " ", conn_id, len);
}

static void
message_cb(const guint8 *message, gsize len, gpointer user_data)
{
	Seen *seen = user_data;

	g_assert_cmpuint(len, >=, PB_FRAME_HEADER_SIZE);
	g_assert_cmpuint(len, <=, PB_WS_SHORT_MESSAGE);
	g_string_append_printf(seen->log, "M%u:%u:%" G_GSIZE_FORMAT " ", message[0],
			       pb_frame_read_u32(message + 1), len);
	memcpy(seen->last_message, message, len);
	seen->last_len = len;
}

static gboolean
libsoup_cb(GObject *stream, gpointer user_data)
{
	Seen *seen = user_data;
	guint8 buf[4096];
	gssize n = g_pollable_input_stream_read_nonblocking(G_POLLABLE_INPUT_STREAM(stream), buf,
							    sizeof buf, NULL, NULL);

	if (n > 0)
		g_string_append(seen->log, "L ");
	return n != 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* A client's frame (masked, as the server expects) holding one PiggyBack message. */
static void
append_message(GByteArray *stream, guint8 type, guint32 conn_id, const guint8 *payload, gsize len)
{
	const guint8 mask[4] = {0x37, 0xfa, 0x21, 0x3d};
	g_autofree guint8 *message = g_malloc(PB_FRAME_HEADER_SIZE + len);
	gsize message_len = PB_FRAME_HEADER_SIZE + len;
	guint8 header[PB_WS_FRAME_HEADER_MAX];
	gsize header_len = pb_ws_frame_header_size(message_len, TRUE);
	guint at;

	pb_frame_write_header(message, type, conn_id);
	if (len > 0)
		memcpy(message + PB_FRAME_HEADER_SIZE, payload, len);
	pb_ws_frame_header_write(header, message_len, mask);
	header[0] = 0x82; /* FIN, binary */
	g_byte_array_append(stream, header, (guint)header_len);
	at = stream->len;
	g_byte_array_append(stream, message, (guint)message_len);
	pb_ws_frame_unmask(stream->data + at, message_len, mask, 0);
}

/* Reads all of @stream through a PbWsInput, as a server (masked frames). */
static void
read_all(GByteArray *stream, Seen *seen)
{
	g_autoptr(GBytes) bytes = g_bytes_new(stream->data, stream->len);
	g_autoptr(GInputStream) base = g_memory_input_stream_new_from_bytes(bytes);
	g_autoptr(PbWsInput) input = pb_ws_input_new(base, NULL, TRUE);
	g_autoptr(GSource) source = NULL;
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	pb_ws_input_set_data_func(input, data_cb, seen);
	pb_ws_input_set_message_func(input, message_cb, seen);
	source = g_pollable_input_stream_create_source(G_POLLABLE_INPUT_STREAM(input), NULL);
	g_source_set_callback(source, G_SOURCE_FUNC(libsoup_cb), seen, NULL);
	g_source_attach(source, NULL);
	while (!g_source_is_destroyed(source)) {
		g_main_context_iteration(NULL, FALSE);
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
	}
}

static void
test_ws_input_short_messages(void)
{
	g_autoptr(GByteArray) stream = g_byte_array_new();
	guint8 window[12] = {0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34};
	guint8 data[100];
	guint8 long_message[PB_WS_SHORT_MESSAGE - PB_FRAME_HEADER_SIZE + 1];
	Seen seen = {.log = g_string_new(NULL)};

	g_test_summary("Short messages other than DATA (WINDOW, EOF, CLOSE, at most "
		       "PB_WS_SHORT_MESSAGE bytes) are handed whole and unmasked to the message "
		       "function, in order with DATA; a longer one is left to libsoup");
	memset(data, 'd', sizeof data);
	memset(long_message, 'h', sizeof long_message);
	append_message(stream, PB_FRAME_DATA, 7, data, sizeof data);
	append_message(stream, PB_FRAME_WINDOW, 7, window, sizeof window);
	append_message(stream, PB_FRAME_EOF, 7, NULL, 0);
	append_message(stream, PB_FRAME_CLOSE, 9, NULL, 0);
	append_message(stream, PB_FRAME_DATA, 9, data, 10);
	append_message(stream, PB_FRAME_HELLO, 0, long_message, sizeof long_message);
	read_all(stream, &seen);

	g_assert_cmpstr(seen.log->str, ==, "D7:100 M5:7:17 M6:7:5 M3:9:5 D9:10 L ");
	g_string_free(seen.log, TRUE);
}

static void
test_ws_input_short_message_unmasked(void)
{
	g_autoptr(GByteArray) stream = g_byte_array_new();
	guint8 window[12] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8};
	Seen seen = {.log = g_string_new(NULL)};

	g_test_summary("A short message's bytes reach the message function unmasked");
	append_message(stream, PB_FRAME_WINDOW, 0x01020304, window, sizeof window);
	read_all(stream, &seen);
	g_assert_cmpuint(seen.last_len, ==, PB_FRAME_HEADER_SIZE + sizeof window);
	g_assert_cmpuint(seen.last_message[0], ==, PB_FRAME_WINDOW);
	g_assert_cmpuint(pb_frame_read_u32(seen.last_message + 1), ==, 0x01020304);
	g_assert_cmpmem(seen.last_message + PB_FRAME_HEADER_SIZE, sizeof window, window,
			sizeof window);
	g_string_free(seen.log, TRUE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ws-input/short-messages", test_ws_input_short_messages);
	g_test_add_func("/ws-input/short-message-unmasked", test_ws_input_short_message_unmasked);
	return g_test_run();
}
