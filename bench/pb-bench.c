/* SPDX-License-Identifier: ISC */

/*
 * pb-bench: PiggyBack next to a plain two-hop user-space relay (two hops in a row, 256 KiB
 * buffers, DESIGN.md "Data path and its budget") measured in the same run: two
 * pb-bench-relay processes (bench/pb-bench-relay.c: why not socat), or with --relay socat
 * two `socat -b 262144`, as before issue 15. This file: main, and
 * throughput (MiB/s over one connection, then over --parallel connections at once, in both
 * directions); pb-bench-echo-measures.c: latency, new connections per second and memory;
 * pb-bench-names.c: HTTP connections and requests per second by a tunnel's name next to its
 * TCP port.
 *
 *   upstream   = public → local: the bench writes into the public port; the local service (a
 *                sink inside the bench) reads.
 *   downstream = local → public: the local service writes as soon as it accepts; the bench
 *                reads from the public port.
 *
 * A transfer is timed from its first byte written until the reader holds all of it. Every byte
 * is checked against the pattern it was written from and the count must be exact; the writer
 * then closes and the close must reach the reader. Rounds interleave relay and tunnel so that
 * drift on the machine hits both alike.
 *
 * Exit status: 0 success, 1 failure, 77 skipped (--relay socat and socat is not installed).
 */

#define _GNU_SOURCE /* accept4() */

#include "pb-bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pb-bench-common.h"

#define PB_BENCH_CHUNK	(256 * 1024) /* every read and write, like `socat -b 262144` */
#define PB_BENCH_PERIOD 262139	     /* pattern period, a prime: never in step with any framing */
#define PB_BENCH_EOF_S	10	     /* for the writer's close to reach the reader */

static const char *const pb_bench_direction_names[] = {"upstream", "downstream"};

/* One timed transfer over one fresh TCP connection, with a writer and a reader thread. */
typedef struct {
	const guint8 *pattern; /* PB_BENCH_PERIOD + PB_BENCH_CHUNK bytes, period PB_BENCH_PERIOD */
	guint64 size;	       /* bytes to move */
	gint64 deadline;       /* monotonic µs */
	guint16 connect_port;  /* public side: first relay hop, or the tunnel's public port */
	int listen_fd;	       /* local side: the local service's listener */
	gboolean upstream;     /* the public (connecting) side writes */
	guint64 sent;	       /* written by the writer thread, read after the join */
	guint64 got;	       /* written by the reader thread, read after the join */
	GMutex lock;	       /* guards the fields below */
	GCond cond;	       /* signalled when one of them changes */
	gint64 start_us;       /* just before the first write */
	gint64 end_us;	       /* just after the last byte was read */
	gboolean received;     /* the reader holds every byte */
	gboolean timed_out;    /* the deadline passed */
	char *error;	       /* (owned) first failure, or NULL */
} PbBenchTransfer;

/* ---- one transfer ---- */

static void
pb_bench_transfer_fail(PbBenchTransfer *t, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void
pb_bench_transfer_fail(PbBenchTransfer *t, const char *format, ...)
{
	G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
	va_list args;

	if (t->error != NULL)
		return;
	va_start(args, format);
	t->error = g_strdup_vprintf(format, args);
	va_end(args);
	g_cond_broadcast(&t->cond);
}

/* TRUE when this side must give up: the other side failed, or the deadline passed */
static gboolean
pb_bench_transfer_stopping(PbBenchTransfer *t)
{
	G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);

	if (t->error == NULL && g_get_monotonic_time() >= t->deadline) {
		t->timed_out = TRUE;
		t->error = g_strdup("timed out");
		g_cond_broadcast(&t->cond);
	}
	return t->error != NULL;
}

/* one end of the connection: connect to the public side, or accept on the local side */
static int
pb_bench_transfer_open(PbBenchTransfer *t, gboolean connecting, const char *side)
{
	struct timeval slice = {0, PB_BENCH_SLICE_MS * 1000};
	int fd = -1;

	if (connecting) {
		struct sockaddr_in addr = pb_bench_loopback(t->connect_port);

		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
			int saved = errno;

			pb_bench_close_fd(&fd);
			pb_bench_transfer_fail(t, "%s: cannot connect to 127.0.0.1:%u: %s", side,
					       t->connect_port, g_strerror(saved));
			return -1;
		}
	} else {
		while (fd < 0) {
			struct pollfd pfd = {.fd = t->listen_fd, .events = POLLIN};

			if (pb_bench_transfer_stopping(t))
				return -1;
			if (poll(&pfd, 1, PB_BENCH_SLICE_MS) <= 0)
				continue;
			/* the listener is non-blocking; the accepted socket is not */
			fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED) {
				pb_bench_transfer_fail(t, "%s: accept: %s", side,
						       g_strerror(errno));
				return -1;
			}
		}
	}
	/* blocking I/O that wakes up now and then to look at the deadline */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &slice, sizeof slice);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof slice);
	return fd;
}

