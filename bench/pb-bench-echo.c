/* SPDX-License-Identifier: ISC */
#define _GNU_SOURCE /* accept4() */

#include "pb-bench-echo.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pb-bench-common.h"

#define PB_BENCH_ECHO_READ (64 * 1024) /* one read; also the most a connection holds */

/* A connection whose peer has not taken all of its echo yet keeps the rest here, and is not
 * read until that is written: so each connection holds at most one read. */
typedef struct {
	int fd;
	guint8 *pending; /* (owned) (nullable) */
	gsize pending_len;
	gsize pending_off;
	guint head_end;	      /* HTTP: how much of "\r\n\r\n" the bytes so far end with */
	gboolean close_after; /* HTTP: a request said "Connection: close": close once answered */
} PbBenchEchoConn;

static void
pb_bench_echo_close(PbBenchEchoConn *conn)
{
	close(conn->fd); /* also takes it out of the epoll set */
	free(conn->pending);
	free(conn);
}

static void
pb_bench_echo_watch(int epoll_fd, PbBenchEchoConn *conn, guint32 events, int op)
{
	struct epoll_event event = {.events = events, .data.ptr = conn};

	epoll_ctl(epoll_fd, op, conn->fd, &event);
}

/* write what is pending; FALSE if the connection failed */
static gboolean
pb_bench_echo_flush(int epoll_fd, PbBenchEchoConn *conn)
{
	while (conn->pending_off < conn->pending_len) {
		ssize_t n = send(conn->fd, conn->pending + conn->pending_off,
				 conn->pending_len - conn->pending_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			pb_bench_echo_watch(epoll_fd, conn, EPOLLOUT, EPOLL_CTL_MOD);
			return TRUE;
		}
		if (n < 0)
			return FALSE;
		conn->pending_off += (gsize)n;
	}
	g_clear_pointer(&conn->pending, free);
	if (conn->close_after)
		return FALSE; /* answered: the connection is over, as the client asked */
	pb_bench_echo_watch(epoll_fd, conn, EPOLLIN, EPOLL_CTL_MOD);
	return TRUE;
}

/* @copies times the @len bytes at @data, written as far as the socket takes them; FALSE if
 * the connection failed */
static gboolean
pb_bench_echo_queue(int epoll_fd, PbBenchEchoConn *conn, const void *data, gsize len, gsize copies)
{
	conn->pending = malloc(len * copies);
	if (conn->pending == NULL)
		return FALSE;
	for (gsize i = 0; i < copies; i++)
		memcpy(conn->pending + i * len, data, len);
	conn->pending_len = len * copies;
	conn->pending_off = 0;
	return pb_bench_echo_flush(epoll_fd, conn);
}

/* HTTP: one answer for each request head that ends in @buf */
static gboolean
pb_bench_echo_answer(int epoll_fd, PbBenchEchoConn *conn, const guint8 *buf, gsize len)
{
	static const char head_end[] = "\r\n\r\n";
	static const char answer[] = PB_BENCH_HTTP_ANSWER;
	static const char answer_close[] = PB_BENCH_HTTP_ANSWER_CLOSE;
	gsize heads = 0;

	for (gsize i = 0; i < len; i++) {
		if (buf[i] == head_end[conn->head_end])
			conn->head_end++;
		else
			conn->head_end = buf[i] == '\r' ? 1 : 0;
		if (conn->head_end == 4) {
			heads++;
			conn->head_end = 0;
		}
	}
	if (heads == 0)
		return TRUE;
	/* a request of its own per connection (wrk's), so no need to look for it head by head */
	if (g_strstr_len((const char *)buf, (gssize)len, "Connection: close") != NULL) {
		conn->close_after = TRUE;
		return pb_bench_echo_queue(epoll_fd, conn, answer_close, sizeof answer_close - 1,
					   1);
	}
	return pb_bench_echo_queue(epoll_fd, conn, answer, sizeof answer - 1, heads);
}

/* read once and echo it (or answer it); FALSE when the connection is over */
static gboolean
pb_bench_echo_read(int epoll_fd, PbBenchEchoConn *conn, guint8 *buf, gboolean http)
{
	ssize_t n = recv(conn->fd, buf, PB_BENCH_ECHO_READ, 0);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return TRUE;
	if (n <= 0)
		return FALSE;
	if (http)
		return pb_bench_echo_answer(epoll_fd, conn, buf, (gsize)n);
	return pb_bench_echo_queue(epoll_fd, conn, buf, (gsize)n, 1);
}

static void
pb_bench_echo_accept(int epoll_fd, int listen_fd)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;
		PbBenchEchoConn *conn;

		if (fd < 0)
			return; /* EAGAIN, or EMFILE: the bench sees the failure */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		conn = calloc(1, sizeof *conn);
		if (conn == NULL) {
			close(fd);
			return;
		}
		conn->fd = fd;
		pb_bench_echo_watch(epoll_fd, conn, EPOLLIN, EPOLL_CTL_ADD);
	}
}

static G_NORETURN void
pb_bench_echo_main(int listen_fd, gboolean http)
{
	static guint8 buf[PB_BENCH_ECHO_READ];
	int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event listener = {.events = EPOLLIN, .data.ptr = NULL};

	if (epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &listener) < 0)
		_exit(1);
	for (;;) {
		struct epoll_event events[256];
		int n = epoll_wait(epoll_fd, events, G_N_ELEMENTS(events), -1);

		for (int i = 0; i < n; i++) {
			PbBenchEchoConn *conn = events[i].data.ptr;
			gboolean alive;

			if (conn == NULL) {
				pb_bench_echo_accept(epoll_fd, listen_fd);
				continue;
			}
			if (conn->pending != NULL)
				alive = pb_bench_echo_flush(epoll_fd, conn);
			else
				alive = pb_bench_echo_read(epoll_fd, conn, buf, http);
			if (!alive)
				pb_bench_echo_close(conn);
		}
	}
}

/**
 * pb_bench_echo_spawn:
 * @http: answer HTTP requests instead of echoing
 * @port: (out): where it listens, on 127.0.0.1
 *
 * Forks the echo server. Call it while the bench runs no other thread. It dies with the bench
 * (PR_SET_PDEATHSIG) or on SIGTERM: pb_bench_echo_stop().
 */
GPid
pb_bench_echo_spawn(gboolean http, guint16 *port, GError **error)
{
	int listen_fd = pb_bench_bind_loopback(TRUE, port, error);
	pid_t pid;

	if (listen_fd < 0)
		return 0;
	listen(listen_fd, 4096); /* the connection measure opens 16 at a time, fast */
	pid = fork();
	if (pid < 0) {
		g_set_error(error, PB_BENCH_ERROR, 0, "cannot fork the echo server: %s",
			    g_strerror(errno));
		close(listen_fd);
		return 0;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGTERM, SIG_DFL);
		pb_bench_echo_main(listen_fd, http);
	}
	close(listen_fd);
	return pid;
}

/* SIGTERM to a server of pb_bench_echo_spawn() if it still runs, then reap it; 0 in *pid */
void
pb_bench_echo_stop(GPid *pid)
{
	if (*pid == 0)
		return;
	kill(*pid, SIGTERM);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}
