/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-ws-frame.h"

#include "fuzz.h"

/* pb_ws_frame_header_parse(): the start of every WebSocket frame the tunnel reads itself. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PbWsFrameHeader header;
	gsize expected_len;

	pb_fuzz_set_up();
	if (!pb_ws_frame_header_parse(data, size, &header))
		return 0;
	/* 2 bytes, the extended length its 7-bit length announces, the masking key */
	expected_len = 2 +
		       ((data[1] & 0x7f) == 126	  ? 2
			: (data[1] & 0x7f) == 127 ? 8
						  : 0) +
		       (header.masked ? 4 : 0);
	g_assert_cmpuint(header.header_len, ==, expected_len);
	g_assert_cmpuint(header.header_len, <=, size);
	g_assert_cmpuint(header.header_len, <=, PB_WS_FRAME_HEADER_MAX);
	g_assert_cmpuint(header.opcode, ==, data[0] & 0x0f);
	/* a header is only parsed once it is all there */
	for (gsize len = 0; len < header.header_len; len++) {
		PbWsFrameHeader partial;

		g_assert_false(pb_ws_frame_header_parse(data, len, &partial));
	}
	/* unmasking is its own inverse, from any offset */
	if (header.masked) {
		gsize payload_len = MIN(size - header.header_len, 64);
		g_autofree guint8 *payload = g_memdup2(data + header.header_len, payload_len);

		pb_ws_frame_unmask(payload, payload_len, header.mask, size);
		pb_ws_frame_unmask(payload, payload_len, header.mask, size);
		g_assert_cmpmem(payload, payload_len, data + header.header_len, payload_len);
	}
	return 0;
}
