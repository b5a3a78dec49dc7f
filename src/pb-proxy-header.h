/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-frame.h"

G_BEGIN_DECLS

#define PB_PROXY_HEADER_MAX 108 /* the longest v1 line; a v2 header with IPv6 is 52 */

gsize
pb_proxy_header_write(guint8 *buf, PbFeatures version, GSocketAddress *source,
		      GSocketAddress *destination);

G_END_DECLS
