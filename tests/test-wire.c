/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-frame.h"
#include "pb-test-utils.h"
#include "pb-tunnel-server.h"
#include "pb-ws-frame.h"

/*
 * The WebSocket byte stream, written by hand: a client of our server that splits frames
 * anywhere, fragments messages, pings between them and breaks the rules, to prove that the
 * fast paths in PbWsInput and PbWsOutput keep order and leave the rest to libsoup.
 */

typedef struct {
	PbTunnelServer *server; /* (owned) */
	GSocket *ws;		/* (owned) our raw WebSocket client */
	GSocket *public;	/* (owned) a public connection of the tunnel */
	guint32 conn_id;	/* of @public */
	GByteArray *in;		/* (owned) bytes from the server not parsed yet */
} WireFixture;

/* Runs the main context briefly, so the in-process server handles what we sent. */
static void
spin(void)
{
	for (int i = 0; i < 5; i++) {
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(500);
	}
}

static void
send_raw(WireFixture *fx, const void *data, gsize len)
{
	gsize done = 0;

	while (done < len) {
		gssize n = g_socket_send(fx->ws, (const char *)data + done, len - done, NULL, NULL);

		g_assert_cmpint(n, >, 0);
		done += (gsize)n;
	}
}

/* Reads from @socket (non-blocking, running the main context) until @buf holds @len bytes. */
static void
recv_exact(GSocket *socket, GByteArray *buf, gsize len)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	guint8 chunk[65536];

	while (buf->len < len) {
		gssize n = g_socket_receive_with_blocking(socket, (char *)chunk, sizeof chunk,
							  FALSE, NULL, NULL);

		if (n > 0)
			g_byte_array_append(buf, chunk, (guint)n);
		else if (n == 0)
			g_error("connection closed with %u of %" G_GSIZE_FORMAT " bytes", buf->len,
				len);
		else
			spin();
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
	}
}

/* The next frame from the server: its opcode and payload (unmasked: servers never mask). */
static GBytes *
recv_frame(WireFixture *fx, guint8 *opcode)
{
	PbWsFrameHeader header;
	GBytes *payload;

	recv_exact(fx->ws, fx->in, 2);
	while (!pb_ws_frame_header_parse(fx->in->data, fx->in->len, &header))
		recv_exact(fx->ws, fx->in, fx->in->len + 1);
	g_assert_false(header.masked);
	recv_exact(fx->ws, fx->in, header.header_len + header.payload_len);
	*opcode = header.opcode;
	payload = g_bytes_new(fx->in->data + header.header_len, header.payload_len);
	g_byte_array_remove_range(fx->in, 0, (guint)(header.header_len + header.payload_len));
	return payload;
}

/* A client frame: FIN as given, masked with a key that is not trivial. */
static GByteArray *
make_frame(gboolean fin, guint8 opcode, const guint8 *payload, gsize len, gboolean masked)
{
	GByteArray *frame = g_byte_array_new();
	const guint8 mask[4] = {0x12, 0x9a, 0xff, 0x01};
	guint8 header[PB_WS_FRAME_HEADER_MAX];
	gsize header_len = pb_ws_frame_header_size(len, masked);

	pb_ws_frame_header_write(header, len, masked ? mask : NULL);
	header[0] = (fin ? 0x80 : 0) | opcode;
	g_byte_array_append(frame, header, (guint)header_len);
	g_byte_array_append(frame, payload, (guint)len);
	if (masked)
		pb_ws_frame_unmask(frame->data + header_len, len, mask, 0);
	return frame;
}

/* A DATA message for the public connection, carrying @len bytes of the pattern at @offset. */
static GByteArray *
make_data(WireFixture *fx, guint64 offset, gsize len)
{
	g_autofree guint8 *message = g_malloc(PB_FRAME_HEADER_SIZE + len);

	pb_frame_write_header(message, PB_FRAME_DATA, fx->conn_id);
	pb_test_pattern_fill(message + PB_FRAME_HEADER_SIZE, len, offset);
	return make_frame(TRUE, 0x2, message, PB_FRAME_HEADER_SIZE + len, TRUE);
}

/* Reads @len bytes from the public connection and checks they are the pattern at @offset. */
static void
expect_public(WireFixture *fx, guint64 offset, gsize len)
{
	g_autoptr(GByteArray) buf = g_byte_array_new();

	recv_exact(fx->public, buf, len);
	g_assert_cmpuint(buf->len, ==, len);
	g_assert_true(pb_test_pattern_check(buf->data, len, offset));
}

