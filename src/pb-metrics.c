/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-metrics.h"

/*
 * GET /metrics: the server's counters in Prometheus' text exposition format (version
 * 0.0.4). Server-wide counters cover every tunnel since the server started; the
 * piggyback_port_* series are per public port and live as long as its tunnel; a named
 * tunnel's also carry its name (name="myapp"), and the tunnel of a [client NAME] of serve
 * --config its NAME (client="alice"). A client with several services (forward --expose)
 * has the series of connections and bytes per service, each with its port and name; the
 * others are its tunnel's, and stay with its first service's labels.
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

/* A counter of PbTunnelStats, served in all (piggyback_NAME) and per public port
 * (piggyback_port_NAME{port="…"}). */
typedef struct {
	const char *name;
	const char *type;
	const char *help;
	gsize offset;	       /* of its guint64 in PbTunnelStats */
	gssize service_offset; /* of its guint64 in PbServiceStats; -1: the tunnel's only */
} PbMetric;

#define PB_METRIC(name, type, field, help)                                                         \
	{                                                                                          \
		name, type, help, G_STRUCT_OFFSET(PbTunnelStats, field), -1                        \
	}
#define PB_SERVICE_METRIC(name, type, field, help)                                                 \
	{                                                                                          \
		name, type, help, G_STRUCT_OFFSET(PbTunnelStats, field),                           \
		    G_STRUCT_OFFSET(PbServiceStats, field)                                         \
	}

static const PbMetric pb_metrics[] = {
    PB_SERVICE_METRIC("connections_open", "gauge", streams_open, "Tunneled connections open now."),
    PB_SERVICE_METRIC("connections_total", "counter", streams_total,
		      "Tunneled connections opened (in all: since the server started)."),
    PB_SERVICE_METRIC("received_bytes_total", "counter", bytes_in,
		      "Tunneled payload received from clients."),
    PB_SERVICE_METRIC("sent_bytes_total", "counter", bytes_out,
		      "Tunneled payload sent to clients."),
    PB_METRIC("frames_received_total", "counter", frames_in,
	      "WebSocket messages received from clients."),
    PB_METRIC("frames_sent_total", "counter", frames_out, "WebSocket messages sent to clients."),
    PB_METRIC("protocol_errors_total", "counter", protocol_errors,
	      "Times a client broke the protocol (its tunnel or connection closed)."),
    PB_METRIC("send_queue_bytes", "gauge", send_queue,
	      "Bytes queued on the WebSockets, not written yet."),
    PB_METRIC("connections_resumed_total", "counter", streams_resumed,
	      "Tunneled connections that went on after their client's WebSocket was lost."),
    PB_METRIC("connections_dropped_total", "counter", streams_dropped,
	      "Tunneled connections a resumption could not keep (the client no longer had "
	      "them, or lied about them)."),
};

/* A label value as the text format wants it: backslash, double quote and line feed
 * escaped. Names are RFC 1123 labels today; this keeps a scrape well-formed should a
 * value ever come from elsewhere. */
static void
pb_metrics_append_label_value(GString *out, const char *value)
{
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			g_string_append_c(out, '\\');
		if (*p == '\n')
			g_string_append(out, "\\n");
		else
			g_string_append_c(out, *p);
	}
}

static guint64
pb_metric_get(const PbMetric *metric, const PbTunnelStats *stats)
{
	return G_STRUCT_MEMBER(guint64, stats, metric->offset);
}

/* One sample of a per-port series: @name{port="…"[,name="…"][,client="…"]} @value. */
static void
pb_metrics_port_value(GString *out, const char *name, guint16 port, const char *label,
		      const char *client, guint64 value)
{
	g_string_append_printf(out, "%s{port=\"%u\"", name, port);
	/* only on named tunnels: the series of a server without --domain keep the labels
	 * they had */
	if (label != NULL) {
		g_string_append(out, ",name=\"");
		pb_metrics_append_label_value(out, label);
		g_string_append_c(out, '"');
	}
	/* the [client NAME] of its token (serve --config), if any */
	if (client != NULL) {
		g_string_append(out, ",client=\"");
		pb_metrics_append_label_value(out, client);
		g_string_append_c(out, '"');
	}
	g_string_append_printf(out, "} %" G_GUINT64_FORMAT "\n", value);
}

/**
 * pb_metrics_render:
 * @totals: the server's counters (pb_tunnel_server_get_totals())
 * @clients: (element-type PbServerClientInfo): the connected clients
 * @n_pending: connections to the WebSocket port that are not a tunnel yet
 * @queue_budget: bytes queued towards public connections, and how many may be (--max-buffer)
 *
 * Returns: (transfer full): the text of GET /metrics
 */
char *
pb_metrics_render(const PbTunnelStats *totals, GPtrArray *clients, guint n_pending,
		  PbQueueBudget *queue_budget)
{
	GString *out = g_string_new(NULL);

	pb_metrics_header(out, "piggyback_info", "gauge", "The server's version.");
	g_string_append(out, "piggyback_info{version=\"" PACKAGE_VERSION "\"} 1\n");
	pb_metrics_header(out, "piggyback_clients", "gauge", "Tunnel clients connected now.");
	pb_metrics_value(out, "piggyback_clients", clients->len);
	pb_metrics_header(out, "piggyback_handshakes_pending", "gauge",
			  "Connections to the WebSocket port that are not a tunnel yet.");
	pb_metrics_value(out, "piggyback_handshakes_pending", n_pending);
	pb_metrics_header(out, "piggyback_buffered_bytes", "gauge",
			  "Bytes from clients queued for public connections that have not taken "
			  "them yet.");
	pb_metrics_value(out, "piggyback_buffered_bytes", pb_queue_budget_get_used(queue_budget));
	pb_metrics_header(out, "piggyback_max_buffer_bytes", "gauge",
			  "How many bytes may be queued so (--max-buffer); a tunnel over its part "
			  "is held back.");
	pb_metrics_value(out, "piggyback_max_buffer_bytes",
			 pb_queue_budget_get_limit(queue_budget));
	for (guint m = 0; m < G_N_ELEMENTS(pb_metrics); m++) {
		g_autofree char *name = g_strconcat("piggyback_", pb_metrics[m].name, NULL);

		pb_metrics_header(out, name, pb_metrics[m].type, pb_metrics[m].help);
		pb_metrics_value(out, name, pb_metric_get(&pb_metrics[m], totals));
	}
	for (guint m = 0; m < G_N_ELEMENTS(pb_metrics); m++) {
		g_autofree char *name = g_strconcat("piggyback_port_", pb_metrics[m].name, NULL);
		g_autofree char *help = g_strdup_printf("%s Per public port.", pb_metrics[m].help);

		pb_metrics_header(out, name, pb_metrics[m].type, help);
		for (guint i = 0; i < clients->len; i++) {
			const PbServerClientInfo *info = clients->pdata[i];

			if (info->n_services <= 1 || pb_metrics[m].service_offset < 0) {
				pb_metrics_port_value(out, name, info->tunnel_port, info->name,
						      info->client,
						      pb_metric_get(&pb_metrics[m], &info->stats));
				continue;
			}
			for (guint j = 0; j < info->n_services; j++) {
				const PbServerServiceInfo *service = &info->services[j];

				pb_metrics_port_value(
				    out, name, service->tunnel_port, service->name, info->client,
				    G_STRUCT_MEMBER(guint64, &service->stats,
						    pb_metrics[m].service_offset));
			}
		}
	}
	return g_string_free(out, FALSE);
}
