/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* A public port: a listening socket that hands each accepted connection to a callback. */
typedef struct _PbListener PbListener;

typedef void (*PbListenerFunc)(GSocketConnection *connection, gpointer user_data);

PbListener *
pb_listener_new(GSocketAddress *address, PbListenerFunc func, gpointer user_data, GError **error);
PbListener *
pb_listener_new_any(guint16 port, PbListenerFunc func, gpointer user_data, GError **error);
guint16
pb_listener_get_port(PbListener *self);
void
pb_listener_set_callback(PbListener *self, PbListenerFunc func, gpointer user_data);
void
pb_listener_set_accepting(PbListener *self, gboolean accepting);
void
pb_listener_free(PbListener *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbListener, pb_listener_free)

G_END_DECLS
