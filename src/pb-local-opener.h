/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-local-dialer.h"
#include "pb-stream.h"
#include "pb-tunnel.h"

G_BEGIN_DECLS

/* The client's local side: a connection to the local service for each OPEN, at most
 * forward --max-connections at once. */
typedef struct _PbLocalOpener PbLocalOpener;

/* Says something for people (the client's events): OPENs refused. */
typedef void (*PbLocalOpenerEventFunc)(const char *message, gpointer user_data);

PbLocalOpener *
pb_local_opener_new(PbLocalOpenerEventFunc event_func, gpointer user_data);
void
pb_local_opener_set_max_connections(PbLocalOpener *self, guint max_connections);
gboolean
pb_local_opener_open(PbLocalOpener *self, PbTunnel *tunnel, PbStream *stream, PbLocalDialer *dialer,
		     const char *address, GCancellable *cancellable);
void
pb_local_opener_free(PbLocalOpener *self);

G_END_DECLS
