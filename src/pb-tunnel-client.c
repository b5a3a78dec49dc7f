/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-tunnel-client.h"

#include <libsoup/soup.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "pb-error.h"
#include "pb-tls.h"
#include "pb-tunnel.h"
#include "pb-upgrade.h"

/*
 * `piggyback forward`: dials the server with GSocketClient (TLS for wss://, the system's
 * proxy settings), does the WebSocket upgrade itself (libsoup's client keeps the stream it
 * upgrades to itself), runs a PbTunnel on the connection, and answers every OPEN with a
 * fresh connection to the local service.
 */

/* An upgrade response larger than this is not one. */
#define PB_UPGRADE_RESPONSE_MAX (16 * 1024)

struct _PbTunnelClient {
	GObject parent_instance;
	GUri *server_uri;	     /* (owned) */
	GSocketConnectable *local;   /* (owned) the local service */
	GSocketClient *local_dialer; /* (owned) */
	PbTunnel *tunnel;	     /* (owned) (nullable) while connected */
	GCancellable *cancellable;   /* (owned) cancelled on close */
	char *access_url;	     /* (owned) (nullable) until HELLO */
	char *http_url;		     /* (owned) (nullable) */
	char *token;		     /* (owned) (nullable) sent as a bearer token */
	GTlsDatabase *tls_database;  /* (owned) (nullable) trusted CAs; NULL = the system's */
	char *pin_sha256;	     /* (owned) (nullable) the server certificate's, in hex */
};

enum { SIGNAL_READY, SIGNAL_DISCONNECTED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST] = {0};

G_DEFINE_FINAL_TYPE(PbTunnelClient, pb_tunnel_client, G_TYPE_OBJECT)

typedef struct {
	PbTunnelClient *client;		 /* (unowned) the task's source object */
	GTlsCertificateFlags tls_errors; /* why the server's certificate was refused */
	char *peer_sha256;		 /* (owned) (nullable) the refused certificate's */
	GSocketConnection *connection;	 /* (owned) */
	char *key;			 /* (owned) Sec-WebSocket-Key */
	char *request;			 /* (owned) the upgrade request, while it is written */
	GByteArray *response;		 /* (owned) */
	guint8 chunk[4096];
} PbUpgrade;

static void
pb_upgrade_free(PbUpgrade *upgrade)
{
	g_clear_object(&upgrade->connection);
	g_free(upgrade->key);
	g_free(upgrade->request);
	g_free(upgrade->peer_sha256);
	g_byte_array_unref(upgrade->response);
	g_free(upgrade);
}

typedef struct {
	PbTunnelClient *client; /* (owned) */
	PbTunnel *tunnel;	/* (owned) the one that asked */
	PbStream *stream;	/* (owned) */
} PbOpen;

static void
pb_tunnel_client_local_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	PbOpen *open = user_data;
	PbTunnelClient *self = open->client;
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketConnection) connection =
	    g_socket_client_connect_finish(G_SOCKET_CLIENT(source), res, &error);

	if (connection != NULL) {
		pb_tunnel_connect_stream(open->tunnel, open->stream, connection);
	} else if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_autofree char *local = g_socket_connectable_to_string(self->local);

		g_info("Cannot reach %s: %s", local, error->message);
		pb_tunnel_refuse_stream(open->tunnel, open->stream);
	}
	g_object_unref(open->stream);
	g_object_unref(open->tunnel);
	g_object_unref(open->client);
	g_free(open);
}

static void
pb_tunnel_client_open_requested_cb(PbTunnel *tunnel, PbStream *stream, gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(user_data);
	PbOpen *open = g_new0(PbOpen, 1);

	open->client = g_object_ref(self);
	open->tunnel = g_object_ref(tunnel);
	open->stream = g_object_ref(stream);
	g_socket_client_connect_async(self->local_dialer, self->local, self->cancellable,
				      pb_tunnel_client_local_connected_cb, open);
}

