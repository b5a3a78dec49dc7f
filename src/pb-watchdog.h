/* SPDX-License-Identifier: ISC */
#pragma once

#include <libsoup/soup.h>

#include "pb-ws-input.h"

G_BEGIN_DECLS

/* Notices a WebSocket peer that stopped answering, and closes the WebSocket. */
typedef struct _PbWatchdog PbWatchdog;

PbWatchdog *
pb_watchdog_new(SoupWebsocketConnection *ws, PbWsInput *input);
void
pb_watchdog_heard(PbWatchdog *self);
void
pb_watchdog_set_interval(PbWatchdog *self, guint interval_s);
void
pb_watchdog_probe(PbWatchdog *self, guint timeout_s);
void
pb_watchdog_stop(PbWatchdog *self);
void
pb_watchdog_free(PbWatchdog *self);

G_END_DECLS
