/* SPDX-License-Identifier: ISC */
#define _GNU_SOURCE /* memmem() */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "pb-frame.h"
#include "pb-test-utils.h"

/*
 * Several services per client (forward --expose): the real `piggyback serve` and `forward`
 * over loopback, a local HTTP service (a SoupServer in this process) and a local echo
 * service; public clients in threads, while the main loop serves the local services.
 */

#define DOMAIN	   "example.test"
#define ECHO_SIZE  (256 * 1024)
#define N_PARALLEL 20

/* GET /who answers "web". */
static void
web_cb(SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
       gpointer user_data)
{
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_STATIC, "web", 3);
}

static SoupServer *
web_new(guint16 *port)
{
	SoupServer *soup = soup_server_new(NULL, NULL);

	soup_server_add_handler(soup, NULL, web_cb, NULL, NULL);
	*port = pb_test_soup_listen(soup);
	return soup;
}

/* A local echo service that can be stopped at once, its connections with it. */
typedef struct {
	GSocketService *service; /* (owned) */
	GPtrArray *connections;	 /* (owned) GSocketConnection, echoing */
	guint16 port;
} Echo;

static gboolean
echo_incoming_cb(GSocketService *service, GSocketConnection *connection, GObject *source,
		 gpointer user_data)
{
	Echo *echo = user_data;
	GIOStream *stream = G_IO_STREAM(connection);

	g_ptr_array_add(echo->connections, g_object_ref(connection));
	g_output_stream_splice_async(
	    g_io_stream_get_output_stream(stream), g_io_stream_get_input_stream(stream),
	    G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
	return TRUE;
}

static Echo *
echo_new(void)
{
	Echo *echo = g_new0(Echo, 1);
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;

	echo->service = g_socket_service_new();
	echo->connections = g_ptr_array_new_with_free_func(g_object_unref);
	g_socket_listener_set_backlog(G_SOCKET_LISTENER(echo->service), 128);
	g_socket_listener_add_address(G_SOCKET_LISTENER(echo->service), address,
				      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &bound,
				      &error);
	g_assert_no_error(error);
	echo->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	g_signal_connect(echo->service, "incoming", G_CALLBACK(echo_incoming_cb), echo);
	return echo;
}

/* Stops listening and closes every connection. */
static void
echo_free(Echo *echo)
{
	g_socket_service_stop(echo->service);
	g_socket_listener_close(G_SOCKET_LISTENER(echo->service));
	for (guint i = 0; i < echo->connections->len; i++)
		g_io_stream_close(echo->connections->pdata[i], NULL, NULL);
	g_ptr_array_unref(echo->connections);
	g_object_unref(echo->service);
	g_free(echo);
}

/* `piggyback serve --domain example.test` on 127.0.0.1 with the options that follow. */
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

/* `piggyback forward -p @local_port --name web` through @ws_port, then @args. */
static PbTestProc *
forward(guint16 ws_port, guint16 local_port, const char *const *args)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);

	g_ptr_array_add(argv, g_strdup(g_getenv("PB_PIGGYBACK")));
	g_ptr_array_add(argv, g_strdup("forward"));
	g_ptr_array_add(argv, g_strdup_printf("--server=127.0.0.1:%u", ws_port));
	g_ptr_array_add(argv, g_strdup_printf("--port=%u", local_port));
	g_ptr_array_add(argv, g_strdup("--host=127.0.0.1"));
	g_ptr_array_add(argv, g_strdup("--no-dbus"));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, g_strdup(args[i]));
	g_ptr_array_add(argv, NULL);
	return pb_test_proc_spawnv(launcher, (const char *const *)argv->pdata);
}

/* The port of the URL on @client's line that starts with @prefix ("Access URL (echo): "). */
static guint16
url_port(PbTestProc *client, const char *prefix)
{
	const char *output = pb_test_proc_get_output(client);
	const char *line = strstr(output, prefix);
	const char *end;
	const char *colon;

	g_assert_nonnull(line);
	end = strchr(line, '\n');
	g_assert_nonnull(end);
	colon = g_strrstr_len(line, end - line, ":");
	return (guint16)g_ascii_strtoull(colon + 1, NULL, 10);
}

/* One public client: @head (nullable) then ECHO_SIZE bytes of the pattern to an echo
 * service, all of it read back; or, with @http, GET /who answered "web". */
typedef struct {
	guint16 port;
	const char *host; /* (nullable) the Host of a request by name */
	gboolean http;
	int *n_ok; /* atomic */
	int *n_done;
} Job;

