/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-router.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "pb-client-hello.h"
#include "pb-name.h"
#include "pb-request-head.h"
#include "pb-text.h"

/*
 * Routing by Host without taking a byte from the connection: the router peeks
 * (MSG_PEEK) at what has arrived until it holds a whole request head. Then the
 * connection goes on as it came: to a tunnel, which reads the head again as its first
 * DATA, or to libsoup, which parses it as if nobody had looked. Peeked bytes stay
 * readable, so a head that is not complete yet is looked at again after a short wait
 * (5 ms, doubling up to 200 ms) rather than whenever the socket is readable.
 *
 * How long a head may take, and how many connections may be reading one, is PbAdmission's
 * (PbWebPort keeps every connection there until it is a tunnel's): it shuts a connection
 * down when its time is up, and the next look here finds it ended.
 */

#define PB_ROUTER_WAIT_FIRST_MS 5
#define PB_ROUTER_WAIT_MAX_MS	200

typedef struct {
	PbRouter *router;	       /* (unowned) */
	GSocketConnection *connection; /* (owned) */
	GIOStream *stream;	       /* (owned) handed on: @connection, or TLS over it */
	GSource *source;	       /* (owned) (nullable) waiting for bytes */
	guint wait_id;		       /* waiting before the next look */
	guint wait_ms;
	gboolean answered; /* an error was sent: reading to the end, then closing */
} PbRouted;

struct _PbRouter {
	char *domain; /* (owned) */
	PbRouterTunnelFunc tunnel_func;
	PbRouterServerFunc server_func;
	gpointer user_data;
	gboolean tls;	/* the connections are TLS: route by the ClientHello's server_name */
	GList *reading; /* (owned) PbRouted */
};

static void
pb_routed_free(PbRouted *routed)
{
	if (routed->source != NULL) {
		g_source_destroy(routed->source);
		g_source_unref(routed->source);
	}
	g_clear_handle_id(&routed->wait_id, g_source_remove);
	g_object_unref(routed->connection);
	g_object_unref(routed->stream);
	g_free(routed);
}

/* Done with @routed: the connection goes wherever its owner now is (or closes). */
static void
pb_router_forget(PbRouter *self, PbRouted *routed)
{
	self->reading = g_list_remove(self->reading, routed);
	pb_routed_free(routed);
}

static void
pb_router_watch(PbRouted *routed);

/* An error page, after the head it answers has been taken from the socket (bytes left
 * unread at close() make it a reset, which may destroy the answer in flight). */
static void
pb_router_answer(PbRouted *routed, gsize head_len, const char *status, const char *headers,
		 const char *text)
{
	GSocket *socket = g_socket_connection_get_socket(routed->connection);
	g_autofree char *answer = g_strdup_printf("HTTP/1.1 %s\r\n"
						  "Content-Type: text/plain; charset=utf-8\r\n"
						  "Content-Length: %zu\r\n"
						  "Connection: close\r\n"
						  "%s"
						  "\r\n"
						  "%s",
						  status, strlen(text), headers, text);
	g_autofree guint8 *head = g_malloc(head_len);

	/* the answer is small, the socket's send buffer empty: one non-blocking send */
	(void)g_socket_receive_with_blocking(socket, (char *)head, head_len, FALSE, NULL, NULL);
	(void)g_socket_send_with_blocking(socket, answer, strlen(answer), FALSE, NULL, NULL);
	g_socket_shutdown(socket, FALSE, TRUE, NULL);
	routed->answered = TRUE;
	pb_router_watch(routed);
}

/* Reads what the peer still sends after an answer, until it closes. */
static gboolean
pb_router_drain(PbRouted *routed)
{
	GSocket *socket = g_socket_connection_get_socket(routed->connection);
	char buf[4096];
	gssize n = g_socket_receive_with_blocking(socket, buf, sizeof buf, FALSE, NULL, NULL);

	return n > 0;
}

static void
pb_router_decide(PbRouter *self, PbRouted *routed, gsize head_len, const char *host)
{
	g_autofree char *name = host != NULL ? pb_name_for_host(host, self->domain) : NULL;
	g_autoptr(GSocketConnection) connection = g_object_ref(routed->connection);
	g_autoptr(GIOStream) stream = g_object_ref(routed->stream);
	g_autofree char *text = NULL;
	g_autofree char *escaped = NULL;
	g_autofree char *shown = NULL;

	PbRoute route = name != NULL ? self->tunnel_func(name, connection, stream, self->user_data)
				     : PB_ROUTE_UNKNOWN;

	if (route == PB_ROUTE_TAKEN) {
		pb_router_forget(self, routed);
		return;
	}
	/* TLS is not ours to answer before the handshake: the server itself says 404 */
	if ((name == NULL || self->tls) && self->server_func != NULL) {
		pb_router_forget(self, routed);
		self->server_func(connection, stream, self->user_data);
		return;
	}
	escaped = pb_text_escape(host != NULL ? host : "", -1);
	shown = pb_text_truncate(escaped, 255);
	if (route == PB_ROUTE_AWAY) {
		g_autofree char *retry =
		    g_strdup_printf("Retry-After: %u\r\n", PB_ROUTE_RETRY_AFTER_S);

		text = g_strdup_printf("The client of %s is away: it has a moment to come back.\n",
				       shown);
		pb_router_answer(routed, head_len, "503 Service Unavailable", retry, text);
		return;
	}
	text = g_strdup_printf("No tunnel is named %s.\n", shown);
	pb_router_answer(routed, head_len, "404 Not Found", "", text);
}

