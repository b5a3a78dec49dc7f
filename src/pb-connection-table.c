/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-connection-table.h"

#include "pb-frame.h"

/*
 * The tunneled connections of one WebSocket: the live ones by connId, and the retired
 * ones that are over for the protocol (their connId is free again) but still write what
 * was queued for their socket. Also whether live streams are read at all: the tunnel
 * stops reading them all while the WebSocket has too much queued.
 */

struct _PbConnectionTable {
	GObject parent_instance;
	GHashTable *live;    /* (owned) connId → PbStream (owned) */
	GHashTable *retired; /* (owned) set of PbStream (owned) */
	guint32 last_id;
	gboolean reading;
};

G_DEFINE_FINAL_TYPE(PbConnectionTable, pb_connection_table, G_TYPE_OBJECT)

/* A connId for a new connection: never 0, never one in use; counts up and wraps. */
guint32
pb_connection_table_next_id(PbConnectionTable *self)
{
	guint32 id;

	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), 0);

	do
		id = ++self->last_id;
	while (id == PB_CONTROL_ID || g_hash_table_contains(self->live, GUINT_TO_POINTER(id)));
	return id;
}

/* Adds @stream as live under its connId (a reference), reading it if streams are read. */
void
pb_connection_table_add(PbConnectionTable *self, PbStream *stream)
{
	g_return_if_fail(PB_IS_CONNECTION_TABLE(self));
	g_return_if_fail(pb_connection_table_lookup(self, pb_stream_get_id(stream)) == NULL);

	g_hash_table_insert(self->live, GUINT_TO_POINTER(pb_stream_get_id(stream)),
			    g_object_ref(stream));
	pb_stream_set_reading(stream, self->reading);
}

/* Returns: (transfer none) (nullable): the live stream with connId @id */
PbStream *
pb_connection_table_lookup(PbConnectionTable *self, guint32 id)
{
	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), NULL);
	return g_hash_table_lookup(self->live, GUINT_TO_POINTER(id));
}

gboolean
pb_connection_table_is_live(PbConnectionTable *self, PbStream *stream)
{
	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), FALSE);
	return pb_connection_table_lookup(self, pb_stream_get_id(stream)) == stream;
}

/* Frees @stream's connId but keeps the stream until it is removed (it is finishing). */
void
pb_connection_table_retire(PbConnectionTable *self, PbStream *stream)
{
	g_return_if_fail(PB_IS_CONNECTION_TABLE(self));
	g_return_if_fail(pb_connection_table_is_live(self, stream));

	g_hash_table_steal(self->live, GUINT_TO_POINTER(pb_stream_get_id(stream)));
	g_hash_table_add(self->retired, stream);
}

/* Forgets @stream, live or retired. */
void
pb_connection_table_remove(PbConnectionTable *self, PbStream *stream)
{
	g_return_if_fail(PB_IS_CONNECTION_TABLE(self));

	if (pb_connection_table_is_live(self, stream))
		g_hash_table_remove(self->live, GUINT_TO_POINTER(pb_stream_get_id(stream)));
	else
		g_hash_table_remove(self->retired, stream);
}

/* Turns reading of every live stream, and of those added later, on or off. */
void
pb_connection_table_set_reading(PbConnectionTable *self, gboolean reading)
{
	GHashTableIter iter;
	gpointer stream;

	g_return_if_fail(PB_IS_CONNECTION_TABLE(self));

	self->reading = reading;
	g_hash_table_iter_init(&iter, self->live);
	while (g_hash_table_iter_next(&iter, NULL, &stream))
		pb_stream_set_reading(stream, reading);
}

gboolean
pb_connection_table_get_reading(PbConnectionTable *self)
{
	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), FALSE);
	return self->reading;
}

guint
pb_connection_table_get_n_live(PbConnectionTable *self)
{
	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), 0);
	return g_hash_table_size(self->live);
}

/* The streams of @table, its values (live: connId → stream) or its keys (retired: a set),
 * each a reference. */
