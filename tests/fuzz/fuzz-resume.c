/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-error.h"
#include "pb-resume.h"

#include "fuzz.h"

/* pb_resume_parse(): the RESUME a peer sends when it comes back (feature `resume`). */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) entries = NULL;
	g_autoptr(GArray) again = NULL;
	g_autoptr(GBytes) written = NULL;

	pb_fuzz_set_up();
	entries = pb_resume_parse(data, size, 1000, &error);
	if (entries == NULL) {
		g_assert_error(error, PB_ERROR, PB_ERROR_PROTOCOL);
		return 0;
	}
	g_assert_cmpuint(entries->len, <=, 1000);
	g_assert_cmpuint((gsize)entries->len * PB_RESUME_ENTRY_SIZE, ==, size);
	for (guint i = 0; i < entries->len; i++)
		g_assert_cmpuint(g_array_index(entries, PbResumeEntry, i).conn_id, !=, 0);
	/* what we would send for it parses back to the same */
	written = pb_resume_write((const PbResumeEntry *)(gpointer)entries->data, entries->len);
	again =
	    pb_resume_parse(g_bytes_get_data(written, NULL), g_bytes_get_size(written), 1000, NULL);
	g_assert_nonnull(again);
	g_assert_cmpuint(again->len, ==, entries->len);
	for (guint i = 0; i < entries->len; i++) {
		const PbResumeEntry *a = &g_array_index(entries, PbResumeEntry, i);
		const PbResumeEntry *b = &g_array_index(again, PbResumeEntry, i);

		g_assert_true(a->conn_id == b->conn_id && a->received == b->received &&
			      a->credit == b->credit && a->eof == b->eof);
	}
	return 0;
}
