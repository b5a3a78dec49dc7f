/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-listener.h"
#include "pb-tunnel.h"

G_BEGIN_DECLS

/* The public ports `serve` keeps for clients that went away (--grace), each for the
 * session id the client comes back with. */
typedef struct _PbSessionTable PbSessionTable;

typedef enum {
	PB_ADMIT_OK,
	PB_ADMIT_FULL,	  /* --max-clients */
	PB_ADMIT_NO_PORT, /* every port of the --tunnel-port range is held */
} PbAdmit;

PbSessionTable *
pb_session_table_new(void);
void
pb_session_table_reserve(PbSessionTable *self, const char *session, GInetAddress *address,
			 const char *peer, GPtrArray *services, PbTunnel *lost, guint grace_s);
gboolean
pb_session_table_claim(PbSessionTable *self, const char *session);
GPtrArray *
pb_session_table_take(PbSessionTable *self, const char *session, PbTunnel **lost);
gboolean
pb_session_table_holds_name(PbSessionTable *self, const char *name, const char *session);
gboolean
pb_session_table_holds_port(PbSessionTable *self, guint16 port);
guint
pb_session_table_get_size(PbSessionTable *self);
PbAdmit
pb_session_table_admit(PbSessionTable *self, guint n_connected, guint max_clients, guint n_ports,
		       GInetAddress *address);
void
pb_session_table_free(PbSessionTable *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbSessionTable, pb_session_table_free)

G_END_DECLS
