/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

/*
 * The measures that talk to an echo service (pb-bench-echo.h) through a port: the tunnel's
 * public port, the first socat of the relay, or the echo server itself (direct).
 */

gboolean
pb_bench_latency(guint16 port, guint n, GArray *rtts_us, GError **error);
gboolean
pb_bench_connect_rate(guint16 port, guint workers, double seconds, double *per_second,
		      guint *failures, GError **error);
gboolean
pb_bench_echo_load(guint16 port, guint n_conns, gsize bytes_each, int timeout_s, double *seconds,
		   GError **error);
GArray *
pb_bench_hold_idle(guint16 port, guint n, GError **error);
void
pb_bench_release_idle(GArray *fds);
