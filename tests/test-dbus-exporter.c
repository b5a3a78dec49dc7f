/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "pb-dbus-exporter.h"
#include "pb-dbus-generated.h"
#include "pb-frame.h"
#include "pb-test-utils.h"
#include "pb-tunnel-client.h"
#include "pb-tunnel-server.h"

/*
 * The client's status on a private session bus (GTestDBus): a real PbTunnelServer and
 * PbTunnelClient on loopback, a PbDbusExporter on one bus connection, and what a desktop
 * applet would see through a generated proxy on another. Proxies are created
 * asynchronously: a synchronous one would wait for the service on this very thread.
 * The last tests run the real `piggyback-forward` program.
 */

typedef struct {
	GTestDBus *bus;		  /* (owned) (nullable) NULL without dbus-daemon */
	GDBusConnection *service; /* (owned) (nullable) the exporter's connection */
	GDBusConnection *applet;  /* (owned) (nullable) the proxies' connection */
	PbTunnelServer *server;	  /* (owned) */
	PbTestService *echo;	  /* (owned) */
	PbTunnelClient *client;	  /* (owned) */
	PbDbusExporter *exporter; /* (owned) */
	PbDbusForward1 *proxy;	  /* (owned) (nullable) */
	GPtrArray *states;	  /* (owned) char*: State values PropertiesChanged brought */
	GPtrArray *names;	  /* (owned) char*: Name values PropertiesChanged brought */
	GPtrArray *events;	  /* (owned) char*: Event messages */
	guint n_changed;	  /* PropertiesChanged signals */
	guint n_bytes_changed;	  /* ... that carried BytesIn or BytesOut */
	guint n_services_changed; /* ... that carried Services */
	gboolean quit_requested;
} DbusFixture;

static GDBusConnection *
dbus_connect(DbusFixture *fx)
{
	g_autoptr(GError) error = NULL;
	GDBusConnection *connection = g_dbus_connection_new_for_address_sync(
	    g_test_dbus_get_bus_address(fx->bus),
	    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
		G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	    NULL, NULL, &error);

	g_assert_no_error(error);
	return connection;
}

static void
dbus_set_up(DbusFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dbus_daemon = g_find_program_in_path("dbus-daemon");
	g_autofree char *url = NULL;

	if (dbus_daemon != NULL) {
		fx->bus = g_test_dbus_new(G_TEST_DBUS_NONE);
		g_test_dbus_up(fx->bus);
		fx->service = dbus_connect(fx);
		fx->applet = dbus_connect(fx);
	}
	fx->server = pb_tunnel_server_new(0, "127.0.0.1", 0, NULL);
	pb_tunnel_server_set_listen_host(fx->server, "127.0.0.1");
	/* @user_data: a --domain, for named tunnels */
	pb_tunnel_server_set_domain(fx->server, user_data, -1, -1);
	g_assert_true(pb_tunnel_server_start(fx->server, &error));
	g_assert_no_error(error);
	fx->echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	url =
	    g_strdup_printf("ws://127.0.0.1:%u" PB_WS_PATH, pb_tunnel_server_get_port(fx->server));
	fx->client = pb_tunnel_client_new(url, "127.0.0.1", pb_test_service_get_port(fx->echo));
	fx->exporter = pb_dbus_exporter_new(fx->client);
	fx->states = g_ptr_array_new_with_free_func(g_free);
	fx->names = g_ptr_array_new_with_free_func(g_free);
	fx->events = g_ptr_array_new_with_free_func(g_free);
}

static void
dbus_tear_down(DbusFixture *fx, gconstpointer user_data)
{
	if (fx->proxy != NULL)
		g_signal_handlers_disconnect_by_data(fx->proxy, fx);
	g_clear_object(&fx->proxy);
	pb_dbus_exporter_stop(fx->exporter);
	g_clear_object(&fx->exporter);
	pb_tunnel_client_close(fx->client);
	g_clear_object(&fx->client);
	pb_tunnel_server_stop(fx->server);
	pb_test_wait_until(pb_tunnel_server_get_n_clients(fx->server) == 0, 10);
	g_clear_object(&fx->server);
	pb_test_service_free(fx->echo);
	g_ptr_array_unref(fx->states);
	g_ptr_array_unref(fx->names);
	g_ptr_array_unref(fx->events);
	pb_test_settle();
	if (fx->bus != NULL) {
		g_dbus_connection_close_sync(fx->service, NULL, NULL);
		g_dbus_connection_close_sync(fx->applet, NULL, NULL);
		g_clear_object(&fx->service);
		g_clear_object(&fx->applet);
		g_test_dbus_down(fx->bus);
		g_clear_object(&fx->bus);
	}
}

static gboolean
dbus_skip_without_bus(DbusFixture *fx)
{
	if (fx->bus != NULL)
		return FALSE;
	g_test_skip("dbus-daemon not installed");
	return TRUE;
}

static void
dbus_properties_changed_cb(GDBusProxy *proxy, GVariant *changed, GStrv invalidated,
			   gpointer user_data)
{
	DbusFixture *fx = user_data;
	const char *state = NULL;
	const char *name = NULL;

	fx->n_changed++;
	if (g_variant_lookup(changed, "State", "&s", &state))
		g_ptr_array_add(fx->states, g_strdup(state));
	if (g_variant_lookup(changed, "Name", "&s", &name))
		g_ptr_array_add(fx->names, g_strdup(name));
	if (g_variant_lookup(changed, "Services", "@a(ssss)", NULL))
		fx->n_services_changed++;
	if (g_variant_lookup(changed, "BytesIn", "t", NULL) ||
	    g_variant_lookup(changed, "BytesOut", "t", NULL))
		fx->n_bytes_changed++;
}

