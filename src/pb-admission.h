/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

gboolean
pb_admission_same_network(GInetAddress *a, GInetAddress *b);

G_END_DECLS
