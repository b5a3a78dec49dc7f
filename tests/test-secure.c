/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>

#include "pb-error.h"
#include "pb-frame.h"
#include "pb-test-utils.h"
#include "pb-tls.h"
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

/* TLS. The certificates are the PEM files in tests/tls (see make-certs.sh there). */

static char *
tls_path(const char *name)
{
	return g_test_build_filename(G_TEST_DIST, "tls", name, NULL);
}

static gboolean
tls_skip(void)
{
	if (!g_tls_backend_supports_tls(g_tls_backend_get_default())) {
		g_test_skip("no TLS backend (glib-networking) installed");
		return TRUE;
	}
	return FALSE;
}

/* Serves wss:// with tests/tls/@name.pem and .key. */
static void
tls_start_server(SecureFixture *fx, const char *name)
{
	g_autofree char *cert_name = g_strconcat(name, ".pem", NULL);
	g_autofree char *key_name = g_strconcat(name, ".key", NULL);
	g_autofree char *cert_path = tls_path(cert_name);
	g_autofree char *key_path = tls_path(key_name);
	g_autoptr(GError) error = NULL;
	g_autoptr(GTlsCertificate) certificate =
	    g_tls_certificate_new_from_files(cert_path, key_path, &error);

	g_assert_no_error(error);
	pb_tunnel_server_set_tls_certificate(fx->server, certificate);
	secure_start_server(fx);
}

/* The SHA-256 of a PEM certificate's DER, computed without GTlsCertificate. */
static char *
tls_pem_sha256(const char *name)
{
	g_autofree char *path = tls_path(name);
	g_autofree char *pem = NULL;
	g_autofree guchar *der = NULL;
	const char *begin;
	const char *end;
	gsize der_len = 0;

	g_assert_true(g_file_get_contents(path, &pem, NULL, NULL));
	begin = strstr(pem, "-----BEGIN CERTIFICATE-----");
	end = strstr(pem, "-----END CERTIFICATE-----");
	g_assert_nonnull(begin);
	g_assert_nonnull(end);
	begin += strlen("-----BEGIN CERTIFICATE-----");
	{
		g_autofree char *body = g_strndup(begin, end - begin);

		der = g_base64_decode(body, &der_len);
	}
	g_assert_cmpuint(der_len, >, 100);
	return g_compute_checksum_for_data(G_CHECKSUM_SHA256, der, der_len);
}

typedef struct {
	const char *server_cert; /* server.pem or other.pem, with its key */
	const char *ca_file;	 /* (nullable) */
	const char *pin_of;	 /* (nullable) the certificate whose hash is pinned */
	const char *needle;	 /* (nullable) expected in the error; NULL = it connects */
} TlsCase;

static void
test_tls(SecureFixture *fx, gconstpointer user_data)
{
	const TlsCase *tc = user_data;
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autoptr(GTlsDatabase) database = NULL;
	g_autofree char *pin = NULL;

	g_test_summary("wss://: the client connects only to a certificate it trusts (--ca-file) "
		       "or has pinned, says why otherwise, and the tunnel carries bytes over TLS");
	if (tls_skip()) {
		pb_test_service_free(echo);
		return;
	}
	tls_start_server(fx, tc->server_cert);
	if (tc->ca_file != NULL) {
		g_autofree char *path = tls_path(tc->ca_file);
		g_autoptr(GError) error = NULL;

		database = pb_tls_database_new(path, &error);
		g_assert_no_error(error);
	}
	if (tc->pin_of != NULL)
		pin = tls_pem_sha256(tc->pin_of);
	pb_tunnel_client_set_tls(secure_new_client(fx, "wss", pb_test_service_get_port(echo)),
				 database, pin);
	secure_connect(fx);
	if (tc->needle == NULL) {
		g_assert_no_error(fx->connect_error);
		g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 1);
		g_assert_true(
		    pb_test_run_in_thread(echo_byte_cb, GUINT_TO_POINTER(fx->public_port), 10));
	} else {
		g_assert_error(fx->connect_error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
		g_test_message("refused: %s", fx->connect_error->message);
		g_assert_nonnull(strstr(fx->connect_error->message, tc->needle));
		g_assert_null(fx->access_url);
		pb_test_settle();
		g_assert_cmpuint(pb_tunnel_server_get_n_clients(fx->server), ==, 0);
	}
	pb_test_service_free(echo);
}

static void
test_tls_relative_ca(SecureFixture *fx, gconstpointer user_data)
{
	g_autofree char *dir = tls_path("");
	g_autofree char *cwd = g_get_current_dir();
	g_autoptr(GTlsDatabase) database = NULL;
	g_autoptr(GError) error = NULL;

	g_test_summary("A relative --ca-file works (GTlsFileDatabase itself needs an absolute "
		       "path)");
	if (tls_skip())
		return;
	tls_start_server(fx, "server");
	g_assert_cmpint(g_chdir(dir), ==, 0);
	database = pb_tls_database_new("server.pem", &error);
	g_assert_cmpint(g_chdir(cwd), ==, 0);
	g_assert_no_error(error);
	pb_tunnel_client_set_tls(secure_new_client(fx, "wss", 9), database, NULL);
	secure_connect(fx);
	g_assert_no_error(fx->connect_error);
	g_assert_nonnull(fx->access_url);
}

