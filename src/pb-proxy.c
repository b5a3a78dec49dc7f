/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-proxy.h"

/*
 * Which proxy the client's WebSocket goes through.
 *
 * In a desktop session, the desktop's proxy settings: GIO's default GProxyResolver (GNOME's
 * settings, or libproxy). On a server, where nobody sets those, the variables curl and most
 * tools read: https_proxy for wss://, http_proxy for ws://, all_proxy for both, no_proxy
 * for hosts to reach directly; no proxy if none is set. GIO's default there is libproxy,
 * which looks for a PAC file on the network and costs `forward` 2.5 MiB of memory
 * (libproxy and the C++ runtime) to find out that there is no proxy.
 */

/* The variable @name, lowercase first (as curl reads them), else uppercase; NULL if unset
 * or empty. */
static const char *
pb_proxy_getenv(const char *const *envp, const char *name)
{
	g_autofree char *upper = g_ascii_strup(name, -1);
	const char *value = g_environ_getenv((char **)envp, name);

	if (value == NULL || *value == '\0')
		value = g_environ_getenv((char **)envp, upper);
	return value != NULL && *value != '\0' ? value : NULL;
}

/**
 * pb_proxy_resolver_new_from_environ:
 * @envp: an environment, as g_get_environ() gives
 *
 * Returns: (transfer full) (nullable): a resolver for the proxy variables in @envp, or
 *   %NULL when none is set
 */
GProxyResolver *
pb_proxy_resolver_new_from_environ(const char *const *envp)
{
	const char *all = pb_proxy_getenv(envp, "all_proxy");
	const char *https = pb_proxy_getenv(envp, "https_proxy");
	const char *http = pb_proxy_getenv(envp, "http_proxy");
	const char *no_proxy = pb_proxy_getenv(envp, "no_proxy");
	g_auto(GStrv) ignore = NULL;
	GProxyResolver *resolver;

	if (all == NULL && https == NULL && http == NULL)
		return NULL;
	if (no_proxy != NULL) {
		ignore = g_strsplit(no_proxy, ",", -1);
		for (guint i = 0; ignore[i] != NULL; i++)
			g_strstrip(ignore[i]);
	}
	resolver = g_simple_proxy_resolver_new(all, ignore);
	if (https != NULL)
		g_simple_proxy_resolver_set_uri_proxy(G_SIMPLE_PROXY_RESOLVER(resolver), "wss",
						      https);
	if (http != NULL)
		g_simple_proxy_resolver_set_uri_proxy(G_SIMPLE_PROXY_RESOLVER(resolver), "ws",
						      http);
	return resolver;
}

/**
 * pb_proxy_resolver_for_server:
 *
 * Returns: (transfer full) (nullable): the resolver for the connection to the tunnel
 *   server, or %NULL for a direct connection
 */
GProxyResolver *
pb_proxy_resolver_for_server(void)
{
	g_auto(GStrv) envp = NULL;

	/* a desktop session, or someone chose GIO's resolver explicitly */
	if (g_getenv("XDG_CURRENT_DESKTOP") != NULL || g_getenv("GIO_USE_PROXY_RESOLVER") != NULL)
		return g_object_ref(g_proxy_resolver_get_default());
	envp = g_get_environ();
	return pb_proxy_resolver_new_from_environ((const char *const *)envp);
}
