/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-public-ports.h"

/*
 * Which public port a new client gets: the configured one (a random one while an earlier
 * client holds it), the lowest free one of a configured range, or a random one; bound on
 * --tunnel-host, or on every address of both families without one. Unaccepting: the
 * server turns accepting on once the client has its tunnel.
 */

void
pb_public_ports_clear(PbPublicPorts *ports)
{
	g_clear_pointer(&ports->host, g_free);
}

/* How many ports the range holds; 0 without a range (one port, or random ones). */
guint
pb_public_ports_get_n_range(const PbPublicPorts *ports)
{
	return ports->last > ports->first ? (guint)(ports->last - ports->first) + 1 : 0;
}

static PbListener *
pb_public_ports_bind(const PbPublicPorts *ports, guint16 port, GError **error)
{
	g_autoptr(GInetAddress) address = NULL;
	g_autoptr(GSocketAddress) sockaddr = NULL;

	if (ports->host == NULL)
		return pb_listener_new_any(port, NULL, NULL, error);
	address = g_inet_address_new_from_string(ports->host);
	if (address == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    "“%s” is not an IP address", ports->host);
		return NULL;
	}
	sockaddr = g_inet_socket_address_new(address, port);
	return pb_listener_new(sockaddr, NULL, NULL, error);
}

/* Binds the lowest port of the range that no client holds and nothing else has bound. */
static PbListener *
pb_public_ports_listen_in_range(const PbPublicPorts *ports, PbPortTakenFunc taken,
				gpointer user_data, GError **error)
{
	for (guint port = ports->first; port <= ports->last; port++) {
		g_autoptr(GError) local_error = NULL;
		PbListener *listener;

		if (taken((guint16)port, user_data))
			continue;
		listener = pb_public_ports_bind(ports, (guint16)port, &local_error);
		if (listener != NULL)
			return listener;
		if (!g_error_matches(local_error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE)) {
			g_propagate_error(error, g_steal_pointer(&local_error));
			return NULL;
		}
	}
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
		    "every port from %u to %u is in use", ports->first, ports->last);
	return NULL;
}

/**
 * pb_public_ports_listen:
 * @taken: says which ports other clients hold
 * @port_out: (out): the port bound
 *
 * Returns: (transfer full) (nullable): a public port for a new client
 */
PbListener *
pb_public_ports_listen(const PbPublicPorts *ports, PbPortTakenFunc taken, gpointer user_data,
		       guint16 *port_out, GError **error)
{
	PbListener *listener;
	guint16 port = ports->first;

	if (pb_public_ports_get_n_range(ports) > 0) {
		listener = pb_public_ports_listen_in_range(ports, taken, user_data, error);
	} else {
		if (port != 0 && taken(port, user_data))
			port = 0;
		listener = pb_public_ports_bind(ports, port, error);
	}
	if (listener == NULL)
		return NULL;
	*port_out = pb_listener_get_port(listener);
	return listener;
}
