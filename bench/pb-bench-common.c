/* SPDX-License-Identifier: ISC */
#include "pb-bench-common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

GQuark
pb_bench_error_quark(void)
{
	return g_quark_from_static_string("pb-bench-error-quark");
}

void
pb_bench_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

struct sockaddr_in
pb_bench_loopback(guint16 port)
{
	struct sockaddr_in addr = {0};

	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = htons(port);
	return addr;
}

/* a socket bound to 127.0.0.1:0, listening if asked; its port in *port */
int
pb_bench_bind_loopback(gboolean listening, guint16 *port, GError **error)
{
	struct sockaddr_in addr = pb_bench_loopback(0);
	socklen_t len = sizeof addr;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (listening ? SOCK_NONBLOCK : 0), 0);
	int saved;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
	    (!listening || listen(fd, 64) == 0) &&
	    getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
		*port = ntohs(addr.sin_port);
		return fd;
	}
	saved = errno;
	pb_bench_close_fd(&fd);
	g_set_error(error, PB_BENCH_ERROR, 0, "cannot bind a socket to 127.0.0.1: %s",
		    g_strerror(saved));
	return -1;
}

/* n ports that were free a moment ago, all held at once so that they differ */
gboolean
pb_bench_free_ports(guint16 *ports, guint n, GError **error)
{
	int fds[4] = {-1, -1, -1, -1};
	gboolean ok = TRUE;

	g_return_val_if_fail(n <= G_N_ELEMENTS(fds), FALSE);
	for (guint i = 0; i < n && ok; i++) {
		fds[i] = pb_bench_bind_loopback(FALSE, &ports[i], error);
		ok = fds[i] >= 0;
	}
	for (guint i = 0; i < n; i++)
		pb_bench_close_fd(&fds[i]);
	return ok;
}

/* whether anything listens on TCP port `port` (any address, IPv4 or IPv6) */
gboolean
pb_bench_is_listening(guint16 port)
{
	const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};

	for (guint i = 0; i < G_N_ELEMENTS(tables); i++) {
		g_autofree char *contents = NULL;
		g_auto(GStrv) lines = NULL;

		if (!g_file_get_contents(tables[i], &contents, NULL, NULL))
			continue;
		lines = g_strsplit(contents, "\n", -1);
		for (guint j = 1; lines[j] != NULL; j++) {
			unsigned int local_port = 0;
			unsigned int state = 0;

			/* "  sl  local_address rem_address   st ...", addresses as HEX:PORT */
			if (sscanf(lines[j], " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x",
				   &local_port, &state) == 2 &&
			    local_port == port && state == 0x0A /* TCP_LISTEN */)
				return TRUE;
		}
	}
	return FALSE;
}

void
pb_bench_cost_add_rusage(PbBenchCost *cost, const struct rusage *usage)
{
	cost->user_s += usage->ru_utime.tv_sec + usage->ru_utime.tv_usec / 1e6;
	cost->sys_s += usage->ru_stime.tv_sec + usage->ru_stime.tv_usec / 1e6;
	cost->peak_rss_mib = MAX(cost->peak_rss_mib, usage->ru_maxrss / 1024.0); /* KiB */
}

/* ---- child processes ---- */

static void
pb_bench_child_setup(gpointer user_data G_GNUC_UNUSED)
{
	/* die with the bench, however it ends; and undo its SIGPIPE = SIG_IGN, which exec keeps */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_DFL);
}

/* TRUE once the child has been reaped (now or earlier) */
gboolean
pb_bench_proc_reap(PbBenchProc *proc, gboolean block)
{
	pid_t rc;

	if (proc->pid == 0)
		return TRUE;
	do
		rc = wait4(proc->pid, &proc->status, block ? 0 : WNOHANG, &proc->usage);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return FALSE;
	if (rc < 0)
		memset(&proc->usage, 0, sizeof proc->usage); /* ECHILD: not ours to account */
	proc->pid = 0;
	return TRUE;
}

