/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-replay.h"

#include <string.h>

#include "pb-error.h"
#include "pb-frame.h"

/*
 * Resumption (feature `resume`, which needs `flow`) keeps, per connection and direction,
 * every byte sent until the peer has confirmed it: with `resume` the peer's WINDOW frames
 * also say how many bytes it received in all. Credit comes back only for bytes the peer
 * wrote on, so what is unconfirmed is never more than the peer's window: that bounds this
 * buffer (@max, the largest window), and a peer that gives more credit than that finds the
 * sender waiting for room here (pb_replay_get_room()). After a lost WebSocket the peer says
 * how many bytes it received (RESUME); the sender sends again exactly those after them.
 * Offsets count from the connection's first byte, in 64 bits.
 *
 * The bytes are kept in one ring buffer, grown by doubling up to @max and freed by
 * pb_replay_trim() once everything is confirmed: a connection that streams keeps one
 * buffer (an allocation per DATA message made malloc give memory back to the kernel and
 * fault it in again, which halved the throughput), an idle one keeps none.
 */

/* The smallest buffer. An idle connection keeps its last bytes until the peer confirms
 * them, which may take long (WINDOW comes after a quarter window): a keystroke or a short
 * request keeps only about its own size, not a page. */
#define PB_REPLAY_MIN_CAPACITY 64

struct _PbReplay {
	guint8 *ring;	   /* (owned) (nullable) @capacity bytes; none while nothing is kept */
	gsize capacity;	   /* of @ring */
	gsize head;	   /* where in @ring the first byte kept is */
	guint64 confirmed; /* bytes the peer confirmed (dropped from here) */
	guint64 sent;	   /* bytes sent in all */
	gsize size;	   /* bytes kept: @sent - @confirmed */
	gsize max;	   /* the most kept at once */
	gsize offered;	   /* the room the last pb_replay_begin_push() gave */
	gboolean grow;	   /* the last push filled it: the next may grow the ring */
};

/**
 * pb_replay_new:
 * @max: the most bytes kept at once: the largest window the peer may give
 */
PbReplay *
pb_replay_new(gsize max)
{
	PbReplay *self = g_new0(PbReplay, 1);

	self->max = max;
	return self;
}

/* Copies @len kept bytes from @offset (counted from the first kept one) to @out. */
static void
pb_replay_copy_out(PbReplay *self, gsize offset, guint8 *out, gsize len)
{
	gsize at = (self->head + offset) % self->capacity;
	gsize first = MIN(len, self->capacity - at);

	memcpy(out, self->ring + at, first);
	memcpy(out + first, self->ring, len - first);
}

/* Makes room for @more bytes after those kept: a bigger ring, the kept bytes at its start. */
static void
pb_replay_reserve(PbReplay *self, gsize more)
{
	gsize capacity = MAX(self->capacity, PB_REPLAY_MIN_CAPACITY);
	guint8 *ring;

	if (self->size + more <= self->capacity)
		return;
	while (capacity < self->size + more)
		capacity *= 2;
	capacity = MIN(capacity, MAX(self->max, self->size + more));
	ring = g_malloc(capacity);
	if (self->size > 0)
		pb_replay_copy_out(self, 0, ring, self->size);
	g_free(self->ring);
	self->ring = ring;
	self->capacity = capacity;
	self->head = 0;
}

/* Keeps @len bytes just sent (a copy: a PROXY header, the tests). FALSE, keeping nothing,
 * if that is more than the peer's window allows (a sender that does not respect its
 * credit). */
gboolean
pb_replay_push(PbReplay *self, const guint8 *data, gsize len)
{
	if (len > self->max - self->size)
		return FALSE;
	while (len > 0) {
		gsize n;
		guint8 *place = pb_replay_begin_push(self, len, &n);

		memcpy(place, data, n);
		pb_replay_end_push(self, n);
		data += n;
		len -= n;
	}
	return TRUE;
}

