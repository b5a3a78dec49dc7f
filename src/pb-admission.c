/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-admission.h"

#include <string.h>

#include "pb-frame.h"
#include "pb-ws-stream.h"

/*
 * Anyone who can reach the WebSocket port can open connections and send nothing
 * (slowloris). Each such connection costs a file descriptor until its handshake time is
 * up, so there are two caps: on all connections waiting at once, and on those from one
 * network, an IPv4 address or an IPv6 /64 (a single host usually has a whole /64 to pick
 * source addresses from). Beyond the cap of its network a new connection is closed at
 * once. When all places are taken, a new connection takes the place of the oldest one
 * that is not in the middle of a request, that is, one still silent, still sending its
 * request head, or idle after an answer (OpenSSH's MaxStartups and HAProxy's queue
 * are the models): a few addresses holding every place cannot lock out everyone else, as
 * they could when the newcomer was the one refused. A connection whose request was read
 * and is being answered (an upgrade, /healthz) is never closed under it.
 */

typedef struct {
	GIOStream *stream;	/* (owned) what libsoup reads: the TCP or the TLS connection */
	GSocket *socket;	/* (owned) underneath, shut down to end the connection */
	GSocketAddress *remote; /* (owned) the peer's address and port */
	GInetAddress *address;	/* (unowned) the peer's address, in @remote */
	gint64 deadline;	/* monotonic µs */
	gboolean busy;		/* a request was read and is being answered */
} PbPending;

struct _PbAdmission {
	GQueue pending; /* (owned) PbPending, oldest first */
	guint sweep_id; /* while anything is pending */
	guint handshake_timeout_s;
	guint max_pending;
	guint max_per_network;
	guint n_refused;       /* connections refused since the last log line */
	guint n_replaced;      /* connections closed for a newcomer since then */
	gint64 refused_logged; /* monotonic µs of that line */
};

static void
pb_pending_free(PbPending *pending)
{
	g_object_unref(pending->stream);
	g_object_unref(pending->socket);
	g_object_unref(pending->remote);
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

static void
pb_admission_remove_link(PbAdmission *self, GList *link)
{
	PbPending *pending = link->data;

	pb_pending_end(pending);
	pb_pending_free(pending);
	g_queue_delete_link(&self->pending, link);
}

/* Forgets the connections libsoup closed and ends those whose handshake time is up. */
static void
pb_admission_sweep(PbAdmission *self)
{
	gint64 now = g_get_monotonic_time();
	guint n_timed_out = 0;

	for (GList *l = self->pending.head; l != NULL;) {
		PbPending *pending = l->data;
		GList *next = l->next;

		if (pending->deadline <= now || pb_pending_is_over(pending)) {
			if (!pb_pending_is_over(pending))
				n_timed_out++;
			pb_admission_remove_link(self, l);
		}
		l = next;
	}
	if (n_timed_out > 0)
		g_debug("Closed %u connections that sent no upgrade in %u s", n_timed_out,
			self->handshake_timeout_s);
}

static gboolean
pb_admission_sweep_cb(gpointer user_data)
{
	PbAdmission *self = user_data;

	pb_admission_sweep(self);
	if (self->pending.length > 0)
		return G_SOURCE_CONTINUE;
	self->sweep_id = 0;
	return G_SOURCE_REMOVE;
}

/* Ends the oldest connection not in the middle of a request; FALSE if every one is. */
static gboolean
pb_admission_replace_oldest(PbAdmission *self)
{
	for (GList *l = self->pending.head; l != NULL; l = l->next) {
		PbPending *pending = l->data;

		if (!pending->busy) {
			pb_admission_remove_link(self, l);
			self->n_replaced++;
			return TRUE;
		}
	}
	return FALSE;
}

/* Whether another connection from @address may wait for its handshake; makes room for it
 * if all places are taken. */
static gboolean
pb_admission_may_wait(PbAdmission *self, GInetAddress *address)
{
	guint n_same = 0;

	for (GList *l = self->pending.head; l != NULL; l = l->next) {
		PbPending *pending = l->data;

		if (!pb_pending_is_over(pending) &&
		    pb_admission_same_network(pending->address, address))
			n_same++;
	}
	if (n_same >= self->max_per_network)
		return FALSE;
	if (self->pending.length >= self->max_pending)
		pb_admission_sweep(self); /* those libsoup closed meanwhile do not count */
	return self->pending.length < self->max_pending || pb_admission_replace_oldest(self);
}

/* One log line per 10 s at most: a flood must not flood the log as well. */
static void
pb_admission_log(PbAdmission *self, GInetAddress *address)
{
	gint64 now = g_get_monotonic_time();
	g_autofree char *peer = NULL;

	if (self->refused_logged != 0 && now - self->refused_logged < 10 * G_USEC_PER_SEC)
		return;
	peer = g_inet_address_to_string(address);
	g_message("Connections to the WebSocket port waiting for their handshake: refused %u "
		  "over the cap of their network, closed %u idle ones to make room for newer "
		  "ones (the last from %s)",
		  self->n_refused, self->n_replaced, peer);
	self->n_refused = self->n_replaced = 0;
	self->refused_logged = now;
}

/**
 * pb_admission_add:
 * @stream: what libsoup will read
 * @socket: the TCP socket under @stream
 * @remote: the peer's address
 *
 * Takes a new connection, unless its network has all the places it may have: then the
 * caller closes it.
 *
 * Returns: whether the connection may wait for its handshake
 */
gboolean
pb_admission_add(PbAdmission *self, GIOStream *stream, GSocket *socket, GSocketAddress *remote)
{
	GInetAddress *address = g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote));
	guint n_replaced = self->n_replaced;
	gboolean may_wait = pb_admission_may_wait(self, address);
	PbPending *pending;

	self->n_refused += !may_wait;
	if (!may_wait || self->n_replaced != n_replaced)
		pb_admission_log(self, address);
	if (!may_wait)
		return FALSE;
	pending = g_new0(PbPending, 1);
	pending->stream = g_object_ref(stream);
	pending->socket = g_object_ref(socket);
	pending->remote = g_object_ref(remote);
	pending->address = address;
	pending->deadline =
	    g_get_monotonic_time() + (gint64)self->handshake_timeout_s * G_USEC_PER_SEC;
	g_queue_push_tail(&self->pending, pending);
	if (self->sweep_id == 0)
		self->sweep_id = g_timeout_add_seconds(1, pb_admission_sweep_cb, self);
	return TRUE;
}

