/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

#include "pb-frame.h"

G_BEGIN_DECLS

/* A HELLO is one flat object of a few members (nested one level for `features`): one
 * bigger or deeper is refused before json-glib parses it, whose parser recurses once per
 * level (1 000 000 `[` overflow its stack). Unknown members still fit in these. */
#define PB_HELLO_MAX_SIZE  (64 * 1024)
#define PB_HELLO_MAX_DEPTH 32

/* Where one of a client's further services is reached (HELLO's `services`). */
typedef struct {
	guint16 tunnel_port; /* 0: names only */
	char *name;	     /* (nullable) with `name` */
} PbHelloService;

/* The most services a HELLO may list: more than any server gives (serve --max-services). */
#define PB_HELLO_MAX_SERVICES 256

/* The HELLO control frame's JSON object: where the tunnel can be reached. */
typedef struct {
	char *public_host;
	guint16 tunnel_port;
	char *version;
	PbFeatures features; /* what the server uses on this WebSocket; 0 = version 1 */
	guint32 window;	     /* initial credit of every connection, with `flow` */
	char *session;	     /* (nullable) presented on reconnecting to keep the port */
	char *name;	     /* (nullable) with `name`: the tunnel's, reached as NAME.DOMAIN */
	char *domain;	     /* (nullable) with `name`: the server's --domain */
	char *url_scheme;    /* (nullable) with `name`: "http" or "https" public clients use */
	guint16 url_port;    /* with @url_scheme: the port they reach; 0 = the scheme's */
	GPtrArray *services; /* (nullable) PbHelloService: with `services`, the client's
				services after the first (the members above), in its order */
	guint32 grace;	     /* with `resume`: seconds the server keeps a lost tunnel's
				connections (serve --grace), and so the client too */
} PbHello;

/* The longest grace period a HELLO may give (a day): a client keeps its local connections
 * that long at most. */
#define PB_HELLO_MAX_GRACE (24 * 60 * 60)

PbHello *
pb_hello_new(const char *public_host, guint16 tunnel_port, const char *version);
gboolean
pb_hello_check_bounds(const guint8 *json, gsize len, gsize max_size, guint max_depth,
		      GError **error);
PbHello *
pb_hello_parse(const guint8 *json, gsize len, GError **error);
char *
pb_hello_to_json(const PbHello *hello);
char *
pb_hello_get_access_url(const PbHello *hello, const char *scheme);
void
pb_hello_add_service(PbHello *hello, guint16 tunnel_port, const char *name);
void
pb_hello_free(PbHello *hello);
PbFeatures
pb_features_parse(const char *list);
char *
pb_features_to_string(PbFeatures features);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbHello, pb_hello_free)

G_END_DECLS
