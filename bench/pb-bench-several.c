/* SPDX-License-Identifier: ISC */

/*
 * Several servers (issue 17): HTTP by a tunnel's name through HAProxy in front of three
 * `serve` instances (the shipped data/haproxy.cfg.example, loopback addresses put in), next
 * to the same by name on one instance directly, in the same run: what HAProxy costs. One
 * name each way, so one instance carries it behind HAProxy too. Measured as pb-bench-names.c
 * does, each round on both paths, the first one in turn:
 *
 *   conn/s  16 workers: connect, one request, its whole answer (checked), close
 *   req/s   16 keep-alive connections at once, --requests requests each
 *
 * HAProxy keeps the public connection alive but opens a tunneled connection per request
 * (the configuration's http-server-close: an instance routes a connection by its first
 * request), so req/s through it is close to its conn/s.
 */

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pb-bench-echo.h"
#include "pb-bench-ops.h"
#include "pb-bench.h"

#define PB_BENCH_SEVERAL_NAME "bench"
#define PB_BENCH_N_SERVERS    3

enum { PB_BENCH_DIRECT, PB_BENCH_HAPROXY, PB_BENCH_N_WAYS };
enum { PB_BENCH_CONN_RATE, PB_BENCH_REQUEST_RATE, PB_BENCH_N_RATES };

static const char *const pb_bench_way_names[] = {"one serve", "HAProxy"};
static const char *const pb_bench_rate_names[] = {"conn/s", "req/s"};
static const char pb_bench_http_request[] = "GET / HTTP/1.1\r\nHost: " PB_BENCH_SEVERAL_NAME
					    "." PB_BENCH_DOMAIN "\r\n\r\n";
static const char pb_bench_http_answer[] = PB_BENCH_HTTP_ANSWER;
/* HAProxy writes header names in lower case */
static const char pb_bench_http_answer_haproxy[] =
    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\n\r\nbench\n";

typedef struct {
	GArray *rate[PB_BENCH_N_RATES][PB_BENCH_N_WAYS];   /* (owned) per second, one a round */
	guint failures[PB_BENCH_N_RATES][PB_BENCH_N_WAYS]; /* over all rounds */
	guint16 port[PB_BENCH_N_WAYS];			   /* where each path starts */
	GPid http_pid;					   /* 0 once stopped */
	PbBenchTunnel direct;				   /* serve and forward, no HAProxy */
	PbBenchProc *serves[PB_BENCH_N_SERVERS];	   /* (owned) behind HAProxy */
	PbBenchProc *haproxy;				   /* (owned) */
	PbBenchProc *forward;				   /* (owned) through HAProxy */
	char *config;					   /* (owned) the file written */
} PbBenchSeveralRun;

static void
pb_bench_several_run_clear(PbBenchSeveralRun *run)
{
	for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
		for (guint w = 0; w < PB_BENCH_N_WAYS; w++)
			g_clear_pointer(&run->rate[r][w], g_array_unref);
	}
	g_clear_pointer(&run->forward, pb_bench_proc_free);
	g_clear_pointer(&run->haproxy, pb_bench_proc_free);
	for (guint s = 0; s < PB_BENCH_N_SERVERS; s++)
		g_clear_pointer(&run->serves[s], pb_bench_proc_free);
	pb_bench_tunnel_clear(&run->direct);
	pb_bench_echo_stop(&run->http_pid);
	if (run->config != NULL)
		g_unlink(run->config);
	g_clear_pointer(&run->config, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PbBenchSeveralRun, pb_bench_several_run_clear)

