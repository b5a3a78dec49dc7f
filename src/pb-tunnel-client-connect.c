/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gi18n.h>
#include <libsoup/soup.h>

#include "pb-backoff.h"
#include "pb-error.h"
#include "pb-text.h"
#include "pb-tunnel-client-private.h"
#include "pb-ws-dial.h"

/*
 * How `forward` keeps a tunnel up: it dials the server and upgrades (pb_ws_dial_async()),
 * runs a PbTunnel on the connection, and when that is lost dials again after a growing
 * wait (pb-backoff.h), at once when the network changed, and never after a refusal for
 * good (401, 403, a name taken) or pb_tunnel_client_close(). A lost tunnel with `resume`
 * keeps its connections for the next one (PbLostTunnel).
 */

static void
pb_tunnel_client_schedule_retry(PbTunnelClient *self);

static void
pb_tunnel_client_tunnel_closed_cb(PbTunnel *tunnel, gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(user_data);
	SoupWebsocketConnection *ws = pb_tunnel_get_websocket(tunnel);
	const char *data = soup_websocket_connection_get_close_data(ws);
	gushort code = soup_websocket_connection_get_close_code(ws);
	gboolean refused = self->refusal != NULL; /* for good: no reconnecting */
	g_autofree char *reason = NULL;

	if (refused) {
		reason = g_steal_pointer(&self->refusal);
	} else if (code == 0) {
		reason = g_strdup(_("the connection to the server was lost"));
	} else if (data != NULL && *data != '\0') {
		/* the server's words: they go to terminals, the log and D-Bus */
		g_autofree char *shown = pb_text_escape(data, -1);

		reason = g_strdup_printf("%s (%u)", shown, code);
	} else {
		reason = g_strdup_printf(_("closed with code %u"), code);
	}
	/* lost, not closed: its connections wait for the next tunnel (`resume`) */
	if (pb_tunnel_is_parked(tunnel) && self->auto_reconnect && !refused &&
	    !g_cancellable_is_cancelled(self->cancellable))
		pb_lost_tunnel_keep(self->lost, tunnel);
	pb_tunnel_client_drop_tunnel(self);
	pb_tunnel_client_clear_hello(self);
	if (self->auto_reconnect && !g_cancellable_is_cancelled(self->cancellable) && !refused) {
		if (self->connected_since != 0 && g_get_real_time() - self->connected_since >=
						      PB_BACKOFF_STABLE_S * G_USEC_PER_SEC)
			self->attempt = 0; /* it was a good tunnel: start the backoff over */
		pb_tunnel_client_set_state(self, PB_TUNNEL_CLIENT_STATE_RECONNECTING);
		/* TRANSLATORS: %s says why, e.g. “the connection to the server was lost” */
		pb_tunnel_client_add_event(self, _("Offline: %s"), reason);
		g_debug("Tunnel lost: %s", reason); /* "event" says it */
		pb_tunnel_client_schedule_retry(self);
		return;
	}
	pb_tunnel_client_set_state(self, PB_TUNNEL_CLIENT_STATE_OFFLINE);
	/* TRANSLATORS: %s says why, e.g. “the connection to the server was lost” */
	pb_tunnel_client_add_event(self, _("Offline: %s"), reason);
	g_signal_emit(self, pb_tunnel_client_signals[PB_TUNNEL_CLIENT_SIGNAL_DISCONNECTED], 0,
		      reason);
}

static void
pb_tunnel_client_start_tunnel(PbTunnelClient *self, GIOStream *connection, GBytes *leftover)
{
	self->tunnel =
	    pb_tunnel_new(connection, leftover, self->server_uri, SOUP_WEBSOCKET_CONNECTION_CLIENT);
	pb_tunnel_set_keepalive(self->tunnel, self->keepalive_s);
	pb_tunnel_set_max_message_size(self->tunnel, self->max_message_size);
	g_signal_connect(self->tunnel, "open-requested",
			 G_CALLBACK(pb_tunnel_client_open_requested_cb), self);
	g_signal_connect(self->tunnel, "hello", G_CALLBACK(pb_tunnel_client_hello_cb), self);
	g_signal_connect(self->tunnel, "protocol-error",
			 G_CALLBACK(pb_tunnel_client_protocol_error_cb), self);
	g_signal_connect(self->tunnel, "resumed", G_CALLBACK(pb_tunnel_client_resumed_cb), self);
	g_signal_connect(self->tunnel, "closed", G_CALLBACK(pb_tunnel_client_tunnel_closed_cb),
			 self);
}