static void
dbus_event_cb(PbDbusForward1 *proxy, gint64 time, const char *message, gpointer user_data)
{
	DbusFixture *fx = user_data;

	g_assert_cmpint(time, >, 0);
	g_ptr_array_add(fx->events, g_strdup(message));
}

static void
dbus_proxy_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	DbusFixture *fx = user_data;
	g_autoptr(GError) error = NULL;

	fx->proxy = pb_dbus_forward1_proxy_new_finish(res, &error);
	g_assert_no_error(error);
}

/* Exports the client, waits for its name, and makes a proxy for it as an applet would. */
static void
dbus_export(DbusFixture *fx)
{
	pb_dbus_exporter_start(fx->exporter, fx->service);
	pb_test_wait_until(pb_dbus_exporter_get_bus_name(fx->exporter) != NULL, 10);
	g_assert_cmpstr(pb_dbus_exporter_get_bus_name(fx->exporter), ==,
			"io.github.piggyback.PiggyBack.Forward");
	pb_dbus_forward1_proxy_new(
	    fx->applet, G_DBUS_PROXY_FLAGS_NONE, "io.github.piggyback.PiggyBack.Forward",
	    "/io/github/piggyback/PiggyBack/Forward", NULL, dbus_proxy_cb, fx);
	pb_test_wait_until(fx->proxy != NULL, 10);
	g_signal_connect(fx->proxy, "g-properties-changed", G_CALLBACK(dbus_properties_changed_cb),
			 fx);
	g_signal_connect(fx->proxy, "event", G_CALLBACK(dbus_event_cb), fx);
}

