/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-ws-dial.h"

#include <glib/gi18n.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "pb-error.h"
#include "pb-hello.h"
#include "pb-name.h"
#include "pb-proxy.h"
#include "pb-tls.h"
#include "pb-upgrade.h"

/*
 * The client's WebSocket handshake: connect (TLS for wss://, checking the server's
 * certificate against --ca-file or --pin-sha256 and saying in words why one is refused),
 * write the upgrade request, read the answer up to its blank line and check it
 * (pb_upgrade_check_response()).
 */

/* An upgrade response larger than this is not one. */
#define PB_UPGRADE_RESPONSE_MAX (16 * 1024)

typedef struct {
	GUri *uri; /* (owned) */
	PbFeatures features;
	char *token;			 /* (owned) (nullable) */
	char *session;			 /* (owned) (nullable) */
	char *name;			 /* (owned) (nullable) */
	char *services;			 /* (owned) (nullable) */
	GTlsDatabase *tls_database;	 /* (owned) (nullable) */
	char *pin_sha256;		 /* (owned) (nullable) */
	GTlsCertificateFlags tls_errors; /* why the server's certificate was refused */
	char *peer_sha256;		 /* (owned) (nullable) the refused certificate's */
	GSocketConnection *connection;	 /* (owned) */
	char *key;			 /* (owned) Sec-WebSocket-Key */
	char *request;			 /* (owned) the upgrade request, while it is written */
	GByteArray *response;		 /* (owned) */
	gsize headers_len;		 /* of the response, once complete */
	guint8 chunk[4096];
} PbWsDial;

static void
pb_ws_dial_free(PbWsDial *upgrade)
{
	g_uri_unref(upgrade->uri);
	g_free(upgrade->token);
	g_free(upgrade->session);
	g_free(upgrade->name);
	g_free(upgrade->services);
	g_clear_object(&upgrade->tls_database);
	g_free(upgrade->pin_sha256);
	g_clear_object(&upgrade->connection);
	g_free(upgrade->key);
	g_free(upgrade->request);
	g_free(upgrade->peer_sha256);
	g_byte_array_unref(upgrade->response);
	g_free(upgrade);
}

static void
pb_ws_dial_response_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	PbWsDial *upgrade = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);
	const char *end;

	if (n < 0) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (n == 0) {
		g_task_return_new_error(task, PB_ERROR, PB_ERROR_PROTOCOL,
					_("the server closed the connection during the handshake"));
		return;
	}
	g_byte_array_append(upgrade->response, upgrade->chunk, (guint)n);
	end =
	    g_strstr_len((const char *)upgrade->response->data, upgrade->response->len, "\r\n\r\n");
	if (end == NULL) {
		if (upgrade->response->len >= PB_UPGRADE_RESPONSE_MAX) {
			g_task_return_new_error(task, PB_ERROR, PB_ERROR_PROTOCOL,
						_("the server's handshake answer is too long"));
			return;
		}
		GCancellable *cancellable = g_task_get_cancellable(task);

		g_input_stream_read_async(G_INPUT_STREAM(source), upgrade->chunk,
					  sizeof upgrade->chunk, G_PRIORITY_DEFAULT, cancellable,
					  pb_ws_dial_response_read_cb, g_steal_pointer(&task));
		return;
	}
	end += 4;
	if (!pb_upgrade_check_response((const char *)upgrade->response->data,
				       (gsize)(end - (const char *)upgrade->response->data),
				       upgrade->key, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	upgrade->headers_len = (gsize)(end - (const char *)upgrade->response->data);
	g_task_return_pointer(task, g_object_ref(upgrade->connection), g_object_unref);
}

static void
pb_ws_dial_request_written_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	PbWsDial *upgrade = g_task_get_task_data(task);
	GCancellable *cancellable = g_task_get_cancellable(task);
	g_autoptr(GError) error = NULL;

	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(upgrade->connection)),
				  upgrade->chunk, sizeof upgrade->chunk, G_PRIORITY_DEFAULT,
				  cancellable, pb_ws_dial_response_read_cb, g_steal_pointer(&task));
}

