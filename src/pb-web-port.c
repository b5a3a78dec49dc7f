/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-web-port.h"

#include <errno.h>
#include <gio/gunixconnection.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pb-admission.h"
#include "pb-listener.h"
#include "pb-router.h"

/*
 * Why not soup_server_listen(): libsoup keeps a connection that never sends a complete
 * request for as long as the peer likes, accepts any number of them, and retries accept()
 * at full CPU when out of file descriptors. Anyone who can reach the port could hold all
 * of the server's descriptors with silent connections (slowloris). So the port accepts
 * with a PbListener (SOMAXCONN backlog, a pause on EMFILE), wraps TLS itself, hands each
 * connection to the SoupServer with soup_server_accept_iostream(), and keeps it in a
 * PbAdmission until PbTunnelServer says it became a tunnel: that closes it when its
 * handshake time is up, and bounds how many wait at once (see there).
 *
 * A plain HTTP request (/healthz, /metrics) is answered, and its connection is closed when
 * the handshake time is up like any connection that did not become a tunnel.
 *
 * With names (serve --domain), a PbRouter reads each connection's request head first:
 * Host NAME.DOMAIN makes it a public connection of tunnel NAME, any other goes to the
 * SoupServer as before. A port without a SoupServer (--http-port) routes by name only. On a
 * TLS port the ClientHello's server_name decides instead: TLS is terminated here and the
 * plain bytes go through a socketpair to the tunnel, whose streams read sockets. A
 * passthrough port (--sni-port) routes by server_name too, but hands the connection on
 * untouched: the ClientHello and all that follows are for the local service.
 */

struct _PbWebPort {
	SoupServer *soup;	      /* (owned) (nullable) none: names only */
	GTlsCertificate *certificate; /* (owned) (nullable) serve TLS with it */
	PbRouterMode mode;	      /* what its connections start with */
	GPtrArray *listeners;	      /* (owned) PbListener, one per address family */
	guint16 port;
	PbAdmission *admission; /* (owned) the connections that are not a tunnel yet */
	PbRouter *router;	/* (owned) (nullable) with names: reads request heads */
	PbWebPortTunnelFunc tunnel_func;
	gpointer tunnel_data;
	GCancellable *cancellable;     /* (owned) cancelled when the port is freed */
	PbAddressRules *address_rules; /* (unowned) (nullable) who may connect at all */
};

/* A TLS connection for a tunnel, during its handshake. */
typedef struct {
	PbWebPort *self;	       /* (unowned) while the cancellable is not cancelled */
	char *name;		       /* (owned) */
	GSocketConnection *connection; /* (owned) */
	GIOStream *stream;	       /* (owned) TLS over @connection */
} PbTlsRoute;

static void
pb_tls_route_free(PbTlsRoute *route)
{
	g_free(route->name);
	g_object_unref(route->connection);
	g_object_unref(route->stream);
	g_free(route);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbTlsRoute, pb_tls_route_free)

static void
pb_web_port_spliced_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;

	if (!g_io_stream_splice_finish(res, &error))
		g_debug("A named TLS connection ended: %s", error->message);
}

/* A TLS connection for tunnel @name: its plain bytes go to and from one end of a
 * socketpair, the other end is the tunnel's public connection. */
static gboolean
pb_web_port_tunnel_tls(PbWebPort *self, const char *name, GSocketConnection *origin,
		       GIOStream *stream)
{
	int fds[2];
	g_autoptr(GSocket) ours = NULL;
	g_autoptr(GSocket) theirs = NULL;
	g_autoptr(GSocketConnection) near = NULL;
	g_autoptr(GSocketConnection) far = NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
		g_warning("Cannot make a socketpair for a named TLS connection: %s",
			  g_strerror(errno));
		return FALSE;
	}
	ours = g_socket_new_from_fd(fds[0], NULL);
	theirs = g_socket_new_from_fd(fds[1], NULL);
	if (ours == NULL || theirs == NULL) {
		if (ours == NULL)
			close(fds[0]);
		if (theirs == NULL)
			close(fds[1]);
		return FALSE;
	}
	near = g_socket_connection_factory_create_connection(ours);
	far = g_socket_connection_factory_create_connection(theirs);
	if (self->tunnel_func(name, far, origin, self->tunnel_data) != PB_ROUTE_TAKEN)
		return FALSE;
	g_io_stream_splice_async(stream, G_IO_STREAM(near),
				 G_IO_STREAM_SPLICE_CLOSE_STREAM1 |
				     G_IO_STREAM_SPLICE_CLOSE_STREAM2,
				 G_PRIORITY_DEFAULT, NULL, pb_web_port_spliced_cb, NULL);
	return TRUE;
}

