/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PB_TYPE_WS_OUTPUT (pb_ws_output_get_type())
G_DECLARE_FINAL_TYPE(PbWsOutput, pb_ws_output, PB, WS_OUTPUT, GOutputStream)

PbWsOutput *
pb_ws_output_new(GOutputStream *base, gboolean masked);
void
pb_ws_output_set_socket(PbWsOutput *self, GSocket *socket);
void
pb_ws_output_send(PbWsOutput *self, const guint8 *frame, gsize len);
gsize
pb_ws_output_send_message(PbWsOutput *self, guint8 *message, gsize len);
gsize
pb_ws_output_send_message_parts(PbWsOutput *self, guint8 *head, gsize head_len,
				const guint8 *payload, gsize payload_len);
guint64
pb_ws_output_get_sent(PbWsOutput *self);
void
pb_ws_output_watch(PbWsOutput *self, guint64 sent);

G_END_DECLS