/* The shipped configuration with HAProxy on 127.0.0.1:@port and the instances on @ports. */
static char *
pb_bench_several_config(guint16 port, const guint16 *ports, GError **error)
{
	g_autofree char *contents = NULL;
	g_autoptr(GString) text = NULL;
	g_autofree char *bind = g_strdup_printf("bind 127.0.0.1:%u\n", port);
	g_autofree char *path = NULL;
	int fd;

	if (!g_file_get_contents(PB_BENCH_HAPROXY_CONFIG, &contents, NULL, error))
		return NULL;
	text = g_string_new(contents);
	g_string_replace(text, "bind :80\n", bind, 0);
	g_string_replace(text, "tunnel.example.com", PB_BENCH_DOMAIN, 0);
	/* a log line per request would be part of HAProxy's cost, but not ours to measure */
	g_string_replace(text, "\tlog global\n", "", 0);
	for (guint s = 0; s < PB_BENCH_N_SERVERS; s++) {
		g_autofree char *from = g_strdup_printf("10.0.0.%u:8080", s + 1);
		g_autofree char *to = g_strdup_printf("127.0.0.1:%u", ports[s]);

		g_string_replace(text, from, to, 0);
	}
	fd = g_file_open_tmp("pb-bench-haproxy-XXXXXX.cfg", &path, error);
	if (fd < 0)
		return NULL;
	close(fd);
	if (!g_file_set_contents(path, text->str, -1, error))
		return NULL;
	return g_steal_pointer(&path);
}

/* three instances, HAProxy in front, a client with the name through it */
static gboolean
pb_bench_several_start(PbBench *bench, PbBenchSeveralRun *run, guint16 http_port, GError **error)
{
	g_autofree char *haproxy_path = g_find_program_in_path("haproxy");
	g_autofree char *local = g_strdup_printf("%u", http_port);
	g_autofree char *server = NULL;
	guint16 ports[PB_BENCH_N_SERVERS + 1];
	guint16 public_port;

	if (haproxy_path == NULL) {
		g_set_error(error, PB_BENCH_ERROR, 0, "haproxy is not installed");
		return FALSE;
	}
	if (!pb_bench_free_ports(ports, PB_BENCH_N_SERVERS + 1, error))
		return FALSE;
	for (guint s = 0; s < PB_BENCH_N_SERVERS; s++) {
		g_autofree char *port = g_strdup_printf("%u", ports[s]);
		const char *const argv[] = {
		    bench->piggyback,	 "serve",   "-p",	 port,	     "-l",
		    "127.0.0.1",	 "-H",	    "127.0.0.1", "--domain", PB_BENCH_DOMAIN,
		    "--max-connections", "1000000", NULL};

		run->serves[s] =
		    pb_bench_proc_spawn("piggyback serve", argv, bench->verbose, error);
		if (run->serves[s] == NULL ||
		    !pb_bench_proc_wait_listening(run->serves[s], ports[s], error))
			return FALSE;
	}
	run->config = pb_bench_several_config(ports[PB_BENCH_N_SERVERS], ports, error);
	if (run->config == NULL)
		return FALSE;
	{
		const char *const argv[] = {haproxy_path, "-f", run->config, NULL};

		run->haproxy = pb_bench_proc_spawn("haproxy", argv, bench->verbose, error);
		if (run->haproxy == NULL ||
		    !pb_bench_proc_wait_listening(run->haproxy, ports[PB_BENCH_N_SERVERS], error))
			return FALSE;
	}
	server = g_strdup_printf("127.0.0.1:%u", ports[PB_BENCH_N_SERVERS]);
	{
		const char *const argv[] = {
		    bench->piggyback,	 "forward", "-p",   local,    "-h",
		    "127.0.0.1",	 "-s",	    server, "--name", PB_BENCH_SEVERAL_NAME,
		    "--max-connections", "1000000", NULL};

		run->forward =
		    pb_bench_proc_spawn("piggyback forward", argv, bench->verbose, error);
		if (run->forward == NULL ||
		    !pb_bench_proc_wait_public_port(run->forward, &public_port, error))
			return FALSE;
	}
	run->port[PB_BENCH_HAPROXY] = ports[PB_BENCH_N_SERVERS];
	return TRUE;
}

