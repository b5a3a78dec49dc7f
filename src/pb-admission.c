/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-admission.h"

#include <string.h>

/* The bytes of @address that name its network: an IPv4 address (also one mapped into
 * IPv6, as a dual-stack socket reports it) is one network, an IPv6 address is one of its
 * /64: a single host usually has a whole /64 to pick addresses from. */
static const guint8 *
pb_admission_network_bytes(GInetAddress *address, gsize *len)
{
	const guint8 *bytes = g_inet_address_to_bytes(address);
	static const guint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (g_inet_address_get_family(address) == G_SOCKET_FAMILY_IPV4) {
		*len = 4;
		return bytes;
	}
	if (memcmp(bytes, mapped, sizeof mapped) == 0) {
		*len = 4;
		return bytes + sizeof mapped;
	}
	*len = 8;
	return bytes;
}

/* Whether @a and @b are in the same network: the same IPv4 address, or the same IPv6 /64. */
gboolean
pb_admission_same_network(GInetAddress *a, GInetAddress *b)
{
	gsize len_a;
	gsize len_b;
	const guint8 *net_a = pb_admission_network_bytes(a, &len_a);
	const guint8 *net_b = pb_admission_network_bytes(b, &len_b);

	return len_a == len_b && memcmp(net_a, net_b, len_a) == 0;
}
