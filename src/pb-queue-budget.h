/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* serve --max-buffer's default: bytes queued towards public connections, server-wide. */
#define PB_MAX_BUFFER_DEFAULT (64 * 1024 * 1024)

typedef struct _PbQueueBudget PbQueueBudget;
typedef struct _PbQueueShare PbQueueShare;

/**
 * PbQueueReleasedFunc:
 * @share: a share that was held
 * @user_data: what was given to pb_queue_share_init()
 *
 * The share is no longer over budget: its owner may take more again.
 */
typedef void (*PbQueueReleasedFunc)(PbQueueShare *share, gpointer user_data);

/* One owner's part of a budget (a tunnel's). Embed it; the fields are private. */
struct _PbQueueShare {
	PbQueueBudget *budget; /* (owned) (nullable) none: only @bytes is counted */
	guint64 bytes;	       /* queued now */
	gboolean held;	       /* over budget until released */
	PbQueueReleasedFunc released_func;
	gpointer user_data;
};

PbQueueBudget *
pb_queue_budget_new(guint64 limit);
PbQueueBudget *
pb_queue_budget_ref(PbQueueBudget *budget);
void
pb_queue_budget_unref(PbQueueBudget *budget);
void
pb_queue_budget_set_limit(PbQueueBudget *budget, guint64 limit);
guint64
pb_queue_budget_get_limit(PbQueueBudget *budget);
guint64
pb_queue_budget_get_used(PbQueueBudget *budget);

void
pb_queue_share_init(PbQueueShare *share, PbQueueBudget *budget, PbQueueReleasedFunc func,
		    gpointer user_data);
void
pb_queue_share_clear(PbQueueShare *share);
void
pb_queue_share_add(PbQueueShare *share, guint64 n);
void
pb_queue_share_remove(PbQueueShare *share, guint64 n);
gboolean
pb_queue_share_check(PbQueueShare *share);
gboolean
pb_queue_share_is_held(const PbQueueShare *share);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbQueueBudget, pb_queue_budget_unref)

G_END_DECLS
