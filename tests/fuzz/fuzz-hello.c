/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-error.h"
#include "pb-hello.h"
#include "pb-text.h"

#include "fuzz.h"

/* pb_hello_parse(): the JSON payload of the server's HELLO. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(PbHello) hello = NULL;
	g_autoptr(PbHello) again = NULL;
	g_autofree char *json = NULL;
	g_autofree char *url = NULL;

	pb_fuzz_set_up();
	hello = pb_hello_parse(data, size, &error);
	if (hello == NULL) {
		g_assert_error(error, PB_ERROR, PB_ERROR_PROTOCOL);
		return 0;
	}
	g_assert_no_error(error);
	g_assert_nonnull(hello->public_host);
	g_assert_cmpuint(strlen(hello->public_host), >, 0);
	/* it is shown on terminals: a host name or an address, nothing a terminal obeys */
	g_assert_true(pb_text_is_host(hello->public_host));
	g_assert_cmpuint(size, <=, PB_HELLO_MAX_SIZE);
	/* no port: names only, which a name comes with */
	g_assert_true(hello->tunnel_port > 0 || hello->name != NULL);
	for (guint i = 0; hello->services != NULL && i < hello->services->len; i++) {
		const PbHelloService *service = hello->services->pdata[i];

		g_assert_true(service->tunnel_port > 0 || service->name != NULL);
	}
	g_assert_true(hello->url_scheme == NULL || g_str_equal(hello->url_scheme, "http") ||
		      g_str_equal(hello->url_scheme, "https"));
	url = pb_hello_get_access_url(hello, "tcp");
	g_assert_true(g_str_has_prefix(url, "tcp://"));
	/* what we would send for it parses back to the same */
	json = pb_hello_to_json(hello);
	again = pb_hello_parse((const guint8 *)json, strlen(json), &error);
	g_assert_no_error(error);
	g_assert_cmpstr(again->public_host, ==, hello->public_host);
	g_assert_cmpuint(again->tunnel_port, ==, hello->tunnel_port);
	g_assert_cmpstr(again->name, ==, hello->name);
	g_assert_cmpstr(again->url_scheme, ==, hello->url_scheme);
	g_assert_cmpuint(again->url_port, ==, hello->url_port);
	g_assert_cmpuint(again->services != NULL ? again->services->len : 0, ==,
			 hello->services != NULL ? hello->services->len : 0);
	return 0;
}
