/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* At most this many calls are deferred to the end of one batch; pb_batch_defer() says no
 * to the next. */
#define PB_BATCH_MAX_DEFERRED 32

typedef void (*PbBatchFunc)(gpointer user_data);

void
pb_batch_begin(void);
void
pb_batch_end(void);
gboolean
pb_batch_defer(PbBatchFunc func, gpointer user_data);

G_END_DECLS
