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
#include "pb-bench-http-rates.h"
#include "pb-bench.h"

#define PB_BENCH_NAME	     "bench"
#define PB_BENCH_NAME_TARGET 0.80 /* name / port, issue 12 */

static const char pb_bench_http_request[] = "GET / HTTP/1.1\r\nHost: " PB_BENCH_NAME
					    "." PB_BENCH_DOMAIN "\r\n\r\n";
static const char pb_bench_http_answer[] = PB_BENCH_HTTP_ANSWER;

typedef struct {
	GPid http_pid;	      /* 0 once stopped */
	PbBenchTunnel tunnel; /* to the HTTP server */
} PbBenchNamesRun;

static void
pb_bench_names_run_clear(PbBenchNamesRun *run)
{
	pb_bench_tunnel_clear(&run->tunnel);
	pb_bench_echo_stop(&run->http_pid);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PbBenchNamesRun, pb_bench_names_run_clear)

/**
 * pb_bench_names_measure:
 *
 * Forks the HTTP server first: call it while no other thread exists.
 */
gboolean
pb_bench_names_measure(PbBench *bench, GError **error)
{
	const PbBenchExchange http = {pb_bench_http_request, sizeof pb_bench_http_request - 1,
				      pb_bench_http_answer, sizeof pb_bench_http_answer - 1};
	g_auto(PbBenchNamesRun) run = {0};
	PbBenchHttpWay ways[2] = {{"TCP port", 0, http}, {"by name", 0, http}};
	PbBenchHttpRates rates;
	gboolean met = TRUE;
	guint16 http_port;

	run.http_pid = pb_bench_echo_spawn(TRUE, &http_port, error);
	if (run.http_pid == 0 ||
	    !pb_bench_tunnel_start(bench, http_port, PB_BENCH_NAME, &run.tunnel, error))
		return FALSE;
	ways[0].port = run.tunnel.public_port;
	ways[1].port = run.tunnel.ws_port;
	g_print("\nnames: HTTP/1.1 through one tunnel, by its TCP port %u or by name on port %u "
		"(Host: %s.%s)\n%d round%s of: %d workers opening new connections for %.1f s; %d "
		"keep-alive connections making %d requests each\n",
		ways[0].port, ways[1].port, PB_BENCH_NAME, PB_BENCH_DOMAIN, bench->rounds,
		bench->rounds == 1 ? "" : "s", PB_BENCH_WORKERS, bench->connect_s, PB_BENCH_WORKERS,
		bench->requests);
	if (!pb_bench_http_rates(bench, "names", ways, &rates, error))
		return FALSE;
	for (guint r = 0; r < PB_BENCH_N_RATES; r++)
		met = met && rates.median[r][1] >= PB_BENCH_NAME_TARGET * rates.median[r][0];
	g_print("a name costs at most 20 %% of either (ratio >= %.2f): %s\n", PB_BENCH_NAME_TARGET,
		met ? "yes" : "NO");
	return TRUE;
}
