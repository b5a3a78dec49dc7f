/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The parts of an RFC 6455 frame header (§5.2) PiggyBack's receive fast path looks at. */
typedef struct {
	gboolean fin;
	guint8 rsv;    /* the three reserved bits; 0 without extensions */
	guint8 opcode; /* 0 continuation, 1 text, 2 binary, 8.. control */
	gboolean masked;
	guint8 mask[4];
	gsize header_len; /* 2 to 14 bytes */
	guint64 payload_len;
} PbWsFrameHeader;

/* The longest frame header: 2 bytes, an 8-byte length, a 4-byte masking key. */
#define PB_WS_FRAME_HEADER_MAX 14

gsize
pb_ws_frame_header_size(guint64 payload_len, gboolean masked);
void
pb_ws_frame_header_write(guint8 *buf, guint64 payload_len, const guint8 *mask);
gboolean
pb_ws_frame_header_parse(const guint8 *buf, gsize len, PbWsFrameHeader *header);
void
pb_ws_frame_unmask(guint8 *data, gsize len, const guint8 mask[4], guint64 offset);
void
pb_ws_frame_mask_copy(guint8 *dest, const guint8 *src, gsize len, const guint8 mask[4],
		      guint64 offset);

G_END_DECLS
