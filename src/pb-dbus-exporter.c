/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-dbus-exporter.h"

#include "pb-dbus-generated.h"

/*
 * A view of a PbTunnelClient on the session bus: interface
 * io.github.piggyback.PiggyBack.Forward1 (data/io.github.piggyback.PiggyBack.Forward1.xml)
 * at PB_DBUS_OBJECT_PATH, under PB_DBUS_BUS_NAME or the first free ".instance<N>".
 *
 * Properties that change now and then are bound to the client's; the counters change with
 * every packet, so they are copied on a timer while the tunnel is online. The generated
 * skeleton sends PropertiesChanged only for values that changed, batched in an idle.
 */

/* Gives up on a bus where this many instances run already. */
#define PB_DBUS_MAX_INSTANCES 1000

struct _PbDbusExporter {
	GObject parent_instance;
	PbTunnelClient *client;	     /* (owned) the model */
	PbDbusForward1 *skeleton;    /* (owned) */
	GDBusConnection *connection; /* (owned) (nullable) once the bus is there */
	GCancellable *cancellable;   /* (owned) for g_bus_get() and name requests */
	char *bus_name;		     /* (owned) (nullable) the name owned, once owned */
	guint instance;		     /* 1 for PB_DBUS_BUS_NAME, N for ".instance<N>" */
	guint counters_id;	     /* the counters' timer, while online */
	gboolean exported;
};

enum { SIGNAL_QUIT_REQUESTED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST] = {0};

enum { PROP_0, PROP_BUS_NAME, PROP_LAST };
static GParamSpec *props[PROP_LAST] = {NULL};

G_DEFINE_FINAL_TYPE(PbDbusExporter, pb_dbus_exporter, G_TYPE_OBJECT)

static void
pb_dbus_exporter_request_name(PbDbusExporter *self);

static void
pb_dbus_exporter_sync_counters(PbDbusExporter *self)
{
	pb_dbus_forward1_set_connections_total(
	    self->skeleton, pb_tunnel_client_get_connections_total(self->client));
	pb_dbus_forward1_set_connections_active(
	    self->skeleton, pb_tunnel_client_get_connections_active(self->client));
	pb_dbus_forward1_set_bytes_in(self->skeleton, pb_tunnel_client_get_bytes_in(self->client));
	pb_dbus_forward1_set_bytes_out(self->skeleton,
				       pb_tunnel_client_get_bytes_out(self->client));
}

static gboolean
pb_dbus_exporter_counters_cb(gpointer user_data)
{
	pb_dbus_exporter_sync_counters(PB_DBUS_EXPORTER(user_data));
	return G_SOURCE_CONTINUE;
}

/* The counters move only while the tunnel is online: the timer runs only then. */
static void
pb_dbus_exporter_state_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	PbDbusExporter *self = PB_DBUS_EXPORTER(user_data);
	gboolean online = pb_tunnel_client_get_state(self->client) == PB_TUNNEL_CLIENT_STATE_ONLINE;

	pb_dbus_exporter_sync_counters(self);
	if (online && self->counters_id == 0)
		self->counters_id =
		    g_timeout_add(PB_DBUS_COUNTER_INTERVAL_MS, pb_dbus_exporter_counters_cb, self);
	else if (!online)
		g_clear_handle_id(&self->counters_id, g_source_remove);
}

static void
pb_dbus_exporter_event_cb(PbTunnelClient *client, gint64 time, const char *message,
			  gpointer user_data)
{
	PbDbusExporter *self = PB_DBUS_EXPORTER(user_data);

	pb_dbus_forward1_emit_event(self->skeleton, time, message);
}

/* D-Bus strings are never NULL: the model's "not yet" is "" on the bus. */
static gboolean
pb_dbus_exporter_string_cb(GBinding *binding, const GValue *from, GValue *to, gpointer user_data)
{
	const char *value = g_value_get_string(from);

	g_value_set_string(to, value != NULL ? value : "");
	return TRUE;
}

