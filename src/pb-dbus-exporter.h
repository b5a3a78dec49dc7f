/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-tunnel-client.h"

G_BEGIN_DECLS

/* The well-known name the first client on a bus owns; further ones own
 * PB_DBUS_BUS_NAME ".instance<N>", the first free N from 2. */
#define PB_DBUS_BUS_NAME    APP_ID ".Forward"
#define PB_DBUS_OBJECT_PATH "/io/github/piggyback/PiggyBack/Forward"
#define PB_DBUS_INTERFACE   APP_ID ".Forward1"

/* The counters (bytes, connections) reach the bus at most this often: 4 times a second. */
#define PB_DBUS_COUNTER_INTERVAL_MS 250

#define PB_TYPE_DBUS_EXPORTER (pb_dbus_exporter_get_type())
G_DECLARE_FINAL_TYPE(PbDbusExporter, pb_dbus_exporter, PB, DBUS_EXPORTER, GObject)

PbDbusExporter *
pb_dbus_exporter_new(PbTunnelClient *client);
void
pb_dbus_exporter_start(PbDbusExporter *self, GDBusConnection *connection);
const char *
pb_dbus_exporter_get_bus_name(PbDbusExporter *self);
void
pb_dbus_exporter_stop(PbDbusExporter *self);

G_END_DECLS
