/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "pb-frame.h"
#include "pb-test-utils.h"
#include "pb-tunnel-client.h"
#include "pb-tunnel-server.h"

/*
 * Malformed input from a peer, sent by libsoup's own WebSocket (not PiggyBack code): each
 * case is handled as PROTOCOL.md says, and nothing crashes or wedges the other side.
 */

typedef struct {
	SoupWebsocketConnection *ws; /* (owned) */
	GPtrArray *received;	     /* (owned) GBytes */
	gboolean closed;
} Peer;

static void
peer_message_cb(SoupWebsocketConnection *ws, int type, GBytes *message, gpointer user_data)
{
	Peer *peer = user_data;

	g_assert_cmpint(type, ==, SOUP_WEBSOCKET_DATA_BINARY);
	g_ptr_array_add(peer->received, g_bytes_ref(message));
}

static void
peer_closed_cb(SoupWebsocketConnection *ws, gpointer user_data)
{
	Peer *peer = user_data;

	peer->closed = TRUE;
}

static void
peer_attach(Peer *peer, SoupWebsocketConnection *ws)
{
	peer->ws = g_object_ref(ws);
	peer->received = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_signal_connect(ws, "message", G_CALLBACK(peer_message_cb), peer);
	g_signal_connect(ws, "closed", G_CALLBACK(peer_closed_cb), peer);
}

static void
peer_clear(Peer *peer)
{
	if (peer->ws != NULL) {
		g_signal_handlers_disconnect_by_data(peer->ws, peer);
		if (soup_websocket_connection_get_state(peer->ws) == SOUP_WEBSOCKET_STATE_OPEN)
			soup_websocket_connection_close(peer->ws, SOUP_WEBSOCKET_CLOSE_NORMAL,
							NULL);
		g_clear_object(&peer->ws);
	}
	g_clear_pointer(&peer->received, g_ptr_array_unref);
	pb_test_settle();
}

static void
peer_send(Peer *peer, guint8 type, guint32 id, const char *payload)
{
	g_autoptr(GBytes) frame =
	    pb_frame_new(type, id, payload, payload != NULL ? strlen(payload) : 0);

	soup_websocket_connection_send_message(peer->ws, SOUP_WEBSOCKET_DATA_BINARY, frame);
}

static guint8
peer_frame_type(Peer *peer, guint i)
{
	return ((const guint8 *)g_bytes_get_data(g_ptr_array_index(peer->received, i), NULL))[0];
}

/* --- a raw peer against our server --- */

typedef struct {
	PbTunnelServer *server; /* (owned) */
	SoupSession *session;	/* (owned) */
	Peer peer;
} ServerFixture;

static void
connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ServerFixture *fx = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(SoupWebsocketConnection) ws =
	    soup_session_websocket_connect_finish(SOUP_SESSION(source), res, &error);

	g_assert_no_error(error);
	peer_attach(&fx->peer, ws);
}

static void
server_set_up(ServerFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *url = NULL;
	g_autoptr(SoupMessage) msg = NULL;

	fx->server = pb_tunnel_server_new(0, "127.0.0.1", 0, NULL);
	pb_tunnel_server_set_listen_host(fx->server, "127.0.0.1");
	g_assert_true(pb_tunnel_server_start(fx->server, &error));
	fx->session = soup_session_new();
	url =
	    g_strdup_printf("ws://127.0.0.1:%u" PB_WS_PATH, pb_tunnel_server_get_port(fx->server));
	msg = soup_message_new("GET", url);
	soup_session_websocket_connect_async(fx->session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
					     connect_cb, fx);
	pb_test_wait_until(fx->peer.ws != NULL && fx->peer.received->len >= 1, 10);
	g_assert_cmpuint(peer_frame_type(&fx->peer, 0), ==, PB_FRAME_HELLO);
}

static void
server_tear_down(ServerFixture *fx, gconstpointer user_data)
{
	peer_clear(&fx->peer);
	pb_tunnel_server_stop(fx->server);
	g_clear_object(&fx->server);
	g_clear_object(&fx->session);
	pb_test_settle();
}