/* The server's next frame is a close frame with @code. */
static void
expect_close(WireFixture *fx, guint code)
{
	guint8 opcode = 0;
	g_autoptr(GBytes) close = recv_frame(fx, &opcode);
	const guint8 *payload = g_bytes_get_data(close, NULL);

	g_assert_cmpuint(opcode, ==, 0x8);
	g_assert_cmpuint(g_bytes_get_size(close), >=, 2);
	g_assert_cmpuint((guint)payload[0] << 8 | payload[1], ==, code);
}

static void
wire_set_up(WireFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) response = g_byte_array_new();
	g_autoptr(GBytes) hello = NULL;
	g_autoptr(GBytes) open = NULL;
	g_autofree char *request = NULL;
	const char *port_at;
	guint8 opcode = 0;
	PbFrame frame;

	fx->server = pb_tunnel_server_new(0, "127.0.0.1", 0, NULL);
	/* user_data: a window for a protocol v2 client with `flow`; NULL speaks version 1 */
	if (user_data != NULL)
		pb_tunnel_server_set_features(fx->server, PB_FEATURE_FLOW,
					      GPOINTER_TO_UINT(user_data));
	pb_tunnel_server_set_listen_host(fx->server, "127.0.0.1");
	g_assert_true(pb_tunnel_server_start(fx->server, &error));
	fx->in = g_byte_array_new();
	fx->ws = pb_test_connect(pb_tunnel_server_get_port(fx->server));
	request = g_strdup_printf("GET " PB_WS_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				  "Sec-WebSocket-Version: 13\r\n%s\r\n",
				  user_data != NULL ? PB_FEATURES_HEADER ": flow\r\n" : "");
	send_raw(fx, request, strlen(request));
	while (response->len == 0 ||
	       g_strstr_len((const char *)response->data, response->len, "\r\n\r\n") == NULL)
		recv_exact(fx->ws, response, response->len + 1);
	g_assert_true(g_str_has_prefix((const char *)response->data, "HTTP/1.1 101"));
	{
		const char *end =
		    g_strstr_len((const char *)response->data, response->len, "\r\n\r\n") + 4;
		gsize headers_len = (gsize)(end - (const char *)response->data);

		/* what came after the headers is the first frames */
		g_byte_array_append(fx->in, response->data + headers_len,
				    response->len - (guint)headers_len);
		response->len = (guint)headers_len;
	}
	/* RFC 6455's own example key and answer */
	g_assert_nonnull(g_strstr_len((const char *)response->data, response->len,
				      "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));

	hello = recv_frame(fx, &opcode);
	g_assert_cmpuint(opcode, ==, 0x2);
	g_assert_true(pb_frame_parse(hello, &frame, NULL));
	g_assert_cmpuint(frame.type, ==, PB_FRAME_HELLO);
	port_at =
	    g_strstr_len((const char *)frame.payload, (gssize)frame.payload_len, "\"tunnelPort\":");
	fx->public = pb_test_connect(
	    (guint16)g_ascii_strtoull(port_at + strlen("\"tunnelPort\":"), NULL, 10));
	g_socket_set_blocking(fx->public, FALSE);
	g_socket_set_blocking(fx->ws, FALSE);

	open = recv_frame(fx, &opcode);
	g_assert_true(pb_frame_parse(open, &frame, NULL));
	g_assert_cmpuint(frame.type, ==, PB_FRAME_OPEN);
	fx->conn_id = frame.conn_id;
}

static void
wire_tear_down(WireFixture *fx, gconstpointer user_data)
{
	g_clear_object(&fx->public);
	g_clear_object(&fx->ws);
	pb_tunnel_server_stop(fx->server);
	g_clear_object(&fx->server);
	g_byte_array_unref(fx->in);
	pb_test_settle();
}

static void
test_wire_split_anywhere(WireFixture *fx, gconstpointer user_data)
{
	g_autoptr(GByteArray) small = make_data(fx, 0, 300);	  /* 16-bit length */
	g_autoptr(GByteArray) large = make_data(fx, 300, 200000); /* 64-bit length */
	const gsize cuts[] = {1, 2, 3, 5, 8, 9, 11, 12, 20, 150, 299};

	g_test_summary("Frames arriving a few bytes at a time, cut in the WebSocket header, the "
		       "masking key, the PiggyBack header or the payload, come out whole");
	for (gsize i = 0; i < G_N_ELEMENTS(cuts); i++) {
		g_autoptr(GByteArray) frame = make_data(fx, 0, 300);

		send_raw(fx, frame->data, cuts[i]);
		spin();
		send_raw(fx, frame->data + cuts[i], frame->len - cuts[i]);
		expect_public(fx, 0, 300);
	}
	for (gsize at = 0; at < small->len; at += 7) {
		send_raw(fx, small->data + at, MIN(7, small->len - at));
		spin();
	}
	send_raw(fx, large->data, large->len);
	expect_public(fx, 0, 300 + 200000);
}

static void
test_wire_fragments_and_pings(WireFixture *fx, gconstpointer user_data)
{
	g_autofree guint8 *message = g_malloc(PB_FRAME_HEADER_SIZE + 1000);
	g_autoptr(GByteArray) first = NULL;
	g_autoptr(GByteArray) ping =
	    make_frame(TRUE, 0x9, (const guint8 *)"are you there", 13, TRUE);
	g_autoptr(GByteArray) last = NULL;
	g_autoptr(GByteArray) after = make_data(fx, 1000, 500);
	g_autoptr(GBytes) pong = NULL;
	guint8 opcode = 0;

	g_test_summary("A fragmented DATA message with a ping between its fragments goes through "
		       "libsoup, in order with the fast path, and the ping is answered");
	pb_frame_write_header(message, PB_FRAME_DATA, fx->conn_id);
	pb_test_pattern_fill(message + PB_FRAME_HEADER_SIZE, 1000, 0);
	first = make_frame(FALSE, 0x2, message, 600, TRUE);
	last = make_frame(TRUE, 0x0, message + 600, PB_FRAME_HEADER_SIZE + 1000 - 600, TRUE);

	send_raw(fx, first->data, first->len);
	send_raw(fx, ping->data, ping->len);
	send_raw(fx, last->data, last->len);
	send_raw(fx, after->data, after->len);
	expect_public(fx, 0, 1500);

	pong = recv_frame(fx, &opcode);
	g_assert_cmpuint(opcode, ==, 0xa);
	g_assert_cmpmem(g_bytes_get_data(pong, NULL), g_bytes_get_size(pong), "are you there", 13);
}

static void
test_wire_unmasked_client(WireFixture *fx, gconstpointer user_data)
{
	g_autofree guint8 *message = g_malloc(PB_FRAME_HEADER_SIZE + 10);
	g_autoptr(GByteArray) frame = NULL;

	g_test_summary("An unmasked frame from a client is refused with close code 1002, not "
		       "taken by the fast path");
	pb_frame_write_header(message, PB_FRAME_DATA, fx->conn_id);
	pb_test_pattern_fill(message + PB_FRAME_HEADER_SIZE, 10, 0);
	frame = make_frame(TRUE, 0x2, message, PB_FRAME_HEADER_SIZE + 10, FALSE);
	send_raw(fx, frame->data, frame->len);
	expect_close(fx, 1002);
}

static void
test_wire_message_inside_fragments(WireFixture *fx, gconstpointer user_data)
{
	g_autofree guint8 *message = g_malloc(PB_FRAME_HEADER_SIZE + 100);
	g_autoptr(GByteArray) first = NULL;
	g_autoptr(GByteArray) intruder = make_data(fx, 0, 100);

	g_test_summary("A whole message in the middle of a fragmented one breaks RFC 6455: it is "
		       "left to libsoup, which closes with 1002, not taken by the fast path");
	pb_frame_write_header(message, PB_FRAME_DATA, fx->conn_id);
	pb_test_pattern_fill(message + PB_FRAME_HEADER_SIZE, 100, 0);
	first = make_frame(FALSE, 0x2, message, 50, TRUE);
	send_raw(fx, first->data, first->len);
	send_raw(fx, intruder->data, intruder->len);
	expect_close(fx, 1002);
}

static void
test_wire_pong_between_frames(WireFixture *fx, gconstpointer user_data)
{
	g_autoptr(GByteArray) ping = make_frame(TRUE, 0x9, (const guint8 *)"ping", 4, TRUE);
	g_autofree guint8 *chunk = g_malloc(65536);
	guint64 sent = 0;
	guint64 received = 0;
	int stalled = 0;
	int pongs = 0;

	g_test_summary("While the server's socket is full in the middle of a DATA frame, libsoup's "
		       "pong waits for the frame to end: every frame arrives whole");
	/* push through the tunnel while not reading the WebSocket, until everything stalls */
	while (stalled < 50 && sent < 64 * 1024 * 1024) {
		gssize n;

		pb_test_pattern_fill(chunk, 65536, sent);
		n = g_socket_send_with_blocking(fx->public, (const char *)chunk, 65536, FALSE, NULL,
						NULL);
		if (n > 0) {
			sent += (guint64)n; /* the next chunk starts where this one ended */
			stalled = 0;
		} else {
			spin();
			stalled++;
		}
	}
	send_raw(fx, ping->data, ping->len);
	spin();

	while (received < sent || pongs == 0) {
		guint8 opcode = 0;
		g_autoptr(GBytes) payload = recv_frame(fx, &opcode);
		PbFrame frame;

		if (opcode == 0xa) {
			pongs++;
			continue;
		}
		g_assert_cmpuint(opcode, ==, 0x2);
		g_assert_true(pb_frame_parse(payload, &frame, NULL));
		g_assert_cmpuint(frame.type, ==, PB_FRAME_DATA);
		g_assert_true(pb_test_pattern_check(frame.payload, frame.payload_len, received));
		received += frame.payload_len;
	}
	g_assert_cmpuint(received, ==, sent);
	g_assert_cmpint(pongs, ==, 1);
}

static void
test_wire_beyond_credit(WireFixture *fx, gconstpointer user_data)
{
	g_autoptr(GByteArray) too_much = make_data(fx, 0, 2000); /* the window is 1024 */
	g_autoptr(GByteArray) ping = make_frame(TRUE, 0x9, (const guint8 *)"still", 5, TRUE);
	g_autoptr(GByteArray) public_in = g_byte_array_new();
	gboolean closed = FALSE;
	gboolean ponged = FALSE;
	char byte;

	g_test_summary("flow: DATA beyond the granted credit closes that connection (CLOSE), "
		       "not the tunnel");
	send_raw(fx, too_much->data, too_much->len);
	send_raw(fx, ping->data, ping->len);
	while (!closed || !ponged) {
		guint8 opcode = 0;
		g_autoptr(GBytes) payload = recv_frame(fx, &opcode);
		PbFrame frame;

		if (opcode == 0xa) {
			ponged = TRUE; /* the WebSocket still answers */
			continue;
		}
		g_assert_cmpuint(opcode, ==, 0x2);
		g_assert_true(pb_frame_parse(payload, &frame, NULL));
		if (frame.type == PB_FRAME_CLOSE && frame.conn_id == fx->conn_id)
			closed = TRUE;
	}
	/* and the public connection is closed, without any of the excess */
	g_socket_set_blocking(fx->public, TRUE);
	g_socket_set_timeout(fx->public, 5);
	while (g_socket_receive(fx->public, &byte, 1, NULL, NULL) == 1)
		g_byte_array_append(public_in, (const guint8 *)&byte, 1);
	g_assert_cmpuint(public_in->len, <=, 1024);
}

static void
test_wire_frame_codec(void)
{
	const guint64 lengths[] = {0, 5, 125, 126, 65535, 65536, 1u << 20};
	guint8 data[67];
	guint8 expected[67];
	const guint8 mask[4] = {0xde, 0xad, 0xbe, 0xef};

	g_test_summary("Headers round-trip at every length class; unmasking matches RFC 6455's "
		       "byte rule at every offset");
	for (gsize i = 0; i < G_N_ELEMENTS(lengths); i++) {
		for (int masked = 0; masked <= 1; masked++) {
			guint8 buf[PB_WS_FRAME_HEADER_MAX];
			gsize size = pb_ws_frame_header_size(lengths[i], masked);
			PbWsFrameHeader header;

			pb_ws_frame_header_write(buf, lengths[i], masked ? mask : NULL);
			g_assert_false(pb_ws_frame_header_parse(buf, size - 1, &header));
			g_assert_true(pb_ws_frame_header_parse(buf, size, &header));
			g_assert_cmpuint(header.header_len, ==, size);
			g_assert_cmpuint(header.payload_len, ==, lengths[i]);
			g_assert_true(header.fin);
			g_assert_cmpuint(header.opcode, ==, 0x2);
			g_assert_cmpint(header.masked, ==, masked);
		}
	}
	for (guint64 offset = 0; offset < 8; offset++) {
		for (gsize len = 0; len < sizeof data; len++) {
			for (gsize k = 0; k < len; k++) {
				data[k] = (guint8)(k * 31);
				expected[k] = data[k] ^ mask[(offset + k) & 3];
			}
			pb_ws_frame_unmask(data, len, mask, offset);
			g_assert_cmpmem(data, len, expected, len);
		}
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/wire/frame-codec", test_wire_frame_codec);
	g_test_add("/wire/split-anywhere", WireFixture, NULL, wire_set_up, test_wire_split_anywhere,
		   wire_tear_down);
	g_test_add("/wire/fragments-and-pings", WireFixture, NULL, wire_set_up,
		   test_wire_fragments_and_pings, wire_tear_down);
	g_test_add("/wire/unmasked-client", WireFixture, NULL, wire_set_up,
		   test_wire_unmasked_client, wire_tear_down);
	g_test_add("/wire/message-inside-fragments", WireFixture, NULL, wire_set_up,
		   test_wire_message_inside_fragments, wire_tear_down);
	g_test_add("/wire/pong-between-frames", WireFixture, NULL, wire_set_up,
		   test_wire_pong_between_frames, wire_tear_down);
	g_test_add("/wire/beyond-credit", WireFixture, GUINT_TO_POINTER(1024), wire_set_up,
		   test_wire_beyond_credit, wire_tear_down);
	return g_test_run();
}
