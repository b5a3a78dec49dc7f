/* SPDX-License-Identifier: ISC */
#include "pb-bench-ops.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pb-bench-common.h"

#define PB_BENCH_PING	    64	/* bytes per latency round trip */
#define PB_BENCH_WARM_UP    200 /* round trips not counted */
#define PB_BENCH_HELLO	    16	/* bytes each way per new connection */
#define PB_BENCH_IO_TIMEOUT 5	/* s a blocking send/recv may take before it counts as failed */

static gint64
pb_bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (gint64)ts.tv_sec * G_GINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

static void
pb_bench_set_io_timeout(int fd)
{
	struct timeval tv = {.tv_sec = PB_BENCH_IO_TIMEOUT};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

const PbBenchExchange pb_bench_echo_hello = {"sixteen bytes...", PB_BENCH_HELLO, "sixteen bytes...",
					     PB_BENCH_HELLO};

/* send the request, then receive exactly the answer's length into @in and compare */
static gboolean
pb_bench_exchange(int fd, const PbBenchExchange *exchange, guint8 *in)
{
	gsize got = 0;

	if (send(fd, exchange->request, exchange->request_len, MSG_NOSIGNAL) !=
	    (ssize_t)exchange->request_len)
		return FALSE;
	while (got < exchange->answer_len) {
		ssize_t n = recv(fd, in + got, exchange->answer_len - got, 0);

		if (n <= 0)
			return FALSE;
		got += (gsize)n;
	}
	return memcmp(in, exchange->answer, exchange->answer_len) == 0;
}

/**
 * pb_bench_latency:
 * @rtts_us: (out caller-allocates): gets @n round-trip times in µs
 *
 * 64-byte messages back and forth over one connection, one at a time.
 */
gboolean
pb_bench_latency(guint16 port, guint n, GArray *rtts_us, GError **error)
{
	int fd = pb_bench_connect(port, error);
	guint8 out[PB_BENCH_PING];
	guint8 in[PB_BENCH_PING];
	gboolean ok = TRUE;

	if (fd < 0)
		return FALSE;
	pb_bench_set_io_timeout(fd);
	for (guint i = 0; i < PB_BENCH_WARM_UP + n && ok; i++) {
		const PbBenchExchange ping = {out, sizeof out, out, sizeof out};
		gint64 start;

		memset(out, (int)(i & 0xff), sizeof out);
		start = pb_bench_now_ns();
		ok = pb_bench_exchange(fd, &ping, in);
		if (ok && i >= PB_BENCH_WARM_UP) {
			double us = (pb_bench_now_ns() - start) / 1000.0;

			g_array_append_val(rtts_us, us);
		}
	}
	close(fd);
	if (!ok)
		g_set_error(error, PB_BENCH_ERROR, 0, "a 64-byte round trip failed or timed out");
	return ok;
}

typedef struct {
	guint16 port;
	const PbBenchExchange *exchange;
	gint64 deadline_ns; /* monotonic: no new exchange after it */
	guint requests;	    /* that many exchanges over one connection; 0: one per connection */
	guint done;	    /* written by the worker, read after the join */
	guint failed;	    /* likewise */
} PbBenchWorker;

static gpointer
pb_bench_worker_thread(gpointer user_data)
{
	PbBenchWorker *w = user_data;
	g_autofree guint8 *in = g_malloc(w->exchange->answer_len);
	int fd = -1;

	while ((w->requests == 0 || w->done + w->failed < w->requests) &&
	       pb_bench_now_ns() < w->deadline_ns) {
		if (fd < 0 && (fd = pb_bench_connect(w->port, NULL)) >= 0)
			pb_bench_set_io_timeout(fd);
		if (fd >= 0 && pb_bench_exchange(fd, w->exchange, in)) {
			w->done++;
		} else {
			w->failed++;
			pb_bench_close_fd(&fd); /* a keep-alive connection starts again */
		}
		if (w->requests == 0)
			pb_bench_close_fd(&fd);
	}
	pb_bench_close_fd(&fd);
	return NULL;
}

/* @workers threads like @like at once; exchanges per second over all of them */
static gboolean
pb_bench_workers_run(const PbBenchWorker *like, guint workers, double *per_second, guint *failures,
		     GError **error)
{
	g_autofree PbBenchWorker *w = g_new0(PbBenchWorker, workers);
	g_autofree GThread **threads = g_new0(GThread *, workers);
	gint64 start = pb_bench_now_ns();
	guint done = 0;

	*failures = 0;
	for (guint i = 0; i < workers; i++) {
		w[i] = *like;
		threads[i] = g_thread_new("pb-bench-worker", pb_bench_worker_thread, &w[i]);
	}
	for (guint i = 0; i < workers; i++) {
		g_thread_join(threads[i]);
		done += w[i].done;
		*failures += w[i].failed;
	}
	*per_second = done / ((pb_bench_now_ns() - start) / 1e9);
	if (done == 0)
		g_set_error(error, PB_BENCH_ERROR, 0, "no exchange succeeded (%u failed)",
			    *failures);
	return done > 0;
}

/**
 * pb_bench_connect_rate:
 *
 * @workers threads, each in a loop for @seconds: connect, one @exchange, close.
 * Returns: FALSE only if nothing at all succeeded
 */
gboolean
pb_bench_connect_rate(guint16 port, const PbBenchExchange *exchange, guint workers, double seconds,
		      double *per_second, guint *failures, GError **error)
{
	const PbBenchWorker like = {.port = port,
				    .exchange = exchange,
				    .deadline_ns = pb_bench_now_ns() + (gint64)(seconds * 1e9)};

	return pb_bench_workers_run(&like, workers, per_second, failures, error);
}

/**
 * pb_bench_request_rate:
 *
 * @conns keep-alive connections at once, each making @requests @exchange in a row (within
 * @timeout_s).
 * Returns: FALSE only if nothing at all succeeded
 */
gboolean
pb_bench_request_rate(guint16 port, const PbBenchExchange *exchange, guint conns, guint requests,
		      int timeout_s, double *per_second, guint *failures, GError **error)
{
	const PbBenchWorker like = {
	    .port = port,
	    .exchange = exchange,
	    .deadline_ns = pb_bench_now_ns() + (gint64)timeout_s * G_GINT64_CONSTANT(1000000000),
	    .requests = requests};

	return pb_bench_workers_run(&like, conns, per_second, failures, error);
}

/* ---- many connections at once, each echoing a few bytes or a lot ---- */

/* the byte at @offset of connection @conn's stream: differs per connection and offset */
static inline guint8
pb_bench_load_byte(guint conn, gsize offset)
{
	return (guint8)(offset * 7 + (offset >> 9) + conn * 13);
}

typedef struct {
	int fd;
	gsize sent;
	gsize got;
} PbBenchLoadConn;

/* one poll step over every connection still going; FALSE with @error on a failure */
static gboolean
pb_bench_load_step(PbBenchLoadConn *c, struct pollfd *pfds, guint n, gsize size, guint *left,
		   GError **error)
{
	guint8 buf[64 * 1024];

	for (guint i = 0; i < n; i++) {
		pfds[i].fd = c[i].got < size ? c[i].fd : -1;
		pfds[i].events = POLLIN | (c[i].sent < size ? POLLOUT : 0);
		pfds[i].revents = 0;
	}
	if (poll(pfds, n, PB_BENCH_SLICE_MS) < 0 && errno != EINTR) {
		g_set_error(error, PB_BENCH_ERROR, 0, "poll: %s", g_strerror(errno));
		return FALSE;
	}
	for (guint i = 0; i < n; i++) {
		if (pfds[i].revents & POLLOUT) {
			gsize len = MIN(sizeof buf, size - c[i].sent);
			ssize_t w;

			for (gsize k = 0; k < len; k++)
				buf[k] = pb_bench_load_byte(i, c[i].sent + k);
			w = send(c[i].fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0)
				c[i].sent += (gsize)w;
		}
		if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(c[i].fd, buf, sizeof buf, MSG_DONTWAIT);

			if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
				g_set_error(error, PB_BENCH_ERROR, 0,
					    "echo connection %u ended after %zu of %zu bytes", i,
					    c[i].got, size);
				return FALSE;
			}
			for (ssize_t k = 0; k < r; k++) {
				if (buf[k] != pb_bench_load_byte(i, c[i].got + (gsize)k)) {
					g_set_error(error, PB_BENCH_ERROR, 0,
						    "echo connection %u: wrong byte at %zu", i,
						    c[i].got + (gsize)k);
					return FALSE;
				}
			}
			if (r > 0 && (c[i].got += (gsize)r) == size)
				(*left)--;
		}
	}
	return TRUE;
}

