/* SPDX-License-Identifier: ISC */
#pragma once

/* PbTunnelServer's fields, for the files that make it up: pb-tunnel-server.c (the object,
 * its ports and its views) and pb-server-handshake.c (a client's upgrade). */

#include <libsoup/soup.h>

#include "pb-client-policy.h"
#include "pb-client-registry.h"
#include "pb-public-ports.h"
#include "pb-queue-budget.h"
#include "pb-tunnel-server.h"
#include "pb-web-port.h"

G_BEGIN_DECLS

struct _PbTunnelServer {
	GObject parent_instance;
	char *listen_host; /* (owned) (nullable) bind address of the WebSocket port; NULL = all */
	guint16 port;
	PbPublicPorts public_ports; /* --tunnel-host, --tunnel-port */
	char *public_host;	    /* (owned) (nullable) advertised in HELLO */
	char *domain;		    /* (owned) (nullable) --domain: tunnels have names under it */
	char *url_scheme;	    /* (owned) (nullable) --public-url: where names are reached */
	guint16 url_port;	    /* its port; 0 = the scheme's */
	int http_port;		    /* --http-port: plain HTTP by name only; 0 random, -1 none */
	int sni_port;		    /* --sni-port: TLS passed through by name; 0 random, -1 none */
	PbWebPort *http_web_port;   /* (owned) (nullable) once started with an http_port */
	PbWebPort *sni_web_port;    /* (owned) (nullable) once started with an sni_port */
	PbFeatures features;	    /* protocol v2 features offered to clients */
	guint32 window;		    /* initial credit per connection, with `flow` */
	char *token;		    /* (owned) (nullable) required on the upgrade; NULL = anyone */
	PbClientPolicy *policy;	    /* (owned) (nullable) tokens of their own: [client] groups */
	PbAddressRules *address_rules; /* (owned) --allow, --deny for the public ports */
	PbAddressRules
	    *listen_rules; /* (owned) --listen-allow, --listen-deny: the WebSocket port */
	GTlsCertificate *certificate; /* (owned) (nullable) serve wss:// with it */
	guint keepalive_s;	      /* ping interval of every tunnel; 0 = none */
	SoupServer *soup;	      /* (owned) */
	PbWebPort *web_port;	      /* (owned) (nullable) once started */
	guint idle_timeout_s;	      /* of every tunneled connection; 0 = none */
	guint64 max_message_size;     /* the largest WebSocket message taken from a client */
	PbQueueBudget *queue_budget;  /* (owned) bytes queued towards public connections */
	guint handshake_timeout_s;
	guint max_pending;
	guint max_pending_per_address;
	PbClientRegistry *clients; /* (owned) connected, and kept for those that left */
	guint grace_s;		   /* how long a lost client's port is kept; 0 = not at all */
	guint max_clients;	   /* connected or with their port kept; more get 503 */
	guint max_connections;	   /* per tunnel; more public connections are closed at once */
	guint max_services;	   /* per client; a client asking for more gets 403 */
	PbTunnelStats ended;	   /* the counters of the tunnels that have closed, added up */
	gboolean metrics;	   /* answer GET /metrics */
	char *metrics_token;	   /* (owned) (nullable) required on GET /metrics */
	gboolean draining;	   /* serve --drain: /healthz says 503, all else goes on */
};

void
pb_tunnel_server_request_cb(SoupServer *soup, SoupServerMessage *msg, const char *path,
			    GHashTable *query, gpointer user_data);

G_END_DECLS
