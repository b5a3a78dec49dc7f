/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-dashboard-view.h"

#include <glib/gi18n.h>

#include "pb-dashboard.h"
#include "pb-log.h"

/*
 * The live dashboard: one model (a PbTunnelClient's properties and events, or what a
 * PbTunnelServer lists of its clients), drawn by PbConsole with pb-dashboard.c's pure
 * renderers. While it runs, log messages become its recent events (see pb_log_set_sink()),
 * so nothing else writes to the terminal. Rates are the change of the byte counters over
 * the last second or more.
 */

#define PB_DASHBOARD_VIEW_MAX_EVENTS 50

struct _PbDashboardView {
	GObject parent_instance;
	PbConsole *console;	/* (owned) */
	PbTunnelClient *client; /* (owned) (nullable) */
	PbTunnelServer *server; /* (owned) (nullable) */
	char *listen_url;	/* (owned) (nullable) the server's */
	gint64 started;		/* Unix µs */
	GQueue events;		/* (owned) PbDashboardEvent with an owned message, oldest first */
	gint64 sample_time;	/* monotonic µs of the byte counters below */
	guint64 sample_in;	/* bytes in at sample_time */
	guint64 sample_out;
	double rate_in; /* bytes per second over the last sample period */
	double rate_out;
	gboolean started_console;
};

G_DEFINE_FINAL_TYPE(PbDashboardView, pb_dashboard_view, G_TYPE_OBJECT)

static void
pb_dashboard_event_free(PbDashboardEvent *event)
{
	g_free((char *)event->message);
	g_free(event);
}

/* Adds a line to the recent events (the last PB_DASHBOARD_VIEW_MAX_EVENTS). */
void
pb_dashboard_view_add_event(PbDashboardView *self, gint64 time, const char *message)
{
	PbDashboardEvent *event = g_new0(PbDashboardEvent, 1);

	g_return_if_fail(PB_IS_DASHBOARD_VIEW(self));

	event->time = time;
	event->message = g_strdup(message);
	g_queue_push_tail(&self->events, event);
	while (self->events.length > PB_DASHBOARD_VIEW_MAX_EVENTS)
		pb_dashboard_event_free(g_queue_pop_head(&self->events));
	pb_console_invalidate(self->console);
}

static void
pb_dashboard_view_log_cb(GLogLevelFlags level, const char *message, gpointer user_data)
{
	PbDashboardView *self = PB_DASHBOARD_VIEW(user_data);
	g_autofree char *line = NULL;

	if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) {
		line = g_strdup_printf(_("warning: %s"), message);
		message = line;
	}
	pb_dashboard_view_add_event(self, g_get_real_time(), message);
}

/* Rates over at least a second, so a redraw soon after another does not show noise. */
static void
pb_dashboard_view_sample(PbDashboardView *self, guint64 bytes_in, guint64 bytes_out)
{
	gint64 now = g_get_monotonic_time();
	double seconds = (double)(now - self->sample_time) / G_USEC_PER_SEC;

	if (self->sample_time != 0 && seconds < 1.0)
		return;
	if (self->sample_time != 0 && bytes_in >= self->sample_in &&
	    bytes_out >= self->sample_out) {
		self->rate_in = (double)(bytes_in - self->sample_in) / seconds;
		self->rate_out = (double)(bytes_out - self->sample_out) / seconds;
	}
	self->sample_time = now;
	self->sample_in = bytes_in;
	self->sample_out = bytes_out;
}

/* The events as the renderer takes them: an array, oldest first. */
static PbDashboardEvent *
pb_dashboard_view_events(PbDashboardView *self)
{
	PbDashboardEvent *events = g_new0(PbDashboardEvent, self->events.length + 1);
	guint i = 0;

	for (GList *l = self->events.head; l != NULL; l = l->next)
		events[i++] = *(PbDashboardEvent *)l->data;
	return events;
}

/* The URL to share of a service: its named one, or the one of a names-only server; else
 * its access URL (as the notification picks). */
static const char *
pb_dashboard_view_service_url(const char *name, const char *access_url, const char *http_url)
{
	return (name != NULL || access_url == NULL) ? http_url : access_url;
}