static gboolean
job_echo(Job *job)
{
	g_autoptr(GSocket) socket = pb_test_connect(job->port);
	g_autofree char *head =
	    job->host != NULL ? g_strdup_printf("GET / HTTP/1.1\r\nHost: %s\r\n\r\n", job->host)
			      : g_strdup("");
	gsize head_len = strlen(head);
	gsize size = head_len + ECHO_SIZE;
	g_autofree guint8 *out = g_malloc(size);
	g_autofree guint8 *in = g_malloc(size);
	gsize sent = 0;
	gsize got = 0;

	memcpy(out, head, head_len);
	pb_test_pattern_fill(out + head_len, ECHO_SIZE, 0);
	g_socket_set_timeout(socket, 20);
	while (got < size) {
		gssize n;

		if (sent < size) {
			g_autoptr(GError) error = NULL;

			n = g_socket_send_with_blocking(socket, (char *)out + sent,
							MIN(size - sent, 16384), TRUE, NULL,
							&error);
			if (n <= 0) {
				g_printerr("send: %s after %zu\n", error ? error->message : "0",
					   sent);
				return FALSE;
			}
			sent += (gsize)n;
		}
		if (!g_socket_condition_timed_wait(socket, G_IO_IN, sent < size ? 0 : 20000000,
						   NULL, NULL))
			continue;
		n = g_socket_receive(socket, (char *)in + got, size - got, NULL, NULL);
		if (n <= 0) {
			g_printerr("receive: %zd after %zu, sent %zu\n", n, got, sent);
			return FALSE;
		}
		got += (gsize)n;
	}
	for (gsize i = 0; i < size; i++)
		if (in[i] != out[i]) {
			g_printerr("differs at %zu of %zu\n", i, size);
			return FALSE;
		}
	return TRUE;
}

static gboolean
job_http(Job *job)
{
	g_autoptr(GSocket) socket = pb_test_connect(job->port);
	g_autofree char *request =
	    g_strdup_printf("GET /who HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
			    job->host != NULL ? job->host : "127.0.0.1");
	g_autoptr(GString) answer = g_string_new(NULL);
	g_autoptr(GError) error = NULL;
	g_autofree char *escaped = NULL;
	char buf[4096];
	gssize n;

	g_socket_set_timeout(socket, 20);
	n = g_socket_send(socket, request, strlen(request), NULL, &error);
	if (n != (gssize)strlen(request)) {
		g_printerr("send: %zd of %zu bytes: %s\n", n, strlen(request),
			   error != NULL ? error->message : "short");
		return FALSE;
	}
	while ((n = g_socket_receive(socket, buf, sizeof buf, NULL, &error)) > 0)
		g_string_append_len(answer, buf, n);
	if (g_str_has_prefix(answer->str, "HTTP/1.1 200 ") &&
	    g_str_has_suffix(answer->str, "\r\n\r\nweb"))
		return TRUE;
	/* what came instead, for the log of a failed run */
	escaped = g_strescape(answer->str, NULL);
	g_printerr("answer of %zu bytes (%s): %.200s\n", answer->len,
		   error != NULL ? error->message : "then EOF", escaped);
	return FALSE;
}

static gpointer
job_cb(gpointer user_data)
{
	Job *job = user_data;

	if (job->http ? job_http(job) : job_echo(job))
		g_atomic_int_inc(job->n_ok);
	else
		g_printerr("failed: %s to port %u, Host %s\n", job->http ? "http" : "echo",
			   job->port, job->host != NULL ? job->host : "-");
	g_atomic_int_inc(job->n_done);
	return NULL;
}

/* Runs @n jobs at once, each in a thread, while the main loop serves; returns how many
 * succeeded. */
static int
run_jobs(Job *jobs, guint n)
{
	g_autoptr(GPtrArray) threads = g_ptr_array_new();
	int n_ok = 0;
	int n_done = 0;

	for (guint i = 0; i < n; i++) {
		jobs[i].n_ok = &n_ok;
		jobs[i].n_done = &n_done;
		g_ptr_array_add(threads, g_thread_new("job", job_cb, &jobs[i]));
	}
	pb_test_wait_until(g_atomic_int_get(&n_done) == (int)n, 60);
	for (guint i = 0; i < threads->len; i++)
		g_thread_join(threads->pdata[i]);
	return g_atomic_int_get(&n_ok);
}

