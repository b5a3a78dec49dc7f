/* SPDX-License-Identifier: ISC */
#define _GNU_SOURCE /* memmem() */
#include "config.h"

#include <libsoup/soup.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>

#include "pb-client-hello.h"
#include "pb-frame.h"
#include "pb-name.h"
#include "pb-request-head.h"
#include "pb-test-utils.h"

/*
 * Named tunnels (serve --domain, forward --name): real `piggyback` processes over
 * loopback, local HTTP services in this process (SoupServers, answered while the tests
 * wait), public clients on blocking sockets in a thread.
 */

#define DOMAIN	  "example.test"
#define BIG_SIZE  (32 * 1024 * 1024)
#define HEAD_TAIL "Connection: keep-alive\r\n\r\n"

/* A local HTTP service: GET /who answers its name, /big BIG_SIZE bytes of the pattern. */
typedef struct {
	SoupServer *soup; /* (owned) */
	char *name;	  /* (owned) */
	guint16 port;
	GPtrArray *websockets; /* (owned) SoupWebsocketConnection, echoing */
} Service;

static guint8 *big_body; /* (owned) BIG_SIZE bytes of the pattern, made once */

static void
service_cb(SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
	   gpointer user_data)
{
	Service *service = user_data;

	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	if (g_strcmp0(path, "/big") == 0) {
		soup_server_message_set_response(msg, "application/octet-stream",
						 SOUP_MEMORY_STATIC, (const char *)big_body,
						 BIG_SIZE);
		return;
	}
	soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_COPY, service->name,
					 strlen(service->name));
}

static void
service_ws_message_cb(SoupWebsocketConnection *ws, SoupWebsocketDataType type, GBytes *message,
		      gpointer user_data)
{
	g_autofree char *text = NULL;

	if (type != SOUP_WEBSOCKET_DATA_TEXT)
		return;
	text = g_strndup(g_bytes_get_data(message, NULL), g_bytes_get_size(message));
	soup_websocket_connection_send_text(ws, text);
}

/* /echo: a WebSocket that sends back each text message. */
static void
service_ws_cb(SoupServer *soup, SoupServerMessage *msg, const char *path,
	      SoupWebsocketConnection *ws, gpointer user_data)
{
	Service *service = user_data;

	g_ptr_array_add(service->websockets, g_object_ref(ws));
	g_signal_connect(ws, "message", G_CALLBACK(service_ws_message_cb), NULL);
}

static Service *
service_new(const char *name)
{
	Service *service = g_new0(Service, 1);

	service->name = g_strdup(name);
	service->soup = soup_server_new(NULL, NULL);
	service->websockets = g_ptr_array_new_with_free_func(g_object_unref);
	soup_server_add_handler(service->soup, NULL, service_cb, service, NULL);
	soup_server_add_websocket_handler(service->soup, "/echo", NULL, NULL, service_ws_cb,
					  service, NULL);
	service->port = pb_test_soup_listen(service->soup);
	return service;
}

static void
service_free(Service *service)
{
	soup_server_disconnect(service->soup);
	g_ptr_array_unref(service->websockets);
	g_object_unref(service->soup);
	g_free(service->name);
	g_free(service);
}

/* One HTTP/1.1 exchange's answer. */
typedef struct {
	guint status;
	GByteArray *body;
} Answer;

static void
answer_free(Answer *answer)
{
	g_byte_array_unref(answer->body);
	g_free(answer);
}

/* Public requests on one connection to 127.0.0.1:port, one after the other: each head is
 * sent whole, its answer (Content-Length) read before the next. */
typedef struct {
	guint16 port;
	const char *const *heads; /* NULL-terminated */
	GPtrArray *answers;	  /* (owned) Answer */
} Exchange;

/* Reads an answer; NULL if the connection ended first. */
static Answer *
read_answer(GSocket *socket, GByteArray *buf)
{
	Answer *answer = g_new0(Answer, 1);
	const char *end = NULL;
	const char *length;
	gsize head_len;
	gsize body_len;
	char chunk[65536];

	while (buf->len == 0 || (end = memmem(buf->data, buf->len, "\r\n\r\n", 4)) == NULL) {
		gssize n = g_socket_receive(socket, chunk, sizeof chunk, NULL, NULL);

		if (n <= 0) {
			g_free(answer);
			return NULL;
		}
		g_byte_array_append(buf, (const guint8 *)chunk, (guint)n);
	}
	head_len = (gsize)(end + 4 - (const char *)buf->data);
	answer->status = (guint)g_ascii_strtoull((const char *)buf->data + 9, NULL, 10);
	length = memmem(buf->data, head_len, "Content-Length: ", strlen("Content-Length: "));
	g_assert_nonnull(length);
	body_len = g_ascii_strtoull(length + strlen("Content-Length: "), NULL, 10);
	while (buf->len < head_len + body_len) {
		gssize n = g_socket_receive(socket, chunk, sizeof chunk, NULL, NULL);

		g_assert_cmpint(n, >, 0);
		g_byte_array_append(buf, (const guint8 *)chunk, (guint)n);
	}
	answer->body = g_byte_array_new();
	g_byte_array_append(answer->body, buf->data + head_len, (guint)body_len);
	g_byte_array_remove_range(buf, 0, (guint)(head_len + body_len));
	return answer;
}

static gpointer
exchange_cb(gpointer user_data)
{
	Exchange *exchange = user_data;
	g_autoptr(GSocket) socket = pb_test_connect(exchange->port);
	g_autoptr(GByteArray) buf = g_byte_array_new();

	for (gsize i = 0; exchange->heads[i] != NULL; i++) {
		Answer *answer;

		g_assert_cmpint(g_socket_send(socket, exchange->heads[i],
					      strlen(exchange->heads[i]), NULL, NULL),
				==, strlen(exchange->heads[i]));
		answer = read_answer(socket, buf);
		if (answer == NULL)
			break;
		g_ptr_array_add(exchange->answers, answer);
	}
	return NULL;
}

/* Sends @heads on one connection to @port (while this thread serves the local services);
 * Returns: (transfer full): the answers, as many as came */
static GPtrArray *
exchange(guint16 port, const char *const *heads)
{
	Exchange exchange = {port, heads,
			     g_ptr_array_new_with_free_func((GDestroyNotify)answer_free)};

	pb_test_run_in_thread(exchange_cb, &exchange, 30);
	return exchange.answers;
}

/* One GET of @path with Host @host on @port; the answer's body as a string in *@body. */
static guint
get(guint16 port, const char *host, const char *path, char **body)
{
	g_autofree char *head =
	    g_strdup_printf("GET %s HTTP/1.1\r\nHost: %s\r\n" HEAD_TAIL, path, host);
	const char *const heads[] = {head, NULL};
	g_autoptr(GPtrArray) answers = exchange(port, heads);
	Answer *answer;

	g_assert_cmpuint(answers->len, ==, 1);
	answer = answers->pdata[0];
	if (body != NULL)
		*body = g_strndup((const char *)answer->body->data, answer->body->len);
	return answer->status;
}

/* `piggyback serve --domain example.test` on 127.0.0.1 with the options that follow. */
static PbTestProc *
serve(guint16 *ws_port, const char *first, ...);

static PbTestProc *
serve(guint16 *ws_port, const char *first, ...)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	const char *const domain[] = {"--domain", DOMAIN, NULL};
	PbTestProc *server;
	va_list rest;

	va_start(rest, first);
	server = pb_test_serve_valist(launcher, domain, ws_port, first, rest);
	va_end(rest);
	return server;
}

/* `piggyback forward --name @name` (nullable) for @local_port through @ws_port. */
static PbTestProc *
forward(guint16 ws_port, guint16 local_port, const char *name)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autofree char *server_url = g_strdup_printf("127.0.0.1:%u", ws_port);
	g_autofree char *port = g_strdup_printf("%u", local_port);
	const char *argv[] = {g_getenv("PB_PIGGYBACK"),
			      "forward",
			      "-p",
			      port,
			      "-h",
			      "127.0.0.1",
			      "-s",
			      server_url,
			      "--no-dbus",
			      name != NULL ? "--name" : NULL,
			      name,
			      NULL};

	return pb_test_proc_spawnv(launcher, argv);
}

