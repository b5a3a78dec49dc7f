/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Watches one socket's readiness through the epoll set of the thread-default main context. */
typedef struct _PbPollerWatch PbPollerWatch;

typedef void (*PbPollerFunc)(gpointer user_data);

void
pb_poller_start(void);
PbPollerWatch *
pb_poller_watch_new(int fd, PbPollerFunc on_readable, PbPollerFunc on_writable, gpointer user_data,
		    GError **error);
void
pb_poller_watch_set(PbPollerWatch *watch, gboolean readable, gboolean writable);
void
pb_poller_watch_free(PbPollerWatch *watch);

G_END_DECLS
