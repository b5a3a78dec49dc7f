/* SPDX-License-Identifier: ISC */
#pragma once

/* What the files of PbTunnelClient share: pb-tunnel-client.c (the model the views show),
 * pb-tunnel-client-hello.c (what the server says) and pb-tunnel-client-connect.c (dialling,
 * losing and dialling again). Nothing else includes this. */

#include "pb-client-services.h"
#include "pb-local-dialer.h"
#include "pb-local-opener.h"
#include "pb-lost-tunnel.h"
#include "pb-tunnel-client.h"
#include "pb-tunnel.h"

struct _PbTunnelClient {
	GObject parent_instance;
	GUri *server_uri;	     /* (owned) */
	char *server_url;	     /* (owned) as given */
	PbLocalDialer *local_dialer; /* (owned) connects to the local service */
	PbClientServices *services;  /* (owned) further services (forward --expose) */
	PbTunnel *tunnel;	     /* (owned) (nullable) while connected */
	GCancellable *cancellable;   /* (owned) cancelled on close */
	char *access_url;	     /* (owned) (nullable) until HELLO */
	char *http_url;		     /* (owned) (nullable) */
	PbFeatures features;	     /* protocol v2 features we ask for */
	char *public_host;	     /* (owned) (nullable) until HELLO */
	char *local_address;	     /* (owned) host:port of the local service */
	guint16 tunnel_port;	     /* 0 until HELLO */
	PbTunnelClientState state;
	gint64 connected_since;	   /* Unix µs of the last HELLO, 0 when not online */
	guint64 connections_total; /* OPENs answered, over every tunnel */
	guint64 bytes_in_before;   /* counted by tunnels closed by a reconnect */
	guint64 bytes_out_before;
	PbServiceStats *service_before; /* (owned) per service, 0 the first: connections
					 * answered, and bytes of the tunnels dropped */
	GVariant *services_variant;	/* (owned) what the "services" property shows */
	GQueue events;			/* (owned) PbTunnelClientEvent, oldest first */
	char *token;			/* (owned) (nullable) sent as a bearer token */
	GTlsDatabase *tls_database;	/* (owned) (nullable) trusted CAs; NULL = the system's */
	char *pin_sha256;		/* (owned) (nullable) the server certificate's, in hex */
	gboolean auto_reconnect;	/* dial again by itself when an online tunnel is lost */
	guint retry_id;			/* (nullable) the backoff timer before the next dial */
	guint attempt;			/* dials since the last stable tunnel (pb-backoff.h) */
	guint keepalive_s;		/* ping interval; 0 = none */
	guint64 max_message_size;	/* the largest WebSocket message taken from the server */
	char *session;	       /* (owned) (nullable) from HELLO: keeps our port on reconnect */
	char *name;	       /* (owned) (nullable) asked for; then the one HELLO gave */
	char *given_name;      /* (owned) (nullable) the name of the tunnel online now */
	char *refusal;	       /* (owned) (nullable) why the tunnel closing now is for good */
	PbLocalOpener *opener; /* (owned) a local connection per OPEN, --max-connections */
	PbLostTunnel *lost;    /* (owned) a lost tunnel's connections, waiting (`resume`) */
};

enum {
	PB_TUNNEL_CLIENT_SIGNAL_READY,
	PB_TUNNEL_CLIENT_SIGNAL_DISCONNECTED,
	PB_TUNNEL_CLIENT_SIGNAL_EVENT,
	PB_TUNNEL_CLIENT_SIGNAL_LAST
};
extern guint pb_tunnel_client_signals[PB_TUNNEL_CLIENT_SIGNAL_LAST];

enum {
	PB_TUNNEL_CLIENT_PROP_0,
	PB_TUNNEL_CLIENT_PROP_STATE,
	PB_TUNNEL_CLIENT_PROP_SERVER_URL,
	PB_TUNNEL_CLIENT_PROP_LOCAL_ADDRESS,
	PB_TUNNEL_CLIENT_PROP_ACCESS_URL,
	PB_TUNNEL_CLIENT_PROP_HTTP_URL,
	PB_TUNNEL_CLIENT_PROP_NAME,
	PB_TUNNEL_CLIENT_PROP_PUBLIC_HOST,
	PB_TUNNEL_CLIENT_PROP_TUNNEL_PORT,
	PB_TUNNEL_CLIENT_PROP_CONNECTED_SINCE,
	PB_TUNNEL_CLIENT_PROP_CONNECTIONS_TOTAL,
	PB_TUNNEL_CLIENT_PROP_CONNECTIONS_ACTIVE,
	PB_TUNNEL_CLIENT_PROP_BYTES_IN,
	PB_TUNNEL_CLIENT_PROP_BYTES_OUT,
	PB_TUNNEL_CLIENT_PROP_SERVICES,
	PB_TUNNEL_CLIENT_PROP_LAST
};
extern GParamSpec *pb_tunnel_client_props[PB_TUNNEL_CLIENT_PROP_LAST];

void
pb_tunnel_client_add_event(PbTunnelClient *self, const char *format, ...) G_GNUC_PRINTF(2, 3);
void
pb_tunnel_client_set_state(PbTunnelClient *self, PbTunnelClientState state);
GVariant *
pb_tunnel_client_build_services(PbTunnelClient *self);
void
pb_tunnel_client_update_services(PbTunnelClient *self);
void
pb_tunnel_client_clear_hello(PbTunnelClient *self);
void
pb_tunnel_client_drop_tunnel(PbTunnelClient *self);
PbFeatures
pb_tunnel_client_get_asked(PbTunnelClient *self);
void
pb_tunnel_client_open_requested_cb(PbTunnel *tunnel, PbStream *stream, gpointer user_data);
void
pb_tunnel_client_hello_cb(PbTunnel *tunnel, gpointer hello_ptr, gpointer user_data);
void
pb_tunnel_client_protocol_error_cb(PbTunnel *tunnel, const char *reason, gpointer user_data);
void
pb_tunnel_client_resumed_cb(PbTunnel *tunnel, guint resumed, guint dropped, gpointer user_data);