/* A forward that is online with @name: its HTTP URL line says so. */
static PbTestProc *
forward_online(guint16 ws_port, guint16 local_port, const char *name)
{
	PbTestProc *client = forward(ws_port, local_port, name);
	g_autofree char *url =
	    g_strdup_printf("HTTP URL: http://%s." DOMAIN ":%u\n", name, ws_port);

	pb_test_wait_until(pb_test_proc_said(client, url) || pb_test_proc_exited(client), 10);
	if (!pb_test_proc_said(client, url))
		g_error("no “%s” in: %s", url, pb_test_proc_get_output(client));
	return client;
}

/* A minimal ClientHello naming @server_name (nullable), its handshake message split over
 * @n_records TLS records. */
static GByteArray *
client_hello_new(const char *server_name, guint n_records)
{
	g_autoptr(GByteArray) body = g_byte_array_new();
	g_autoptr(GByteArray) message = g_byte_array_new();
	GByteArray *records = g_byte_array_new();
	static const guint8 start[] = {0x03, 0x03};
	static const guint8 rest[] = {0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00};
	guint8 random[32] = {0};
	gsize name_len = server_name != NULL ? strlen(server_name) : 0;
	gsize ext_len = server_name != NULL ? 4 + 5 + name_len : 4 + 2;
	gsize offset = 0;

	g_byte_array_append(body, start, sizeof start);
	g_byte_array_append(body, random, sizeof random);
	g_byte_array_append(body, rest, sizeof rest);
	{
		/* extensions: server_name, or a made-up empty one */
		guint8 head[2] = {(guint8)(ext_len >> 8), (guint8)ext_len};

		g_byte_array_append(body, head, 2);
	}
	if (server_name != NULL) {
		guint8 ext[9] = {0x00,
				 0x00,
				 (guint8)((5 + name_len) >> 8),
				 (guint8)(5 + name_len),
				 (guint8)((3 + name_len) >> 8),
				 (guint8)(3 + name_len),
				 0x00,
				 (guint8)(name_len >> 8),
				 (guint8)name_len};

		g_byte_array_append(body, ext, sizeof ext);
		g_byte_array_append(body, (const guint8 *)server_name, (guint)name_len);
	} else {
		static const guint8 ext[] = {0xfe, 0xfe, 0x00, 0x02, 0xab, 0xcd};

		g_byte_array_append(body, ext, sizeof ext);
	}
	{
		guint8 head[4] = {0x01, 0x00, (guint8)(body->len >> 8), (guint8)body->len};

		g_byte_array_append(message, head, 4);
		g_byte_array_append(message, body->data, body->len);
	}
	for (guint i = 0; i < n_records; i++) {
		gsize len = i + 1 < n_records ? message->len / n_records : message->len - offset;
		guint8 head[5] = {0x16, 0x03, 0x01, (guint8)(len >> 8), (guint8)len};

		g_byte_array_append(records, head, 5);
		g_byte_array_append(records, message->data + offset, (guint)len);
		offset += len;
	}
	return records;
}

static void
test_names_client_hello(void)
{
	g_test_summary("A ClientHello's server_name, over one or several records, a byte at a "
		       "time; none; not TLS");
	for (guint n_records = 1; n_records <= 3; n_records++) {
		g_autoptr(GByteArray) hello = client_hello_new("alpha." DOMAIN, n_records);
		g_autofree char *name = NULL;

		for (gsize len = 0; len < hello->len; len++)
			g_assert_cmpint(pb_client_hello_parse(hello->data, len, NULL), ==,
					PB_CLIENT_HELLO_INCOMPLETE);
		g_assert_cmpint(pb_client_hello_parse(hello->data, hello->len, &name), ==,
				PB_CLIENT_HELLO_COMPLETE);
		g_assert_cmpstr(name, ==, "alpha." DOMAIN);
	}
	{
		g_autoptr(GByteArray) hello = client_hello_new(NULL, 1);
		g_autofree char *name = NULL;

		g_assert_cmpint(pb_client_hello_parse(hello->data, hello->len, &name), ==,
				PB_CLIENT_HELLO_COMPLETE);
		g_assert_null(name);
	}
	/* openssl s_client's, TLS 1.3 and 1.2, and one split over two records */
	for (guint i = 0; i < 4; i++) {
		static const char *const seeds[] = {"openssl-sni", "openssl-tls12", "two-records",
						    "openssl-no-sni"};
		g_autofree char *path = g_test_build_filename(G_TEST_DIST, "fuzz", "corpus",
							      "client-hello", seeds[i], NULL);
		g_autofree char *contents = NULL;
		g_autofree char *name = NULL;
		gsize len = 0;

		g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
		g_assert_cmpint(pb_client_hello_parse((const guint8 *)contents, len, &name), ==,
				PB_CLIENT_HELLO_COMPLETE);
		g_assert_cmpstr(name, ==, i < 3 ? "alpha." DOMAIN : NULL);
	}
	g_assert_cmpint(pb_client_hello_parse((const guint8 *)"GET / HTTP/1.1\r\n", 16, NULL), ==,
			PB_CLIENT_HELLO_INVALID);
	g_assert_cmpint(pb_client_hello_parse((const guint8 *)"G", 1, NULL), ==,
			PB_CLIENT_HELLO_INVALID);
}

static void
test_names_parse(void)
{
	static const char *const valid[] = {
	    "a", "alpha",  "a-b",
	    "0", "x1-2-3", "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123"};
	static const char *const invalid[] = {
	    "",
	    "-a",
	    "a-",
	    "A",
	    "a_b",
	    "a.b",
	    "a b",
	    "é",
	    "ab\ncd",
	    "a/b",
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234"};
	const char *head = "GET / HTTP/1.1\r\nUser-Agent: x\r\nhOsT:  Alpha.Example.Test:8080 "
			   "\r\n\r\nbody";
	g_autofree char *host = NULL;
	gsize head_len = 0;

	g_test_summary("Names are RFC 1123 labels in lowercase; a request head's Host");
	for (gsize i = 0; i < G_N_ELEMENTS(valid); i++)
		g_assert_true(pb_name_is_valid(valid[i]));
	for (gsize i = 0; i < G_N_ELEMENTS(invalid); i++)
		g_assert_false(pb_name_is_valid(invalid[i]));
	for (guint i = 0; i < 100; i++) {
		g_autofree char *name = pb_name_new_random();

		g_assert_true(pb_name_is_valid(name));
	}

	g_assert_cmpint(pb_request_head_parse((const guint8 *)head, strlen(head), &head_len, &host),
			==, PB_REQUEST_HEAD_COMPLETE);
	g_assert_cmpuint(head_len, ==, strlen(head) - 4);
	g_assert_cmpstr(host, ==, "Alpha.Example.Test:8080");
	g_clear_pointer(&host, g_free);
	/* every shorter prefix of the head is incomplete */
	for (gsize len = 0; len < strlen(head) - 4; len++)
		g_assert_cmpint(pb_request_head_parse((const guint8 *)head, len, NULL, NULL), ==,
				PB_REQUEST_HEAD_INCOMPLETE);
	/* LF line ends; no Host; two Hosts */
	g_assert_cmpint(
	    pb_request_head_parse((const guint8 *)"GET / HTTP/1.0\nHost: a.b\n\n", 26, NULL, &host),
	    ==, PB_REQUEST_HEAD_COMPLETE);
	g_assert_cmpstr(host, ==, "a.b");
	g_clear_pointer(&host, g_free);
	g_assert_cmpint(
	    pb_request_head_parse((const guint8 *)"GET / HTTP/1.0\r\n\r\n", 18, NULL, &host), ==,
	    PB_REQUEST_HEAD_COMPLETE);
	g_assert_null(host);
	head = "GET / HTTP/1.1\r\nHost: a.b\r\nHost: c.d\r\n\r\n";
	g_assert_cmpint(pb_request_head_parse((const guint8 *)head, strlen(head), NULL, &host), ==,
			PB_REQUEST_HEAD_COMPLETE);
	g_assert_null(host);
	{
		g_autofree guint8 *big = g_malloc(PB_REQUEST_HEAD_MAX + 10);

		memset(big, 'a', PB_REQUEST_HEAD_MAX + 10);
		g_assert_cmpint(pb_request_head_parse(big, PB_REQUEST_HEAD_MAX - 1, NULL, NULL), ==,
				PB_REQUEST_HEAD_INCOMPLETE);
		g_assert_cmpint(pb_request_head_parse(big, PB_REQUEST_HEAD_MAX + 10, NULL, NULL),
				==, PB_REQUEST_HEAD_TOO_LARGE);
	}

	/* NAME.DOMAIN, any case, any port, a final dot; nothing else */
	{
		static const struct {
			const char *host;
			const char *name;
		} cases[] = {
		    {"alpha.example.test", "alpha"},
		    {"ALPHA.Example.TEST:443", "alpha"},
		    {"alpha.example.test.", "alpha"},
		    {"alpha.example.test.:80", "alpha"},
		    {"example.test", NULL},
		    {".example.test", NULL},
		    {"a.b.example.test", NULL},
		    {"alphaexample.test", NULL},
		    {"-a.example.test", NULL},
		    {"alpha.example.testx", NULL},
		    {"127.0.0.1:8080", NULL},
		    {"[::1]:80", NULL},
		    {"", NULL},
		};

		for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
			g_autofree char *name = pb_name_for_host(cases[i].host, DOMAIN);

			g_assert_cmpstr(name, ==, cases[i].name);
		}
	}
	{
		g_autofree char *a = pb_name_get_http_url("a", DOMAIN, "http", 80);
		g_autofree char *b = pb_name_get_http_url("a", DOMAIN, "https", 443);
		g_autofree char *c = pb_name_get_http_url("a", DOMAIN, "http", 8080);
		g_autofree char *d = pb_name_get_http_url("a", DOMAIN, "https", 80);

		g_assert_cmpstr(a, ==, "http://a." DOMAIN);
		g_assert_cmpstr(b, ==, "https://a." DOMAIN);
		g_assert_cmpstr(c, ==, "http://a." DOMAIN ":8080");
		g_assert_cmpstr(d, ==, "https://a." DOMAIN ":80");
	}
}

