/* SPDX-License-Identifier: ISC */

/*
 * The measures against an echo service, each over three paths in the same run: direct (the
 * echo server itself), relay (two hops in a row: pb-bench-relay, or forking socats) and tunnel (a
 * second `piggyback serve` + `piggyback forward` pair whose local service is the echo server):
 *
 *   latency      64-byte round trips over one connection: p50 and p99 per round
 *   connections  16 workers: connect, 16 bytes each way, close, for a fixed time
 *   memory       the tunnel's resident memory idle, after 100 concurrent 1 MiB echo
 *                connections, holding 10 000 idle connections, and after they close
 */

#include <stdio.h>
#include <unistd.h>

#include "pb-bench-echo.h"
#include "pb-bench-ops.h"
#include "pb-bench.h"

enum { PB_BENCH_PATH_DIRECT, PB_BENCH_PATH_RELAY, PB_BENCH_PATH_TUNNEL, PB_BENCH_N_PATHS };

static const char *const pb_bench_path_names[] = {"direct", "relay", "tunnel"};

typedef struct {
	GArray *p50[PB_BENCH_N_PATHS];	  /* (owned) µs, one per round */
	GArray *p99[PB_BENCH_N_PATHS];	  /* (owned) µs, one per round */
	GArray *rate[PB_BENCH_N_PATHS];	  /* (owned) connections/s, one per round */
	guint failures[PB_BENCH_N_PATHS]; /* connections that failed, over all rounds */
	guint16 port[PB_BENCH_N_PATHS];	  /* where each path starts */
	GPid echo_pid;			  /* 0 once stopped */
	PbBenchTunnel tunnel;		  /* to the echo server */
	PbBenchProc *hop1;		  /* (owned) (nullable) the relay */
	PbBenchProc *hop2;		  /* (owned) (nullable) */
	PbBenchCost idle[2];		  /* serve, forward: just after start */
	PbBenchCost relay_idle;		  /* the relay's first hop, likewise */
	PbBenchCost floor_idle;		  /* pb-bench-floor, likewise (0 without it) */
	PbBenchCost loaded[2];		  /* after the concurrent echo connections */
	PbBenchCost holding[2];		  /* while holding the idle connections */
	PbBenchCost after[2];		  /* once they have closed */
	double load_s;			  /* how long the concurrent echo connections took */
	guint n_idle;			  /* idle connections actually held */
} PbBenchEchoRun;

static void
pb_bench_echo_run_clear(PbBenchEchoRun *run)
{
	for (guint p = 0; p < PB_BENCH_N_PATHS; p++) {
		g_clear_pointer(&run->p50[p], g_array_unref);
		g_clear_pointer(&run->p99[p], g_array_unref);
		g_clear_pointer(&run->rate[p], g_array_unref);
	}
	g_clear_pointer(&run->hop1, pb_bench_proc_free);
	g_clear_pointer(&run->hop2, pb_bench_proc_free);
	pb_bench_tunnel_clear(&run->tunnel);
	pb_bench_echo_stop(&run->echo_pid);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PbBenchEchoRun, pb_bench_echo_run_clear)

static gboolean
pb_bench_read_tunnel_cost(PbBenchEchoRun *run, PbBenchCost cost[2], GError **error)
{
	g_usleep(500 * G_TIME_SPAN_MILLISECOND); /* let closes and frees settle */
	return pb_bench_proc_read_cost(run->tunnel.serve, &cost[0], error) &&
	       pb_bench_proc_read_cost(run->tunnel.forward, &cost[1], error);
}

/* The idle memory of pb-bench-floor (the same libraries, doing nothing), read while the
 * tunnel runs beside it so that both share their libraries' pages alike. Left at 0 when
 * pb-bench-floor is not beside pb-bench. */
static gboolean
pb_bench_start_floor(PbBench *bench, PbBenchProc **floor, GError **error)
{
	g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
	g_autofree char *dir = self != NULL ? g_path_get_dirname(self) : NULL;
	g_autofree char *path = dir != NULL ? g_build_filename(dir, "pb-bench-floor", NULL) : NULL;
	g_autofree char *port_text = NULL;
	guint16 port;

	if (path == NULL || !g_file_test(path, G_FILE_TEST_IS_EXECUTABLE))
		return TRUE;
	if (!pb_bench_free_ports(&port, 1, error))
		return FALSE;
	port_text = g_strdup_printf("%u", port);
	*floor = pb_bench_proc_spawn("pb-bench-floor", (const char *const[]){path, port_text, NULL},
				     bench->verbose, error);
	return *floor != NULL && pb_bench_proc_wait_listening(*floor, port, error);
}

