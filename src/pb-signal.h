/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

guint
pb_signal_add(int signum, GSourceFunc func, gpointer user_data);
void
pb_signal_remove(guint id);

G_END_DECLS