static void
pb_tunnel_client_hello_cb(PbTunnel *tunnel, gpointer hello_ptr, gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(user_data);
	const PbHello *hello = hello_ptr;

	g_free(self->access_url);
	g_free(self->http_url);
	self->access_url = pb_hello_get_access_url(hello, "tcp");
	self->http_url = pb_hello_get_access_url(hello, "http");
	g_signal_emit(self, signals[SIGNAL_READY], 0, self->access_url, self->http_url);
}

static void
pb_tunnel_client_tunnel_closed_cb(PbTunnel *tunnel, gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(user_data);
	SoupWebsocketConnection *ws = pb_tunnel_get_websocket(tunnel);
	const char *data = soup_websocket_connection_get_close_data(ws);
	gushort code = soup_websocket_connection_get_close_code(ws);
	g_autofree char *reason = NULL;

	if (code == 0)
		reason = g_strdup("the connection to the server was lost");
	else if (data != NULL && *data != '\0')
		reason = g_strdup_printf("%s (%u)", data, code);
	else
		reason = g_strdup_printf("closed with code %u", code);
	g_signal_emit(self, signals[SIGNAL_DISCONNECTED], 0, reason);
}

static void
pb_tunnel_client_start_tunnel(PbTunnelClient *self, PbUpgrade *upgrade, gsize headers_len)
{
	g_autoptr(GBytes) leftover = NULL;

	if (upgrade->response->len > headers_len)
		leftover = g_bytes_new(upgrade->response->data + headers_len,
				       upgrade->response->len - headers_len);
	self->tunnel = pb_tunnel_new(G_IO_STREAM(upgrade->connection), leftover, self->server_uri,
				     SOUP_WEBSOCKET_CONNECTION_CLIENT);
	g_signal_connect(self->tunnel, "open-requested",
			 G_CALLBACK(pb_tunnel_client_open_requested_cb), self);
	g_signal_connect(self->tunnel, "hello", G_CALLBACK(pb_tunnel_client_hello_cb), self);
	g_signal_connect(self->tunnel, "closed", G_CALLBACK(pb_tunnel_client_tunnel_closed_cb),
			 self);
}

static void
pb_tunnel_client_response_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	PbTunnelClient *self = g_task_get_source_object(task);
	PbUpgrade *upgrade = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);
	const char *end;

	if (n < 0) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (n == 0) {
		g_task_return_new_error(task, PB_ERROR, PB_ERROR_PROTOCOL,
					"the server closed the connection during the handshake");
		return;
	}
	g_byte_array_append(upgrade->response, upgrade->chunk, (guint)n);
	end =
	    g_strstr_len((const char *)upgrade->response->data, upgrade->response->len, "\r\n\r\n");
	if (end == NULL) {
		if (upgrade->response->len >= PB_UPGRADE_RESPONSE_MAX) {
			g_task_return_new_error(task, PB_ERROR, PB_ERROR_PROTOCOL,
						"the server's handshake answer is too long");
			return;
		}
		GCancellable *cancellable = g_task_get_cancellable(task);

		g_input_stream_read_async(G_INPUT_STREAM(source), upgrade->chunk,
					  sizeof upgrade->chunk, G_PRIORITY_DEFAULT, cancellable,
					  pb_tunnel_client_response_read_cb,
					  g_steal_pointer(&task));
		return;
	}
	end += 4;
	if (!pb_upgrade_check_response((const char *)upgrade->response->data,
				       (gsize)(end - (const char *)upgrade->response->data),
				       upgrade->key, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	pb_tunnel_client_start_tunnel(self, upgrade,
				      (gsize)(end - (const char *)upgrade->response->data));
	g_task_return_boolean(task, TRUE);
}

static void
pb_tunnel_client_request_written_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	PbUpgrade *upgrade = g_task_get_task_data(task);
	GCancellable *cancellable = g_task_get_cancellable(task);
	g_autoptr(GError) error = NULL;

	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(upgrade->connection)),
				  upgrade->chunk, sizeof upgrade->chunk, G_PRIORITY_DEFAULT,
				  cancellable, pb_tunnel_client_response_read_cb,
				  g_steal_pointer(&task));
}