/* A WebSocket upgrade for /echo with Host alpha.example.test, then one masked text message:
 * Returns: the text that came back, or NULL */
static gpointer
websocket_echo_cb(gpointer user_data)
{
	static const char request[] =
	    "GET /echo HTTP/1.1\r\nHost: alpha." DOMAIN "\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n";
	static const guint8 mask[4] = {0x12, 0x34, 0x56, 0x78};
	static const char text[] = "hi there";
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	g_autoptr(GByteArray) in = g_byte_array_new();
	guint8 frame[6 + sizeof text - 1];
	const guint8 *end = NULL;
	gsize head_len;
	char buf[1024];

	frame[0] = 0x81; /* FIN, text */
	frame[1] = 0x80 | (guint8)(sizeof text - 1);
	memcpy(frame + 2, mask, 4);
	for (gsize i = 0; i < sizeof text - 1; i++)
		frame[6 + i] = (guint8)text[i] ^ mask[i % 4];
	if (g_socket_send(socket, request, strlen(request), NULL, NULL) != (gssize)strlen(request))
		return NULL;
	/* the 101 */
	while (in->len == 0 || (end = memmem(in->data, in->len, "\r\n\r\n", 4)) == NULL) {
		gssize n = g_socket_receive(socket, buf, sizeof buf, NULL, NULL);

		if (n <= 0)
			return NULL;
		g_byte_array_append(in, (const guint8 *)buf, (guint)n);
	}
	if (!g_str_has_prefix((const char *)in->data, "HTTP/1.1 101"))
		return NULL;
	head_len = (gsize)(end + 4 - in->data);
	if (g_socket_send(socket, (const char *)frame, sizeof frame, NULL, NULL) !=
	    (gssize)sizeof frame)
		return NULL;
	/* the echo: an unmasked text frame */
	while (in->len < head_len + 2 + sizeof text - 1) {
		gssize n = g_socket_receive(socket, buf, sizeof buf, NULL, NULL);

		if (n <= 0)
			return NULL;
		g_byte_array_append(in, (const guint8 *)buf, (guint)n);
	}
	if (in->data[head_len] != 0x81 || in->data[head_len + 1] != sizeof text - 1)
		return NULL;
	return g_strndup((const char *)in->data + head_len + 2, sizeof text - 1);
}

static void
test_names_route(void)
{
	Service *alpha = service_new("alpha");
	Service *beta = service_new("beta");
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, NULL, NULL);
	PbTestProc *client_alpha = forward_online(ws_port, alpha->port, "alpha");
	PbTestProc *client_beta = forward_online(ws_port, beta->port, "beta");
	g_autofree char *body = NULL;
	const char *const keep_alive[] = {
	    "GET /who HTTP/1.1\r\nHost: alpha." DOMAIN "\r\n" HEAD_TAIL,
	    "GET /big HTTP/1.1\r\nHost: alpha." DOMAIN "\r\n" HEAD_TAIL,
	    "GET /who HTTP/1.1\r\nHost: alpha." DOMAIN "\r\n" HEAD_TAIL,
	    NULL,
	};
	g_autoptr(GPtrArray) answers = NULL;
	Answer *answer;

	g_test_summary("Host NAME.DOMAIN on the WebSocket port reaches tunnel NAME: keep-alive, "
		       "a 32 MiB body byte-exact, a WebSocket echo; other hosts reach the server "
		       "itself");
	g_assert_cmpuint(get(ws_port, "alpha." DOMAIN, "/who", &body), ==, 200);
	g_assert_cmpstr(body, ==, "alpha");
	g_clear_pointer(&body, g_free);
	g_assert_cmpuint(get(ws_port, "BETA.example.TEST:" G_STRINGIFY(80), "/who", &body), ==,
			 200);
	g_assert_cmpstr(body, ==, "beta");
	g_clear_pointer(&body, g_free);

	/* three requests on one connection: the tunnel carries them all */
	answers = exchange(ws_port, keep_alive);
	g_assert_cmpuint(answers->len, ==, 3);
	answer = answers->pdata[1];
	g_assert_cmpuint(answer->status, ==, 200);
	g_assert_cmpuint(answer->body->len, ==, BIG_SIZE);
	g_assert_true(pb_test_pattern_check(answer->body->data, BIG_SIZE, 0));
	answer = answers->pdata[2];
	g_assert_cmpmem(answer->body->data, answer->body->len, "alpha", 5);

	/* a WebSocket through the name: the upgrade is bytes like any other */
	{
		g_autofree char *echo =
		    pb_test_run_in_thread(websocket_echo_cb, GUINT_TO_POINTER(ws_port), 20);

		g_assert_cmpstr(echo, ==, "hi there");
	}

	/* no such name: 404, naming the host */
	g_assert_cmpuint(get(ws_port, "nobody." DOMAIN, "/who", &body), ==, 404);
	g_assert_nonnull(strstr(body, "nobody." DOMAIN));
	g_clear_pointer(&body, g_free);

	/* any other host is the server's own */
	g_assert_cmpuint(get(ws_port, "127.0.0.1", "/healthz", &body), ==, 200);
	g_assert_cmpstr(body, ==, "ok\n");
	g_clear_pointer(&body, g_free);
	g_assert_cmpuint(get(ws_port, DOMAIN, "/healthz", &body), ==, 200);
	g_clear_pointer(&body, g_free);
	g_assert_cmpuint(get(ws_port, "alpha." DOMAIN ".evil", "/healthz", &body), ==, 200);
	g_clear_pointer(&body, g_free);

	g_assert_cmpint(pb_test_proc_finish(client_beta), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(client_alpha), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	service_free(beta);
	service_free(alpha);
}

