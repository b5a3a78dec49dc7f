/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One service a client exposes: forward --expose [NAME=][HOST:]PORT, or -p/-h/--name. */
typedef struct {
	char *name; /* (nullable) the name it asks for (serve --domain) */
	char *host; /* the local service's host */
	guint16 port;
} PbServiceSpec;

PbServiceSpec *
pb_service_spec_new(const char *name, const char *host, guint16 port);
PbServiceSpec *
pb_service_spec_parse(const char *text, GError **error);
char *
pb_service_spec_get_address(const PbServiceSpec *spec);
char *
pb_service_spec_get_label(const PbServiceSpec *spec);
void
pb_service_spec_free(PbServiceSpec *spec);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbServiceSpec, pb_service_spec_free)

GPtrArray *
pb_services_header_parse(const char *value, guint max, GError **error);
char *
pb_services_header_format(GPtrArray *specs);

G_END_DECLS
