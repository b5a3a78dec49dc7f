/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-listener.h"

G_BEGIN_DECLS

/* Where the server's public ports come from: serve --tunnel-host, --tunnel-port. */
typedef struct {
	char *host;    /* (owned) (nullable) the IP address to bind; NULL: every address */
	guint16 first; /* the public port, or the first of a range; 0 = random */
	guint16 last;  /* the last of that range (= @first for one port) */
	gboolean off;  /* --tunnel-port off: no public port, names only */
} PbPublicPorts;

/* Whether another client holds @port (kept or connected). */
typedef gboolean (*PbPortTakenFunc)(guint16 port, gpointer user_data);

void
pb_public_ports_clear(PbPublicPorts *ports);
guint
pb_public_ports_get_n_range(const PbPublicPorts *ports);
PbListener *
pb_public_ports_listen(const PbPublicPorts *ports, PbPortTakenFunc taken, gpointer user_data,
		       guint16 *port_out, GError **error);

G_END_DECLS
