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
 *
 * A TLS port is routed by the server_name of the ClientHello instead, peeked the same
 * way. When TLS is terminated here, a connection for no tunnel goes to the server itself
 * (only its handshake can say anything). When it passes through (serve --sni-port), the
 * tunnel reads the ClientHello as its first DATA and the local service holds the
 * certificate; a connection for no tunnel can only be told so in TLS itself, with the
 * alert RFC 6066 made for it.
 */

#define PB_ROUTER_WAIT_FIRST_MS 5
#define PB_ROUTER_WAIT_MAX_MS	200

/* A TLS record (type alert, version 3.1 as in a ClientHello's records, length 2) holding a
 * fatal unrecognized_name alert (RFC 6066, section 3): "no such name here". */
static const guint8 pb_router_unrecognized_name[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 112};

/* The content type of a TLS handshake record: what a ClientHello starts with. */
#define PB_ROUTER_TLS_HANDSHAKE 0x16

typedef struct {
	PbRouter *router;	       /* (unowned) */
	GSocketConnection *connection; /* (owned) */
	GIOStream *stream;	       /* (owned) handed on: @connection, or TLS over it */
	GSource *source;	       /* (owned) (nullable) waiting for bytes */
	guint wait_id;		       /* waiting before the next look */
	guint wait_ms;
	gboolean answered; /* refused: reading to the end, then closing */
} PbRouted;

struct _PbRouter {
	char *domain; /* (owned) */
	PbRouterTunnelFunc tunnel_func;
	PbRouterServerFunc server_func;
	gpointer user_data;
	PbRouterMode mode; /* what the connections start with */
	GList *reading;	   /* (owned) PbRouted */
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

/* Refuses the connection with @answer (nullable), after the @consumed bytes it answers
 * have been taken from the socket (bytes left unread at close() make it a reset, which may
 * destroy the answer in flight); then reads what else comes until the peer closes. */
static void
pb_router_refuse(PbRouted *routed, gsize consumed, const void *answer, gsize answer_len)
{
	GSocket *socket = g_socket_connection_get_socket(routed->connection);
	g_autofree guint8 *head = g_malloc(MAX(consumed, 1));

	/* the answer is small, the socket's send buffer empty: one non-blocking send */
	(void)g_socket_receive_with_blocking(socket, (char *)head, consumed, FALSE, NULL, NULL);
	if (answer_len > 0)
		(void)g_socket_send_with_blocking(socket, answer, answer_len, FALSE, NULL, NULL);
	g_socket_shutdown(socket, FALSE, TRUE, NULL);
	routed->answered = TRUE;
	pb_router_watch(routed);
}

/* An HTTP error page for the request whose head is @head_len bytes. */
static void
pb_router_answer(PbRouted *routed, gsize head_len, const char *status, const char *headers,
		 const char *text)
{
	g_autofree char *answer = g_strdup_printf("HTTP/1.1 %s\r\n"
						  "Content-Type: text/plain; charset=utf-8\r\n"
						  "Content-Length: %zu\r\n"
						  "Connection: close\r\n"
						  "%s"
						  "\r\n"
						  "%s",
						  status, strlen(text), headers, text);

	pb_router_refuse(routed, head_len, answer, strlen(answer));
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

/* @routed's first @head_len bytes name @host (nullable): hands it to that tunnel or
 * refuses it as its port does. */
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
	if (self->mode == PB_ROUTER_MODE_PASSTHROUGH) {
		pb_router_refuse(routed, head_len, pb_router_unrecognized_name,
				 sizeof pb_router_unrecognized_name);
		return;
	}
	/* TLS is not ours to answer before the handshake: the server itself says 404 */
	if ((name == NULL || self->mode == PB_ROUTER_MODE_TLS) && self->server_func != NULL) {
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

/* Peeked bytes keep the socket readable: waits a little before looking again. */
static void
pb_router_wait_more(PbRouted *routed)
{
	routed->wait_ms = routed->wait_ms == 0 ? PB_ROUTER_WAIT_FIRST_MS
					       : MIN(routed->wait_ms * 2, PB_ROUTER_WAIT_MAX_MS);
}

/* Routes by the ClientHello in the @len bytes peeked into @buf (of @size). */
static void
pb_router_peek_hello(PbRouter *self, PbRouted *routed, const guint8 *buf, gsize len, gsize size)
{
	g_autofree char *host = NULL;
	PbClientHello hello = pb_client_hello_parse(buf, len, &host);

	if (hello == PB_CLIENT_HELLO_INCOMPLETE && len < size) {
		pb_router_wait_more(routed);
		return;
	}
	/* only what started as TLS is answered in TLS */
	if (hello != PB_CLIENT_HELLO_COMPLETE && self->mode == PB_ROUTER_MODE_PASSTHROUGH &&
	    buf[0] != PB_ROUTER_TLS_HANDSHAKE) {
		pb_router_refuse(routed, len, NULL, 0);
		return;
	}
	pb_router_decide(self, routed, len, host);
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
	if (self->mode != PB_ROUTER_MODE_HTTP) {
		pb_router_peek_hello(self, routed, buf, (gsize)n, sizeof buf);
		return FALSE;
	}
	switch (pb_request_head_parse(buf, MIN((gsize)n, PB_REQUEST_HEAD_MAX), &head_len, &host)) {
	case PB_REQUEST_HEAD_INCOMPLETE:
		pb_router_wait_more(routed);
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

/* What the connections start with (see PbRouterMode); %PB_ROUTER_MODE_HTTP by default. */
void
pb_router_set_mode(PbRouter *self, PbRouterMode mode)
{
	self->mode = mode;
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
