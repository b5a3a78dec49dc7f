/* SPDX-License-Identifier: ISC */
#pragma once

#include "pb-stream.h"

G_BEGIN_DECLS

#define PB_TYPE_CONNECTION_TABLE (pb_connection_table_get_type())
G_DECLARE_FINAL_TYPE(PbConnectionTable, pb_connection_table, PB, CONNECTION_TABLE, GObject)

PbConnectionTable *
pb_connection_table_new(void);
guint32
pb_connection_table_next_id(PbConnectionTable *self);
void
pb_connection_table_add(PbConnectionTable *self, PbStream *stream);
PbStream *
pb_connection_table_lookup(PbConnectionTable *self, guint32 id);
gboolean
pb_connection_table_is_live(PbConnectionTable *self, PbStream *stream);
void
pb_connection_table_retire(PbConnectionTable *self, PbStream *stream);
void
pb_connection_table_remove(PbConnectionTable *self, PbStream *stream);
void
pb_connection_table_set_reading(PbConnectionTable *self, gboolean reading);
void
pb_connection_table_pause_reading(PbConnectionTable *self, PbStream *last);
gboolean
pb_connection_table_get_reading(PbConnectionTable *self);
guint
pb_connection_table_get_n_live(PbConnectionTable *self);
guint
pb_connection_table_get_n_held(PbConnectionTable *self);
GPtrArray *
pb_connection_table_list_live(PbConnectionTable *self);
GPtrArray *
pb_connection_table_list_retired(PbConnectionTable *self);
void
pb_connection_table_continue_ids(PbConnectionTable *self, PbConnectionTable *before);
GPtrArray *
pb_connection_table_list_idle(PbConnectionTable *self, gint64 since);
void
pb_connection_table_clear(PbConnectionTable *self);

G_END_DECLS