/* A forward with an HTTP service (web) and an echo service (echo), online. */
static PbTestProc *
forward_two(guint16 ws_port, guint16 web_port, guint16 echo_port)
{
	g_autofree char *expose = g_strdup_printf("echo=127.0.0.1:%u", echo_port);
	const char *const args[] = {"--name", "web", "--expose", expose, NULL};
	PbTestProc *client = forward(ws_port, web_port, args);

	pb_test_wait_until(
	    pb_test_proc_said(client, "HTTP URL (echo): ") || pb_test_proc_exited(client), 10);
	if (!pb_test_proc_said(client, "HTTP URL (echo): "))
		g_error("not online: %s", pb_test_proc_get_output(client));
	return client;
}

/* A server, and a client with an HTTP service and an echo service. */
typedef struct {
	SoupServer *web; /* (owned) */
	Echo *echo;	 /* (owned) (nullable) once stopped */
	guint16 ws_port;
	PbTestProc *server; /* (owned) */
	PbTestProc *client; /* (owned) */
} Two;

static Two
two_start(void)
{
	Two two = {0};
	guint16 web_port;

	two.web = web_new(&web_port);
	two.echo = echo_new();
	two.server = serve(&two.ws_port, NULL, NULL);
	two.client = forward_two(two.ws_port, web_port, two.echo->port);
	return two;
}

