/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

GProxyResolver *
pb_proxy_resolver_new_from_environ(const char *const *envp);
GProxyResolver *
pb_proxy_resolver_for_server(void);

G_END_DECLS
