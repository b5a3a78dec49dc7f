/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-log.h"

#include <glib/gi18n.h>
#include <stdio.h>

#include "pb-text.h"

/*
 * One log writer for the whole program, so every message, ours and the libraries', is
 * filtered and shown the same way:
 *
 * - Under systemd (stderr is the journal's stream) messages go to the journal with their
 *   fields (GLIB_DOMAIN, PB_STREAM, …), and the journal adds the time.
 * - While the dashboard owns the terminal they go to its list of recent events instead of
 *   scribbling over the screen.
 * - Otherwise one plain line each on stderr: "12:34:56 message", "12:34:56 warning: …".
 *
 * Control characters in a message are shown escaped (pb_text_escape_lines()), so that a
 * peer's words quoted in it cannot steer the terminal, whoever forgot to escape them.
 *
 * Debug messages are shown as GLib decides (G_MESSAGES_DEBUG=piggyback), or for our own
 * domain with --verbose; --quiet leaves warnings and errors only.
 */

static PbLogVerbosity pb_log_verbosity = PB_LOG_NORMAL;
static PbLogSink pb_log_sink;
static gpointer pb_log_sink_data;

typedef struct {
	GLogLevelFlags level;
	char *message;
} PbLogDeferred;

/* The sink lives in the main thread; a message from another thread is passed there. */
static gboolean
pb_log_deliver_cb(gpointer user_data)
{
	PbLogDeferred *deferred = user_data;

	if (pb_log_sink != NULL)
		pb_log_sink(deferred->level, deferred->message, pb_log_sink_data);
	g_free(deferred->message);
	g_free(deferred);
	return G_SOURCE_REMOVE;
}

static gboolean
pb_log_wanted(GLogLevelFlags level, const char *domain)
{
	gboolean ours = g_strcmp0(domain, G_LOG_DOMAIN) == 0;

	if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
		return (ours && pb_log_verbosity == PB_LOG_VERBOSE) ||
		       !g_log_writer_default_would_drop(level, domain);
	if (level & G_LOG_LEVEL_MESSAGE)
		return pb_log_verbosity != PB_LOG_QUIET;
	return TRUE; /* warnings, criticals, errors */
}

/**
 * pb_log_format_plain:
 * @time: Unix µs
 *
 * Returns: one line (with its newline) as the plain log shows @message
 */
char *
pb_log_format_plain(GLogLevelFlags level, const char *message, gint64 time)
{
	g_autoptr(GDateTime) when = g_date_time_new_from_unix_local(time / G_USEC_PER_SEC);
	g_autofree char *clock = g_date_time_format(when, "%H:%M:%S");
	const char *prefix = "";

	if (level & G_LOG_LEVEL_ERROR)
		prefix = _("error: ");
	else if (level & G_LOG_LEVEL_CRITICAL)
		prefix = _("critical: ");
	else if (level & G_LOG_LEVEL_WARNING)
		prefix = _("warning: ");
	else if (level & G_LOG_LEVEL_DEBUG)
		prefix = "debug: ";
	return g_strdup_printf("%s %s%s\n", clock, prefix, message);
}

static GLogWriterOutput
pb_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	const char *domain = NULL;
	const char *message = NULL;
	g_autofree char *shown = NULL;
	g_autofree char *line = NULL;

	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0)
			domain = fields[i].value;
		else if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
			message = fields[i].value;
	}
	if (!pb_log_wanted(level, domain))
		return G_LOG_WRITER_HANDLED;
	if (g_log_writer_is_journald(fileno(stderr)) &&
	    g_log_writer_journald(level, fields, n_fields, user_data) == G_LOG_WRITER_HANDLED)
		return G_LOG_WRITER_HANDLED;
	shown = pb_text_escape_lines(message, -1); /* "" for NULL */
	if (pb_log_sink != NULL && !(level & G_LOG_LEVEL_ERROR)) {
		PbLogDeferred *deferred = g_new0(PbLogDeferred, 1);

		deferred->level = level;
		deferred->message = g_steal_pointer(&shown);
		if (g_main_context_is_owner(g_main_context_default()))
			pb_log_deliver_cb(deferred);
		else
			g_main_context_invoke(NULL, pb_log_deliver_cb, deferred);
		return G_LOG_WRITER_HANDLED;
	}
	line = pb_log_format_plain(level, shown, g_get_real_time());
	fputs(line, stderr);
	fflush(stderr);
	return G_LOG_WRITER_HANDLED;
}

/* Installs the writer; call once, before anything logs. */
void
pb_log_init(PbLogVerbosity verbosity)
{
	static gboolean installed = FALSE;

	pb_log_verbosity = verbosity;
	if (!installed)
		g_log_set_writer_func(pb_log_writer, NULL, NULL);
	installed = TRUE;
}

/**
 * pb_log_set_sink:
 * @sink: (nullable): takes every message shown from now on, in the main thread; %NULL
 *   for stderr again
 */
void
pb_log_set_sink(PbLogSink sink, gpointer user_data)
{
	pb_log_sink = sink;
	pb_log_sink_data = user_data;
}
