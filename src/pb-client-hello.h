/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The most bytes of TLS records read to find a ClientHello's server_name. */
#define PB_CLIENT_HELLO_MAX (16 * 1024)

typedef enum {
	PB_CLIENT_HELLO_INCOMPLETE, /* read more */
	PB_CLIENT_HELLO_COMPLETE,   /* a whole ClientHello, with or without a server_name */
	PB_CLIENT_HELLO_INVALID,    /* not a TLS ClientHello, or over PB_CLIENT_HELLO_MAX */
} PbClientHello;

PbClientHello
pb_client_hello_parse(const guint8 *data, gsize len, char **server_name);

G_END_DECLS