static char *
pb_tunnel_client_build_request(PbTunnelClient *self, const char *key)
{
	GUri *uri = self->server_uri;
	const char *host = g_uri_get_host(uri);
	gboolean ipv6 = strchr(host, ':') != NULL;
	const char *query = g_uri_get_query(uri);
	g_autofree char *port =
	    g_uri_get_port(uri) > 0 ? g_strdup_printf(":%d", g_uri_get_port(uri)) : g_strdup("");
	g_autofree char *authorization =
	    self->token != NULL ? g_strdup_printf("Authorization: Bearer %s\r\n", self->token)
				: g_strdup("");

	return g_strdup_printf("GET %s%s%s HTTP/1.1\r\n"
			       "Host: %s%s%s%s\r\n"
			       "Upgrade: websocket\r\n"
			       "Connection: Upgrade\r\n"
			       "Sec-WebSocket-Key: %s\r\n"
			       "Sec-WebSocket-Version: 13\r\n"
			       "User-Agent: piggyback/%s\r\n"
			       "%s"
			       "\r\n",
			       g_uri_get_path(uri), query != NULL ? "?" : "",
			       query != NULL ? query : "", ipv6 ? "[" : "", host, ipv6 ? "]" : "",
			       port, key, PACKAGE_VERSION, authorization);
}

/* The server's certificate was refused during the handshake: say why, in words. */
static void
pb_tunnel_client_tls_refused(PbTunnelClient *self, PbUpgrade *upgrade, GError **error)
{
	g_autofree char *reasons = NULL;

	g_clear_error(error);
	if (self->pin_sha256 != NULL && (upgrade->tls_errors & ~PB_TLS_PINNABLE_ERRORS) == 0) {
		g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
			    "the server's certificate does not match --pin-sha256 (its SHA-256 is "
			    "%s)",
			    upgrade->peer_sha256 != NULL ? upgrade->peer_sha256 : "unknown");
		return;
	}
	reasons = pb_tls_describe_errors(upgrade->tls_errors, g_uri_get_host(self->server_uri));
	g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
		    "the server's certificate is not trusted: %s", reasons);
}

/* A certificate the trust store accepts must still be the pinned one. */
static gboolean
pb_tunnel_client_check_pin(PbTunnelClient *self, PbUpgrade *upgrade, GError **error)
{
	GIOStream *base = NULL;
	GTlsCertificate *peer = NULL;
	g_autofree char *sha256 = NULL;

	if (self->pin_sha256 == NULL)
		return TRUE;
	if (G_IS_TCP_WRAPPER_CONNECTION(upgrade->connection))
		base = g_tcp_wrapper_connection_get_base_io_stream(
		    G_TCP_WRAPPER_CONNECTION(upgrade->connection));
	if (base != NULL && G_IS_TLS_CONNECTION(base))
		peer = g_tls_connection_get_peer_certificate(G_TLS_CONNECTION(base));
	if (peer != NULL)
		sha256 = pb_tls_certificate_sha256(peer);
	if (g_strcmp0(sha256, self->pin_sha256) != 0) {
		g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
			    "the server's certificate does not match --pin-sha256 (its SHA-256 is "
			    "%s)",
			    sha256 != NULL ? sha256 : "unknown");
		return FALSE;
	}
	return TRUE;
}

/* Only called when validation failed: a matching pin may still accept the certificate. */
static gboolean
pb_tunnel_client_accept_certificate_cb(GTlsConnection *connection, GTlsCertificate *peer,
				       GTlsCertificateFlags errors, gpointer user_data)
{
	PbUpgrade *upgrade = user_data;
	PbTunnelClient *self = upgrade->client;

	g_free(upgrade->peer_sha256);
	upgrade->peer_sha256 = pb_tls_certificate_sha256(peer);
	if (self->pin_sha256 != NULL && (errors & ~PB_TLS_PINNABLE_ERRORS) == 0 &&
	    g_strcmp0(upgrade->peer_sha256, self->pin_sha256) == 0)
		return TRUE;
	upgrade->tls_errors = errors;
	return FALSE;
}

