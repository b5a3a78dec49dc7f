/* SPDX-License-Identifier: ISC */

/*
 * Measured with tools nobody here wrote (issue 15): iperf3 (throughput), sockperf (64-byte
 * ping-pong latency) and wrk (HTTP requests per second), each through the relay, through
 * the tunnel and directly, in the same rounds; the README quotes these. Every round runs
 * each tool on every path, in an order that turns from round to round so that drift on a
 * shared machine hits them all.
 *
 * sockperf also goes through a fourth path, "glib": the same relay run on a GLib main loop
 * (pb-bench-relay --glib), which wakes the way the tunnel's ends do. What a round trip
 * takes there is the floor this stack sets, whatever the tunnel does.
 *
 * iperf3 also goes through a second tunnel, "no resume": its ends run with --features
 * flow,eof, i.e. without keeping every byte sent until the peer confirms it (`resume`).
 * The difference is what resumption costs: the bytes kept, up to a window of 4 MiB per
 * connection, are read into and sent from memory that no cache holds (README, Speed).
 * Only when the run uses the default features.
 *
 *   iperf3    -n SIZE, one stream and 4 (-P 4), client to server (up) and back (-R, down)
 *   sockperf  ping-pong, 64 bytes, for --tool-seconds: p50, p99, p99.9 of the round trip
 *   wrk       50 connections, 2 threads, for --tool-seconds, against pb-bench's keep-alive
 *             HTTP server (pb-bench-echo.c); then again with -H "Connection: close": one
 *             request per connection, which the server closes, i.e. new connections per
 *             second, and the socket errors wrk counted
 *
 * A tool that is not installed is said and skipped; the others still run.
 */

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb-bench-echo.h"
#include "pb-bench.h"

enum {
	PB_TOOLS_RELAY,
	PB_TOOLS_TUNNEL,
	PB_TOOLS_DIRECT,
	PB_TOOLS_GLIB,
	PB_TOOLS_NO_RESUME,
	PB_TOOLS_N_PATHS
};
static const char *const pb_tools_path_names[] = {"relay", "tunnel", "direct", "glib", "no resume"};

/* What is measured; each a number per round and path. */
typedef enum {
	PB_TOOLS_IPERF_UP,
	PB_TOOLS_IPERF_DOWN,
	PB_TOOLS_IPERF4_UP,
	PB_TOOLS_IPERF4_DOWN,
	PB_TOOLS_PING_P50,
	PB_TOOLS_PING_P99,
	PB_TOOLS_PING_P999,
	PB_TOOLS_WRK,
	PB_TOOLS_WRK_CLOSE,
	PB_TOOLS_WRK_CLOSE_ERRORS,
	PB_TOOLS_N_MEASURES,
} PbToolsMeasure;

static const struct {
	const char *label;
	const char *unit;
	gboolean lower_is_better;
} pb_tools_measures[] = {
    {"iperf3 1 stream up", "MiB/s", FALSE},	{"iperf3 1 stream down", "MiB/s", FALSE},
    {"iperf3 4 streams up", "MiB/s", FALSE},	{"iperf3 4 streams down", "MiB/s", FALSE},
    {"sockperf 64 B p50", "us", TRUE},		{"sockperf 64 B p99", "us", TRUE},
    {"sockperf 64 B p99.9", "us", TRUE},	{"wrk 50 connections", "req/s", FALSE},
    {"wrk Connection: close", "conn/s", FALSE}, {"wrk close, errors", "errors", TRUE},
};

/* One tool's server, and the ways to it. */
typedef struct {
	PbBenchProc *server;		/* (owned) (nullable) iperf3 or sockperf */
	GPid http_pid;			/* pb-bench's HTTP server, for wrk; 0 once stopped */
	PbBenchProc *hop1;		/* (owned) (nullable) the relay */
	PbBenchProc *hop2;		/* (owned) (nullable) */
	PbBenchProc *glib_hop1;		/* (owned) (nullable) the relay on a GLib main loop */
	PbBenchProc *glib_hop2;		/* (owned) (nullable) */
	PbBenchTunnel tunnel;		/* to the server */
	PbBenchTunnel no_resume;	/* to the server, with --features flow,eof */
	guint16 port[PB_TOOLS_N_PATHS]; /* where each path starts; 0: not measured */
} PbToolsTarget;

