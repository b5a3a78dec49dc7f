/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <string.h>

#include "pb-cli.h"
#include "pb-dbus-exporter.h"
#include "pb-forward-options.h"
#include "pb-name.h"
#include "pb-notifier.h"
#include "pb-server-url.h"
#include "pb-text.h"
#include "pb-tls.h"
#include "pb-tunnel-client.h"

/* `piggyback forward` (and `piggyback-forward`): exposes a local service through a server. */

/* The groups of its --config file */
static const char *const pb_forward_config_groups[] = {"forward", "service ", NULL};

static void
pb_forward_command_ready_cb(PbTunnelClient *client, const char *access_url, const char *http_url,
			    gpointer user_data)
{
	PbCli *cli = user_data;

	if (cli->view != NULL)
		return; /* the dashboard shows them */
	PbClientServices *services = pb_tunnel_client_get_services(client);

	/* not translated: scripts read these lines (the dashboard and D-Bus are for people) */
	if (access_url != NULL) /* none from a names-only server (serve --tunnel-port off) */
		pb_cli_print("Access URL: %s\n", access_url);
	pb_cli_print("HTTP URL: %s\n", http_url);
	/* each further service the same, its name (else its address) in parentheses */
	for (guint i = 0; i < pb_client_services_get_len(services); i++) {
		const PbClientService *service = pb_client_services_get(services, i);

		if (service->access_url != NULL)
			pb_cli_print("Access URL (%s): %s\n", service->label, service->access_url);
		pb_cli_print("HTTP URL (%s): %s\n", service->label, service->http_url);
	}
}

/* Plain logs: the client's events ("Online at …", "Reconnecting in 1.2 s") as log lines. */
static void
pb_forward_command_event_cb(PbTunnelClient *client, gint64 time, const char *message,
			    gpointer user_data)
{
	g_message("%s", message);
}

static void
pb_forward_command_disconnected_cb(PbTunnelClient *client, const char *reason, gpointer user_data)
{
	PbCli *cli = user_data;
	g_autofree char *shown = pb_text_escape(reason, -1); /* it may quote the server */

	pb_cli_stop_view(cli);
	g_printerr(_("%s: the tunnel is closed: %s\n"), g_get_prgname(), shown);
	cli->status = PB_EXIT_RUNTIME;
	g_main_loop_quit(cli->loop);
}

/* Any change, also to "no default route": a server on the LAN or on loopback may still be
 * reachable, and a check costs one ping. */
static void
pb_forward_command_network_changed_cb(GNetworkMonitor *monitor, gboolean available,
				      gpointer user_data)
{
	pb_tunnel_client_network_changed(PB_TUNNEL_CLIENT(user_data));
}

static void
pb_forward_command_quit_requested_cb(PbDbusExporter *exporter, gpointer user_data)
{
	PbCli *cli = user_data;

	cli->status = EXIT_SUCCESS;
	g_main_loop_quit(cli->loop);
}

static void
pb_forward_command_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	PbCli *cli = user_data;
	g_autoptr(GError) error = NULL;

	if (!pb_tunnel_client_connect_finish(PB_TUNNEL_CLIENT(source), res, &error)) {
		g_autofree char *shown = pb_text_escape(error->message, -1);

		pb_cli_stop_view(cli);
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_printerr(_("%s: cannot open a tunnel: %s\n"), g_get_prgname(), shown);
		cli->status = PB_EXIT_RUNTIME;
		g_main_loop_quit(cli->loop);
	}
}

/* The defaults of `piggyback-forward`, or NULL when the schema is not installed
 * (g_settings_new() would abort then). */
static GSettings *
pb_forward_command_settings_new(void)
{
	GSettingsSchemaSource *source = g_settings_schema_source_get_default();
	g_autoptr(GSettingsSchema) schema = NULL;

	if (source != NULL)
		schema = g_settings_schema_source_lookup(source, APP_ID, TRUE);
	if (schema == NULL) {
		g_debug("GSettings schema %s is not installed: no defaults", APP_ID);
		return NULL;
	}
	return g_settings_new_full(schema, NULL, NULL);
}