/* "exited with status 1", for messages; reaps the child if it is gone */
char *
pb_bench_proc_describe(PbBenchProc *proc)
{
	if (!pb_bench_proc_reap(proc, FALSE))
		return g_strdup("is still running");
	if (WIFEXITED(proc->status))
		return g_strdup_printf("exited with status %d", WEXITSTATUS(proc->status));
	if (WIFSIGNALED(proc->status))
		return g_strdup_printf("was killed by signal %d", WTERMSIG(proc->status));
	return g_strdup("ended");
}

/* SIGTERM, SIGKILL after PB_BENCH_GRACE_MS, reap; then stop watching its stdout */
void
pb_bench_proc_stop(PbBenchProc *proc)
{
	if (proc->pid != 0 && !pb_bench_proc_reap(proc, FALSE)) {
		gint64 deadline =
		    g_get_monotonic_time() + PB_BENCH_GRACE_MS * G_TIME_SPAN_MILLISECOND;

		kill(proc->pid, SIGTERM);
		while (!pb_bench_proc_reap(proc, FALSE) && g_get_monotonic_time() < deadline)
			g_usleep(10 * G_TIME_SPAN_MILLISECOND);
		if (proc->pid != 0) {
			g_printerr("pb-bench: %s ignored SIGTERM for %d ms, killing it\n",
				   proc->name, PB_BENCH_GRACE_MS);
			kill(proc->pid, SIGKILL);
			pb_bench_proc_reap(proc, TRUE);
		}
	}
	if (proc->out_thread != NULL) {
		g_atomic_int_set(&proc->out_stop, 1);
		g_clear_pointer(&proc->out_thread, g_thread_join);
	}
	pb_bench_close_fd(&proc->out_fd);
}

void
pb_bench_proc_free(PbBenchProc *proc)
{
	pb_bench_proc_stop(proc);
	g_mutex_clear(&proc->lock);
	g_cond_clear(&proc->cond);
	g_free(proc->name);
	g_free(proc);
}

/* the port of "Access URL: tcp://HOST:PORT", or 0 */
static guint16
pb_bench_parse_access_url(const char *line)
{
	const char *url = strstr(line, "tcp://");
	g_autofree char *authority = NULL;
	const char *colon;
	guint64 port = 0;

	if (strstr(line, "Access URL") == NULL || url == NULL)
		return 0;
	url += strlen("tcp://");
	authority = g_strndup(url, strcspn(url, " \t\r/"));
	colon = strrchr(authority, ':'); /* the last one: "[::1]:4000" */
	if (colon == NULL ||
	    !g_ascii_string_to_unsigned(colon + 1, 10, 1, G_MAXUINT16, &port, NULL))
		return 0;
	return (guint16)port;
}

static void
pb_bench_proc_line(PbBenchProc *proc, const char *line)
{
	guint16 port = pb_bench_parse_access_url(line);

	if (proc->verbose)
		g_printerr("[%s] %s\n", proc->name, line);
	if (port != 0) {
		G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&proc->lock);

		if (proc->public_port == 0)
			proc->public_port = port;
		g_cond_broadcast(&proc->cond);
	}
}

static gpointer
pb_bench_proc_out_thread(gpointer user_data)
{
	PbBenchProc *proc = user_data;
	g_autoptr(GString) line = g_string_new(NULL);
	char buf[4096];

	while (!g_atomic_int_get(&proc->out_stop)) {
		struct pollfd pfd = {.fd = proc->out_fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, PB_BENCH_SLICE_MS) <= 0)
			continue;
		n = read(proc->out_fd, buf, sizeof buf);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (line->len < PB_BENCH_LINE_MAX)
					g_string_append_c(line, buf[i]);
				continue;
			}
			pb_bench_proc_line(proc, line->str);
			g_string_truncate(line, 0);
		}
	}
	if (line->len > 0)
		pb_bench_proc_line(proc, line->str);

	g_mutex_lock(&proc->lock);
	proc->out_eof = TRUE;
	g_cond_broadcast(&proc->cond);
	g_mutex_unlock(&proc->lock);
	return NULL;
}

