/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PB_TYPE_WS_INPUT (pb_ws_input_get_type())
G_DECLARE_FINAL_TYPE(PbWsInput, pb_ws_input, PB, WS_INPUT, GInputStream)

/**
 * PbWsDataFunc:
 * @conn_id: the DATA frame's connId
 * @data: (array length=len): the next payload bytes, unmasked; valid during the call
 * @user_data: what was given to pb_ws_input_set_data_func()
 *
 * Takes the payload of DATA messages on the fast path, in pieces, in stream order.
 */
typedef void (*PbWsDataFunc)(guint32 conn_id, const guint8 *data, gsize len, gpointer user_data);

/**
 * PbWsMessageFunc:
 * @message: (array length=len): a whole PiggyBack message, unmasked; valid during the call
 * @user_data: what was given to pb_ws_input_set_message_func()
 *
 * Takes short messages other than DATA (WINDOW, OPEN, EOF, CLOSE…) on the fast path, in
 * stream order.
 */
typedef void (*PbWsMessageFunc)(const guint8 *message, gsize len, gpointer user_data);

/* The longest message PbWsMessageFunc is given; longer ones go to libsoup. */
#define PB_WS_SHORT_MESSAGE 64

PbWsInput *
pb_ws_input_new(GInputStream *base, GBytes *leftover, gboolean masked);
void
pb_ws_input_set_data_func(PbWsInput *self, PbWsDataFunc func, gpointer user_data);
void
pb_ws_input_set_message_func(PbWsInput *self, PbWsMessageFunc func, gpointer user_data);
void
pb_ws_input_set_socket(PbWsInput *self, GSocket *socket);
guint64
pb_ws_input_get_n_fast_frames(PbWsInput *self);
void
pb_ws_input_set_max_message_size(PbWsInput *self, guint64 size);
void
pb_ws_input_set_paused(PbWsInput *self, gboolean paused);
gboolean
pb_ws_input_get_paused(PbWsInput *self);

G_END_DECLS
