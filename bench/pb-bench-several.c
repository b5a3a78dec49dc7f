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
#include "pb-bench-http-rates.h"
#include "pb-bench.h"

#define PB_BENCH_SEVERAL_NAME "bench"
#define PB_BENCH_N_SERVERS    3

static const char pb_bench_http_request[] = "GET / HTTP/1.1\r\nHost: " PB_BENCH_SEVERAL_NAME
					    "." PB_BENCH_DOMAIN "\r\n\r\n";
static const char pb_bench_http_answer[] = PB_BENCH_HTTP_ANSWER;
/* HAProxy writes header names in lower case */
static const char pb_bench_http_answer_haproxy[] =
    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\n\r\nbench\n";

typedef struct {
	guint16 haproxy_port;			 /* where HAProxy listens */
	GPid http_pid;				 /* 0 once stopped */
	PbBenchTunnel direct;			 /* serve and forward, no HAProxy */
	PbBenchProc *serves[PB_BENCH_N_SERVERS]; /* (owned) behind HAProxy */
	PbBenchProc *haproxy;			 /* (owned) */
	PbBenchProc *forward;			 /* (owned) through HAProxy */
	char *config;				 /* (owned) the file written */
} PbBenchSeveralRun;

static void
pb_bench_several_run_clear(PbBenchSeveralRun *run)
{
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
	run->haproxy_port = ports[PB_BENCH_N_SERVERS];
	return TRUE;
}

/**
 * pb_bench_several_measure:
 *
 * Forks the HTTP server first: call it while no other thread exists.
 */
gboolean
pb_bench_several_measure(PbBench *bench, GError **error)
{
	const PbBenchExchange direct = {pb_bench_http_request, sizeof pb_bench_http_request - 1,
					pb_bench_http_answer, sizeof pb_bench_http_answer - 1};
	const PbBenchExchange haproxy = {pb_bench_http_request, sizeof pb_bench_http_request - 1,
					 pb_bench_http_answer_haproxy,
					 sizeof pb_bench_http_answer_haproxy - 1};
	g_auto(PbBenchSeveralRun) run = {0};
	PbBenchHttpWay ways[2] = {{"one serve", 0, direct}, {"HAProxy+3", 0, haproxy}};
	PbBenchHttpRates rates;
	guint16 http_port;

	run.http_pid = pb_bench_echo_spawn(TRUE, &http_port, error);
	if (run.http_pid == 0 ||
	    !pb_bench_tunnel_start(bench, http_port, PB_BENCH_SEVERAL_NAME, &run.direct, error) ||
	    !pb_bench_several_start(bench, &run, http_port, error))
		return FALSE;
	ways[0].port = run.direct.ws_port;
	ways[1].port = run.haproxy_port;
	g_print("\nseveral: HTTP/1.1 by name (Host: %s.%s) on one serve directly (port %u), or "
		"through HAProxy (port %u, data/haproxy.cfg.example) in front of %d serves\n%d "
		"round%s of: %d workers opening new connections for %.1f s; %d keep-alive "
		"connections making %d requests each\n",
		PB_BENCH_SEVERAL_NAME, PB_BENCH_DOMAIN, ways[0].port, ways[1].port,
		PB_BENCH_N_SERVERS, bench->rounds, bench->rounds == 1 ? "" : "s", PB_BENCH_WORKERS,
		bench->connect_s, PB_BENCH_WORKERS, bench->requests);
	return pb_bench_http_rates(bench, "several", ways, &rates, error);
}
