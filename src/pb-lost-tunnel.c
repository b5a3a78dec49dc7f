/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-lost-tunnel.h"

#include <glib/gi18n.h>

/*
 * With `resume`, a client that loses its WebSocket keeps the tunnel (parked, see
 * pb-tunnel-resume.c): its local connections stay open, unread, for as long as the server
 * keeps the public ones (HELLO's `grace`, serve --grace). The next tunnel, once HELLO says
 * it resumes too, takes them over and sends RESUME; one that does not (the server lost our
 * session, runs without `resume`, or the grace period is over) lets them close.
 */

struct _PbLostTunnel {
	PbTunnel *tunnel; /* (owned) (nullable) the lost one */
	guint grace_s;	  /* from the last HELLO; 0 = none: nothing is kept */
	guint expire_id;  /* (nullable) the end of the grace period */
	PbLostTunnelEventFunc event_func;
	gpointer user_data;
};

PbLostTunnel *
pb_lost_tunnel_new(PbLostTunnelEventFunc event_func, gpointer user_data)
{
	PbLostTunnel *self = g_new0(PbLostTunnel, 1);

	self->event_func = event_func;
	self->user_data = user_data;
	return self;
}

/* How long the server keeps a lost tunnel's connections: HELLO's `grace` (0: it does not). */
void
pb_lost_tunnel_set_grace(PbLostTunnel *self, guint grace_s)
{
	self->grace_s = grace_s;
}

static void
pb_lost_tunnel_event(PbLostTunnel *self, const char *message)
{
	self->event_func(message, self->user_data);
}

/* Lets the connections close: nothing will take them over. */
void
pb_lost_tunnel_drop(PbLostTunnel *self)
{
	g_clear_handle_id(&self->expire_id, g_source_remove);
	g_clear_object(&self->tunnel); /* disposed: its connections close */
}

/* The connections kept, waiting for the next tunnel. */
guint
pb_lost_tunnel_get_n_streams(PbLostTunnel *self)
{
	return self->tunnel != NULL ? pb_tunnel_get_n_streams(self->tunnel) : 0;
}

static gboolean
pb_lost_tunnel_expired_cb(gpointer user_data)
{
	PbLostTunnel *self = user_data;
	guint n = pb_tunnel_get_n_streams(self->tunnel);
	g_autofree char *message = NULL;

	self->expire_id = 0;
	if (n > 0) {
		message = g_strdup_printf(
		    /* TRANSLATORS: %u is a number of connections */
		    g_dngettext(GETTEXT_PACKAGE,
				"%u connection closed: the server's grace period is over",
				"%u connections closed: the server's grace period is over", n),
		    n);
		pb_lost_tunnel_event(self, message);
	}
	pb_lost_tunnel_drop(self);
	return G_SOURCE_REMOVE;
}

/**
 * pb_lost_tunnel_keep:
 * @tunnel: the tunnel just lost, or closing to come back (close code 4000)
 *
 * Keeps @tunnel's connections for the grace period, if the tunnel has `resume` and the
 * last HELLO gave one; else they close now. A tunnel kept before goes.
 */
void
pb_lost_tunnel_keep(PbLostTunnel *self, PbTunnel *tunnel)
{
	pb_lost_tunnel_drop(self);
	if (self->grace_s == 0 || !(pb_tunnel_get_features(tunnel) & PB_FEATURE_RESUME))
		return;
	self->tunnel = g_object_ref(tunnel);
	self->expire_id = g_timeout_add_seconds_full(G_PRIORITY_DEFAULT, self->grace_s,
						     pb_lost_tunnel_expired_cb, self, NULL);
}

/**
 * pb_lost_tunnel_hand_over:
 * @tunnel: the new tunnel, whose HELLO was just taken
 *
 * With `resume` on @tunnel, it takes the kept connections over (pb_tunnel_resume()), none
 * if nothing is kept; without, they close.
 */
void
pb_lost_tunnel_hand_over(PbLostTunnel *self, PbTunnel *tunnel)
{
	if (pb_tunnel_get_features(tunnel) & PB_FEATURE_RESUME)
		pb_tunnel_resume(tunnel, self->tunnel); /* "resumed" follows */
	pb_lost_tunnel_drop(self);
}

void
pb_lost_tunnel_free(PbLostTunnel *self)
{
	if (self == NULL)
		return;
	pb_lost_tunnel_drop(self);
	g_free(self);
}
