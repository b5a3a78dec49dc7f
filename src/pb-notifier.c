/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-notifier.h"

#include <glib/gi18n.h>

/*
 * A view of a PbTunnelClient as desktop notifications: one when the tunnel comes online,
 * with the access URL, and a line more for each further service (forward --expose). GNotification
 * needs a registered GApplication and a notification service; where there is none (a server, a bare
 * session bus) GLib would warn on every notification, so this asks the bus first and stays quiet,
 * saying so at debug level. In a Flatpak sandbox GLib uses the portal, which is always there.
 */

/* Notification services GLib's backends talk to (gtk, freedesktop). */
#define PB_NOTIFIER_GTK_NAME	     "org.gtk.Notifications"
#define PB_NOTIFIER_FREEDESKTOP_NAME "org.freedesktop.Notifications"

struct _PbNotifier {
	GObject parent_instance;
	PbTunnelClient *client;	   /* (owned) the model */
	GApplication *application; /* (owned) registered, sends the notifications */
	GCancellable *cancellable; /* (owned) for the bus queries */
};

G_DEFINE_FINAL_TYPE(PbNotifier, pb_notifier, G_TYPE_OBJECT)

/* Adds a line: where the public reaches a service, and the local service it reaches. */
static void
pb_notifier_add_line(GString *body, const char *name, const char *access_url, const char *http_url,
		     const char *address)
{
	/* a named service is known by its name: its named URL is the one to share (and the
	 * only one from a names-only server) */
	if ((name != NULL || access_url == NULL) && http_url != NULL)
		access_url = http_url;
	if (access_url == NULL)
		return;
	if (body->len > 0)
		g_string_append_c(body, '\n');
	/* TRANSLATORS: %s is the access URL, tcp://host:port (or the named URL,
	 * https://myapp.tunnel.example.com); %s the local service, host:port */
	g_string_append_printf(body, _("%s now reaches %s"), access_url, address);
}

static void
pb_notifier_send(PbNotifier *self)
{
	g_autoptr(GNotification) notification = g_notification_new(_("Tunnel online"));
	PbClientServices *services = pb_tunnel_client_get_services(self->client);
	g_autoptr(GString) body = g_string_new(NULL);

	if (pb_tunnel_client_get_state(self->client) != PB_TUNNEL_CLIENT_STATE_ONLINE)
		return; /* gone again while the bus answered */
	pb_notifier_add_line(body, pb_tunnel_client_get_name(self->client),
			     pb_tunnel_client_get_access_url(self->client),
			     pb_tunnel_client_get_http_url(self->client),
			     pb_tunnel_client_get_local_address(self->client));
	/* every service's URL: the notification is where a desktop user copies them from */
	for (guint i = 0; i < pb_client_services_get_len(services); i++) {
		const PbClientService *service = pb_client_services_get(services, i);

		pb_notifier_add_line(body, service->name, service->access_url, service->http_url,
				     service->address);
	}
	g_notification_set_body(notification, body->str);
	g_application_send_notification(self->application, "online", notification);
}

static gboolean
pb_notifier_names_contain(GVariant *result, const char *name)
{
	g_autoptr(GVariant) names = g_variant_get_child_value(result, 0);
	gsize n = 0;
	g_autofree const char **strv = g_variant_get_strv(names, &n);

	return g_strv_contains(strv, name);
}

/* The (as) answer of a ListNames-style call, or NULL (said at debug level) if it failed. */
static GVariant *
pb_notifier_names_finish(GObject *source, GAsyncResult *res)
{
	g_autoptr(GError) error = NULL;
	GVariant *result = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

	if (result == NULL && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		g_debug("No notification: %s", error->message);
	return result;
}

static void
pb_notifier_activatable_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(PbNotifier) self = PB_NOTIFIER(user_data);
	g_autoptr(GVariant) result = pb_notifier_names_finish(source, res);

	if (result == NULL)
		return;
	if (!pb_notifier_names_contain(result, PB_NOTIFIER_FREEDESKTOP_NAME)) {
		g_debug("No notification: no notification service on the session bus");
		return;
	}
	pb_notifier_send(self);
}

static void
pb_notifier_names_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(PbNotifier) self = PB_NOTIFIER(user_data);
	g_autoptr(GVariant) result = pb_notifier_names_finish(source, res);

	if (result == NULL)
		return;
	if (pb_notifier_names_contain(result, PB_NOTIFIER_GTK_NAME) ||
	    pb_notifier_names_contain(result, PB_NOTIFIER_FREEDESKTOP_NAME)) {
		pb_notifier_send(self);
		return;
	}
	/* not running, but maybe started on demand */
	g_dbus_connection_call(G_DBUS_CONNECTION(source), "org.freedesktop.DBus",
			       "/org/freedesktop/DBus", "org.freedesktop.DBus",
			       "ListActivatableNames", NULL, G_VARIANT_TYPE("(as)"),
			       G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable,
			       pb_notifier_activatable_cb, g_object_ref(self));
}

static void
pb_notifier_ready_cb(PbTunnelClient *client, const char *access_url, const char *http_url,
		     gpointer user_data)
{
	PbNotifier *self = PB_NOTIFIER(user_data);
	GDBusConnection *connection = g_application_get_dbus_connection(self->application);

	if (g_file_test("/.flatpak-info", G_FILE_TEST_EXISTS)) {
		pb_notifier_send(self); /* the portal */
		return;
	}
	if (connection == NULL) {
		g_debug("No notification: no session bus");
		return;
	}
	g_dbus_connection_call(connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "ListNames", NULL, G_VARIANT_TYPE("(as)"),
			       G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable, pb_notifier_names_cb,
			       g_object_ref(self));
}

static void
pb_notifier_dispose(GObject *object)
{
	PbNotifier *self = PB_NOTIFIER(object);

	g_cancellable_cancel(self->cancellable);
	if (self->client != NULL)
		g_signal_handlers_disconnect_by_data(self->client, self);
	g_clear_object(&self->client);
	g_clear_object(&self->application);
	g_clear_object(&self->cancellable);
	G_OBJECT_CLASS(pb_notifier_parent_class)->dispose(object);
}

static void
pb_notifier_class_init(PbNotifierClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = pb_notifier_dispose;
}

static void
pb_notifier_init(PbNotifier *self)
{
	self->cancellable = g_cancellable_new();
}

/**
 * pb_notifier_new:
 * @client: the model
 * @application: a registered application, not remote
 *
 * Returns: a notifier that tells the desktop when @client comes online.
 */
PbNotifier *
pb_notifier_new(PbTunnelClient *client, GApplication *application)
{
	PbNotifier *self = g_object_new(PB_TYPE_NOTIFIER, NULL);

	g_return_val_if_fail(PB_IS_TUNNEL_CLIENT(client), self);
	g_return_val_if_fail(G_IS_APPLICATION(application), self);
	self->client = g_object_ref(client);
	self->application = g_object_ref(application);
	g_signal_connect(client, "ready", G_CALLBACK(pb_notifier_ready_cb), self);
	return self;
}