static void
test_names_http_port(void)
{
	Service *alpha = service_new("alpha");
	guint16 ws_port;
	guint16 http_port;
	PbTestProc *server = serve(&ws_port, "--http-port", "0", NULL);
	PbTestProc *client;
	g_autofree char *body = NULL;

	g_test_summary("serve --http-port: a further plain HTTP port that routes by name only");
	http_port = pb_test_proc_wait_port(server, "Names on --http-port:");
	client = forward_online(ws_port, alpha->port, "alpha");
	g_assert_cmpuint(get(http_port, "alpha." DOMAIN, "/who", &body), ==, 200);
	g_assert_cmpstr(body, ==, "alpha");
	g_clear_pointer(&body, g_free);
	/* the server's own pages are not there */
	g_assert_cmpuint(get(http_port, "127.0.0.1", "/healthz", &body), ==, 404);
	g_assert_nonnull(strstr(body, "127.0.0.1"));
	g_clear_pointer(&body, g_free);
	g_assert_cmpuint(get(http_port, "127.0.0.1", PB_WS_PATH, NULL), ==, 404);

	/* only with --domain */
	{
		g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
		PbTestProc *bad = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve",
						     "-p", "0", "--http-port", "0", NULL);

		pb_test_proc_wait_exit(bad);
		g_assert_nonnull(
		    strstr(pb_test_proc_get_output(bad), "--http-port needs --domain"));
		g_assert_cmpint(pb_test_proc_finish(bad), ==, 2);
	}

	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	service_free(alpha);
}

/* The HELLO that follows a 101 on @socket, as text. */
static char *
read_hello(GSocket *socket)
{
	char buf[4096];
	gsize got = 0;
	const char *start = NULL;

	while (got < sizeof buf - 1) {
		gssize n = g_socket_receive(socket, buf + got, sizeof buf - 1 - got, NULL, NULL);

		g_assert_cmpint(n, >, 0);
		got += (gsize)n;
		buf[got] = '\0';
		start = memchr(buf, '{', got);
		if (start != NULL && memchr(start, '}', got - (gsize)(start - buf)) != NULL)
			break;
	}
	g_assert_nonnull(start);
	return g_strndup(start, got - (gsize)(start - buf));
}

static void
test_names_refused(void)
{
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, NULL, NULL);
	PbTestProc *holder = forward_online(ws_port, 9, "alpha");
	PbTestProc *second;
	PbTestProc *bad;

	g_test_summary("A name held by another client: 409 and forward exits 1 with the reason; "
		       "an invalid name: 400 from the server, exit 2 on the command line");
	second = forward(ws_port, 9, "alpha");
	pb_test_proc_wait_exit(second);
	g_assert_nonnull(strstr(pb_test_proc_get_output(second), "409"));
	g_assert_nonnull(strstr(pb_test_proc_get_output(second), "held by another client"));
	g_assert_cmpint(pb_test_proc_finish(second), ==, 1);

	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, "Piggyback-Features: flow, name\r\n"
							    "Piggyback-Name: alpha\r\n"),
			 ==, 409);
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, "Piggyback-Features: name\r\n"
							    "Piggyback-Name: Bad_Name\r\n"),
			 ==, 400);
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, "Piggyback-Features: name\r\n"
							    "Piggyback-Name: -a\r\n"),
			 ==, 400);

	/* a server without --domain gives no name, and the client says so */
	{
		g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
		PbTestProc *plain =
		    pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p", "0", "-l",
				       "127.0.0.1", "-H", "127.0.0.1", NULL);
		guint16 plain_port = pb_test_proc_wait_port(plain, "Listening on");
		PbTestProc *named = forward(plain_port, 9, "alpha");

		pb_test_wait_until(pb_test_proc_said(named, "HTTP URL: http://127.0.0.1:"), 10);
		g_assert_true(pb_test_proc_said(named, "--name alpha is not used"));
		g_assert_cmpint(pb_test_proc_finish(named), ==, 0);
		g_assert_cmpint(pb_test_proc_finish(plain), ==, 0);
	}
	for (guint i = 0; i < 3; i++) {
		static const char *const names[] = {"-a", "Alpha", "a.b"};

		bad = forward(ws_port, 9, names[i]);
		pb_test_proc_wait_exit(bad);
		g_assert_nonnull(strstr(pb_test_proc_get_output(bad), "--name"));
		g_assert_cmpint(pb_test_proc_finish(bad), ==, 2);
	}
	g_assert_cmpint(pb_test_proc_finish(holder), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

/* `piggyback serve` with @args (and -p 0): its exit status, and its output in @output. */
static int
serve_fails(const char *const *args, char **output)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	PbTestProc *bad;

	g_ptr_array_add(argv, (gpointer)g_getenv("PB_PIGGYBACK"));
	g_ptr_array_add(argv, "serve");
	g_ptr_array_add(argv, "-p");
	g_ptr_array_add(argv, "0");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	bad = pb_test_proc_spawnv(launcher, (const char *const *)argv->pdata);
	pb_test_proc_wait_exit(bad);
	*output = g_strdup(pb_test_proc_get_output(bad));
	return pb_test_proc_finish(bad);
}

static void
test_names_only(void)
{
	Service *alpha = service_new("alpha");
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--tunnel-port", "off", NULL);
	guint n_listeners = pb_test_proc_count_listeners(server);
	PbTestProc *client = forward_online(ws_port, alpha->port, "alpha");
	PbTestProc *lost;
	g_autofree char *body = NULL;
	g_autofree char *output = NULL;
	const char *const no_domain[] = {"--tunnel-port", "off", NULL};

	g_test_summary("serve --tunnel-port off: tunnels get a name and no public port; a client "
		       "that takes no names is refused with 403");
	g_assert_cmpuint(get(ws_port, "alpha." DOMAIN, "/who", &body), ==, 200);
	g_assert_cmpstr(body, ==, "alpha");
	g_clear_pointer(&body, g_free);
	g_assert_cmpuint(pb_test_proc_count_listeners(server), ==, n_listeners);
	/* no Access URL line: there is no port to print */
	g_assert_false(pb_test_proc_said(client, "Access URL:"));
	/* its log is read as it comes: wait for the line */
	pb_test_wait_until(pb_test_proc_said(server, "named alpha." DOMAIN " (names only)"), 10);
	/* a PiggyBack 1.1 client (no features), and one without the name feature */
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, ""), ==, 403);
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, "Piggyback-Features: flow, eof\r\n"),
			 ==, 403);

	g_assert_cmpint(serve_fails(no_domain, &output), ==, 2);
	g_assert_nonnull(strstr(output, "--tunnel-port off needs --domain"));

	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	/* its log is read as it comes: wait for the line */
	pb_test_wait_until(pb_test_proc_said(server, "said goodbye, name alpha closed"), 10);
	/* a lost client keeps its name for its grace period, as it would keep a port */
	lost = forward_online(ws_port, alpha->port, "beta");
	pb_test_proc_kill(lost);
	pb_test_wait_until(pb_test_proc_said(server, "name beta kept for it"), 10);
	g_assert_cmpuint(get(ws_port, "beta." DOMAIN, "/who", &body), ==, 503);
	pb_test_proc_finish(lost);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	service_free(alpha);
}

static void
test_names_public_url(void)
{
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--public-url", "https://" DOMAIN ":8443", NULL);
	PbTestProc *client = forward(ws_port, 9, "alpha");
	static const char *const bad[] = {"ftp://" DOMAIN,	     "https://other.test",
					  "https://" DOMAIN "/path", "https://user@" DOMAIN,
					  "https://" DOMAIN ":0",    "not a url"};

	g_test_summary("serve --public-url: clients print their HTTP URL with the scheme and "
		       "port of the load balancer in front; anything but http[s]://DOMAIN[:PORT] "
		       "exits 2");
	pb_test_wait_until(pb_test_proc_said(client, "HTTP URL: ") || pb_test_proc_exited(client),
			   10);
	g_assert_true(pb_test_proc_said(client, "HTTP URL: https://alpha." DOMAIN ":8443\n"));
	/* its log is read as it comes: wait for the line */
	pb_test_wait_until(pb_test_proc_said(server, "Names: https://*." DOMAIN ":8443\n"), 10);
	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);

	server = serve(&ws_port, "--public-url", "HTTPS://Example.Test/", NULL);
	client = forward(ws_port, 9, "alpha");
	pb_test_wait_until(pb_test_proc_said(client, "HTTP URL: ") || pb_test_proc_exited(client),
			   10);
	g_assert_true(pb_test_proc_said(client, "HTTP URL: https://alpha." DOMAIN "\n"));
	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);

	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		const char *const args[] = {"--domain", DOMAIN, "--public-url", bad[i], NULL};
		g_autofree char *output = NULL;

		g_assert_cmpint(serve_fails(args, &output), ==, 2);
		g_assert_nonnull(strstr(output, "--public-url must be"));
	}
}

