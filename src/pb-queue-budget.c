/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-queue-budget.h"

/*
 * The server-wide budget for bytes queued towards public connections (serve --max-buffer):
 * what tunnels received from their clients and the public sockets have not taken yet.
 * Without it, each of --max-connections × --max-clients connections that never reads could
 * hold up to a stream's high watermark.
 *
 * Each tunnel holds a PbQueueShare; its streams add what they queue and remove what their
 * sockets take. A share is over budget when the server's total is over the limit and the
 * share is at least a fair part of it (limit / shares): the tunnels whose public readers
 * are slow are held back, not the others, which keep working. Its owner then takes no more
 * (protocol 1: its WebSocket is not read; protocol 2: it gives no credit back) until the
 * share is released: when the total is back under three quarters of the limit, or the
 * share under three quarters of its fair part (so a held tunnel does not flap at the edge).
 */

struct _PbQueueBudget {
	grefcount ref;
	guint64 limit;
	guint64 used;
	guint n_shares;
	GPtrArray *held; /* (owned) (element-type PbQueueShare) (unowned elements) */
};

PbQueueBudget *
pb_queue_budget_new(guint64 limit)
{
	PbQueueBudget *budget = g_new0(PbQueueBudget, 1);

	g_ref_count_init(&budget->ref);
	budget->limit = MAX(limit, 1);
	budget->held = g_ptr_array_new();
	return budget;
}

PbQueueBudget *
pb_queue_budget_ref(PbQueueBudget *budget)
{
	g_return_val_if_fail(budget != NULL, NULL);
	g_ref_count_inc(&budget->ref);
	return budget;
}

void
pb_queue_budget_unref(PbQueueBudget *budget)
{
	g_return_if_fail(budget != NULL);

	if (!g_ref_count_dec(&budget->ref))
		return;
	g_warn_if_fail(budget->held->len == 0);
	g_ptr_array_unref(budget->held);
	g_free(budget);
}

static guint64
pb_queue_budget_fair(PbQueueBudget *budget)
{
	return budget->limit / MAX(budget->n_shares, 1);
}

static gboolean
pb_queue_share_can_release(PbQueueShare *share)
{
	PbQueueBudget *budget = share->budget;
	guint64 fair = pb_queue_budget_fair(budget);

	return budget->used <= budget->limit - budget->limit / 4 || share->bytes < fair - fair / 4;
}

static void
pb_queue_share_release(PbQueueShare *share)
{
	g_ptr_array_remove_fast(share->budget->held, share);
	share->held = FALSE;
	share->released_func(share, share->user_data);
}

/* Releases every held share that may go (the total fell, or the fair part grew). */
static void
pb_queue_budget_release_held(PbQueueBudget *budget)
{
	/* backwards: a release removes its share from the array */
	for (guint i = budget->held->len; i > 0; i--) {
		PbQueueShare *share = budget->held->pdata[i - 1];

		if (i - 1 < budget->held->len && pb_queue_share_can_release(share))
			pb_queue_share_release(share);
	}
}

/* The largest number of bytes queued at once, server-wide (--max-buffer). */
void
pb_queue_budget_set_limit(PbQueueBudget *budget, guint64 limit)
{
	g_return_if_fail(budget != NULL);

	budget->limit = MAX(limit, 1);
	pb_queue_budget_release_held(budget);
}

guint64
pb_queue_budget_get_limit(PbQueueBudget *budget)
{
	g_return_val_if_fail(budget != NULL, 0);
	return budget->limit;
}

/* Bytes queued towards public connections now, by all shares. */
guint64
pb_queue_budget_get_used(PbQueueBudget *budget)
{
	g_return_val_if_fail(budget != NULL, 0);
	return budget->used;
}

/**
 * pb_queue_share_init:
 * @budget: (nullable): the budget to take part in; %NULL counts the share's bytes only
 * @func: called when the share, held by pb_queue_share_check(), is released
 */
void
pb_queue_share_init(PbQueueShare *share, PbQueueBudget *budget, PbQueueReleasedFunc func,
		    gpointer user_data)
{
	g_return_if_fail(share != NULL);
	g_return_if_fail(func != NULL);

	share->budget = budget != NULL ? pb_queue_budget_ref(budget) : NULL;
	share->bytes = 0;
	share->held = FALSE;
	share->released_func = func;
	share->user_data = user_data;
	if (budget != NULL)
		budget->n_shares++;
}

/* Takes the share's bytes out of the budget and leaves it; the others' fair part grows. */
void
pb_queue_share_clear(PbQueueShare *share)
{
	PbQueueBudget *budget = share->budget;

	if (budget == NULL)
		return;
	if (share->held)
		g_ptr_array_remove_fast(budget->held, share);
	share->held = FALSE;
	budget->used -= MIN(share->bytes, budget->used);
	share->bytes = 0;
	budget->n_shares--;
	share->budget = NULL;
	pb_queue_budget_release_held(budget);
	pb_queue_budget_unref(budget);
}

/* @n more bytes queued. Call pb_queue_share_check() when the owner may stop taking more. */
void
pb_queue_share_add(PbQueueShare *share, guint64 n)
{
	share->bytes += n;
	if (share->budget != NULL)
		share->budget->used += n;
}

/* @n queued bytes went to their sockets (or were dropped). */
void
pb_queue_share_remove(PbQueueShare *share, guint64 n)
{
	PbQueueBudget *budget = share->budget;
	gboolean was_high;

	g_return_if_fail(n <= share->bytes);

	share->bytes -= n;
	if (budget == NULL)
		return;
	was_high = budget->used > budget->limit - budget->limit / 4;
	budget->used -= n;
	if (share->held && pb_queue_share_can_release(share))
		pb_queue_share_release(share);
	else if (was_high && budget->held->len > 0 &&
		 budget->used <= budget->limit - budget->limit / 4)
		pb_queue_budget_release_held(budget);
}

/**
 * pb_queue_share_check:
 *
 * Holds the share if it is over budget (see above); the owner stops taking more until
 * the PbQueueReleasedFunc is called.
 *
 * Returns: whether the share is held
 */
gboolean
pb_queue_share_check(PbQueueShare *share)
{
	PbQueueBudget *budget = share->budget;

	if (budget == NULL || share->held)
		return share->held;
	if (budget->used > budget->limit && share->bytes >= pb_queue_budget_fair(budget)) {
		share->held = TRUE;
		g_ptr_array_add(budget->held, share);
	}
	return share->held;
}

gboolean
pb_queue_share_is_held(const PbQueueShare *share)
{
	return share->held;
}