static gboolean
pb_bench_echo_round(PbBench *bench, PbBenchEchoRun *run, int round_no, GError **error)
{
	/* the first path turns from round to round, so that what one path's connections leave
	 * behind (sockets closing, the relay's or tunnel's frees) does not always hit the same
	 * next one */
	for (guint i = 0; i < PB_BENCH_N_PATHS; i++) {
		guint p = (i + (guint)round_no) % PB_BENCH_N_PATHS;
		g_autoptr(GArray) rtts = g_array_new(FALSE, FALSE, sizeof(double));
		double p50, p99, rate;
		guint failures = 0;

		if (run->port[p] == 0)
			continue;
		if (!pb_bench_latency(run->port[p], (guint)bench->pings, rtts, error) ||
		    !pb_bench_connect_rate(run->port[p], &pb_bench_echo_hello, PB_BENCH_WORKERS,
					   bench->connect_s, &rate, &failures, error)) {
			g_prefix_error(error, "%s: ", pb_bench_path_names[p]);
			return FALSE;
		}
		p50 = pb_bench_percentile(rtts, 50);
		p99 = pb_bench_percentile(rtts, 99);
		g_array_append_val(run->p50[p], p50);
		g_array_append_val(run->p99[p], p99);
		g_array_append_val(run->rate[p], rate);
		run->failures[p] += failures;
	}
	return TRUE;
}

static gboolean
pb_bench_echo_memory(PbBench *bench, PbBenchEchoRun *run, GError **error)
{
	struct rlimit limit;
	g_autoptr(GArray) fds = NULL;

	if (!pb_bench_echo_load(run->port[PB_BENCH_PATH_TUNNEL], (guint)bench->load_conns,
				PB_BENCH_MIB, bench->timeout_s, &run->load_s, error)) {
		g_prefix_error(error, "%d concurrent echo connections: ", bench->load_conns);
		return FALSE;
	}
	if (!pb_bench_read_tunnel_cost(run, run->loaded, error))
		return FALSE;
	/* each side holds one socket per connection: stay under what the children may open */
	run->n_idle = (guint)bench->idle_conns;
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < run->n_idle + 200)
		run->n_idle = limit.rlim_cur > 200 ? (guint)limit.rlim_cur - 200 : 0;
	fds = pb_bench_hold_idle(run->port[PB_BENCH_PATH_TUNNEL], run->n_idle, error);
	if (fds == NULL) {
		g_prefix_error(error, "%u idle connections: ", run->n_idle);
		return FALSE;
	}
	if (!pb_bench_read_tunnel_cost(run, run->holding, error))
		return FALSE;
	g_clear_pointer(&fds, pb_bench_release_idle);
	/* the closes go through the tunnel; then each side gives free memory back (pb-memory.c) */
	g_usleep(4 * G_TIME_SPAN_SECOND);
	return pb_bench_read_tunnel_cost(run, run->after, error);
}

static void
pb_bench_print_paths(const char *label, GArray *const values[PB_BENCH_N_PATHS], int precision,
		     gboolean tunnel_over_relay)
{
	double v[PB_BENCH_N_PATHS];

	g_print("%-26s", label);
	for (guint p = 0; p < PB_BENCH_N_PATHS; p++) {
		v[p] = pb_bench_median(values[p]);
		if (v[p] < 0)
			g_print("%10s", "-");
		else
			g_print("%10.*f", precision, v[p]);
	}
	if (tunnel_over_relay && v[PB_BENCH_PATH_RELAY] > 0 && v[PB_BENCH_PATH_TUNNEL] >= 0)
		g_print("%15.2f", v[PB_BENCH_PATH_TUNNEL] / v[PB_BENCH_PATH_RELAY]);
	else
		g_print("%15s", "-");
	if (v[PB_BENCH_PATH_DIRECT] > 0 && v[PB_BENCH_PATH_TUNNEL] >= 0)
		g_print("%16.2f", v[PB_BENCH_PATH_TUNNEL] / v[PB_BENCH_PATH_DIRECT]);
	g_print("\n");
}

static void
pb_bench_print_memory(const char *label, const PbBenchCost cost[2])
{
	g_print("%-34s %7.1f %7.1f %7.1f   %7.1f %7.1f %7.1f\n", label, cost[0].rss_mib,
		cost[0].anon_mib, cost[0].pss_mib, cost[1].rss_mib, cost[1].anon_mib,
		cost[1].pss_mib);
}

