/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-flow.h"

/*
 * Credit accounting of one connection (PROTOCOL.md, `flow`), pure arithmetic: the tunnel
 * reads no more than pb_flow_sendable() from a socket, and answers DATA it wrote to its own
 * socket with the WINDOW increment pb_flow_consumed() returns.
 *
 * Credit is given back only for bytes written to the socket, so a peer can never have more
 * than the window in flight or queued here, and a slow reader holds back only its own
 * sender. A window grows (doubling at each grant, up to PB_FLOW_WINDOW_MAX and within the
 * tunnel's growth budget) while the consumer keeps up, i.e. our socket took everything at
 * once: then nothing waits here and only the window can limit the connection. (Growing
 * only when the sender had run out of credit left windows at 512 KiB on loopback, with the
 * sender blocked every 300 KiB.)
 */

/* Credit can come back many times over a connection's life; keep sums from wrapping. */
#define PB_FLOW_CREDIT_MAX ((guint64)G_MAXUINT32 * 4)

void
pb_flow_init(PbFlow *flow, guint32 window)
{
	flow->send_credit = window;
	flow->recv_credit = window;
	flow->window = window;
	flow->initial = window;
	flow->unacked = 0;
	flow->received = 0;
}

/* How much of @want may be sent now. */
gsize
pb_flow_sendable(const PbFlow *flow, gsize want)
{
	return (gsize)MIN((guint64)want, flow->send_credit);
}

void
pb_flow_sent(PbFlow *flow, gsize n)
{
	g_return_if_fail(n <= flow->send_credit);
	flow->send_credit -= n;
}

/* A WINDOW frame from the peer. */
void
pb_flow_add_send_credit(PbFlow *flow, guint32 increment)
{
	flow->send_credit = MIN(flow->send_credit + increment, PB_FLOW_CREDIT_MAX);
}

/**
 * pb_flow_receive:
 * @n: DATA payload bytes that arrived
 *
 * Returns: %FALSE if the peer sent more than it was granted (the connection must close)
 */
gboolean
pb_flow_receive(PbFlow *flow, gsize n)
{
	if (n > flow->recv_credit)
		return FALSE;
	flow->recv_credit -= n;
	flow->received += n;
	return TRUE;
}

/**
 * pb_flow_consumed:
 * @n: bytes just written to our socket
 * @keeping_up: whether our socket has taken everything received so far
 * @budget: (inout): how much the tunnel's windows may still grow altogether
 *
 * Returns: the WINDOW increment to send now, or 0 to wait for more: credit goes back in
 *   steps of a quarter window, so WINDOW frames stay few
 */
guint32
pb_flow_consumed(PbFlow *flow, gsize n, gboolean keeping_up, guint64 *budget)
{
	guint64 grant;

	flow->unacked += n;
	if (flow->unacked < flow->window / 4)
		return 0;
	grant = flow->unacked;
	/* nothing waits for our socket: a bigger window costs no memory now, and goes faster */
	if (keeping_up && flow->window < PB_FLOW_WINDOW_MAX) {
		guint64 extra = MIN(MIN(flow->window, PB_FLOW_WINDOW_MAX - flow->window), *budget);

		flow->window += extra;
		*budget -= extra;
		grant += extra;
	}
	grant = MIN(grant, G_MAXUINT32);
	flow->unacked -= grant > flow->unacked ? flow->unacked : grant;
	flow->recv_credit += grant;
	return (guint32)grant;
}

/* @n bytes were written to our socket, but their credit is kept back for now: a later
 * pb_flow_consumed() (even of 0 bytes) grants it. */
void
pb_flow_hold(PbFlow *flow, gsize n)
{
	flow->unacked += n;
}

/* The connection is over: its growth goes back to the tunnel's budget. */
void
pb_flow_release(PbFlow *flow, guint64 *budget)
{
	*budget += flow->window - flow->initial;
	flow->window = flow->initial;
}

/* What RESUME says the peer may send after what we received: the credit it has, WINDOW
 * frames lost with the WebSocket included. */
guint32
pb_flow_get_resume_credit(const PbFlow *flow)
{
	return (guint32)MIN(flow->recv_credit, G_MAXUINT32);
}

/**
 * pb_flow_resume:
 * @sent: DATA payload bytes we sent in all, those lost with the WebSocket included
 * @peer_received: what the peer's RESUME says it received
 * @peer_credit: what it says we may send after that
 *
 * After a resumption the credit is what the peer says, not what WINDOW frames brought:
 * some of those may have been lost.
 *
 * Returns: FALSE, changing nothing, if that is less than we sent: the peer lies (the
 *   caller checked @peer_received against @sent)
 */
gboolean
pb_flow_resume(PbFlow *flow, guint64 sent, guint64 peer_received, guint32 peer_credit)
{
	if (peer_received > sent || peer_received + peer_credit < sent)
		return FALSE;
	flow->send_credit = peer_received + peer_credit - sent;
	return TRUE;
}
