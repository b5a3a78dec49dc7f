/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-frame.h"

G_BEGIN_DECLS

/* What the client's WebSocket upgrade needs. */
typedef struct {
	GUri *uri;		    /* the WebSocket URL, ws:// or wss:// */
	PbFeatures features;	    /* asked for with Piggyback-Features; 0 sends no header */
	const char *token;	    /* (nullable) sent as a bearer token */
	GTlsDatabase *tls_database; /* (nullable) trusted CAs; NULL = the system's */
	const char *pin_sha256;	    /* (nullable) the server certificate's SHA-256, in hex */
	const char *session;	    /* (nullable) from the last HELLO: asks for the same port */
	const char *name;	    /* (nullable) asked for with Piggyback-Name (feature `name`) */
	const char *services;	    /* (nullable) Piggyback-Services (feature `services`) */
} PbWsDialOptions;

void
pb_ws_dial_async(const PbWsDialOptions *options, GCancellable *cancellable,
		 GAsyncReadyCallback callback, gpointer user_data);
GIOStream *
pb_ws_dial_finish(GAsyncResult *result, GBytes **leftover, GError **error);

G_END_DECLS