static gboolean
pb_dbus_exporter_state_nick_cb(GBinding *binding, const GValue *from, GValue *to,
			       gpointer user_data)
{
	g_autoptr(GEnumClass) klass = g_type_class_ref(PB_TYPE_TUNNEL_CLIENT_STATE);
	GEnumValue *value = g_enum_get_value(klass, g_value_get_enum(from));

	g_value_set_string(to, value != NULL ? value->value_nick : "offline");
	return TRUE;
}

static gboolean
pb_dbus_exporter_handle_get_recent_events_cb(PbDbusForward1 *skeleton,
					     GDBusMethodInvocation *invocation, gpointer user_data)
{
	PbDbusExporter *self = PB_DBUS_EXPORTER(user_data);
	const GQueue *events = pb_tunnel_client_get_recent_events(self->client);
	GVariantBuilder builder;

	g_variant_builder_init(&builder, G_VARIANT_TYPE("a(xs)"));
	for (const GList *l = events->head; l != NULL; l = l->next) {
		const PbTunnelClientEvent *event = l->data;

		g_variant_builder_add(&builder, "(xs)", event->time, event->message);
	}
	pb_dbus_forward1_complete_get_recent_events(skeleton, invocation,
						    g_variant_builder_end(&builder));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
pb_dbus_exporter_handle_reconnect_cb(PbDbusForward1 *skeleton, GDBusMethodInvocation *invocation,
				     gpointer user_data)
{
	PbDbusExporter *self = PB_DBUS_EXPORTER(user_data);

	g_info("Reconnect() called on D-Bus");
	pb_tunnel_client_reconnect(self->client);
	pb_dbus_forward1_complete_reconnect(skeleton, invocation);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* The reply to Quit() is on its way: now the program may end. */
static void
pb_dbus_exporter_quit_flushed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(PbDbusExporter) self = PB_DBUS_EXPORTER(user_data);

	g_dbus_connection_flush_finish(G_DBUS_CONNECTION(source), res, NULL);
	g_signal_emit(self, signals[SIGNAL_QUIT_REQUESTED], 0);
}

static gboolean
pb_dbus_exporter_handle_quit_cb(PbDbusForward1 *skeleton, GDBusMethodInvocation *invocation,
				gpointer user_data)
{
	PbDbusExporter *self = PB_DBUS_EXPORTER(user_data);
	GDBusConnection *connection = g_dbus_method_invocation_get_connection(invocation);

	g_info("Quit() called on D-Bus");
	pb_dbus_forward1_complete_quit(skeleton, invocation);
	g_dbus_connection_flush(connection, NULL, pb_dbus_exporter_quit_flushed_cb,
				g_object_ref(self));
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static char *
pb_dbus_exporter_instance_name(guint instance)
{
	return instance == 1 ? g_strdup(PB_DBUS_BUS_NAME)
			     : g_strdup_printf(PB_DBUS_BUS_NAME ".instance%u", instance);
}

static void
pb_dbus_exporter_request_name_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(PbDbusExporter) self = PB_DBUS_EXPORTER(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) result =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
	guint32 reply = 0;

	if (result == NULL) {
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_info("Not exporting status: cannot own a bus name: %s", error->message);
		return;
	}
	g_variant_get(result, "(u)", &reply);
	if (reply == 1 /* DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER */) {
		self->bus_name = pb_dbus_exporter_instance_name(self->instance);
		g_info("Status on the session bus as %s", self->bus_name);
		g_object_notify_by_pspec(G_OBJECT(self), props[PROP_BUS_NAME]);
		return;
	}
	if (reply != 3 /* DBUS_REQUEST_NAME_REPLY_EXISTS */ ||
	    self->instance >= PB_DBUS_MAX_INSTANCES) {
		g_info("Not exporting status: no free bus name (last answer %u)", reply);
		return;
	}
	self->instance = self->instance == 1 ? 2 : self->instance + 1;
	pb_dbus_exporter_request_name(self);
}

/* Asks for the name of self->instance without queueing; a taken one makes the callback try
 * the next. (Not g_bus_own_name(): GLib 2.74 warns when a name it never got is unowned.) */
static void
pb_dbus_exporter_request_name(PbDbusExporter *self)
{
	g_autofree char *name = pb_dbus_exporter_instance_name(self->instance);

	g_dbus_connection_call(self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "RequestName",
			       g_variant_new("(su)", name, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE),
			       G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable,
			       pb_dbus_exporter_request_name_cb, g_object_ref(self));
}

static void
pb_dbus_exporter_export(PbDbusExporter *self, GDBusConnection *connection)
{
	g_autoptr(GError) error = NULL;

	self->connection = g_object_ref(connection);
	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(self->skeleton), connection,
					      PB_DBUS_OBJECT_PATH, &error)) {
		g_info("Not exporting status on the session bus: %s", error->message);
		return;
	}
	self->exported = TRUE;
	self->instance = 1;
	pb_dbus_exporter_request_name(self);
}

