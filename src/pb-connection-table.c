/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-connection-table.h"

#include "pb-frame.h"

/*
 * The tunneled connections of one WebSocket: the live ones by connId, and the retired
 * ones that are over for the protocol (their connId is free again) but still write what
 * was queued for their socket. Also whether live streams are read at all: the tunnel
 * stops reading them all while the WebSocket has too much queued.
 *
 * Turns: when reading starts again, the streams are handed back to the epoll set in turn
 * order, so the ones that wait longest are read first (epoll reports ready sockets in the
 * order they were added). The stream that was read last before the pause goes to the end
 * of the line. Without turns the order was the hash table's: while the WebSocket was the
 * bottleneck, the first few streams in that order took all of it (a read is up to 256 KiB
 * and about four fill the WebSocket's queue) and the others waited until those ended.
 */

struct _PbConnectionTable {
	GObject parent_instance;
	GHashTable *live;    /* (owned) connId → its link in @turns */
	GQueue turns;	     /* (owned) the live streams (each owned), the next to read first */
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

	g_queue_push_tail(&self->turns, g_object_ref(stream));
	g_hash_table_insert(self->live, GUINT_TO_POINTER(pb_stream_get_id(stream)),
			    self->turns.tail);
	pb_stream_set_reading(stream, self->reading);
}

/* Returns: (transfer none) (nullable): the live stream with connId @id */
PbStream *
pb_connection_table_lookup(PbConnectionTable *self, guint32 id)
{
	GList *link;

	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), NULL);

	link = g_hash_table_lookup(self->live, GUINT_TO_POINTER(id));
	return link != NULL ? link->data : NULL;
}

gboolean
pb_connection_table_is_live(PbConnectionTable *self, PbStream *stream)
{
	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), FALSE);
	return pb_connection_table_lookup(self, pb_stream_get_id(stream)) == stream;
}

/* Takes live @stream out of the table. Returns: (transfer full): the table's reference */
static PbStream *
pb_connection_table_unlink(PbConnectionTable *self, PbStream *stream)
{
	gpointer key = GUINT_TO_POINTER(pb_stream_get_id(stream));
	GList *link = g_hash_table_lookup(self->live, key);

	g_hash_table_remove(self->live, key);
	g_queue_delete_link(&self->turns, link);
	return stream;
}

/* Frees @stream's connId but keeps the stream until it is removed (it is finishing). */
void
pb_connection_table_retire(PbConnectionTable *self, PbStream *stream)
{
	g_return_if_fail(PB_IS_CONNECTION_TABLE(self));
	g_return_if_fail(pb_connection_table_is_live(self, stream));

	g_hash_table_add(self->retired, pb_connection_table_unlink(self, stream));
}

/* Forgets @stream, live or retired. */
void
pb_connection_table_remove(PbConnectionTable *self, PbStream *stream)
{
	g_return_if_fail(PB_IS_CONNECTION_TABLE(self));

	if (pb_connection_table_is_live(self, stream))
		g_object_unref(pb_connection_table_unlink(self, stream));
	else
		g_hash_table_remove(self->retired, stream);
}

/* Turns reading of every live stream, and of those added later, on or off: on, in turn
 * order. */
void
pb_connection_table_set_reading(PbConnectionTable *self, gboolean reading)
{
	g_return_if_fail(PB_IS_CONNECTION_TABLE(self));

	self->reading = reading;
	for (GList *l = self->turns.head; l != NULL; l = l->next)
		pb_stream_set_reading(l->data, reading);
}

/**
 * pb_connection_table_pause_reading:
 * @last: (nullable): the stream read last, whose read filled what the WebSocket may queue
 *
 * Stops reading every live stream. When reading starts again, the streams after @last
 * (in turn order) are read first, and @last itself last.
 */
void
pb_connection_table_pause_reading(PbConnectionTable *self, PbStream *last)
{
	GList *link;

	g_return_if_fail(PB_IS_CONNECTION_TABLE(self));

	link = last != NULL
		   ? g_hash_table_lookup(self->live, GUINT_TO_POINTER(pb_stream_get_id(last)))
		   : NULL;
	if (link != NULL && link->data == last && link != self->turns.tail) {
		/* [head … last][next … tail] becomes [next … tail][head … last] */
		GList *next = link->next;

		link->next = NULL;
		next->prev = NULL;
		self->turns.tail->next = self->turns.head;
		self->turns.head->prev = self->turns.tail;
		self->turns.head = next;
		self->turns.tail = link;
	}
	pb_connection_table_set_reading(self, FALSE);
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

/* Returns: (transfer container): the live streams (each a reference) */
GPtrArray *
pb_connection_table_list_live(PbConnectionTable *self)
{
	GPtrArray *streams;

	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), NULL);

	streams = g_ptr_array_new_full(self->turns.length, g_object_unref);
	for (GList *l = self->turns.head; l != NULL; l = l->next)
		g_ptr_array_add(streams, g_object_ref(l->data));
	return streams;
}

/* Returns: (transfer container): the retired streams (each a reference) */
GPtrArray *
pb_connection_table_list_retired(PbConnectionTable *self)
{
	GPtrArray *streams;
	GHashTableIter iter;
	gpointer stream;

	g_return_val_if_fail(PB_IS_CONNECTION_TABLE(self), NULL);

	streams = g_ptr_array_new_full(g_hash_table_size(self->retired), g_object_unref);
	g_hash_table_iter_init(&iter, self->retired);
	while (g_hash_table_iter_next(&iter, &stream, NULL))
		g_ptr_array_add(streams, g_object_ref(stream));
	return streams;
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

	for (GList *l = self->turns.head; l != NULL; l = l->next) {
		if (pb_stream_get_last_active(l->data) < since)
			g_ptr_array_add(idle, g_object_ref(l->data));
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

	for (GList *l = self->turns.head; l != NULL; l = l->next)
		pb_stream_abort(l->data);
	g_hash_table_remove_all(self->live);
	g_queue_clear_full(&self->turns, g_object_unref);
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
	self->live = g_hash_table_new(NULL, NULL);
	self->retired = g_hash_table_new_full(NULL, NULL, g_object_unref, NULL);
	self->reading = TRUE;
}

PbConnectionTable *
pb_connection_table_new(void)
{
	return g_object_new(PB_TYPE_CONNECTION_TABLE, NULL);
}