static void
test_names_grace(void)
{
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--grace", "30", NULL);
	g_autoptr(GSocket) first = NULL;
	g_autoptr(GSocket) again = NULL;
	g_autofree char *hello = NULL;
	g_autofree char *session_header = NULL;
	char *body = NULL;
	PbTestProc *other;
	const char *session;

	g_test_summary("A lost client's name is kept for it for --grace: a request for it gets "
		       "503 meanwhile, another client 409, the same client (its session) gets "
		       "its name back; a client that "
		       "asks for none gets a random one, and a 1.1 client sees nothing new");
	first = pb_test_ws_upgrade(ws_port, "Piggyback-Features: flow, eof, name\r\n"
					    "Piggyback-Name: alpha\r\n");
	hello = read_hello(first);
	g_assert_nonnull(strstr(hello, "\"name\":\"alpha\""));
	g_assert_nonnull(strstr(hello, "\"domain\":\"" DOMAIN "\""));
	session = strstr(hello, "\"session\":\"");
	g_assert_nonnull(session);
	session_header =
	    g_strdup_printf(PB_SESSION_HEADER ": %.32s\r\n"
					      "Piggyback-Features: flow, eof, name\r\n",
			    session + strlen("\"session\":\""));
	/* lost, not a goodbye: no close frame */
	g_socket_close(first, NULL);
	pb_test_wait_until(pb_test_proc_said(server, "kept for it"), 10);
	/* meanwhile a request for it is told to come back soon */
	g_assert_cmpuint(get(ws_port, "alpha." DOMAIN, "/", &body), ==, 503);
	g_assert_nonnull(strstr(body, "away"));
	g_clear_pointer(&body, g_free);

	other = forward(ws_port, 9, "alpha");
	pb_test_proc_wait_exit(other);
	g_assert_nonnull(strstr(pb_test_proc_get_output(other), "409"));
	g_assert_cmpint(pb_test_proc_finish(other), ==, 1);

	/* back with its session, asking for no name: it has its own */
	again = pb_test_ws_upgrade(ws_port, session_header);
	g_clear_pointer(&hello, g_free);
	hello = read_hello(again);
	g_assert_nonnull(strstr(hello, "\"name\":\"alpha\""));
	g_clear_object(&again);

	/* no name asked for: a random one */
	again = pb_test_ws_upgrade(ws_port, "Piggyback-Features: flow, eof, name\r\n");
	g_clear_pointer(&hello, g_free);
	hello = read_hello(again);
	g_assert_nonnull(strstr(hello, "\"name\":\""));
	g_assert_null(strstr(hello, "\"name\":\"alpha\""));
	g_clear_object(&again);

	/* PiggyBack 1.1: no features, no name */
	again = pb_test_ws_upgrade(ws_port, NULL);
	g_clear_pointer(&hello, g_free);
	hello = read_hello(again);
	g_assert_null(strstr(hello, "name"));
	g_assert_null(strstr(hello, "features"));
	g_clear_object(&again);

	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

static void
test_names_log(void)
{
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--grace", "1", NULL);
	PbTestProc *client = forward_online(ws_port, 9, "alpha");
	g_autoptr(GSocket) lost = NULL;
	g_autofree char *hello = NULL;
	g_autofree char *url = g_strdup_printf("Named alpha: http://alpha." DOMAIN ":%u", ws_port);

	g_test_summary("The log names a named tunnel: the client its name and HTTP URL, the "
		       "server the name on connect, on disconnect and when it is released");
	pb_test_wait_until(pb_test_proc_said(client, url), 10);
	pb_test_wait_until(pb_test_proc_said(server, ", named alpha." DOMAIN "\n"), 10);
	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	pb_test_wait_until(pb_test_proc_said(server, "disconnected: it said goodbye, port "), 10);
	g_assert_true(pb_test_proc_said(server, " and name alpha closed"));

	/* lost, not a goodbye: kept for --grace, then released with its name */
	lost = pb_test_ws_upgrade(ws_port, "Piggyback-Features: flow, eof, name\r\n"
					   "Piggyback-Name: beta\r\n");
	hello = read_hello(lost);
	g_assert_nonnull(strstr(hello, "\"name\":\"beta\""));
	g_socket_close(lost, NULL);
	pb_test_wait_until(pb_test_proc_said(server, " and name beta kept for it for 1 s"), 10);
	pb_test_wait_until(pb_test_proc_said(server, " and name beta of client "), 10);
	g_assert_true(pb_test_proc_said(server, " and name beta of client "));
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

static gpointer
oversized_cb(gpointer user_data)
{
	guint16 port = GPOINTER_TO_UINT(user_data);
	g_autoptr(GSocket) socket = pb_test_connect(port);
	g_autoptr(GString) head = g_string_new("GET / HTTP/1.1\r\nHost: alpha." DOMAIN "\r\n");
	char buf[256] = {0};

	while (head->len <= PB_REQUEST_HEAD_MAX)
		g_string_append(head, "X-Filler: 0123456789012345678901234567890123456789\r\n");
	g_string_append(head, "\r\n");
	if (g_socket_send(socket, head->str, head->len, NULL, NULL) != (gssize)head->len)
		return NULL;
	if (g_socket_receive(socket, buf, sizeof buf - 1, NULL, NULL) <= 0)
		return NULL;
	return g_strdup(buf);
}

static void
test_names_oversized(void)
{
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, NULL, NULL);
	g_autofree char *answer = NULL;

	g_test_summary("A request head over 16 KiB on a shared port gets 431");
	answer = pb_test_run_in_thread(oversized_cb, GUINT_TO_POINTER(ws_port), 15);
	g_assert_nonnull(answer);
	g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 431 "));
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

/* A head in pieces, 50 ms apart: the router looks again until it is whole. */
static gpointer
pieces_cb(gpointer user_data)
{
	static const char *const pieces[] = {"GET / HT", "TP/1.1\r\nHost: nob", "ody." DOMAIN "\r",
					     "\n\r\n"};
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	char buf[256] = {0};

	for (gsize i = 0; i < G_N_ELEMENTS(pieces); i++) {
		if (g_socket_send(socket, pieces[i], strlen(pieces[i]), NULL, NULL) !=
		    (gssize)strlen(pieces[i]))
			return NULL;
		g_usleep(50 * 1000);
	}
	if (g_socket_receive(socket, buf, sizeof buf - 1, NULL, NULL) <= 0)
		return NULL;
	return g_strdup(buf);
}

/* A head that never ends: Returns: the seconds until the server closed the connection */
static gpointer
silent_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	gint64 start = g_get_monotonic_time();
	char buf[256];

	if (g_socket_send(socket, "GET / HTTP/1.1\r\nHo", 19, NULL, NULL) != 19)
		return NULL;
	/* 10 s timeout on the socket: an error, not 0, if the server never closes it */
	if (g_socket_receive(socket, buf, sizeof buf, NULL, NULL) != 0)
		return NULL;
	return GINT_TO_POINTER((int)((g_get_monotonic_time() - start) / G_USEC_PER_SEC) + 1);
}

static void
test_names_slow_head(void)
{
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--handshake-timeout", "2", NULL);
	g_autofree char *answer = NULL;
	int seconds;

	g_test_summary("A head that comes in pieces is routed once whole; one that never ends "
		       "is closed after --handshake-timeout");
	answer = pb_test_run_in_thread(pieces_cb, GUINT_TO_POINTER(ws_port), 15);
	g_assert_nonnull(answer);
	g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 404 "));
	seconds = GPOINTER_TO_INT(pb_test_run_in_thread(silent_cb, GUINT_TO_POINTER(ws_port), 15));
	g_assert_cmpint(seconds, >=, 2);
	g_assert_cmpint(seconds, <=, 5);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

static void
test_names_tls(void)
{
	Service *alpha = service_new("alpha");
	g_autofree char *cert = g_test_build_filename(G_TEST_DIST, "tls", "wildcard.pem", NULL);
	g_autofree char *key = g_test_build_filename(G_TEST_DIST, "tls", "wildcard.key", NULL);
	g_autoptr(GTlsDatabase) database = g_tls_file_database_new(cert, NULL);
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--tls-cert", cert, "--tls-key", key, NULL);
	g_autofree char *server_url = g_strdup_printf("wss://127.0.0.1:%u", ws_port);
	g_autofree char *local_port = g_strdup_printf("%u", alpha->port);
	g_autofree char *url = g_strdup_printf("HTTP URL: https://alpha." DOMAIN ":%u\n", ws_port);
	PbTestProc *client = pb_test_proc_spawn(
	    launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", local_port, "-h", "127.0.0.1",
	    "-s", server_url, "--ca-file", cert, "--no-dbus", "--name", "alpha", NULL);
	PbTestHttpsGet named = {ws_port, "alpha." DOMAIN, "/who", database};
	PbTestHttpsGet unknown = {ws_port, "nobody." DOMAIN, "/who", database};
	PbTestHttpsGet own = {ws_port, DOMAIN, "/healthz", database};
	g_autofree char *answer = NULL;

	g_test_summary("On a TLS WebSocket port with a wildcard certificate, https://NAME.DOMAIN "
		       "is terminated by the server (the ClientHello's server_name routes it) and "
		       "reaches the local service as plain HTTP; other names reach the server");
	g_assert_nonnull(database);
	pb_test_wait_until(pb_test_proc_said(client, url) || pb_test_proc_exited(client), 10);
	if (!pb_test_proc_said(client, url))
		g_error("no “%s” in: %s", url, pb_test_proc_get_output(client));

	answer = pb_test_run_in_thread(pb_test_https_get_cb, &named, 20);
	g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 200 "));
	g_assert_true(g_str_has_suffix(answer, "\r\n\r\nalpha"));
	g_clear_pointer(&answer, g_free);
	answer = pb_test_run_in_thread(pb_test_https_get_cb, &unknown, 20);
	g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 404 "));
	g_clear_pointer(&answer, g_free);
	answer = pb_test_run_in_thread(pb_test_https_get_cb, &own, 20);
	g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 200 "));
	g_assert_true(g_str_has_suffix(answer, "ok\n"));

	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	service_free(alpha);
}

static void
test_names_tls_away(void)
{
	g_autofree char *cert = g_test_build_filename(G_TEST_DIST, "tls", "wildcard.pem", NULL);
	g_autofree char *key = g_test_build_filename(G_TEST_DIST, "tls", "wildcard.key", NULL);
	g_autoptr(GTlsDatabase) database = g_tls_file_database_new(cert, NULL);
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	guint16 ws_port;
	PbTestProc *server =
	    serve(&ws_port, "--tls-cert", cert, "--tls-key", key, "--grace", "30", NULL);
	g_autofree char *server_url = g_strdup_printf("wss://127.0.0.1:%u", ws_port);
	g_autofree char *url = g_strdup_printf("HTTP URL: https://alpha." DOMAIN ":%u\n", ws_port);
	PbTestProc *client = pb_test_proc_spawn(
	    launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", "9", "-h", "127.0.0.1", "-s",
	    server_url, "--ca-file", cert, "--no-dbus", "--name", "alpha", NULL);
	PbTestHttpsGet away = {ws_port, "alpha." DOMAIN, "/healthz", database};
	PbTestHttpsGet unknown = {ws_port, "nobody." DOMAIN, "/healthz", database};
	g_autofree char *answer = NULL;

	g_test_summary("On a TLS WebSocket port too, a name whose client is away gets 503 with "
		       "Retry-After, an unknown name 404 naming it: a tunnel's host is never the "
		       "server's own (not even /healthz)");
	pb_test_wait_until(pb_test_proc_said(client, url) || pb_test_proc_exited(client), 10);
	g_assert_true(pb_test_proc_said(client, url));
	pb_test_proc_kill(client); /* lost, not a goodbye: the name is kept for --grace */
	pb_test_wait_until(pb_test_proc_said(server, "name alpha kept for it"), 10);
	answer = pb_test_run_in_thread(pb_test_https_get_cb, &away, 20);
	g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 503 "));
	g_assert_nonnull(strstr(answer, "\r\nRetry-After: 5\r\n"));
	g_assert_true(g_str_has_suffix(answer, "is away: it has a moment to come back.\n"));
	g_clear_pointer(&answer, g_free);
	answer = pb_test_run_in_thread(pb_test_https_get_cb, &unknown, 20);
	g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 404 "));
	g_assert_true(g_str_has_suffix(answer, "No tunnel is named nobody." DOMAIN ".\n"));
	pb_test_proc_finish(client);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

/* A raw local service for one request: it keeps the first line it reads (a PROXY header),
 * and answers "proxied". */
static gboolean
proxied_service_cb(GSocketService *service, GSocketConnection *connection, GObject *source,
		   gpointer user_data)
{
	char **first_line = user_data;
	GSocket *socket = g_socket_connection_get_socket(connection);
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n"
				     "Connection: close\r\n\r\nproxied";
	char buf[4096];
	gsize got = 0;

	/* the tunnel is another process: waiting here blocks nobody it needs */
	g_socket_set_timeout(socket, 10);
	while (got < sizeof buf - 1 && g_strstr_len(buf, (gssize)got, "\r\n\r\n") == NULL) {
		gssize n = g_socket_receive(socket, buf + got, sizeof buf - 1 - got, NULL, NULL);

		if (n <= 0)
			break;
		got += (gsize)n;
	}
	buf[got] = '\0';
	*first_line = g_strndup(buf, strcspn(buf, "\r"));
	g_socket_send(socket, answer, sizeof answer - 1, NULL, NULL);
	g_socket_shutdown(socket, FALSE, TRUE, NULL);
	return TRUE;
}

static void
test_names_tls_proxy_header(void)
{
	g_autofree char *cert = g_test_build_filename(G_TEST_DIST, "tls", "wildcard.pem", NULL);
	g_autofree char *key = g_test_build_filename(G_TEST_DIST, "tls", "wildcard.key", NULL);
	g_autoptr(GTlsDatabase) database = g_tls_file_database_new(cert, NULL);
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autoptr(GSocketService) service = g_socket_service_new();
	g_autofree char *first_line = NULL;
	guint16 local_port;
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--tls-cert", cert, "--tls-key", key, NULL);
	g_autofree char *server_url = g_strdup_printf("wss://127.0.0.1:%u", ws_port);
	g_autofree char *local = NULL;
	g_autofree char *url = g_strdup_printf("HTTP URL: https://alpha." DOMAIN ":%u\n", ws_port);
	g_autofree char *expected = NULL;
	PbTestProc *client;
	PbTestHttpsGet named = {ws_port, "alpha." DOMAIN, "/", database};
	g_autofree char *answer = NULL;

	g_test_summary("A connection that came by name over TLS terminated by the server gets "
		       "the public client's addresses in its PROXY header, not UNKNOWN");
	local_port = g_socket_listener_add_any_inet_port(G_SOCKET_LISTENER(service), NULL, NULL);
	g_assert_cmpuint(local_port, >, 0);
	g_signal_connect(service, "incoming", G_CALLBACK(proxied_service_cb), &first_line);
	local = g_strdup_printf("%u", local_port);
	client = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", local,
				    "-h", "127.0.0.1", "-s", server_url, "--ca-file", cert,
				    "--no-dbus", "--name", "alpha", "--proxy-protocol", "v1", NULL);
	pb_test_wait_until(pb_test_proc_said(client, url) || pb_test_proc_exited(client), 10);
	g_assert_true(pb_test_proc_said(client, url));

	answer = pb_test_run_in_thread(pb_test_https_get_cb, &named, 20);
	g_assert_true(g_str_has_suffix(answer, "\r\n\r\nproxied"));
	pb_test_wait_until(first_line != NULL, 10);
	/* PROXY TCP4 <public client> <server's port>: the addresses of the TLS connection */
	expected = g_strdup_printf(" %u", ws_port);
	g_assert_true(g_str_has_prefix(first_line, "PROXY TCP4 127.0.0.1 127.0.0.1 "));
	g_assert_true(g_str_has_suffix(first_line, expected));

	g_socket_service_stop(service);
	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

/* Sends openssl's ClientHello for alpha.example.test and no more. Returns: the seconds until
 * the server closed the connection, 0 if it did not in 10 s */
static gpointer
stalled_hello_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	g_autofree char *path = g_test_build_filename(G_TEST_DIST, "fuzz", "corpus", "client-hello",
						      "openssl-sni", NULL);
	g_autofree char *hello = NULL;
	gsize len = 0;
	gint64 start = g_get_monotonic_time();
	char buf[4096];
	gssize n;

	g_assert_true(g_file_get_contents(path, &hello, &len, NULL));
	if (g_socket_send(socket, hello, len, NULL, NULL) != (gssize)len)
		return NULL;
	/* the server's hello comes, then nothing: 10 s timeout on the socket */
	while ((n = g_socket_receive(socket, buf, sizeof buf, NULL, NULL)) > 0)
		;
	if (n != 0)
		return NULL;
	return GINT_TO_POINTER((int)((g_get_monotonic_time() - start) / G_USEC_PER_SEC) + 1);
}

static void
test_names_tls_stalled(void)
{
	g_autofree char *cert = g_test_build_filename(G_TEST_DIST, "tls", "wildcard.pem", NULL);
	g_autofree char *key = g_test_build_filename(G_TEST_DIST, "tls", "wildcard.key", NULL);
	g_autofree char *other = g_test_build_filename(G_TEST_DIST, "tls", "server.pem", NULL);
	g_autofree char *other_key = g_test_build_filename(G_TEST_DIST, "tls", "server.key", NULL);
	guint16 ws_port;
	PbTestProc *server =
	    serve(&ws_port, "--tls-cert", cert, "--tls-key", key, "--handshake-timeout", "2", NULL);
	int seconds;

	g_test_summary("A TLS client for a name that stops in the middle of its handshake is "
		       "closed after --handshake-timeout; a certificate that does not cover "
		       "*.DOMAIN is said at start");
	seconds =
	    GPOINTER_TO_INT(pb_test_run_in_thread(stalled_hello_cb, GUINT_TO_POINTER(ws_port), 15));
	g_assert_cmpint(seconds, >=, 2);
	g_assert_cmpint(seconds, <=, 5);
	g_assert_false(pb_test_proc_said(server, "does not cover"));
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);

	server = serve(&ws_port, "--tls-cert", other, "--tls-key", other_key, NULL);
	pb_test_wait_until(pb_test_proc_said(server, "does not cover *." DOMAIN), 10);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

/* A local TLS echo service with its own certificate, tests/tls/alpha.pem (alpha.DOMAIN
 * only): what a tunnel behind serve --sni-port forwards to. */
typedef struct {
	GSocketService *service;      /* (owned) */
	GTlsCertificate *certificate; /* (owned) */
	guint16 port;
} TlsService;

static void
tls_service_spliced_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GIOStream) tls = user_data;

	/* a public client that leaves without close_notify is an error here, and fine */
	(void)g_output_stream_splice_finish(G_OUTPUT_STREAM(source), res, NULL);
}

