/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-server-url.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <string.h>

#include "pb-frame.h"

/**
 * pb_server_url_resolve:
 * @input: what the user gave to `--server`
 *
 * `host:port` and `ws://host:port` become `ws://host:port/http-stream`; a URL with a path
 * keeps it; `wss://` stays. `http://` and `https://` are read as `ws://` and `wss://`.
 *
 * Returns: (transfer full): the WebSocket URL, or %NULL with @error set
 */
char *
pb_server_url_resolve(const char *input, GError **error)
{
	g_autofree char *with_scheme = NULL;
	g_autoptr(GUri) uri = NULL;
	g_autoptr(GError) error_local = NULL;
	const char *scheme;
	const char *path;

	if (input == NULL || *input == '\0') {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
				    _("the server address is empty"));
		return NULL;
	}
	with_scheme = strstr(input, "://") != NULL ? g_strdup(input)
						   : g_strconcat("ws://", input, NULL);
	uri = g_uri_parse(with_scheme, G_URI_FLAGS_NONE, &error_local);
	if (uri == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    _("“%s” is not a server address: %s"), input, error_local->message);
		return NULL;
	}

	scheme = g_uri_get_scheme(uri);
	if (g_ascii_strcasecmp(scheme, "ws") == 0 || g_ascii_strcasecmp(scheme, "http") == 0) {
		scheme = "ws";
	} else if (g_ascii_strcasecmp(scheme, "wss") == 0 ||
		   g_ascii_strcasecmp(scheme, "https") == 0) {
		scheme = "wss";
	} else {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    _("“%s” is not a server address: use ws:// or wss://"), input);
		return NULL;
	}
	if (g_uri_get_host(uri) == NULL || *g_uri_get_host(uri) == '\0') {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    _("“%s” is not a server address: it has no host"), input);
		return NULL;
	}
	if (g_uri_get_port(uri) == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    _("“%s” is not a server address: port 0"), input);
		return NULL;
	}
	path = g_uri_get_path(uri);
	if (*path == '\0' || strcmp(path, "/") == 0)
		path = PB_WS_PATH;

	return g_uri_join(G_URI_FLAGS_NONE, scheme, g_uri_get_userinfo(uri), g_uri_get_host(uri),
			  g_uri_get_port(uri), path, g_uri_get_query(uri), NULL);
}
