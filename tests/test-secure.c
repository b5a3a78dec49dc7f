/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "pb-error.h"
#include "pb-frame.h"
#include "pb-test-utils.h"
#include "pb-tunnel-client.h"
#include "pb-tunnel-server.h"

/*
 * Authentication and TLS, end to end in one process: a real PbTunnelServer and
 * PbTunnelClient over loopback, the client's connect result and the server's client count
 * checked for every token and certificate case.
 */

#define TOKEN "s3cret-token"

typedef struct {
	PbTunnelServer *server; /* (owned) */
	PbTunnelClient *client; /* (owned) (nullable) */
	char *access_url;	/* (owned) (nullable) */
	GError *connect_error;	/* (owned) (nullable) */
	gboolean connect_done;
	guint16 public_port;
} SecureFixture;

static void
secure_ready_cb(PbTunnelClient *client, const char *access_url, const char *http_url,
		gpointer user_data)
{
	SecureFixture *fx = user_data;
	const char *colon = strrchr(access_url, ':');

	g_free(fx->access_url);
	fx->access_url = g_strdup(access_url);
	fx->public_port = (guint16)g_ascii_strtoull(colon + 1, NULL, 10);
}

static void
secure_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	SecureFixture *fx = user_data;

	pb_tunnel_client_connect_finish(PB_TUNNEL_CLIENT(source), res, &fx->connect_error);
	fx->connect_done = TRUE;
}

static void
secure_set_up(SecureFixture *fx, gconstpointer user_data)
{
	fx->server = pb_tunnel_server_new(0, "127.0.0.1", 0, NULL);
	pb_tunnel_server_set_listen_host(fx->server, "127.0.0.1");
}

static void
secure_start_server(SecureFixture *fx)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(pb_tunnel_server_start(fx->server, &error));
	g_assert_no_error(error);
}

/* Creates the client for @scheme://127.0.0.1:port; the caller configures it. */
static PbTunnelClient *
secure_new_client(SecureFixture *fx, const char *scheme, guint16 local_port)
{
	g_autofree char *url = g_strdup_printf("%s://127.0.0.1:%u" PB_WS_PATH, scheme,
					       pb_tunnel_server_get_port(fx->server));

	g_assert_null(fx->client);
	fx->client = pb_tunnel_client_new(url, "127.0.0.1", local_port);
	g_signal_connect(fx->client, "ready", G_CALLBACK(secure_ready_cb), fx);
	return fx->client;
}

/* Connects; returns once the client has either the access URL or a connect error. */
static void
secure_connect(SecureFixture *fx)
{
	pb_tunnel_client_connect_async(fx->client, NULL, secure_connected_cb, fx);
	pb_test_wait_until(fx->connect_done, 10);
	if (fx->connect_error == NULL)
		pb_test_wait_until(fx->access_url != NULL, 10);
}

static void
secure_tear_down(SecureFixture *fx, gconstpointer user_data)
{
	if (fx->client != NULL) {
		g_signal_handlers_disconnect_by_data(fx->client, fx);
		pb_tunnel_client_close(fx->client);
		g_clear_object(&fx->client);
	}
	pb_tunnel_server_stop(fx->server);
	g_clear_object(&fx->server);
	pb_test_settle();
	g_free(fx->access_url);
	g_clear_error(&fx->connect_error);
}

/* One byte through the tunnel and back, from a public client. */
static gpointer
echo_byte_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	char c = 0;

	g_assert_cmpint(g_socket_send(socket, "x", 1, NULL, NULL), ==, 1);
	g_assert_cmpint(g_socket_receive(socket, &c, 1, NULL, NULL), ==, 1);
	g_assert_cmpint(c, ==, 'x');
	return GINT_TO_POINTER(TRUE);
}

static void
test_auth_right_token(SecureFixture *fx, gconstpointer user_data)
{
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);

	g_test_summary("With the server's token, the client gets a tunnel that carries bytes");
	pb_tunnel_server_set_token(fx->server, TOKEN);
	secure_start_server(fx);
	pb_tunnel_client_set_token(secure_new_client(fx, "ws", pb_test_service_get_port(echo)),
				   TOKEN);
	secure_connect(fx);
	g_assert_no_error(fx->connect_error);
	g_assert_nonnull(fx->access_url);
	g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 1);
	g_assert_true(pb_test_run_in_thread(echo_byte_cb, GUINT_TO_POINTER(fx->public_port), 10));
	pb_test_service_free(echo);
}