/* Returns: (nullable): the setting, or NULL when it is empty */
static char *
pb_forward_command_setting_string(GSettings *settings, const char *key)
{
	g_autofree char *value = g_settings_get_string(settings, key);

	return *value != '\0' ? g_steal_pointer(&value) : NULL;
}

/* Fills in what the command line left out from @settings; 0 for local-port means unset,
 * and so does an empty services list. */
static void
pb_forward_command_defaults(GSettings *settings, char **host, char **server_input, int *port,
			    char **name, char **proxy_protocol, char ***exposes)
{
	g_autoptr(GVariant) local_port = g_settings_get_value(settings, "local-port");

	if (*host == NULL)
		*host = pb_forward_command_setting_string(settings, "local-host");
	if (*server_input == NULL)
		*server_input = pb_forward_command_setting_string(settings, "server");
	if (*port == -1 && g_variant_get_uint16(local_port) != 0)
		*port = g_variant_get_uint16(local_port);
	/* empty: no name asked for, the server picks one */
	if (*name == NULL)
		*name = pb_forward_command_setting_string(settings, "name");
	if (*proxy_protocol == NULL) {
		*proxy_protocol = g_settings_get_string(settings, "proxy-protocol");
		if (g_str_equal(*proxy_protocol, "none"))
			g_clear_pointer(proxy_protocol, g_free);
	}
	/* any --expose replaces the whole list */
	if (*exposes == NULL) {
		*exposes = g_settings_get_strv(settings, "services");
		if (**exposes == NULL)
			g_clear_pointer(exposes, g_strfreev);
	}
}

/* Desktop notifications need a registered GApplication (without a bus it registers too,
 * and the notifier stays quiet). */
static void
pb_forward_command_notifier(PbTunnelClient *client, GApplication **application,
			    PbNotifier **notifier)
{
	g_autoptr(GError) error = NULL;

	*application = g_application_new(APP_ID, G_APPLICATION_NON_UNIQUE);
	if (!g_application_register(*application, NULL, &error)) {
		g_debug("No notifications: %s", error->message);
		return;
	}
	*notifier = pb_notifier_new(client, *application);
}

/* `piggyback forward`; @use_settings for `piggyback-forward`, which a desktop session may
 * start without options: then GSettings has the defaults. */
static gboolean
pb_forward_command_tick_cb(gpointer user_data)
{
	return G_SOURCE_CONTINUE; /* wakes the loop below to look at the clock */
}

/* Waits, 2 s at most, for the close handshake pb_tunnel_client_close() started: the server
 * then knows we said goodbye and frees our port at once, where it keeps a lost client's
 * port for --grace. */
