/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PB_TYPE_WS_OUTPUT (pb_ws_output_get_type())
G_DECLARE_FINAL_TYPE(PbWsOutput, pb_ws_output, PB, WS_OUTPUT, GOutputStream)

PbWsOutput *
pb_ws_output_new(GOutputStream *base);
guint64
pb_ws_output_get_data_written(PbWsOutput *self);
void
pb_ws_output_watch(PbWsOutput *self, guint64 data_written);

G_END_DECLS