PbBenchProc *
pb_bench_proc_spawn(const char *name, const char *const *argv, gboolean verbose, GError **error)
{
	g_autoptr(PbBenchProc) proc = g_new0(PbBenchProc, 1);
	g_auto(GStrv) envp = g_environ_setenv(g_get_environ(), "LC_ALL", "C", TRUE);

	g_mutex_init(&proc->lock);
	g_cond_init(&proc->cond);
	proc->name = g_strdup(name);
	proc->out_fd = -1;
	proc->verbose = verbose;
	if (verbose) {
		g_autofree char *cmdline = g_strjoinv(" ", (char **)argv);

		g_printerr("pb-bench: starting %s: %s\n", name, cmdline);
	}
	/* stdout is read (the access URL; and the table on ours stays clean), stderr is shared */
	if (!g_spawn_async_with_pipes(NULL, (char **)argv, envp, G_SPAWN_DO_NOT_REAP_CHILD,
				      pb_bench_child_setup, NULL, &proc->pid, NULL, &proc->out_fd,
				      NULL, error)) {
		g_prefix_error(error, "cannot start %s: ", name);
		return NULL;
	}
	proc->out_thread = g_thread_new("pb-bench-stdout", pb_bench_proc_out_thread, proc);
	return g_steal_pointer(&proc);
}

gboolean
pb_bench_proc_wait_listening(PbBenchProc *proc, guint16 port, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + PB_BENCH_START_S * G_TIME_SPAN_SECOND;

	while (!pb_bench_is_listening(port)) {
		if (pb_bench_proc_reap(proc, FALSE)) {
			g_autofree char *how = pb_bench_proc_describe(proc);

			g_set_error(error, PB_BENCH_ERROR, 0, "%s %s before listening on port %u",
				    proc->name, how, port);
			return FALSE;
		}
		if (g_get_monotonic_time() >= deadline) {
			g_set_error(error, PB_BENCH_ERROR, 0,
				    "%s did not listen on port %u within %d s", proc->name, port,
				    PB_BENCH_START_S);
			return FALSE;
		}
		g_usleep(10 * G_TIME_SPAN_MILLISECOND);
	}
	return TRUE;
}

gboolean
pb_bench_proc_wait_public_port(PbBenchProc *proc, guint16 *port, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + PB_BENCH_START_S * G_TIME_SPAN_SECOND;
	gboolean eof;

	g_mutex_lock(&proc->lock);
	while (proc->public_port == 0 && !proc->out_eof &&
	       g_cond_wait_until(&proc->cond, &proc->lock, deadline))
		;
	*port = proc->public_port;
	eof = proc->out_eof;
	g_mutex_unlock(&proc->lock);

	if (*port != 0)
		return TRUE;
	if (eof) {
		g_autofree char *how = NULL;

		g_usleep(100 * G_TIME_SPAN_MILLISECOND); /* let it finish dying */
		how = pb_bench_proc_describe(proc);
		g_set_error(
		    error, PB_BENCH_ERROR, 0,
		    "%s closed its stdout (and %s) without an 'Access URL: tcp://HOST:PORT' "
		    "line",
		    proc->name, how);
	} else {
		g_set_error(error, PB_BENCH_ERROR, 0,
			    "%s printed no 'Access URL: tcp://HOST:PORT' line within %d s (is its "
			    "stdout flushed when it is a pipe?)",
			    proc->name, PB_BENCH_START_S);
	}
	return FALSE;
}

/* a "Key:   1234 kB" line of /proc/PID/status, in MiB; 0 if absent */
static double
pb_bench_status_mib(const char *status, const char *key)
{
	const char *line = strstr(status, key);

	return line != NULL ? g_ascii_strtoull(line + strlen(key), NULL, 10) / 1024.0 : 0;
}

