/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* A local service that does not answer a connection attempt by then (a host that drops
 * it, a full listen backlog) gets the public connection closed, not left for the kernel's
 * two minutes of SYN retries. */
#define PB_LOCAL_CONNECT_TIMEOUT_S 10

#define PB_TYPE_LOCAL_DIALER (pb_local_dialer_get_type())
G_DECLARE_FINAL_TYPE(PbLocalDialer, pb_local_dialer, PB, LOCAL_DIALER, GObject)

PbLocalDialer *
pb_local_dialer_new(const char *host, guint16 port);
void
pb_local_dialer_set_timeout(PbLocalDialer *self, guint timeout_s);
void
pb_local_dialer_dial_async(PbLocalDialer *self, GCancellable *cancellable,
			   GAsyncReadyCallback callback, gpointer user_data);
GSocketConnection *
pb_local_dialer_dial_finish(PbLocalDialer *self, GAsyncResult *result, GError **error);

G_END_DECLS