static gboolean
dbus_saw_state(DbusFixture *fx, const char *state)
{
	for (guint i = 0; i < fx->states->len; i++) {
		if (g_strcmp0(g_ptr_array_index(fx->states, i), state) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean
dbus_saw_event(DbusFixture *fx, const char *prefix)
{
	for (guint i = 0; i < fx->events->len; i++) {
		if (g_str_has_prefix(g_ptr_array_index(fx->events, i), prefix))
			return TRUE;
	}
	return FALSE;
}

static void
dbus_go_online(DbusFixture *fx)
{
	pb_tunnel_client_connect_async(fx->client, NULL, NULL, NULL);
	pb_test_wait_until(g_strcmp0(pb_dbus_forward1_get_state(fx->proxy), "online") == 0, 10);
}

static void
test_dbus_online(DbusFixture *fx, gconstpointer user_data)
{
	g_autofree char *expected = NULL;
	const char *access_url;

	g_test_summary("An applet sees the client go online, with the access URL HELLO gave, "
		       "through PropertiesChanged and Event");
	if (dbus_skip_without_bus(fx))
		return;
	dbus_export(fx);
	g_assert_cmpstr(pb_dbus_forward1_get_version(fx->proxy), ==, PACKAGE_VERSION);
	g_assert_cmpstr(pb_dbus_forward1_get_state(fx->proxy), ==, "offline");
	g_assert_cmpstr(pb_dbus_forward1_get_access_url(fx->proxy), ==, "");
	g_assert_cmpint(pb_dbus_forward1_get_connected_since(fx->proxy), ==, 0);

	dbus_go_online(fx);
	g_assert_true(dbus_saw_state(fx, "connecting"));
	access_url = pb_dbus_forward1_get_access_url(fx->proxy);
	g_assert_cmpstr(access_url, ==, pb_tunnel_client_get_access_url(fx->client));
	expected =
	    g_strdup_printf("tcp://127.0.0.1:%u", pb_dbus_forward1_get_tunnel_port(fx->proxy));
	g_assert_cmpstr(access_url, ==, expected);
	g_assert_cmpuint(pb_dbus_forward1_get_tunnel_port(fx->proxy), >, 0);
	g_assert_cmpstr(pb_dbus_forward1_get_public_host(fx->proxy), ==, "127.0.0.1");
	g_assert_true(g_str_has_prefix(pb_dbus_forward1_get_http_url(fx->proxy), "http://"));
	/* a server without --domain gives no names */
	g_assert_cmpstr(pb_dbus_forward1_get_name(fx->proxy), ==, "");
	g_assert_cmpuint(fx->names->len, ==, 0);
	g_assert_cmpstr(pb_dbus_forward1_get_server_url(fx->proxy), ==,
			pb_tunnel_client_get_server_url(fx->client));
	g_assert_cmpstr(pb_dbus_forward1_get_local_address(fx->proxy), ==,
			pb_tunnel_client_get_local_address(fx->client));
	g_assert_cmpint(pb_dbus_forward1_get_connected_since(fx->proxy), >, 0);
	g_assert_cmpuint(fx->n_changed, >, 0);
	pb_test_wait_until(dbus_saw_event(fx, "Online at tcp://127.0.0.1:"), 10);
	g_assert_true(dbus_saw_event(fx, "Connecting to ws://127.0.0.1:"));
}

static void
test_dbus_name(DbusFixture *fx, gconstpointer user_data)
{
	g_autofree char *http_url = NULL;

	g_test_summary("With a server with --domain, an applet sees the tunnel's Name and its "
		       "named HttpUrl through PropertiesChanged, and Name empty again offline");
	if (dbus_skip_without_bus(fx))
		return;
	pb_tunnel_client_set_features(fx->client, PB_FEATURES_ALL | PB_FEATURE_NAME);
	pb_tunnel_client_set_name(fx->client, "alpha");
	dbus_export(fx);
	g_assert_cmpstr(pb_dbus_forward1_get_name(fx->proxy), ==, "");

	dbus_go_online(fx);
	g_assert_cmpstr(pb_tunnel_client_get_name(fx->client), ==, "alpha");
	pb_test_wait_until(fx->names->len > 0, 10);
	g_assert_cmpstr(g_ptr_array_index(fx->names, 0), ==, "alpha");
	g_assert_cmpstr(pb_dbus_forward1_get_name(fx->proxy), ==, "alpha");
	http_url =
	    g_strdup_printf("http://alpha.example.test:%u", pb_tunnel_server_get_port(fx->server));
	g_assert_cmpstr(pb_dbus_forward1_get_http_url(fx->proxy), ==, http_url);
	pb_test_wait_until(dbus_saw_event(fx, "Named alpha: http://alpha.example.test:"), 10);

	pb_tunnel_server_stop(fx->server);
	pb_test_wait_until(g_strcmp0(pb_dbus_forward1_get_state(fx->proxy), "offline") == 0, 10);
	pb_test_wait_until(fx->names->len > 1, 10);
	g_assert_cmpstr(g_ptr_array_index(fx->names, fx->names->len - 1), ==, "");
	g_assert_cmpstr(pb_dbus_forward1_get_name(fx->proxy), ==, "");
	g_assert_null(pb_tunnel_client_get_name(fx->client));
}

static void
test_dbus_name_not_given(DbusFixture *fx, gconstpointer user_data)
{
	g_test_summary("A name asked for from a server without --domain is no Name: it stays "
		       "empty, and HttpUrl is the port's");
	if (dbus_skip_without_bus(fx))
		return;
	pb_tunnel_client_set_features(fx->client, PB_FEATURES_ALL | PB_FEATURE_NAME);
	pb_tunnel_client_set_name(fx->client, "alpha");
	dbus_export(fx);
	dbus_go_online(fx);
	g_assert_null(pb_tunnel_client_get_name(fx->client));
	g_assert_cmpstr(pb_dbus_forward1_get_name(fx->proxy), ==, "");
	g_assert_cmpuint(fx->names->len, ==, 0);
	g_assert_true(
	    g_str_has_prefix(pb_dbus_forward1_get_http_url(fx->proxy), "http://127.0.0.1:"));
}

static void
dbus_events_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GVariant **events = user_data;
	g_autoptr(GError) error = NULL;

	g_assert_true(pb_dbus_forward1_call_get_recent_events_finish(PB_DBUS_FORWARD1(source),
								     events, res, &error));
	g_assert_no_error(error);
}

static void
test_dbus_recent_events(DbusFixture *fx, gconstpointer user_data)
{
	g_autoptr(GVariant) events = NULL;
	GVariantIter iter;
	gint64 time = 0;
	gint64 last = 0;
	const char *message = NULL;
	gboolean online = FALSE;

	g_test_summary("GetRecentEvents() returns what Event said, oldest first");
	if (dbus_skip_without_bus(fx))
		return;
	dbus_export(fx);
	dbus_go_online(fx);
	pb_dbus_forward1_call_get_recent_events(fx->proxy, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
						dbus_events_cb, &events);
	pb_test_wait_until(events != NULL, 10);
	g_assert_cmpuint(g_variant_n_children(events), >=, 2);
	g_variant_iter_init(&iter, events);
	while (g_variant_iter_next(&iter, "(x&s)", &time, &message)) {
		g_assert_cmpint(time, >=, last);
		last = time;
		online = online || g_str_has_prefix(message, "Online at tcp://");
	}
	g_assert_true(online);
}

typedef struct {
	guint16 port;
	gint64 duration; /* µs */
} Traffic;

/* Echoes 64 KiB blocks through the tunnel for traffic->duration; returns the bytes. */
static gpointer
dbus_traffic_cb(gpointer user_data)
{
	Traffic *traffic = user_data;
	g_autoptr(GSocket) socket = pb_test_connect(traffic->port);
	gint64 end = g_get_monotonic_time() + traffic->duration;
	g_autofree guint8 *buf = g_malloc0(64 * 1024);
	gsize total = 0;

	while (g_get_monotonic_time() < end) {
		gsize got = 0;

		g_assert_cmpint(g_socket_send(socket, (char *)buf, 64 * 1024, NULL, NULL), ==,
				64 * 1024);
		while (got < 64 * 1024) {
			gssize n =
			    g_socket_receive(socket, (char *)buf, 64 * 1024 - got, NULL, NULL);

			g_assert_cmpint(n, >, 0);
			got += (gsize)n;
		}
		total += got;
	}
	return GSIZE_TO_POINTER(total);
}

static void
test_dbus_counters(DbusFixture *fx, gconstpointer user_data)
{
	Traffic traffic = {0, 2 * G_USEC_PER_SEC};
	gint64 start;
	double seconds;
	gsize total;

	g_test_summary("Byte and connection counters reach the bus, at most 4 times a second "
		       "while a connection is busy");
	if (dbus_skip_without_bus(fx))
		return;
	dbus_export(fx);
	dbus_go_online(fx);
	traffic.port = (guint16)pb_dbus_forward1_get_tunnel_port(fx->proxy);
	fx->n_bytes_changed = 0;
	start = g_get_monotonic_time();
	total = GPOINTER_TO_SIZE(pb_test_run_in_thread(dbus_traffic_cb, &traffic, 20));
	seconds = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
	g_assert_cmpuint(total, >, 0);
	g_test_message("%u PropertiesChanged with byte counters in %.2f s", fx->n_bytes_changed,
		       seconds);
	g_assert_cmpuint(fx->n_bytes_changed, >=, 2);
	g_assert_cmpfloat(fx->n_bytes_changed, <=, 4 * seconds + 2);
	pb_test_wait_until(pb_dbus_forward1_get_bytes_in(fx->proxy) == total &&
			       pb_dbus_forward1_get_bytes_out(fx->proxy) == total,
			   10);
	g_assert_cmpuint(pb_dbus_forward1_get_connections_total(fx->proxy), ==, 1);
	pb_test_wait_until(pb_dbus_forward1_get_connections_active(fx->proxy) == 0, 10);
}

static void
test_dbus_instances(DbusFixture *fx, gconstpointer user_data)
{
	g_autoptr(GDBusConnection) second_bus = NULL;
	g_autoptr(GDBusConnection) third_bus = NULL;
	g_autoptr(PbDbusExporter) second = NULL;
	g_autoptr(PbDbusExporter) third = NULL;

	g_test_summary("A second and third client on the bus own .instance2 and .instance3");
	if (dbus_skip_without_bus(fx))
		return;
	second_bus = dbus_connect(fx);
	third_bus = dbus_connect(fx);
	second = pb_dbus_exporter_new(fx->client);
	third = pb_dbus_exporter_new(fx->client);
	dbus_export(fx);
	pb_dbus_exporter_start(second, second_bus);
	pb_test_wait_until(pb_dbus_exporter_get_bus_name(second) != NULL, 10);
	pb_dbus_exporter_start(third, third_bus);
	pb_test_wait_until(pb_dbus_exporter_get_bus_name(third) != NULL, 10);
	g_assert_cmpstr(pb_dbus_exporter_get_bus_name(second), ==,
			"io.github.piggyback.PiggyBack.Forward.instance2");
	g_assert_cmpstr(pb_dbus_exporter_get_bus_name(third), ==,
			"io.github.piggyback.PiggyBack.Forward.instance3");
	pb_dbus_exporter_stop(second);
	pb_dbus_exporter_stop(third);
	g_dbus_connection_close_sync(second_bus, NULL, NULL);
	g_dbus_connection_close_sync(third_bus, NULL, NULL);
}

static void
dbus_quit_requested_cb(PbDbusExporter *exporter, gpointer user_data)
{
	DbusFixture *fx = user_data;

	fx->quit_requested = TRUE;
}

static void
dbus_called_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	gboolean *done = user_data;
	g_autoptr(GError) error = NULL;
	G_GNUC_UNUSED g_autoptr(GVariant) result =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

	g_assert_no_error(error);
	*done = TRUE;
}

static void
dbus_call(GDBusConnection *connection, const char *bus_name, const char *method)
{
	gboolean done = FALSE;

	g_dbus_connection_call(connection, bus_name, "/io/github/piggyback/PiggyBack/Forward",
			       "io.github.piggyback.PiggyBack.Forward1", method, NULL, NULL,
			       G_DBUS_CALL_FLAGS_NONE, 10000, NULL, dbus_called_cb, &done);
	pb_test_wait_until(done, 10);
}

static void
test_dbus_quit(DbusFixture *fx, gconstpointer user_data)
{
	g_test_summary("Quit() is answered, then asks the program to end");
	if (dbus_skip_without_bus(fx))
		return;
	g_signal_connect(fx->exporter, "quit-requested", G_CALLBACK(dbus_quit_requested_cb), fx);
	dbus_export(fx);
	g_assert_false(fx->quit_requested);
	dbus_call(fx->applet, "io.github.piggyback.PiggyBack.Forward", "Quit");
	pb_test_wait_until(fx->quit_requested, 10);
}

static void
test_dbus_reconnect(DbusFixture *fx, gconstpointer user_data)
{
	gint64 since;

	g_test_summary("Reconnect() closes the tunnel and opens a new one");
	if (dbus_skip_without_bus(fx))
		return;
	dbus_export(fx);
	dbus_go_online(fx);
	since = pb_dbus_forward1_get_connected_since(fx->proxy);
	g_ptr_array_set_size(fx->states, 0);
	dbus_call(fx->applet, "io.github.piggyback.PiggyBack.Forward", "Reconnect");
	pb_test_wait_until(dbus_saw_state(fx, "reconnecting") &&
			       g_strcmp0(pb_dbus_forward1_get_state(fx->proxy), "online") == 0,
			   10);
	g_assert_cmpint(pb_dbus_forward1_get_connected_since(fx->proxy), >, since);
	g_assert_cmpstr(pb_dbus_forward1_get_access_url(fx->proxy), ==,
			pb_tunnel_client_get_access_url(fx->client));
	pb_test_wait_until(pb_tunnel_server_get_n_clients(fx->server) == 1, 10);
}

static void
test_dbus_offline(DbusFixture *fx, gconstpointer user_data)
{
	g_test_summary("When the server goes away, an applet sees State offline, no AccessUrl "
		       "and an Offline event");
	if (dbus_skip_without_bus(fx))
		return;
	dbus_export(fx);
	dbus_go_online(fx);
	pb_tunnel_server_stop(fx->server);
	pb_test_wait_until(g_strcmp0(pb_dbus_forward1_get_state(fx->proxy), "offline") == 0, 10);
	g_assert_cmpstr(pb_dbus_forward1_get_access_url(fx->proxy), ==, "");
	g_assert_cmpuint(pb_dbus_forward1_get_tunnel_port(fx->proxy), ==, 0);
	g_assert_cmpint(pb_dbus_forward1_get_connected_since(fx->proxy), ==, 0);
	pb_test_wait_until(dbus_saw_event(fx, "Offline: "), 10);
}

/* Service @index of the proxy's Services: (name, local address, access URL, HTTP URL). */
static void
dbus_get_service(DbusFixture *fx, guint index, const char **name, const char **address,
		 const char **access_url, const char **http_url)
{
	GVariant *services = pb_dbus_forward1_get_services(fx->proxy);

	g_assert_nonnull(services);
	g_assert_cmpuint(index, <, g_variant_n_children(services));
	g_variant_get_child(services, index, "(&s&s&s&s)", name, address, access_url, http_url);
}

static gboolean
dbus_service_online(DbusFixture *fx, guint index)
{
	const char *name, *address, *access_url, *http_url;

	dbus_get_service(fx, index, &name, &address, &access_url, &http_url);
	return *access_url != '\0';
}

/* Echoes "ping" through the public @port, in a thread. */
static gboolean
dbus_ping(guint16 port);

static void
test_dbus_services(DbusFixture *fx, gconstpointer user_data)
{
	PbTestService *db = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autofree char *db_address = g_strdup_printf("127.0.0.1:%u", pb_test_service_get_port(db));
	g_autofree char *db_http = NULL;
	g_autofree char *db_access = NULL;
	g_autoptr(PbServiceSpec) spec =
	    pb_service_spec_new("db", "127.0.0.1", pb_test_service_get_port(db));
	const char *name, *address, *access_url, *http_url;
	const PbClientService *further;
	PbServiceStats stats[2];
	guint n_changed;

	g_test_summary("Services lists every service, the first first, with its name, local "
		       "address and URLs; PropertiesChanged brings it online, on a reconnection "
		       "and offline; AccessUrl and HttpUrl stay the first one's");
	if (dbus_skip_without_bus(fx)) {
		pb_test_service_free(db);
		return;
	}
	pb_tunnel_client_set_features(fx->client, PB_FEATURES_ALL | PB_FEATURE_NAME);
	pb_tunnel_client_set_name(fx->client, "alpha");
	pb_tunnel_client_add_service(fx->client, spec);
	dbus_export(fx);
	g_assert_cmpuint(g_variant_n_children(pb_dbus_forward1_get_services(fx->proxy)), ==, 2);
	dbus_get_service(fx, 0, &name, &address, &access_url, &http_url);
	g_assert_cmpstr(name, ==, "");
	g_assert_cmpstr(address, ==, pb_tunnel_client_get_local_address(fx->client));
	g_assert_cmpstr(access_url, ==, "");
	g_assert_cmpstr(http_url, ==, "");
	dbus_get_service(fx, 1, &name, &address, &access_url, &http_url);
	g_assert_cmpstr(name, ==, "");
	g_assert_cmpstr(address, ==, db_address);
	g_assert_cmpstr(access_url, ==, "");

	dbus_go_online(fx);
	pb_test_wait_until(dbus_service_online(fx, 1), 10);
	g_assert_cmpuint(fx->n_services_changed, >, 0);
	further = pb_client_services_get(pb_tunnel_client_get_services(fx->client), 0);
	dbus_get_service(fx, 0, &name, &address, &access_url, &http_url);
	g_assert_cmpstr(name, ==, "alpha");
	g_assert_cmpstr(access_url, ==, pb_dbus_forward1_get_access_url(fx->proxy));
	g_assert_cmpstr(http_url, ==, pb_dbus_forward1_get_http_url(fx->proxy));
	dbus_get_service(fx, 1, &name, &address, &access_url, &http_url);
	g_assert_cmpstr(name, ==, "db");
	g_assert_cmpstr(address, ==, db_address);
	g_assert_cmpstr(access_url, ==, further->access_url);
	g_assert_true(g_str_has_prefix(access_url, "tcp://127.0.0.1:"));
	g_assert_cmpstr(access_url, !=, pb_dbus_forward1_get_access_url(fx->proxy));
	db_http =
	    g_strdup_printf("http://db.example.test:%u", pb_tunnel_server_get_port(fx->server));
	g_assert_cmpstr(http_url, ==, db_http);
	db_access = g_strdup(access_url);

	/* the counters are per service too */
	g_assert_true(dbus_ping((guint16)g_ascii_strtoull(strrchr(db_access, ':') + 1, NULL, 10)));
	g_assert_true(dbus_ping((guint16)g_ascii_strtoull(strrchr(db_access, ':') + 1, NULL, 10)));
	g_assert_true(dbus_ping((guint16)pb_tunnel_client_get_tunnel_port(fx->client)));
	pb_test_wait_until(pb_tunnel_client_get_connections_active(fx->client) == 0, 10);
	pb_tunnel_client_get_service_stats(fx->client, stats, 2);
	g_assert_cmpuint(stats[0].streams_total, ==, 1);
	g_assert_cmpuint(stats[1].streams_total, ==, 2);
	g_assert_cmpuint(stats[0].bytes_in, ==, 4);
	g_assert_cmpuint(stats[0].bytes_out, ==, 4);
	g_assert_cmpuint(stats[1].bytes_in, ==, 8);
	g_assert_cmpuint(stats[1].bytes_out, ==, 8);
	g_assert_cmpuint(stats[0].streams_open + stats[1].streams_open, ==, 0);
	g_assert_cmpuint(stats[0].bytes_in + stats[1].bytes_in, ==,
			 pb_tunnel_client_get_bytes_in(fx->client));

	/* a reconnection empties the URLs, then brings them back */
	n_changed = fx->n_services_changed;
	pb_tunnel_client_reconnect(fx->client);
	pb_test_wait_until(fx->n_services_changed >= n_changed + 2 && dbus_service_online(fx, 1),
			   10);
	dbus_get_service(fx, 1, &name, &address, &access_url, &http_url);
	g_assert_cmpstr(name, ==, "db");
	/* and the counters go on over tunnels */
	pb_tunnel_client_get_service_stats(fx->client, stats, 2);
	g_assert_cmpuint(stats[1].streams_total, ==, 2);
	g_assert_cmpuint(stats[1].bytes_in, ==, 8);

	pb_tunnel_server_stop(fx->server);
	pb_test_wait_until(g_strcmp0(pb_dbus_forward1_get_state(fx->proxy), "offline") == 0, 10);
	pb_test_wait_until(!dbus_service_online(fx, 1), 10);
	dbus_get_service(fx, 1, &name, &address, &access_url, &http_url);
	g_assert_cmpstr(name, ==, "");
	g_assert_cmpstr(address, ==, db_address);
	g_assert_cmpstr(http_url, ==, "");
	dbus_get_service(fx, 0, &name, &address, &access_url, &http_url);
	g_assert_cmpstr(access_url, ==, "");
	pb_test_service_free(db);
}

/* --- the real program --------------------------------------------------------------- */

/* Runs piggyback-forward against the fixture's server, with @bus_address as session bus,
 * asking for @name and exposing @expose too (both nullable). */
static PbTestProc *
proc_start_forward_full(DbusFixture *fx, const char *bus_address, gboolean no_dbus,
			const char *name, const char *expose)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_autofree char *server =
	    g_strdup_printf("127.0.0.1:%u", pb_tunnel_server_get_port(fx->server));
	g_autofree char *port = g_strdup_printf("%u", pb_test_service_get_port(fx->echo));
	const char *path = g_getenv("PB_PIGGYBACK_FORWARD");
	const char *const base[] = {path, "--host",   "127.0.0.1", "--port",
				    port, "--server", server};
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_assert_nonnull(path);
	g_subprocess_launcher_setenv(launcher, "DBUS_SESSION_BUS_ADDRESS", bus_address, TRUE);
	g_subprocess_launcher_setenv(launcher, "G_MESSAGES_DEBUG", "piggyback", TRUE);
	g_subprocess_launcher_setenv(launcher, "G_DEBUG", "fatal-warnings", TRUE);
	g_subprocess_launcher_setenv(launcher, "LC_ALL", "C", TRUE);
	for (guint i = 0; i < G_N_ELEMENTS(base); i++)
		g_ptr_array_add(argv, (gpointer)base[i]);
	if (no_dbus)
		g_ptr_array_add(argv, "--no-dbus");
	if (name != NULL) {
		g_ptr_array_add(argv, "--name");
		g_ptr_array_add(argv, (gpointer)name);
	}
	if (expose != NULL) {
		g_ptr_array_add(argv, "--expose");
		g_ptr_array_add(argv, (gpointer)expose);
	}
	g_ptr_array_add(argv, NULL);
	return pb_test_proc_spawnv(launcher, (const char *const *)argv->pdata);
}

