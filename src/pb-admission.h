/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The connections to the server's WebSocket port that are not a tunnel yet: how long each
 * may take, how many may wait at once, in all and from one network, and which one makes
 * room for a newcomer when every place is taken. */
typedef struct _PbAdmission PbAdmission;

PbAdmission *
pb_admission_new(void);
void
pb_admission_set_limits(PbAdmission *self, guint handshake_timeout_s, guint max_pending,
			guint max_per_network);
gboolean
pb_admission_add(PbAdmission *self, GIOStream *stream, GSocket *socket, GSocketAddress *remote);
void
pb_admission_set_busy(PbAdmission *self, GSocketAddress *remote, gboolean busy);
void
pb_admission_upgraded(PbAdmission *self, GIOStream *stream);
guint
pb_admission_get_n_pending(PbAdmission *self);
void
pb_admission_free(PbAdmission *self);

gboolean
pb_admission_same_network(GInetAddress *a, GInetAddress *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbAdmission, pb_admission_free)

G_END_DECLS