static void
tls_service_handshake_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GIOStream) tls = user_data;

	if (!g_tls_connection_handshake_finish(G_TLS_CONNECTION(tls), res, NULL))
		return;
	/* echo: what comes in goes back out */
	g_output_stream_splice_async(
	    g_io_stream_get_output_stream(tls), g_io_stream_get_input_stream(tls),
	    G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
	    G_PRIORITY_DEFAULT, NULL, tls_service_spliced_cb, g_object_ref(tls));
}

static gboolean
tls_service_incoming_cb(GSocketService *service, GSocketConnection *connection,
			GObject *source_object, gpointer user_data)
{
	TlsService *self = user_data;
	g_autoptr(GError) error = NULL;
	GIOStream *tls =
	    g_tls_server_connection_new(G_IO_STREAM(connection), self->certificate, &error);

	g_assert_no_error(error);
	g_tls_connection_handshake_async(G_TLS_CONNECTION(tls), G_PRIORITY_DEFAULT, NULL,
					 tls_service_handshake_cb, tls);
	return TRUE;
}

static TlsService *
tls_service_new(const char *cert, const char *key)
{
	TlsService *self = g_new0(TlsService, 1);
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;

	self->certificate = g_tls_certificate_new_from_files(cert, key, &error);
	g_assert_no_error(error);
	self->service = g_socket_service_new();
	g_socket_listener_add_address(G_SOCKET_LISTENER(self->service), address,
				      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &bound,
				      &error);
	g_assert_no_error(error);
	self->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	g_signal_connect(self->service, "incoming", G_CALLBACK(tls_service_incoming_cb), self);
	g_socket_service_start(self->service);
	return self;
}

