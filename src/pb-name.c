/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-name.h"

#include <string.h>

/**
 * pb_name_is_valid:
 * @name: (nullable): a name a client asks for
 *
 * Whether @name is an RFC 1123 host name label in lowercase: 1 to 63 characters of `a-z`,
 * `0-9` and `-`, neither first nor last a `-`.
 */
gboolean
pb_name_is_valid(const char *name)
{
	gsize len;

	if (name == NULL)
		return FALSE;
	len = strlen(name);
	if (len == 0 || len > PB_NAME_MAX_LEN || name[0] == '-' || name[len - 1] == '-')
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_islower(name[i]) && !g_ascii_isdigit(name[i]) && name[i] != '-')
			return FALSE;
	}
	return TRUE;
}

/* A name for a client that asked for none: a letter and 9 letters or digits. */
char *
pb_name_new_random(void)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	char name[11];

	name[0] = alphabet[g_random_int_range(0, 26)];
	for (gsize i = 1; i < sizeof name - 1; i++)
		name[i] = alphabet[g_random_int_range(0, (gint32)sizeof alphabet - 1)];
	name[sizeof name - 1] = '\0';
	return g_strdup(name);
}

/**
 * pb_name_for_host:
 * @host: (nullable): a Host header's value, with or without a port
 * @domain: the server's --domain
 *
 * Returns: (nullable): NAME, in lowercase, if @host is NAME.@domain (in any case, with any
 *   port, with or without a final dot) and NAME a valid name; %NULL for any other host
 */
char *
pb_name_for_host(const char *host, const char *domain)
{
	gsize domain_len = strlen(domain);
	const char *colon;
	gsize len;
	g_autofree char *name = NULL;

	if (host == NULL || host[0] == '[')
		return NULL; /* none, or an IPv6 literal */
	colon = strchr(host, ':');
	len = colon != NULL ? (gsize)(colon - host) : strlen(host);
	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len < domain_len + 2 || host[len - domain_len - 1] != '.' ||
	    g_ascii_strncasecmp(host + len - domain_len, domain, domain_len) != 0)
		return NULL;
	name = g_ascii_strdown(host, (gssize)(len - domain_len - 1));
	return pb_name_is_valid(name) ? g_steal_pointer(&name) : NULL;
}

/**
 * pb_name_get_http_url:
 * @scheme: "http" or "https"
 * @port: the port a public client reaches; left out when it is @scheme's default
 *
 * Returns: `http://NAME.DOMAIN[:port]`
 */
char *
pb_name_get_http_url(const char *name, const char *domain, const char *scheme, int port)
{
	int default_port = g_strcmp0(scheme, "https") == 0 ? 443 : 80;

	if (port <= 0 || port == default_port)
		return g_strdup_printf("%s://%s.%s", scheme, name, domain);
	return g_strdup_printf("%s://%s.%s:%d", scheme, name, domain, port);
}
