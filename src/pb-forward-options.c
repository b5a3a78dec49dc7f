/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-forward-options.h"

#include <glib/gi18n.h>
#include <string.h>

#include "pb-frame.h"
#include "pb-name.h"
#include "pb-text.h"

/*
 * The options of `piggyback forward`: one table for its command line and for the [forward]
 * group of its --config file, as pb-serve-options.c does for serve, so that every option
 * works in the file with no second list to keep in step. The file's further services are
 * groups of their own ([service NAME]) rather than a list in one key: a list of
 * NAME=HOST:PORT in one line is what a file is meant to spare.
 */

void
pb_forward_options_init(PbForwardOptions *self)
{
	*self = (PbForwardOptions){
	    .port = -1,
	    .max_connections = PB_MAX_CONNECTIONS_DEFAULT,
	};
}

/* Returns: (transfer full): the options' GOptionEntry table, pointing into @self */
GOptionEntry *
pb_forward_options_get_entries(PbForwardOptions *self)
{
	const GOptionEntry entries[] = {
	    {"config", 0, 0, G_OPTION_ARG_FILENAME, &self->config,
	     N_("Read options from FILE, a key file: [forward] holds options by their long "
		"names, each [service NAME] group a further service (host=, port=); options on "
		"the command line win"),
	     N_("FILE")},
	    {"port", 'p', 0, G_OPTION_ARG_INT, &self->port,
	     N_("Port of the local service (required)"), N_("PORT")},
	    {"host", 'h', 0, G_OPTION_ARG_STRING, &self->host,
	     N_("Host of the local service (default localhost)"), N_("HOST")},
	    {"server", 's', 0, G_OPTION_ARG_STRING, &self->server,
	     N_("Tunnel server: host:port, ws://… or wss://… (default localhost:8080)"),
	     N_("SERVER")},
	    {"features", 0, 0, G_OPTION_ARG_STRING, &self->features,
	     N_("Protocol 2 features to ask for: flow, eof, resume, or none for protocol 1 "
		"(default flow,eof,resume)"),
	     N_("LIST")},
	    {"expose", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &self->expose,
	     N_("Expose a further service on a public port (and name) of its own: "
		"[NAME=][HOST:]PORT, as many times as there are services; without -p, the "
		"first one is the main service"),
	     N_("[NAME=][HOST:]PORT")},
	    {"name", 'n', 0, G_OPTION_ARG_STRING, &self->name,
	     N_("Ask for this name: a server with --domain then reaches the tunnel as "
		"NAME.DOMAIN (default: one it picks)"),
	     N_("NAME")},
	    {"proxy-protocol", 0, 0, G_OPTION_ARG_STRING, &self->proxy_protocol,
	     N_("Tell the local service who each client is with a PROXY protocol header, "
		"version v1 (text) or v2 (binary)"),
	     N_("v1|v2")},
	    {"no-dbus", 0, 0, G_OPTION_ARG_NONE, &self->no_dbus,
	     N_("Do not show the tunnel’s status on the session bus"), NULL},
	    {"no-reconnect", 0, 0, G_OPTION_ARG_NONE, &self->no_reconnect,
	     N_("Exit when the tunnel is lost instead of connecting again"), NULL},
	    {"max-connections", 0, 0, G_OPTION_ARG_INT, &self->max_connections,
	     N_("Open at most N connections to the local service at once; the server's "
		"further ones are closed (default 1000)"),
	     N_("N")},
	    {"token-file", 0, 0, G_OPTION_ARG_FILENAME, &self->token_file,
	     N_("Present the token in FILE to the server (or set PIGGY_TOKEN)"), N_("FILE")},
	    {"ca-file", 0, 0, G_OPTION_ARG_FILENAME, &self->ca_file,
	     N_("Trust the CA certificates in FILE (PEM) for a wss:// server, instead of the "
		"system's"),
	     N_("FILE")},
	    {"pin-sha256", 0, 0, G_OPTION_ARG_STRING, &self->pin_sha256,
	     N_("Accept only the wss:// server certificate with this SHA-256 (hex)"), N_("HASH")},
	    G_OPTION_ENTRY_NULL,
	};

	return g_memdup2(entries, sizeof entries);
}

