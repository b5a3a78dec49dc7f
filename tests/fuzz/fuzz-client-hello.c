/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-client-hello.h"
#include "pb-name.h"

#include "fuzz.h"

/* pb_client_hello_parse(): the first bytes of a TLS client on a shared port, whose
 * server_name picks the tunnel. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *server_name = NULL;
	g_autofree char *name = NULL;
	PbClientHello result;

	pb_fuzz_set_up();
	result = pb_client_hello_parse(data, size, &server_name);
	if (result != PB_CLIENT_HELLO_COMPLETE) {
		g_assert_null(server_name);
		return 0;
	}
	if (server_name == NULL)
		return 0;
	g_assert_cmpuint(strlen(server_name), >, 0);
	for (const char *c = server_name; *c != '\0'; c++)
		g_assert_true(g_ascii_isprint(*c) && *c != ' ');
	name = pb_name_for_host(server_name, "example.test");
	g_assert_true(name == NULL || pb_name_is_valid(name));
	return 0;
}