static GPtrArray *
pb_connection_table_list(GHashTable *table, gboolean keys)
{
	GPtrArray *streams = g_ptr_array_new_with_free_func(g_object_unref);
	GHashTableIter iter;
	gpointer key;
	gpointer value;

	g_hash_table_iter_init(&iter, table);
	while (g_hash_table_iter_next(&iter, &key, &value))
		g_ptr_array_add(streams, g_object_ref(keys ? key : value));
	return streams;
}

/* Returns: (transfer container): the live streams (each a reference) */
GPtrArray *
pb_connection_table_list_live(PbConnectionTable *self)
{
	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), NULL);
	return pb_connection_table_list(self->live, FALSE);
}

/* Returns: (transfer container): the retired streams (each a reference) */
GPtrArray *
pb_connection_table_list_retired(PbConnectionTable *self)
{
	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), NULL);
	return pb_connection_table_list(self->retired, TRUE);
}

/* New connIds go on from the last one @before gave: a resumed tunnel does not give a new
 * connection the id of one the peer may still hold from the tunnel it lost. */
void
pb_connection_table_continue_ids(PbConnectionTable *self, PbConnectionTable *before)
{
	g_return_if_fail(PB_IS_CONNECTION_TABLE(self));
	g_return_if_fail(PB_IS_CONNECTION_TABLE(before));

	self->last_id = MAX(self->last_id, before->last_id);
}

/* Returns: the streams that may still hold a socket: the live ones and the retired ones
 * that are writing what was queued for them */
guint
pb_connection_table_get_n_held(PbConnectionTable *self)
{
	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), 0);
	return g_hash_table_size(self->live) + g_hash_table_size(self->retired);
}

/**
 * pb_connection_table_list_idle:
 * @since: monotonic µs
 *
 * Returns: (transfer container): the streams, live or retired, whose socket has seen no
 *   byte either way since @since (each a reference)
 */
GPtrArray *
pb_connection_table_list_idle(PbConnectionTable *self, gint64 since)
{
	GPtrArray *idle = g_ptr_array_new_with_free_func(g_object_unref);
	GHashTableIter iter;
	gpointer stream;

	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), idle);

	g_hash_table_iter_init(&iter, self->live);
	while (g_hash_table_iter_next(&iter, NULL, &stream)) {
		if (pb_stream_get_last_active(stream) < since)
			g_ptr_array_add(idle, g_object_ref(stream));
	}
	g_hash_table_iter_init(&iter, self->retired);
	while (g_hash_table_iter_next(&iter, &stream, NULL)) {
		if (pb_stream_get_last_active(stream) < since)
			g_ptr_array_add(idle, g_object_ref(stream));
	}
	return idle;
}

/* Closes every stream at once, dropping what was queued, and forgets them all. */
void
pb_connection_table_clear(PbConnectionTable *self)
{
	GHashTableIter iter;
	gpointer stream;

	g_return_if_fail(PB_IS_CONNECTION_TABLE(self));

	g_hash_table_iter_init(&iter, self->live);
	while (g_hash_table_iter_next(&iter, NULL, &stream))
		pb_stream_abort(stream);
	g_hash_table_remove_all(self->live);
	g_hash_table_iter_init(&iter, self->retired);
	while (g_hash_table_iter_next(&iter, &stream, NULL))
		pb_stream_abort(stream);
	g_hash_table_remove_all(self->retired);
}

static void
pb_connection_table_finalize(GObject *object)
{
	PbConnectionTable *self = PB_CONNECTION_TABLE(object);

	pb_connection_table_clear(self);
	g_hash_table_unref(self->live);
	g_hash_table_unref(self->retired);
	G_OBJECT_CLASS(pb_connection_table_parent_class)->finalize(object);
}

static void
pb_connection_table_class_init(PbConnectionTableClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = pb_connection_table_finalize;
}

static void
pb_connection_table_init(PbConnectionTable *self)
{
	self->live = g_hash_table_new_full(NULL, NULL, NULL, g_object_unref);
	self->retired = g_hash_table_new_full(NULL, NULL, g_object_unref, NULL);
	self->reading = TRUE;
}

PbConnectionTable *
pb_connection_table_new(void)
{
	return g_object_new(PB_TYPE_CONNECTION_TABLE, NULL);
}