static void
tls_service_free(TlsService *self)
{
	g_socket_service_stop(self->service);
	g_socket_listener_close(G_SOCKET_LISTENER(self->service));
	g_object_unref(self->service);
	g_object_unref(self->certificate);
	g_free(self);
}

/* A public TLS client of 127.0.0.1:port for alpha.DOMAIN that trusts only the local
 * service's certificate. */
typedef struct {
	guint16 port;
	const char *cert; /* the local service's */
} SniEcho;

/* Returns: NULL when the local service's own certificate answered and echoed, else what
 * went wrong */
static gpointer
sni_echo_cb(gpointer user_data)
{
	SniEcho *job = user_data;
	static const char message[] = "through the name, still encrypted";
	g_autoptr(GTlsDatabase) database = g_tls_file_database_new(job->cert, NULL);
	g_autoptr(GTlsCertificate) expected = g_tls_certificate_new_from_file(job->cert, NULL);
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketConnection) tcp = NULL;
	g_autoptr(GSocketConnectable) identity = g_network_address_new("alpha." DOMAIN, job->port);
	g_autoptr(GIOStream) tls = NULL;
	g_autoptr(GError) error = NULL;
	GTlsCertificate *peer;
	char buf[sizeof message] = {0};
	gsize got = 0;

	g_socket_client_set_timeout(client, 10);
	tcp = g_socket_client_connect_to_host(client, "127.0.0.1", job->port, NULL, &error);
	g_assert_no_error(error);
	tls = g_tls_client_connection_new(G_IO_STREAM(tcp), identity, &error);
	g_assert_no_error(error);
	g_tls_connection_set_database(G_TLS_CONNECTION(tls), database);
	if (!g_tls_connection_handshake(G_TLS_CONNECTION(tls), NULL, &error))
		return g_strdup_printf("handshake: %s", error->message);
	peer = g_tls_connection_get_peer_certificate(G_TLS_CONNECTION(tls));
	if (peer == NULL || !g_tls_certificate_is_same(peer, expected))
		return g_strdup("not the local service's certificate");
	if (!g_output_stream_write_all(g_io_stream_get_output_stream(tls), message, sizeof message,
				       NULL, NULL, &error) ||
	    !g_input_stream_read_all(g_io_stream_get_input_stream(tls), buf, sizeof buf, &got, NULL,
				     &error))
		return g_strdup_printf("echo: %s", error->message);
	if (got != sizeof message || memcmp(buf, message, sizeof message) != 0)
		return g_strdup("echo: not what was sent");
	return NULL;
}

