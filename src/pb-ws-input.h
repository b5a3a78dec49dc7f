/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PB_TYPE_WS_INPUT (pb_ws_input_get_type())
G_DECLARE_FINAL_TYPE(PbWsInput, pb_ws_input, PB, WS_INPUT, GInputStream)

PbWsInput *
pb_ws_input_new(GInputStream *base, GBytes *leftover);
void
pb_ws_input_set_paused(PbWsInput *self, gboolean paused);
gboolean
pb_ws_input_get_paused(PbWsInput *self);

G_END_DECLS
