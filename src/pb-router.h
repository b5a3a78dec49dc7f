/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Reads the request head (or, on a TLS port, the ClientHello) of each connection to a
 * shared port and hands the connection on by its Host (or TLS server_name): NAME.DOMAIN to
 * tunnel NAME, any other host to the server itself, or where it has nothing, an error. */
typedef struct _PbRouter PbRouter;

/* What a port's connections start with, and what becomes of those for no tunnel. */
typedef enum {
	PB_ROUTER_MODE_HTTP,	    /* a request head: by its Host; else an HTTP error page */
	PB_ROUTER_MODE_TLS,	    /* a ClientHello: by its server_name, TLS terminated here */
	PB_ROUTER_MODE_PASSTHROUGH, /* a ClientHello: by its server_name, the TLS bytes untouched;
				     * else a TLS unrecognized_name alert */
} PbRouterMode;

/* What became of a connection offered to tunnel NAME. */
typedef enum {
	PB_ROUTE_UNKNOWN, /* no client has that name */
	PB_ROUTE_TAKEN,	  /* the tunnel took the connection */
	PB_ROUTE_AWAY,	  /* its client is away, within its grace period: ask again soon */
} PbRoute;

/* The Retry-After of a 503 for a name whose client is away: about a client's first
 * reconnection backoffs. */
#define PB_ROUTE_RETRY_AFTER_S 5

/* Takes @connection (@stream: what to read, the connection or TLS over it) as a public
 * connection of tunnel @name; FALSE if no client has it. */
typedef PbRoute (*PbRouterTunnelFunc)(const char *name, GSocketConnection *connection,
				      GIOStream *stream, gpointer user_data);
/* Takes @stream, untouched, for the server's own pages; NULL answers 404. */
typedef void (*PbRouterServerFunc)(GSocketConnection *connection, GIOStream *stream,
				   gpointer user_data);

PbRouter *
pb_router_new(const char *domain, PbRouterTunnelFunc tunnel_func, PbRouterServerFunc server_func,
	      gpointer user_data);
void
pb_router_set_mode(PbRouter *self, PbRouterMode mode);
void
pb_router_add(PbRouter *self, GSocketConnection *connection, GIOStream *stream);
guint
pb_router_get_n_reading(PbRouter *self);
void
pb_router_free(PbRouter *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbRouter, pb_router_free)

G_END_DECLS
