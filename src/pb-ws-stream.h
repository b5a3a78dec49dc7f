/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-ws-input.h"
#include "pb-ws-output.h"

G_BEGIN_DECLS

#define PB_TYPE_WS_STREAM (pb_ws_stream_get_type())
G_DECLARE_FINAL_TYPE(PbWsStream, pb_ws_stream, PB, WS_STREAM, GIOStream)

PbWsStream *
pb_ws_stream_new(GIOStream *base, GBytes *leftover, gboolean server);
PbWsInput *
pb_ws_stream_get_input(PbWsStream *self);
PbWsOutput *
pb_ws_stream_get_output(PbWsStream *self);
GIOStream *
pb_ws_stream_unwrap_soup(GIOStream *stream);

G_END_DECLS
