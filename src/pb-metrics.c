/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-metrics.h"

/*
 * GET /metrics: the server's counters in Prometheus' text exposition format (version
 * 0.0.4). Server-wide counters cover every tunnel since the server started; the
 * piggyback_port_* series are per public port and live as long as its tunnel.
 * "received" is tunneled payload from clients (what their services answer), "sent" is
 * payload to them (what the public sends).
 */

static void
pb_metrics_header(GString *out, const char *name, const char *type, const char *help)
{
	g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
pb_metrics_value(GString *out, const char *name, guint64 value)
{
	g_string_append_printf(out, "%s %" G_GUINT64_FORMAT "\n", name, value);
}

typedef guint64 (*PbMetricsField)(const PbServerClientInfo *info);

/* One series per tunnel port. */
static void
pb_metrics_per_port(GString *out, GPtrArray *clients, const char *name, const char *type,
		    const char *help, PbMetricsField field)
{
	pb_metrics_header(out, name, type, help);
	for (guint i = 0; i < clients->len; i++) {
		const PbServerClientInfo *info = clients->pdata[i];

		g_string_append_printf(out, "%s{port=\"%u\"} %" G_GUINT64_FORMAT "\n", name,
				       info->tunnel_port, field(info));
	}
}

static guint64
pb_metrics_open(const PbServerClientInfo *info)
{
	return info->stats.streams_open;
}

static guint64
pb_metrics_total(const PbServerClientInfo *info)
{
	return info->stats.streams_total;
}

static guint64
pb_metrics_received(const PbServerClientInfo *info)
{
	return info->stats.bytes_in;
}

static guint64
pb_metrics_sent(const PbServerClientInfo *info)
{
	return info->stats.bytes_out;
}

static guint64
pb_metrics_frames_received(const PbServerClientInfo *info)
{
	return info->stats.frames_in;
}

static guint64
pb_metrics_frames_sent(const PbServerClientInfo *info)
{
	return info->stats.frames_out;
}

static guint64
pb_metrics_send_queue(const PbServerClientInfo *info)
{
	return info->stats.send_queue;
}

/**
 * pb_metrics_render:
 * @totals: the server's counters (pb_tunnel_server_get_totals())
 * @clients: (element-type PbServerClientInfo): the connected clients
 * @n_pending: connections to the WebSocket port that are not a tunnel yet
 *
 * Returns: (transfer full): the text of GET /metrics
 */
char *
pb_metrics_render(const PbTunnelStats *totals, GPtrArray *clients, guint n_pending)
{
	GString *out = g_string_new(NULL);

	pb_metrics_header(out, "piggyback_info", "gauge", "The server's version.");
	g_string_append(out, "piggyback_info{version=\"" PACKAGE_VERSION "\"} 1\n");
	pb_metrics_header(out, "piggyback_clients", "gauge", "Tunnel clients connected now.");
	pb_metrics_value(out, "piggyback_clients", clients->len);
	pb_metrics_header(out, "piggyback_handshakes_pending", "gauge",
			  "Connections to the WebSocket port that are not a tunnel yet.");
	pb_metrics_value(out, "piggyback_handshakes_pending", n_pending);
	pb_metrics_header(out, "piggyback_connections_open", "gauge",
			  "Tunneled connections open now.");
	pb_metrics_value(out, "piggyback_connections_open", totals->streams_open);
	pb_metrics_header(out, "piggyback_connections_total", "counter",
			  "Tunneled connections opened since the server started.");
	pb_metrics_value(out, "piggyback_connections_total", totals->streams_total);
	pb_metrics_header(out, "piggyback_received_bytes_total", "counter",
			  "Tunneled payload received from clients.");
	pb_metrics_value(out, "piggyback_received_bytes_total", totals->bytes_in);
	pb_metrics_header(out, "piggyback_sent_bytes_total", "counter",
			  "Tunneled payload sent to clients.");
	pb_metrics_value(out, "piggyback_sent_bytes_total", totals->bytes_out);
	pb_metrics_header(out, "piggyback_frames_received_total", "counter",
			  "WebSocket messages received from clients.");
	pb_metrics_value(out, "piggyback_frames_received_total", totals->frames_in);
	pb_metrics_header(out, "piggyback_frames_sent_total", "counter",
			  "WebSocket messages sent to clients.");
	pb_metrics_value(out, "piggyback_frames_sent_total", totals->frames_out);
	pb_metrics_header(out, "piggyback_protocol_errors_total", "counter",
			  "Times a client broke the protocol (its tunnel or connection closed).");
	pb_metrics_value(out, "piggyback_protocol_errors_total", totals->protocol_errors);
	pb_metrics_header(out, "piggyback_send_queue_bytes", "gauge",
			  "Bytes queued on the WebSockets, not written yet.");
	pb_metrics_value(out, "piggyback_send_queue_bytes", totals->send_queue);

	pb_metrics_per_port(out, clients, "piggyback_port_connections_open", "gauge",
			    "Tunneled connections open now, per public port.", pb_metrics_open);
	pb_metrics_per_port(out, clients, "piggyback_port_connections_total", "counter",
			    "Tunneled connections opened, per public port.", pb_metrics_total);
	pb_metrics_per_port(out, clients, "piggyback_port_received_bytes_total", "counter",
			    "Tunneled payload received from the client, per public port.",
			    pb_metrics_received);
	pb_metrics_per_port(out, clients, "piggyback_port_sent_bytes_total", "counter",
			    "Tunneled payload sent to the client, per public port.",
			    pb_metrics_sent);
	pb_metrics_per_port(out, clients, "piggyback_port_frames_received_total", "counter",
			    "WebSocket messages received, per public port.",
			    pb_metrics_frames_received);
	pb_metrics_per_port(out, clients, "piggyback_port_frames_sent_total", "counter",
			    "WebSocket messages sent, per public port.", pb_metrics_frames_sent);
	pb_metrics_per_port(out, clients, "piggyback_port_send_queue_bytes", "gauge",
			    "Bytes queued on the WebSocket, not written yet, per public port.",
			    pb_metrics_send_queue);
	return g_string_free(out, FALSE);
}