static gpointer
pb_bench_writer_thread(gpointer user_data)
{
	PbBenchTransfer *t = user_data;
	const char *side = t->upstream ? "public-side writer" : "local-service writer";
	int fd = pb_bench_transfer_open(t, t->upstream, side);

	if (fd < 0)
		return NULL;
	g_mutex_lock(&t->lock);
	t->start_us = g_get_monotonic_time();
	g_mutex_unlock(&t->lock);

	while (t->sent < t->size) {
		gsize n = MIN(PB_BENCH_CHUNK, t->size - t->sent);
		ssize_t r = send(fd, t->pattern + t->sent % PB_BENCH_PERIOD, n, MSG_NOSIGNAL);

		if (r >= 0) {
			t->sent += r;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (pb_bench_transfer_stopping(t))
				break;
			continue;
		}
		pb_bench_transfer_fail(t, "%s: send failed after %" G_GUINT64_FORMAT " bytes: %s",
				       side, t->sent, g_strerror(errno));
		break;
	}

	/* keep the connection open until the reader has it all: a close must not race the data */
	g_mutex_lock(&t->lock);
	while (t->sent == t->size && !t->received && t->error == NULL) {
		if (!g_cond_wait_until(&t->cond, &t->lock, t->deadline) &&
		    g_get_monotonic_time() >= t->deadline && t->error == NULL) {
			t->timed_out = TRUE;
			t->error = g_strdup("timed out");
			g_cond_broadcast(&t->cond);
		}
	}
	g_mutex_unlock(&t->lock);
	close(fd);
	return NULL;
}

/* after the last byte: nothing more may arrive, and the writer's close must come through */
static void
pb_bench_reader_expect_eof(PbBenchTransfer *t, int fd, guint8 *buf, const char *side)
{
	gint64 deadline = g_get_monotonic_time() + PB_BENCH_EOF_S * G_TIME_SPAN_SECOND;

	for (;;) {
		ssize_t r = recv(fd, buf, PB_BENCH_CHUNK, 0);

		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return;
		if (r > 0) {
			pb_bench_transfer_fail(t,
					       "%s: received bytes beyond the %" G_GUINT64_FORMAT
					       " that were written",
					       side, t->size);
			return;
		}
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
			pb_bench_transfer_fail(t, "%s: recv failed after the last byte: %s", side,
					       g_strerror(errno));
			return;
		}
		if (g_get_monotonic_time() >= deadline) {
			pb_bench_transfer_fail(t,
					       "%s: every byte arrived, but the connection was "
					       "still open %d s after the writer closed its end",
					       side, PB_BENCH_EOF_S);
			return;
		}
	}
}

static gpointer
pb_bench_reader_thread(gpointer user_data)
{
	PbBenchTransfer *t = user_data;
	const char *side = t->upstream ? "local-service reader" : "public-side reader";
	g_autofree guint8 *buf = g_malloc(PB_BENCH_CHUNK);
	int fd = pb_bench_transfer_open(t, !t->upstream, side);

	if (fd < 0)
		return NULL;
	while (t->got < t->size) {
		gsize n = MIN(PB_BENCH_CHUNK, t->size - t->got);
		ssize_t r = recv(fd, buf, n, 0);

		if (r > 0) {
			const guint8 *expected = t->pattern + t->got % PB_BENCH_PERIOD;

			if (memcmp(buf, expected, r) != 0) {
				ssize_t i = 0;

				while (buf[i] == expected[i])
					i++;
				pb_bench_transfer_fail(
				    t,
				    "%s: corrupted data at byte %" G_GUINT64_FORMAT
				    " (0x%02x, expected 0x%02x)",
				    side, t->got + i, buf[i], expected[i]);
				break;
			}
			t->got += r;
			continue;
		}
		if (r == 0) {
			pb_bench_transfer_fail(t,
					       "%s: connection closed after %" G_GUINT64_FORMAT
					       " of %" G_GUINT64_FORMAT " bytes",
					       side, t->got, t->size);
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (pb_bench_transfer_stopping(t))
				break;
			continue;
		}
		pb_bench_transfer_fail(t, "%s: recv failed after %" G_GUINT64_FORMAT " bytes: %s",
				       side, t->got, g_strerror(errno));
		break;
	}
	if (t->got == t->size) {
		g_mutex_lock(&t->lock);
		t->end_us = g_get_monotonic_time();
		t->received = TRUE;
		g_cond_broadcast(&t->cond);
		g_mutex_unlock(&t->lock);
		pb_bench_reader_expect_eof(t, fd, buf, side);
	}
	close(fd);
	return NULL;
}

