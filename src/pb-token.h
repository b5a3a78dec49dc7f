/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The shared secret `serve` requires and `forward` presents (PROTOCOL.md "Authentication"):
 * `Authorization: Bearer <token>` on the upgrade request. */

gboolean
pb_token_validate(const char *token, const char *origin, GError **error);
char *
pb_token_read_file(const char *path, GError **error);
gboolean
pb_token_equal(const char *a, const char *b);
gboolean
pb_token_authorize(const char *authorization, const char *token);

G_END_DECLS
