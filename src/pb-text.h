/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char *
pb_text_escape(const char *text, gssize len);
char *
pb_text_escape_lines(const char *text, gssize len);
char *
pb_text_truncate(const char *text, gsize max_bytes);
gboolean
pb_text_is_host(const char *host);

G_END_DECLS
