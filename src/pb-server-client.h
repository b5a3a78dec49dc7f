/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-address-rules.h"
#include "pb-listener.h"
#include "pb-tunnel-server.h"
#include "pb-tunnel.h"

G_BEGIN_DECLS

/* A [client NAME] group of serve --config, see PbClientPolicy. */
typedef struct _PbClientRule PbClientRule;

/* One of a client's services (forward --expose): where the public reaches it. */
typedef struct {
	PbListener *listener; /* (owned) (nullable) its public port; none with names only */
	guint16 port;	      /* @listener's number; 0 without one */
	char *name;	      /* (owned) (nullable) reached as NAME.DOMAIN (serve --domain) */
	gpointer client;      /* (unowned) (nullable) the PbServerClient it is open for */
	guint32 index;	      /* its place among the client's services, which OPEN names */
} PbServerService;

PbServerService *
pb_server_service_new(void);
void
pb_server_service_free(PbServerService *service);
char *
pb_server_services_describe(GPtrArray *services);

/* One client of `serve`: its tunnel, and what it holds while connected: a public port and
 * a name per service, a session to come back with. */
typedef struct {
	gpointer owner;		/* (unowned) the server, for its callbacks */
	PbTunnel *tunnel;	/* (owned) */
	GPtrArray *services;	/* (owned) PbServerService, in the client's order: one at least */
	char *session;		/* (owned) (nullable) what the client presents to come back */
	GInetAddress *address;	/* (owned) (nullable) the client's */
	char *peer;		/* (owned) for logs */
	gint64 connected_since; /* Unix µs */
	guint max_connections;	/* public connections at once; more are closed at once */
	guint n_refused;	/* public connections refused since the last log line */
	gint64 refused_logged;	/* monotonic µs of that line */
	PbClientRule *rule;	/* (owned) (nullable) the [client] its token is of */
	PbTunnel *lost;		/* (owned) (nullable) the tunnel its session lost, whose
				 * connections it takes over (`resume`) */
	PbAddressRules *address_rules; /* (unowned) (nullable) the server's --allow, --deny */
} PbServerClient;

PbServerClient *
pb_server_client_new(PbTunnel *tunnel, GSocketAddress *remote, guint max_connections);
PbServerService *
pb_server_client_get_service(PbServerClient *client, guint index);
char *
pb_server_client_new_session(void);
void
pb_server_client_add_connection(PbServerClient *client, guint32 service,
				GSocketConnection *connection, GSocketConnection *origin);
void
pb_server_client_open(PbServerClient *client);
void
pb_server_client_close_ports(PbServerClient *client);
char *
pb_server_client_describe(PbServerClient *client);
PbServerServiceInfo *
pb_server_client_list_services(PbServerClient *client, guint *n_services);
void
pb_server_service_infos_free(PbServerServiceInfo *infos, guint n_infos);
void
pb_server_client_free(PbServerClient *client);
void
pb_server_client_free_later(PbServerClient *client);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbServerClient, pb_server_client_free)

G_END_DECLS