enum { PB_TOOLS_IPERF, PB_TOOLS_SOCKPERF, PB_TOOLS_WRK_TARGET, PB_TOOLS_N_TARGETS };

typedef struct {
	PbToolsTarget targets[PB_TOOLS_N_TARGETS];
	gboolean have[PB_TOOLS_N_TARGETS];		       /* the tool is installed */
	GArray *values[PB_TOOLS_N_MEASURES][PB_TOOLS_N_PATHS]; /* (owned) double, per round */
} PbToolsRun;

static void
pb_tools_target_clear(PbToolsTarget *target)
{
	pb_bench_tunnel_clear(&target->tunnel);
	pb_bench_tunnel_clear(&target->no_resume);
	g_clear_pointer(&target->hop1, pb_bench_proc_free);
	g_clear_pointer(&target->hop2, pb_bench_proc_free);
	g_clear_pointer(&target->glib_hop1, pb_bench_proc_free);
	g_clear_pointer(&target->glib_hop2, pb_bench_proc_free);
	g_clear_pointer(&target->server, pb_bench_proc_free);
	pb_bench_echo_stop(&target->http_pid);
}

static void
pb_tools_run_clear(PbToolsRun *run)
{
	for (guint t = 0; t < PB_TOOLS_N_TARGETS; t++)
		pb_tools_target_clear(&run->targets[t]);
	for (guint m = 0; m < PB_TOOLS_N_MEASURES; m++) {
		for (guint p = 0; p < PB_TOOLS_N_PATHS; p++)
			g_clear_pointer(&run->values[m][p], g_array_unref);
	}
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PbToolsRun, pb_tools_run_clear)

/* Runs @argv (bounded by timeout(1)); its stdout, or %NULL with @error set. */
static char *
pb_tools_spawn(const char *const *argv, int timeout_s, GError **error)
{
	g_autoptr(GPtrArray) bounded = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status = 0;

	g_ptr_array_add(bounded, g_strdup("timeout"));
	g_ptr_array_add(bounded, g_strdup_printf("%d", timeout_s));
	for (guint i = 0; argv[i] != NULL; i++)
		g_ptr_array_add(bounded, g_strdup(argv[i]));
	g_ptr_array_add(bounded, NULL);
	if (!g_spawn_sync(NULL, (char **)bounded->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
			  &out, &err, &status, error))
		return NULL;
	if (!g_spawn_check_wait_status(status, error)) {
		g_prefix_error(error, "%s: %s: ", argv[0], err != NULL ? g_strstrip(err) : "");
		return NULL;
	}
	return g_steal_pointer(&out);
}

/* iperf3 -J's throughput, from what the receiver counted, in MiB/s. */
static gboolean
pb_tools_iperf(guint16 port, int size_mib, gboolean reverse, int streams, int timeout_s,
	       double *mib_s, GError **error)
{
	g_autofree char *port_text = g_strdup_printf("%u", port);
	g_autofree char *bytes = g_strdup_printf("%dM", size_mib);
	g_autofree char *parallel = g_strdup_printf("%d", streams);
	const char *argv[] = {
	    "iperf3", "-c", "127.0.0.1",	   "-p", port_text, "-n", bytes, "-P",
	    parallel, "-J", reverse ? "-R" : NULL, NULL};
	g_autofree char *out = pb_tools_spawn(argv, timeout_s, error);
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonNode *root;
	JsonObject *end;

	if (out == NULL || !json_parser_load_from_data(parser, out, -1, error))
		return FALSE;
	root = json_parser_get_root(parser);
	end = JSON_NODE_HOLDS_OBJECT(root)
		  ? json_object_get_object_member(json_node_get_object(root), "end")
		  : NULL;
	if (end == NULL || !json_object_has_member(end, "sum_received")) {
		g_set_error(error, PB_BENCH_ERROR, 0, "iperf3 gave no result on port %u", port);
		return FALSE;
	}
	*mib_s = json_object_get_double_member(json_object_get_object_member(end, "sum_received"),
					       "bits_per_second") /
		 8 / PB_BENCH_MIB;
	return TRUE;
}

