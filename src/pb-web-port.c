/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-web-port.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "pb-frame.h"
#include "pb-listener.h"
#include "pb-ws-stream.h"

/*
 * Why not soup_server_listen(): libsoup keeps a connection that never sends a complete
 * request for as long as the peer likes, accepts any number of them, and retries accept()
 * at full CPU when out of file descriptors. Anyone who can reach the port could hold all
 * of the server's descriptors with silent connections (slowloris). So the port accepts
 * with a PbListener (SOMAXCONN backlog, a pause on EMFILE), wraps TLS itself, hands each
 * connection to the SoupServer with soup_server_accept_iostream(), and remembers it as
 * pending until PbTunnelServer says it became a tunnel. A pending connection is closed
 * when its handshake time is up; beyond the caps on pending connections (all, and from one
 * address) a new connection is closed at once.
 *
 * A plain HTTP request (/healthz, /metrics) is answered, and its connection is closed when
 * the handshake time is up like any connection that did not become a tunnel.
 */

typedef struct {
	GIOStream *stream;     /* (owned) what libsoup reads: the TCP or the TLS connection */
	GSocket *socket;       /* (owned) underneath, shut down to end the connection */
	GInetAddress *address; /* (owned) the peer's */
	gint64 deadline;       /* monotonic µs */
} PbPending;

struct _PbWebPort {
	SoupServer *soup;	      /* (owned) */
	GTlsCertificate *certificate; /* (owned) (nullable) serve TLS with it */
	GPtrArray *listeners;	      /* (owned) PbListener, one per address family */
	guint16 port;
	GQueue pending; /* (owned) PbPending, oldest first */
	guint sweep_id; /* while anything is pending */
	guint handshake_timeout_s;
	guint max_pending;
	guint max_pending_per_address;
	guint n_refused;       /* connections refused since the last log line */
	gint64 refused_logged; /* monotonic µs of that line */
};

static void
pb_pending_free(PbPending *pending)
{
	g_object_unref(pending->stream);
	g_object_unref(pending->socket);
	g_object_unref(pending->address);
	g_free(pending);
}

/* libsoup closed it (the peer went away, or it answered and was told to close). */
static gboolean
pb_pending_is_over(PbPending *pending)
{
	return g_io_stream_is_closed(pending->stream) || g_socket_is_closed(pending->socket);
}

/* Shutting the socket down ends libsoup's read with end-of-file, and libsoup then frees
 * its side the usual way; closing the stream under it would not tell it. */
static void
pb_pending_end(PbPending *pending)
{
	if (!pb_pending_is_over(pending))
		g_socket_shutdown(pending->socket, TRUE, TRUE, NULL);
}

static gboolean
pb_web_port_sweep_cb(gpointer user_data)
{
	PbWebPort *self = user_data;
	gint64 now = g_get_monotonic_time();
	guint n_timed_out = 0;

	for (GList *l = self->pending.head; l != NULL;) {
		PbPending *pending = l->data;
		GList *next = l->next;

		if (pending->deadline <= now || pb_pending_is_over(pending)) {
			if (!pb_pending_is_over(pending))
				n_timed_out++;
			pb_pending_end(pending);
			pb_pending_free(pending);
			g_queue_delete_link(&self->pending, l);
		}
		l = next;
	}
	if (n_timed_out > 0)
		g_debug("Closed %u connections that sent no upgrade in %u s", n_timed_out,
			self->handshake_timeout_s);
	if (self->pending.length > 0)
		return G_SOURCE_CONTINUE;
	self->sweep_id = 0;
	return G_SOURCE_REMOVE;
}

/* Whether another connection from @address may wait for its handshake. */
static gboolean
pb_web_port_may_wait(PbWebPort *self, GInetAddress *address)
{
	guint n_same = 0;

	if (self->pending.length >= self->max_pending) {
		pb_web_port_sweep_cb(self); /* those libsoup closed meanwhile do not count */
		if (self->pending.length >= self->max_pending)
			return FALSE;
	}
	for (GList *l = self->pending.head; l != NULL; l = l->next) {
		PbPending *pending = l->data;

		if (g_inet_address_equal(pending->address, address) && !pb_pending_is_over(pending))
			n_same++;
	}
	return n_same < self->max_pending_per_address;
}

/* One log line per 10 s at most: a flood must not flood the log as well. */
static void
pb_web_port_log_refused(PbWebPort *self, GInetAddress *address)
{
	gint64 now = g_get_monotonic_time();

	self->n_refused++;
	if (self->refused_logged != 0 && now - self->refused_logged < 10 * G_USEC_PER_SEC)
		return;
	{
		g_autofree char *peer = g_inet_address_to_string(address);

		g_message("Refused %u connections to the WebSocket port (the last from %s): too "
			  "many are waiting for their handshake",
			  self->n_refused, peer);
	}
	self->n_refused = 0;
	self->refused_logged = now;
}

