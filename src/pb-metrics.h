/* SPDX-License-Identifier: ISC */
#pragma once

#include "pb-queue-budget.h"
#include "pb-tunnel-server.h"

G_BEGIN_DECLS

char *
pb_metrics_render(const PbTunnelStats *totals, GPtrArray *clients, guint n_pending,
		  PbQueueBudget *queue_budget);

G_END_DECLS