/* The number after "percentile @which =" in sockperf's output. */
static gboolean
pb_tools_sockperf_value(const char *out, const char *which, double *usec)
{
	g_autofree char *needle = g_strdup_printf("percentile %s =", which);
	const char *at = strstr(out, needle);

	if (at == NULL)
		return FALSE;
	*usec = g_ascii_strtod(at + strlen(needle), NULL);
	return TRUE;
}

/* sockperf ping-pong of 64 bytes: the round trip's p50, p99, p99.9 in µs (sockperf prints
 * half a round trip; --full-rtt the whole). */
static gboolean
pb_tools_sockperf(guint16 port, int seconds, int timeout_s, double usec[3], GError **error)
{
	g_autofree char *port_text = g_strdup_printf("%u", port);
	g_autofree char *time = g_strdup_printf("%d", seconds);
	const char *argv[] = {"sockperf", "ping-pong", "--tcp", "-i", "127.0.0.1",  "-p", port_text,
			      "-m",	  "64",	       "-t",	time, "--full-rtt", NULL};
	g_autofree char *out = pb_tools_spawn(argv, timeout_s, error);

	if (out == NULL)
		return FALSE;
	if (!pb_tools_sockperf_value(out, "50.000", &usec[0]) ||
	    !pb_tools_sockperf_value(out, "99.000", &usec[1]) ||
	    !pb_tools_sockperf_value(out, "99.900", &usec[2])) {
		g_set_error(error, PB_BENCH_ERROR, 0, "sockperf gave no percentiles on port %u: %s",
			    port, g_strstrip(out));
		return FALSE;
	}
	return TRUE;
}

/* The sum of wrk's "Socket errors: connect 1, read 2, write 0, timeout 0", or 0. */
static double
pb_tools_wrk_errors(const char *out)
{
	const char *at = strstr(out, "Socket errors:");
	double sum = 0;

	if (at == NULL)
		return 0;
	at += strlen("Socket errors:");
	while (*at != '\0' && *at != '\n') {
		if (g_ascii_isdigit(*at)) {
			char *end = NULL;

			sum += g_ascii_strtod(at, &end);
			at = end;
		} else {
			at++;
		}
	}
	return sum;
}

/* wrk's requests per second, 50 connections on 2 threads. Keep-alive: a run with socket
 * errors or non-2xx answers counts as a failure. With @close (one request per connection,
 * "Connection: close"), the socket errors are counted in *errors instead: they are what
 * the new connections measure is about. */
static gboolean
pb_tools_wrk(guint16 port, int seconds, int timeout_s, gboolean close, double *per_second,
	     double *errors, GError **error)
{
	g_autofree char *url = g_strdup_printf("http://127.0.0.1:%u/", port);
	g_autofree char *duration = g_strdup_printf("%ds", seconds);
	const char *argv[] = {"wrk", "-t", "2", "-c", "50", "-d", duration, url, NULL, NULL, NULL};
	g_autofree char *out = NULL;
	const char *at;

	if (close) {
		argv[8] = "-H";
		argv[9] = "Connection: close";
	}
	out = pb_tools_spawn(argv, timeout_s, error);
	if (out == NULL)
		return FALSE;
	at = strstr(out, "Requests/sec:");
	*errors = pb_tools_wrk_errors(out);
	if (at == NULL || (!close && *errors > 0) || strstr(out, "Non-2xx") != NULL) {
		g_set_error(error, PB_BENCH_ERROR, 0, "wrk failed on port %u: %s", port, out);
		return FALSE;
	}
	*per_second = g_ascii_strtod(at + strlen("Requests/sec:"), NULL);
	return TRUE;
}

/* A tool's server on a free port, listening. */
static gboolean
pb_tools_start_server(PbBench *bench, guint t, const char *program, PbToolsTarget *target,
		      guint16 *port, GError **error)
{
	g_autofree char *port_text = NULL;

	if (t == PB_TOOLS_WRK_TARGET) {
		target->http_pid = pb_bench_echo_spawn(TRUE, port, error);
		return target->http_pid != 0;
	}
	if (!pb_bench_free_ports(port, 1, error))
		return FALSE;
	port_text = g_strdup_printf("%u", *port);
	if (t == PB_TOOLS_IPERF) {
		const char *argv[] = {program, "-s", "-B", "127.0.0.1", "-p", port_text, NULL};

		target->server = pb_bench_proc_spawn("iperf3 -s", argv, bench->verbose, error);
	} else {
		const char *argv[] = {program,	   "server", "--tcp",	"-i",
				      "127.0.0.1", "-p",     port_text, NULL};

		target->server =
		    pb_bench_proc_spawn("sockperf server", argv, bench->verbose, error);
	}
	return target->server != NULL && pb_bench_proc_wait_listening(target->server, *port, error);
}

