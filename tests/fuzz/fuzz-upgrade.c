/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-error.h"
#include "pb-upgrade.h"

#include "fuzz.h"

/* RFC 6455 §1.3's example key: the seed corpus answers it. */
#define PB_FUZZ_KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* pb_upgrade_check_response(): the server's answer to the client's upgrade request. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GError) error = NULL;

	pb_fuzz_set_up();
	if (pb_upgrade_check_response((const char *)data, size, PB_FUZZ_KEY, &error)) {
		g_assert_no_error(error);
		return 0;
	}
	g_assert_nonnull(error);
	g_assert_true(error->domain == PB_ERROR);
	g_assert_nonnull(error->message);
	return 0;
}
