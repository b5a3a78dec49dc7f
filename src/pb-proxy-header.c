/* SPDX-License-Identifier: ISC */

/*
 * The PROXY protocol header (HAProxy's, versions 1 and 2) that tells the local service who
 * the public client is: with the `proxy-v1` or `proxy-v2` feature, the server sends it as
 * the first DATA of every connection, before a byte of the client's own. The local service
 * (nginx `proxy_protocol`, HAProxy `accept-proxy`, OpenSSH behind sshproxy…) reads it and
 * logs the real address instead of 127.0.0.1.
 * https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
 */

#include "config.h"

#include "pb-proxy-header.h"

#include <string.h>

/* An IPv4-mapped IPv6 address (a dual-stack port's IPv4 client) as the IPv4 one. */
static GInetAddress *
pb_proxy_header_unmap(GInetAddress *address)
{
	const guint8 *bytes = g_inet_address_to_bytes(address);
	static const guint8 mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (g_inet_address_get_family(address) == G_SOCKET_FAMILY_IPV6 &&
	    memcmp(bytes, mapped_prefix, sizeof mapped_prefix) == 0)
		return g_inet_address_new_from_bytes(bytes + 12, G_SOCKET_FAMILY_IPV4);
	return g_object_ref(address);
}

/**
 * pb_proxy_header_write:
 * @buf: room for %PB_PROXY_HEADER_MAX bytes
 * @version: %PB_FEATURE_PROXY_V1 or %PB_FEATURE_PROXY_V2
 * @source: (nullable): the public client's address
 * @destination: (nullable): the public port's address it connected to
 *
 * Writes the header; where the addresses are missing or of different families, the one
 * that says "unknown" (v1 `UNKNOWN`, v2 `LOCAL`), which a service takes as no information.
 *
 * Returns: its length
 */
gsize
pb_proxy_header_write(guint8 *buf, PbFeatures version, GSocketAddress *source,
		      GSocketAddress *destination)
{
	static const guint8 v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
						0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
	g_autoptr(GInetAddress) from = NULL;
	g_autoptr(GInetAddress) to = NULL;
	guint16 from_port = 0, to_port = 0;
	GSocketFamily family = G_SOCKET_FAMILY_INVALID;

	if (G_IS_INET_SOCKET_ADDRESS(source) && G_IS_INET_SOCKET_ADDRESS(destination)) {
		GInetSocketAddress *s = G_INET_SOCKET_ADDRESS(source);
		GInetSocketAddress *d = G_INET_SOCKET_ADDRESS(destination);

		from = pb_proxy_header_unmap(g_inet_socket_address_get_address(s));
		to = pb_proxy_header_unmap(g_inet_socket_address_get_address(d));
		from_port = g_inet_socket_address_get_port(s);
		to_port = g_inet_socket_address_get_port(d);
		if (g_inet_address_get_family(from) == g_inet_address_get_family(to))
			family = g_inet_address_get_family(from);
	}

	if (version == PB_FEATURE_PROXY_V1) {
		g_autofree char *from_text = NULL;
		g_autofree char *to_text = NULL;

		if (family == G_SOCKET_FAMILY_INVALID) {
			memcpy(buf, "PROXY UNKNOWN\r\n", 15);
			return 15;
		}
		from_text = g_inet_address_to_string(from);
		to_text = g_inet_address_to_string(to);
		/* at most 6 + 5 + 2 × 39 + 2 × 5 + 4 + 2 = 105 bytes */
		return (gsize)g_snprintf((char *)buf, PB_PROXY_HEADER_MAX,
					 "PROXY %s %s %s %u %u\r\n",
					 family == G_SOCKET_FAMILY_IPV4 ? "TCP4" : "TCP6",
					 from_text, to_text, from_port, to_port);
	}

	g_return_val_if_fail(version == PB_FEATURE_PROXY_V2, 0);
	memcpy(buf, v2_signature, sizeof v2_signature);
	if (family == G_SOCKET_FAMILY_INVALID) {
		buf[12] = 0x20; /* version 2, LOCAL: no addresses follow */
		buf[13] = 0x00;
		buf[14] = buf[15] = 0;
		return 16;
	}
	{
		gsize addr_len = g_inet_address_get_native_size(from);
		gsize len = 2 * addr_len + 4;

		buf[12] = 0x21;						/* version 2, PROXY */
		buf[13] = family == G_SOCKET_FAMILY_IPV4 ? 0x11 : 0x21; /* TCP over IPv4 or IPv6 */
		buf[14] = (guint8)(len >> 8);
		buf[15] = (guint8)len;
		memcpy(buf + 16, g_inet_address_to_bytes(from), addr_len);
		memcpy(buf + 16 + addr_len, g_inet_address_to_bytes(to), addr_len);
		buf[16 + 2 * addr_len] = (guint8)(from_port >> 8);
		buf[17 + 2 * addr_len] = (guint8)from_port;
		buf[18 + 2 * addr_len] = (guint8)(to_port >> 8);
		buf[19 + 2 * addr_len] = (guint8)to_port;
		return 16 + len;
	}
}
