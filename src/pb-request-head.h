/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The most bytes of request head the shared ports read to find its Host: more is 431. */
#define PB_REQUEST_HEAD_MAX (16 * 1024)

typedef enum {
	PB_REQUEST_HEAD_INCOMPLETE, /* no blank line yet: read more */
	PB_REQUEST_HEAD_COMPLETE,
	PB_REQUEST_HEAD_TOO_LARGE, /* no blank line in PB_REQUEST_HEAD_MAX bytes */
} PbRequestHead;

PbRequestHead
pb_request_head_parse(const guint8 *data, gsize len, gsize *head_len, char **host);

G_END_DECLS