static char *
pb_ws_dial_build_request(PbWsDial *self, const char *key)
{
	GUri *uri = self->uri;
	const char *host = g_uri_get_host(uri);
	gboolean ipv6 = strchr(host, ':') != NULL;
	const char *query = g_uri_get_query(uri);
	g_autofree char *port =
	    g_uri_get_port(uri) > 0 ? g_strdup_printf(":%d", g_uri_get_port(uri)) : g_strdup("");
	g_autofree char *features = pb_features_to_string(self->features);
	g_autofree char *features_line =
	    self->features != 0 ? g_strdup_printf(PB_FEATURES_HEADER ": %s\r\n", features)
				: g_strdup("");
	g_autofree char *authorization =
	    self->token != NULL ? g_strdup_printf("Authorization: Bearer %s\r\n", self->token)
				: g_strdup("");
	g_autofree char *session =
	    self->session != NULL ? g_strdup_printf(PB_SESSION_HEADER ": %s\r\n", self->session)
				  : g_strdup("");
	g_autofree char *name = self->name != NULL && (self->features & PB_FEATURE_NAME)
				    ? g_strdup_printf(PB_NAME_HEADER ": %s\r\n", self->name)
				    : g_strdup("");
	g_autofree char *services =
	    self->services != NULL && (self->features & PB_FEATURE_SERVICES)
		? g_strdup_printf(PB_SERVICES_HEADER ": %s\r\n", self->services)
		: g_strdup("");

	return g_strdup_printf("GET %s%s%s HTTP/1.1\r\n"
			       "Host: %s%s%s%s\r\n"
			       "Upgrade: websocket\r\n"
			       "Connection: Upgrade\r\n"
			       "Sec-WebSocket-Key: %s\r\n"
			       "Sec-WebSocket-Version: 13\r\n"
			       "User-Agent: piggyback/%s\r\n"
			       "%s%s%s%s%s"
			       "\r\n",
			       g_uri_get_path(uri), query != NULL ? "?" : "",
			       query != NULL ? query : "", ipv6 ? "[" : "", host, ipv6 ? "]" : "",
			       port, key, PACKAGE_VERSION, features_line, authorization, session,
			       name, services);
}

/* The server's certificate was refused during the handshake: say why, in words. */
static void
pb_ws_dial_tls_refused(PbWsDial *upgrade, GError **error)
{
	g_autofree char *reasons = NULL;

	g_clear_error(error);
	if (upgrade->pin_sha256 != NULL && (upgrade->tls_errors & ~PB_TLS_PINNABLE_ERRORS) == 0) {
		g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
			    _("the server's certificate does not match --pin-sha256 (its SHA-256 "
			      "is %s)"),
			    upgrade->peer_sha256 != NULL ? upgrade->peer_sha256 : _("unknown"));
		return;
	}
	reasons = pb_tls_describe_errors(upgrade->tls_errors, g_uri_get_host(upgrade->uri));
	g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
		    _("the server's certificate is not trusted: %s"), reasons);
}

/* A certificate the trust store accepts must still be the pinned one. */
static gboolean
pb_ws_dial_check_pin(PbWsDial *upgrade, GError **error)
{
	GIOStream *base = NULL;
	GTlsCertificate *peer = NULL;
	g_autofree char *sha256 = NULL;

	if (upgrade->pin_sha256 == NULL)
		return TRUE;
	if (G_IS_TCP_WRAPPER_CONNECTION(upgrade->connection))
		base = g_tcp_wrapper_connection_get_base_io_stream(
		    G_TCP_WRAPPER_CONNECTION(upgrade->connection));
	if (base != NULL && G_IS_TLS_CONNECTION(base))
		peer = g_tls_connection_get_peer_certificate(G_TLS_CONNECTION(base));
	if (peer != NULL)
		sha256 = pb_tls_certificate_sha256(peer);
	if (g_strcmp0(sha256, upgrade->pin_sha256) != 0) {
		g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
			    _("the server's certificate does not match --pin-sha256 (its SHA-256 "
			      "is %s)"),
			    sha256 != NULL ? sha256 : _("unknown"));
		return FALSE;
	}
	return TRUE;
}

/* Only called when validation failed: a matching pin may still accept the certificate. */
static gboolean
pb_ws_dial_accept_certificate_cb(GTlsConnection *connection, GTlsCertificate *peer,
				 GTlsCertificateFlags errors, gpointer user_data)
{
	PbWsDial *upgrade = user_data;

	g_free(upgrade->peer_sha256);
	upgrade->peer_sha256 = pb_tls_certificate_sha256(peer);
	if (upgrade->pin_sha256 != NULL && (errors & ~PB_TLS_PINNABLE_ERRORS) == 0 &&
	    g_strcmp0(upgrade->peer_sha256, upgrade->pin_sha256) == 0)
		return TRUE;
	upgrade->tls_errors = errors;
	return FALSE;
}

