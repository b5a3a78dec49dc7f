/* SPDX-License-Identifier: ISC */

/*
 * pb-bench-relay: one hop of the bench's baseline relay (issue 15). It accepts on
 * 127.0.0.1:LISTEN_PORT, connects each connection to 127.0.0.1:TARGET_PORT and copies both
 * ways through a 256 KiB buffer per direction (what `socat -b 262144` does), Nagle off.
 *
 *   pb-bench-relay LISTEN_PORT TARGET_PORT [--glib]
 *
 * Why not socat: socat 1.7.4 (Debian 12) looks at its logging socketpair
 * (recvfrom(MSG_DONTWAIT), EAGAIN) before and after every system call, so each message it
 * forwards costs it nine system calls (pselect6, read, write and six of those) where a relay
 * needs three: its relay paid that four times per 64-byte round trip, and forked a process
 * per connection. The tunnel was measured against that handicap. This hop does what a
 * user-space relay cannot avoid and nothing else: one epoll loop for every connection (like
 * the tunnel's ends), and per message epoll_wait(), read(), write(); epoll_ctl() only when
 * a socket's interest changes (a full socket, an end of stream).
 *
 * --glib runs the same epoll set the way PiggyBack's ends do (src/pb-poller.c): as one
 * source of a GLib main loop, which wakes in poll() and then asks epoll_wait() what is
 * ready, one system call more per message, and a main-loop iteration (prepare, query,
 * check, dispatch) around it. The tunnel cannot be faster than that on this stack: it
 * measures the floor that the main loop sets.
 */

#define _GNU_SOURCE /* accept4() */

#include <errno.h>
#include <glib-unix.h>
#include <glib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pb-bench-common.h"

#define PB_RELAY_BUF	(256 * 1024) /* one read, like `socat -b 262144` */
#define PB_RELAY_EVENTS 256

typedef struct PbRelayPair PbRelayPair;

/* One socket of a relayed connection, and what was read from it for the other one. */
typedef struct {
	PbRelayPair *pair;
	int fd;
	guint32 events;	   /* what epoll watches for now */
	gboolean read_eof; /* its peer will send nothing more */
	gboolean shut;	   /* the other socket was told so (shutdown(SHUT_WR)) */
	guint8 *buf;	   /* (owned) (nullable) read from @fd, for the other socket */
	gsize off;	   /* buf[off, len) is still to be written */
	gsize len;
} PbRelayEnd;

struct PbRelayPair {
	PbRelayEnd end[2];
	gboolean dead; /* freed after the events of this epoll_wait(), which may name it */
};

static int epoll_fd = -1;
static int listen_fd = -1;
static guint16 target_port;   /* where each connection goes */
static GPtrArray *dead_pairs; /* (owned) PbRelayPair, to free after this batch of events */

static void
pb_relay_pair_free(PbRelayPair *pair)
{
	for (int i = 0; i < 2; i++) {
		close(pair->end[i].fd); /* also takes it out of the epoll set */
		g_free(pair->end[i].buf);
	}
	g_free(pair);
}

