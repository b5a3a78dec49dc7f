/* SPDX-License-Identifier: ISC */
#pragma once

#include "pb-console.h"
#include "pb-tunnel-client.h"
#include "pb-tunnel-server.h"

G_BEGIN_DECLS

#define PB_TYPE_DASHBOARD_VIEW (pb_dashboard_view_get_type())
G_DECLARE_FINAL_TYPE(PbDashboardView, pb_dashboard_view, PB, DASHBOARD_VIEW, GObject)

PbDashboardView *
pb_dashboard_view_new_for_client(PbTunnelClient *client, PbConsole *console);
PbDashboardView *
pb_dashboard_view_new_for_server(PbTunnelServer *server, const char *listen_url,
				 PbConsole *console);
void
pb_dashboard_view_add_event(PbDashboardView *self, gint64 time, const char *message);
void
pb_dashboard_view_start(PbDashboardView *self);
void
pb_dashboard_view_stop(PbDashboardView *self);

G_END_DECLS
