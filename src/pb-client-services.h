/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-hello.h"
#include "pb-local-dialer.h"
#include "pb-services.h"

G_BEGIN_DECLS

/* A further service of a client (forward --expose), and where the server put it. */
typedef struct {
	PbServiceSpec *spec;   /* (owned) what was asked for */
	char *label;	       /* (owned) its name, else its address: for lines and views */
	char *address;	       /* (owned) host:port of the local service */
	PbLocalDialer *dialer; /* (owned) connects to it */
	char *access_url;      /* (owned) (nullable) until HELLO; none from names only */
	char *http_url;	       /* (owned) (nullable) until HELLO */
	char *name;	       /* (owned) (nullable) the name the server gave */
} PbClientService;

/* Builds a service's named URL, as the client builds its first one's. */
typedef char *(*PbClientServicesUrlFunc)(const PbHello *hello, const char *name,
					 gpointer user_data);

typedef struct _PbClientServices PbClientServices;

PbClientServices *
pb_client_services_new(void);
void
pb_client_services_add(PbClientServices *self, const PbServiceSpec *spec);
guint
pb_client_services_get_len(PbClientServices *self);
const PbClientService *
pb_client_services_get(PbClientServices *self, guint index);
PbLocalDialer *
pb_client_services_get_dialer(PbClientServices *self, guint32 index);
char *
pb_client_services_get_header(PbClientServices *self);
gboolean
pb_client_services_take_hello(PbClientServices *self, const PbHello *hello, gboolean named,
			      PbClientServicesUrlFunc url_func, gpointer user_data, GError **error);
void
pb_client_services_clear_hello(PbClientServices *self);
void
pb_client_services_set_timeout(PbClientServices *self, guint timeout_s);
void
pb_client_services_free(PbClientServices *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbClientServices, pb_client_services_free)

G_END_DECLS
