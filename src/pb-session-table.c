/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-session-table.h"

#include "pb-admission.h"
#include "pb-frame.h"
#include "pb-server-client.h"
#include "pb-token.h"

/*
 * A client that lost its WebSocket keeps its public port for the grace period: still
 * bound, so nobody else takes it, but not accepting. With `resume` it also keeps its lost
 * tunnel, whose public connections stay open, unread, for the client to take over. Each such
 * reservation holds a file descriptor and, with --tunnel-port FIRST-LAST, a port of the range, so
 * the server bounds them (--max-clients counts them, see PbTunnelServer): when a new client needs
 * the place, the oldest reservation of the new client's own network goes first, else the
 * oldest of all. A client coming back in time takes its reservation, its place included;
 * from its request to its upgrade that reservation is not given to anyone else.
 */

/* Seconds a reservation a client presented stays its own while its upgrade completes (the
 * upgrade takes it much sooner). */
#define PB_SESSION_CLAIM_S PB_HANDSHAKE_TIMEOUT_DEFAULT

typedef struct {
	PbSessionTable *table; /* (unowned) */
	char *session;	       /* (owned) what the client presents to come back */
	GInetAddress *address; /* (owned) (nullable) the client's */
	char *peer;	       /* (owned) for logs */
	GPtrArray *services;   /* (owned) PbServerService: their ports, bound and not accepting,
				  and their names */
	PbTunnel *lost;	       /* (owned) (nullable) parked: its connections wait (`resume`) */
	guint expire_id;       /* when the grace period is over */
	gint64 claimed;	       /* monotonic µs of the last request presenting it; 0 = none */
} PbReservation;

struct _PbSessionTable {
	GQueue reservations; /* (owned) PbReservation, oldest first */
};

static void
pb_reservation_free(PbReservation *reservation)
{
	g_clear_handle_id(&reservation->expire_id, g_source_remove);
	g_clear_pointer(&reservation->services, g_ptr_array_unref);
	g_clear_object(&reservation->lost); /* closes the connections that waited */
	g_clear_object(&reservation->address);
	g_free(reservation->session);
	g_free(reservation->peer);
	g_free(reservation);
}

static void
pb_session_table_remove(PbSessionTable *self, PbReservation *reservation)
{
	g_queue_remove(&self->reservations, reservation);
	pb_reservation_free(reservation);
}

/* "Port 41877", "Name alpha", "Port 41877 and name alpha, port 41878", for logs. */
static char *
pb_reservation_describe(PbReservation *reservation)
{
	char *text = pb_server_services_describe(reservation->services);

	text[0] = g_ascii_toupper(text[0]);
	return text;
}

/* The grace period is over: the port is free for anyone. */
static gboolean
pb_reservation_expired_cb(gpointer user_data)
{
	PbReservation *reservation = user_data;
	g_autofree char *what = pb_reservation_describe(reservation);

	reservation->expire_id = 0;
	g_message("%s of client %s released", what, reservation->peer);
	pb_session_table_remove(reservation->table, reservation);
	return G_SOURCE_REMOVE;
}

static PbReservation *
pb_session_table_lookup(PbSessionTable *self, const char *session)
{
	if (session == NULL)
		return NULL;
	for (GList *l = self->reservations.head; l != NULL; l = l->next) {
		PbReservation *reservation = l->data;

		/* a session id is a secret: compared in constant time */
		if (pb_token_equal(reservation->session, session))
			return reservation;
	}
	return NULL;
}

/**
 * pb_session_table_reserve:
 * @session: what the client will present
 * @address: (nullable): the client's IP address
 * @peer: the client's address and port, for logs
 * @services: (transfer full): its services (PbServerService), their public ports no longer
 *   accepting
 * @lost: (nullable): its tunnel, if parked (pb_tunnel_is_parked()): kept too
 * @grace_s: how long the port is kept
 */
void
pb_session_table_reserve(PbSessionTable *self, const char *session, GInetAddress *address,
			 const char *peer, GPtrArray *services, PbTunnel *lost, guint grace_s)
{
	PbReservation *reservation = g_new0(PbReservation, 1);

	reservation->table = self;
	reservation->session = g_strdup(session);
	reservation->address = address != NULL ? g_object_ref(address) : NULL;
	reservation->peer = g_strdup(peer);
	reservation->services = services;
	reservation->lost = lost != NULL ? g_object_ref(lost) : NULL;
	reservation->expire_id =
	    g_timeout_add(grace_s * 1000, pb_reservation_expired_cb, reservation);
	g_queue_push_tail(&self->reservations, reservation);
}

/**
 * pb_session_table_claim:
 * @session: (nullable): what a client's request presents
 *
 * A port is kept for @session, and is not given to a new client while that request
 * becomes a tunnel (pb_session_table_take()).
 *
 * Returns: whether a port is kept for @session
 */
gboolean
pb_session_table_claim(PbSessionTable *self, const char *session)
{
	PbReservation *reservation = pb_session_table_lookup(self, session);

	if (reservation == NULL)
		return FALSE;
	reservation->claimed = g_get_monotonic_time();
	return TRUE;
}

