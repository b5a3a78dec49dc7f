/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-flow.h"
#include "pb-queue-budget.h"
#include "pb-replay.h"

G_BEGIN_DECLS

#define PB_TYPE_STREAM (pb_stream_get_type())
G_DECLARE_FINAL_TYPE(PbStream, pb_stream, PB, STREAM, GObject)

/* What a stream tells its tunnel on every read and write (pb_stream_set_io_funcs()). */
typedef struct {
	/* the socket has data to read, or has ended: call pb_stream_receive() */
	void (*readable)(PbStream *stream, gpointer user_data);
	/* @n bytes given to the stream reached the socket (also during pb_stream_write()) */
	void (*wrote)(PbStream *stream, guint64 n, gpointer user_data);
} PbStreamIoFuncs;

PbStream *
pb_stream_new(guint32 id);
void
pb_stream_set_io_funcs(PbStream *self, const PbStreamIoFuncs *funcs, gpointer user_data);
guint32
pb_stream_get_id(PbStream *self);
guint32
pb_stream_get_service(PbStream *self);
void
pb_stream_set_service(PbStream *self, guint32 service);
void
pb_stream_set_connection(PbStream *self, GSocketConnection *connection);
gboolean
pb_stream_is_connected(PbStream *self);
void
pb_stream_set_reading(PbStream *self, gboolean reading);
gssize
pb_stream_receive(PbStream *self, guint8 *buf, gsize size, GError **error);
gboolean
pb_stream_write(PbStream *self, GBytes *bytes, gsize offset, GError **error);
gboolean
pb_stream_write_data(PbStream *self, const guint8 *data, gsize len, GError **error);
gint64
pb_stream_get_last_active(PbStream *self);
PbFlow *
pb_stream_get_flow(PbStream *self);
PbReplay *
pb_stream_get_replay(PbStream *self);
void
pb_stream_set_replay(PbStream *self, PbReplay *replay);
void
pb_stream_set_blocked(PbStream *self, gboolean blocked);
gboolean
pb_stream_get_blocked(PbStream *self);
void
pb_stream_end_reading(PbStream *self);
gboolean
pb_stream_get_read_ended(PbStream *self);
void
pb_stream_end_writing(PbStream *self);
gboolean
pb_stream_get_write_ended(PbStream *self);
gboolean
pb_stream_get_ended(PbStream *self);
void
pb_stream_set_queue_share(PbStream *self, PbQueueShare *share);
void
pb_stream_set_high_watermark(PbStream *self, gsize high);
gsize
pb_stream_get_pending(PbStream *self);
gboolean
pb_stream_is_congested(PbStream *self);
gboolean
pb_stream_finish(PbStream *self);
void
pb_stream_abort(PbStream *self);
void
pb_stream_fail(PbStream *self, const GError *error);

G_END_DECLS