/* One tool on one path, for a round: its numbers appended. */
static gboolean
pb_tools_measure(PbBench *bench, PbToolsRun *run, guint t, guint p, GError **error)
{
	guint16 port = run->targets[t].port[p];
	int timeout_s = bench->timeout_s;
	double value[4];

	switch (t) {
	case PB_TOOLS_IPERF:
		for (guint i = 0; i < 4; i++) {
			if (!pb_tools_iperf(port, bench->size_mib, i % 2 == 1, i < 2 ? 1 : 4,
					    timeout_s, &value[i], error))
				return FALSE;
			g_array_append_val(run->values[PB_TOOLS_IPERF_UP + i][p], value[i]);
		}
		return TRUE;
	case PB_TOOLS_SOCKPERF: {
		g_autoptr(GError) local_error = NULL;

		/* once in some thirty runs here a run gave no percentiles on a busy machine (why
		 * is in its output): said, and run once more rather than losing the whole bench */
		if (!pb_tools_sockperf(port, bench->tool_s, timeout_s, value, &local_error)) {
			g_printerr("pb-bench: %s; once more\n", local_error->message);
			if (!pb_tools_sockperf(port, bench->tool_s, timeout_s, value, error))
				return FALSE;
		}
		for (guint i = 0; i < 3; i++)
			g_array_append_val(run->values[PB_TOOLS_PING_P50 + i][p], value[i]);
		return TRUE;
	}
	default:
		if (!pb_tools_wrk(port, bench->tool_s, timeout_s, FALSE, &value[0], &value[1],
				  error) ||
		    !pb_tools_wrk(port, bench->tool_s, timeout_s, TRUE, &value[2], &value[3],
				  error))
			return FALSE;
		g_array_append_val(run->values[PB_TOOLS_WRK][p], value[0]);
		g_array_append_val(run->values[PB_TOOLS_WRK_CLOSE][p], value[2]);
		g_array_append_val(run->values[PB_TOOLS_WRK_CLOSE_ERRORS][p], value[3]);
		return TRUE;
	}
}

static void
pb_tools_print(PbToolsRun *run, const char *label, gboolean median, guint round_no)
{
	static const guint columns[] = {PB_TOOLS_RELAY, PB_TOOLS_TUNNEL, PB_TOOLS_DIRECT,
					PB_TOOLS_GLIB, PB_TOOLS_NO_RESUME};
	static const guint over[] = {PB_TOOLS_RELAY, PB_TOOLS_DIRECT, PB_TOOLS_GLIB}; /* ratios */

	for (guint m = 0; m < PB_TOOLS_N_MEASURES; m++) {
		double v[PB_TOOLS_N_PATHS];

		if (run->values[m][0]->len == 0)
			continue; /* the tool is missing */
		for (guint p = 0; p < PB_TOOLS_N_PATHS; p++) {
			GArray *values = run->values[m][p];

			if (values->len == 0)
				v[p] = -1; /* not measured on that path */
			else
				v[p] = median ? pb_bench_median(values)
					      : g_array_index(values, double, round_no - 1);
		}
		g_print("%-7s %-22s %6s", label, pb_tools_measures[m].label,
			pb_tools_measures[m].unit);
		for (guint i = 0; i < G_N_ELEMENTS(columns); i++) {
			if (v[columns[i]] >= 0)
				g_print("%11.1f", v[columns[i]]);
			else
				g_print("%11s", "-");
		}
		for (guint i = 0; i < G_N_ELEMENTS(over); i++) {
			if (v[over[i]] > 0)
				g_print("%8.2f", v[PB_TOOLS_TUNNEL] / v[over[i]]);
			else
				g_print("%8s", "-"); /* no errors there, or not measured */
		}
		if (v[PB_TOOLS_NO_RESUME] > 0 && v[PB_TOOLS_RELAY] > 0)
			g_print("%10.2f", v[PB_TOOLS_NO_RESUME] / v[PB_TOOLS_RELAY]);
		else
			g_print("%10s", "-");
		g_print("\n");
	}
}

