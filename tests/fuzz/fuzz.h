/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

/* Every target implements libFuzzer's entry point; driver.c calls it for corpus files when
 * the build has no libFuzzer (meson option `fuzzing`). */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static GLogWriterOutput
pb_fuzz_null_writer_cb(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
		       gpointer user_data)
{
	return G_LOG_WRITER_HANDLED;
}

/* Parsers log nothing a fuzzer needs to see, and logging at every input is slow. */
static inline void
pb_fuzz_set_up(void)
{
	static gboolean done = FALSE;

	if (!done) {
		g_log_set_writer_func(pb_fuzz_null_writer_cb, NULL, NULL);
		done = TRUE;
	}
}
