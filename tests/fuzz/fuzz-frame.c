/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-error.h"
#include "pb-frame.h"

#include "fuzz.h"

/* pb_frame_parse(): any WebSocket message a peer sends. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GBytes) message = g_bytes_new(data, size);
	g_autoptr(GBytes) again = NULL;
	g_autoptr(GError) error = NULL;
	PbFrame frame;

	pb_fuzz_set_up();
	if (!pb_frame_parse(message, &frame, &error)) {
		g_assert_cmpuint(size, <, PB_FRAME_HEADER_SIZE);
		g_assert_error(error, PB_ERROR, PB_ERROR_PROTOCOL);
		return 0;
	}
	g_assert_no_error(error);
	g_assert_cmpuint(frame.payload_len, ==, size - PB_FRAME_HEADER_SIZE);
	/* encoding what was parsed gives the message back */
	again = pb_frame_new(frame.type, frame.conn_id, frame.payload, frame.payload_len);
	g_assert_true(g_bytes_equal(again, message));
	return 0;
}