/* push bench->size_mib MiB from one end to the other; MiB/s in *mib_s */
static gboolean
pb_bench_transfer_run(PbBench *bench, guint16 connect_port, int listen_fd, gboolean upstream,
		      double *mib_s, GError **error)
{
	guint n = (guint)bench->parallel;
	g_autofree PbBenchTransfer *t = g_new0(PbBenchTransfer, n);
	g_autofree GThread **threads = g_new0(GThread *, 2 * n);
	gint64 start_us = G_MAXINT64;
	gint64 end_us = 0;
	gboolean ok = TRUE;

	/* every connection carries the same bytes, so any accepted one pairs with any other */
	for (guint i = 0; i < n; i++) {
		t[i].pattern = bench->pattern;
		t[i].size = (guint64)bench->size_mib * PB_BENCH_MIB / n;
		t[i].deadline = g_get_monotonic_time() + bench->timeout_s * G_TIME_SPAN_SECOND;
		t[i].connect_port = connect_port;
		t[i].listen_fd = listen_fd;
		t[i].upstream = upstream;
		g_mutex_init(&t[i].lock);
		g_cond_init(&t[i].cond);
		threads[2 * i] = g_thread_new("pb-bench-reader", pb_bench_reader_thread, &t[i]);
		threads[2 * i + 1] = g_thread_new("pb-bench-writer", pb_bench_writer_thread, &t[i]);
	}
	for (guint i = 0; i < 2 * n; i++)
		g_thread_join(threads[i]);

	for (guint i = 0; i < n; i++) {
		/* a reader may finish another writer's bytes before its own writer starts: only
		 * the first start and the last end make sense together */
		if (ok && !(t[i].error == NULL && t[i].received)) {
			ok = FALSE;
			if (t[i].timed_out)
				g_set_error(error, PB_BENCH_ERROR, 0,
					    "timed out after %d s: %" G_GUINT64_FORMAT
					    " of %" G_GUINT64_FORMAT
					    " bytes written, %" G_GUINT64_FORMAT " read",
					    bench->timeout_s, t[i].sent, t[i].size, t[i].got);
			else
				g_set_error_literal(error, PB_BENCH_ERROR, 0,
						    t[i].error != NULL ? t[i].error
								       : "transfer failed");
		}
		start_us = MIN(start_us, t[i].start_us);
		end_us = MAX(end_us, t[i].end_us);
		g_free(t[i].error);
		g_mutex_clear(&t[i].lock);
		g_cond_clear(&t[i].cond);
	}
	if (ok && end_us <= start_us) {
		g_set_error_literal(error, PB_BENCH_ERROR, 0, "the transfers took no time");
		ok = FALSE;
	}
	if (ok)
		*mib_s = bench->size_mib / ((end_us - start_us) / 1e6);
	return ok;
}

/* ---- the two paths ---- */

/**
 * pb_bench_relay_start:
 * @target_port: where the second hop connects
 * @fork: with socat, one process per connection, for several connections
 * @port: (out): where the first one listens
 *
 * Two fresh hops in a row: @port → hop 1 → hop 2 → @target_port.
 */
/* One attempt at the relay on two free ports. */
static gboolean
pb_bench_relay_try(PbBench *bench, guint16 target_port, gboolean fork, gboolean glib,
		   PbBenchProc **hop1, PbBenchProc **hop2, guint16 *port, GError **error)
{
	guint16 ports[2];
	g_autofree char *listen1 = NULL;
	g_autofree char *listen2 = NULL;
	g_autofree char *target1 = NULL;
	g_autofree char *target2 = NULL;

	if (!pb_bench_free_ports(ports, 2, error))
		return FALSE;
	if (bench->relay_path != NULL) {
		/* pb-bench-relay LISTEN_PORT TARGET_PORT: one process per hop for every
		 * connection, so @fork does not apply */
		listen1 = g_strdup_printf("%u", ports[0]);
		target1 = g_strdup_printf("%u", ports[1]);
		listen2 = g_strdup_printf("%u", ports[1]);
		target2 = g_strdup_printf("%u", target_port);
	} else {
		listen1 =
		    g_strdup_printf("TCP-LISTEN:%u,reuseaddr,bind=127.0.0.1,backlog=4096,nodelay%s",
				    ports[0], fork ? ",fork" : "");
		target1 = g_strdup_printf("TCP:127.0.0.1:%u,nodelay", ports[1]);
		listen2 =
		    g_strdup_printf("TCP-LISTEN:%u,reuseaddr,bind=127.0.0.1,backlog=4096,nodelay%s",
				    ports[1], fork ? ",fork" : "");
		target2 = g_strdup_printf("TCP:127.0.0.1:%u,nodelay", target_port);
	}
	{
		const char *argv2_socat[] = {bench->socat, "-b", "262144", listen2, target2, NULL};
		const char *argv1_socat[] = {bench->socat, "-b", "262144", listen1, target1, NULL};
		const char *glib_option = glib ? "--glib" : NULL;
		const char *argv2_relay[] = {bench->relay_path, listen2, target2, glib_option,
					     NULL};
		const char *argv1_relay[] = {bench->relay_path, listen1, target1, glib_option,
					     NULL};
		const char *const *argv2 = bench->relay_path != NULL ? argv2_relay : argv2_socat;
		const char *const *argv1 = bench->relay_path != NULL ? argv1_relay : argv1_socat;

		*hop2 = pb_bench_proc_spawn("relay (hop 2)", argv2, bench->verbose, error);
		if (*hop2 == NULL || !pb_bench_proc_wait_listening(*hop2, ports[1], error))
			return FALSE;
		*hop1 = pb_bench_proc_spawn("relay (hop 1)", argv1, bench->verbose, error);
		if (*hop1 == NULL || !pb_bench_proc_wait_listening(*hop1, ports[0], error))
			return FALSE;
	}
	*port = ports[0];
	return TRUE;
}

