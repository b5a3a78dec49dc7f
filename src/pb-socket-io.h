/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

gssize
pb_socket_io_receive(GSocket *socket, void *buf, gsize size, GError **error);
gssize
pb_socket_io_send(GSocket *socket, const GOutputVector *vectors, gsize n_vectors, GError **error);

G_END_DECLS
