/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-server-client.h"

#include <sys/random.h>

#include "pb-client-policy.h"

/*
 * A connected client as `serve` holds it. Every public connection, on the client's own
 * port or routed to it by name on a shared port, becomes a stream of its tunnel, up to
 * --max-connections at once.
 */

PbServerService *
pb_server_service_new(void)
{
	return g_new0(PbServerService, 1);
}

/* Closes its public port, if it has one. */
void
pb_server_service_free(PbServerService *service)
{
	if (service == NULL)
		return;
	g_clear_pointer(&service->listener, pb_listener_free);
	g_free(service->name);
	g_free(service);
}

/**
 * pb_server_client_new:
 * @tunnel: (transfer full): the client's tunnel
 * @remote: (nullable): the client's address
 * @max_connections: public connections at once
 */
PbServerClient *
pb_server_client_new(PbTunnel *tunnel, GSocketAddress *remote, guint max_connections)
{
	PbServerClient *client = g_new0(PbServerClient, 1);

	client->tunnel = tunnel;
	client->connected_since = g_get_real_time();
	client->peer = remote != NULL ? g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(remote))
				      : g_strdup("?");
	if (G_IS_INET_SOCKET_ADDRESS(remote))
		client->address =
		    g_object_ref(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote)));
	client->max_connections = max_connections;
	client->services = g_ptr_array_new_with_free_func((GDestroyNotify)pb_server_service_free);
	g_ptr_array_add(client->services, pb_server_service_new());
	return client;
}

/* Service @index of @client; 0, the first, it always has. */
PbServerService *
pb_server_client_get_service(PbServerClient *client, guint index)
{
	g_return_val_if_fail(index < client->services->len, NULL);
	return client->services->pdata[index];
}

/* An opaque, unguessable session id: 128 random bits in hex. */
char *
pb_server_client_new_session(void)
{
	guint8 bytes[16];
	g_autoptr(GString) hex = g_string_new(NULL);

	/* getrandom(2) where it works; GRand (seeded from /dev/urandom) otherwise */
	if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
		for (gsize i = 0; i < sizeof bytes; i++)
			bytes[i] = (guint8)g_random_int_range(0, 256);
	}
	for (gsize i = 0; i < sizeof bytes; i++)
		g_string_append_printf(hex, "%02x", bytes[i]);
	return g_string_free(g_steal_pointer(&hex), FALSE);
}

/**
 * pb_server_client_add_connection:
 * @service: the index of the service it is for
 * @origin: the public client's TCP connection (see pb_tunnel_add_stream())
 *
 * A public connection for @client's tunnel, or, over --max-connections, closed at once.
 */
void
pb_server_client_add_connection(PbServerClient *client, guint32 service,
				GSocketConnection *connection, GSocketConnection *origin)
{
	gint64 now;

	/* --allow, --deny, --max-connections-per-address, by the public client's own address:
	 * closed before a byte of it reaches the tunnel */
	if (!pb_address_rules_admit(client->address_rules, connection, origin)) {
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
		return;
	}
	/* then those of its [client] group, counted in the server's total too */
	if (!pb_address_rules_admit(pb_client_rule_get_address_rules(client->rule), connection,
				    origin)) {
		pb_address_rules_add_refused(client->address_rules, 1);
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
		return;
	}
	if (pb_tunnel_get_n_streams(client->tunnel) < client->max_connections) {
		pb_tunnel_add_stream(client->tunnel, connection, origin, service);
		return;
	}
	/* over the limit: this connection only; one log line per 10 s at most, so that a
	 * flood cannot flood the log too */
	g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
	client->n_refused++;
	now = g_get_monotonic_time();
	if (now - client->refused_logged >= 10 * G_USEC_PER_SEC) {
		g_message("Client %s: refused %u connection(s): the tunnel has its "
			  "--max-connections %u open",
			  client->peer, client->n_refused, client->max_connections);
		client->n_refused = 0;
		client->refused_logged = now;
	}
}