static void
pb_ws_dial_dialer_event_cb(GSocketClient *dialer, GSocketClientEvent event,
			   GSocketConnectable *connectable, GIOStream *connection,
			   gpointer user_data)
{
	PbWsDial *upgrade = user_data;

	if (event != G_SOCKET_CLIENT_TLS_HANDSHAKING || !G_IS_TLS_CONNECTION(connection))
		return;
	if (upgrade->tls_database != NULL)
		g_tls_connection_set_database(G_TLS_CONNECTION(connection), upgrade->tls_database);
	/* the handshake ends before the connect does, and @upgrade outlives the connect */
	g_signal_connect(connection, "accept-certificate",
			 G_CALLBACK(pb_ws_dial_accept_certificate_cb), upgrade);
}

static void
pb_ws_dial_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	PbWsDial *upgrade = g_task_get_task_data(task);
	GCancellable *cancellable = g_task_get_cancellable(task);
	g_autoptr(GError) error = NULL;
	guint8 nonce[16];
	GSocket *socket;

	upgrade->connection =
	    g_socket_client_connect_to_uri_finish(G_SOCKET_CLIENT(source), res, &error);
	if (upgrade->connection == NULL) {
		if (upgrade->tls_errors != 0)
			pb_ws_dial_tls_refused(upgrade, &error);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!pb_ws_dial_check_pin(upgrade, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	socket = g_socket_connection_get_socket(upgrade->connection);
	g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);

	for (gsize i = 0; i < sizeof nonce; i++)
		nonce[i] = (guint8)g_random_int_range(0, 256);
	upgrade->key = g_base64_encode(nonce, sizeof nonce);
	upgrade->request = pb_ws_dial_build_request(upgrade, upgrade->key);
	g_output_stream_write_all_async(
	    g_io_stream_get_output_stream(G_IO_STREAM(upgrade->connection)), upgrade->request,
	    strlen(upgrade->request), G_PRIORITY_DEFAULT, cancellable,
	    pb_ws_dial_request_written_cb, g_steal_pointer(&task));
}

/**
 * pb_ws_dial_async:
 * @options: what to connect to and how; copied
 *
 * Connects to the server with GSocketClient (TLS for wss://, through a proxy if one is set:
 * see pb_proxy_resolver_for_server()) and does the WebSocket upgrade itself: libsoup's client keeps
 * the stream it upgrades to itself, and PiggyBack runs its own stream on the connection.
 */
void
pb_ws_dial_async(const PbWsDialOptions *options, GCancellable *cancellable,
		 GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(GSocketClient) dialer = g_socket_client_new();
	g_autofree char *uri = g_uri_to_string(options->uri);
	gboolean tls = g_strcmp0(g_uri_get_scheme(options->uri), "wss") == 0;
	g_autoptr(GProxyResolver) proxy = pb_proxy_resolver_for_server();
	PbWsDial *upgrade = g_new0(PbWsDial, 1);

	/* via an integer: ISO C has no function → object pointer conversion */
	g_task_set_source_tag(task, (gpointer)(guintptr)pb_ws_dial_async);
	upgrade->uri = g_uri_ref(options->uri);
	upgrade->features = options->features;
	upgrade->token = g_strdup(options->token);
	upgrade->session = g_strdup(options->session);
	upgrade->name = g_strdup(options->name);
	upgrade->services = g_strdup(options->services);
	g_set_object(&upgrade->tls_database, options->tls_database);
	upgrade->pin_sha256 = g_strdup(options->pin_sha256);
	upgrade->response = g_byte_array_new();
	g_task_set_task_data(task, upgrade, (GDestroyNotify)pb_ws_dial_free);
	g_socket_client_set_tls(dialer, tls);
	if (proxy != NULL)
		g_socket_client_set_proxy_resolver(dialer, proxy);
	else
		g_socket_client_set_enable_proxy(dialer, FALSE);
	if (tls)
		g_signal_connect(dialer, "event", G_CALLBACK(pb_ws_dial_dialer_event_cb), upgrade);
	g_socket_client_connect_to_uri_async(dialer, uri, tls ? 443 : 80, cancellable,
					     pb_ws_dial_connected_cb, g_steal_pointer(&task));
}

/**
 * pb_ws_dial_finish:
 * @leftover: (out) (nullable): bytes that came after the upgrade response: the first
 *   WebSocket frames, for the stream that reads the connection next
 *
 * Returns: (transfer full): the connection, upgraded; or %NULL with @error set
 */
GIOStream *
pb_ws_dial_finish(GAsyncResult *result, GBytes **leftover, GError **error)
{
	PbWsDial *upgrade = g_task_get_task_data(G_TASK(result));
	GIOStream *connection = g_task_propagate_pointer(G_TASK(result), error);

	*leftover = NULL;
	if (connection != NULL && upgrade->response->len > upgrade->headers_len)
		*leftover = g_bytes_new(upgrade->response->data + upgrade->headers_len,
					upgrade->response->len - upgrade->headers_len);
	return connection;
}