static void
pb_bench_echo_report(PbBench *bench, PbBenchEchoRun *run)
{
	g_print("\nmedian of %d round%s %10s%10s%10s%15s%16s\n", bench->rounds,
		bench->rounds == 1 ? " " : "s", "direct", "relay", "tunnel", "tunnel/relay",
		"tunnel/direct");
	pb_bench_print_paths("64-byte round trip p50 us", run->p50, 1, TRUE);
	pb_bench_print_paths("64-byte round trip p99 us", run->p99, 1, TRUE);
	pb_bench_print_paths("new connections per s", run->rate, 0, TRUE);
	g_print("%-26s%10u%10u%10u\n", "failed connections", run->failures[0], run->failures[1],
		run->failures[2]);
	if (run->n_idle == 0 && run->load_s == 0)
		return;
	g_print("\n%-34s %23s   %23s\n", "tunnel memory, MiB", "serve", "forward");
	g_print("%-34s %7s %7s %7s   %7s %7s %7s\n", "", "RSS", "anon", "PSS", "RSS", "anon",
		"PSS");
	pb_bench_print_memory("idle, after start", run->idle);
	if (run->relay_idle.rss_mib > 0)
		g_print("%-34s %7.1f %7.1f %7.1f\n", "(one hop of the relay, idle)",
			run->relay_idle.rss_mib, run->relay_idle.anon_mib, run->relay_idle.pss_mib);
	if (run->floor_idle.rss_mib > 0)
		g_print("%-34s %7.1f %7.1f %7.1f\n", "(same libraries doing nothing)",
			run->floor_idle.rss_mib, run->floor_idle.anon_mib, run->floor_idle.pss_mib);
	{
		g_autofree char *label = g_strdup_printf("after %d x 1 MiB echo (%.2f s)",
							 bench->load_conns, run->load_s);

		pb_bench_print_memory(label, run->loaded);
	}
	{
		g_autofree char *label =
		    g_strdup_printf("holding %u idle connections", run->n_idle);

		pb_bench_print_memory(label, run->holding);
	}
	pb_bench_print_memory("after they closed", run->after);
	if (run->n_idle > 0) {
		/* per connection: what closing them gave back (the row after the echo load is
		 * read before pb-memory.c's delayed trim, so it is no baseline); kept: against
		 * the start, which includes the tunnel's own read and frame buffers, touched
		 * once traffic flowed */
		g_print("%-34s %15.2f %23.2f\n", "KiB of heap per idle connection",
			(run->holding[0].anon_mib - run->after[0].anon_mib) * 1024 / run->n_idle,
			(run->holding[1].anon_mib - run->after[1].anon_mib) * 1024 / run->n_idle);
		g_print("%-34s %15.2f %23.2f\n", "MiB of heap kept since the start",
			run->after[0].anon_mib - run->idle[0].anon_mib,
			run->after[1].anon_mib - run->idle[1].anon_mib);
	}
	g_print("%-34s %7.1f %7s   %7.1f\n", "peak (VmHWM) before the idle ones",
		run->loaded[0].peak_rss_mib, "", run->loaded[1].peak_rss_mib);
	g_print("%-34s %7.1f %7s   %7.1f\n", "peak (VmHWM) over the whole run",
		run->after[0].peak_rss_mib, "", run->after[1].peak_rss_mib);
	g_print(
	    "(anon = RssAnon, the process's own heap; the rest of RSS is pages of shared "
	    "libraries;\n PSS counts each shared page in part, divided among the processes that "
	    "map it)\n");
}

/**
 * pb_bench_echo_measures:
 *
 * Forks the echo server first: call it before any other thread exists.
 */
gboolean
pb_bench_echo_measures(PbBench *bench, GError **error)
{
	g_auto(PbBenchEchoRun) run = {0};
	guint16 echo_port;

	run.echo_pid = pb_bench_echo_spawn(FALSE, &echo_port, error);
	if (run.echo_pid == 0)
		return FALSE;
	for (guint p = 0; p < PB_BENCH_N_PATHS; p++) {
		run.p50[p] = g_array_new(FALSE, FALSE, sizeof(double));
		run.p99[p] = g_array_new(FALSE, FALSE, sizeof(double));
		run.rate[p] = g_array_new(FALSE, FALSE, sizeof(double));
	}
	run.port[PB_BENCH_PATH_DIRECT] = echo_port;
	if (!bench->tunnel_only &&
	    !pb_bench_relay_start(bench, echo_port, TRUE, FALSE, &run.hop1, &run.hop2,
				  &run.port[PB_BENCH_PATH_RELAY], error))
		return FALSE;
	if (run.hop1 != NULL && !pb_bench_proc_read_cost(run.hop1, &run.relay_idle, error))
		return FALSE;
	if (!bench->relay_only) {
		g_autoptr(PbBenchProc) floor = NULL;

		if ((bench->memory && !pb_bench_start_floor(bench, &floor, error)) ||
		    !pb_bench_tunnel_start(bench, echo_port, NULL, &run.tunnel, error) ||
		    !pb_bench_read_tunnel_cost(&run, run.idle, error) ||
		    (floor != NULL && !pb_bench_proc_read_cost(floor, &run.floor_idle, error)))
			return FALSE;
		run.port[PB_BENCH_PATH_TUNNEL] = run.tunnel.public_port;
	}
	for (int round_no = 1; round_no <= bench->rounds; round_no++) {
		if (!pb_bench_echo_round(bench, &run, round_no, error)) {
			g_prefix_error(error, "echo round %d: ", round_no);
			return FALSE;
		}
	}
	if (!bench->relay_only && bench->memory && !pb_bench_echo_memory(bench, &run, error))
		return FALSE;
	pb_bench_echo_report(bench, &run);
	return TRUE;
}
