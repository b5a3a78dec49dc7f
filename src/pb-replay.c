/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-replay.h"

#include "pb-error.h"

/*
 * Resumption (feature `resume`, which needs `flow`) keeps, per connection and direction,
 * every byte sent until the peer has confirmed it: with `resume` the peer's WINDOW frames
 * also say how many bytes it received in all. Credit comes back only for bytes the peer
 * wrote on, so what is unconfirmed is never more than the peer's window: that bounds this
 * buffer (@max, the largest window), and a peer that gives more credit than that finds the
 * sender waiting for room here (pb_replay_get_room()). After a
 * lost WebSocket the peer says how many bytes it received (RESUME); the sender sends again
 * exactly those after them. Offsets count from the connection's first byte, in 64 bits.
 */

struct _PbReplay {
	GQueue chunks;	   /* (owned) GBytes, oldest first: the bytes from @confirmed on */
	gsize first_skip;  /* bytes of the first chunk confirmed already */
	guint64 confirmed; /* bytes the peer confirmed (dropped from here) */
	guint64 sent;	   /* bytes sent in all */
	gsize size;	   /* bytes kept: @sent - @confirmed */
	gsize max;	   /* the most kept at once */
};

/**
 * pb_replay_new:
 * @max: the most bytes kept at once: the largest window the peer may give
 */
PbReplay *
pb_replay_new(gsize max)
{
	PbReplay *self = g_new0(PbReplay, 1);

	g_queue_init(&self->chunks);
	self->max = max;
	return self;
}

/* Keeps @len bytes just sent. FALSE, keeping nothing, if that is more than the peer's
 * window allows (a sender that does not respect its credit). */
gboolean
pb_replay_push(PbReplay *self, const guint8 *data, gsize len)
{
	if (len > self->max - self->size)
		return FALSE;
	if (len == 0)
		return TRUE;
	g_queue_push_tail(&self->chunks, g_bytes_new(data, len));
	self->size += len;
	self->sent += len;
	return TRUE;
}

/* How many more bytes may be sent now: the rest wait for the peer to confirm some. */
gsize
pb_replay_get_room(PbReplay *self)
{
	return self->max - self->size;
}

/* Drops the @len oldest bytes kept: the peer has them. */
static void
pb_replay_drop(PbReplay *self, gsize len)
{
	self->confirmed += len;
	self->size -= len;
	while (len > 0) {
		GBytes *first = g_queue_peek_head(&self->chunks);
		gsize left = g_bytes_get_size(first) - self->first_skip;

		if (len < left) {
			self->first_skip += len;
			return;
		}
		len -= left;
		self->first_skip = 0;
		g_bytes_unref(g_queue_pop_head(&self->chunks));
	}
}

/**
 * pb_replay_acknowledge:
 * @received: how many bytes the peer says it received in all (a WINDOW frame's count)
 *
 * What the peer received is not kept any longer.
 *
 * Returns: FALSE, changing nothing, if the peer says it received fewer bytes than it
 *   already confirmed or more than were sent: a lie
 */
gboolean
pb_replay_acknowledge(PbReplay *self, guint64 received)
{
	if (received < self->confirmed || received > self->sent)
		return FALSE;
	pb_replay_drop(self, (gsize)(received - self->confirmed));
	return TRUE;
}

/**
 * pb_replay_rewind:
 * @received: how many bytes the peer says it received in all
 * @resend: (out) (transfer full) (element-type GBytes): the bytes after those, to send
 *   again, in order
 *
 * A peer that lost the WebSocket says how much it got: everything after it is sent again.
 * It cannot have received fewer bytes than it confirmed, nor more than were sent.
 *
 * Returns: FALSE with @error set (and nothing in @resend) for a @received that is either
 */
gboolean
pb_replay_rewind(PbReplay *self, guint64 received, GPtrArray **resend, GError **error)
{
	guint64 offset = self->confirmed;
	gsize skip = self->first_skip;

	if (received < self->confirmed || received > self->sent) {
		g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
			    "the peer says it received %" G_GUINT64_FORMAT
			    " bytes of %" G_GUINT64_FORMAT " sent, %" G_GUINT64_FORMAT
			    " of them confirmed",
			    received, self->sent, self->confirmed);
		return FALSE;
	}
	*resend = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	for (GList *l = self->chunks.head; l != NULL; l = l->next) {
		GBytes *chunk = l->data;
		gsize len = g_bytes_get_size(chunk) - skip;

		if (offset + len > received) {
			gsize from = received > offset ? (gsize)(received - offset) : 0;

			g_ptr_array_add(*resend,
					g_bytes_new_from_bytes(chunk, skip + from, len - from));
		}
		offset += len;
		skip = 0;
	}
	return TRUE;
}

/* Bytes sent since the connection opened. */
guint64
pb_replay_get_sent(PbReplay *self)
{
	return self->sent;
}

/* Bytes the peer confirmed. */
guint64
pb_replay_get_confirmed(PbReplay *self)
{
	return self->confirmed;
}

/* Bytes kept now. */
gsize
pb_replay_get_size(PbReplay *self)
{
	return self->size;
}

void
pb_replay_free(PbReplay *self)
{
	if (self == NULL)
		return;
	g_queue_clear_full(&self->chunks, (GDestroyNotify)g_bytes_unref);
	g_free(self);
}