static void
pb_tunnel_client_dialer_event_cb(GSocketClient *dialer, GSocketClientEvent event,
				 GSocketConnectable *connectable, GIOStream *connection,
				 gpointer user_data)
{
	PbUpgrade *upgrade = user_data;

	if (event != G_SOCKET_CLIENT_TLS_HANDSHAKING || !G_IS_TLS_CONNECTION(connection))
		return;
	if (upgrade->client->tls_database != NULL)
		g_tls_connection_set_database(G_TLS_CONNECTION(connection),
					      upgrade->client->tls_database);
	/* the handshake ends before the connect does, and @upgrade outlives the connect */
	g_signal_connect(connection, "accept-certificate",
			 G_CALLBACK(pb_tunnel_client_accept_certificate_cb), upgrade);
}

static void
pb_tunnel_client_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	PbTunnelClient *self = g_task_get_source_object(task);
	PbUpgrade *upgrade = g_task_get_task_data(task);
	GCancellable *cancellable = g_task_get_cancellable(task);
	g_autoptr(GError) error = NULL;
	guint8 nonce[16];
	GSocket *socket;

	upgrade->connection =
	    g_socket_client_connect_to_uri_finish(G_SOCKET_CLIENT(source), res, &error);
	if (upgrade->connection == NULL) {
		if (upgrade->tls_errors != 0)
			pb_tunnel_client_tls_refused(self, upgrade, &error);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!pb_tunnel_client_check_pin(self, upgrade, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	socket = g_socket_connection_get_socket(upgrade->connection);
	g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);

	for (gsize i = 0; i < sizeof nonce; i++)
		nonce[i] = (guint8)g_random_int_range(0, 256);
	upgrade->key = g_base64_encode(nonce, sizeof nonce);
	upgrade->request = pb_tunnel_client_build_request(self, upgrade->key);
	g_output_stream_write_all_async(
	    g_io_stream_get_output_stream(G_IO_STREAM(upgrade->connection)), upgrade->request,
	    strlen(upgrade->request), G_PRIORITY_DEFAULT, cancellable,
	    pb_tunnel_client_request_written_cb, g_steal_pointer(&task));
}

/**
 * pb_tunnel_client_connect_async:
 *
 * Connects to the server and upgrades to a WebSocket. Then "ready" follows when the server
 * says where the tunnel is, and "disconnected" when it ends.
 */
void
pb_tunnel_client_connect_async(PbTunnelClient *self, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(GSocketClient) dialer = g_socket_client_new();
	g_autofree char *uri = NULL;
	gboolean tls;
	PbUpgrade *upgrade;

	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	g_return_if_fail(self->tunnel == NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	/* via an integer: ISO C has no function → object pointer conversion */
	g_task_set_source_tag(task, (gpointer)(guintptr)pb_tunnel_client_connect_async);
	upgrade = g_new0(PbUpgrade, 1);
	upgrade->client = self;
	upgrade->response = g_byte_array_new();
	g_task_set_task_data(task, upgrade, (GDestroyNotify)pb_upgrade_free);

	tls = g_strcmp0(g_uri_get_scheme(self->server_uri), "wss") == 0;
	g_socket_client_set_tls(dialer, tls);
	if (tls)
		g_signal_connect(dialer, "event", G_CALLBACK(pb_tunnel_client_dialer_event_cb),
				 upgrade);
	uri = g_uri_to_string(self->server_uri);
	g_socket_client_connect_to_uri_async(dialer, uri, tls ? 443 : 80, cancellable,
					     pb_tunnel_client_connected_cb, g_steal_pointer(&task));
}

gboolean
pb_tunnel_client_connect_finish(PbTunnelClient *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/**
 * pb_tunnel_client_set_token:
 * @token: (nullable): sent as `Authorization: Bearer` on the upgrade; a valid token (see
 *   pb_token_validate())
 *
 * Call before pb_tunnel_client_connect_async().
 */
void
pb_tunnel_client_set_token(PbTunnelClient *self, const char *token)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));

	g_free(self->token);
	self->token = g_strdup(token);
}