/* The public port from the HELLO the peer received. */
static guint16
server_public_port(ServerFixture *fx)
{
	GBytes *hello = g_ptr_array_index(fx->peer.received, 0);
	gsize len = 0;
	const char *json = (const char *)g_bytes_get_data(hello, &len) + PB_FRAME_HEADER_SIZE;
	const char *port = g_strstr_len(json, (gssize)len - PB_FRAME_HEADER_SIZE, "\"tunnelPort\"");

	g_assert_nonnull(port);
	return (guint16)g_ascii_strtoull(strchr(port, ':') + 1, NULL, 10);
}

static gpointer
connect_public_cb(gpointer user_data)
{
	return pb_test_connect(GPOINTER_TO_UINT(user_data));
}

static void
test_server_ignores_strays(ServerFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSocket) public = NULL;

	g_test_summary("DATA/CLOSE for unknown connIds, unknown types and client OPEN/HELLO are "
		       "dropped; the tunnel keeps working");
	peer_send(&fx->peer, PB_FRAME_DATA, 42, "stray");
	peer_send(&fx->peer, PB_FRAME_CLOSE, 43, NULL);
	peer_send(&fx->peer, 0x7f, 5, "from the future");
	peer_send(&fx->peer, PB_FRAME_OPEN, 7, NULL);
	peer_send(&fx->peer, PB_FRAME_HELLO, 0, "{}");
	peer_send(&fx->peer, 0x7f, 0, NULL);

	/* still alive: a public connection is announced with OPEN */
	public =
	    pb_test_run_in_thread(connect_public_cb, GUINT_TO_POINTER(server_public_port(fx)), 10);
	pb_test_wait_until(fx->peer.received->len >= 2 || fx->peer.closed, 10);
	g_assert_false(fx->peer.closed);
	g_assert_cmpuint(peer_frame_type(&fx->peer, 1), ==, PB_FRAME_OPEN);
}

static void
test_server_short_message(ServerFixture *fx, gconstpointer user_data)
{
	const guint8 short_message[] = {PB_FRAME_DATA, 0, 0};

	g_test_summary("A message shorter than 5 bytes closes the WebSocket with 1002");
	soup_websocket_connection_send_binary(fx->peer.ws, short_message, sizeof short_message);
	pb_test_wait_until(fx->peer.closed, 10);
	g_assert_cmpuint(soup_websocket_connection_get_close_code(fx->peer.ws), ==,
			 SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR);
	pb_test_wait_until(pb_tunnel_server_get_n_clients(fx->server) == 0, 10);
}

static void
test_server_text_message(ServerFixture *fx, gconstpointer user_data)
{
	g_test_summary("A text message closes the WebSocket with 1002");
	soup_websocket_connection_send_text(fx->peer.ws, "\x02\x00\x00\x00\x01hello");
	pb_test_wait_until(fx->peer.closed, 10);
	g_assert_cmpuint(soup_websocket_connection_get_close_code(fx->peer.ws), ==,
			 SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR);
}

/* --- a raw server peer against our client --- */

typedef struct {
	SoupServer *soup;	/* (owned) */
	PbTunnelClient *client; /* (owned) */
	Peer peer;
	char *access_url;
	char *reason;
} ClientFixture;

static void
fake_server_ws_cb(SoupServer *server, SoupServerMessage *msg, const char *path,
		  SoupWebsocketConnection *ws, gpointer user_data)
{
	ClientFixture *fx = user_data;

	peer_attach(&fx->peer, ws);
}

static void
client_ready_cb(PbTunnelClient *client, const char *access_url, const char *http_url,
		gpointer user_data)
{
	ClientFixture *fx = user_data;

	fx->access_url = g_strdup(access_url);
}

static void
client_disconnected_cb(PbTunnelClient *client, const char *reason, gpointer user_data)
{
	ClientFixture *fx = user_data;

	fx->reason = g_strdup(reason);
}

