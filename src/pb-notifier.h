/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-tunnel-client.h"

G_BEGIN_DECLS

#define PB_TYPE_NOTIFIER (pb_notifier_get_type())
G_DECLARE_FINAL_TYPE(PbNotifier, pb_notifier, PB, NOTIFIER, GObject)

PbNotifier *
pb_notifier_new(PbTunnelClient *client, GApplication *application);

G_END_DECLS