static void
pb_dbus_exporter_bus_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(PbDbusExporter) self = PB_DBUS_EXPORTER(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) connection = g_bus_get_finish(res, &error);

	if (self->cancellable == NULL || g_cancellable_is_cancelled(self->cancellable))
		return; /* stopped meanwhile */
	if (connection == NULL) {
		/* a server or a container: the tunnel works the same without */
		g_debug("No session bus, status not exported: %s", error->message);
		return;
	}
	pb_dbus_exporter_export(self, connection);
}

/**
 * pb_dbus_exporter_start:
 * @connection: (nullable): a bus connection, or %NULL for the session bus
 *
 * Exports the client's status and owns the first free bus name. Without a session bus, it
 * says so at debug level and does nothing more.
 */
void
pb_dbus_exporter_start(PbDbusExporter *self, GDBusConnection *connection)
{
	g_return_if_fail(PB_IS_DBUS_EXPORTER(self));
	g_return_if_fail(self->connection == NULL);

	if (connection != NULL) {
		pb_dbus_exporter_export(self, connection);
		return;
	}
	g_bus_get(G_BUS_TYPE_SESSION, self->cancellable, pb_dbus_exporter_bus_cb,
		  g_object_ref(self));
}

/* Returns: (nullable): the bus name owned, once owned */
const char *
pb_dbus_exporter_get_bus_name(PbDbusExporter *self)
{
	g_return_val_if_fail(PB_IS_DBUS_EXPORTER(self), NULL);
	return self->bus_name;
}

/* Releases the name and withdraws the object. */
void
pb_dbus_exporter_stop(PbDbusExporter *self)
{
	g_return_if_fail(PB_IS_DBUS_EXPORTER(self));

	g_cancellable_cancel(self->cancellable);
	g_clear_handle_id(&self->counters_id, g_source_remove);
	if (self->bus_name != NULL && !g_dbus_connection_is_closed(self->connection)) {
		/* no reply wanted: the name goes with the connection anyway */
		g_dbus_connection_call(self->connection, "org.freedesktop.DBus",
				       "/org/freedesktop/DBus", "org.freedesktop.DBus",
				       "ReleaseName", g_variant_new("(s)", self->bus_name), NULL,
				       G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL, NULL);
	}
	if (self->exported) {
		g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(self->skeleton));
		self->exported = FALSE;
	}
	g_clear_pointer(&self->bus_name, g_free);
	g_clear_object(&self->connection);
}

static void
pb_dbus_exporter_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	PbDbusExporter *self = PB_DBUS_EXPORTER(object);

	switch (prop_id) {
	case PROP_BUS_NAME:
		g_value_set_string(value, self->bus_name);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
		break;
	}
}

static void
pb_dbus_exporter_dispose(GObject *object)
{
	PbDbusExporter *self = PB_DBUS_EXPORTER(object);

	if (self->cancellable != NULL)
		pb_dbus_exporter_stop(self);
	if (self->client != NULL)
		g_signal_handlers_disconnect_by_data(self->client, self);
	if (self->skeleton != NULL)
		g_signal_handlers_disconnect_by_data(self->skeleton, self);
	g_clear_object(&self->skeleton); /* before the client: it ends the bindings */
	g_clear_object(&self->client);
	g_clear_object(&self->cancellable);
	G_OBJECT_CLASS(pb_dbus_exporter_parent_class)->dispose(object);
}

