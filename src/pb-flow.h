/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Protocol v2 `flow`: per-connection credit, in bytes of DATA payload. */

/* The initial window when none is configured: chosen by measurement (see README). */
#define PB_FLOW_WINDOW_DEFAULT (256 * 1024)
/* A connection's receive window grows up to this while its consumer keeps up, so one
 * connection over a long fat path is not capped at window / round trip. */
#define PB_FLOW_WINDOW_MAX (4 * 1024 * 1024)
/* All windows of one tunnel together grow by at most this much: memory stays bounded. */
#define PB_FLOW_GROWTH_BUDGET (16 * 1024 * 1024)

typedef struct {
	guint64 send_credit; /* payload bytes we may still send */
	guint64 recv_credit; /* payload bytes the peer may still send us */
	guint64 window;	     /* our receive window for this connection */
	guint64 initial;     /* the window it started with */
	guint64 unacked;     /* bytes written to our socket, not granted back yet */
	guint64 received;    /* DATA payload bytes received in all (`resume` counts them) */
} PbFlow;

void
pb_flow_init(PbFlow *flow, guint32 window);
gsize
pb_flow_sendable(const PbFlow *flow, gsize want);
void
pb_flow_sent(PbFlow *flow, gsize n);
void
pb_flow_add_send_credit(PbFlow *flow, guint32 increment);
gboolean
pb_flow_receive(PbFlow *flow, gsize n);
guint32
pb_flow_consumed(PbFlow *flow, gsize n, gboolean keeping_up, guint64 *budget);
void
pb_flow_hold(PbFlow *flow, gsize n);
void
pb_flow_release(PbFlow *flow, guint64 *budget);
guint32
pb_flow_get_resume_credit(const PbFlow *flow);
gboolean
pb_flow_resume(PbFlow *flow, guint64 sent, guint64 peer_received, guint32 peer_credit);

G_END_DECLS