static void
client_set_up(ClientFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *url = NULL;
	GSList *uris;

	fx->soup = soup_server_new(NULL, NULL);
	soup_server_add_websocket_handler(fx->soup, PB_WS_PATH, NULL, NULL, fake_server_ws_cb, fx,
					  NULL);
	soup_server_listen_local(fx->soup, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
	g_assert_no_error(error);
	uris = soup_server_get_uris(fx->soup);
	url = g_strdup_printf("ws://127.0.0.1:%d" PB_WS_PATH, g_uri_get_port(uris->data));
	g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);

	fx->client = pb_tunnel_client_new(url, "127.0.0.1", 9);
	g_signal_connect(fx->client, "ready", G_CALLBACK(client_ready_cb), fx);
	g_signal_connect(fx->client, "disconnected", G_CALLBACK(client_disconnected_cb), fx);
	pb_tunnel_client_connect_async(fx->client, NULL, NULL, NULL);
	pb_test_wait_until(fx->peer.ws != NULL, 10);
}

static void
client_tear_down(ClientFixture *fx, gconstpointer user_data)
{
	g_signal_handlers_disconnect_by_data(fx->client, fx);
	pb_tunnel_client_close(fx->client);
	g_clear_object(&fx->client);
	peer_clear(&fx->peer);
	soup_server_disconnect(fx->soup);
	g_clear_object(&fx->soup);
	pb_test_settle();
	g_free(fx->access_url);
	g_free(fx->reason);
}

static void
test_client_hello_not_object(ClientFixture *fx, gconstpointer user_data)
{
	g_test_summary("A HELLO that is not a JSON object closes the WebSocket with 1002 and the "
		       "client says why");
	peer_send(&fx->peer, PB_FRAME_HELLO, 0, "[\"not\", \"an object\"]");
	pb_test_wait_until(fx->reason != NULL, 10);
	g_assert_null(fx->access_url);
	g_assert_nonnull(strstr(fx->reason, "JSON object"));
	pb_test_wait_until(fx->peer.closed, 10);
	g_assert_cmpuint(soup_websocket_connection_get_close_code(fx->peer.ws), ==,
			 SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR);
}

static void
test_client_ignores_strays(ClientFixture *fx, gconstpointer user_data)
{
	const guint8 short_message[] = {PB_FRAME_OPEN};

	g_test_summary("Stray frames leave the client working; a short message ends it with 1002");
	peer_send(&fx->peer, PB_FRAME_HELLO, 0,
		  "{\"publicHost\":\"example.test\",\"tunnelPort\":7}");
	peer_send(&fx->peer, PB_FRAME_DATA, 42, "stray");
	peer_send(&fx->peer, PB_FRAME_CLOSE, 43, NULL);
	peer_send(&fx->peer, 0x7f, 5, "from the future");
	peer_send(&fx->peer, PB_FRAME_OPEN, 0, NULL);
	/* an OPEN the client answers with CLOSE: port 9 (discard) has no listener here */
	peer_send(&fx->peer, PB_FRAME_OPEN, 3, NULL);
	pb_test_wait_until(fx->peer.received->len >= 1, 10);
	g_assert_cmpuint(peer_frame_type(&fx->peer, 0), ==, PB_FRAME_CLOSE);
	g_assert_cmpstr(fx->access_url, ==, "tcp://example.test:7");
	g_assert_null(fx->reason);

	soup_websocket_connection_send_binary(fx->peer.ws, short_message, sizeof short_message);
	pb_test_wait_until(fx->reason != NULL, 10);
	pb_test_wait_until(fx->peer.closed, 10);
	g_assert_cmpuint(soup_websocket_connection_get_close_code(fx->peer.ws), ==,
			 SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/peer/server/ignores-strays", ServerFixture, NULL, server_set_up,
		   test_server_ignores_strays, server_tear_down);
	g_test_add("/peer/server/short-message", ServerFixture, NULL, server_set_up,
		   test_server_short_message, server_tear_down);
	g_test_add("/peer/server/text-message", ServerFixture, NULL, server_set_up,
		   test_server_text_message, server_tear_down);
	g_test_add("/peer/client/hello-not-object", ClientFixture, NULL, client_set_up,
		   test_client_hello_not_object, client_tear_down);
	g_test_add("/peer/client/ignores-strays", ClientFixture, NULL, client_set_up,
		   test_client_ignores_strays, client_tear_down);
	return g_test_run();
}