/**
 * pb_bench_echo_load:
 * @seconds: (out): from the first connect until every byte came back
 *
 * @n_conns connections at once, each sending @bytes_each and checking every byte echoed.
 */
gboolean
pb_bench_echo_load(guint16 port, guint n_conns, gsize bytes_each, int timeout_s, double *seconds,
		   GError **error)
{
	g_autofree PbBenchLoadConn *c = g_new0(PbBenchLoadConn, n_conns);
	g_autofree struct pollfd *pfds = g_new0(struct pollfd, n_conns);
	gint64 start = pb_bench_now_ns();
	gint64 deadline = start + (gint64)timeout_s * 1000000000;
	guint left = n_conns;
	gboolean ok = TRUE;
	guint opened = 0;

	for (; opened < n_conns && ok; opened++) {
		c[opened].fd = pb_bench_connect(port, error);
		ok = c[opened].fd >= 0;
	}
	while (ok && left > 0) {
		ok = pb_bench_load_step(c, pfds, n_conns, bytes_each, &left, error);
		if (ok && pb_bench_now_ns() > deadline) {
			g_set_error(error, PB_BENCH_ERROR, 0,
				    "%u of %u echo connections unfinished "
				    "after %d s",
				    left, n_conns, timeout_s);
			ok = FALSE;
		}
	}
	*seconds = (pb_bench_now_ns() - start) / 1e9;
	for (guint i = 0; i < opened; i++)
		pb_bench_close_fd(&c[i].fd);
	return ok;
}

