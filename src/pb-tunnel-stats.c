/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-tunnel-private.h"

/*
 * What a tunnel carried, for /metrics, the dashboards and D-Bus: counters the data path
 * adds to (per tunnel, and per service in an array indexed by the service, so without a
 * lookup), and gauges counted when a view asks.
 */

/* The counters of @service, made if needed, or %NULL for one not counted. They are an
 * array indexed by the service, grown to the highest index seen: the hot path adds to them
 * without a lookup. An index past any a server takes (a client's peer may send any) is not
 * counted. */
PbServiceStats *
pb_tunnel_count_service(PbTunnel *self, guint32 service)
{
	if (service > PB_HELLO_MAX_SERVICES)
		return NULL;
	if (service >= self->n_service_stats) {
		self->service_stats = g_renew(PbServiceStats, self->service_stats, service + 1);
		memset(self->service_stats + self->n_service_stats, 0,
		       (service + 1 - self->n_service_stats) * sizeof(PbServiceStats));
		self->n_service_stats = service + 1;
	}
	return &self->service_stats[service];
}

/* Says which service a new @stream is for, and counts it there. */
void
pb_tunnel_set_stream_service(PbTunnel *self, PbStream *stream, guint32 service)
{
	PbServiceStats *stats = pb_tunnel_count_service(self, service);

	pb_stream_set_service(stream, service);
	if (stats != NULL)
		stats->streams_total++;
}

guint
pb_tunnel_get_n_streams(PbTunnel *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL(self), 0);
	return pb_connection_table_get_n_live(self->table);
}

/* Returns: the connections that may still hold a socket: open ones, and closed ones that
 * are still writing what came for them */
guint
pb_tunnel_get_n_streams_held(PbTunnel *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL(self), 0);
	return pb_connection_table_get_n_held(self->table);
}

guint64
pb_tunnel_get_bytes_in(PbTunnel *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL(self), 0);
	return self->bytes_in;
}

guint64
pb_tunnel_get_bytes_out(PbTunnel *self)
{
	g_return_val_if_fail(PB_IS_TUNNEL(self), 0);
	return self->bytes_out;
}

/**
 * pb_tunnel_get_service_stats:
 * @stats: (out caller-allocates) (array length=n_stats): the counters of services 0 to
 *   @n_stats - 1
 *
 * What each service carried since the tunnel opened (a service without connections yet:
 * zeros). The open connections are counted now, a walk over them: for views, not for
 * every packet.
 */
void
pb_tunnel_get_service_stats(PbTunnel *self, PbServiceStats *stats, guint n_stats)
{
	g_autoptr(GPtrArray) live = NULL;

	g_return_if_fail(PB_IS_TUNNEL(self));

	memset(stats, 0, n_stats * sizeof(PbServiceStats));
	for (guint i = 0; i < MIN(n_stats, self->n_service_stats); i++) {
		stats[i] = self->service_stats[i];
		stats[i].streams_open = 0;
	}
	if (pb_connection_table_get_n_live(self->table) == 0)
		return;
	live = pb_connection_table_list_live(self->table);
	for (guint i = 0; i < live->len; i++) {
		guint32 service = pb_stream_get_service(live->pdata[i]);

		if (service < n_stats)
			stats[service].streams_open++;
	}
}

/**
 * pb_tunnel_get_stats:
 *
 * What /metrics shows of a tunnel, counted since it opened.
 */
void
pb_tunnel_get_stats(PbTunnel *self, PbTunnelStats *stats)
{
	g_return_if_fail(PB_IS_TUNNEL(self));

	stats->streams_open = pb_connection_table_get_n_live(self->table);
	stats->streams_total = self->n_streams_total;
	stats->bytes_in = self->bytes_in;
	stats->bytes_out = self->bytes_out;
	stats->frames_in = self->frames_in +
			   pb_ws_input_get_n_fast_frames(pb_ws_stream_get_input(self->ws_stream));
	stats->frames_out = self->frames_out;
	stats->protocol_errors = self->protocol_errors;
	stats->streams_resumed = self->streams_resumed;
	stats->streams_dropped = self->streams_dropped;
	stats->send_queue =
	    self->queued - pb_ws_output_get_sent(pb_ws_stream_get_output(self->ws_stream));
}

/* Adds each of @stats's counters to @sum's. */
void
pb_tunnel_stats_add(PbTunnelStats *sum, const PbTunnelStats *stats)
{
	sum->streams_open += stats->streams_open;
	sum->streams_total += stats->streams_total;
	sum->bytes_in += stats->bytes_in;
	sum->bytes_out += stats->bytes_out;
	sum->frames_in += stats->frames_in;
	sum->frames_out += stats->frames_out;
	sum->protocol_errors += stats->protocol_errors;
	sum->streams_resumed += stats->streams_resumed;
	sum->streams_dropped += stats->streams_dropped;
	sum->send_queue += stats->send_queue;
}
