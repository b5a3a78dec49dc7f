/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-batch.h"

/*
 * One go of the main loop's work on a thread: what one dispatch of the PbPoller (tunneled
 * sockets, listeners, local dials) or of the WebSocket's input does. Work done during it
 * may defer a call to its end (pb_batch_defer()); PbWsOutput does, to write the small
 * WebSocket frames of a batch (OPEN, WINDOW, EOF, CLOSE, a short DATA) with one system
 * call instead of one each.
 *
 * Batches nest (a callback that iterates the main loop); the deferred calls run when the
 * outermost one ends. The state is the thread's: a main context is iterated by one thread
 * at a time, so its batches are that thread's too.
 */

typedef struct {
	PbBatchFunc func;
	gpointer user_data;
} PbBatchCall;

typedef struct {
	guint depth;
	guint n_deferred;
	PbBatchCall deferred[PB_BATCH_MAX_DEFERRED];
} PbBatch;

static _Thread_local PbBatch batch;

void
pb_batch_begin(void)
{
	batch.depth++;
}

/* Runs the deferred calls if the outermost batch ends: those of calls deferred meanwhile
 * too, in order. */
void
pb_batch_end(void)
{
	g_return_if_fail(batch.depth > 0);

	if (batch.depth > 1) {
		batch.depth--;
		return;
	}
	/* still inside while they run: what they defer runs in this loop */
	for (guint i = 0; i < batch.n_deferred; i++)
		batch.deferred[i].func(batch.deferred[i].user_data);
	batch.n_deferred = 0;
	batch.depth = 0;
}

/**
 * pb_batch_defer:
 *
 * Calls @func at the end of the thread's current batch.
 *
 * Returns: %FALSE, calling nothing, outside a batch or when PB_BATCH_MAX_DEFERRED calls
 *   wait already: the caller does its work at once
 */
gboolean
pb_batch_defer(PbBatchFunc func, gpointer user_data)
{
	if (batch.depth == 0 || batch.n_deferred == PB_BATCH_MAX_DEFERRED)
		return FALSE;
	batch.deferred[batch.n_deferred++] = (PbBatchCall){func, user_data};
	return TRUE;
}