static PbTestProc *
proc_start_forward_named(DbusFixture *fx, const char *bus_address, gboolean no_dbus,
			 const char *name)
{
	return proc_start_forward_full(fx, bus_address, no_dbus, name, NULL);
}

static PbTestProc *
proc_start_forward(DbusFixture *fx, const char *bus_address, gboolean no_dbus)
{
	return proc_start_forward_named(fx, bus_address, no_dbus, NULL);
}

/* Sends a few bytes to the public port and reads them back; returns TRUE if they came. */
static gpointer
dbus_echo_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect((guint16)GPOINTER_TO_UINT(user_data));
	char buf[5] = {0};
	gsize got = 0;

	g_assert_cmpint(g_socket_send(socket, "ping", 4, NULL, NULL), ==, 4);
	while (got < 4) {
		gssize n = g_socket_receive(socket, buf + got, 4 - got, NULL, NULL);

		if (n <= 0)
			return GINT_TO_POINTER(FALSE);
		got += (gsize)n;
	}
	return GINT_TO_POINTER(strcmp(buf, "ping") == 0);
}

static gboolean
dbus_ping(guint16 port)
{
	return GPOINTER_TO_INT(pb_test_run_in_thread(dbus_echo_cb, GUINT_TO_POINTER(port), 10));
}

