/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define PB_TYPE_CONSOLE (pb_console_get_type())
G_DECLARE_FINAL_TYPE(PbConsole, pb_console, PB, CONSOLE, GObject)

/* Returns the whole screen, lines separated by "\n", each at most @width columns. */
typedef char *(*PbConsoleRenderFunc)(guint width, guint height, gboolean color, gpointer user_data);

PbConsole *
pb_console_new(int fd);
gboolean
pb_console_is_interactive(PbConsole *self);
gboolean
pb_console_get_color(PbConsole *self);
void
pb_console_set_render_func(PbConsole *self, PbConsoleRenderFunc func, gpointer user_data,
			   GDestroyNotify destroy);
void
pb_console_start(PbConsole *self);
void
pb_console_invalidate(PbConsole *self);
void
pb_console_stop(PbConsole *self);

G_END_DECLS