/**
 * pb_replay_begin_push:
 * @want: how many bytes the caller would like to send, at most pb_replay_get_room()
 * @len: (out): how many of them it may put at the returned place: fewer where the ring
 *   wraps, and 0 only if @want is
 *
 * The place for the next bytes sent, for a caller that reads them from a socket straight
 * into the replay buffer and sends them from there (no copy); pb_replay_end_push() says
 * how many it put there.
 *
 * Returns: (transfer none): where to put them
 */
guint8 *
pb_replay_begin_push(PbReplay *self, gsize want, gsize *len)
{
	gsize tail;

	want = MIN(want, self->max - self->size);
	if (want == 0) {
		*len = 0;
		return NULL;
	}
	/* The bytes come from a socket read of unknown length: room for all of @want (up to
	 * a window) would give each connection that sent a keystroke a ring of 256 KiB, of
	 * which a page or two is touched, and a mapping of its own. So the ring grows only
	 * when full or when the last push filled its room, at most doubling: a stream reaches
	 * its window in a dozen reads, an idle connection keeps 64 bytes. */
	if (self->capacity == self->size || self->grow)
		pb_replay_reserve(self, MIN(want, MAX(self->capacity, PB_REPLAY_MIN_CAPACITY)));
	tail = (self->head + self->size) % self->capacity;
	*len = MIN(want, MIN(self->capacity - self->size, self->capacity - tail));
	self->offered = *len;
	return self->ring + tail;
}

/* @len bytes, at most what pb_replay_begin_push() gave room for, were put there: kept. */
void
pb_replay_end_push(PbReplay *self, gsize len)
{
	self->size += len;
	self->sent += len;
	self->grow = len == self->offered;
}

/* How many more bytes may be sent now: the rest wait for the peer to confirm some. */
gsize
pb_replay_get_room(PbReplay *self)
{
	return self->max - self->size;
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
	gsize len;

	if (received < self->confirmed || received > self->sent)
		return FALSE;
	len = (gsize)(received - self->confirmed);
	self->confirmed += len;
	self->size -= len;
	if (self->capacity > 0)
		self->head = (self->head + len) % self->capacity;
	return TRUE;
}

/* Frees the ring if nothing is kept: called now and then (pb-tunnel-resume.c), not at each
 * confirmation, which would free and grow it again every time a busy connection's bytes
 * are all confirmed (a quarter off 4 iperf3 streams at once). */
void
pb_replay_trim(PbReplay *self)
{
	if (self->size > 0)
		return;
	g_clear_pointer(&self->ring, g_free);
	self->capacity = self->head = 0;
	self->grow = FALSE;
}

/**
 * pb_replay_rewind:
 * @received: how many bytes the peer says it received in all
 * @resend: (out) (transfer full) (element-type GBytes): the bytes after those, to send
 *   again, in order, in pieces of at most PB_READ_CHUNK (one DATA message each)
 *
 * A peer that lost the WebSocket says how much it got: everything after it is sent again.
 * It cannot have received fewer bytes than it confirmed, nor more than were sent.
 *
 * Returns: FALSE with @error set (and nothing in @resend) for a @received that is either
 */
gboolean
pb_replay_rewind(PbReplay *self, guint64 received, GPtrArray **resend, GError **error)
{
	if (received < self->confirmed || received > self->sent) {
		g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
			    "the peer says it received %" G_GUINT64_FORMAT
			    " bytes of %" G_GUINT64_FORMAT " sent, %" G_GUINT64_FORMAT
			    " of them confirmed",
			    received, self->sent, self->confirmed);
		return FALSE;
	}
	*resend = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	for (gsize offset = (gsize)(received - self->confirmed); offset < self->size;) {
		gsize len = MIN(self->size - offset, PB_READ_CHUNK);
		guint8 *piece = g_malloc(len);

		pb_replay_copy_out(self, offset, piece, len);
		g_ptr_array_add(*resend, g_bytes_new_take(piece, len));
		offset += len;
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

/* Bytes the ring has room for, kept or not. */
gsize
pb_replay_get_capacity(PbReplay *self)
{
	return self->capacity;
}

void
pb_replay_free(PbReplay *self)
{
	if (self == NULL)
		return;
	g_free(self->ring);
	g_free(self);
}