static void
pb_dbus_exporter_class_init(PbDbusExporterClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = pb_dbus_exporter_dispose;
	object_class->get_property = pb_dbus_exporter_get_property;

	/**
	 * PbDbusExporter:bus-name: (nullable)
	 *
	 * The bus name owned, once owned.
	 */
	props[PROP_BUS_NAME] = g_param_spec_string("bus-name", NULL, NULL, NULL,
						   G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY |
						       G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, PROP_LAST, props);

	/**
	 * PbDbusExporter::quit-requested:
	 *
	 * Quit() was called on the bus, and answered: whoever owns the main loop should end
	 * the program.
	 */
	signals[SIGNAL_QUIT_REQUESTED] =
	    g_signal_new("quit-requested", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
			 NULL, NULL, G_TYPE_NONE, 0);
}

static void
pb_dbus_exporter_init(PbDbusExporter *self)
{
	self->cancellable = g_cancellable_new();
	self->skeleton = pb_dbus_forward1_skeleton_new();
}

/* Binds @property of the client to the skeleton's property of the same name. */
static void
pb_dbus_exporter_bind(PbDbusExporter *self, const char *property, GBindingTransformFunc transform)
{
	g_object_bind_property_full(self->client, property, self->skeleton, property,
				    G_BINDING_SYNC_CREATE, transform, NULL, NULL, NULL);
}

/**
 * pb_dbus_exporter_new:
 * @client: the model
 *
 * Returns: an exporter that shows @client on the bus once started.
 */
PbDbusExporter *
pb_dbus_exporter_new(PbTunnelClient *client)
{
	PbDbusExporter *self = g_object_new(PB_TYPE_DBUS_EXPORTER, NULL);

	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(client), self);
	self->client = g_object_ref(client);
	pb_dbus_forward1_set_version(self->skeleton, PACKAGE_VERSION);
	pb_dbus_exporter_bind(self, "state", pb_dbus_exporter_state_nick_cb);
	pb_dbus_exporter_bind(self, "server-url", pb_dbus_exporter_string_cb);
	pb_dbus_exporter_bind(self, "local-address", pb_dbus_exporter_string_cb);
	pb_dbus_exporter_bind(self, "access-url", pb_dbus_exporter_string_cb);
	pb_dbus_exporter_bind(self, "http-url", pb_dbus_exporter_string_cb);
	pb_dbus_exporter_bind(self, "name", pb_dbus_exporter_string_cb);
	pb_dbus_exporter_bind(self, "public-host", pb_dbus_exporter_string_cb);
	pb_dbus_exporter_bind(self, "tunnel-port", NULL);
	pb_dbus_exporter_bind(self, "connected-since", NULL);
	pb_dbus_exporter_bind(self, "services", NULL);
	pb_dbus_exporter_sync_counters(self);
	g_signal_connect(client, "notify::state", G_CALLBACK(pb_dbus_exporter_state_cb), self);
	g_signal_connect(client, "event", G_CALLBACK(pb_dbus_exporter_event_cb), self);
	g_signal_connect(self->skeleton, "handle-get-recent-events",
			 G_CALLBACK(pb_dbus_exporter_handle_get_recent_events_cb), self);
	g_signal_connect(self->skeleton, "handle-reconnect",
			 G_CALLBACK(pb_dbus_exporter_handle_reconnect_cb), self);
	g_signal_connect(self->skeleton, "handle-quit", G_CALLBACK(pb_dbus_exporter_handle_quit_cb),
			 self);
	if (pb_tunnel_client_get_state(client) == PB_TUNNEL_CLIENT_STATE_ONLINE)
		pb_dbus_exporter_state_cb(G_OBJECT(client), NULL, self);
	return self;
}