/**
 * pb_tunnel_client_set_tls:
 * @database: (nullable): the CAs to trust for a wss:// server; %NULL = the system's
 * @pin_sha256: (nullable): the SHA-256 of the server certificate's DER, as
 *   pb_tls_pin_parse() returns it; the certificate must then be this one (a matching pin
 *   also accepts a certificate no trusted CA signed, or made out for another name)
 *
 * Call before pb_tunnel_client_connect_async().
 */
void
pb_tunnel_client_set_tls(PbTunnelClient *self, GTlsDatabase *database, const char *pin_sha256)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	g_return_if_fail(database == NULL || G_IS_TLS_DATABASE(database));

	g_set_object(&self->tls_database, database);
	g_free(self->pin_sha256);
	self->pin_sha256 = g_strdup(pin_sha256);
}

/* Returns: (nullable): tcp://host:port once the server said it */
const char *
pb_tunnel_client_get_access_url(PbTunnelClient *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(self), NULL);
	return self->access_url;
}

void
pb_tunnel_client_close(PbTunnelClient *self)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));

	g_cancellable_cancel(self->cancellable);
	if (self->tunnel != NULL)
		pb_tunnel_close(self->tunnel, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "client quit");
}

static void
pb_tunnel_client_dispose(GObject *object)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(object);

	g_cancellable_cancel(self->cancellable);
	if (self->tunnel != NULL) {
		g_signal_handlers_disconnect_by_data(self->tunnel, self);
		g_clear_object(&self->tunnel);
	}
	G_OBJECT_CLASS(pb_tunnel_client_parent_class)->dispose(object);
}

static void
pb_tunnel_client_finalize(GObject *object)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(object);

	g_uri_unref(self->server_uri);
	g_object_unref(self->local);
	g_object_unref(self->local_dialer);
	g_object_unref(self->cancellable);
	g_free(self->access_url);
	g_free(self->http_url);
	g_free(self->token);
	g_clear_object(&self->tls_database);
	g_free(self->pin_sha256);
	G_OBJECT_CLASS(pb_tunnel_client_parent_class)->finalize(object);
}

static void
pb_tunnel_client_class_init(PbTunnelClientClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = pb_tunnel_client_dispose;
	object_class->finalize = pb_tunnel_client_finalize;

	/**
	 * PbTunnelClient::ready:
	 * @access_url: tcp://host:port
	 * @http_url: http://host:port
	 *
	 * The server opened the public port.
	 */
	signals[SIGNAL_READY] =
	    g_signal_new("ready", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
			 G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
	/**
	 * PbTunnelClient::disconnected:
	 * @reason: why, in words
	 *
	 * The tunnel is over.
	 */
	signals[SIGNAL_DISCONNECTED] =
	    g_signal_new("disconnected", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
pb_tunnel_client_init(PbTunnelClient *self)
{
	self->cancellable = g_cancellable_new();
	self->local_dialer = g_socket_client_new();
}

/**
 * pb_tunnel_client_new:
 * @server_url: a resolved WebSocket URL (see pb_server_url_resolve())
 * @local_host: the local service's host
 * @local_port: the local service's port
 */
PbTunnelClient *
pb_tunnel_client_new(const char *server_url, const char *local_host, guint16 local_port)
{
	PbTunnelClient *self = g_object_new(PB_TYPE_TUNNEL_CLIENT, NULL);

	self->server_uri = g_uri_parse(server_url, G_URI_FLAGS_NONE, NULL);
	g_return_val_if_fail(self->server_uri != NULL, self);
	self->local = g_network_address_new(local_host, local_port);
	return self;
}
