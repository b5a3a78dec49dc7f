/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-services.h"

#include <glib/gi18n.h>
#include <string.h>

#include "pb-error.h"
#include "pb-name.h"
#include "pb-text.h"

/*
 * Several services per client (the `services` feature): each gets its own public port and
 * name, and OPEN says which service a connection is for, by its place in the client's
 * list. The first service is the one a client of one service has (HELLO's tunnelPort and
 * name, an OPEN without payload); the upgrade lists the names the others ask for in the
 * Piggyback-Services header, "-" for none: "db, -, ssh".
 */

PbServiceSpec *
pb_service_spec_new(const char *name, const char *host, guint16 port)
{
	PbServiceSpec *spec = g_new0(PbServiceSpec, 1);

	spec->name = g_strdup(name);
	spec->host = g_strdup(host);
	spec->port = port;
	return spec;
}

/**
 * pb_service_spec_parse:
 * @text: `[NAME=][HOST:]PORT`; HOST is localhost when left out, an IPv6 address goes in
 *   brackets
 *
 * Returns: (nullable): the service, or %NULL with @error set
 */
PbServiceSpec *
pb_service_spec_parse(const char *text, GError **error)
{
	const char *equals = strchr(text, '=');
	g_autofree char *name = equals != NULL ? g_strndup(text, (gsize)(equals - text)) : NULL;
	const char *address = equals != NULL ? equals + 1 : text;
	const char *colon = strrchr(address, ':');
	g_autofree char *host = NULL;
	const char *port_text = colon != NULL ? colon + 1 : address;
	guint64 port = 0;

	if (name != NULL && !pb_name_is_valid(name)) {
		g_set_error_literal(error, PB_ERROR, PB_ERROR_FAILED,
				    _("NAME is not a name: 1 to 63 characters of a-z, 0-9 and -, "
				      "not starting or ending with -"));
		return NULL;
	}
	if (colon != NULL && address[0] == '[') {
		/* [IPv6]:PORT */
		if (colon < address + 2 || colon[-1] != ']') {
			g_set_error_literal(error, PB_ERROR, PB_ERROR_FAILED,
					    _("an IPv6 address goes in brackets: [::1]:PORT"));
			return NULL;
		}
		host = g_strndup(address + 1, (gsize)(colon - address - 2));
	} else if (colon != NULL) {
		host = g_strndup(address, (gsize)(colon - address));
	} else {
		host = g_strdup("localhost");
	}
	if (!pb_text_is_host(host)) {
		g_set_error_literal(error, PB_ERROR, PB_ERROR_FAILED,
				    _("HOST is not a host name or an IP address"));
		return NULL;
	}
	if (!g_ascii_string_to_unsigned(port_text, 10, 1, G_MAXUINT16, &port, NULL)) {
		g_set_error_literal(error, PB_ERROR, PB_ERROR_FAILED,
				    _("PORT is not a port from 1 to 65535"));
		return NULL;
	}
	return pb_service_spec_new(name, host, (guint16)port);
}

/* "host:port", "[::1]:port": where the local service is. */
char *
pb_service_spec_get_address(const PbServiceSpec *spec)
{
	gboolean ipv6 = strchr(spec->host, ':') != NULL;

	return g_strdup_printf("%s%s%s:%u", ipv6 ? "[" : "", spec->host, ipv6 ? "]" : "",
			       spec->port);
}

/* What a person calls the service: its name, else its address. */
char *
pb_service_spec_get_label(const PbServiceSpec *spec)
{
	return spec->name != NULL ? g_strdup(spec->name) : pb_service_spec_get_address(spec);
}

void
pb_service_spec_free(PbServiceSpec *spec)
{
	if (spec == NULL)
		return;
	g_free(spec->name);
	g_free(spec->host);
	g_free(spec);
}

/**
 * pb_services_header_parse:
 * @value: a Piggyback-Services header
 * @max: the most services it may list
 *
 * Returns: (transfer full) (element-type utf8) (nullable): the name each further service
 *   asks for, %NULL for "-"; %NULL with @error set for more than @max services, an entry
 *   that is neither a name nor "-", or a name twice
 */
GPtrArray *
pb_services_header_parse(const char *value, guint max, GError **error)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *p = value;

	/* one entry at a time, so that a header of a million commas costs no more than @max */
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		gsize len = comma != NULL ? (gsize)(comma - p) : strlen(p);
		g_autofree char *entry = g_strstrip(g_strndup(p, len));

		if (names->len >= max) {
			g_set_error(error, PB_ERROR, PB_ERROR_REFUSED,
				    "more than %u further services", max);
			return NULL;
		}
		if (g_strcmp0(entry, "-") == 0) {
			g_ptr_array_add(names, NULL);
		} else if (pb_name_is_valid(entry)) {
			for (guint i = 0; i < names->len; i++) {
				if (g_strcmp0(names->pdata[i], entry) == 0) {
					g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
						    "two services ask for the name %s", entry);
					return NULL;
				}
			}
			g_ptr_array_add(names, g_steal_pointer(&entry));
		} else {
			g_autofree char *escaped = pb_text_escape(entry, -1);
			g_autofree char *shown = pb_text_truncate(escaped, 64);

			g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
				    "“%s” is neither a name nor -", shown);
			return NULL;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return g_steal_pointer(&names);
}

/* The Piggyback-Services header for @specs (PbServiceSpec), the first one left out. */
char *
pb_services_header_format(GPtrArray *specs)
{
	g_autoptr(GString) header = g_string_new(NULL);

	for (guint i = 1; i < specs->len; i++) {
		const PbServiceSpec *spec = specs->pdata[i];

		g_string_append_printf(header, "%s%s", i > 1 ? ", " : "",
				       spec->name != NULL ? spec->name : "-");
	}
	return g_string_free(g_steal_pointer(&header), FALSE);
}
