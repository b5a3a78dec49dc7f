/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

gboolean
pb_test_tick_cb(gpointer user_data);

/* Iterates the thread-default main context until @cond holds; fails the test after
 * @seconds instead of hanging. A 20 ms tick bounds each blocking iteration. */
#define pb_test_wait_until(cond, seconds)                                                          \
	G_STMT_START                                                                               \
	{                                                                                          \
		gint64 _deadline = g_get_monotonic_time() + G_USEC_PER_SEC * (seconds);            \
		guint _tick = g_timeout_add(20, pb_test_tick_cb, NULL);                            \
		while (!(cond)) {                                                                  \
			if (g_get_monotonic_time() > _deadline)                                    \
				g_error("timed out after %d s waiting for %s", (int)(seconds),     \
					#cond);                                                    \
			g_main_context_iteration(NULL, TRUE);                                      \
		}                                                                                  \
		g_source_remove(_tick);                                                            \
	}                                                                                          \
	G_STMT_END

void
pb_test_settle(void);

/* What a PbTestService does with each connection it accepts. */
typedef enum {
	PB_TEST_SERVICE_ECHO,	     /* write back what it reads, until EOF */
	PB_TEST_SERVICE_SINK,	     /* read until EOF, checking the pattern; count */
	PB_TEST_SERVICE_SOURCE,	     /* write `size` bytes of the pattern, then close */
	PB_TEST_SERVICE_ANSWER,	     /* read until EOF (checked), then write `size` bytes, close */
	PB_TEST_SERVICE_SPEAK_FIRST, /* write `size` bytes, shut down writing, read to EOF */
} PbTestServiceMode;

typedef struct _PbTestService PbTestService;

PbTestService *
pb_test_service_new(PbTestServiceMode mode, gsize source_size, guint16 port);
void
pb_test_service_hold_answers(PbTestService *service, int *reached, int *go);
guint16
pb_test_service_get_port(PbTestService *service);
guint64
pb_test_service_get_bytes(PbTestService *service);
gboolean
pb_test_service_get_corrupt(PbTestService *service);
guint
pb_test_service_get_n_finished(PbTestService *service);
void
pb_test_service_free(PbTestService *service);

/* The pattern: byte i of a stream is pb_test_pattern(i); every byte value occurs. */
static inline guint8
pb_test_pattern(guint64 offset)
{
	return (guint8)((offset * 7 + offset / 251) & 0xff);
}

void
pb_test_pattern_fill(guint8 *buf, gsize len, guint64 offset);
gboolean
pb_test_pattern_check(const guint8 *buf, gsize len, guint64 offset);

GSocket *
pb_test_connect(guint16 port);
guint16
pb_test_soup_listen(SoupServer *soup);
guint16
pb_test_free_port(void);
GSocket *
pb_test_ws_upgrade(guint16 port, const char *headers);
guint16
pb_test_ws_read_hello_port(GSocket *socket);
guint
pb_test_ws_upgrade_status(guint16 port, const char *headers);
gpointer
pb_test_echo_one_byte_cb(gpointer port);
guint
pb_test_count_fds(GSubprocess *process);
guint
pb_test_count_listeners(GSubprocess *process);
guint
pb_test_connect_burst(guint16 port, const char *from, int *fds, guint n);
guint
pb_test_count_closed_by_peer(const int *fds, guint n);

/* Runs @func(@data) in a thread while iterating the main context; fails after @seconds. */
gpointer
pb_test_run_in_thread(GThreadFunc func, gpointer data, int seconds);

/* A process whose stdout and stderr are collected while the main context runs. */
typedef struct _PbTestProc PbTestProc;

GSubprocessLauncher *
pb_test_proc_launcher_new(void);
/* A public HTTPS client of 127.0.0.1:@port that names @host in its ClientHello and its
 * Host header, and trusts @database only; for pb_test_run_in_thread(). */
typedef struct {
	guint16 port;
	const char *host;
	const char *path;
	GTlsDatabase *database;
} PbTestHttpsGet;

gpointer
pb_test_https_get_cb(gpointer user_data);
char *
pb_test_temp_dir_new(const char *prefix);
void
pb_test_temp_dir_free(char *dir);
char *
pb_test_write_file(const char *dir, const char *name, const char *contents);
char *
pb_test_example_uncommented(const char *example, const char *group);
PbTestProc *
pb_test_proc_spawn(GSubprocessLauncher *launcher, const char *first, ...) G_GNUC_NULL_TERMINATED;
PbTestProc *
pb_test_proc_spawnv(GSubprocessLauncher *launcher, const char *const *argv);
PbTestProc *
pb_test_serve_valist(GSubprocessLauncher *launcher, const char *const *args, guint16 *ws_port,
		     const char *first, va_list rest);
gboolean
pb_test_proc_said(PbTestProc *proc, const char *needle);
const char *
pb_test_proc_get_output(PbTestProc *proc);
gboolean
pb_test_proc_exited(PbTestProc *proc);
void
pb_test_proc_wait_exit(PbTestProc *proc);
guint16
pb_test_proc_wait_port(PbTestProc *proc, const char *needle);
guint
pb_test_proc_count_fds(PbTestProc *proc);
guint
pb_test_proc_count_listeners(PbTestProc *proc);
int
pb_test_proc_get_pid(PbTestProc *proc);
guint64
pb_test_proc_get_rss(PbTestProc *proc);
void
pb_test_proc_kill(PbTestProc *proc);
int
pb_test_proc_finish(PbTestProc *proc);

/* A public client of an echo service: sends `size` bytes of the pattern to 127.0.0.1:`port`
 * while reading them back, and checks them; for pb_test_run_in_thread(). */
typedef struct {
	guint16 port;
	gsize size;
} PbTestEchoJob;

gpointer
pb_test_echo_job_cb(gpointer user_data);

void
pb_test_resume_entry_write(guint8 *p, guint32 id, guint64 received, guint32 credit, guint8 flags);

G_END_DECLS