/* Looks at what has arrived; Returns: whether to look again when more arrives */
static gboolean
pb_router_peek(PbRouter *self, PbRouted *routed)
{
	static guint8 buf[PB_REQUEST_HEAD_MAX + 1024];
	GSocket *socket = g_socket_connection_get_socket(routed->connection);
	g_autofree char *host = NULL;
	gsize head_len = 0;
	gssize n;

	if (routed->answered) {
		if (pb_router_drain(routed))
			return TRUE;
		pb_router_forget(self, routed);
		return FALSE;
	}
	n = recv(g_socket_get_fd(socket), buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return TRUE;
	if (n <= 0) { /* ended, by the peer or by PbAdmission */
		pb_router_forget(self, routed);
		return FALSE;
	}
	if (self->tls) {
		switch (pb_client_hello_parse(buf, (gsize)n, &host)) {
		case PB_CLIENT_HELLO_INCOMPLETE:
			if ((gsize)n < sizeof buf)
				break;
			G_GNUC_FALLTHROUGH;
		case PB_CLIENT_HELLO_INVALID:
		case PB_CLIENT_HELLO_COMPLETE:
		default:
			pb_router_decide(self, routed, 0, host);
			return FALSE;
		}
		routed->wait_ms = routed->wait_ms == 0
				      ? PB_ROUTER_WAIT_FIRST_MS
				      : MIN(routed->wait_ms * 2, PB_ROUTER_WAIT_MAX_MS);
		return FALSE;
	}
	switch (pb_request_head_parse(buf, MIN((gsize)n, PB_REQUEST_HEAD_MAX), &head_len, &host)) {
	case PB_REQUEST_HEAD_INCOMPLETE:
		/* peeked bytes keep the socket readable: wait a little before looking again */
		routed->wait_ms = routed->wait_ms == 0
				      ? PB_ROUTER_WAIT_FIRST_MS
				      : MIN(routed->wait_ms * 2, PB_ROUTER_WAIT_MAX_MS);
		return FALSE;
	case PB_REQUEST_HEAD_TOO_LARGE:
		pb_router_answer(routed, PB_REQUEST_HEAD_MAX, "431 Request Header Fields Too Large",
				 "", "The request head is larger than 16 KiB.\n");
		return FALSE;
	case PB_REQUEST_HEAD_COMPLETE:
	default:
		pb_router_decide(self, routed, head_len, host);
		return FALSE;
	}
}

static gboolean
pb_router_wait_cb(gpointer user_data)
{
	PbRouted *routed = user_data;

	routed->wait_id = 0;
	pb_router_watch(routed);
	return G_SOURCE_REMOVE;
}

/* Looks at what has arrived, and arranges the next look. Returns: whether to look again
 * when more arrives (the watch, if there is one, stays) */
static gboolean
pb_router_look(PbRouter *self, PbRouted *routed)
{
	if (pb_router_peek(self, routed))
		return TRUE;
	if (g_list_find(self->reading, routed) == NULL)
		return FALSE; /* handed on or freed: its source is destroyed already */
	if (routed->answered)
		return TRUE; /* pb_router_answer() watches again */
	g_clear_pointer(&routed->source, g_source_unref);
	routed->wait_id = g_timeout_add(routed->wait_ms, pb_router_wait_cb, routed);
	return FALSE;
}

static gboolean
pb_router_readable_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
	PbRouted *routed = user_data;

	return pb_router_look(routed->router, routed) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Looks when bytes (or the end) arrive. */
static void
pb_router_watch(PbRouted *routed)
{
	GSocket *socket = g_socket_connection_get_socket(routed->connection);

	if (routed->source != NULL) {
		g_source_destroy(routed->source);
		g_clear_pointer(&routed->source, g_source_unref);
	}
	routed->source = g_socket_create_source(socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
	g_source_set_callback(routed->source, G_SOURCE_FUNC(pb_router_readable_cb), routed, NULL);
	g_source_attach(routed->source, NULL);
}

/**
 * pb_router_new:
 * @domain: the server's --domain
 * @tunnel_func: takes a connection whose Host is NAME.@domain
 * @server_func: (nullable): takes any other; %NULL answers it 404
 */
PbRouter *
pb_router_new(const char *domain, PbRouterTunnelFunc tunnel_func, PbRouterServerFunc server_func,
	      gpointer user_data)
{
	PbRouter *self = g_new0(PbRouter, 1);

	self->domain = g_strdup(domain);
	self->tunnel_func = tunnel_func;
	self->server_func = server_func;
	self->user_data = user_data;
	return self;
}

/* Whether connections are TLS: then the ClientHello's server_name routes them, and those
 * for no tunnel go to the server itself (nothing can be answered before the handshake). */
void
pb_router_set_tls(PbRouter *self, gboolean tls)
{
	self->tls = tls;
}

/**
 * pb_router_add:
 * @stream: what is handed on: @connection, or a TLS connection over it
 *
 * Reads @connection's request head (or ClientHello) and hands it on.
 */
void
pb_router_add(PbRouter *self, GSocketConnection *connection, GIOStream *stream)
{
	PbRouted *routed = g_new0(PbRouted, 1);

	routed->router = self;
	routed->connection = g_object_ref(connection);
	routed->stream = g_object_ref(stream);
	self->reading = g_list_prepend(self->reading, routed);
	/* a client that sends its request as it connects has sent it by now, often: one look
	 * before watching saves a wakeup and a GSource per connection */
	if (pb_router_look(self, routed) && g_list_find(self->reading, routed) != NULL &&
	    routed->source == NULL)
		pb_router_watch(routed);
}

/* Connections whose request head is being read (or answered with an error). */
guint
pb_router_get_n_reading(PbRouter *self)
{
	return g_list_length(self->reading);
}

void
pb_router_free(PbRouter *self)
{
	if (self == NULL)
		return;
	g_list_free_full(self->reading, (GDestroyNotify)pb_routed_free);
	g_free(self->domain);
	g_free(self);
}
