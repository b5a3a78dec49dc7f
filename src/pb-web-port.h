/* SPDX-License-Identifier: ISC */
#pragma once

#include <libsoup/soup.h>

#include "pb-address-rules.h"
#include "pb-router.h"

G_BEGIN_DECLS

/* The server's WebSocket port: accepts connections for a SoupServer and closes those that
 * do not become a tunnel in time. */
typedef struct _PbWebPort PbWebPort;

/* Takes @connection as a public connection of tunnel @name. @origin is the public client's
 * TCP connection, whose addresses a PROXY header gives: @connection itself, or, for TLS
 * terminated here, the one under it. */
typedef PbRoute (*PbWebPortTunnelFunc)(const char *name, GSocketConnection *connection,
				       GSocketConnection *origin, gpointer user_data);

PbWebPort *
pb_web_port_new(SoupServer *soup, GTlsCertificate *certificate);
PbWebPort *
pb_web_port_new_passthrough(void);
void
pb_web_port_set_router(PbWebPort *self, const char *domain, PbWebPortTunnelFunc tunnel_func,
		       gpointer user_data);
void
pb_web_port_set_address_rules(PbWebPort *self, PbAddressRules *rules);
void
pb_web_port_set_limits(PbWebPort *self, guint handshake_timeout_s, guint max_pending,
		       guint max_pending_per_address);
gboolean
pb_web_port_listen(PbWebPort *self, GInetAddress *address, guint16 port, GError **error);
guint16
pb_web_port_get_port(PbWebPort *self);
guint
pb_web_port_get_n_pending(PbWebPort *self);
void
pb_web_port_upgraded(PbWebPort *self, GIOStream *stream);
void
pb_web_port_free(PbWebPort *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbWebPort, pb_web_port_free)

G_END_DECLS
