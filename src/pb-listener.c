/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-listener.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "pb-poller.h"

/*
 * Why not GSocketService: when accept() fails because the process is out of file
 * descriptors (EMFILE), GSocketService logs a warning and accepts again at once; the
 * listening socket is still readable, so it spins at full CPU and writes 100 000 warnings
 * a second, which any client can cause by opening enough connections. PbListener pauses
 * accepting for a moment instead, and says so once per pause. It also listens with a
 * backlog of SOMAXCONN (GSocketListener's is 10: a burst of new connections lost SYNs and
 * waited a second for their retransmission) and can stop accepting while staying bound,
 * which keeps a port reserved (see PbTunnelServer's grace period). It is watched through the
 * context's PbPoller, not a GSource of its own: a server has a public port per client, and
 * GLib prepares and checks every source on every wake-up.
 */

#define PB_LISTENER_PAUSE_MS 250 /* after EMFILE: for connections to close meanwhile */

struct _PbListener {
	GSocket *socket;      /* (owned) listening */
	PbPollerWatch *watch; /* (owned) (nullable) while accepting */
	guint pause_id;	      /* (nullable) while paused after EMFILE */
	gboolean accepting;
	PbListenerFunc func;
	gpointer user_data;
};

static void
pb_listener_watch(PbListener *self);

static gboolean
pb_listener_resume_cb(gpointer user_data)
{
	PbListener *self = user_data;

	self->pause_id = 0;
	pb_listener_watch(self);
	return G_SOURCE_REMOVE;
}

/* Stops watching for PB_LISTENER_PAUSE_MS. */
static void
pb_listener_pause(PbListener *self)
{
	g_clear_pointer(&self->watch, pb_poller_watch_free);
	self->pause_id = g_timeout_add(PB_LISTENER_PAUSE_MS, pb_listener_resume_cb, self);
}

static void
pb_listener_ready_cb(gpointer user_data)
{
	PbListener *self = user_data;

	/* a bounded batch: other sources get a turn during a flood */
	for (guint i = 0; i < 64 && self->accepting; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GSocket) accepted = g_socket_accept(self->socket, NULL, &error);
		g_autoptr(GSocketConnection) connection = NULL;

		if (accepted == NULL) {
			if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
				return;
			if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES) ||
			    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE)) {
				g_warning("Not accepting connections for %d ms: %s",
					  PB_LISTENER_PAUSE_MS, error->message);
				pb_listener_pause(self);
				return;
			}
			g_debug("accept: %s", error->message); /* the peer gave up already */
			continue;
		}
		connection = g_socket_connection_factory_create_connection(accepted);
		self->func(connection, self->user_data);
	}
}

static void
pb_listener_watch(PbListener *self)
{
	g_autoptr(GError) error = NULL;

	if (self->watch != NULL || self->pause_id != 0 || !self->accepting)
		return;
	self->watch = pb_poller_watch_new(g_socket_get_fd(self->socket), pb_listener_ready_cb, NULL,
					  self, &error);
	if (self->watch == NULL) { /* out of file descriptors for an epoll set */
		g_warning("Not accepting connections for %d ms: %s", PB_LISTENER_PAUSE_MS,
			  error->message);
		pb_listener_pause(self);
		return;
	}
	pb_poller_watch_set(self->watch, TRUE, FALSE);
}

static PbListener *
pb_listener_new_socket(GSocketAddress *address, gboolean v6only, PbListenerFunc func,
		       gpointer user_data, GError **error)
{
	g_autoptr(GSocket) socket =
	    g_socket_new(g_socket_address_get_family(address), G_SOCKET_TYPE_STREAM,
			 G_SOCKET_PROTOCOL_TCP, error);
	PbListener *self;

	if (socket == NULL)
		return NULL;
	g_socket_set_blocking(socket, FALSE); /* g_socket_accept() must not wait */
	if (g_socket_address_get_family(address) == G_SOCKET_FAMILY_IPV6)
		g_socket_set_option(socket, IPPROTO_IPV6, IPV6_V6ONLY, v6only, NULL);
	g_socket_set_listen_backlog(socket, SOMAXCONN);
	if (!g_socket_bind(socket, address, TRUE, error) || !g_socket_listen(socket, error))
		return NULL;
	self = g_new0(PbListener, 1);
	self->socket = g_steal_pointer(&socket);
	self->func = func;
	self->user_data = user_data;
	return self;
}

/**
 * pb_listener_new:
 * @address: where to listen; port 0 picks a free one (pb_listener_get_port()). An IPv6
 *   address means IPv6 only: the IPv4 "any" address is a listener of its own.
 *
 * Returns: (transfer full) (nullable): a bound, listening socket that does not accept
 *   until pb_listener_set_accepting()
 */
PbListener *
pb_listener_new(GSocketAddress *address, PbListenerFunc func, gpointer user_data, GError **error)
{
	return pb_listener_new_socket(address, TRUE, func, user_data, error);
}

/**
 * pb_listener_new_any:
 * @port: 0 picks a free one
 *
 * Like pb_listener_new(), on every address of both families with one socket (IPv4
 * connections arrive as IPv4-mapped IPv6 ones), or of IPv4 alone where the machine has no
 * IPv6. What Node's server.listen(port) does, so what PiggyBack 1.1's public ports did.
 */
PbListener *
pb_listener_new_any(guint16 port, PbListenerFunc func, gpointer user_data, GError **error)
{
	g_autoptr(GInetAddress) any6 = g_inet_address_new_any(G_SOCKET_FAMILY_IPV6);
	g_autoptr(GInetAddress) any4 = g_inet_address_new_any(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address6 = g_inet_socket_address_new(any6, port);
	g_autoptr(GSocketAddress) address4 = g_inet_socket_address_new(any4, port);
	g_autoptr(GError) error6 = NULL;
	PbListener *self = pb_listener_new_socket(address6, FALSE, func, user_data, &error6);

	if (self != NULL || g_error_matches(error6, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE)) {
		if (self == NULL)
			g_propagate_error(error, g_steal_pointer(&error6));
		return self;
	}
	return pb_listener_new_socket(address4, TRUE, func, user_data, error);
}

guint16
pb_listener_get_port(PbListener *self)
{
	g_autoptr(GSocketAddress) local = g_socket_get_local_address(self->socket, NULL);

	return local != NULL ? g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local)) : 0;
}

void
pb_listener_set_callback(PbListener *self, PbListenerFunc func, gpointer user_data)
{
	self->func = func;
	self->user_data = user_data;
}

/* Off: still bound (nobody else can take the port), connections wait in the backlog. */
void
pb_listener_set_accepting(PbListener *self, gboolean accepting)
{
	self->accepting = accepting;
	if (accepting) {
		pb_listener_watch(self);
		return;
	}
	g_clear_pointer(&self->watch, pb_poller_watch_free);
	g_clear_handle_id(&self->pause_id, g_source_remove);
}

/* Closes the port. */
void
pb_listener_free(PbListener *self)
{
	if (self == NULL)
		return;
	pb_listener_set_accepting(self, FALSE);
	g_socket_close(self->socket, NULL);
	g_object_unref(self->socket);
	g_free(self);
}
