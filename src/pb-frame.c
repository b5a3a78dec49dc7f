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

	if (len < PB_FRAME_HEADER_SIZE) {
		g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
			    "message of %" G_GSIZE_FORMAT " bytes is shorter than a frame header",
			    len);
		return FALSE;
	}
	frame->type = buf[0];
	frame->conn_id =
	    (guint32)buf[1] << 24 | (guint32)buf[2] << 16 | (guint32)buf[3] << 8 | (guint32)buf[4];
	frame->payload = buf + PB_FRAME_HEADER_SIZE;
	frame->payload_len = len - PB_FRAME_HEADER_SIZE;
	return TRUE;
}

void
pb_frame_write_header(guint8 *buf, guint8 type, guint32 conn_id)
{
	buf[0] = type;
	buf[1] = (conn_id >> 24) & 0xff;
	buf[2] = (conn_id >> 16) & 0xff;
	buf[3] = (conn_id >> 8) & 0xff;
	buf[4] = conn_id & 0xff;
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