static void
pb_web_port_incoming_cb(GSocketConnection *connection, gpointer user_data)
{
	PbWebPort *self = user_data;
	GSocket *socket = g_socket_connection_get_socket(connection);
	g_autoptr(GSocketAddress) local = g_socket_get_local_address(socket, NULL);
	g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(socket, NULL);
	g_autoptr(GIOStream) stream = NULL;
	g_autoptr(GError) error = NULL;
	PbPending *pending;
	GInetAddress *address;

	if (local == NULL || remote == NULL)
		return; /* the peer is gone already */
	address = g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote));
	if (!pb_web_port_may_wait(self, address)) {
		pb_web_port_log_refused(self, address);
		return; /* dropping the last reference closes it */
	}
	g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
	if (self->certificate != NULL) {
		/* the TLS handshake happens on libsoup's first read */
		stream = G_IO_STREAM(g_tls_server_connection_new(G_IO_STREAM(connection),
								 self->certificate, &error));
		if (stream == NULL) {
			g_warning("Cannot serve TLS: %s", error->message);
			return;
		}
	} else {
		stream = G_IO_STREAM(g_object_ref(connection));
	}
	pending = g_new0(PbPending, 1);
	pending->stream = g_object_ref(stream);
	pending->socket = g_object_ref(socket);
	pending->address = g_object_ref(address);
	pending->deadline =
	    g_get_monotonic_time() + (gint64)self->handshake_timeout_s * G_USEC_PER_SEC;
	g_queue_push_tail(&self->pending, pending);
	if (self->sweep_id == 0)
		self->sweep_id = g_timeout_add_seconds(1, pb_web_port_sweep_cb, self);
	soup_server_accept_iostream(self->soup, stream, local, remote, NULL);
}

/**
 * pb_web_port_new:
 * @soup: the server that reads the requests (no listeners of its own)
 * @certificate: (nullable): serve TLS with it
 */
PbWebPort *
pb_web_port_new(SoupServer *soup, GTlsCertificate *certificate)
{
	PbWebPort *self = g_new0(PbWebPort, 1);

	self->soup = g_object_ref(soup);
	self->certificate = certificate != NULL ? g_object_ref(certificate) : NULL;
	self->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)pb_listener_free);
	g_queue_init(&self->pending);
	self->handshake_timeout_s = PB_HANDSHAKE_TIMEOUT_DEFAULT;
	self->max_pending = PB_MAX_PENDING_DEFAULT;
	self->max_pending_per_address = PB_MAX_PENDING_PER_ADDRESS_DEFAULT;
	return self;
}

/**
 * pb_web_port_set_limits:
 * @handshake_timeout_s: seconds a connection has to complete its upgrade
 * @max_pending: connections waiting for their upgrade at once
 * @max_pending_per_address: of those, from one IP address
 */
void
pb_web_port_set_limits(PbWebPort *self, guint handshake_timeout_s, guint max_pending,
		       guint max_pending_per_address)
{
	self->handshake_timeout_s = handshake_timeout_s;
	self->max_pending = max_pending;
	self->max_pending_per_address = max_pending_per_address;
}

/**
 * pb_web_port_listen:
 * @port: 0 for a free port the first time; later calls (another address family) should
 *   pass pb_web_port_get_port()
 */
gboolean
pb_web_port_listen(PbWebPort *self, GInetAddress *address, guint16 port, GError **error)
{
	g_autoptr(GSocketAddress) sockaddr = g_inet_socket_address_new(address, port);
	PbListener *listener = pb_listener_new(sockaddr, pb_web_port_incoming_cb, self, error);

	if (listener == NULL)
		return FALSE;
	self->port = pb_listener_get_port(listener);
	pb_listener_set_accepting(listener, TRUE);
	g_ptr_array_add(self->listeners, listener);
	return TRUE;
}

guint16
pb_web_port_get_port(PbWebPort *self)
{
	return self->port;
}

/* Connections accepted and not yet a tunnel (nor closed). */
guint
pb_web_port_get_n_pending(PbWebPort *self)
{
	guint n = 0;

	for (GList *l = self->pending.head; l != NULL; l = l->next)
		n += !pb_pending_is_over(l->data);
	return n;
}

/**
 * pb_web_port_upgraded:
 * @stream: what soup_server_message_steal_connection() gave: a SoupIOStream whose
 *   "base-iostream" is the connection this port handed to libsoup
 *
 * The connection is a tunnel now and no longer subject to the handshake timeout.
 */
void
pb_web_port_upgraded(PbWebPort *self, GIOStream *stream)
{
	g_autoptr(GIOStream) base = pb_ws_stream_unwrap_soup(stream);

	for (GList *l = self->pending.head; l != NULL; l = l->next) {
		PbPending *pending = l->data;

		if (pending->stream == stream || pending->stream == base) {
			pb_pending_free(pending);
			g_queue_delete_link(&self->pending, l);
			return;
		}
	}
}

/* Stops listening and ends the connections still waiting for their handshake. */
void
pb_web_port_free(PbWebPort *self)
{
	if (self == NULL)
		return;
	g_clear_handle_id(&self->sweep_id, g_source_remove);
	g_ptr_array_unref(self->listeners);
	while (self->pending.length > 0) {
		PbPending *pending = g_queue_pop_head(&self->pending);

		pb_pending_end(pending);
		pb_pending_free(pending);
	}
	g_clear_object(&self->certificate);
	g_object_unref(self->soup);
	g_free(self);
}