/**
 * pb_bench_hold_idle:
 *
 * Opens @n connections and makes sure each reached the echo service (one byte there and
 * back), in batches so that the listen backlogs never overflow.
 * Returns: (transfer full): the open fds, for pb_bench_release_idle(); NULL on failure
 */
GArray *
pb_bench_hold_idle(guint16 port, guint n, GError **error)
{
	g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(int));

	g_array_set_clear_func(fds, (GDestroyNotify)pb_bench_close_fd);
	while (fds->len < n) {
		guint first = fds->len;
		guint batch = MIN(n - first, 200);

		for (guint i = 0; i < batch; i++) {
			int fd = pb_bench_connect(port, error);

			if (fd < 0) {
				g_prefix_error(error, "after %u connections: ", fds->len);
				return NULL;
			}
			pb_bench_set_io_timeout(fd);
			g_array_append_val(fds, fd);
			if (send(fd, "i", 1, MSG_NOSIGNAL) != 1)
				break;
		}
		for (guint i = first; i < fds->len; i++) {
			char byte;

			if (recv(g_array_index(fds, int, i), &byte, 1, 0) != 1) {
				g_set_error(error, PB_BENCH_ERROR, 0,
					    "idle connection %u got no echo", i);
				return NULL;
			}
		}
	}
	return g_steal_pointer(&fds);
}

void
pb_bench_release_idle(GArray *fds)
{
	g_array_unref(fds);
}