/* Sends a ClientHello for beta.DOMAIN in three records, a byte at a time (each its own TCP
 * segment, 2 ms apart). Returns: whether the echo service behind beta sent it all back */
static gpointer
hello_bytes_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	g_autoptr(GByteArray) hello = client_hello_new("beta." DOMAIN, 3);
	g_autofree guint8 *echo = g_malloc0(hello->len);
	gsize got = 0;

	g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
	for (guint i = 0; i < hello->len; i++) {
		if (g_socket_send(socket, (const char *)hello->data + i, 1, NULL, NULL) != 1)
			return GINT_TO_POINTER(FALSE);
		g_usleep(2000);
	}
	while (got < hello->len) {
		gssize n =
		    g_socket_receive(socket, (char *)echo + got, hello->len - got, NULL, NULL);

		if (n <= 0)
			return GINT_TO_POINTER(FALSE);
		got += (gsize)n;
	}
	return GINT_TO_POINTER(memcmp(echo, hello->data, hello->len) == 0);
}

static void
test_names_sni_port(void)
{
	g_autofree char *cert = g_test_build_filename(G_TEST_DIST, "tls", "alpha.pem", NULL);
	g_autofree char *key = g_test_build_filename(G_TEST_DIST, "tls", "alpha.key", NULL);
	TlsService *alpha = tls_service_new(cert, key);
	PbTestService *beta = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--sni-port", "0", NULL);
	guint16 sni_port = pb_test_proc_wait_port(server, "Names on --sni-port: https://*." DOMAIN);
	PbTestProc *client_alpha = forward_online(ws_port, alpha->port, "alpha");
	PbTestProc *client_beta = forward_online(ws_port, pb_test_service_get_port(beta), "beta");
	SniEcho job = {sni_port, cert};
	g_autofree char *failure = NULL;

	g_test_summary("serve --sni-port: TLS for NAME.DOMAIN passes through untouched to tunnel "
		       "NAME, whose local service answers with its own certificate; a ClientHello "
		       "split over records and sent a byte at a time reaches it intact");
	failure = pb_test_run_in_thread(sni_echo_cb, &job, 20);
	g_assert_null(failure);
	g_assert_true(pb_test_run_in_thread(hello_bytes_cb, GUINT_TO_POINTER(sni_port), 20));

	/* only with --domain */
	{
		g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
		PbTestProc *bad = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve",
						     "-p", "0", "--sni-port", "0", NULL);

		pb_test_proc_wait_exit(bad);
		g_assert_nonnull(strstr(pb_test_proc_get_output(bad), "--sni-port needs --domain"));
		g_assert_cmpint(pb_test_proc_finish(bad), ==, 2);
	}

	g_assert_cmpint(pb_test_proc_finish(client_beta), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(client_alpha), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	pb_test_service_free(beta);
	tls_service_free(alpha);
}

/* What a public client that sends some bytes to a port and no more gets back. */
typedef struct {
	guint16 port;
	GByteArray *sent; /* (unowned) */
} Refused;

/* Returns: (transfer full) (nullable): all the server sent until it closed the connection
 * (with a FIN: a reset is an error), %NULL if it did not close it in 10 s */
static gpointer
refused_cb(gpointer user_data)
{
	Refused *job = user_data;
	g_autoptr(GSocket) socket = pb_test_connect(job->port);
	g_autoptr(GByteArray) received = g_byte_array_new();
	char buf[256];
	gssize n;

	if (g_socket_send(socket, (const char *)job->sent->data, job->sent->len, NULL, NULL) !=
	    (gssize)job->sent->len)
		return NULL;
	while ((n = g_socket_receive(socket, buf, sizeof buf, NULL, NULL)) > 0)
		g_byte_array_append(received, (const guint8 *)buf, (guint)n);
	if (n != 0)
		return NULL;
	return g_steal_pointer(&received);
}

/* Checks that @sent to @port gets a TLS fatal unrecognized_name alert (@alert) or nothing,
 * then the end of the connection. */
static void
assert_refused(guint16 port, GByteArray *sent, gboolean alert)
{
	static const guint8 unrecognized_name[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 112};
	Refused job = {port, sent};
	g_autoptr(GByteArray) received = pb_test_run_in_thread(refused_cb, &job, 20);

	g_assert_nonnull(received);
	if (alert)
		g_assert_cmpmem(received->data, received->len, unrecognized_name,
				sizeof unrecognized_name);
	else
		g_assert_cmpuint(received->len, ==, 0);
}

static void
test_names_sni_refused(void)
{
	Service *alpha = service_new("alpha");
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--sni-port", "0", "--handshake-timeout", "2", NULL);
	guint16 sni_port = pb_test_proc_wait_port(server, "Names on --sni-port: https://*." DOMAIN);
	PbTestProc *client = forward_online(ws_port, alpha->port, "alpha");
	static const char *const names[] = {NULL, "nobody." DOMAIN, DOMAIN, "alpha.other.test",
					    "127.0.0.1"};
	g_autoptr(GByteArray) http = g_byte_array_new();

	g_test_summary("serve --sni-port: a ClientHello with no server_name, or one that names no "
		       "tunnel (unknown, not under DOMAIN, away) gets a TLS unrecognized_name "
		       "alert and the end; bytes that are not TLS only the end; a ClientHello "
		       "that stops half way, the end after --handshake-timeout");
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(GByteArray) hello = client_hello_new(names[i], 1);

		assert_refused(sni_port, hello, TRUE);
	}
	g_byte_array_append(http,
			    (const guint8 *)"GET / HTTP/1.1\r\nHost: alpha." DOMAIN "\r\n\r\n",
			    strlen("GET / HTTP/1.1\r\nHost: alpha." DOMAIN "\r\n\r\n"));
	assert_refused(sni_port, http, FALSE);
	{
		g_autoptr(GByteArray) hello = client_hello_new("alpha." DOMAIN, 1);
		gint64 start = g_get_monotonic_time();
		gint64 seconds;

		g_byte_array_set_size(hello, hello->len / 2);
		assert_refused(sni_port, hello, FALSE);
		seconds = (g_get_monotonic_time() - start) / G_USEC_PER_SEC;
		g_assert_cmpint(seconds, >=, 1);
		g_assert_cmpint(seconds, <=, 5);
	}

	/* lost, not a goodbye: its name is kept for it, and still not answered here */
	pb_test_proc_kill(client);
	pb_test_wait_until(pb_test_proc_said(server, "kept for it"), 10);
	{
		g_autoptr(GByteArray) hello = client_hello_new("alpha." DOMAIN, 1);

		assert_refused(sni_port, hello, TRUE);
	}

	(void)pb_test_proc_finish(client);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	service_free(alpha);
}

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	big_body = g_malloc(BIG_SIZE);
	pb_test_pattern_fill(big_body, BIG_SIZE, 0);
	g_test_add_func("/names/parse", test_names_parse);
	g_test_add_func("/names/client-hello", test_names_client_hello);
	g_test_add_func("/names/route", test_names_route);
	g_test_add_func("/names/http-port", test_names_http_port);
	g_test_add_func("/names/tls", test_names_tls);
	g_test_add_func("/names/tls-stalled", test_names_tls_stalled);
	g_test_add_func("/names/tls-proxy-header", test_names_tls_proxy_header);
	g_test_add_func("/names/tls-away", test_names_tls_away);
	g_test_add_func("/names/sni-port", test_names_sni_port);
	g_test_add_func("/names/sni-refused", test_names_sni_refused);
	g_test_add_func("/names/refused", test_names_refused);
	g_test_add_func("/names/grace", test_names_grace);
	g_test_add_func("/names/only", test_names_only);
	g_test_add_func("/names/public-url", test_names_public_url);
	g_test_add_func("/names/log", test_names_log);
	g_test_add_func("/names/oversized", test_names_oversized);
	g_test_add_func("/names/slow-head", test_names_slow_head);
	status = g_test_run();
	g_free(big_body);
	return status;
}