/* The two-hop relay to @target_port; with @glib (pb-bench-relay only), the relay run on a
 * GLib main loop. A port found free can be taken by someone else (an outgoing connection's
 * local port, say) before a hop binds it: then again, on others. */
gboolean
pb_bench_relay_start(PbBench *bench, guint16 target_port, gboolean fork, gboolean glib,
		     PbBenchProc **hop1, PbBenchProc **hop2, guint16 *port, GError **error)
{
	for (guint attempt = 1;; attempt++) {
		g_autoptr(GError) local_error = NULL;

		*hop1 = *hop2 = NULL;
		if (pb_bench_relay_try(bench, target_port, fork, glib, hop1, hop2, port,
				       &local_error))
			return TRUE;
		g_clear_pointer(hop1, pb_bench_proc_free);
		g_clear_pointer(hop2, pb_bench_proc_free);
		if (attempt == 3) {
			g_propagate_error(error, g_steal_pointer(&local_error));
			return FALSE;
		}
		g_printerr("pb-bench: %s; again on other ports\n", local_error->message);
	}
}

/* the relay for one throughput transfer */
static gboolean
pb_bench_relay_run(PbBench *bench, gboolean upstream, double *mib_s, GError **error)
{
	g_autoptr(PbBenchProc) hop1 = NULL;
	g_autoptr(PbBenchProc) hop2 = NULL;
	guint16 port;

	if (!pb_bench_relay_start(bench, bench->relay_sink_port, bench->parallel > 1, FALSE, &hop1,
				  &hop2, &port, error))
		return FALSE;
	if (!pb_bench_transfer_run(bench, port, bench->relay_sink_fd, upstream, mib_s, error))
		return FALSE;
	pb_bench_proc_stop(hop1);
	pb_bench_proc_stop(hop2);
	pb_bench_cost_add_rusage(&bench->relay_cost, &hop1->usage);
	pb_bench_cost_add_rusage(&bench->relay_cost, &hop2->usage);
	return TRUE;
}

/* `piggyback serve` and `piggyback forward` to 127.0.0.1:@local_port; with @name, serve has
 * --domain PB_BENCH_DOMAIN and forward asks for @name; both ends with --features @features
 * (nullable: theirs) */
gboolean
pb_bench_tunnel_start_with(PbBench *bench, guint16 local_port, const char *name,
			   const char *features, PbBenchTunnel *tunnel, GError **error)
{
	guint16 ws_port;
	g_autofree char *ws_str = NULL;
	g_autofree char *local_str = NULL;
	g_autofree char *server_str = NULL;

	if (!pb_bench_free_ports(&ws_port, 1, error))
		return FALSE;
	ws_str = g_strdup_printf("%u", ws_port);
	local_str = g_strdup_printf("%u", local_port);
	server_str = g_strdup_printf("127.0.0.1:%u", ws_port);
	{
		g_autoptr(GPtrArray) serve = g_ptr_array_new();
		g_autoptr(GPtrArray) forward = g_ptr_array_new();
		/* the memory measure holds --idle connections on one tunnel */
		const char *serve_fixed[] = {
		    bench->piggyback,	 "serve",  "-p", ws_str, "-l",
		    "127.0.0.1",	 "-t",	   "0",	 "-H",	 "127.0.0.1",
		    "--max-connections", "1000000"};
		const char *forward_fixed[] = {
		    bench->piggyback, "forward", "-p",	     local_str,		  "-h",
		    "127.0.0.1",      "-s",	 server_str, "--max-connections", "1000000"};
		const char *const *serve_argv;
		const char *const *forward_argv;

		for (gsize i = 0; i < G_N_ELEMENTS(serve_fixed); i++)
			g_ptr_array_add(serve, (gpointer)serve_fixed[i]);
		for (gsize i = 0; i < G_N_ELEMENTS(forward_fixed); i++)
			g_ptr_array_add(forward, (gpointer)forward_fixed[i]);
		if (features != NULL) {
			g_ptr_array_add(serve, (gpointer) "--features");
			g_ptr_array_add(serve, (gpointer)features);
			g_ptr_array_add(forward, (gpointer) "--features");
			g_ptr_array_add(forward, (gpointer)features);
		}
		if (bench->window != NULL) {
			g_ptr_array_add(serve, (gpointer) "--window");
			g_ptr_array_add(serve, bench->window);
		}
		if (name != NULL) {
			g_ptr_array_add(serve, (gpointer) "--domain");
			g_ptr_array_add(serve, (gpointer)PB_BENCH_DOMAIN);
			g_ptr_array_add(forward, (gpointer) "--name");
			g_ptr_array_add(forward, (gpointer)name);
		}
		g_ptr_array_add(serve, NULL);
		g_ptr_array_add(forward, NULL);
		serve_argv = (const char *const *)serve->pdata;
		forward_argv = (const char *const *)forward->pdata;

		tunnel->serve =
		    pb_bench_proc_spawn("piggyback serve", serve_argv, bench->verbose, error);
		if (tunnel->serve == NULL ||
		    !pb_bench_proc_wait_listening(tunnel->serve, ws_port, error))
			return FALSE;
		tunnel->forward =
		    pb_bench_proc_spawn("piggyback forward", forward_argv, bench->verbose, error);
		if (tunnel->forward == NULL)
			return FALSE;
	}
	tunnel->ws_port = ws_port;
	return pb_bench_proc_wait_public_port(tunnel->forward, &tunnel->public_port, error);
}