/* The client's services as the table shows them, the first first. */
static PbDashboardService *
pb_dashboard_view_client_services(PbDashboardView *self, guint *n_services)
{
	PbClientServices *further = pb_tunnel_client_get_services(self->client);
	guint n = pb_tunnel_client_get_n_services(self->client);
	g_autofree PbServiceStats *stats = g_new0(PbServiceStats, n);
	PbDashboardService *services = g_new0(PbDashboardService, n);
	const char *name = pb_tunnel_client_get_name(self->client);

	pb_tunnel_client_get_service_stats(self->client, stats, n);
	services[0].label = name != NULL ? name : pb_tunnel_client_get_local_address(self->client);
	services[0].url =
	    pb_dashboard_view_service_url(name, pb_tunnel_client_get_access_url(self->client),
					  pb_tunnel_client_get_http_url(self->client));
	for (guint i = 1; i < n; i++) {
		const PbClientService *service = pb_client_services_get(further, i - 1);

		/* the name the server gave, else the one asked for, else the address */
		services[i].label = service->name != NULL ? service->name : service->label;
		services[i].url = pb_dashboard_view_service_url(service->name, service->access_url,
								service->http_url);
	}
	for (guint i = 0; i < n; i++) {
		services[i].connections_active = (guint)stats[i].streams_open;
		services[i].connections_total = stats[i].streams_total;
		services[i].bytes_in = stats[i].bytes_in;
		services[i].bytes_out = stats[i].bytes_out;
	}
	*n_services = n;
	return services;
}

static char *
pb_dashboard_view_render_client(PbDashboardView *self, guint width, guint height, gboolean color)
{
	guint n_services = 0;
	g_autofree PbDashboardService *services =
	    pb_dashboard_view_client_services(self, &n_services);
	g_autoptr(GEnumClass) states = g_type_class_ref(PB_TYPE_TUNNEL_CLIENT_STATE);
	GEnumValue *state =
	    g_enum_get_value(states, (gint)pb_tunnel_client_get_state(self->client));
	g_autofree PbDashboardEvent *events = pb_dashboard_view_events(self);
	PbClientView view = {
	    .version = PACKAGE_VERSION,
	    .state = state != NULL ? state->value_nick : "?",
	    .now = g_get_real_time(),
	    .connected_since = pb_tunnel_client_get_connected_since(self->client),
	    .server_url = pb_tunnel_client_get_server_url(self->client),
	    .local_address = pb_tunnel_client_get_local_address(self->client),
	    .access_url = pb_tunnel_client_get_access_url(self->client),
	    .http_url = pb_tunnel_client_get_http_url(self->client),
	    .name = pb_tunnel_client_get_name(self->client),
	    .connections_total = pb_tunnel_client_get_connections_total(self->client),
	    .connections_active = pb_tunnel_client_get_connections_active(self->client),
	    .bytes_in = pb_tunnel_client_get_bytes_in(self->client),
	    .bytes_out = pb_tunnel_client_get_bytes_out(self->client),
	    .events = events,
	    .n_events = self->events.length,
	    .services = services,
	    .n_services = n_services,
	};

	pb_dashboard_view_sample(self, view.bytes_in, view.bytes_out);
	view.rate_in = self->rate_in;
	view.rate_out = self->rate_out;
	return pb_dashboard_render_client(&view, width, height, color);
}

static char *
pb_dashboard_view_render_server(PbDashboardView *self, guint width, guint height, gboolean color)
{
	g_autoptr(GPtrArray) clients = pb_tunnel_server_list_clients(self->server);
	g_autofree PbDashboardClientRow *rows = NULL;
	g_autofree PbDashboardEvent *events = pb_dashboard_view_events(self);
	guint n_rows = 0;
	PbServerView view = {
	    .version = PACKAGE_VERSION,
	    .now = g_get_real_time(),
	    .started = self->started,
	    .listen_url = self->listen_url,
	    .n_clients = clients->len,
	    .events = events,
	    .n_events = self->events.length,
	};

	for (guint i = 0; i < clients->len; i++)
		n_rows += MAX(((PbServerClientInfo *)clients->pdata[i])->n_services, 1);
	rows = g_new0(PbDashboardClientRow, n_rows + 1);
	n_rows = 0;
	for (guint i = 0; i < clients->len; i++) {
		PbServerClientInfo *info = clients->pdata[i];

		/* one service: the tunnel's counters, as always */
		rows[n_rows++] = (PbDashboardClientRow){
		    .peer = info->peer,
		    .tunnel_port = info->tunnel_port,
		    .connected_since = info->connected_since,
		    .connections_active = info->stats.streams_open,
		    .connections_total = info->stats.streams_total,
		    .bytes_in = info->stats.bytes_in,
		    .bytes_out = info->stats.bytes_out,
		    .name = info->name,
		};
		if (info->n_services <= 1)
			continue;
		/* several: a row each, with what each carried */
		n_rows--;
		for (guint j = 0; j < info->n_services; j++) {
			const PbServerServiceInfo *service = &info->services[j];

			rows[n_rows++] = (PbDashboardClientRow){
			    .peer = info->peer,
			    .tunnel_port = service->tunnel_port,
			    .connected_since = info->connected_since,
			    .connections_active = (guint)service->stats.streams_open,
			    .connections_total = service->stats.streams_total,
			    .bytes_in = service->stats.bytes_in,
			    .bytes_out = service->stats.bytes_out,
			    .name = service->name,
			    .continued = j > 0,
			};
		}
	}
	view.clients = rows;
	view.n_rows = n_rows;
	return pb_dashboard_render_server(&view, width, height, color);
}

