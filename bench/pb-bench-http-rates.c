/* SPDX-License-Identifier: ISC */

/*
 * Two ways to one HTTP server side by side (names: by a tunnel's TCP port and by its name;
 * several: one serve, and HAProxy in front of three), in the same run:
 *
 *   conn/s  16 workers: connect, one request, its whole answer (checked), close
 *   req/s   16 keep-alive connections at once, --requests requests each
 *
 * Every round measures both ways, the first in turn (odd rounds the first way, even ones
 * the second), so that drift on a shared machine hits both; then the medians.
 */

#include "pb-bench-http-rates.h"

#include <stdio.h>

static const char *const pb_bench_rate_names[] = {"conn/s", "req/s"};

/* Each rate on each way, one value a round. */
typedef struct {
	GArray *values[PB_BENCH_N_RATES][2]; /* (owned) double per second */
} PbBenchHttpValues;

static void
pb_bench_http_values_clear(PbBenchHttpValues *values)
{
	for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
		for (guint w = 0; w < 2; w++)
			g_clear_pointer(&values->values[r][w], g_array_unref);
	}
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PbBenchHttpValues, pb_bench_http_values_clear)

static void
pb_bench_http_rates_print_head(const char *label, const PbBenchHttpWay ways[2])
{
	g_print("\n%-7s %-10s%13s%14s%7s\n", label, "measure", ways[0].label, ways[1].label,
		"ratio");
}

/**
 * pb_bench_http_rates:
 * @measure: its name, for errors
 * @rates: (out): the medians and failures
 *
 * Measures and prints both rates on both @ways, round by round, then the medians
 * (ratio: the second way / the first) and the failures.
 */
gboolean
pb_bench_http_rates(PbBench *bench, const char *measure, const PbBenchHttpWay ways[2],
		    PbBenchHttpRates *rates, GError **error)
{
	g_auto(PbBenchHttpValues) all = {{{NULL}}};
	GArray *(*values)[2] = all.values;

	*rates = (PbBenchHttpRates){0};
	for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
		for (guint w = 0; w < 2; w++)
			values[r][w] = g_array_new(FALSE, FALSE, sizeof(double));
	}
	pb_bench_http_rates_print_head("round", ways);
	for (int round_no = 1; round_no <= bench->rounds; round_no++) {
		g_autofree char *label = g_strdup_printf("%d", round_no);

		for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
			for (guint i = 0; i < 2; i++) {
				guint w = (i + (guint)round_no + 1) % 2;
				double per_second = 0;
				guint failures = 0;
				gboolean ok =
				    r == PB_BENCH_CONN_RATE
					? pb_bench_connect_rate(ways[w].port, &ways[w].http,
								PB_BENCH_WORKERS, bench->connect_s,
								&per_second, &failures, error)
					: pb_bench_request_rate(
					      ways[w].port, &ways[w].http, PB_BENCH_WORKERS,
					      (guint)bench->requests, bench->timeout_s, &per_second,
					      &failures, error);

				if (!ok) {
					g_prefix_error(error, "%s round %d, %s by %s: ", measure,
						       round_no, pb_bench_rate_names[r],
						       ways[w].label);
					return FALSE;
				}
				g_array_append_val(values[r][w], per_second);
				rates->failures[r][w] += failures;
			}
			pb_bench_print_row(label, pb_bench_rate_names[r],
					   g_array_index(values[r][0], double, round_no - 1),
					   g_array_index(values[r][1], double, round_no - 1));
			fflush(stdout);
		}
	}
	pb_bench_http_rates_print_head("median", ways);
	for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
		for (guint w = 0; w < 2; w++)
			rates->median[r][w] = pb_bench_median(values[r][w]);
		pb_bench_print_row("", pb_bench_rate_names[r], rates->median[r][0],
				   rates->median[r][1]);
	}
	for (guint r = 0; r < PB_BENCH_N_RATES; r++)
		g_print("%-7s %-10s%13u%14u\n", "failed", pb_bench_rate_names[r],
			rates->failures[r][0], rates->failures[r][1]);
	return TRUE;
}