static void
pb_server_client_incoming_cb(GSocketConnection *connection, gpointer user_data)
{
	PbServerService *service = user_data;

	pb_server_client_add_connection(service->client, service->index, connection, connection);
}

/* The client has its tunnel: the public ports of its services accept. */
void
pb_server_client_open(PbServerClient *client)
{
	for (guint i = 0; i < client->services->len; i++) {
		PbServerService *service = client->services->pdata[i];

		service->client = client;
		service->index = i;
		if (service->listener == NULL)
			continue;
		pb_listener_set_callback(service->listener, pb_server_client_incoming_cb, service);
		pb_listener_set_accepting(service->listener, TRUE);
	}
}

/* The client is gone: its public ports take no more connections. */
void
pb_server_client_close_ports(PbServerClient *client)
{
	for (guint i = 0; i < client->services->len; i++) {
		PbServerService *service = client->services->pdata[i];

		if (service->listener != NULL)
			pb_listener_set_accepting(service->listener, FALSE);
	}
}

/* What @services (PbServerService) hold, for logs: "port 41877", "port 41877 and name
 * alpha", "name alpha", and for several services each of those, separated by ", ". */
char *
pb_server_services_describe(GPtrArray *services)
{
	g_autoptr(GString) text = g_string_new(NULL);

	for (guint i = 0; i < services->len; i++) {
		PbServerService *service = services->pdata[i];

		if (i > 0)
			g_string_append(text, ", ");
		if (service->name == NULL)
			g_string_append_printf(text, "port %u", service->port);
		else if (service->port == 0)
			g_string_append_printf(text, "name %s", service->name);
		else
			g_string_append_printf(text, "port %u and name %s", service->port,
					       service->name);
	}
	return g_string_free(g_steal_pointer(&text), FALSE);
}

/* What @client holds, for logs: see pb_server_services_describe(). */
char *
pb_server_client_describe(PbServerClient *client)
{
	return pb_server_services_describe(client->services);
}

/**
 * pb_server_client_list_services:
 * @n_services: (out): how many
 *
 * Returns: (transfer full) (array length=n_services): what the views show of each of
 * @client's services, the first first; free with pb_server_service_infos_free()
 */
PbServerServiceInfo *
pb_server_client_list_services(PbServerClient *client, guint *n_services)
{
	guint n = client->services->len;
	g_autofree PbServiceStats *stats = g_new0(PbServiceStats, n);
	PbServerServiceInfo *infos = g_new0(PbServerServiceInfo, n);

	pb_tunnel_get_service_stats(client->tunnel, stats, n);
	for (guint i = 0; i < n; i++) {
		PbServerService *service = client->services->pdata[i];

		infos[i].name = g_strdup(service->name);
		infos[i].tunnel_port = service->port;
		infos[i].stats = stats[i];
	}
	*n_services = n;
	return infos;
}

void
pb_server_service_infos_free(PbServerServiceInfo *infos, guint n_infos)
{
	for (guint i = 0; i < n_infos; i++)
		g_free(infos[i].name);
	g_free(infos);
}

/* Closes what @client still holds (its port, its connections with its tunnel). */
void
pb_server_client_free(PbServerClient *client)
{
	if (client == NULL)
		return;
	if (client->tunnel != NULL) {
		g_signal_handlers_disconnect_by_data(client->tunnel, client);
		g_object_unref(client->tunnel);
	}
	g_clear_object(&client->lost);
	g_ptr_array_unref(client->services);
	g_free(client->session);
	g_clear_object(&client->address);
	g_free(client->peer);
	g_clear_pointer(&client->rule, pb_client_rule_unref);
	g_free(client);
}

static gboolean
pb_server_client_free_cb(gpointer user_data)
{
	pb_server_client_free(user_data);
	return G_SOURCE_REMOVE;
}

/* Frees @client from the main loop: for a caller inside one of its tunnel's signals. */
void
pb_server_client_free_later(PbServerClient *client)
{
	g_idle_add(pb_server_client_free_cb, client);
}
