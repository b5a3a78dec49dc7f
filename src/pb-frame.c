/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-frame.h"

#include <string.h>

#include "pb-error.h"

/**
 * pb_frame_parse:
 * @message: one WebSocket binary message
 * @frame: (out caller-allocates): filled in; its payload points into @message
 * @error: set to %PB_ERROR_PROTOCOL for a message shorter than the header
 *
 * Unknown types are not an error here: PROTOCOL.md makes the caller drop them.
 */
gboolean
pb_frame_parse(GBytes *message, PbFrame *frame, GError **error)
{
	gsize len = 0;
	const guint8 *buf = g_bytes_get_data(message, &len);

	return pb_frame_parse_data(buf, len, frame, error);
}

/* pb_frame_parse() of a message that is no GBytes: @frame points into @buf. */
gboolean
pb_frame_parse_data(const guint8 *buf, gsize len, PbFrame *frame, GError **error)
{
	if (len < PB_FRAME_HEADER_SIZE) {
		g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
			    "message of %" G_GSIZE_FORMAT " bytes is shorter than a frame header",
			    len);
		return FALSE;
	}
	frame->type = buf[0];
	frame->conn_id = pb_frame_read_u32(buf + 1);
	frame->payload = buf + PB_FRAME_HEADER_SIZE;
	frame->payload_len = len - PB_FRAME_HEADER_SIZE;
	return TRUE;
}

void
pb_frame_write_header(guint8 *buf, guint8 type, guint32 conn_id)
{
	buf[0] = type;
	pb_frame_write_u32(buf + 1, conn_id);
}

GBytes *
pb_frame_new(guint8 type, guint32 conn_id, const void *payload, gsize payload_len)
{
	guint8 *buf = g_malloc(PB_FRAME_HEADER_SIZE + payload_len);

	pb_frame_write_header(buf, type, conn_id);
	if (payload_len > 0)
		memcpy(buf + PB_FRAME_HEADER_SIZE, payload, payload_len);
	return g_bytes_new_take(buf, PB_FRAME_HEADER_SIZE + payload_len);
}