/* Both end cleanly (exit 0) on SIGTERM. */
static void
two_finish(Two *two)
{
	if (two->client != NULL) /* a test may have ended it */
		g_assert_cmpint(pb_test_proc_finish(two->client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(two->server), ==, 0);
	g_clear_pointer(&two->echo, echo_free);
	g_object_unref(two->web);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Two, two_finish)

static void
test_services_two(void)
{
	g_auto(Two) two = two_start();
	guint16 ws_port = two.ws_port;
	PbTestProc *server = two.server;
	PbTestProc *client = two.client;
	guint16 web_public = url_port(client, "Access URL: ");
	guint16 echo_public = url_port(client, "Access URL (echo): ");
	g_autofree char *http_url =
	    g_strdup_printf("HTTP URL: http://web." DOMAIN ":%u\n", ws_port);
	g_autofree char *echo_url =
	    g_strdup_printf("HTTP URL (echo): http://echo." DOMAIN ":%u\n", ws_port);
	Job jobs[4 * N_PARALLEL];

	g_test_summary("One client, an HTTP service and an echo service over one WebSocket: each "
		       "on its own port and name, 20 connections at once on each way in, "
		       "byte-exact");
	g_assert_true(pb_test_proc_said(client, http_url));
	g_assert_true(pb_test_proc_said(client, echo_url));
	g_assert_cmpuint(web_public, !=, echo_public);
	for (guint i = 0; i < N_PARALLEL; i++) {
		jobs[4 * i] = (Job){.port = web_public, .http = TRUE};
		jobs[4 * i + 1] = (Job){.port = echo_public};
		jobs[4 * i + 2] = (Job){.port = ws_port, .host = "web." DOMAIN, .http = TRUE};
		jobs[4 * i + 3] = (Job){.port = ws_port, .host = "echo." DOMAIN};
	}
	if (run_jobs(jobs, G_N_ELEMENTS(jobs)) != G_N_ELEMENTS(jobs))
		g_error("server: %s\nclient: %s", pb_test_proc_get_output(server),
			pb_test_proc_get_output(client));

	g_assert_cmpint(pb_test_proc_finish(g_steal_pointer(&two.client)), ==, 0);
	pb_test_wait_until(pb_test_proc_said(server, " and name echo closed"), 10);
}

static void
test_services_one_down(void)
{
	g_auto(Two) two = two_start();
	guint16 ws_port = two.ws_port;
	guint16 web_public = url_port(two.client, "Access URL: ");
	guint16 echo_public = url_port(two.client, "Access URL (echo): ");
	g_autoptr(GSocket) open = pb_test_connect(echo_public);
	g_autoptr(GSocket) refused = NULL;
	Job jobs[N_PARALLEL];
	char byte = 0;

	g_test_summary("The local service of one service stops: its public connections close, "
		       "the other service keeps working");
	g_socket_set_timeout(open, 10);
	g_assert_cmpint(g_socket_send(open, "x", 1, NULL, NULL), ==, 1);
	pb_test_wait_until(g_socket_condition_check(open, G_IO_IN) != 0, 10);
	g_assert_cmpint(g_socket_receive(open, &byte, 1, NULL, NULL), ==, 1);
	g_assert_cmpint(byte, ==, 'x');
	g_clear_pointer(&two.echo, echo_free); /* closes its connections, and its port */
	pb_test_wait_until(g_socket_condition_check(open, G_IO_IN) != 0, 10);
	g_assert_cmpint(g_socket_receive(open, &byte, 1, NULL, NULL), ==, 0);
	refused = pb_test_connect(echo_public);
	g_socket_set_timeout(refused, 10);
	g_assert_cmpint(g_socket_receive(refused, &byte, 1, NULL, NULL), ==, 0);

	for (guint i = 0; i < N_PARALLEL; i++)
		jobs[i] = (Job){.port = i % 2 ? web_public : ws_port,
				.host = i % 2 ? NULL : "web." DOMAIN,
				.http = TRUE};
	g_assert_cmpint(run_jobs(jobs, G_N_ELEMENTS(jobs)), ==, G_N_ELEMENTS(jobs));
}

static void
test_services_max(void)
{
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--max-services", "2", NULL);
	const char *const three[] = {"--expose", "a=1", "--expose", "b=2", NULL};
	const char *const two[] = {"--expose", "a=1", NULL};
	PbTestProc *client = forward(ws_port, 9, three);
	guint status;

	g_test_summary("serve --max-services: a client asking for more gets 403 with the reason "
		       "before the upgrade, and forward exits 1 saying it");
	pb_test_proc_wait_exit(client);
	g_assert_nonnull(strstr(pb_test_proc_get_output(client), "Too many services"));
	g_assert_cmpint(pb_test_proc_finish(client), ==, 1);
	client = forward(ws_port, 9, two);
	pb_test_wait_until(
	    pb_test_proc_said(client, "HTTP URL (a): ") || pb_test_proc_exited(client), 10);
	status = (guint)pb_test_proc_finish(client);
	g_assert_cmpuint(status, ==, 0);
	/* its log is read as it comes: wait for the line */
	pb_test_wait_until(pb_test_proc_said(server, "more than 2 services (--max-services)"), 10);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

static void
test_services_bad_specs(void)
{
	const char *const bad[][4] = {
	    {"--expose", "db=", NULL},		{"--expose", "=5432", NULL},
	    {"--expose", "db=0", NULL},		{"--expose", "db=65536", NULL},
	    {"--expose", "Bad=1", NULL},	{"--expose", "db=host:", NULL},
	    {"--expose", "db=[::1:5432", NULL}, {"--expose", "a=1 --expose", NULL},
	    {"--expose", "a=-1", NULL},
	};
	const char *const twice[] = {"--expose", "a=1", "--expose", "a=2", NULL};
	const char *const main_twice[] = {"--name", "a", "--expose", "a=2", NULL};

	g_test_summary("Bad --expose values, and two services with one name: exit 2 with the "
		       "offending value");
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		PbTestProc *client = forward(9, 9, bad[i]);

		pb_test_proc_wait_exit(client);
		g_test_message("%s: %s", bad[i][1], pb_test_proc_get_output(client));
		g_assert_nonnull(strstr(pb_test_proc_get_output(client), "--expose"));
		g_assert_nonnull(strstr(pb_test_proc_get_output(client), bad[i][1]));
		g_assert_cmpint(pb_test_proc_finish(client), ==, 2);
	}
	for (guint i = 0; i < 2; i++) {
		PbTestProc *client = forward(9, 9, i == 0 ? twice : main_twice);

		pb_test_proc_wait_exit(client);
		g_assert_nonnull(
		    strstr(pb_test_proc_get_output(client), "another service asks for the name a"));
		g_assert_cmpint(pb_test_proc_finish(client), ==, 2);
	}
}

/* Reads exactly @len bytes from @socket. */
static void
read_exactly(GSocket *socket, guint8 *buf, gsize len)
{
	gsize got = 0;

	while (got < len) {
		gssize n = g_socket_receive(socket, (char *)buf + got, len - got, NULL, NULL);

		g_assert_cmpint(n, >, 0);
		got += (gsize)n;
	}
}

/* The HELLO that follows a 101 on @socket: one server frame (not masked), a PiggyBack
 * frame header, then the JSON, returned as text. */
static char *
read_hello(GSocket *socket)
{
	guint8 head[4];
	gsize len;
	g_autofree guint8 *payload = NULL;

	g_socket_set_timeout(socket, 10);
	read_exactly(socket, head, 2);
	len = head[1] & 0x7f;
	g_assert_cmpuint(len, <=, 126);
	if (len == 126) {
		read_exactly(socket, head + 2, 2);
		len = (gsize)head[2] << 8 | head[3];
	}
	g_assert_cmpuint(len, >, PB_FRAME_HEADER_SIZE);
	payload = g_malloc(len);
	read_exactly(socket, payload, len);
	g_assert_cmpuint(payload[0], ==, PB_FRAME_HELLO);
	return g_strndup((const char *)payload + PB_FRAME_HEADER_SIZE, len - PB_FRAME_HEADER_SIZE);
}

/* The value of "@member":"…" in @json. */
static char *
json_string(const char *json, const char *member)
{
	g_autofree char *key = g_strdup_printf("\"%s\":\"", member);
	const char *start = strstr(json, key);

	g_assert_nonnull(start);
	start += strlen(key);
	return g_strndup(start, strcspn(start, "\""));
}

static void
test_services_grace(void)
{
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--grace", "30", NULL);
	const char *features = "Piggyback-Features: flow, eof, name, services\r\n"
			       "Piggyback-Name: web\r\n"
			       "Piggyback-Services: db, -\r\n";
	g_autoptr(GSocket) first = pb_test_ws_upgrade(ws_port, features);
	g_autoptr(GSocket) again = NULL;
	g_autofree char *hello = read_hello(first);
	g_autofree char *session = json_string(hello, "session");
	g_autofree char *headers =
	    g_strdup_printf("%sPiggyback-Session: %s\r\n", features, session);
	g_autofree char *hello_again = NULL;
	g_autofree char *services = NULL;
	const char *list;

	g_test_summary("A client's services come back with its session within --grace, with "
		       "their ports and names; an unnamed one is named after the first");
	list = strstr(hello, "\"services\":[");
	g_assert_nonnull(list);
	services = g_strndup(list, strcspn(list, "]") + 1);
	g_assert_nonnull(strstr(services, "\"name\":\"db\""));
	g_assert_nonnull(strstr(services, "\"name\":\"web-3\""));
	g_socket_close(first, NULL); /* lost, not a goodbye */
	pb_test_wait_until(pb_test_proc_said(server, "kept for it for 30 s"), 10);
	/* meanwhile the names are its own */
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, "Piggyback-Features: name, services\r\n"
							    "Piggyback-Services: db\r\n"),
			 ==, 409);
	again = pb_test_ws_upgrade(ws_port, headers);
	hello_again = read_hello(again);
	g_assert_nonnull(strstr(hello_again, services));
	pb_test_wait_until(pb_test_proc_said(server, "is back: its port "), 10);
	g_socket_close(again, NULL);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