/* Whether the client of @reservation is coming back: it is not given up meanwhile. */
static gboolean
pb_reservation_is_claimed(PbReservation *reservation)
{
	return reservation->claimed != 0 &&
	       g_get_monotonic_time() - reservation->claimed < PB_SESSION_CLAIM_S * G_USEC_PER_SEC;
}

/**
 * pb_session_table_take:
 * @session: (nullable): what a client presents
 * @lost: (out) (transfer full) (optional) (nullable): the parked tunnel kept with them
 *
 * Returns: (transfer full) (nullable): the services (PbServerService) kept for @session,
 *   which are no longer
 */
GPtrArray *
pb_session_table_take(PbSessionTable *self, const char *session, PbTunnel **lost)
{
	PbReservation *reservation = pb_session_table_lookup(self, session);
	GPtrArray *services;

	if (lost != NULL)
		*lost = NULL;
	if (reservation == NULL)
		return NULL;
	services = g_steal_pointer(&reservation->services);
	if (lost != NULL)
		*lost = g_steal_pointer(&reservation->lost);
	pb_session_table_remove(self, reservation);
	return services;
}

gboolean
pb_session_table_holds_port(PbSessionTable *self, guint16 port)
{
	for (GList *l = self->reservations.head; l != NULL; l = l->next) {
		PbReservation *reservation = l->data;

		for (guint i = 0; i < reservation->services->len; i++) {
			PbServerService *service = reservation->services->pdata[i];

			if (port != 0 && service->port == port)
				return TRUE;
		}
	}
	return FALSE;
}

/* Whether a port kept for a client that left also keeps @name for it; the one kept for
 * @session (nullable), the client that asks, does not count. */
gboolean
pb_session_table_holds_name(PbSessionTable *self, const char *name, const char *session)
{
	for (GList *l = self->reservations.head; l != NULL; l = l->next) {
		PbReservation *reservation = l->data;

		if (session != NULL && pb_token_equal(reservation->session, session))
			continue;
		for (guint i = 0; i < reservation->services->len; i++) {
			PbServerService *service = reservation->services->pdata[i];

			if (g_strcmp0(service->name, name) == 0)
				return TRUE;
		}
	}
	return FALSE;
}

guint
pb_session_table_get_size(PbSessionTable *self)
{
	return self->reservations.length;
}

/* Closes the port kept longest for a client of @address's (nullable) network (an IPv4
 * address, an IPv6 /64), or else the one kept longest of all, to make room for a new
 * client; FALSE if none may be given up. */
static gboolean
pb_session_table_release_oldest(PbSessionTable *self, GInetAddress *address)
{
	PbReservation *oldest = NULL;
	g_autofree char *what = NULL;

	for (GList *l = self->reservations.head; l != NULL; l = l->next) {
		PbReservation *reservation = l->data;

		if (pb_reservation_is_claimed(reservation))
			continue;
		if (oldest == NULL)
			oldest = reservation; /* the oldest of all, unless one of @address's */
		if (address != NULL && reservation->address != NULL &&
		    pb_admission_same_network(reservation->address, address)) {
			oldest = reservation;
			break;
		}
	}
	if (oldest == NULL)
		return FALSE;
	g_message("%s of client %s released early: a new client takes its place",
		  (what = pb_reservation_describe(oldest)), oldest->peer);
	pb_session_table_remove(self, oldest);
	return TRUE;
}

/**
 * pb_session_table_admit:
 * @n_connected: clients connected now
 * @max_clients: how many clients the server takes, connected or with a port kept
 * @n_ports: the ports of the --tunnel-port range; 0 without one
 * @address: (nullable): the new client's IP address
 *
 * Whether a new client may have a public port. --max-clients counts the connected clients
 * and the ports kept for those that left, and a range has as many ports as it has: when
 * either is full, kept ports make room (see pb_session_table_release_oldest()); a server
 * full of connected clients refuses.
 */
PbAdmit
pb_session_table_admit(PbSessionTable *self, guint n_connected, guint max_clients, guint n_ports,
		       GInetAddress *address)
{
	guint places = n_ports > 0 ? MIN(max_clients, n_ports) : max_clients;

	/* no kept port is given up for a newcomer that is refused anyway */
	if (n_connected >= places)
		return n_connected >= max_clients ? PB_ADMIT_FULL : PB_ADMIT_NO_PORT;
	while (n_connected + self->reservations.length >= places) {
		if (!pb_session_table_release_oldest(self, address))
			return n_connected + self->reservations.length >= max_clients
				   ? PB_ADMIT_FULL
				   : PB_ADMIT_NO_PORT;
	}
	return PB_ADMIT_OK;
}

PbSessionTable *
pb_session_table_new(void)
{
	PbSessionTable *self = g_new0(PbSessionTable, 1);

	g_queue_init(&self->reservations);
	return self;
}

/* Closes every port still kept. */
void
pb_session_table_free(PbSessionTable *self)
{
	if (self == NULL)
		return;
	g_queue_clear_full(&self->reservations, (GDestroyNotify)pb_reservation_free);
	g_free(self);
}
