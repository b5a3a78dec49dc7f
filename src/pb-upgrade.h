/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The client's side of the WebSocket upgrade (RFC 6455 §4.1), without any I/O. */

char *
pb_upgrade_expected_accept(const char *key);
gboolean
pb_upgrade_check_response(const char *text, gsize len, const char *key, GError **error);

G_END_DECLS