/* The service of [service NAME] @group, as --expose would write it. */
static char *
pb_forward_options_read_service(PbConfigFile *config, const char *group, GError **error)
{
	GKeyFile *key_file = pb_config_file_get_key_file(config);
	const char *name = group + strlen("service ");
	g_auto(GStrv) keys = g_key_file_get_keys(key_file, group, NULL, NULL);
	g_autofree char *host = g_key_file_get_value(key_file, group, "host", NULL);
	g_autofree char *port = g_key_file_get_value(key_file, group, "port", NULL);
	guint64 number = 0;

	if (!pb_name_is_valid(name)) {
		g_autofree char *where = pb_config_file_where(config, group, NULL);
		g_autofree char *shown = pb_text_escape(name, -1);

		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
			    /* TRANSLATORS: [service NAME] is a group of the file: keep it */
			    _("%s: [service %s]: “%s” is not a name: 1 to 63 characters of a-z, "
			      "0-9 and -, not starting or ending with -"),
			    where, shown, shown);
		return NULL;
	}
	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		g_autofree char *where = NULL;

		if (g_strcmp0(keys[i], "host") == 0 || g_strcmp0(keys[i], "port") == 0)
			continue;
		where = pb_config_file_where(config, group, keys[i]);
		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
			    _("%s: unknown key “%s” in [%s]"), where, keys[i], group);
		return NULL;
	}
	if (port == NULL) {
		g_autofree char *where = pb_config_file_where(config, group, NULL);

		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
			    /* TRANSLATORS: port= is a key of the file: keep it */
			    _("%s: [%s] has no port=, the port of its local service"), where,
			    group);
		return NULL;
	}
	if (!g_ascii_string_to_unsigned(port, 10, 1, G_MAXUINT16, &number, NULL)) {
		g_autofree char *where = pb_config_file_where(config, group, "port");
		g_autofree char *shown = pb_text_escape(port, -1);

		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
			    _("%s: port must be a port from 1 to 65535, not “%s”"), where, shown);
		return NULL;
	}
	/* empty: the default, as not writing the key would */
	if (host == NULL || *host == '\0') {
		g_free(host);
		host = g_strdup("localhost");
	}
	if (!pb_text_is_host(host)) {
		g_autofree char *where = pb_config_file_where(config, group, "host");
		g_autofree char *shown = pb_text_escape(host, -1);

		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
			    _("%s: host must be a host name or an IP address, not “%s”"), where,
			    shown);
		return NULL;
	}
	return strchr(host, ':') != NULL ? g_strdup_printf("%s=[%s]:%u", name, host, (guint)number)
					 : g_strdup_printf("%s=%s:%u", name, host, (guint)number);
}

/**
 * pb_forward_options_read_services:
 * @config: a file pb_cli_load_config() took, with groups "forward" and "service "
 *
 * Returns: (transfer full): each [service NAME] group in the order of the file, as an
 *   --expose value (NAME=HOST:PORT), or %NULL with @error naming the file, line, key and
 *   value of the first bad one
 */
char **
pb_forward_options_read_services(PbConfigFile *config, GError **error)
{
	g_auto(GStrv) groups = g_key_file_get_groups(pb_config_file_get_key_file(config), NULL);
	g_autoptr(GStrvBuilder) services = g_strv_builder_new();

	for (guint i = 0; groups[i] != NULL; i++) {
		g_autofree char *service = NULL;

		if (!g_str_has_prefix(groups[i], "service "))
			continue;
		service = pb_forward_options_read_service(config, groups[i], error);
		if (service == NULL)
			return NULL;
		g_strv_builder_add(services, service);
	}
	return g_strv_builder_end(services);
}

void
pb_forward_options_clear(PbForwardOptions *self)
{
	g_free(self->config);
	g_free(self->host);
	g_free(self->server);
	g_free(self->features);
	g_strfreev(self->expose);
	g_free(self->name);
	g_free(self->proxy_protocol);
	g_free(self->token_file);
	g_free(self->ca_file);
	g_free(self->pin_sha256);
	pb_forward_options_init(self);
}
