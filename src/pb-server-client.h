/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-address-rules.h"
#include "pb-listener.h"
#include "pb-tunnel.h"

G_BEGIN_DECLS

/* A [client NAME] group of serve --config, see PbClientPolicy. */
typedef struct _PbClientRule PbClientRule;

/* One client of `serve`: its tunnel, and what it holds while connected: a public port, a
 * name, a session to come back with. */
typedef struct {
	gpointer owner;		/* (unowned) the server, for its callbacks */
	PbTunnel *tunnel;	/* (owned) */
	PbListener *listener;	/* (owned) (nullable) the public port; none with names only */
	char *session;		/* (owned) (nullable) what the client presents to come back */
	char *name;		/* (owned) (nullable) reached as NAME.DOMAIN (--domain) */
	guint16 tunnel_port;	/* 0 without a public port */
	GInetAddress *address;	/* (owned) (nullable) the client's */
	char *peer;		/* (owned) for logs */
	gint64 connected_since; /* Unix µs */
	guint max_connections;	/* public connections at once; more are closed at once */
	guint n_refused;	/* public connections refused since the last log line */
	gint64 refused_logged;	/* monotonic µs of that line */
	PbClientRule *rule;	/* (owned) (nullable) the [client] its token is of */
	PbAddressRules *address_rules; /* (unowned) (nullable) the server's --allow, --deny */
} PbServerClient;

PbServerClient *
pb_server_client_new(PbTunnel *tunnel, GSocketAddress *remote, guint max_connections);
char *
pb_server_client_new_session(void);
void
pb_server_client_add_connection(PbServerClient *client, GSocketConnection *connection);
void
pb_server_client_open(PbServerClient *client);
void
pb_server_client_free(PbServerClient *client);
void
pb_server_client_free_later(PbServerClient *client);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbServerClient, pb_server_client_free)

G_END_DECLS