static void
test_services_header_bounds(void)
{
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, NULL, NULL);
	g_autoptr(GString) many = g_string_new("Piggyback-Features: name, services\r\n"
					       "Piggyback-Services: ");
	g_autoptr(GString) commas = g_string_new("Piggyback-Features: name, services\r\n"
						 "Piggyback-Services: ");

	g_test_summary("Piggyback-Services from a hostile client: 0 entries is one service, 15 "
		       "further ones the most, 16 is 403 (and 3001 cost no more), an entry that "
		       "is not a name (6000 commas) or twice the same 400");
	for (guint i = 0; i < PB_MAX_SERVICES_DEFAULT - 1; i++)
		g_string_append(many, i > 0 ? ", -" : "-");
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, "Piggyback-Features: services\r\n"
							    "Piggyback-Services: \r\n"),
			 ==, 101);
	g_string_append(many, "\r\n");
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, many->str), ==, 101);
	g_string_truncate(many, many->len - 2);
	g_string_append(many, ", -\r\n");
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, many->str), ==, 403);
	/* under libsoup's header limit, far over ours: read no further than ours */
	for (guint i = 0; i < 3000; i++)
		g_string_append(commas, "-,");
	g_string_append(commas, "-\r\n");
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, commas->str), ==, 403);
	g_string_assign(commas, "Piggyback-Features: name, services\r\nPiggyback-Services: ");
	for (guint i = 0; i < 6000; i++)
		g_string_append_c(commas, ',');
	g_string_append(commas, "\r\n");
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, commas->str), ==, 400);
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, "Piggyback-Features: name, services\r\n"
							    "Piggyback-Services: Bad\r\n"),
			 ==, 400);
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, "Piggyback-Features: name, services\r\n"
							    "Piggyback-Services: a, a\r\n"),
			 ==, 400);
	g_assert_cmpuint(pb_test_ws_upgrade_status(ws_port, "Piggyback-Features: name, services\r\n"
							    "Piggyback-Name: a\r\n"
							    "Piggyback-Services: a\r\n"),
			 ==, 400);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/services/two", test_services_two);
	g_test_add_func("/services/one-down", test_services_one_down);
	g_test_add_func("/services/max", test_services_max);
	g_test_add_func("/services/bad-specs", test_services_bad_specs);
	g_test_add_func("/services/grace", test_services_grace);
	g_test_add_func("/services/header-bounds", test_services_header_bounds);
	return g_test_run();
}
