/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "pb-signal.h"

/*
 * Draws a screen, made by a render function, on a terminal: in the alternate screen, so the
 * shell's scrollback is left as it was, with the cursor hidden and line wrapping off.
 *
 * A frame is drawn in place (cursor home, each line then "erase to end of line", then "erase
 * below") instead of clearing the screen first, which would flicker. Frames are limited to
 * four a second however often the state changes, plus one a second so uptimes and rates move,
 * plus one at once when the window is resized.
 *
 * Writing to a terminal blocks while its output is stopped (Ctrl+S, a stuck ssh session), and
 * a dashboard must not stop the tunnel. So frames go through a second, non-blocking open of
 * the terminal (its own file description: O_NONBLOCK on the caller's fd would be shared with
 * the shell), and a frame the terminal cannot take at once is dropped: the next one redraws
 * everything anyway.
 *
 * The terminal must be restored however the program ends: stop() and finalize do it, an
 * atexit() handler covers exit() and a SIGSEGV/SIGABRT/SIGBUS handler the crashes; it writes
 * the restore sequence and hands the signal on to whoever had it before (the default action,
 * or a sanitizer). Ctrl+C and SIGTERM are the program's: its main loop quits and frees us.
 */

#define PB_CONSOLE_MAX_FPS	      4
#define PB_CONSOLE_TICK_S	      1	   /* uptimes and rates move */
#define PB_CONSOLE_CONTROL_TIMEOUT_MS 1000 /* to enter or leave the alternate screen */

/* alternate screen, hide the cursor, no line wrapping */
#define PB_CONSOLE_ENTER "\033[?1049h\033[?25l\033[?7l"
/* line wrapping, show the cursor, leave the alternate screen (which restores what was there) */
#define PB_CONSOLE_RESTORE "\033[?7h\033[?25h\033[?1049l"

struct _PbConsole {
	GObject parent_instance;
	int fd;	    /* (unowned) the terminal, as given */
	int out_fd; /* frames go here while started: a non-blocking open of fd, or fd */
	gboolean out_fd_owned;
	gboolean interactive;
	gboolean color;
	gboolean started;
	gboolean crash_restore; /* this console's terminal is restored on a crash */
	PbConsoleRenderFunc render_func;
	gpointer render_data;
	GDestroyNotify render_destroy;
	guint redraw_id; /* a redraw scheduled by invalidate() */
	guint tick_id;
	guint winch_id;
	gint64 last_draw; /* monotonic µs; 0 = never */
};

G_DEFINE_FINAL_TYPE(PbConsole, pb_console, G_TYPE_OBJECT)

/* The crash path is process-wide: it serves the one console started first. */
static const int pb_console_crash_signals[] = {SIGSEGV, SIGABRT, SIGBUS};
static struct sigaction pb_console_crash_old[G_N_ELEMENTS(pb_console_crash_signals)];
static volatile sig_atomic_t pb_console_crash_fd = -1;

/* Async-signal-safe: only write() and sigaction(). */
static void
pb_console_write_restore(void)
{
	int fd = pb_console_crash_fd;

	if (fd >= 0) {
		ssize_t ignored = write(fd, PB_CONSOLE_RESTORE, strlen(PB_CONSOLE_RESTORE));
		(void)ignored; /* nothing to be done about it now */
	}
}

static void
pb_console_crash_handler(int signum)
{
	pb_console_write_restore();
	pb_console_crash_fd = -1;
	for (guint i = 0; i < G_N_ELEMENTS(pb_console_crash_signals); i++) {
		if (pb_console_crash_signals[i] == signum)
			sigaction(signum, &pb_console_crash_old[i], NULL);
	}
	/* delivered once this handler returns, to the previous handler; a fault instead
	 * happens again, the same way */
	raise(signum);
}

static void
pb_console_atexit_cb(void)
{
	pb_console_write_restore();
	pb_console_crash_fd = -1;
}

static void
pb_console_crash_install(PbConsole *self)
{
	static gsize atexit_once = 0;
	struct sigaction action = {0};

	if (pb_console_crash_fd >= 0) {
		g_debug("another console is started: only its terminal is restored on a crash");
		return;
	}
	if (g_once_init_enter(&atexit_once)) {
		atexit(pb_console_atexit_cb);
		g_once_init_leave(&atexit_once, 1);
	}
	pb_console_crash_fd = self->out_fd;
	action.sa_handler = pb_console_crash_handler;
	action.sa_flags = SA_RESETHAND;
	sigemptyset(&action.sa_mask);
	for (guint i = 0; i < G_N_ELEMENTS(pb_console_crash_signals); i++)
		sigaction(pb_console_crash_signals[i], &action, &pb_console_crash_old[i]);
	self->crash_restore = TRUE;
}

