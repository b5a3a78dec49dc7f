/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The live terminal dashboard as pure functions: a snapshot of the program's state in, the
 * whole screen as text out. No I/O and no clock reads, so every layout is testable.
 */

typedef struct {
	gint64 time;	     /* Unix µs */
	const char *message; /* one line; control characters are shown as spaces */
} PbDashboardEvent;

/* One of a client's services, a row of the client view's services table. */
typedef struct {
	const char *label; /* its name, else its local address: "db", "localhost:5432" */
	const char *url;   /* (nullable) where the public reaches it: "http://db.example.com" */
	guint connections_active;
	guint64 connections_total;
	guint64 bytes_in, bytes_out;
} PbDashboardService;

typedef struct {
	const char *version;	   /* "2.0.0" */
	const char *state;	   /* "online", "connecting", "reconnecting", "offline" */
	gint64 now;		   /* Unix µs at the snapshot */
	gint64 connected_since;	   /* Unix µs; 0 when not online */
	const char *server_url;	   /* "ws://tunnel.example.com:8080/http-stream" */
	const char *local_address; /* "localhost:4321" */
	const char *access_url;	   /* (nullable) */
	const char *http_url;	   /* (nullable) */
	const char *name;	   /* (nullable) the tunnel's name, "myapp"; a row only if set */
	guint64 connections_total;
	guint connections_active;
	guint64 bytes_in, bytes_out;
	double rate_in, rate_out;	/* bytes per second */
	const PbDashboardEvent *events; /* oldest first */
	guint n_events;
	/* every service, the first first: a table of them when there are several (the rows
	 * above are then the first service's, and the counters the client's) */
	const PbDashboardService *services;
	guint n_services;
} PbClientView;

typedef struct {
	const char *peer; /* "203.0.113.5:51234" */
	guint16 tunnel_port;
	gint64 connected_since; /* Unix µs */
	guint connections_active;
	guint64 connections_total;
	guint64 bytes_in, bytes_out;
	const char *name;   /* (nullable) "myapp"; the Name column shows when a row has one */
	gboolean continued; /* a further service of the client in the row above: the peer and
			     * Connected are not repeated, and it counts as no client */
} PbDashboardClientRow;

typedef struct {
	const char *version;
	gint64 now;		/* Unix µs at the snapshot */
	gint64 started;		/* Unix µs */
	const char *listen_url; /* (nullable) */
	guint n_clients;	/* may be more than the rows that are not continued */
	const PbDashboardClientRow *clients;
	guint n_rows;
	const PbDashboardEvent *events; /* oldest first */
	guint n_events;
} PbServerView;

char *
pb_format_bytes(guint64 n);
char *
pb_format_rate(double bytes_per_s);
char *
pb_format_duration(gint64 seconds);

char *
pb_dashboard_render_client(const PbClientView *view, guint width, guint height, gboolean color);
char *
pb_dashboard_render_server(const PbServerView *view, guint width, guint height, gboolean color);

G_END_DECLS
