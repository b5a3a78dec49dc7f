/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-name.h"
#include "pb-services.h"

#include "fuzz.h"

/* pb_services_header_parse(): the Piggyback-Services header a client sends, and
 * pb_service_spec_parse(): what a user (or a GSettings key) gives --expose. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *text = g_strndup((const char *)data, size);
	g_autoptr(GPtrArray) names = NULL;
	g_autoptr(PbServiceSpec) spec = NULL;

	pb_fuzz_set_up();
	names = pb_services_header_parse(text, 15, NULL);
	if (names != NULL) {
		g_assert_cmpuint(names->len, <=, 15);
		for (guint i = 0; i < names->len; i++) {
			g_assert_true(names->pdata[i] == NULL || pb_name_is_valid(names->pdata[i]));
			for (guint j = 0; j < i; j++)
				g_assert_true(names->pdata[i] == NULL ||
					      g_strcmp0(names->pdata[i], names->pdata[j]) != 0);
		}
	}
	spec = pb_service_spec_parse(text, NULL);
	if (spec != NULL) {
		g_autofree char *address = pb_service_spec_get_address(spec);
		g_autofree char *label = pb_service_spec_get_label(spec);

		g_assert_cmpuint(spec->port, >, 0);
		g_assert_true(spec->name == NULL || pb_name_is_valid(spec->name));
		g_assert_true(g_utf8_validate(label, -1, NULL));
		g_assert_nonnull(address);
	}
	return 0;
}
