/* SPDX-License-Identifier: ISC */

/*
 * Names (issue 12): HTTP through a tunnel by its name on serve's WebSocket port, next to the
 * same through the tunnel's TCP port, in the same run. One tunnel (`serve --domain
 * bench.test`, `forward --name bench`) in front of the keep-alive HTTP server of
 * pb-bench-echo.c; every round measures on both paths, the first one in turn:
 *
 *   conn/s  16 workers: connect, one request, its whole answer (checked), close
 *   req/s   16 keep-alive connections at once, --requests requests each, one after another
 *
 * Both paths send the same bytes (Host: bench.bench.test); only the port differs. A name may
 * cost at most 20 % of either: name / port >= 0.80.
 */

#include <stdio.h>

#include "pb-bench-echo.h"
#include "pb-bench-ops.h"
#include "pb-bench.h"

#define PB_BENCH_NAME	     "bench"
#define PB_BENCH_NAME_TARGET 0.80 /* name / port, issue 12 */

enum { PB_BENCH_BY_PORT, PB_BENCH_BY_NAME, PB_BENCH_N_WAYS };
enum { PB_BENCH_CONN_RATE, PB_BENCH_REQUEST_RATE, PB_BENCH_N_RATES };

static const char *const pb_bench_way_names[] = {"TCP port", "name"};
static const char *const pb_bench_rate_names[] = {"conn/s", "req/s"};
static const char pb_bench_http_request[] = "GET / HTTP/1.1\r\nHost: " PB_BENCH_NAME
					    "." PB_BENCH_DOMAIN "\r\n\r\n";
static const char pb_bench_http_answer[] = PB_BENCH_HTTP_ANSWER;

typedef struct {
	GArray *rate[PB_BENCH_N_RATES][PB_BENCH_N_WAYS];   /* (owned) per second, one a round */
	guint failures[PB_BENCH_N_RATES][PB_BENCH_N_WAYS]; /* over all rounds */
	guint16 port[PB_BENCH_N_WAYS];			   /* where each path starts */
	GPid http_pid;					   /* 0 once stopped */
	PbBenchTunnel tunnel;				   /* to the HTTP server */
} PbBenchNamesRun;

static void
pb_bench_names_run_clear(PbBenchNamesRun *run)
{
	for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
		for (guint w = 0; w < PB_BENCH_N_WAYS; w++)
			g_clear_pointer(&run->rate[r][w], g_array_unref);
	}
	pb_bench_tunnel_clear(&run->tunnel);
	pb_bench_echo_stop(&run->http_pid);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PbBenchNamesRun, pb_bench_names_run_clear)

/* one rate over one path, appended to the run */
static gboolean
pb_bench_names_rate(PbBench *bench, PbBenchNamesRun *run, guint r, guint w, GError **error)
{
	const PbBenchExchange http = {pb_bench_http_request, sizeof pb_bench_http_request - 1,
				      pb_bench_http_answer, sizeof pb_bench_http_answer - 1};
	double per_second;
	guint failures;
	gboolean ok;

	if (r == PB_BENCH_CONN_RATE)
		ok = pb_bench_connect_rate(run->port[w], &http, PB_BENCH_WORKERS, bench->connect_s,
					   &per_second, &failures, error);
	else
		ok = pb_bench_request_rate(run->port[w], &http, PB_BENCH_WORKERS,
					   (guint)bench->requests, bench->timeout_s, &per_second,
					   &failures, error);
	if (!ok) {
		g_prefix_error(error, "%s by %s: ", pb_bench_rate_names[r], pb_bench_way_names[w]);
		return FALSE;
	}
	g_array_append_val(run->rate[r][w], per_second);
	run->failures[r][w] += failures;
	return TRUE;
}

/* the table's head, as throughput's */
static void
pb_bench_names_print_head(const char *label)
{
	g_print("\n%-7s %-10s%13s%14s%7s\n", label, "measure", "TCP port", "by name", "ratio");
}

/**
 * pb_bench_names_measure:
 *
 * Forks the HTTP server first: call it while no other thread exists.
 */
gboolean
pb_bench_names_measure(PbBench *bench, GError **error)
{
	g_auto(PbBenchNamesRun) run = {0};
	gboolean met = TRUE;
	guint16 http_port;

	run.http_pid = pb_bench_echo_spawn(TRUE, &http_port, error);
	if (run.http_pid == 0 ||
	    !pb_bench_tunnel_start(bench, http_port, PB_BENCH_NAME, &run.tunnel, error))
		return FALSE;
	run.port[PB_BENCH_BY_PORT] = run.tunnel.public_port;
	run.port[PB_BENCH_BY_NAME] = run.tunnel.ws_port;
	for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
		for (guint w = 0; w < PB_BENCH_N_WAYS; w++)
			run.rate[r][w] = g_array_new(FALSE, FALSE, sizeof(double));
	}

	g_print("\nnames: HTTP/1.1 through one tunnel, by its TCP port %u or by name on port %u "
		"(Host: %s.%s)\n%d round%s of: %d workers opening new connections for %.1f s; %d "
		"keep-alive connections making %d requests each\n",
		run.tunnel.public_port, run.tunnel.ws_port, PB_BENCH_NAME, PB_BENCH_DOMAIN,
		bench->rounds, bench->rounds == 1 ? "" : "s", PB_BENCH_WORKERS, bench->connect_s,
		PB_BENCH_WORKERS, bench->requests);
	pb_bench_names_print_head("round");
	for (int round_no = 1; round_no <= bench->rounds; round_no++) {
		g_autofree char *label = g_strdup_printf("%d", round_no);

		for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
			GArray **rate = run.rate[r];

			/* odd rounds start with the port, even with the name: drift hits both */
			for (guint i = 0; i < PB_BENCH_N_WAYS; i++) {
				if (!pb_bench_names_rate(bench, &run, r, (i + round_no + 1) % 2,
							 error)) {
					g_prefix_error(error, "names round %d: ", round_no);
					return FALSE;
				}
			}
			pb_bench_print_row(
			    label, pb_bench_rate_names[r],
			    g_array_index(rate[PB_BENCH_BY_PORT], double, round_no - 1),
			    g_array_index(rate[PB_BENCH_BY_NAME], double, round_no - 1));
			fflush(stdout);
		}
	}

	pb_bench_names_print_head("median");
	for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
		double port = pb_bench_median(run.rate[r][PB_BENCH_BY_PORT]);
		double name = pb_bench_median(run.rate[r][PB_BENCH_BY_NAME]);

		pb_bench_print_row("", pb_bench_rate_names[r], port, name);
		met = met && name >= PB_BENCH_NAME_TARGET * port;
	}
	for (guint r = 0; r < PB_BENCH_N_RATES; r++)
		g_print("%-7s %-10s%13u%14u\n", "failed", pb_bench_rate_names[r],
			run.failures[r][PB_BENCH_BY_PORT], run.failures[r][PB_BENCH_BY_NAME]);
	g_print("a name costs at most 20 %% of either (ratio >= %.2f): %s\n", PB_BENCH_NAME_TARGET,
		met ? "yes" : "NO");
	return TRUE;
}
