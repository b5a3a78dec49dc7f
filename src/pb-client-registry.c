/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-client-registry.h"

#include <libsoup/soup.h>
#include <string.h>

#include "pb-name.h"
#include "pb-token.h"

/*
 * What a client holds (a public port, a name, a session) belongs to it while it is
 * connected, and for its grace period after it was lost (PbSessionTable keeps it then):
 * this registry answers, for both at once, who holds a session, a name or a port, and
 * whether there is room for one more client. A public connection for a name is looked up
 * here on every request to a shared port, so names are indexed.
 */

struct _PbClientRegistry {
	GList *clients;		  /* (owned) PbServerClient, newest first */
	GHashTable *names;	  /* (owned) name → PbServerClient (unowned), the connected */
	PbSessionTable *reserved; /* (owned) what clients that left keep */
};

PbClientRegistry *
pb_client_registry_new(void)
{
	PbClientRegistry *self = g_new0(PbClientRegistry, 1);

	self->names = g_hash_table_new(g_str_hash, g_str_equal);
	self->reserved = pb_session_table_new();
	return self;
}

/* @client (transfer full) is connected, with its ports and names. */
void
pb_client_registry_add(PbClientRegistry *self, PbServerClient *client)
{
	self->clients = g_list_prepend(self->clients, client);
	for (guint i = 0; i < client->services->len; i++) {
		PbServerService *service = client->services->pdata[i];

		if (service->name != NULL)
			g_hash_table_insert(self->names, service->name, client);
	}
}

/* @client is gone: the caller owns it again. */
void
pb_client_registry_remove(PbClientRegistry *self, PbServerClient *client)
{
	self->clients = g_list_remove(self->clients, client);
	for (guint i = 0; i < client->services->len; i++) {
		PbServerService *service = client->services->pdata[i];

		if (service->name != NULL &&
		    g_hash_table_lookup(self->names, service->name) == client)
			g_hash_table_remove(self->names, service->name);
	}
}

/* Returns: (element-type PbServerClient) (transfer none): the connected, newest first */
const GList *
pb_client_registry_get_clients(PbClientRegistry *self)
{
	return self->clients;
}

guint
pb_client_registry_get_n_clients(PbClientRegistry *self)
{
	return g_list_length(self->clients);
}

/* The connected client with a service named @name, if any; *@index (nullable) gets the
 * service's. */
PbServerClient *
pb_client_registry_find_name(PbClientRegistry *self, const char *name, guint32 *index)
{
	PbServerClient *client = g_hash_table_lookup(self->names, name);

	for (guint i = 0; client != NULL && index != NULL && i < client->services->len; i++) {
		PbServerService *service = client->services->pdata[i];

		if (g_strcmp0(service->name, name) == 0)
			*index = i;
	}
	return client;
}

/* Whether @name is kept for a client that left within its grace period. */
gboolean
pb_client_registry_is_away(PbClientRegistry *self, const char *name)
{
	return pb_session_table_holds_name(self->reserved, name, NULL);
}

/* The connected client that holds @session (nullable), if any. */
static PbServerClient *
pb_client_registry_find_session(PbClientRegistry *self, const char *session)
{
	if (session == NULL)
		return NULL;
	for (GList *l = self->clients; l != NULL; l = l->next) {
		PbServerClient *client = l->data;

		if (client->session != NULL && pb_token_equal(client->session, session))
			return client;
	}
	return NULL;
}

/* Whether @session (nullable) is one the server gave and still holds: kept for a client
 * that left (claimed for this request now, see pb_session_table_claim()), or a connected
 * client's (that comes back on a new connection). */
gboolean
pb_client_registry_claim_session(PbClientRegistry *self, const char *session)
{
	return pb_session_table_claim(self->reserved, session) ||
	       pb_client_registry_find_session(self, session) != NULL;
}

/* Whether a client other than the one presenting @session (nullable) holds @name: a
 * connected one, or one that left within its grace period. */
gboolean
pb_client_registry_name_taken(PbClientRegistry *self, const char *name, const char *session)
{
	PbServerClient *holder = pb_client_registry_find_name(self, name, NULL);

	if (holder != NULL && (session == NULL || holder->session == NULL ||
			       !pb_token_equal(holder->session, session)))
		return TRUE;
	return pb_session_table_holds_name(self->reserved, name, session);
}

/**
 * pb_client_registry_take_session:
 * @session: (nullable): what a new client presents
 * @client: the new client, not in the registry yet
 *
 * Gives @client what @session holds (its services' public ports and names, and the tunnel
 * whose connections it may take over: @client's lost), taken from the client that held
 * it: one that left within its grace period, or a connected one, whose connection must be
 * half-open since the same client comes on a new one.
 *
 * Returns: whether @session held anything
 */
gboolean
pb_client_registry_take_session(PbClientRegistry *self, const char *session, PbServerClient *client)
{
	g_autoptr(PbTunnel) lost = NULL;
	GPtrArray *kept = pb_session_table_take(self->reserved, session, &lost);
	PbServerClient *old;

	if (kept != NULL) {
		g_ptr_array_unref(client->services);
		client->services = kept;
		g_set_object(&client->lost, lost);
		return TRUE;
	}
	old = pb_client_registry_find_session(self, session);
	if (old == NULL)
		return FALSE;
	pb_client_registry_remove(self, old);
	pb_server_client_close_ports(old);
	g_ptr_array_unref(client->services);
	client->services = g_steal_pointer(&old->services);
	old->services = g_ptr_array_new_with_free_func((GDestroyNotify)pb_server_service_free);
	g_signal_handlers_disconnect_by_data(old->tunnel, old);
	g_set_object(&client->lost, old->tunnel);
	/* not a goodbye: its connections wait for @client to take them over (`resume`) */
	pb_tunnel_close(old->tunnel, PB_CLOSE_COMING_BACK, "replaced by a new connection");
	pb_server_client_free_later(old);
	return TRUE;
}

