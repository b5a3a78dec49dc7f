/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gi18n.h>
#include <libsoup/soup.h>

#include "pb-name.h"
#include "pb-tunnel-client-private.h"

/*
 * What the server tells a PbTunnelClient: its HELLO (the URLs, the name, the features,
 * where each further service is), later a RESUME, or that it broke the protocol. HELLO is
 * checked for what the client needs before anything of it is taken; what is taken becomes
 * the properties the views show.
 */

/* Every service as (name, local address, access URL, HTTP URL), the first one first: what
 * the "services" property and D-Bus' Services show; "" for what is not known (yet). */
GVariant *
pb_tunnel_client_build_services(PbTunnelClient *self)
{
	GVariantBuilder builder;

	g_variant_builder_init(&builder, G_VARIANT_TYPE("a(ssss)"));
	g_variant_builder_add(&builder, "(ssss)", self->given_name != NULL ? self->given_name : "",
			      self->local_address, self->access_url != NULL ? self->access_url : "",
			      self->http_url != NULL ? self->http_url : "");
	for (guint i = 0; i < pb_client_services_get_len(self->services); i++) {
		const PbClientService *service = pb_client_services_get(self->services, i);

		g_variant_builder_add(&builder, "(ssss)",
				      service->name != NULL ? service->name : "", service->address,
				      service->access_url != NULL ? service->access_url : "",
				      service->http_url != NULL ? service->http_url : "");
	}
	return g_variant_ref_sink(g_variant_builder_end(&builder));
}

/* Rebuilds the "services" property, notified when it changed. */
void
pb_tunnel_client_update_services(PbTunnelClient *self)
{
	g_autoptr(GVariant) services = pb_tunnel_client_build_services(self);

	if (self->services_variant != NULL && g_variant_equal(services, self->services_variant))
		return;
	g_clear_pointer(&self->services_variant, g_variant_unref);
	self->services_variant = g_steal_pointer(&services);
	g_object_notify_by_pspec(G_OBJECT(self),
				 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_SERVICES]);
}

/* Forgets what the last HELLO said: the public port went away with its tunnel. */
void
pb_tunnel_client_clear_hello(PbTunnelClient *self)
{
	pb_client_services_clear_hello(self->services);
	if (self->access_url != NULL) {
		g_clear_pointer(&self->access_url, g_free);
		g_object_notify_by_pspec(G_OBJECT(self),
					 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_ACCESS_URL]);
	}
	if (self->http_url != NULL) {
		g_clear_pointer(&self->http_url, g_free);
		g_object_notify_by_pspec(G_OBJECT(self),
					 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_HTTP_URL]);
	}
	if (self->given_name != NULL) {
		g_clear_pointer(&self->given_name, g_free);
		g_object_notify_by_pspec(G_OBJECT(self),
					 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_NAME]);
	}
	if (self->public_host != NULL) {
		g_clear_pointer(&self->public_host, g_free);
		g_object_notify_by_pspec(G_OBJECT(self),
					 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_PUBLIC_HOST]);
	}
	if (self->tunnel_port != 0) {
		self->tunnel_port = 0;
		g_object_notify_by_pspec(G_OBJECT(self),
					 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_TUNNEL_PORT]);
	}
	pb_tunnel_client_update_services(self);
}

/* The HTTP URL of the service named @name: where the server says public clients reach it
 * (a load balancer in front), or else its shared port as we reach it: https:// where it
 * is TLS. A PbClientServicesUrlFunc. */
static char *
pb_tunnel_client_named_url_cb(const PbHello *hello, const char *name, gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(user_data);
	gboolean tls = g_strcmp0(g_uri_get_scheme(self->server_uri), "wss") == 0;

	if (hello->url_scheme != NULL)
		return pb_name_get_http_url(name, hello->domain, hello->url_scheme,
					    hello->url_port);
	return pb_name_get_http_url(name, hello->domain, tls ? "https" : "http",
				    g_uri_get_port(self->server_uri));
}