/* one rate over one path, appended to the run */
static gboolean
pb_bench_several_rate(PbBench *bench, PbBenchSeveralRun *run, guint r, guint w, GError **error)
{
	const char *answer = w == PB_BENCH_HAPROXY ? pb_bench_http_answer_haproxy
						   : pb_bench_http_answer;
	const PbBenchExchange http = {pb_bench_http_request, sizeof pb_bench_http_request - 1,
				      answer, strlen(answer)};
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

static void
pb_bench_several_print_head(const char *label)
{
	g_print("\n%-7s %-10s%13s%14s%7s\n", label, "measure", "one serve", "HAProxy+3", "ratio");
}

/**
 * pb_bench_several_measure:
 *
 * Forks the HTTP server first: call it while no other thread exists.
 */
gboolean
pb_bench_several_measure(PbBench *bench, GError **error)
{
	g_auto(PbBenchSeveralRun) run = {0};
	guint16 http_port;

	run.http_pid = pb_bench_echo_spawn(TRUE, &http_port, error);
	if (run.http_pid == 0 ||
	    !pb_bench_tunnel_start(bench, http_port, PB_BENCH_SEVERAL_NAME, &run.direct, error) ||
	    !pb_bench_several_start(bench, &run, http_port, error))
		return FALSE;
	run.port[PB_BENCH_DIRECT] = run.direct.ws_port;
	for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
		for (guint w = 0; w < PB_BENCH_N_WAYS; w++)
			run.rate[r][w] = g_array_new(FALSE, FALSE, sizeof(double));
	}

	g_print("\nseveral: HTTP/1.1 by name (Host: %s.%s) on one serve directly (port %u), or "
		"through HAProxy (port %u, data/haproxy.cfg.example) in front of %d serves\n%d "
		"round%s of: %d workers opening new connections for %.1f s; %d keep-alive "
		"connections making %d requests each\n",
		PB_BENCH_SEVERAL_NAME, PB_BENCH_DOMAIN, run.port[PB_BENCH_DIRECT],
		run.port[PB_BENCH_HAPROXY], PB_BENCH_N_SERVERS, bench->rounds,
		bench->rounds == 1 ? "" : "s", PB_BENCH_WORKERS, bench->connect_s, PB_BENCH_WORKERS,
		bench->requests);
	pb_bench_several_print_head("round");
	for (int round_no = 1; round_no <= bench->rounds; round_no++) {
		g_autofree char *label = g_strdup_printf("%d", round_no);

		for (guint r = 0; r < PB_BENCH_N_RATES; r++) {
			GArray **rate = run.rate[r];

			/* odd rounds start directly, even ones through HAProxy: drift hits both */
			for (guint i = 0; i < PB_BENCH_N_WAYS; i++) {
				if (!pb_bench_several_rate(bench, &run, r, (i + round_no + 1) % 2,
							   error)) {
					g_prefix_error(error, "several round %d: ", round_no);
					return FALSE;
				}
			}
			pb_bench_print_row(
			    label, pb_bench_rate_names[r],
			    g_array_index(rate[PB_BENCH_DIRECT], double, round_no - 1),
			    g_array_index(rate[PB_BENCH_HAPROXY], double, round_no - 1));
			fflush(stdout);
		}
	}

	pb_bench_several_print_head("median");
	for (guint r = 0; r < PB_BENCH_N_RATES; r++)
		pb_bench_print_row("", pb_bench_rate_names[r],
				   pb_bench_median(run.rate[r][PB_BENCH_DIRECT]),
				   pb_bench_median(run.rate[r][PB_BENCH_HAPROXY]));
	for (guint r = 0; r < PB_BENCH_N_RATES; r++)
		g_print("%-7s %-10s%13u%14u\n", "failed", pb_bench_rate_names[r],
			run.failures[r][PB_BENCH_DIRECT], run.failures[r][PB_BENCH_HAPROXY]);
	return TRUE;
}
