/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-local-opener.h"

#include <glib/gi18n.h>

#include "pb-frame.h"

/*
 * The server decides how many public connections there are, not how many local ones the
 * client opens: over --max-connections (connections open, this one too, or still writing
 * what came for them, and dials under way), an OPEN is answered with CLOSE at once, and
 * an event says so, at once for the first and then at most every 10 s. A dial under way
 * holds a reference: the opener outlives its client until the dial's callback has run
 * (cancelled when the client closes).
 */

struct _PbLocalOpener {
	PbLocalOpenerEventFunc event_func; /* (nullable) once freed */
	gpointer user_data;
	guint max_connections;
	guint n_dialing;  /* local connections being opened */
	guint n_refused;  /* OPENs refused since the last event said so */
	guint refused_id; /* (nullable) until the next such event may come */
};

typedef struct {
	PbLocalOpener *opener; /* (owned) a reference */
	PbTunnel *tunnel;      /* (owned) the one that asked */
	PbStream *stream;      /* (owned) */
	char *address;	       /* (owned) the local service's host:port, for logs */
} PbLocalOpen;

static void
pb_local_opener_clear(PbLocalOpener *self)
{
	g_clear_handle_id(&self->refused_id, g_source_remove);
}

static void
pb_local_opener_release(PbLocalOpener *self)
{
	g_rc_box_release_full(self, (GDestroyNotify)pb_local_opener_clear);
}

/**
 * pb_local_opener_new:
 * @event_func: says, for people, that OPENs were refused
 */
PbLocalOpener *
pb_local_opener_new(PbLocalOpenerEventFunc event_func, gpointer user_data)
{
	PbLocalOpener *self = g_rc_box_new0(PbLocalOpener);

	self->event_func = event_func;
	self->user_data = user_data;
	self->max_connections = PB_MAX_CONNECTIONS_DEFAULT;
	return self;
}

/* Local connections at once, at least 1. */
void
pb_local_opener_set_max_connections(PbLocalOpener *self, guint max_connections)
{
	g_return_if_fail(max_connections >= 1);
	self->max_connections = max_connections;
}

/* Says how many OPENs were refused: at once for the first, then at most every 10 s. */
static gboolean
pb_local_opener_refused_cb(gpointer user_data)
{
	PbLocalOpener *self = user_data;
	g_autofree char *message = NULL;

	self->refused_id = 0;
	if (self->n_refused == 0 || self->event_func == NULL)
		return G_SOURCE_REMOVE;
	message = g_strdup_printf(
	    /* TRANSLATORS: the second %u is the --max-connections value */
	    g_dngettext(GETTEXT_PACKAGE, "%u connection refused: %u are open (--max-connections)",
			"%u connections refused: %u are open (--max-connections)", self->n_refused),
	    self->n_refused, self->max_connections);
	self->event_func(message, self->user_data);
	self->n_refused = 0;
	self->refused_id = g_timeout_add_seconds(10, pb_local_opener_refused_cb, self);
	return G_SOURCE_REMOVE;
}

static void
pb_local_opener_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	PbLocalOpen *open = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketConnection) connection =
	    pb_local_dialer_dial_finish(PB_LOCAL_DIALER(source), res, &error);

	open->opener->n_dialing--;
	if (connection != NULL) {
		pb_tunnel_connect_stream(open->tunnel, open->stream, connection);
	} else if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_info("Cannot reach %s: %s", open->address, error->message);
		pb_tunnel_refuse_stream(open->tunnel, open->stream);
	}
	g_object_unref(open->stream);
	g_object_unref(open->tunnel);
	g_free(open->address);
	pb_local_opener_release(open->opener);
	g_free(open);
}

/**
 * pb_local_opener_open:
 * @stream: the connection an OPEN asked for
 * @dialer: its local service's
 * @address: that service's host:port, for logs
 * @cancellable: cancelled when the client closes
 *
 * Dials the local service for @stream, or, over the limit, answers CLOSE at once.
 *
 * Returns: whether it dials
 */
gboolean
pb_local_opener_open(PbLocalOpener *self, PbTunnel *tunnel, PbStream *stream, PbLocalDialer *dialer,
		     const char *address, GCancellable *cancellable)
{
	PbLocalOpen *open;

	if (pb_tunnel_get_n_streams_held(tunnel) > self->max_connections ||
	    self->n_dialing >= self->max_connections) {
		pb_tunnel_refuse_stream(tunnel, stream); /* CLOSE */
		self->n_refused++;
		if (self->refused_id == 0)
			pb_local_opener_refused_cb(self);
		return FALSE;
	}
	open = g_new0(PbLocalOpen, 1);
	self->n_dialing++;
	open->opener = g_rc_box_acquire(self);
	open->tunnel = g_object_ref(tunnel);
	open->stream = g_object_ref(stream);
	open->address = g_strdup(address);
	pb_local_dialer_dial_async(dialer, cancellable, pb_local_opener_connected_cb, open);
	return TRUE;
}

/* The client is done with it: no more events; dials under way end in their own time. */
void
pb_local_opener_free(PbLocalOpener *self)
{
	if (self == NULL)
		return;
	self->event_func = NULL;
	g_clear_handle_id(&self->refused_id, g_source_remove);
	pb_local_opener_release(self);
}