static void
test_auth_refused(SecureFixture *fx, gconstpointer user_data)
{
	const char *token = user_data;

	g_test_summary("A wrong or missing token gets 401: the client fails with "
		       "PB_ERROR_UNAUTHORIZED and the server opened no public port");
	pb_tunnel_server_set_token(fx->server, TOKEN);
	secure_start_server(fx);
	pb_tunnel_client_set_token(secure_new_client(fx, "ws", 9), token);
	secure_connect(fx);
	g_assert_error(fx->connect_error, PB_ERROR, PB_ERROR_UNAUTHORIZED);
	g_assert_nonnull(strstr(fx->connect_error->message, "refused the token"));
	g_assert_nonnull(strstr(fx->connect_error->message, "401"));
	g_assert_null(fx->access_url);
	g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 0);
}

static void
test_auth_no_token_needed(SecureFixture *fx, gconstpointer user_data)
{
	g_test_summary("A server without a token lets in a client that sends one anyway");
	secure_start_server(fx);
	pb_tunnel_client_set_token(secure_new_client(fx, "ws", 9), TOKEN);
	secure_connect(fx);
	g_assert_no_error(fx->connect_error);
	g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 1);
}

/* The raw HTTP answer of the server to an upgrade request with @authorization. */
static char *
raw_upgrade(guint16 port, const char *authorization)
{
	g_autoptr(GSocket) socket = pb_test_connect(port);
	g_autofree char *request = g_strdup_printf(
	    "GET " PB_WS_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
	    authorization != NULL ? "Authorization: " : "",
	    authorization != NULL ? authorization : "", authorization != NULL ? "\r\n" : "");
	char buf[4096];
	gssize n;

	g_assert_cmpint(g_socket_send(socket, request, strlen(request), NULL, NULL), ==,
			(gssize)strlen(request));
	n = g_socket_receive(socket, buf, sizeof buf - 1, NULL, NULL);
	g_assert_cmpint(n, >, 0);
	buf[n] = '\0';
	return g_strdup(buf);
}

typedef struct {
	guint16 port;
	const char *authorization;
} RawUpgrade;

static gpointer
raw_upgrade_cb(gpointer user_data)
{
	RawUpgrade *raw = user_data;

	return raw_upgrade(raw->port, raw->authorization);
}

static void
test_auth_http_status(SecureFixture *fx, gconstpointer user_data)
{
	const char *refused[] = {NULL, "Bearer wrong", "Basic " TOKEN, "Bearer " TOKEN "x"};

	g_test_summary("On the wire: 401 with WWW-Authenticate: Bearer before any upgrade, 101 "
		       "with the right bearer token");
	pb_tunnel_server_set_token(fx->server, TOKEN);
	secure_start_server(fx);
	for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
		RawUpgrade raw = {pb_tunnel_server_get_port(fx->server), refused[i]};
		g_autofree char *answer = pb_test_run_in_thread(raw_upgrade_cb, &raw, 10);

		g_test_message("Authorization: %s → %s", refused[i], answer);
		g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 401 "));
		g_assert_nonnull(strstr(answer, "WWW-Authenticate: Bearer"));
		g_assert_null(strstr(answer, "Upgrade"));
	}
	pb_test_settle();
	g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 0);
	{
		RawUpgrade raw = {pb_tunnel_server_get_port(fx->server), "Bearer " TOKEN};
		g_autofree char *answer = pb_test_run_in_thread(raw_upgrade_cb, &raw, 10);

		g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 101 "));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, data, func)                                                                      \
	g_test_add(path, SecureFixture, data, secure_set_up, func, secure_tear_down)
	ADD("/secure/auth/right-token", NULL, test_auth_right_token);
	ADD("/secure/auth/wrong-token", "wrong-token", test_auth_refused);
	ADD("/secure/auth/missing-token", NULL, test_auth_refused);
	ADD("/secure/auth/no-token-needed", NULL, test_auth_no_token_needed);
	ADD("/secure/auth/http-status", NULL, test_auth_http_status);
#undef ADD
	return g_test_run();
}