/* user and system CPU seconds and peak RSS of a live child, from /proc */
gboolean
pb_bench_proc_read_cost(PbBenchProc *proc, PbBenchCost *cost, GError **error)
{
	g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", (int)proc->pid);
	g_autofree char *status_path = g_strdup_printf("/proc/%d/status", (int)proc->pid);
	g_autofree char *stat = NULL;
	g_autofree char *status = NULL;
	g_auto(GStrv) fields = NULL;
	const char *rparen;
	const char *hwm;
	double ticks = sysconf(_SC_CLK_TCK);

	if (proc->pid == 0 || !g_file_get_contents(stat_path, &stat, NULL, NULL) ||
	    !g_file_get_contents(status_path, &status, NULL, NULL)) {
		g_autofree char *how = pb_bench_proc_describe(proc);

		g_set_error(error, PB_BENCH_ERROR, 0, "%s %s before the end", proc->name, how);
		return FALSE;
	}
	/* "pid (comm) state ppid ...": utime and stime are fields 14 and 15, counted from 1 */
	rparen = strrchr(stat, ')');
	if (rparen != NULL)
		fields = g_strsplit(rparen + 1, " ", -1);
	if (fields == NULL || g_strv_length(fields) < 14) {
		g_set_error(error, PB_BENCH_ERROR, 0, "cannot parse %s", stat_path);
		return FALSE;
	}
	/* fields[0] is "" (the space after ')'), fields[1] is field 3 */
	cost->user_s = g_ascii_strtoull(fields[12], NULL, 10) / ticks;
	cost->sys_s = g_ascii_strtoull(fields[13], NULL, 10) / ticks;
	hwm = strstr(status, "\nVmHWM:");
	cost->peak_rss_mib = hwm != NULL ? g_ascii_strtoull(hwm + 7, NULL, 10) / 1024.0 : 0;
	cost->rss_mib = pb_bench_status_mib(status, "\nVmRSS:");
	cost->anon_mib = pb_bench_status_mib(status, "\nRssAnon:");
	{
		g_autofree char *rollup_path =
		    g_strdup_printf("/proc/%d/smaps_rollup", (int)proc->pid);
		g_autofree char *rollup = NULL;

		/* "\nPss:" is not the first line; smaps_rollup starts with the range */
		if (g_file_get_contents(rollup_path, &rollup, NULL, NULL))
			cost->pss_mib = pb_bench_status_mib(rollup, "\nPss:");
	}
	return TRUE;
}

/* a blocking TCP connection to 127.0.0.1:port, Nagle off (every measure sends small writes) */
int
pb_bench_connect(guint16 port, GError **error)
{
	struct sockaddr_in addr = pb_bench_loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	int saved;

	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		return fd;
	}
	saved = errno;
	pb_bench_close_fd(&fd);
	g_set_error(error, PB_BENCH_ERROR, 0, "cannot connect to 127.0.0.1:%u: %s", port,
		    g_strerror(saved));
	return -1;
}

/* Soft RLIMIT_NOFILE up to the hard one, for the bench and (inherited) its children: the
 * idle-connections measure holds tens of thousands of sockets. The product never does this
 * itself. */
void
pb_bench_raise_fd_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		setrlimit(RLIMIT_NOFILE, &limit);
	}
}

static int
pb_bench_compare_doubles(gconstpointer a, gconstpointer b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

/* the p-th percentile (0..100, nearest rank) of @values, or -1 when there are none */
double
pb_bench_percentile(GArray *values, double p)
{
	g_autofree double *sorted = NULL;
	guint n = values->len;
	guint rank;

	if (n == 0)
		return -1;
	sorted = g_memdup2(values->data, n * sizeof(double));
	qsort(sorted, n, sizeof(double), pb_bench_compare_doubles);
	rank = (guint)(p / 100.0 * n + 0.999999);
	return sorted[CLAMP(rank, 1, n) - 1];
}

double
pb_bench_median(GArray *values)
{
	g_autofree double *sorted = NULL;
	guint n = values->len;

	if (n == 0)
		return -1;
	sorted = g_memdup2(values->data, n * sizeof(double));
	qsort(sorted, n, sizeof(double), pb_bench_compare_doubles);
	return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}