/* The tunnel of pb_bench_tunnel_start_with(), with the run's --features. */
gboolean
pb_bench_tunnel_start(PbBench *bench, guint16 local_port, const char *name, PbBenchTunnel *tunnel,
		      GError **error)
{
	return pb_bench_tunnel_start_with(bench, local_port, name, bench->features, tunnel, error);
}

/* ---- report ---- */

/* "   1012.3" or "        -" when not measured */
static char *
pb_bench_format(double value, int width, int precision)
{
	if (value < 0)
		return g_strdup_printf("%*s", width, "-");
	return g_strdup_printf("%*.*f", width, precision, value);
}

void
pb_bench_print_row(const char *label, const char *direction, double relay, double tunnel)
{
	g_autofree char *relay_str = pb_bench_format(relay, 13, 1);
	g_autofree char *tunnel_str = pb_bench_format(tunnel, 14, 1);
	g_autofree char *ratio_str =
	    pb_bench_format(relay > 0 && tunnel >= 0 ? tunnel / relay : -1, 7, 2);

	g_print("%-7s %-10s%s%s%s\n", label, direction, relay_str, tunnel_str, ratio_str);
}

static void
pb_bench_print_cost(const char *name, const PbBenchCost *cost, double gib)
{
	g_print("%-22s %8.2f %8.2f %11.2f %14.1f\n", name, cost->user_s, cost->sys_s,
		(cost->user_s + cost->sys_s) / gib, cost->peak_rss_mib);
}

void
pb_bench_tunnel_clear(PbBenchTunnel *tunnel)
{
	g_clear_pointer(&tunnel->forward, pb_bench_proc_free);
	g_clear_pointer(&tunnel->serve, pb_bench_proc_free);
}

/* ---- main ---- */

static gboolean
pb_bench_parse_measure(PbBench *bench, const char *value)
{
	g_auto(GStrv) names = g_strsplit(value != NULL ? value : "all", ",", -1);

	for (guint i = 0; names[i] != NULL; i++) {
		const char *name = g_strstrip(names[i]);

		if (g_str_equal(name, "all"))
			bench->throughput = bench->echo = bench->memory = bench->names =
			    bench->tools = TRUE;
		else if (g_str_equal(name, "throughput"))
			bench->throughput = TRUE;
		else if (g_str_equal(name, "latency"))
			bench->echo = TRUE;
		else if (g_str_equal(name, "memory"))
			bench->echo = bench->memory = TRUE;
		else if (g_str_equal(name, "names"))
			bench->names = TRUE;
		else if (g_str_equal(name, "tools"))
			bench->tools = TRUE;
		else if (g_str_equal(name, "several")) /* not in all: needs haproxy */
			bench->several = TRUE;
		else {
			g_printerr("pb-bench: --measure: unknown measure “%s” (all, throughput, "
				   "latency, memory, names, tools, several)\n",
				   name);
			return FALSE;
		}
	}
	return TRUE;
}

static void
pb_bench_fill_pattern(guint8 *pattern)
{
	guint64 x = 0x9E3779B97F4A7C15u; /* fixed seed: same bytes every run */

	for (gsize i = 0; i < PB_BENCH_PERIOD; i++) {
		x ^= x << 13; /* xorshift64 */
		x ^= x >> 7;
		x ^= x << 17;
		pattern[i] = x >> 56;
	}
	/* one chunk more, so that any chunk starting inside the period is contiguous */
	for (gsize i = PB_BENCH_PERIOD; i < PB_BENCH_PERIOD + PB_BENCH_CHUNK; i++)
		pattern[i] = pattern[i - PB_BENCH_PERIOD];
}

/* what one throughput measure leaves behind */
static void
pb_bench_reset(PbBench *bench)
{
	pb_bench_tunnel_clear(&bench->tunnel_procs);
	pb_bench_close_fd(&bench->relay_sink_fd);
	pb_bench_close_fd(&bench->local_fd);
	for (guint d = 0; d < PB_BENCH_N_DIRECTIONS; d++) {
		g_clear_pointer(&bench->relay[d], g_array_unref);
		g_clear_pointer(&bench->tunnel[d], g_array_unref);
	}
	g_clear_pointer(&bench->pattern, g_free);
	memset(&bench->relay_cost, 0, sizeof bench->relay_cost);
}