static gboolean
pb_admission_same_peer(GSocketAddress *a, GSocketAddress *b)
{
	GInetSocketAddress *inet_a = G_INET_SOCKET_ADDRESS(a);
	GInetSocketAddress *inet_b = G_INET_SOCKET_ADDRESS(b);

	return a == b ||
	       (g_inet_socket_address_get_port(inet_a) == g_inet_socket_address_get_port(inet_b) &&
		g_inet_address_equal(g_inet_socket_address_get_address(inet_a),
				     g_inet_socket_address_get_address(inet_b)));
}

/**
 * pb_admission_set_busy:
 * @remote: (nullable): the peer of a request, as libsoup reports it
 * @busy: %TRUE when its request has been read, %FALSE when the answer is done
 *
 * A connection that is being answered keeps its place when all are taken.
 */
void
pb_admission_set_busy(PbAdmission *self, GSocketAddress *remote, gboolean busy)
{
	if (!G_IS_INET_SOCKET_ADDRESS(remote))
		return;
	for (GList *l = self->pending.head; l != NULL; l = l->next) {
		PbPending *pending = l->data;

		if (pb_admission_same_peer(pending->remote, remote)) {
			pending->busy = busy;
			return;
		}
	}
}

/**
 * pb_admission_upgraded:
 * @stream: what soup_server_message_steal_connection() gave: a SoupIOStream whose
 *   "base-iostream" is the connection handed to libsoup
 *
 * The connection is a tunnel now and no longer subject to the handshake timeout.
 */
void
pb_admission_upgraded(PbAdmission *self, GIOStream *stream)
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

/* Connections accepted and not yet a tunnel (nor closed). */
guint
pb_admission_get_n_pending(PbAdmission *self)
{
	guint n = 0;

	for (GList *l = self->pending.head; l != NULL; l = l->next)
		n += !pb_pending_is_over(l->data);
	return n;
}

/* The bytes of @address that name its network: an IPv4 address (also one mapped into
 * IPv6, as a dual-stack socket reports it) is one network, an IPv6 address is one of its
 * /64. */
static const guint8 *
pb_admission_network_bytes(GInetAddress *address, gsize *len)
{
	static const guint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const guint8 *bytes = g_inet_address_to_bytes(address);

	if (g_inet_address_get_family(address) == G_SOCKET_FAMILY_IPV4) {
		*len = 4;
		return bytes;
	}
	if (memcmp(bytes, mapped, sizeof mapped) == 0) {
		*len = 4;
		return bytes + sizeof mapped;
	}
	*len = 8;
	return bytes;
}

/* Whether @a and @b are in the same network: the same IPv4 address, or the same IPv6 /64. */
gboolean
pb_admission_same_network(GInetAddress *a, GInetAddress *b)
{
	gsize len_a;
	gsize len_b;
	const guint8 *net_a = pb_admission_network_bytes(a, &len_a);
	const guint8 *net_b = pb_admission_network_bytes(b, &len_b);

	return len_a == len_b && memcmp(net_a, net_b, len_a) == 0;
}

/**
 * pb_admission_set_limits:
 * @handshake_timeout_s: seconds a connection has to complete its upgrade
 * @max_pending: connections waiting for their upgrade at once
 * @max_per_network: of those, from one IPv4 address or IPv6 /64
 */
void
pb_admission_set_limits(PbAdmission *self, guint handshake_timeout_s, guint max_pending,
			guint max_per_network)
{
	self->handshake_timeout_s = handshake_timeout_s;
	self->max_pending = max_pending;
	self->max_per_network = max_per_network;
}

PbAdmission *
pb_admission_new(void)
{
	PbAdmission *self = g_new0(PbAdmission, 1);

	g_queue_init(&self->pending);
	self->handshake_timeout_s = PB_HANDSHAKE_TIMEOUT_DEFAULT;
	self->max_pending = PB_MAX_PENDING_DEFAULT;
	self->max_per_network = PB_MAX_PENDING_PER_ADDRESS_DEFAULT;
	return self;
}

/* Ends the connections still waiting for their handshake. */
void
pb_admission_free(PbAdmission *self)
{
	if (self == NULL)
		return;
	g_clear_handle_id(&self->sweep_id, g_source_remove);
	while (self->pending.head != NULL)
		pb_admission_remove_link(self, self->pending.head);
	g_free(self);
}