/**
 * pb_bench_tools_measure:
 *
 * Forks the HTTP server first: call it while no other thread exists.
 */
gboolean
pb_bench_tools_measure(PbBench *bench, GError **error)
{
	static const char *const tools[] = {"iperf3", "sockperf", "wrk"};
	g_auto(PbToolsRun) run = {0};

	for (guint m = 0; m < PB_TOOLS_N_MEASURES; m++) {
		for (guint p = 0; p < PB_TOOLS_N_PATHS; p++)
			run.values[m][p] = g_array_new(FALSE, FALSE, sizeof(double));
	}
	g_print("\ntools: iperf3 (-n %d MiB), sockperf (64-byte ping-pong, %d s), wrk (50 "
		"connections, %d s, keep-alive and Connection: close), each through the relay, "
		"the tunnel and directly\n",
		bench->size_mib, bench->tool_s, bench->tool_s);
	for (guint t = 0; t < PB_TOOLS_N_TARGETS; t++) {
		g_autofree char *path = g_find_program_in_path(tools[t]);
		PbToolsTarget *target = &run.targets[t];
		guint16 port;

		run.have[t] = path != NULL;
		if (!run.have[t]) {
			g_print("(%s is not installed: skipped; Debian's package %s)\n", tools[t],
				tools[t]);
			continue;
		}
		if (!pb_tools_start_server(bench, t, path, target, &port, error) ||
		    !pb_bench_relay_start(bench, port, TRUE, FALSE, &target->hop1, &target->hop2,
					  &target->port[PB_TOOLS_RELAY], error) ||
		    (t == PB_TOOLS_SOCKPERF && bench->relay_path != NULL &&
		     !pb_bench_relay_start(bench, port, TRUE, TRUE, &target->glib_hop1,
					   &target->glib_hop2, &target->port[PB_TOOLS_GLIB],
					   error)) ||
		    !pb_bench_tunnel_start(bench, port, NULL, &target->tunnel, error) ||
		    (t == PB_TOOLS_IPERF && bench->features == NULL &&
		     !pb_bench_tunnel_start_with(bench, port, NULL, "flow,eof", &target->no_resume,
						 error)))
			return FALSE;
		target->port[PB_TOOLS_TUNNEL] = target->tunnel.public_port;
		target->port[PB_TOOLS_DIRECT] = port;
		target->port[PB_TOOLS_NO_RESUME] = target->no_resume.public_port;
	}
	g_print("\n%-7s %-22s %6s%11s%11s%11s%11s%11s%8s%8s%8s%10s\n", "round", "measure", "unit",
		"relay", "tunnel", "direct", "glib", "no resume", "/relay", "/direct", "/glib",
		"nr/relay");
	for (int round_no = 1; round_no <= bench->rounds; round_no++) {
		g_autofree char *label = g_strdup_printf("%d", round_no);

		for (guint t = 0; t < PB_TOOLS_N_TARGETS; t++) {
			for (guint i = 0; run.have[t] && i < PB_TOOLS_N_PATHS; i++) {
				guint p = (i + (guint)round_no) % PB_TOOLS_N_PATHS;

				if (run.targets[t].port[p] == 0)
					continue;
				if (!pb_tools_measure(bench, &run, t, p, error)) {
					g_prefix_error(error, "tools round %d, %s: ", round_no,
						       pb_tools_path_names[p]);
					return FALSE;
				}
			}
		}
		pb_tools_print(&run, label, FALSE, (guint)round_no);
		fflush(stdout);
	}
	g_print("\n");
	pb_tools_print(&run, "median", TRUE, 0);
	g_print("(ratios: tunnel / relay, tunnel / direct and tunnel / glib, the relay on a GLib "
		"main loop; nr/relay: the tunnel without `resume` / relay; for the latency rows "
		"lower is better)\n");
	return TRUE;
}