static void
pb_console_crash_uninstall(PbConsole *self)
{
	if (!self->crash_restore)
		return;
	for (guint i = 0; i < G_N_ELEMENTS(pb_console_crash_signals); i++)
		sigaction(pb_console_crash_signals[i], &pb_console_crash_old[i], NULL);
	pb_console_crash_fd = -1;
	self->crash_restore = FALSE;
}

/* Writes all of @data, retrying interrupted and partial writes; when the terminal takes no
 * more, waits up to @timeout_ms for it, or gives up at once if 0. */
static gboolean
pb_console_write(int fd, const char *data, gsize len, guint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n > 0) {
			data += n;
			len -= (gsize)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			gint64 left = deadline - g_get_monotonic_time();

			if (left > 0 && poll(&pfd, 1, (int)((left + 999) / 1000)) > 0)
				continue;
		}
		return FALSE;
	}
	return TRUE;
}

static void
pb_console_get_size(PbConsole *self, guint *width, guint *height)
{
	struct winsize size = {0};

	if (ioctl(self->fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 && size.ws_row > 0) {
		*width = size.ws_col;
		*height = size.ws_row;
		return;
	}
	*width = 80;
	*height = 24;
}

static void
pb_console_draw(PbConsole *self)
{
	g_autoptr(GString) frame = g_string_new("\033[H");
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	guint width, height;

	g_clear_handle_id(&self->redraw_id, g_source_remove);
	self->last_draw = g_get_monotonic_time();
	if (self->render_func == NULL)
		return;
	pb_console_get_size(self, &width, &height);
	text = self->render_func(width, height, self->color, self->render_data);
	lines = g_strsplit(text != NULL ? text : "", "\n", -1);
	for (guint i = 0; lines[i] != NULL && i < height; i++) {
		/* no newline after the last line of the screen: it would scroll */
		if (i > 0)
			g_string_append(frame, "\r\n");
		g_string_append(frame, lines[i]);
		g_string_append(frame, "\033[K");
	}
	g_string_append(frame, "\033[J");
	if (!self->out_fd_owned) {
		/* a blocking fd: at least do not start a frame the terminal cannot take */
		struct pollfd pfd = {.fd = self->out_fd, .events = POLLOUT};

		if (poll(&pfd, 1, 0) != 1 || (pfd.revents & POLLOUT) == 0) {
			g_debug("terminal busy, frame dropped");
			return;
		}
	}
	if (!pb_console_write(self->out_fd, frame->str, frame->len, 0))
		g_debug("terminal busy, frame dropped: %s", g_strerror(errno));
}

static gboolean
pb_console_redraw_cb(gpointer user_data)
{
	PbConsole *self = PB_CONSOLE(user_data);

	self->redraw_id = 0;
	pb_console_draw(self);
	return G_SOURCE_REMOVE;
}

static gboolean
pb_console_tick_cb(gpointer user_data)
{
	pb_console_draw(PB_CONSOLE(user_data));
	return G_SOURCE_CONTINUE;
}

static gboolean
pb_console_winch_cb(gpointer user_data)
{
	pb_console_draw(PB_CONSOLE(user_data));
	return G_SOURCE_CONTINUE;
}

/* A second open of the terminal, non-blocking; or the terminal as given. */
static void
pb_console_open_out(PbConsole *self)
{
	char path[256];

	self->out_fd = self->fd;
	self->out_fd_owned = FALSE;
	if (ttyname_r(self->fd, path, sizeof path) == 0) {
		int fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

		if (fd >= 0) {
			self->out_fd = fd;
			self->out_fd_owned = TRUE;
			return;
		}
		g_debug("cannot open %s: %s", path, g_strerror(errno));
	}
}

/**
 * pb_console_is_interactive:
 * @self: a console
 *
 * Returns: whether the console is a terminal that understands escapes: only then does
 * pb_console_start() draw anything.
 */
gboolean
pb_console_is_interactive(PbConsole *self)
{
	g_return_val_if_fail(PB_IS_CONSOLE(self), FALSE);
	return self->interactive;
}

/**
 * pb_console_get_color:
 * @self: a console
 *
 * Returns: whether the render function should use colour: see https://no-color.org.
 */
gboolean
pb_console_get_color(PbConsole *self)
{
	g_return_val_if_fail(PB_IS_CONSOLE(self), FALSE);
	return self->color;
}

/**
 * pb_console_set_render_func:
 * @self: a console
 * @func: (nullable): makes the screen for a size
 * @user_data: for @func
 * @destroy: (nullable): frees @user_data when replaced or with the console
 */
void
pb_console_set_render_func(PbConsole *self, PbConsoleRenderFunc func, gpointer user_data,
			   GDestroyNotify destroy)
{
	g_return_if_fail(PB_IS_CONSOLE(self));
	if (self->render_destroy != NULL)
		self->render_destroy(self->render_data);
	self->render_func = func;
	self->render_data = user_data;
	self->render_destroy = destroy;
}

/**
 * pb_console_start:
 * @self: a console
 *
 * Takes over the terminal and draws the first frame; nothing if it is not interactive.
 */
void
pb_console_start(PbConsole *self)
{
	g_return_if_fail(PB_IS_CONSOLE(self));
	if (self->started)
		return;
	if (!self->interactive) {
		g_debug("not a terminal: no dashboard");
		return;
	}
	pb_console_open_out(self);
	self->started = TRUE;
	pb_console_crash_install(self);
	pb_console_write(self->out_fd, PB_CONSOLE_ENTER, strlen(PB_CONSOLE_ENTER),
			 PB_CONSOLE_CONTROL_TIMEOUT_MS);
	self->tick_id = g_timeout_add_seconds(PB_CONSOLE_TICK_S, pb_console_tick_cb, self);
	self->winch_id = pb_signal_add(SIGWINCH, pb_console_winch_cb, self);
	pb_console_draw(self);
}

/**
 * pb_console_invalidate:
 * @self: a console
 *
 * Schedules a redraw: at once if the last one was a while ago, otherwise with the changes
 * that follow, so a busy tunnel costs at most four frames a second.
 */
void
pb_console_invalidate(PbConsole *self)
{
	gint64 delay;

	g_return_if_fail(PB_IS_CONSOLE(self));
	if (!self->started || self->redraw_id != 0)
		return;
	delay = self->last_draw + G_USEC_PER_SEC / PB_CONSOLE_MAX_FPS - g_get_monotonic_time();
	self->redraw_id = g_timeout_add((guint)(MAX(delay, 0) / 1000), pb_console_redraw_cb, self);
}

/**
 * pb_console_stop:
 * @self: a console
 *
 * Gives the terminal back as it was.
 */
void
pb_console_stop(PbConsole *self)
{
	g_return_if_fail(PB_IS_CONSOLE(self));
	if (!self->started)
		return;
	self->started = FALSE;
	g_clear_handle_id(&self->redraw_id, g_source_remove);
	g_clear_handle_id(&self->tick_id, g_source_remove);
	g_clear_handle_id(&self->winch_id, pb_signal_remove);
	pb_console_crash_uninstall(self);
	pb_console_write(self->out_fd, PB_CONSOLE_RESTORE, strlen(PB_CONSOLE_RESTORE),
			 PB_CONSOLE_CONTROL_TIMEOUT_MS);
	if (self->out_fd_owned)
		close(self->out_fd);
	self->out_fd = -1;
	self->out_fd_owned = FALSE;
}

static void
pb_console_finalize(GObject *object)
{
	PbConsole *self = PB_CONSOLE(object);

	pb_console_stop(self);
	pb_console_set_render_func(self, NULL, NULL, NULL);
	G_OBJECT_CLASS(pb_console_parent_class)->finalize(object);
}

static void
pb_console_class_init(PbConsoleClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->finalize = pb_console_finalize;
}

static void
pb_console_init(PbConsole *self)
{
	self->fd = -1;
	self->out_fd = -1;
}

/**
 * pb_console_new:
 * @fd: a file descriptor, usually STDOUT_FILENO; not owned, it must outlive the console
 *
 * Returns: a console for @fd, which decides now whether it is an interactive terminal.
 */
PbConsole *
pb_console_new(int fd)
{
	PbConsole *self = g_object_new(PB_TYPE_CONSOLE, NULL);
	const char *term = g_getenv("TERM");
	const char *no_color = g_getenv("NO_COLOR");

	self->fd = fd;
	self->interactive = isatty(fd) && g_strcmp0(term, "dumb") != 0;
	self->color = self->interactive && (no_color == NULL || no_color[0] == '\0');
	return self;
}
