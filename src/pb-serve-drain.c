/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-serve-drain.h"

#include <signal.h>

#include "pb-signal.h"

/*
 * serve --drain SECONDS: behind a load balancer an instance that simply stops cuts its
 * tunnels while the balancer still sends it new clients until its health checks notice.
 * So SIGTERM first makes /healthz answer 503 for SECONDS (the balancer marks the instance
 * down and sends new clients elsewhere) while every tunnel is still served, and only then
 * ends the main loop, and the server closes as it does without --drain. A second SIGTERM
 * ends it at once; SIGINT and SIGHUP always do.
 */

struct _PbServeDrain {
	PbCli *cli;		/* (unowned) its sigterm source is ours */
	PbTunnelServer *server; /* (owned) */
	guint seconds;
	guint timeout_id; /* the end of the drain, once it began */
};

static gboolean
pb_serve_drain_done_cb(gpointer user_data)
{
	PbServeDrain *self = user_data;

	self->timeout_id = 0;
	g_message("Drained: stopping");
	g_main_loop_quit(self->cli->loop);
	return G_SOURCE_REMOVE;
}

static gboolean
pb_serve_drain_sigterm_cb(gpointer user_data)
{
	PbServeDrain *self = user_data;

	self->cli->status = EXIT_SUCCESS;
	if (self->timeout_id != 0) {
		g_main_loop_quit(self->cli->loop);
		return G_SOURCE_CONTINUE;
	}
	g_message("Draining: /healthz answers 503 for %u s, tunnels are served until then",
		  self->seconds);
	pb_tunnel_server_set_draining(self->server, TRUE);
	self->timeout_id = g_timeout_add_seconds(self->seconds, pb_serve_drain_done_cb, self);
	return G_SOURCE_CONTINUE;
}

/**
 * pb_serve_drain_new:
 * @cli: the command's run, after pb_cli_begin()
 * @seconds: how long to drain; 0 = not at all, SIGTERM stops at once
 *
 * Takes SIGTERM over from @cli when @seconds is not 0.
 */
PbServeDrain *
pb_serve_drain_new(PbCli *cli, PbTunnelServer *server, guint seconds)
{
	PbServeDrain *self = g_new0(PbServeDrain, 1);

	self->cli = cli;
	self->server = g_object_ref(server);
	self->seconds = seconds;
	if (seconds > 0) {
		guint ending = cli->sigterm; /* replaced without a moment when SIGTERM is fatal */

		cli->sigterm = pb_signal_add(SIGTERM, pb_serve_drain_sigterm_cb, self);
		g_clear_handle_id(&ending, pb_signal_remove);
	}
	return self;
}

void
pb_serve_drain_free(PbServeDrain *self)
{
	g_clear_handle_id(&self->timeout_id, g_source_remove);
	if (self->seconds > 0) /* no signal must reach us freed */
		g_clear_handle_id(&self->cli->sigterm, pb_signal_remove);
	g_object_unref(self->server);
	g_free(self);
}
