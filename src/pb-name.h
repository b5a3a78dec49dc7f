/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A tunnel's name, the first label of its host name NAME.DOMAIN (serve --domain). */
#define PB_NAME_MAX_LEN 63

/* The upgrade request header that asks for a name (protocol v2 feature `name`). */
#define PB_NAME_HEADER "Piggyback-Name"

gboolean
pb_name_is_valid(const char *name);
char *
pb_name_new_random(void);
char *
pb_name_for_host(const char *host, const char *domain);
char *
pb_name_get_http_url(const char *name, const char *domain, const char *scheme, int port);

G_END_DECLS