/* The public port from the program's "Access URL: tcp://127.0.0.1:PORT" line. */
static guint
dbus_proc_public_port(PbTestProc *proc)
{
	const char *prefix = "Access URL: tcp://127.0.0.1:";
	const char *line = strstr(pb_test_proc_get_output(proc), prefix);

	g_assert_nonnull(line);
	return (guint)g_ascii_strtoull(line + strlen(prefix), NULL, 10);
}

static void
test_dbus_no_bus(DbusFixture *fx, gconstpointer user_data)
{
	g_autofree char *dir = g_dir_make_tmp("pb-no-bus-XXXXXX", NULL);
	g_autofree char *socket = g_build_filename(dir, "no-bus", NULL);
	g_autofree char *address = g_strdup_printf("unix:path=%s", socket);
	PbTestProc *proc;

	g_test_summary("Without a session bus the program says so once, at debug level, and "
		       "tunnels as before");
	proc = proc_start_forward(fx, address, FALSE);
	pb_test_wait_until(pb_test_proc_said(proc, "Access URL: tcp://127.0.0.1:") ||
			       pb_test_proc_exited(proc),
			   10);
	g_assert_false(pb_test_proc_exited(proc));
	pb_test_wait_until(pb_test_proc_said(proc, "No session bus"), 10);
	g_assert_true(strstr(pb_test_proc_get_output(proc), "No session bus") ==
		      g_strrstr(pb_test_proc_get_output(proc), "No session bus"));
	g_assert_true(GPOINTER_TO_INT(pb_test_run_in_thread(
	    dbus_echo_cb, GUINT_TO_POINTER(dbus_proc_public_port(proc)), 10)));
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
	g_rmdir(dir);
}

