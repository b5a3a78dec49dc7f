/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What one side of a connection sent and the other has not confirmed yet: kept to send
 * again after a resumption (feature `resume`). */
typedef struct _PbReplay PbReplay;

PbReplay *
pb_replay_new(gsize max);
gboolean
pb_replay_push(PbReplay *self, const guint8 *data, gsize len);
guint8 *
pb_replay_begin_push(PbReplay *self, gsize want, gsize *len);
void
pb_replay_end_push(PbReplay *self, gsize len);
gsize
pb_replay_get_room(PbReplay *self);
gboolean
pb_replay_acknowledge(PbReplay *self, guint64 received);
void
pb_replay_trim(PbReplay *self);
gboolean
pb_replay_rewind(PbReplay *self, guint64 received, GPtrArray **resend, GError **error);
guint64
pb_replay_get_sent(PbReplay *self);
guint64
pb_replay_get_confirmed(PbReplay *self);
gsize
pb_replay_get_size(PbReplay *self);
gsize
pb_replay_get_capacity(PbReplay *self);
void
pb_replay_free(PbReplay *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbReplay, pb_replay_free)

G_END_DECLS