static void
pb_web_port_server_cb(GSocketConnection *connection, GIOStream *stream, gpointer user_data);

/* The handshake of a TLS connection for a tunnel is over: the tunnel takes it, or, if it
 * has no client (any more), libsoup answers it. Until then it was in PbAdmission, which
 * ends a handshake that takes longer than --handshake-timeout. */
static void
pb_web_port_handshake_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(PbTlsRoute) route = user_data;
	g_autoptr(GError) error = NULL;

	if (!g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), res, &error)) {
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_debug("TLS handshake for tunnel %s failed: %s", route->name,
				error->message);
		g_io_stream_close(route->stream, NULL, NULL);
		return;
	}
	if (pb_web_port_tunnel_tls(route->self, route->name, route->connection, route->stream))
		pb_admission_upgraded(route->self->admission, route->stream);
	else
		pb_web_port_server_cb(route->connection, route->stream, route->self);
}

/* The router found a request for tunnel @name. */
static PbRoute
pb_web_port_tunnel_cb(const char *name, GSocketConnection *connection, GIOStream *stream,
		      gpointer user_data)
{
	PbWebPort *self = user_data;
	PbTlsRoute *route;
	PbRoute taken;

	if (stream == G_IO_STREAM(connection)) {
		taken = self->tunnel_func(name, connection, connection, self->tunnel_data);
		if (taken == PB_ROUTE_TAKEN)
			pb_admission_upgraded(self->admission, stream);
		return taken;
	}
	route = g_new0(PbTlsRoute, 1);
	route->self = self;
	route->name = g_strdup(name);
	route->connection = g_object_ref(connection);
	route->stream = g_object_ref(stream);
	g_tls_connection_handshake_async(G_TLS_CONNECTION(stream), G_PRIORITY_DEFAULT,
					 self->cancellable, pb_web_port_handshake_cb, route);
	return PB_ROUTE_TAKEN; /* its handshake, then the tunnel */
}

/* The router found a request for the server itself: libsoup reads it, as if first. */
static void
pb_web_port_server_cb(GSocketConnection *connection, GIOStream *stream, gpointer user_data)
{
	PbWebPort *self = user_data;
	GSocket *socket = g_socket_connection_get_socket(connection);
	g_autoptr(GSocketAddress) local = g_socket_get_local_address(socket, NULL);
	g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(socket, NULL);

	if (local == NULL || remote == NULL)
		return;
	soup_server_accept_iostream(self->soup, stream, local, remote, NULL);
}

/* libsoup read a whole request: its connection keeps its place until it is answered. */
static void
pb_web_port_request_read_cb(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	PbWebPort *self = user_data;

	pb_admission_set_busy(self->admission, soup_server_message_get_remote_address(msg), TRUE);
}