static void
dbus_name_appeared_cb(GDBusConnection *connection, const char *name, const char *owner,
		      gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
}

static void
test_dbus_program_quit(DbusFixture *fx, gconstpointer user_data)
{
	gboolean appeared = FALSE;
	guint watch;
	PbTestProc *proc;

	g_test_summary("piggyback-forward owns its name on the session bus, and Quit() ends it "
		       "with status 0");
	if (dbus_skip_without_bus(fx))
		return;
	watch = g_bus_watch_name_on_connection(fx->applet, "io.github.piggyback.PiggyBack.Forward",
					       G_BUS_NAME_WATCHER_FLAGS_NONE, dbus_name_appeared_cb,
					       NULL, &appeared, NULL);
	proc = proc_start_forward(fx, g_test_dbus_get_bus_address(fx->bus), FALSE);
	pb_test_wait_until(appeared || pb_test_proc_exited(proc), 10);
	g_assert_true(appeared);
	pb_test_wait_until(pb_test_proc_said(proc, "Access URL: tcp://127.0.0.1:") ||
			       pb_test_proc_exited(proc),
			   10);
	/* no notification service on this bus: no warning (they are fatal here) */
	pb_test_wait_until(pb_test_proc_said(proc, "No notification: no notification service") ||
			       pb_test_proc_exited(proc),
			   10);
	dbus_call(fx->applet, "io.github.piggyback.PiggyBack.Forward", "Quit");
	pb_test_wait_until(pb_test_proc_exited(proc), 10);
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
	g_bus_unwatch_name(watch);
}

