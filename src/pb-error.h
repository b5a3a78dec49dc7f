/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PB_ERROR (pb_error_quark())

typedef enum {
	PB_ERROR_FAILED,
	PB_ERROR_PROTOCOL,     /* malformed frame or HELLO from the peer */
	PB_ERROR_REFUSED,      /* the server answered the upgrade with an HTTP error */
	PB_ERROR_CLOSED,       /* the tunnel went away under the operation */
	PB_ERROR_UNAUTHORIZED, /* the server refused the token (401) or the client (403):
				* a permanent refusal, not worth retrying */
	PB_ERROR_NAME_TAKEN,   /* another client holds the name asked for (409): permanent */
} PbError;

GQuark
pb_error_quark(void);

G_END_DECLS