static void
pb_web_port_request_done_cb(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	PbWebPort *self = user_data;

	pb_admission_set_busy(self->admission, soup_server_message_get_remote_address(msg), FALSE);
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

	if (local == NULL || remote == NULL)
		return; /* the peer is gone already */
	/* --listen-allow, --listen-deny: before a TLS handshake or a byte read, so that a
	 * refused address costs no more than its accept() */
	if (!pb_address_rules_check_connection(self->address_rules, connection)) {
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
		return;
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
	if (!pb_admission_add(self->admission, stream, socket, remote))
		return; /* dropping the last reference closes it */
	if (self->router != NULL) {
		pb_router_add(self->router, connection, stream);
		return;
	}
	soup_server_accept_iostream(self->soup, stream, local, remote, NULL);
}

/* @rules: (nullable) (transfer none): who may connect to the port at all; they must
 * outlive it */
void
pb_web_port_set_address_rules(PbWebPort *self, PbAddressRules *rules)
{
	self->address_rules = rules;
}

/**
 * pb_web_port_new:
 * @soup: (nullable): the server that reads the requests (no listeners of its own); %NULL
 *   for a port that routes by name only (pb_web_port_set_router())
 * @certificate: (nullable): serve TLS with it
 */
PbWebPort *
pb_web_port_new(SoupServer *soup, GTlsCertificate *certificate)
{
	PbWebPort *self = g_new0(PbWebPort, 1);

	self->soup = soup != NULL ? g_object_ref(soup) : NULL;
	self->certificate = certificate != NULL ? g_object_ref(certificate) : NULL;
	self->mode = certificate != NULL ? PB_ROUTER_MODE_TLS : PB_ROUTER_MODE_HTTP;
	self->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)pb_listener_free);
	self->admission = pb_admission_new();
	self->cancellable = g_cancellable_new();
	if (soup == NULL)
		return self;
	g_signal_connect(soup, "request-read", G_CALLBACK(pb_web_port_request_read_cb), self);
	g_signal_connect(soup, "request-finished", G_CALLBACK(pb_web_port_request_done_cb), self);
	g_signal_connect(soup, "request-aborted", G_CALLBACK(pb_web_port_request_done_cb), self);
	return self;
}

/**
 * pb_web_port_new_passthrough:
 *
 * A port for TLS that it does not terminate: pb_web_port_set_router() hands each
 * connection, untouched, to the tunnel its ClientHello's server_name names.
 */
PbWebPort *
pb_web_port_new_passthrough(void)
{
	PbWebPort *self = pb_web_port_new(NULL, NULL);

	self->mode = PB_ROUTER_MODE_PASSTHROUGH;
	return self;
}

/**
 * pb_web_port_set_router:
 * @domain: the server's --domain
 * @tunnel_func: takes a connection whose request's Host is NAME.@domain
 *
 * Routes connections by the Host of their first request, or on a TLS port by the
 * server_name of their ClientHello.
 */
void
pb_web_port_set_router(PbWebPort *self, const char *domain, PbWebPortTunnelFunc tunnel_func,
		       gpointer user_data)
{
	g_return_if_fail(self->router == NULL);
	self->tunnel_func = tunnel_func;
	self->tunnel_data = user_data;
	self->router = pb_router_new(domain, pb_web_port_tunnel_cb,
				     self->soup != NULL ? pb_web_port_server_cb : NULL, self);
	pb_router_set_mode(self->router, self->mode);
}

/**
 * pb_web_port_set_limits:
 * @handshake_timeout_s: seconds a connection has to complete its upgrade
 * @max_pending: connections waiting for their upgrade at once
 * @max_pending_per_address: of those, from one IPv4 address or IPv6 /64
 */
void
pb_web_port_set_limits(PbWebPort *self, guint handshake_timeout_s, guint max_pending,
		       guint max_pending_per_address)
{
	pb_admission_set_limits(self->admission, handshake_timeout_s, max_pending,
				max_pending_per_address);
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
	return pb_admission_get_n_pending(self->admission);
}

/* The connection that soup_server_message_steal_connection() gave is a tunnel now. */
void
pb_web_port_upgraded(PbWebPort *self, GIOStream *stream)
{
	pb_admission_upgraded(self->admission, stream);
}

/* Stops listening and ends the connections still waiting for their handshake. */
void
pb_web_port_free(PbWebPort *self)
{
	if (self == NULL)
		return;
	if (self->soup != NULL)
		g_signal_handlers_disconnect_by_data(self->soup, self);
	g_ptr_array_unref(self->listeners);
	g_cancellable_cancel(self->cancellable);
	g_object_unref(self->cancellable);
	pb_router_free(self->router);
	pb_admission_free(self->admission);
	g_clear_object(&self->certificate);
	g_clear_object(&self->soup);
	g_free(self);
}
