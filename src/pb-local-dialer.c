/* SPDX-License-Identifier: ISC */

/*
 * How `forward` reaches its local service, once per OPEN. A GSocketClient without proxy
 * lookup (the service is local, and a proxy set for other traffic must not apply), plus:
 *
 * - It dials the address the last connection reached, if there is one, else the host
 *   name: "localhost" resolves to ::1 first, and a service listening on 127.0.0.1 only
 *   would cost every connection a refused attempt (a fifth of the connections per second).
 *   GNetworkAddress caches the resolution, not which address works. When that address
 *   refuses, the name is resolved again (the service moved).
 * - That address is dialed without GSocketClient: a non-blocking connect() watched by the
 *   context's PbPoller. Through GSocketClient every connection cost an address enumerator,
 *   tasks and cancellables of its own, and four wake-ups of the main context (eventfd
 *   writes) once connected: a tenth of forward's system calls per connection.
 * - A dial without an answer ends after PB_LOCAL_CONNECT_TIMEOUT_S. GSocketClient's own
 *   timeout (g_socket_client_set_timeout()) leaks the dial's data in GLib 2.74, so a timer
 *   cancels the dial instead.
 */

#include "config.h"

#include "pb-local-dialer.h"

#include "pb-poller.h"

struct _PbLocalDialer {
	GObject parent_instance;
	GSocketConnectable *service; /* (owned) host and port, as given */
	GSocketClient *client;	     /* (owned) */
	GSocketAddress *last;	     /* (owned) (nullable) where the last connection went */
	guint timeout_s;	     /* 0 = the kernel's */
};

G_DEFINE_FINAL_TYPE(PbLocalDialer, pb_local_dialer, G_TYPE_OBJECT)

/* One dial, the GTask's data. */
typedef struct {
	GCancellable *caller;	   /* (owned) (nullable) the caller's cancellable */
	gulong caller_id;	   /* our handler on it */
	GCancellable *cancellable; /* (owned) of the current attempt: timeout or caller */
	guint timeout_id;
	gboolean timed_out;
	GSocket *socket;      /* (owned) (nullable) that attempt's socket, connecting */
	PbPollerWatch *watch; /* (owned) (nullable) waits for @socket to connect */
} PbLocalDial;

static void
pb_local_dial_stop_attempt(PbLocalDial *dial)
{
	g_clear_handle_id(&dial->timeout_id, g_source_remove);
	g_clear_object(&dial->cancellable);
	g_clear_pointer(&dial->watch, pb_poller_watch_free); /* before the socket is closed */
	g_clear_object(&dial->socket);
}

static void
pb_local_dial_free(PbLocalDial *dial)
{
	pb_local_dial_stop_attempt(dial);
	if (dial->caller != NULL) {
		g_cancellable_disconnect(dial->caller, dial->caller_id);
		g_object_unref(dial->caller);
	}
	g_free(dial);
}

static void
pb_local_dialer_attempt(PbLocalDialer *self, GTask *task);

static void
pb_local_dialer_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	PbLocalDialer *self = g_task_get_source_object(task);
	PbLocalDial *dial = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	GSocketConnection *connection =
	    g_socket_client_connect_finish(G_SOCKET_CLIENT(source), res, &error);

	pb_local_dial_stop_attempt(dial);
	if (connection != NULL) {
		g_clear_object(&self->last);
		self->last = g_socket_connection_get_remote_address(connection, NULL);
		g_task_return_pointer(task, connection, g_object_unref);
	} else if (dial->timed_out) {
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
					"no answer within %u s", self->timeout_s);
	} else {
		g_task_return_error(task, g_steal_pointer(&error));
	}
}

/* The direct attempt's socket connected (@error NULL), or could not (@error taken). */
static void
pb_local_dialer_direct_done(PbLocalDialer *self, GTask *task, GError *error)
{
	PbLocalDial *dial = g_task_get_task_data(task);
	g_autoptr(GSocket) socket = g_steal_pointer(&dial->socket);

	pb_local_dial_stop_attempt(dial);
	if (dial->caller != NULL && g_cancellable_is_cancelled(dial->caller)) {
		g_clear_error(&error);
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
	} else if (error == NULL) {
		/* non-blocking, as GSocketClient leaves it */
		g_task_return_pointer(task, g_socket_connection_factory_create_connection(socket),
				      g_object_unref);
	} else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES)) {
		g_task_return_error(task, error);
	} else {
		g_error_free(error);
		g_clear_object(&self->last); /* the service moved: resolve the name again */
		pb_local_dialer_attempt(self, g_object_ref(task));
	}
}

static void
pb_local_dial_writable_cb(gpointer user_data)
{
	g_autoptr(GTask) task = user_data; /* the attempt's reference */
	PbLocalDial *dial = g_task_get_task_data(task);
	GError *error = NULL;

	g_socket_check_connect_result(dial->socket, &error);
	pb_local_dialer_direct_done(g_task_get_source_object(task), task, error);
}