static void
test_tls_token(SecureFixture *fx, gconstpointer user_data)
{
	g_autofree char *ca = tls_path("server.pem");
	g_autoptr(GTlsDatabase) database = pb_tls_database_new(ca, NULL);

	g_test_summary("A token over wss://: refused when wrong, accepted when right");
	if (tls_skip())
		return;
	pb_tunnel_server_set_token(fx->server, TOKEN);
	tls_start_server(fx, "server");
	pb_tunnel_client_set_token(secure_new_client(fx, "wss", 9), "wrong");
	pb_tunnel_client_set_tls(fx->client, database, NULL);
	secure_connect(fx);
	g_assert_error(fx->connect_error, PB_ERROR, PB_ERROR_UNAUTHORIZED);

	g_clear_error(&fx->connect_error);
	fx->connect_done = FALSE;
	g_signal_handlers_disconnect_by_data(fx->client, fx);
	g_clear_object(&fx->client);
	pb_tunnel_client_set_token(secure_new_client(fx, "wss", 9), TOKEN);
	pb_tunnel_client_set_tls(fx->client, database, NULL);
	secure_connect(fx);
	g_assert_no_error(fx->connect_error);
	g_assert_nonnull(fx->access_url);
}

static void
test_tls_helpers(void)
{
	g_autofree char *pin = pb_tls_pin_parse("18:84:68:C4:0E:9F:7B:59:F0:C5:30:5C:42:AE:0D:08:"
						"54:E9:67:B7:C7:EF:63:0E:59:EC:A5:1F:9F:"
						"1C:FC:88",
						NULL);
	g_autofree char *path = tls_path("server.pem");
	g_autofree char *expected = tls_pem_sha256("server.pem");
	g_autoptr(GTlsCertificate) certificate = g_tls_certificate_new_from_file(path, NULL);
	g_autofree char *sha256 = NULL;
	g_autofree char *words = pb_tls_describe_errors(
	    G_TLS_CERTIFICATE_EXPIRED | G_TLS_CERTIFICATE_BAD_IDENTITY, "example.com");
	g_autoptr(GError) error = NULL;

	g_test_summary("Pins are 64 hex digits with or without colons; certificate errors read as "
		       "words; a CA file must exist");
	g_assert_cmpstr(pin, ==,
			"188468c40e9f7b59f0c5305c42ae0d0854e967b7c7ef630e59eca51f9f1cfc88");
	g_assert_null(pb_tls_pin_parse("1884", NULL));
	g_assert_null(pb_tls_pin_parse(
	    "zz8468c40e9f7b59f0c5305c42ae0d0854e967b7c7ef630e59eca51f9f1cfc88", NULL));
	g_assert_null(pb_tls_pin_parse(
	    "188468c40e9f7b59f0c5305c42ae0d0854e967b7c7ef630e59eca51f9f1cfc8800", NULL));
	g_assert_nonnull(certificate);
	sha256 = pb_tls_certificate_sha256(certificate);
	g_assert_cmpstr(sha256, ==, expected);
	g_assert_nonnull(strstr(words, "it is not for the host example.com"));
	g_assert_nonnull(strstr(words, "it has expired"));
	g_assert_null(pb_tls_database_new("/nonexistent/ca.pem", &error));
	g_assert_nonnull(error);
}

static const TlsCase tls_ca_file = {"server", "server.pem", NULL, NULL};
static const TlsCase tls_no_ca = {"server", NULL, NULL, "its issuer is unknown"};
static const TlsCase tls_wrong_ca = {"server", "other.pem", NULL, "its issuer is unknown"};
static const TlsCase tls_wrong_host = {"other", "other.pem", NULL,
				       "it is not for the host 127.0.0.1"};
static const TlsCase tls_expired = {"expired", "expired.pem", NULL, "it has expired"};
static const TlsCase tls_pin = {"server", NULL, "server.pem", NULL};
static const TlsCase tls_wrong_pin = {"server", NULL, "other.pem", "does not match --pin-sha256"};
static const TlsCase tls_ca_and_wrong_pin = {"server", "server.pem", "other.pem",
					     "does not match --pin-sha256"};

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
	ADD("/secure/tls/ca-file", &tls_ca_file, test_tls);
	ADD("/secure/tls/no-ca", &tls_no_ca, test_tls);
	ADD("/secure/tls/wrong-ca", &tls_wrong_ca, test_tls);
	ADD("/secure/tls/wrong-host", &tls_wrong_host, test_tls);
	ADD("/secure/tls/expired", &tls_expired, test_tls);
	ADD("/secure/tls/pin", &tls_pin, test_tls);
	ADD("/secure/tls/wrong-pin", &tls_wrong_pin, test_tls);
	ADD("/secure/tls/ca-and-wrong-pin", &tls_ca_and_wrong_pin, test_tls);
	ADD("/secure/tls/relative-ca", NULL, test_tls_relative_ca);
	ADD("/secure/tls/token", NULL, test_tls_token);
	g_test_add_func("/secure/tls/helpers", test_tls_helpers);
#undef ADD
	return g_test_run();
}