static void
test_dbus_program_no_dbus(DbusFixture *fx, gconstpointer user_data)
{
	gboolean appeared = FALSE;
	guint watch;
	PbTestProc *proc;

	g_test_summary("piggyback-forward --no-dbus stays off the bus and still tunnels");
	if (dbus_skip_without_bus(fx))
		return;
	watch = g_bus_watch_name_on_connection(fx->applet, "io.github.piggyback.PiggyBack.Forward",
					       G_BUS_NAME_WATCHER_FLAGS_NONE, dbus_name_appeared_cb,
					       NULL, &appeared, NULL);
	proc = proc_start_forward(fx, g_test_dbus_get_bus_address(fx->bus), TRUE);
	pb_test_wait_until(pb_test_proc_said(proc, "Access URL: tcp://127.0.0.1:") ||
			       pb_test_proc_exited(proc),
			   10);
	g_assert_false(pb_test_proc_exited(proc));
	g_assert_true(GPOINTER_TO_INT(pb_test_run_in_thread(
	    dbus_echo_cb, GUINT_TO_POINTER(dbus_proc_public_port(proc)), 10)));
	pb_test_settle();
	g_assert_false(appeared);
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);
	g_bus_unwatch_name(watch);
}

/* A notification server as small as GLib's freedesktop backend needs. */
static const char notifications_xml[] =
    "<node><interface name='org.freedesktop.Notifications'>"
    "<method name='Notify'>"
    "<arg type='s' direction='in'/><arg type='u' direction='in'/><arg type='s' direction='in'/>"
    "<arg type='s' direction='in'/><arg type='s' direction='in'/><arg type='as' direction='in'/>"
    "<arg type='a{sv}' direction='in'/><arg type='i' direction='in'/>"
    "<arg type='u' direction='out'/>"
    "</method></interface></node>";

typedef struct {
	char *summary; /* (owned) (nullable) of the last notification */
	char *body;    /* (owned) (nullable) */
	gboolean owned;
} Notifications;

static void
notifications_method_cb(GDBusConnection *connection, const char *sender, const char *path,
			const char *interface, const char *method, GVariant *parameters,
			GDBusMethodInvocation *invocation, gpointer user_data)
{
	Notifications *notifications = user_data;
	const char *summary = NULL;
	const char *body = NULL;

	g_variant_get(parameters, "(&su&s&s&s@as@a{sv}i)", NULL, NULL, NULL, &summary, &body, NULL,
		      NULL, NULL);
	g_free(notifications->summary);
	g_free(notifications->body);
	notifications->summary = g_strdup(summary);
	notifications->body = g_strdup(body);
	g_dbus_method_invocation_return_value(invocation, g_variant_new("(u)", 1));
}

static void
notifications_acquired_cb(GDBusConnection *connection, const char *name, gpointer user_data)
{
	((Notifications *)user_data)->owned = TRUE;
}