/* Dials dialer->last with a non-blocking connect() watched by the PbPoller; takes @task. */
static void
pb_local_dialer_attempt_direct(PbLocalDialer *self, GTask *task)
{
	PbLocalDial *dial = g_task_get_task_data(task);
	GError *error = NULL;
	gboolean pending = FALSE;

	dial->socket = g_socket_new(g_socket_address_get_family(self->last), G_SOCKET_TYPE_STREAM,
				    G_SOCKET_PROTOCOL_TCP, &error);
	if (dial->socket != NULL) {
		g_socket_set_blocking(dial->socket, FALSE);
		pending = !g_socket_connect(dial->socket, self->last, NULL, &error) &&
			  g_error_matches(error, G_IO_ERROR, G_IO_ERROR_PENDING);
		if (pending)
			g_clear_error(&error);
	}
	if (pending) {
		dial->watch = pb_poller_watch_new(g_socket_get_fd(dial->socket), NULL,
						  pb_local_dial_writable_cb, task, &error);
		if (dial->watch != NULL) {
			pb_poller_watch_set(dial->watch, FALSE, TRUE);
			return; /* the watch has the reference */
		}
	}
	/* connected at once, or failed */
	pb_local_dialer_direct_done(self, task, error);
	g_object_unref(task);
}

static gboolean
pb_local_dial_timeout_cb(gpointer user_data)
{
	GTask *task = user_data;
	PbLocalDial *dial = g_task_get_task_data(task);

	dial->timeout_id = 0;
	dial->timed_out = TRUE;
	if (dial->watch != NULL) { /* a direct attempt */
		PbLocalDialer *self = g_task_get_source_object(task);

		pb_local_dial_stop_attempt(dial);
		g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
					"no answer within %u s", self->timeout_s);
		g_object_unref(task); /* the attempt's reference */
		return G_SOURCE_REMOVE;
	}
	g_cancellable_cancel(dial->cancellable);
	return G_SOURCE_REMOVE;
}

/* The caller cancelled: so is a GSocketClient attempt (from any thread: GCancellable is
 * thread-safe). A direct attempt says so when its connect() ends, within the timeout; a local
 * service answers or refuses at once. */
static void
pb_local_dial_caller_cancelled_cb(GCancellable *caller, gpointer user_data)
{
	PbLocalDial *dial = user_data;

	if (dial->cancellable != NULL)
		g_cancellable_cancel(dial->cancellable);
}

static void
pb_local_dialer_attempt(PbLocalDialer *self, GTask *task)
{
	PbLocalDial *dial = g_task_get_task_data(task);

	if (self->timeout_s > 0)
		dial->timeout_id =
		    g_timeout_add(self->timeout_s * 1000, pb_local_dial_timeout_cb, task);
	if (self->last != NULL) {
		pb_local_dialer_attempt_direct(self, task);
		return;
	}
	dial->cancellable = g_cancellable_new();
	if (dial->caller != NULL && g_cancellable_is_cancelled(dial->caller))
		g_cancellable_cancel(dial->cancellable);
	g_socket_client_connect_async(self->client, self->service, dial->cancellable,
				      pb_local_dialer_connected_cb, task);
}

/**
 * pb_local_dialer_dial_async:
 * @cancellable: (nullable): ends the dial with %G_IO_ERROR_CANCELLED
 *
 * Connects to the local service; fails with %G_IO_ERROR_TIMED_OUT when it does not answer
 * in time.
 */
void
pb_local_dialer_dial_async(PbLocalDialer *self, GCancellable *cancellable,
			   GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(self, NULL, callback, user_data);
	PbLocalDial *dial = g_new0(PbLocalDial, 1);

	g_task_set_source_tag(task, (gpointer)(guintptr)pb_local_dialer_dial_async);
	g_task_set_task_data(task, dial, (GDestroyNotify)pb_local_dial_free);
	if (cancellable != NULL) {
		dial->caller = g_object_ref(cancellable);
		dial->caller_id = g_cancellable_connect(
		    cancellable, G_CALLBACK(pb_local_dial_caller_cancelled_cb), dial, NULL);
	}
	pb_local_dialer_attempt(self, task);
}

/* Returns: (transfer full) (nullable): the connection */
GSocketConnection *
pb_local_dialer_dial_finish(PbLocalDialer *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);

	return g_task_propagate_pointer(G_TASK(result), error);
}

/* Seconds a connection attempt may take; 0 = as long as the kernel tries. */
void
pb_local_dialer_set_timeout(PbLocalDialer *self, guint timeout_s)
{
	g_return_if_fail(PB_IS_LOCAL_DIALER(self));

	self->timeout_s = timeout_s;
}

static void
pb_local_dialer_finalize(GObject *object)
{
	PbLocalDialer *self = PB_LOCAL_DIALER(object);

	g_object_unref(self->service);
	g_object_unref(self->client);
	g_clear_object(&self->last);
	G_OBJECT_CLASS(pb_local_dialer_parent_class)->finalize(object);
}

static void
pb_local_dialer_class_init(PbLocalDialerClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = pb_local_dialer_finalize;
}

static void
pb_local_dialer_init(PbLocalDialer *self)
{
	self->client = g_socket_client_new();
	g_socket_client_set_enable_proxy(self->client, FALSE);
	self->timeout_s = PB_LOCAL_CONNECT_TIMEOUT_S;
}

PbLocalDialer *
pb_local_dialer_new(const char *host, guint16 port)
{
	PbLocalDialer *self = g_object_new(PB_TYPE_LOCAL_DIALER, NULL);

	self->service = g_network_address_new(host, port);
	return self;
}