/* Writes what @from read to the other socket; FALSE if the connection failed. */
static gboolean
pb_relay_flush(PbRelayEnd *from, PbRelayEnd *to)
{
	while (from->off < from->len) {
		ssize_t n =
		    send(to->fd, from->buf + from->off, from->len - from->off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN;
		from->off += (gsize)n;
	}
	from->off = from->len = 0;
	if (from->read_eof && !from->shut) {
		shutdown(to->fd, SHUT_WR);
		from->shut = TRUE;
	}
	return TRUE;
}

/* Reads once from @from and writes it on; FALSE if the connection failed. */
static gboolean
pb_relay_read(PbRelayEnd *from, PbRelayEnd *to)
{
	ssize_t n;

	if (from->read_eof || from->off < from->len)
		return TRUE;
	if (from->buf == NULL)
		from->buf = g_malloc(PB_RELAY_BUF);
	n = recv(from->fd, from->buf, PB_RELAY_BUF, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		from->read_eof = TRUE;
	from->off = 0;
	from->len = (gsize)n;
	return pb_relay_flush(from, to);
}

/* Reads from a socket while nothing it read waits; writes to it while the other waits. */
static void
pb_relay_watch(PbRelayEnd *end, PbRelayEnd *other)
{
	guint32 events = 0;
	struct epoll_event event = {.data.ptr = end};

	if (!end->read_eof && end->off == end->len)
		events |= EPOLLIN;
	if (other->off < other->len)
		events |= EPOLLOUT;
	if (events == end->events)
		return;
	end->events = events;
	event.events = events;
	epoll_ctl(epoll_fd, EPOLL_CTL_MOD, end->fd, &event);
}

static void
pb_relay_event(PbRelayEnd *end, guint32 events)
{
	PbRelayPair *pair = end->pair;
	PbRelayEnd *other = &pair->end[end == &pair->end[0] ? 1 : 0];
	gboolean ok = TRUE;

	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		ok = pb_relay_flush(other, end);
	if (ok && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		ok = pb_relay_read(end, other);
	/* done both ways, failed, or dead both ways with nothing left to say to it */
	if (!ok || (pair->end[0].shut && pair->end[1].shut) ||
	    ((events & (EPOLLERR | EPOLLHUP)) && end->read_eof && other->off == other->len)) {
		pair->dead = TRUE;
		g_ptr_array_add(dead_pairs, pair);
		return;
	}
	pb_relay_watch(end, other);
	pb_relay_watch(other, end);
}

static void
pb_relay_add(PbRelayPair *pair, int i)
{
	struct epoll_event event = {.events = EPOLLIN, .data.ptr = &pair->end[i]};
	int one = 1;

	pair->end[i].pair = pair;
	pair->end[i].events = EPOLLIN;
	setsockopt(pair->end[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	epoll_ctl(epoll_fd, EPOLL_CTL_ADD, pair->end[i].fd, &event);
}

static void
pb_relay_accept(void)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct sockaddr_in addr = pb_bench_loopback(target_port);
		int target;
		PbRelayPair *pair;

		if (fd < 0)
			return; /* EAGAIN; or EMFILE, which the bench sees as a failure */
		/* a blocking connect: on loopback it is done at once, and simpler than waiting */
		target = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (target < 0 || connect(target, (struct sockaddr *)&addr, sizeof addr) < 0) {
			if (target >= 0)
				close(target);
			close(fd);
			continue;
		}
		g_unix_set_fd_nonblocking(target, TRUE, NULL);
		pair = g_new0(PbRelayPair, 1);
		pair->end[0].fd = fd;
		pair->end[1].fd = target;
		pb_relay_add(pair, 0);
		pb_relay_add(pair, 1);
	}
}

/* Handles what epoll_wait() found ready (with a timeout of @timeout_ms). */
static void
pb_relay_dispatch(int timeout_ms)
{
	struct epoll_event events[PB_RELAY_EVENTS];
	int n = epoll_wait(epoll_fd, events, PB_RELAY_EVENTS, timeout_ms);

	for (int i = 0; i < n; i++) {
		PbRelayEnd *end = events[i].data.ptr;

		if (end == NULL)
			pb_relay_accept();
		else if (!end->pair->dead)
			pb_relay_event(end, events[i].events);
	}
	g_ptr_array_set_size(dead_pairs, 0);
}

static gboolean
pb_relay_glib_cb(int fd, GIOCondition condition, gpointer user_data)
{
	pb_relay_dispatch(0);
	return G_SOURCE_CONTINUE;
}

int
main(int argc, char **argv)
{
	guint64 ports[2] = {0, 0};
	gboolean glib = argc == 4 && strcmp(argv[3], "--glib") == 0;
	struct epoll_event listener = {.events = EPOLLIN, .data.ptr = NULL};

	if (argc != 3 + glib ||
	    !g_ascii_string_to_unsigned(argv[1], 10, 1, G_MAXUINT16, &ports[0], NULL) ||
	    !g_ascii_string_to_unsigned(argv[2], 10, 1, G_MAXUINT16, &ports[1], NULL)) {
		fprintf(stderr,
			"usage: pb-bench-relay LISTEN_PORT TARGET_PORT [--glib] (on 127.0.0.1)\n");
		return 2;
	}
	target_port = (guint16)ports[1];
	signal(SIGPIPE, SIG_IGN);
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_in addr = pb_bench_loopback((guint16)ports[0]);
		int one = 1;

		setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
		    listen(listen_fd, 4096) < 0) {
			fprintf(stderr, "pb-bench-relay: cannot listen on 127.0.0.1:%u: %s\n",
				(guint)ports[0], g_strerror(errno));
			return 1;
		}
	}
	dead_pairs = g_ptr_array_new_with_free_func((GDestroyNotify)pb_relay_pair_free);
	epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &listener) < 0)
		return 1;
	if (glib) {
		GMainLoop *loop = g_main_loop_new(NULL, FALSE);
		GSource *source = g_unix_fd_source_new(epoll_fd, G_IO_IN);

		/* as PbPoller: no removing and adding back its fd around each dispatch */
		g_source_set_can_recurse(source, TRUE);
		g_source_set_callback(source, G_SOURCE_FUNC(pb_relay_glib_cb), NULL, NULL);
		g_source_attach(source, NULL);
		g_main_loop_run(loop); /* until killed */
	}
	for (;;)
		pb_relay_dispatch(-1);
}
