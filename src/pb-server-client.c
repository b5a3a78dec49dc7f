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
	return client;
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

/* A public connection for @client's tunnel, or, over --max-connections, closed at once. */
void
pb_server_client_add_connection(PbServerClient *client, GSocketConnection *connection)
{
	gint64 now;

	/* --allow, --deny: closed before a byte of it reaches the tunnel */
	if (!pb_address_rules_check_connection(client->address_rules, connection)) {
		g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
		return;
	}
	if (pb_tunnel_get_n_streams(client->tunnel) < client->max_connections) {
		pb_tunnel_add_stream(client->tunnel, connection);
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
	pb_server_client_add_connection(user_data, connection);
}

/* The client has its tunnel: its public port, if it has one, accepts. */
void
pb_server_client_open(PbServerClient *client)
{
	if (client->listener == NULL)
		return;
	pb_listener_set_callback(client->listener, pb_server_client_incoming_cb, client);
	pb_listener_set_accepting(client->listener, TRUE);
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
	g_clear_pointer(&client->listener, pb_listener_free);
	g_free(client->session);
	g_free(client->name);
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
