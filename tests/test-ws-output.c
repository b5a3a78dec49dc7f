/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <gio/gio.h>
#include <string.h>
#include <sys/socket.h>

#include "pb-batch.h"
#include "pb-ws-frame.h"
#include "pb-ws-output.h"

/*
 * PbWsOutput over a real socket pair: when our frames reach the socket, in which order,
 * and how they share it with libsoup's (written here through the pollable interface, as
 * libsoup writes).
 */

typedef struct {
	GSocket *ours;	 /* (owned) the output's end */
	GSocket *peer;	 /* (owned) what the other side reads */
	GIOStream *conn; /* (owned) */
	PbWsOutput *out; /* (owned) unmasked: the server's */
} Fixture;

static void
fixture_set_up(Fixture *fx, gconstpointer user_data)
{
	int fds[2];

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
	fx->ours = g_socket_new_from_fd(fds[0], NULL);
	fx->peer = g_socket_new_from_fd(fds[1], NULL);
	g_assert_nonnull(fx->ours);
	g_assert_nonnull(fx->peer);
	fx->conn = G_IO_STREAM(g_socket_connection_factory_create_connection(fx->ours));
	fx->out = pb_ws_output_new(g_io_stream_get_output_stream(fx->conn), FALSE);
}

static void
fixture_tear_down(Fixture *fx, gconstpointer user_data)
{
	g_clear_object(&fx->out);
	g_clear_object(&fx->conn);
	g_clear_object(&fx->ours);
	g_clear_object(&fx->peer);
}

/* A frame of ours (unmasked) with a @len-byte message of @fill bytes, in @frame. */
static gsize
make_frame(guint8 *frame, gsize len, guint8 fill)
{
	gsize header_len = pb_ws_frame_header_size(len, FALSE);

	pb_ws_frame_header_write(frame, len, NULL);
	memset(frame + header_len, fill, len);
	return header_len + len;
}

static void
send_frame(Fixture *fx, gsize len, guint8 fill)
{
	g_autofree guint8 *frame = g_malloc(PB_WS_FRAME_HEADER_MAX + len);

	pb_ws_output_send(fx->out, frame, make_frame(frame, len, fill));
}

/* What the peer can read now, without waiting. */
static GByteArray *
read_now(Fixture *fx)
{
	GByteArray *got = g_byte_array_new();
	guint8 buf[65536];
	gssize n;

	while ((n = g_socket_receive_with_blocking(fx->peer, (char *)buf, sizeof buf, FALSE, NULL,
						   NULL)) > 0)
		g_byte_array_append(got, buf, (guint)n);
	return got;
}

/* The fills of the frames in @got, in order ("abc"), checking each frame whole. */
static char *
fills(GByteArray *got)
{
	GString *order = g_string_new(NULL);

	for (gsize at = 0; at < got->len;) {
		PbWsFrameHeader header;

		g_assert_true(pb_ws_frame_header_parse(got->data + at, got->len - at, &header));
		g_assert_cmpuint(at + header.header_len + header.payload_len, <=, got->len);
		for (gsize i = 0; i < header.payload_len; i++)
			g_assert_cmpuint(got->data[at + header.header_len + i], ==,
					 got->data[at + header.header_len]);
		if (header.payload_len > 0)
			g_string_append_c(order, (char)got->data[at + header.header_len]);
		at += header.header_len + header.payload_len;
	}
	return g_string_free(order, FALSE);
}

static void
assert_reads(Fixture *fx, const char *expected)
{
	g_autoptr(GByteArray) got = read_now(fx);
	g_autofree char *order = fills(got);

	g_assert_cmpstr(order, ==, expected);
}

static void
test_ws_output_batch(Fixture *fx, gconstpointer user_data)
{
	g_test_summary("Small frames sent during a batch reach the socket at its end, together, in "
		       "order; outside a batch they go at once");
	send_frame(fx, 9, 'a');
	assert_reads(fx, "a");

	pb_batch_begin();
	send_frame(fx, 9, 'b');
	send_frame(fx, 500, 'c'); /* 504 bytes with its header: small */
	assert_reads(fx, "");
	pb_batch_begin(); /* nested: only the outermost end writes */
	send_frame(fx, 20, 'd');
	pb_batch_end();
	assert_reads(fx, "");
	pb_batch_end();
	assert_reads(fx, "bcd");
	g_assert_cmpuint(pb_ws_output_get_sent(fx->out), ==, 11 + 11 + 504 + 22);
}

static void
test_ws_output_batch_big(Fixture *fx, gconstpointer user_data)
{
	g_test_summary("A frame that is not small goes at once, after the small ones before it; "
		       "so do small ones past the batch buffer's room (4 KiB)");
	pb_batch_begin();
	send_frame(fx, 9, 'a');
	send_frame(fx, 509, 'b'); /* 513 bytes */
	assert_reads(fx, "ab");
	for (guint i = 0; i < 10; i++)
		send_frame(fx, 500, (guint8)('c' + i)); /* 504 bytes each: 8 fit */
	assert_reads(fx, "cdefghij");
	pb_batch_end();
	assert_reads(fx, "kl");
}

static void
test_ws_output_batch_libsoup(Fixture *fx, gconstpointer user_data)
{
	guint8 ping[2 + 4] = {0x89, 4, 'p', 'p', 'p', 'p'};
	GPollableOutputStream *pollable = G_POLLABLE_OUTPUT_STREAM(fx->out);

	g_test_summary("A frame of libsoup's (a ping) follows the small frames of ours sent before "
		       "it; ours sent after it wait for the end of the batch");
	pb_batch_begin();
	send_frame(fx, 9, 'a');
	g_assert_cmpint(
	    g_pollable_output_stream_write_nonblocking(pollable, ping, sizeof ping, NULL, NULL), ==,
	    sizeof ping);
	send_frame(fx, 9, 'b');
	assert_reads(fx, "ap");
	pb_batch_end();
	assert_reads(fx, "b");
}

static void
test_ws_output_batch_bounded(Fixture *fx, gconstpointer user_data)
{
	g_autoptr(GPtrArray) others = g_ptr_array_new_with_free_func(g_object_unref);

	g_test_summary("At most PB_BATCH_MAX_DEFERRED outputs wait for the end of a batch; the "
		       "next one's frames go at once");
	pb_batch_begin();
	for (guint i = 0; i < PB_BATCH_MAX_DEFERRED; i++) {
		PbWsOutput *other =
		    pb_ws_output_new(g_io_stream_get_output_stream(fx->conn), FALSE);
		guint8 frame[16];

		g_ptr_array_add(others, other);
		pb_ws_output_send(other, frame, make_frame(frame, 9, 'x'));
	}
	send_frame(fx, 9, 'a');
	assert_reads(fx, "a");
	pb_batch_end();
	{
		g_autoptr(GByteArray) got = read_now(fx);
		g_autofree char *order = fills(got);

		g_assert_cmpuint(strlen(order), ==, PB_BATCH_MAX_DEFERRED);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
	ADD("/ws-output/batch", test_ws_output_batch);
	ADD("/ws-output/batch-big", test_ws_output_batch_big);
	ADD("/ws-output/batch-libsoup", test_ws_output_batch_libsoup);
	ADD("/ws-output/batch-bounded", test_ws_output_batch_bounded);
	return g_test_run();
}
