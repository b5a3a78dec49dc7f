/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-server-client.h"
#include "pb-session-table.h"

G_BEGIN_DECLS

/* Who holds what on a server: the connected clients, and those that left within their
 * grace period, by session, by name and by public port. */
typedef struct _PbClientRegistry PbClientRegistry;

PbClientRegistry *
pb_client_registry_new(void);
void
pb_client_registry_add(PbClientRegistry *self, PbServerClient *client);
void
pb_client_registry_remove(PbClientRegistry *self, PbServerClient *client);
const GList *
pb_client_registry_get_clients(PbClientRegistry *self);
guint
pb_client_registry_get_n_clients(PbClientRegistry *self);
PbServerClient *
pb_client_registry_find_name(PbClientRegistry *self, const char *name, guint32 *index);
gboolean
pb_client_registry_is_away(PbClientRegistry *self, const char *name);
gboolean
pb_client_registry_claim_session(PbClientRegistry *self, const char *session);
gboolean
pb_client_registry_name_taken(PbClientRegistry *self, const char *name, const char *session);
gboolean
pb_client_registry_take_session(PbClientRegistry *self, const char *session,
				PbServerClient *client);
gboolean
pb_client_registry_give_names(PbClientRegistry *self, PbServerClient *client,
			      const char *const *asked, guint n_asked);
gboolean
pb_client_registry_port_taken(PbClientRegistry *self, guint16 port);
PbAdmit
pb_client_registry_admit(PbClientRegistry *self, guint max_clients, guint n_ports,
			 GInetAddress *address);
void
pb_client_registry_keep(PbClientRegistry *self, PbServerClient *client, guint grace_s);
void
pb_client_registry_clear(PbClientRegistry *self);
void
pb_client_registry_free(PbClientRegistry *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbClientRegistry, pb_client_registry_free)

G_END_DECLS
