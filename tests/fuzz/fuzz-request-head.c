/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-name.h"
#include "pb-request-head.h"

#include "fuzz.h"

/* pb_request_head_parse() and pb_name_for_host(): what a public client sends first to a
 * shared port, and the name the router takes from its Host. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *host = NULL;
	g_autofree char *name = NULL;
	gsize head_len = 0;
	PbRequestHead result;

	pb_fuzz_set_up();
	result = pb_request_head_parse(data, size, &head_len, &host);
	if (result != PB_REQUEST_HEAD_COMPLETE) {
		g_assert_null(host);
		g_assert_true(result != PB_REQUEST_HEAD_TOO_LARGE || size >= PB_REQUEST_HEAD_MAX);
		return 0;
	}
	g_assert_cmpuint(head_len, <=, MIN(size, PB_REQUEST_HEAD_MAX));
	g_assert_cmpuint(head_len, >, 0);
	g_assert_true(data[head_len - 1] == '\n');
	/* the head alone parses the same */
	g_assert_cmpint(pb_request_head_parse(data, head_len, NULL, NULL), ==,
			PB_REQUEST_HEAD_COMPLETE);
	if (host == NULL)
		return 0;
	for (const char *c = host; *c != '\0'; c++)
		g_assert_false(g_ascii_iscntrl(*c) || *c == ' ');
	name = pb_name_for_host(host, "example.test");
	g_assert_true(name == NULL || pb_name_is_valid(name));
	return 0;
}