static void
pb_tunnel_client_upgraded_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GBytes) leftover = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GIOStream) connection = pb_ws_dial_finish(res, &leftover, &error);

	if (connection == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	pb_tunnel_client_start_tunnel(g_task_get_source_object(task), connection, leftover);
	g_task_return_boolean(task, TRUE);
}

/* Dials the server and upgrades; the task returns once the WebSocket is up. */
static void
pb_tunnel_client_dial(PbTunnelClient *self, GCancellable *cancellable, GAsyncReadyCallback callback,
		      gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autofree char *uri = g_uri_to_string(self->server_uri);
	g_autofree char *services = pb_client_services_get_header(self->services);
	const PbWsDialOptions options = {
	    .uri = self->server_uri,
	    .features = pb_tunnel_client_get_asked(self),
	    .token = self->token,
	    .tls_database = self->tls_database,
	    .pin_sha256 = self->pin_sha256,
	    .session = self->session,
	    .name = self->name,
	    .services = services,
	};

	/* TRANSLATORS: %s is the server's URL, ws://host:port/http-stream */
	pb_tunnel_client_add_event(self, _("Connecting to %s"), uri);
	pb_ws_dial_async(&options, cancellable, pb_tunnel_client_upgraded_cb,
			 g_steal_pointer(&task));
}

/* Finishes a dial: a failure leaves the client offline, unless @retrying and it will dial
 * again. Returns FALSE with @error set. */
static gboolean
pb_tunnel_client_dial_finish(PbTunnelClient *self, GAsyncResult *res, gboolean retrying,
			     GError **error)
{
	g_autoptr(GError) error_local = NULL;

	if (g_task_propagate_boolean(G_TASK(res), &error_local))
		return TRUE;
	if (!g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		/* TRANSLATORS: %s says why */
		pb_tunnel_client_add_event(self, _("Cannot open a tunnel: %s"),
					   error_local->message);
	}
	if (!retrying)
		pb_tunnel_client_set_state(self, PB_TUNNEL_CLIENT_STATE_OFFLINE);
	g_propagate_error(error, g_steal_pointer(&error_local));
	return FALSE;
}