static char *
pb_dashboard_view_render_cb(guint width, guint height, gboolean color, gpointer user_data)
{
	PbDashboardView *self = PB_DASHBOARD_VIEW(user_data);

	if (self->client != NULL)
		return pb_dashboard_view_render_client(self, width, height, color);
	return pb_dashboard_view_render_server(self, width, height, color);
}

static void
pb_dashboard_view_changed_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	pb_console_invalidate(PB_DASHBOARD_VIEW(user_data)->console);
}

static void
pb_dashboard_view_event_cb(PbTunnelClient *client, gint64 time, const char *message,
			   gpointer user_data)
{
	pb_dashboard_view_add_event(PB_DASHBOARD_VIEW(user_data), time, message);
}

/* Takes over the terminal; log messages become events until pb_dashboard_view_stop(). */
void
pb_dashboard_view_start(PbDashboardView *self)
{
	g_return_if_fail(PB_IS_DASHBOARD_VIEW(self));

	if (self->started_console)
		return;
	self->started_console = TRUE;
	pb_log_set_sink(pb_dashboard_view_log_cb, self);
	pb_console_start(self->console);
}

/* Gives the terminal back as it was. */
void
pb_dashboard_view_stop(PbDashboardView *self)
{
	g_return_if_fail(PB_IS_DASHBOARD_VIEW(self));

	if (!self->started_console)
		return;
	self->started_console = FALSE;
	pb_console_stop(self->console);
	pb_log_set_sink(NULL, NULL);
}

static void
pb_dashboard_view_dispose(GObject *object)
{
	PbDashboardView *self = PB_DASHBOARD_VIEW(object);

	pb_dashboard_view_stop(self);
	if (self->client != NULL) {
		g_signal_handlers_disconnect_by_data(self->client, self);
		g_clear_object(&self->client);
	}
	g_clear_object(&self->server);
	if (self->console != NULL) {
		pb_console_set_render_func(self->console, NULL, NULL, NULL);
		g_clear_object(&self->console);
	}
	G_OBJECT_CLASS(pb_dashboard_view_parent_class)->dispose(object);
}

static void
pb_dashboard_view_finalize(GObject *object)
{
	PbDashboardView *self = PB_DASHBOARD_VIEW(object);

	g_queue_clear_full(&self->events, (GDestroyNotify)pb_dashboard_event_free);
	g_free(self->listen_url);
	G_OBJECT_CLASS(pb_dashboard_view_parent_class)->finalize(object);
}

static void
pb_dashboard_view_class_init(PbDashboardViewClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = pb_dashboard_view_dispose;
	object_class->finalize = pb_dashboard_view_finalize;
}

static void
pb_dashboard_view_init(PbDashboardView *self)
{
	g_queue_init(&self->events);
	self->started = g_get_real_time();
}

static PbDashboardView *
pb_dashboard_view_new(PbConsole *console)
{
	PbDashboardView *self = g_object_new(PB_TYPE_DASHBOARD_VIEW, NULL);

	self->console = g_object_ref(console);
	pb_console_set_render_func(console, pb_dashboard_view_render_cb, self, NULL);
	return self;
}

/* The client's dashboard: status, URLs, connections, traffic and its events. */
PbDashboardView *
pb_dashboard_view_new_for_client(PbTunnelClient *client, PbConsole *console)
{
	PbDashboardView *self = pb_dashboard_view_new(console);
	const GQueue *history = pb_tunnel_client_get_recent_events(client);

	self->client = g_object_ref(client);
	for (GList *l = history->head; l != NULL; l = l->next) {
		PbTunnelClientEvent *event = l->data;

		pb_dashboard_view_add_event(self, event->time, event->message);
	}
	g_signal_connect(client, "notify", G_CALLBACK(pb_dashboard_view_changed_cb), self);
	g_signal_connect(client, "event", G_CALLBACK(pb_dashboard_view_event_cb), self);
	return self;
}

/* The server's dashboard: its address, its clients and their traffic, and its log. */
PbDashboardView *
pb_dashboard_view_new_for_server(PbTunnelServer *server, const char *listen_url, PbConsole *console)
{
	PbDashboardView *self = pb_dashboard_view_new(console);

	self->server = g_object_ref(server);
	self->listen_url = g_strdup(listen_url);
	return self;
}
