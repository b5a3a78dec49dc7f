/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-client-services.h"

#include "pb-error.h"

/*
 * The services a client exposes after its first one (forward --expose), which PbTunnelClient
 * keeps as it always did: it asks for them in the upgrade (Piggyback-Services), learns
 * where they are from HELLO's `services`, and dials the local service an OPEN names.
 */

struct _PbClientServices {
	GPtrArray *services; /* (owned) PbClientService; OPEN's index 1 is the first */
};

static void
pb_client_service_free(PbClientService *service)
{
	pb_service_spec_free(service->spec);
	g_free(service->label);
	g_free(service->address);
	g_clear_object(&service->dialer);
	g_free(service->access_url);
	g_free(service->http_url);
	g_free(service->name);
	g_free(service);
}

PbClientServices *
pb_client_services_new(void)
{
	PbClientServices *self = g_new0(PbClientServices, 1);

	self->services = g_ptr_array_new_with_free_func((GDestroyNotify)pb_client_service_free);
	return self;
}

/* One more service, after those added before. */
void
pb_client_services_add(PbClientServices *self, const PbServiceSpec *spec)
{
	PbClientService *service = g_new0(PbClientService, 1);

	service->spec = pb_service_spec_new(spec->name, spec->host, spec->port);
	service->label = pb_service_spec_get_label(spec);
	service->address = pb_service_spec_get_address(spec);
	service->dialer = pb_local_dialer_new(spec->host, spec->port);
	g_ptr_array_add(self->services, service);
}

guint
pb_client_services_get_len(PbClientServices *self)
{
	return self->services->len;
}

/* The further service @index (0 for the first of them). */
const PbClientService *
pb_client_services_get(PbClientServices *self, guint index)
{
	g_return_val_if_fail(index < self->services->len, NULL);
	return self->services->pdata[index];
}

/* The dialer of the service OPEN's @index names (1 for the first further one); %NULL for
 * an index the client has no service for: a server that made it up. */
PbLocalDialer *
pb_client_services_get_dialer(PbClientServices *self, guint32 index)
{
	if (index == 0 || index > self->services->len)
		return NULL;
	return ((PbClientService *)self->services->pdata[index - 1])->dialer;
}

/* Returns: (nullable): the Piggyback-Services header's value; %NULL without services */
char *
pb_client_services_get_header(PbClientServices *self)
{
	g_autoptr(GPtrArray) specs = NULL;

	if (self->services->len == 0)
		return NULL;
	specs = g_ptr_array_new();
	g_ptr_array_add(specs, NULL); /* the first service is not in the header */
	for (guint i = 0; i < self->services->len; i++)
		g_ptr_array_add(specs, ((PbClientService *)self->services->pdata[i])->spec);
	return pb_services_header_format(specs);
}

/**
 * pb_client_services_take_hello:
 * @named: whether names are in use (the `name` feature)
 * @url_func: builds a named service's HTTP URL
 *
 * Takes where the server put each service from @hello: it must list each one.
 *
 * Returns: FALSE with @error set if it does not
 */
gboolean
pb_client_services_take_hello(PbClientServices *self, const PbHello *hello, gboolean named,
			      PbClientServicesUrlFunc url_func, gpointer user_data, GError **error)
{
	guint given = hello->services != NULL ? hello->services->len : 0;

	if (given != self->services->len) {
		g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
			    "HELLO lists %u further services, not the %u asked for", given,
			    self->services->len);
		return FALSE;
	}
	for (guint i = 0; i < given; i++) {
		const PbHelloService *place = hello->services->pdata[i];
		PbClientService *service = self->services->pdata[i];
		PbHello where = *hello;

		g_free(service->access_url);
		g_free(service->http_url);
		g_free(service->name);
		where.tunnel_port = place->tunnel_port;
		service->access_url =
		    place->tunnel_port != 0 ? pb_hello_get_access_url(&where, "tcp") : NULL;
		service->name = named ? g_strdup(place->name) : NULL;
		service->http_url = service->name != NULL
					? url_func(hello, service->name, user_data)
					: pb_hello_get_access_url(&where, "http");
	}
	return TRUE;
}

/* Forgets what the last HELLO said: the ports went away with the tunnel. */
void
pb_client_services_clear_hello(PbClientServices *self)
{
	for (guint i = 0; i < self->services->len; i++) {
		PbClientService *service = self->services->pdata[i];

		g_clear_pointer(&service->access_url, g_free);
		g_clear_pointer(&service->http_url, g_free);
		g_clear_pointer(&service->name, g_free);
	}
}

/* How long each dialer waits for its local service (pb_local_dialer_set_timeout()). */
void
pb_client_services_set_timeout(PbClientServices *self, guint timeout_s)
{
	for (guint i = 0; i < self->services->len; i++)
		pb_local_dialer_set_timeout(((PbClientService *)self->services->pdata[i])->dialer,
					    timeout_s);
}

void
pb_client_services_free(PbClientServices *self)
{
	if (self == NULL)
		return;
	g_ptr_array_unref(self->services);
	g_free(self);
}