/* Whether @name is that of one of @client's services other than service @index. */
static gboolean
pb_client_registry_name_is_own(PbServerClient *client, guint index, const char *name)
{
	for (guint i = 0; i < client->services->len; i++) {
		PbServerService *service = client->services->pdata[i];

		if (i != index && g_strcmp0(service->name, name) == 0)
			return TRUE;
	}
	return FALSE;
}

/* A name for service @index of @client that asked for none: @try 0 of the first service
 * is random; of a further service, the first one's name and its number ("myapp-2", cut to
 * a name's length); later tries (a clash) are random with the number. */
static char *
pb_client_registry_pick_name(PbServerClient *client, guint index, guint try)
{
	PbServerService *first = client->services->pdata[0];
	g_autofree char *suffix = index > 0 ? g_strdup_printf("-%u", index + 1) : g_strdup("");
	g_autofree char *random = pb_name_new_random();
	const char *base = index > 0 && try == 0 && first->name != NULL ? first->name : random;
	gsize keep = MIN(strlen(base), PB_NAME_MAX_LEN - strlen(suffix));

	return g_strdup_printf("%.*s%s", (int)keep, base, suffix);
}

/**
 * pb_client_registry_give_names:
 * @client: a new client, not in the registry yet
 * @asked: (array length=n_asked) (nullable): the name each service asks for, valid, or
 *   %NULL for none
 *
 * Gives each service of @client its name: the one its session kept, else the one it asks
 * for, else one picked for it (see pb_client_registry_pick_name()).
 *
 * Returns: FALSE if another client holds a name asked for (it took it since the request
 *   was checked), or no free name was found
 */
gboolean
pb_client_registry_give_names(PbClientRegistry *self, PbServerClient *client,
			      const char *const *asked, guint n_asked)
{
	for (guint i = 0; i < client->services->len; i++) {
		PbServerService *service = client->services->pdata[i];
		const char *wanted = i < n_asked ? asked[i] : NULL;

		if (service->name != NULL)
			continue;
		if (wanted != NULL) {
			if (pb_client_registry_name_taken(self, wanted, client->session) ||
			    pb_client_registry_name_is_own(client, i, wanted))
				return FALSE;
			service->name = g_strdup(wanted);
			continue;
		}
		/* 36^9 random names: a clash is rare, and bounded anyway */
		for (guint try = 0; try < 100 && service->name == NULL; try++) {
			g_autofree char *name = pb_client_registry_pick_name(client, i, try);

			if (!pb_client_registry_name_taken(self, name, NULL) &&
			    !pb_client_registry_name_is_own(client, i, name))
				service->name = g_steal_pointer(&name);
		}
		if (service->name == NULL)
			return FALSE;
	}
	return TRUE;
}

/* Whether a client, connected or within its grace period, holds public port @port. */
gboolean
pb_client_registry_port_taken(PbClientRegistry *self, guint16 port)
{
	for (GList *l = self->clients; l != NULL; l = l->next) {
		PbServerClient *client = l->data;

		for (guint i = 0; i < client->services->len; i++) {
			PbServerService *service = client->services->pdata[i];

			if (service->port == port)
				return TRUE;
		}
	}
	return pb_session_table_holds_port(self->reserved, port);
}

/* Whether a new client from @address (nullable) may come in, see pb_session_table_admit(). */
PbAdmit
pb_client_registry_admit(PbClientRegistry *self, guint max_clients, guint n_ports,
			 GInetAddress *address)
{
	return pb_session_table_admit(self->reserved, pb_client_registry_get_n_clients(self),
				      max_clients, n_ports, address);
}

/* @client, removed, was lost: its services' ports and names are kept for its session for
 * @grace_s. */
void
pb_client_registry_keep(PbClientRegistry *self, PbServerClient *client, guint grace_s)
{
	pb_session_table_reserve(self->reserved, client->session, client->address, client->peer,
				 g_steal_pointer(&client->services),
				 pb_tunnel_is_parked(client->tunnel) ? client->tunnel : NULL,
				 grace_s);
	client->services = g_ptr_array_new_with_free_func((GDestroyNotify)pb_server_service_free);
}

/* Closes every tunnel ("going away"), and every port kept for a client that left. */
void
pb_client_registry_clear(PbClientRegistry *self)
{
	while (self->clients != NULL) {
		PbServerClient *client = self->clients->data;

		pb_client_registry_remove(self, client);
		pb_tunnel_close(client->tunnel, SOUP_WEBSOCKET_CLOSE_GOING_AWAY,
				"server shutting down");
		pb_server_client_free(client);
	}
	pb_session_table_free(self->reserved);
	self->reserved = pb_session_table_new();
}

void
pb_client_registry_free(PbClientRegistry *self)
{
	if (self == NULL)
		return;
	g_list_free_full(self->clients, (GDestroyNotify)pb_server_client_free);
	g_hash_table_unref(self->names);
	pb_session_table_free(self->reserved);
	g_free(self);
}