static void
pb_tunnel_client_dialled_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data); /* the caller's */
	g_autoptr(GError) error = NULL;

	if (!pb_tunnel_client_dial_finish(PB_TUNNEL_CLIENT(source), res, FALSE, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/**
 * pb_tunnel_client_connect_async:
 *
 * Connects to the server and upgrades to a WebSocket. Then "ready" follows when the server
 * says where the tunnel is, and "disconnected" when it ends.
 */
void
pb_tunnel_client_connect_async(PbTunnelClient *self, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));
	g_return_if_fail(self->tunnel == NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	/* via an integer: ISO C has no function → object pointer conversion */
	g_task_set_source_tag(task, (gpointer)(guintptr)pb_tunnel_client_connect_async);
	pb_tunnel_client_set_state(self, PB_TUNNEL_CLIENT_STATE_CONNECTING);
	pb_tunnel_client_dial(self, cancellable, pb_tunnel_client_dialled_cb,
			      g_steal_pointer(&task));
}

gboolean
pb_tunnel_client_connect_finish(PbTunnelClient *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* A dial after a lost tunnel: on failure, the next one after a longer wait, unless the
 * server refused us for good (401, 403): then the client gives up, "disconnected". */
static void
pb_tunnel_client_redialled_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(source);
	g_autoptr(GError) error = NULL;
	g_autofree char *reason = NULL;
	gboolean permanent;

	if (pb_tunnel_client_dial_finish(self, res, TRUE, &error) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	permanent = g_error_matches(error, PB_ERROR, PB_ERROR_UNAUTHORIZED) ||
		    g_error_matches(error, PB_ERROR, PB_ERROR_NAME_TAKEN);
	if (!permanent && self->auto_reconnect) {
		pb_tunnel_client_schedule_retry(self);
		return;
	}
	pb_tunnel_client_set_state(self, PB_TUNNEL_CLIENT_STATE_OFFLINE);
	reason = pb_text_escape(error->message, -1);
	g_signal_emit(self, pb_tunnel_client_signals[PB_TUNNEL_CLIENT_SIGNAL_DISCONNECTED], 0,
		      reason);
}

static gboolean
pb_tunnel_client_retry_cb(gpointer user_data)
{
	PbTunnelClient *self = PB_TUNNEL_CLIENT(user_data);

	self->retry_id = 0;
	pb_tunnel_client_dial(self, self->cancellable, pb_tunnel_client_redialled_cb, NULL);
	return G_SOURCE_REMOVE;
}

/* Waits a little longer each time (pb_backoff_delay_ms()), then dials again. */
static void
pb_tunnel_client_schedule_retry(PbTunnelClient *self)
{
	guint delay = pb_backoff_delay_ms(self->attempt++, g_random_double());

	/* TRANSLATORS: %.1f is a number of seconds */
	pb_tunnel_client_add_event(self, _("Reconnecting in %.1f s"), delay / 1000.0);
	g_info("Reconnecting in %u ms", delay);
	self->retry_id = g_timeout_add(delay, pb_tunnel_client_retry_cb, self);
}

/**
 * pb_tunnel_client_reconnect:
 *
 * Closes the tunnel, if there is one, and dials the server again: "ready" follows with the
 * new public port, or "disconnected" if the server cannot be reached. Does nothing while
 * the client is dialling already, or after pb_tunnel_client_close().
 */
void
pb_tunnel_client_reconnect(PbTunnelClient *self)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));

	if (self->retry_id != 0) {
		/* waiting out a backoff: dial now */
		g_clear_handle_id(&self->retry_id, g_source_remove);
		pb_tunnel_client_dial(self, self->cancellable, pb_tunnel_client_redialled_cb, NULL);
		return;
	}
	if (self->state == PB_TUNNEL_CLIENT_STATE_CONNECTING ||
	    self->state == PB_TUNNEL_CLIENT_STATE_RECONNECTING ||
	    g_cancellable_is_cancelled(self->cancellable))
		return;
	if (self->tunnel != NULL) {
		g_autoptr(PbTunnel) old = g_object_ref(self->tunnel);

		/* first deaf to it: its end is no "disconnected" */
		pb_tunnel_client_drop_tunnel(self);
		pb_tunnel_close(old, PB_CLOSE_COMING_BACK, "reconnecting");
		pb_lost_tunnel_keep(self->lost, old); /* its connections wait (`resume`) */
	}
	pb_tunnel_client_clear_hello(self);
	pb_tunnel_client_set_state(self, PB_TUNNEL_CLIENT_STATE_RECONNECTING);
	pb_tunnel_client_dial(self, self->cancellable, pb_tunnel_client_redialled_cb, NULL);
}

/**
 * pb_tunnel_client_network_changed:
 *
 * The machine's network changed (GNetworkMonitor): a tunnel that is up is checked at once
 * (pb_tunnel_probe(), 3 s) instead of at the next keepalive deadline, and a client waiting
 * out a backoff dials now, as the network it failed on is not the one it has.
 */
void
pb_tunnel_client_network_changed(PbTunnelClient *self)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));

	if (self->retry_id != 0) {
		g_info("The network changed: dialling now");
		pb_tunnel_client_reconnect(self);
	} else if (self->state == PB_TUNNEL_CLIENT_STATE_ONLINE && self->tunnel != NULL) {
		g_info("The network changed: checking that the server still answers");
		pb_tunnel_probe(self->tunnel, PB_NETWORK_PROBE_TIMEOUT);
	}
}

void
pb_tunnel_client_close(PbTunnelClient *self)
{
	g_return_if_fail(PB_IS_TUNNEL_CLIENT(self));

	g_cancellable_cancel(self->cancellable);
	g_clear_handle_id(&self->retry_id, g_source_remove);
	pb_lost_tunnel_drop(self->lost);
	if (self->tunnel != NULL)
		pb_tunnel_close(self->tunnel, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "client quit");
}
