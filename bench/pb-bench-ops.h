/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

/*
 * The measures that talk to the local service (pb-bench-echo.h) through a port: the tunnel's
 * public port or a name on its WebSocket port, the first hop of the relay, or the service
 * itself (direct).
 */

#define PB_BENCH_WORKERS 16 /* connections at once of the connection and request rates */

/* One request: these bytes out, exactly those back. */
typedef struct {
	const void *request;
	gsize request_len;
	const void *answer;
	gsize answer_len;
} PbBenchExchange;

extern const PbBenchExchange pb_bench_echo_hello; /* 16 bytes each way */

gboolean
pb_bench_latency(guint16 port, guint n, GArray *rtts_us, GError **error);
gboolean
pb_bench_connect_rate(guint16 port, const PbBenchExchange *exchange, guint workers, double seconds,
		      double *per_second, guint *failures, GError **error);
gboolean
pb_bench_request_rate(guint16 port, const PbBenchExchange *exchange, guint conns, guint requests,
		      int timeout_s, double *per_second, guint *failures, GError **error);
gboolean
pb_bench_echo_load(guint16 port, guint n_conns, gsize bytes_each, int timeout_s, double *seconds,
		   GError **error);
GArray *
pb_bench_hold_idle(guint16 port, guint n, GError **error);
void
pb_bench_release_idle(GArray *fds);
