/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char *
pb_server_url_resolve(const char *input, GError **error);

G_END_DECLS