static void
pb_bench_clear(PbBench *bench)
{
	pb_bench_reset(bench);
	g_clear_pointer(&bench->piggyback, g_free);
	g_clear_pointer(&bench->socat, g_free);
	g_clear_pointer(&bench->relay_path, g_free);
	g_clear_pointer(&bench->features, g_free);
	g_clear_pointer(&bench->window, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PbBench, pb_bench_clear)

/* MiB/s through relay and tunnel, both directions, bench->parallel connections at once */
static gboolean
pb_bench_run(PbBench *bench, GError **error)
{
	double gib;

	bench->pattern = g_malloc(PB_BENCH_PERIOD + PB_BENCH_CHUNK);
	pb_bench_fill_pattern(bench->pattern);
	for (guint d = 0; d < PB_BENCH_N_DIRECTIONS; d++) {
		bench->relay[d] = g_array_new(FALSE, FALSE, sizeof(double));
		bench->tunnel[d] = g_array_new(FALSE, FALSE, sizeof(double));
	}

	if (!bench->tunnel_only) {
		bench->relay_sink_fd = pb_bench_bind_loopback(TRUE, &bench->relay_sink_port, error);
		if (bench->relay_sink_fd < 0)
			return FALSE;
	}
	if (!bench->relay_only) {
		bench->local_fd = pb_bench_bind_loopback(TRUE, &bench->local_port, error);
		if (bench->local_fd < 0 || !pb_bench_tunnel_start(bench, bench->local_port, NULL,
								  &bench->tunnel_procs, error))
			return FALSE;
	}

	g_print("\nthroughput: %d MiB per transfer over %d TCP connection%s, %d round%s\n",
		bench->size_mib, bench->parallel, bench->parallel == 1 ? "" : "s at once",
		bench->rounds, bench->rounds == 1 ? "" : "s");
	if (!bench->relay_only)
		g_print("tunnel: public port %u -> local service 127.0.0.1:%u\n",
			bench->tunnel_procs.public_port, bench->local_port);
	g_print("\n%-7s %-10s%13s%14s%7s\n", "round", "direction", "relay MiB/s", "tunnel MiB/s",
		"ratio");
	for (int round_no = 1; round_no <= bench->rounds; round_no++) {
		for (guint d = 0; d < PB_BENCH_N_DIRECTIONS; d++) {
			gboolean upstream = d == PB_BENCH_UPSTREAM;
			g_autofree char *label = g_strdup_printf("%d", round_no);
			double relay = -1;
			double tunnel = -1;

			/* relay first in odd rounds, tunnel first in even ones: what the one
			 * before leaves behind (closes, frees) then hits both alike */
			for (guint i = 0; i < 2; i++) {
				gboolean relay_turn = (i == 0) == (round_no % 2 == 1);

				if (relay_turn && !bench->tunnel_only) {
					if (!pb_bench_relay_run(bench, upstream, &relay, error)) {
						g_prefix_error(error, "relay %s, round %d: ",
							       pb_bench_direction_names[d],
							       round_no);
						return FALSE;
					}
					g_array_append_val(bench->relay[d], relay);
				}
				if (!relay_turn && !bench->relay_only) {
					if (!pb_bench_transfer_run(
						bench, bench->tunnel_procs.public_port,
						bench->local_fd, upstream, &tunnel, error)) {
						g_prefix_error(error, "tunnel %s, round %d: ",
							       pb_bench_direction_names[d],
							       round_no);
						return FALSE;
					}
					g_array_append_val(bench->tunnel[d], tunnel);
				}
			}
			pb_bench_print_row(label, pb_bench_direction_names[d], relay, tunnel);
			fflush(stdout);
		}
	}

	g_print("\n%-7s %-10s%13s%14s%7s\n", "median", "direction", "relay MiB/s", "tunnel MiB/s",
		"ratio");
	for (guint d = 0; d < PB_BENCH_N_DIRECTIONS; d++)
		pb_bench_print_row("", pb_bench_direction_names[d],
				   pb_bench_median(bench->relay[d]),
				   pb_bench_median(bench->tunnel[d]));

	/* each path carried this much, both directions, every round */
	gib = 2.0 * bench->rounds * bench->size_mib / 1024.0;
	g_print("\n%-22s %8s %8s %11s %14s\n", "process", "user s", "sys s", "CPU s/GiB",
		"peak RSS MiB");
	if (!bench->relay_only) {
		PbBenchCost serve_cost;
		PbBenchCost forward_cost;

		if (!pb_bench_proc_read_cost(bench->tunnel_procs.serve, &serve_cost, error) ||
		    !pb_bench_proc_read_cost(bench->tunnel_procs.forward, &forward_cost, error))
			return FALSE;
		pb_bench_print_cost("piggyback serve", &serve_cost, gib);
		pb_bench_print_cost("piggyback forward", &forward_cost, gib);
	}
	if (!bench->tunnel_only)
		pb_bench_print_cost("relay (2 hops)", &bench->relay_cost, gib);
	return TRUE;
}

int
main(int argc, char **argv)
{
	g_auto(PbBench) bench = {
	    .size_mib = 1024,
	    .rounds = 3,
	    .parallel = 16,
	    .timeout_s = 120,
	    .relay_sink_fd = -1,
	    .local_fd = -1,
	    .pings = 5000,
	    .connect_s = 2,
	    .load_conns = 100,
	    .idle_conns = 10000,
	    .requests = 2000,
	    .tool_s = 5,
	};
	g_autofree char *measure = NULL;
	g_autofree char *relay_kind = NULL;
	gboolean quick = FALSE;
	int parallel;
	const GOptionEntry entries[] = {
	    {"piggyback", 0, 0, G_OPTION_ARG_FILENAME, &bench.piggyback,
	     "The piggyback binary (required unless --relay-only)", "PATH"},
	    {"size", 0, 0, G_OPTION_ARG_INT, &bench.size_mib, "MiB per transfer (default 1024)",
	     "MIB"},
	    {"rounds", 0, 0, G_OPTION_ARG_INT, &bench.rounds, "Rounds (default 3)", "N"},
	    {"parallel", 0, 0, G_OPTION_ARG_INT, &bench.parallel,
	     "Throughput is also measured with N connections at once, sharing --size; 1 = "
	     "only one connection (default 16)",
	     "N"},
	    {"measure", 0, 0, G_OPTION_ARG_STRING, &measure,
	     "What to measure: all (default), or some of throughput, latency (also new "
	     "connections per second), memory (with latency), names (HTTP by name and by TCP "
	     "port), tools (iperf3, sockperf and wrk); not in all: several (HTTP by name "
	     "through HAProxy and three serves, and on one serve)",
	     "LIST"},
	    {"pings", 0, 0, G_OPTION_ARG_INT, &bench.pings,
	     "64-byte round trips per round and path (default 5000)", "N"},
	    {"connect-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &bench.connect_s,
	     "Seconds of new connections per round and path (default 2)", "S"},
	    {"load", 0, 0, G_OPTION_ARG_INT, &bench.load_conns,
	     "Concurrent 1 MiB echo connections of the memory measure (default 100)", "N"},
	    {"idle", 0, 0, G_OPTION_ARG_INT, &bench.idle_conns,
	     "Idle connections the memory measure holds at once (default 10000)", "N"},
	    {"requests", 0, 0, G_OPTION_ARG_INT, &bench.requests,
	     "HTTP requests per keep-alive connection, round and path of the names measure "
	     "(default 2000)",
	     "N"},
	    {"tool-seconds", 0, 0, G_OPTION_ARG_INT, &bench.tool_s,
	     "Seconds of sockperf and of wrk per round and path of the tools measure (default "
	     "5)",
	     "S"},
	    {"quick", 0, 0, G_OPTION_ARG_NONE, &quick,
	     "A few seconds in all: tiny sizes and counts, to check that it works", NULL},
	    {"relay", 0, 0, G_OPTION_ARG_STRING, &relay_kind,
	     "The relay the tunnel is measured against: lean (default: two pb-bench-relay, "
	     "beside pb-bench) or socat (two socat -b 262144, as before issue 15)",
	     "KIND"},
	    {"socat", 0, 0, G_OPTION_ARG_FILENAME, &bench.socat,
	     "The socat binary of --relay socat (default: socat from PATH)", "PATH"},
	    {"timeout", 0, 0, G_OPTION_ARG_INT, &bench.timeout_s,
	     "Seconds one transfer may take before it counts as failed (default 120)", "S"},
	    {"relay-only", 0, 0, G_OPTION_ARG_NONE, &bench.relay_only, "Measure only the relay",
	     NULL},
	    {"tunnel-only", 0, 0, G_OPTION_ARG_NONE, &bench.tunnel_only,
	     "Measure only the tunnel (no relay needed)", NULL},
	    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &bench.verbose,
	     "Show the children's command lines and stdout", NULL},
	    {"features", 0, 0, G_OPTION_ARG_STRING, &bench.features,
	     "Protocol features for both tunnel ends, e.g. none for protocol 1 (default: theirs)",
	     "LIST"},
	    {"window", 0, 0, G_OPTION_ARG_STRING, &bench.window,
	     "Initial flow-control window of the server, in bytes (default: its own)", "BYTES"},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GOptionContext) context =
	    g_option_context_new("- PiggyBack vs a two-hop relay: throughput, latency, new "
				 "connections, memory, CPU, names, in the same run");
	g_autoptr(GError) error = NULL;

	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		g_printerr("pb-bench: %s\n", error->message);
		return EXIT_FAILURE;
	}
	if (quick) {
		bench.size_mib = 4;
		bench.rounds = 1;
		bench.parallel = MIN(bench.parallel, 4);
		bench.pings = 200;
		bench.connect_s = 0.2;
		bench.load_conns = 10;
		bench.idle_conns = 100;
		bench.requests = 20;
		bench.tool_s = 1;
	}
	if (!pb_bench_parse_measure(&bench, measure))
		return EXIT_FAILURE;
	if (bench.size_mib <= 0 || bench.rounds <= 0 || bench.timeout_s <= 0 ||
	    bench.parallel <= 0 || bench.parallel > 256 || bench.pings <= 0 ||
	    bench.connect_s <= 0 || bench.load_conns <= 0 || bench.load_conns > 1000 ||
	    bench.idle_conns < 0 || bench.requests <= 0 || bench.tool_s <= 0 ||
	    (bench.relay_only && bench.tunnel_only)) {
		g_printerr("pb-bench: --size, --rounds, --timeout, --pings, --connect-seconds, "
			   "--requests, --tool-seconds must be positive, --parallel from 1 to 256, "
			   "--load from 1 to 1000, "
			   "--idle not negative, and --relay-only and --tunnel-only exclude each "
			   "other\n");
		return EXIT_FAILURE;
	}
	if (!bench.relay_only &&
	    (bench.piggyback == NULL || !g_file_test(bench.piggyback, G_FILE_TEST_IS_EXECUTABLE))) {
		g_printerr("pb-bench: --piggyback PATH must name the piggyback binary%s%s\n",
			   bench.piggyback != NULL ? "; not executable: " : "",
			   bench.piggyback != NULL ? bench.piggyback : "");
		return EXIT_FAILURE;
	}
	if (relay_kind != NULL && g_strcmp0(relay_kind, "lean") != 0 &&
	    g_strcmp0(relay_kind, "socat") != 0) {
		g_printerr("pb-bench: --relay is lean or socat, not %s\n", relay_kind);
		return EXIT_FAILURE;
	}
	if (!bench.tunnel_only && g_strcmp0(relay_kind, "socat") != 0) {
		g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
		g_autofree char *dir = self != NULL ? g_path_get_dirname(self) : NULL;

		bench.relay_path = dir != NULL ? g_build_filename(dir, "pb-bench-relay", NULL)
					       : NULL;
		if (bench.relay_path == NULL ||
		    !g_file_test(bench.relay_path, G_FILE_TEST_IS_EXECUTABLE)) {
			g_printerr("pb-bench: pb-bench-relay is not beside pb-bench (build it, or "
				   "pass --relay socat)\n");
			return EXIT_FAILURE;
		}
	} else if (!bench.tunnel_only) {
		g_autofree char *socat =
		    g_find_program_in_path(bench.socat != NULL ? bench.socat : "socat");

		if (socat == NULL) {
			g_printerr("pb-bench: SKIP: socat not found (install it, e.g. apt-get "
				   "install socat, or pass --socat PATH or --tunnel-only)\n");
			return PB_BENCH_EXIT_SKIP;
		}
		g_free(bench.socat);
		bench.socat = g_steal_pointer(&socat);
	}
	if (bench.several && !bench.relay_only) {
		g_autofree char *haproxy = g_find_program_in_path("haproxy");

		if (haproxy == NULL) {
			g_printerr("pb-bench: SKIP: haproxy not found, for --measure several "
				   "(install it, e.g. apt-get install haproxy)\n");
			return PB_BENCH_EXIT_SKIP;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	pb_bench_raise_fd_limit();
	/* the children's heap as the systemd units run them: GLib 2.74's slice allocator never
	 * gives its pages back (src/pb-memory.c), so without this no memory measure could
	 * show a burst's memory going back */
	g_setenv("G_SLICE", "always-malloc", FALSE);
	{
		struct rlimit limit;

		/* every process of the run holds one socket per concurrent echo connection */
		if (bench.memory && getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
		    limit.rlim_cur < (rlim_t)bench.load_conns + 100) {
			g_printerr("pb-bench: SKIP: --load %d needs more file descriptors than "
				   "the hard limit (ulimit -Hn) of %lu\n",
				   bench.load_conns, (unsigned long)limit.rlim_cur);
			return PB_BENCH_EXIT_SKIP;
		}
	}

	g_print("pb-bench: PiggyBack next to a two-hop relay (%s), on loopback, in one run\n",
		bench.relay_path != NULL ? "pb-bench-relay" : "socat -b 262144");
	/* first: they fork their local services, which must happen while no other thread
	 * exists (each joins every thread it started before it returns) */
	if ((bench.echo && !pb_bench_echo_measures(&bench, &error)) ||
	    (bench.names && !bench.relay_only && !pb_bench_names_measure(&bench, &error)) ||
	    (bench.tools && !bench.relay_only && !bench.tunnel_only &&
	     !pb_bench_tools_measure(&bench, &error)) ||
	    (bench.several && !bench.relay_only && !pb_bench_several_measure(&bench, &error))) {
		g_printerr("pb-bench: FAILED: %s\n", error->message);
		return EXIT_FAILURE;
	}
	parallel = bench.parallel;
	for (int i = 0; bench.throughput && i < (parallel > 1 ? 2 : 1); i++) {
		bench.parallel = i == 0 ? 1 : parallel;
		if (!pb_bench_run(&bench, &error)) {
			g_printerr("pb-bench: FAILED: %s\n", error->message);
			return EXIT_FAILURE;
		}
		pb_bench_reset(&bench);
	}
	return EXIT_SUCCESS;
}
