/* SPDX-License-Identifier: ISC */
#pragma once

/*
 * What every pb-bench measure shares: loopback sockets, the child processes it starts
 * (the relay hops, `piggyback serve`, `piggyback forward`), and what they cost.
 */

#include <glib.h>
#include <netinet/in.h>
#include <sys/resource.h>

#define PB_BENCH_MIB	   (1024 * 1024)
#define PB_BENCH_SLICE_MS  250	/* how often a blocked thread looks at its deadline */
#define PB_BENCH_START_S   20	/* for a child to listen, or to print its access URL */
#define PB_BENCH_GRACE_MS  2000 /* between SIGTERM and SIGKILL */
#define PB_BENCH_LINE_MAX  4096 /* longest child stdout line kept */
#define PB_BENCH_EXIT_SKIP 77	/* meson's "skipped" */

#define PB_BENCH_ERROR (pb_bench_error_quark())
GQuark
pb_bench_error_quark(void);

typedef struct {
	double user_s;
	double sys_s;
	double peak_rss_mib; /* VmHWM, or ru_maxrss once reaped */
	double rss_mib;	     /* VmRSS now (live children only) */
	double anon_mib;     /* RssAnon now: the heap, without the shared libraries' pages */
	double pss_mib;	     /* Pss now: RSS with each shared page divided among its users */
} PbBenchCost;

/* A child process: a relay hop, `piggyback serve` or `piggyback forward`. */
typedef struct {
	char *name;	     /* (owned) for messages */
	GPid pid;	     /* 0 once reaped */
	int status;	     /* wait status, once reaped */
	struct rusage usage; /* of the child, once reaped */
	int out_fd;	     /* read end of the child's stdout, or -1 */
	GThread *out_thread; /* (owned) drains out_fd, looks for the access URL */
	int out_stop;	     /* atomic: out_thread must quit */
	gboolean verbose;    /* echo the child's stdout to stderr */
	GMutex lock;	     /* guards the two fields below */
	GCond cond;	     /* signalled when one of them changes */
	guint16 public_port; /* from "Access URL: tcp://HOST:PORT", 0 until seen */
	gboolean out_eof;    /* the child's stdout is closed */
} PbBenchProc;

void
pb_bench_close_fd(int *fd);
struct sockaddr_in
pb_bench_loopback(guint16 port);
int
pb_bench_bind_loopback(gboolean listening, guint16 *port, GError **error);
int
pb_bench_connect(guint16 port, GError **error);
gboolean
pb_bench_free_ports(guint16 *ports, guint n, GError **error);
gboolean
pb_bench_is_listening(guint16 port);
void
pb_bench_raise_fd_limit(void);

void
pb_bench_cost_add_rusage(PbBenchCost *cost, const struct rusage *usage);

PbBenchProc *
pb_bench_proc_spawn(const char *name, const char *const *argv, gboolean verbose, GError **error);
gboolean
pb_bench_proc_reap(PbBenchProc *proc, gboolean block);
char *
pb_bench_proc_describe(PbBenchProc *proc);
void
pb_bench_proc_stop(PbBenchProc *proc);
void
pb_bench_proc_free(PbBenchProc *proc);
gboolean
pb_bench_proc_wait_listening(PbBenchProc *proc, guint16 port, GError **error);
gboolean
pb_bench_proc_wait_public_port(PbBenchProc *proc, guint16 *port, GError **error);
gboolean
pb_bench_proc_read_cost(PbBenchProc *proc, PbBenchCost *cost, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbBenchProc, pb_bench_proc_free)

double
pb_bench_median(GArray *values);
double
pb_bench_percentile(GArray *values, double p);