/* @user_data: the fixture's --domain (nullable): then the client asks for the name "alpha" */
static void
test_dbus_program_notification(DbusFixture *fx, gconstpointer user_data)
{
	const char *domain = user_data;
	static const GDBusInterfaceVTable vtable = {notifications_method_cb, NULL, NULL, {NULL}};
	g_autoptr(GDBusNodeInfo) node = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *expected = NULL;
	Notifications notifications = {NULL, NULL, FALSE};
	guint object_id;
	guint owner_id;
	PbTestProc *proc;

	g_test_summary("When the tunnel comes online, a desktop notification shows the access "
		       "URL; a named tunnel's, its named URL");
	if (dbus_skip_without_bus(fx))
		return;
	node = g_dbus_node_info_new_for_xml(notifications_xml, &error);
	g_assert_no_error(error);
	object_id = g_dbus_connection_register_object(fx->applet, "/org/freedesktop/Notifications",
						      node->interfaces[0], &vtable, &notifications,
						      NULL, &error);
	g_assert_no_error(error);
	owner_id = g_bus_own_name_on_connection(
	    fx->applet, "org.freedesktop.Notifications", G_BUS_NAME_OWNER_FLAGS_NONE,
	    notifications_acquired_cb, NULL, &notifications, NULL);
	pb_test_wait_until(notifications.owned, 10);

	proc = proc_start_forward_named(fx, g_test_dbus_get_bus_address(fx->bus), FALSE,
					domain != NULL ? "alpha" : NULL);
	pb_test_wait_until(notifications.body != NULL || pb_test_proc_exited(proc), 10);
	g_assert_cmpstr(notifications.summary, ==, "Tunnel online");
	expected = g_strdup_printf("now reaches 127.0.0.1:%u", pb_test_service_get_port(fx->echo));
	if (domain != NULL) {
		g_autofree char *url = g_strdup_printf("http://alpha.%s:%u ", domain,
						       pb_tunnel_server_get_port(fx->server));

		g_assert_true(g_str_has_prefix(notifications.body, url));
	} else {
		g_assert_true(g_str_has_prefix(notifications.body, "tcp://127.0.0.1:"));
	}
	g_assert_nonnull(strstr(notifications.body, expected));
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);

	g_bus_unown_name(owner_id);
	g_dbus_connection_unregister_object(fx->applet, object_id);
	g_free(notifications.summary);
	g_free(notifications.body);
}

static void
test_dbus_program_notification_services(DbusFixture *fx, gconstpointer user_data)
{
	static const GDBusInterfaceVTable vtable = {notifications_method_cb, NULL, NULL, {NULL}};
	PbTestService *db = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autofree char *expose = g_strdup_printf("db=127.0.0.1:%u", pb_test_service_get_port(db));
	g_autoptr(GDBusNodeInfo) node = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *expected = NULL;
	Notifications notifications = {NULL, NULL, FALSE};
	guint object_id;
	guint owner_id;
	PbTestProc *proc;

	g_test_summary("With several services the notification has a line for each: its named "
		       "URL and the local service it reaches");
	if (dbus_skip_without_bus(fx)) {
		pb_test_service_free(db);
		return;
	}
	node = g_dbus_node_info_new_for_xml(notifications_xml, &error);
	g_assert_no_error(error);
	object_id = g_dbus_connection_register_object(fx->applet, "/org/freedesktop/Notifications",
						      node->interfaces[0], &vtable, &notifications,
						      NULL, &error);
	g_assert_no_error(error);
	owner_id = g_bus_own_name_on_connection(
	    fx->applet, "org.freedesktop.Notifications", G_BUS_NAME_OWNER_FLAGS_NONE,
	    notifications_acquired_cb, NULL, &notifications, NULL);
	pb_test_wait_until(notifications.owned, 10);

	proc = proc_start_forward_full(fx, g_test_dbus_get_bus_address(fx->bus), FALSE, "alpha",
				       expose);
	pb_test_wait_until(notifications.body != NULL || pb_test_proc_exited(proc), 10);
	g_assert_cmpstr(notifications.summary, ==, "Tunnel online");
	expected = g_strdup_printf(
	    "http://alpha.example.test:%u now reaches 127.0.0.1:%u\n"
	    "http://db.example.test:%u now reaches 127.0.0.1:%u",
	    pb_tunnel_server_get_port(fx->server), pb_test_service_get_port(fx->echo),
	    pb_tunnel_server_get_port(fx->server), pb_test_service_get_port(db));
	g_assert_cmpstr(notifications.body, ==, expected);
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 0);

	g_bus_unown_name(owner_id);
	g_dbus_connection_unregister_object(fx->applet, object_id);
	g_free(notifications.summary);
	g_free(notifications.body);
	pb_test_service_free(db);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
#define ADD(path, func) g_test_add(path, DbusFixture, NULL, dbus_set_up, func, dbus_tear_down)
	ADD("/dbus/online", test_dbus_online);
	g_test_add("/dbus/name", DbusFixture, "example.test", dbus_set_up, test_dbus_name,
		   dbus_tear_down);
	ADD("/dbus/name-not-given", test_dbus_name_not_given);
	ADD("/dbus/recent-events", test_dbus_recent_events);
	ADD("/dbus/counters", test_dbus_counters);
	ADD("/dbus/instances", test_dbus_instances);
	ADD("/dbus/quit", test_dbus_quit);
	ADD("/dbus/reconnect", test_dbus_reconnect);
	ADD("/dbus/offline", test_dbus_offline);
	g_test_add("/dbus/services", DbusFixture, "example.test", dbus_set_up, test_dbus_services,
		   dbus_tear_down);
	ADD("/dbus/no-bus", test_dbus_no_bus);
	ADD("/dbus/program-quit", test_dbus_program_quit);
	ADD("/dbus/program-no-dbus", test_dbus_program_no_dbus);
	ADD("/dbus/program-notification", test_dbus_program_notification);
	g_test_add("/dbus/program-notification-named", DbusFixture, "example.test", dbus_set_up,
		   test_dbus_program_notification, dbus_tear_down);
	g_test_add("/dbus/program-notification-services", DbusFixture, "example.test", dbus_set_up,
		   test_dbus_program_notification_services, dbus_tear_down);
#undef ADD
	return g_test_run();
}