void
pb_tunnel_client_hello_cb(PbTunnel *tunnel, gpointer hello_ptr, gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(user_data);
	const PbHello *hello = hello_ptr;
	PbFeatures proxy_asked = self->features & PB_FEATURES_PROXY;
	g_autoptr(GError) error = NULL;

	/* a local service that expects a PROXY header would take the client's bytes for one */
	if (proxy_asked != 0 && (hello->features & proxy_asked) == 0) {
		g_free(self->refusal);
		self->refusal = g_strdup(_(
		    "the server sends no PROXY protocol header (it is PiggyBack 1.1, or runs with "
		    "--features none), and --proxy-protocol needs one"));
		pb_tunnel_close(tunnel, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
				"no PROXY protocol header");
		return;
	}
	/* a names-only server (serve --tunnel-port off) gives no port, but then a name */
	if (hello->tunnel_port == 0 && !(hello->features & self->features & PB_FEATURE_NAME)) {
		g_free(self->refusal);
		self->refusal = g_strdup_printf(_("the server broke the protocol: %s"),
						"HELLO has no tunnelPort and no name");
		pb_tunnel_close(tunnel, SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR, "no port and no name");
		return;
	}
	/* further services need a server that takes them, and it must say where each is */
	if (pb_client_services_get_len(self->services) > 0 &&
	    !(hello->features & PB_FEATURE_SERVICES)) {
		g_free(self->refusal);
		self->refusal = g_strdup(
		    _("the server takes one service per client (it is PiggyBack 1.1, or runs with "
		      "--features none): run one forward per service"));
		pb_tunnel_close(tunnel, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "one service only");
		return;
	}
	if (!pb_client_services_take_hello(
		self->services, hello, (hello->features & self->features & PB_FEATURE_NAME) != 0,
		pb_tunnel_client_named_url_cb, self, &error)) {
		g_free(self->refusal);
		self->refusal =
		    g_strdup_printf(_("the server broke the protocol: %s"), error->message);
		pb_tunnel_close(tunnel, SOUP_WEBSOCKET_CLOSE_PROTOCOL_ERROR, "services");
		return;
	}
	/* only what we asked for: a server may not impose features */
	pb_tunnel_set_features(tunnel, hello->features & pb_tunnel_client_get_asked(self),
			       hello->window);
	/* with `resume`, RESUME goes out now, before any frame of the connections it lists */
	pb_lost_tunnel_set_grace(self->lost, hello->grace);
	pb_lost_tunnel_hand_over(self->lost, tunnel);
	g_object_freeze_notify(G_OBJECT(self));
	g_free(self->access_url);
	g_free(self->http_url);
	g_clear_pointer(&self->given_name, g_free);
	g_free(self->public_host);
	self->access_url = hello->tunnel_port != 0 ? pb_hello_get_access_url(hello, "tcp") : NULL;
	if ((hello->features & self->features & PB_FEATURE_NAME) && hello->name != NULL) {
		self->http_url = pb_tunnel_client_named_url_cb(hello, hello->name, self);
		/* asked for again on reconnecting, should the server have lost our session */
		g_free(self->name);
		self->name = g_strdup(hello->name);
		/* not self->name: one asked for but not given (no --domain) is no name */
		self->given_name = g_strdup(hello->name);
	} else {
		self->http_url = pb_hello_get_access_url(hello, "http");
	}
	self->public_host = g_strdup(hello->public_host);
	self->tunnel_port = hello->tunnel_port;
	g_free(self->session);
	self->session = g_strdup(hello->session);
	g_object_notify_by_pspec(G_OBJECT(self),
				 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_ACCESS_URL]);
	g_object_notify_by_pspec(G_OBJECT(self),
				 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_HTTP_URL]);
	g_object_notify_by_pspec(G_OBJECT(self),
				 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_NAME]);
	g_object_notify_by_pspec(G_OBJECT(self),
				 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_PUBLIC_HOST]);
	g_object_notify_by_pspec(G_OBJECT(self),
				 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_TUNNEL_PORT]);
	pb_tunnel_client_update_services(self);
	pb_tunnel_client_set_state(self, PB_TUNNEL_CLIENT_STATE_ONLINE);
	self->connected_since = g_get_real_time();
	g_object_notify_by_pspec(G_OBJECT(self),
				 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_CONNECTED_SINCE]);
	g_object_thaw_notify(G_OBJECT(self));
	/* TRANSLATORS: %s is the access URL, tcp://host:port */
	pb_tunnel_client_add_event(self, _("Online at %s"),
				   self->access_url != NULL ? self->access_url : self->http_url);
	if (self->given_name != NULL)
		/* TRANSLATORS: %s are the tunnel's name ("myapp") and its URL,
		 * https://myapp.tunnel.example.com */
		pb_tunnel_client_add_event(self, _("Named %s: %s"), self->given_name,
					   self->http_url);
	if (self->name != NULL && !(hello->features & PB_FEATURE_NAME))
		/* TRANSLATORS: %s is the name asked for with --name */
		pb_tunnel_client_add_event(self,
					   _("The server gives no names (it runs without "
					     "--domain): --name %s is not used"),
					   self->name);
	g_signal_emit(self, pb_tunnel_client_signals[PB_TUNNEL_CLIENT_SIGNAL_READY], 0,
		      self->access_url, self->http_url);
}

/* The server's RESUME came: the lost tunnel's connections that go on, and those that
 * closed. */
void
pb_tunnel_client_resumed_cb(PbTunnel *tunnel, guint resumed, guint dropped, gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(user_data);

	if (resumed + dropped == 0)
		return;
	if (dropped == 0)
		pb_tunnel_client_add_event(self,
					   /* TRANSLATORS: %u is a number of connections */
					   g_dngettext(GETTEXT_PACKAGE, "Resumed %u connection",
						       "Resumed %u connections", resumed),
					   resumed);
	else
		pb_tunnel_client_add_event(
		    self,
		    /* TRANSLATORS: %u are numbers of connections: resumed, then closed */
		    g_dngettext(GETTEXT_PACKAGE, "Resumed %u connection, %u closed",
				"Resumed %u connections, %u closed", resumed),
		    resumed, dropped);
	g_object_notify_by_pspec(G_OBJECT(self),
				 pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_CONNECTIONS_ACTIVE]);
}

/* A server that breaks the protocol before we took its HELLO (a malformed frame, a HELLO
 * that is refused) is no PiggyBack server to come back to: the client gives up. */
void
pb_tunnel_client_protocol_error_cb(PbTunnel *tunnel, const char *reason, gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(user_data);

	if (self->state == PB_TUNNEL_CLIENT_STATE_ONLINE || self->refusal != NULL)
		return; /* later, it is lost like any tunnel, and dialled again */
	/* TRANSLATORS: %s says what the server sent, e.g. “HELLO nests deeper than 32 levels” */
	self->refusal = g_strdup_printf(_("the server broke the protocol: %s"), reason);
}
