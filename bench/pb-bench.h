/* SPDX-License-Identifier: ISC */
#pragma once

#include "pb-bench-common.h"

typedef enum {
	PB_BENCH_UPSTREAM,
	PB_BENCH_DOWNSTREAM,
	PB_BENCH_N_DIRECTIONS,
} PbBenchDirection;

#define PB_BENCH_DOMAIN "bench.test" /* serve --domain, when the tunnel has a name */

/* `piggyback serve` and `piggyback forward`, up until the end of the run */
typedef struct {
	PbBenchProc *serve;   /* (owned) (nullable) */
	PbBenchProc *forward; /* (owned) (nullable) */
	guint16 public_port;
	guint16 ws_port; /* serve's WebSocket port: names are reached there */
} PbBenchTunnel;

typedef struct {
	/* options */
	char *piggyback;  /* (owned) */
	char *socat;	  /* (owned) (nullable) with --relay socat */
	char *relay_path; /* (owned) (nullable) pb-bench-relay, unless --relay socat */
	int size_mib;
	int parallel; /* connections at once, each moving size_mib / parallel */
	int rounds;
	int timeout_s;
	gboolean relay_only;
	gboolean tunnel_only;
	gboolean verbose;
	char *features;	     /* (owned) (nullable) passed to serve and forward as --features */
	char *window;	     /* (owned) (nullable) passed to serve as --window */
	gboolean throughput; /* measure MiB/s (pb-bench.c) */
	gboolean echo;	     /* measure latency and connection rate (pb-bench-echo-measures.c) */
	gboolean memory;     /* with echo: the tunnel's memory under load and idle */
	gboolean names;	     /* HTTP by name next to the TCP port (pb-bench-names.c) */
	gboolean tools;	     /* iperf3, sockperf, wrk on every path (pb-bench-tools.c) */
	int tool_s;	     /* seconds of sockperf and of wrk per round and path */
	gboolean several;    /* HTTP through HAProxy and 3 serves (pb-bench-several.c) */
	int pings;	     /* 64-byte round trips per round */
	double connect_s;    /* seconds of new connections per round and path */
	int load_conns;	     /* concurrent 1 MiB echo connections */
	int idle_conns;	     /* idle connections held at once */
	int requests;	     /* per keep-alive connection and round, names measure */
	/* state */
	guint8 *pattern;		       /* (owned) */
	int relay_sink_fd;		       /* listener behind the relay's second hop, or -1 */
	guint16 relay_sink_port;	       /* its port */
	int local_fd;			       /* the tunnel's local service listener, or -1 */
	guint16 local_port;		       /* its port */
	PbBenchTunnel tunnel_procs;	       /* the tunnel to local_fd */
	GArray *relay[PB_BENCH_N_DIRECTIONS];  /* (owned) double MiB/s per round */
	GArray *tunnel[PB_BENCH_N_DIRECTIONS]; /* (owned) double MiB/s per round */
	PbBenchCost relay_cost;		       /* both hops summed; peak RSS is the larger one */
} PbBench;

gboolean
pb_bench_tunnel_start_with(PbBench *bench, guint16 local_port, const char *name,
			   const char *features, PbBenchTunnel *tunnel, GError **error);
gboolean
pb_bench_tunnel_start(PbBench *bench, guint16 local_port, const char *name, PbBenchTunnel *tunnel,
		      GError **error);
void
pb_bench_tunnel_clear(PbBenchTunnel *tunnel);
gboolean
pb_bench_relay_start(PbBench *bench, guint16 target_port, gboolean fork, gboolean glib,
		     PbBenchProc **hop1, PbBenchProc **hop2, guint16 *port, GError **error);
void
pb_bench_print_row(const char *label, const char *direction, double relay, double tunnel);
gboolean
pb_bench_echo_measures(PbBench *bench, GError **error);
gboolean
pb_bench_names_measure(PbBench *bench, GError **error);
gboolean
pb_bench_tools_measure(PbBench *bench, GError **error);
gboolean
pb_bench_several_measure(PbBench *bench, GError **error);
