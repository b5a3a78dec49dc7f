/* SPDX-License-Identifier: ISC */
#pragma once

#include "pb-bench-ops.h"
#include "pb-bench.h"

enum { PB_BENCH_CONN_RATE, PB_BENCH_REQUEST_RATE, PB_BENCH_N_RATES };

/* One way to an HTTP server: where it starts, and the exchange on it. */
typedef struct {
	const char *label; /* its column's title */
	guint16 port;
	PbBenchExchange http; /* one request and its whole answer, checked */
} PbBenchHttpWay;

/* Medians over the rounds, and failures over all of them, per rate and way. */
typedef struct {
	double median[PB_BENCH_N_RATES][2];
	guint failures[PB_BENCH_N_RATES][2];
} PbBenchHttpRates;

gboolean
pb_bench_http_rates(PbBench *bench, const char *measure, const PbBenchHttpWay ways[2],
		    PbBenchHttpRates *rates, GError **error);
