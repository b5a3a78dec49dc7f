/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	PB_LOG_QUIET,	/* warnings and errors only */
	PB_LOG_NORMAL,	/* also messages: connects, disconnects, refusals */
	PB_LOG_VERBOSE, /* also PiggyBack's info and debug messages (per connection) */
} PbLogVerbosity;

/* Where messages go while the dashboard owns the terminal. */
typedef void (*PbLogSink)(GLogLevelFlags level, const char *message, gpointer user_data);

void
pb_log_init(PbLogVerbosity verbosity);
void
pb_log_set_sink(PbLogSink sink, gpointer user_data);
char *
pb_log_format_plain(GLogLevelFlags level, const char *message, gint64 time);

G_END_DECLS