static void
pb_forward_command_wait_closed(PbTunnelClient *client)
{
	gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
	guint tick = g_timeout_add(100, pb_forward_command_tick_cb, NULL);

	while (pb_tunnel_client_get_state(client) == PB_TUNNEL_CLIENT_STATE_ONLINE &&
	       g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(tick);
}

static gboolean
pb_forward_command_same_name(gconstpointer a, gconstpointer b)
{
	const PbServiceSpec *spec_a = a;
	const PbServiceSpec *spec_b = b;

	return spec_a->name != NULL && g_strcmp0(spec_a->name, spec_b->name) == 0;
}

/* The services of --expose, each [NAME=][HOST:]PORT, or of the "services" setting
 * (@from_settings: the messages say so). Without -p (*@port is -1) the first
 * is the main service: it sets *@port, *@host and, unless --name did, *@name. Returns:
 * (transfer full) (nullable): the further services (PbServiceSpec), %NULL with *@status
 * set for a bad one, or two services that ask for one name */
static GPtrArray *
pb_forward_command_parse_exposes(char **values, gboolean from_settings, int *port, char **host,
				 char **name, int *status)
{
	g_autoptr(GPtrArray) specs =
	    g_ptr_array_new_with_free_func((GDestroyNotify)pb_service_spec_free);

	for (guint i = 0; values[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(PbServiceSpec) spec = pb_service_spec_parse(values[i], &error);
		g_autofree char *shown = pb_text_escape(values[i], -1);

		if (spec == NULL) {
			g_autofree char *message =
			    from_settings
				/* TRANSLATORS: “services” is a GSettings key: keep it as is; %s
				 * are the value and what is wrong with it */
				? g_strdup_printf(_("the “services” setting “%s”: %s"), shown,
						  error->message)
				/* TRANSLATORS: %s are the value given and what is wrong with it */
				: g_strdup_printf(_("--expose “%s”: %s"), shown, error->message);

			*status = pb_cli_usage_error(message);
			return NULL;
		}
		if (*port == -1 && i == 0) {
			if (spec->name != NULL && *name != NULL &&
			    g_strcmp0(spec->name, *name) != 0) {
				g_autofree char *message =
				    from_settings
					/* TRANSLATORS: “services” is a GSettings key: keep it */
					? g_strdup_printf(_("the “services” setting “%s” names the "
							    "main service, which --name names too"),
							  shown)
					: g_strdup_printf(_("--expose “%s” names the main service, "
							    "which --name names too"),
							  shown);

				*status = pb_cli_usage_error(message);
				return NULL;
			}
			*port = spec->port;
			g_free(*host);
			*host = g_strdup(spec->host);
			if (spec->name != NULL) {
				g_free(*name);
				*name = g_strdup(spec->name);
			}
			continue;
		}
		if (spec->name != NULL && (g_strcmp0(spec->name, *name) == 0 ||
					   g_ptr_array_find_with_equal_func(
					       specs, spec, pb_forward_command_same_name, NULL))) {
			g_autofree char *message =
			    from_settings
				/* TRANSLATORS: “services” is a GSettings key: keep it as is */
				? g_strdup_printf(_("the “services” setting “%s”: another service "
						    "asks for the name %s"),
						  shown, spec->name)
				: g_strdup_printf(
				      _("--expose “%s”: another service asks for the name %s"),
				      shown, spec->name);

			*status = pb_cli_usage_error(message);
			return NULL;
		}
		g_ptr_array_add(specs, g_steal_pointer(&spec));
	}
	return g_steal_pointer(&specs);
}

int
pb_forward_command(int argc, char **argv, gboolean use_settings)
{
	g_auto(PbForwardOptions) o = {0};
	g_autofree GOptionEntry *entries = NULL;
	g_autoptr(PbConfigFile) config = NULL;
	gboolean expose_is_setting = FALSE; /* no --expose: services come from GSettings */
	g_autoptr(GPtrArray) specs = NULL;
	PbFeatures features = PB_FEATURES_ALL;
	gboolean name_is_setting = FALSE; /* no --name: a name comes from GSettings */
	g_autofree char *token = NULL;
	g_autofree char *pin = NULL;
	g_autoptr(GTlsDatabase) tls_database = NULL;
	g_autoptr(GOptionContext) context =
	    g_option_context_new(_("— expose a local TCP service through a tunnel server"));
	g_autoptr(GError) error = NULL;
	g_autoptr(PbTunnelClient) client = NULL;
	g_autoptr(PbDbusExporter) exporter = NULL;
	g_autoptr(GApplication) application = NULL;
	g_autoptr(PbNotifier) notifier = NULL;
	g_autoptr(GSettings) settings = NULL;
	g_autofree char *server_url = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	PbCli cli = {.loop = loop, .status = EXIT_SUCCESS};
	int status = EXIT_SUCCESS;

	if (use_settings) {
		/* TRANSLATORS: at the end of piggyback-forward --help; %s is the schema id; the
		 * key names (server, local-host, …) are as they are */
		g_autofree char *description = g_strdup_printf(
		    _("Options left out are taken from GSettings, schema %s: keys server, "
		      "local-host, local-port, name (as --name: empty asks for none), services "
		      "(as --expose, a list) and proxy-protocol."),
		    APP_ID);

		g_option_context_set_description(context, description);
	}
	pb_forward_options_init(&o);
	entries = pb_forward_options_get_entries(&o);
	if (!pb_cli_parse_config(context, entries, "forward", pb_forward_config_groups, &config,
				 &argc, &argv, &status))
		return status;
	/* the file's services come first, --expose adds to them; either replaces the
	 * "services" setting */
	if (config != NULL) {
		g_auto(GStrv) services = pb_forward_options_read_services(config, &error);

		if (services == NULL)
			return pb_cli_usage_error(error->message);
		if (*services != NULL) {
			g_autoptr(GStrvBuilder) all = g_strv_builder_new();

			g_strv_builder_addv(all, (const char **)services);
			if (o.expose != NULL)
				g_strv_builder_addv(all, (const char **)o.expose);
			g_strfreev(o.expose);
			o.expose = g_strv_builder_end(all);
		}
	}
	if (use_settings)
		settings = pb_forward_command_settings_new();
	name_is_setting = o.name == NULL;
	expose_is_setting = o.expose == NULL;
	if (settings != NULL)
		pb_forward_command_defaults(settings, &o.host, &o.server, &o.port, &o.name,
					    &o.proxy_protocol, &o.expose);
	if (o.host == NULL)
		o.host = g_strdup("localhost");
	if (o.server == NULL)
		o.server = g_strdup("localhost:8080");
	if (o.expose != NULL) {
		specs = pb_forward_command_parse_exposes(o.expose, expose_is_setting, &o.port,
							 &o.host, &o.name, &status);
		if (specs == NULL)
			return status;
	}
	if (o.port == -1 && settings != NULL) {
		g_autofree char *message = g_strdup_printf(
		    /* TRANSLATORS: the command is shown as is; keep PORT in capitals */
		    _("--port is required: the port of the local service (or set a default with "
		      "“gsettings set %s local-port PORT”)"),
		    APP_ID);

		return pb_cli_usage_error(message);
	}
	if (o.port == -1)
		return pb_cli_usage_error(_("--port is required: the port of the local service"));
	if (!pb_cli_check_port(o.port, FALSE, "--port", &status))
		return status;
	if (o.host == NULL || *o.host == '\0')
		return pb_cli_usage_error(_("--host is empty"));
	if (!pb_cli_check_features(o.features, &features, &status))
		return status;
	if (o.name != NULL && !pb_name_is_valid(o.name)) {
		g_autofree char *shown = pb_text_escape(o.name, -1);
		g_autofree char *message = NULL;

		if (name_is_setting)
			message = g_strdup_printf(
			    /* TRANSLATORS: “name” is a GSettings key: keep it as is */
			    _("the “name” setting “%s” is not a name: 1 to 63 characters of a-z, "
			      "0-9 and -, not starting or ending with -"),
			    shown);
		else
			message = g_strdup_printf(
			    _("--name “%s” is not a name: 1 to 63 characters of a-z, 0-9 and -, "
			      "not starting or ending with -"),
			    shown);
		return pb_cli_usage_error(message);
	}
	/* a name whenever protocol 2 is spoken: the server picks one if we ask for none */
	if (features != 0)
		features |= PB_FEATURE_NAME;
	if (o.max_connections < 1)
		return pb_cli_usage_error(_("--max-connections must be at least 1"));
	if (g_strcmp0(o.proxy_protocol, "v1") == 0) {
		features |= PB_FEATURE_PROXY_V1;
	} else if (g_strcmp0(o.proxy_protocol, "v2") == 0) {
		features |= PB_FEATURE_PROXY_V2;
	} else if (o.proxy_protocol != NULL) {
		g_autofree char *message = g_strdup_printf(
		    _("--proxy-protocol must be v1 or v2, not “%s”"), o.proxy_protocol);

		return pb_cli_usage_error(message);
	}
	server_url = pb_server_url_resolve(o.server, &error);
	if (server_url == NULL)
		return pb_cli_usage_error(error->message);
	if (!pb_cli_get_token(o.token_file, &token, &status))
		return status;
	if ((o.ca_file != NULL || o.pin_sha256 != NULL) && !g_str_has_prefix(server_url, "wss://"))
		return pb_cli_usage_error(_("--ca-file and --pin-sha256 need a wss:// server"));
	if (o.ca_file != NULL) {
		tls_database = pb_tls_database_new(o.ca_file, &error);
		if (tls_database == NULL) {
			g_autofree char *message =
			    g_strdup_printf(_("--ca-file: %s"), error->message);

			return pb_cli_usage_error(message);
		}
	}
	if (o.pin_sha256 != NULL) {
		pin = pb_tls_pin_parse(o.pin_sha256, &error);
		if (pin == NULL) {
			g_autofree char *message =
			    g_strdup_printf(_("--pin-sha256: %s"), error->message);

			return pb_cli_usage_error(message);
		}
	}

	pb_cli_begin(&cli);
	client = pb_tunnel_client_new(server_url, o.host, (guint16)o.port);
	for (guint i = 0; specs != NULL && i < specs->len; i++)
		pb_tunnel_client_add_service(client, specs->pdata[i]);
	pb_tunnel_client_set_auto_reconnect(client, !o.no_reconnect);
	pb_tunnel_client_set_max_connections(client, (guint)o.max_connections);
	pb_tunnel_client_set_keepalive(client, pb_cli_get_keepalive());
	pb_tunnel_client_set_max_message_size(client, pb_cli_get_max_message_size());
	pb_tunnel_client_set_features(client, features);
	pb_tunnel_client_set_name(client, o.name);
	pb_tunnel_client_set_token(client, token);
	pb_tunnel_client_set_tls(client, tls_database, pin);
	g_signal_connect(client, "ready", G_CALLBACK(pb_forward_command_ready_cb), &cli);
	g_signal_connect(client, "disconnected", G_CALLBACK(pb_forward_command_disconnected_cb),
			 &cli);
	g_signal_connect_object(g_network_monitor_get_default(), "network-changed",
				G_CALLBACK(pb_forward_command_network_changed_cb), client, 0);
	if (!o.no_dbus) {
		exporter = pb_dbus_exporter_new(client);
		g_signal_connect(exporter, "quit-requested",
				 G_CALLBACK(pb_forward_command_quit_requested_cb), &cli);
		pb_dbus_exporter_start(exporter, NULL);
		pb_forward_command_notifier(client, &application, &notifier);
	}
	pb_cli_print(_("Connecting to %s, forwarding to %s:%d\n"), server_url, o.host, o.port);
	{
		g_autoptr(PbConsole) console = pb_cli_dashboard_console();

		if (console != NULL)
			cli.view = pb_dashboard_view_new_for_client(client, console);
		else
			g_signal_connect(client, "event", G_CALLBACK(pb_forward_command_event_cb),
					 &cli);
	}
	pb_tunnel_client_connect_async(client, NULL, pb_forward_command_connected_cb, &cli);
	status = pb_cli_run(&cli);
	if (exporter != NULL) {
		g_signal_handlers_disconnect_by_data(exporter, &cli);
		pb_dbus_exporter_stop(exporter);
	}
	g_signal_handlers_disconnect_by_data(client, &cli);
	pb_tunnel_client_close(client);
	pb_forward_command_wait_closed(client);
	return status;
}
