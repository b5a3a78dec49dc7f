/* SPDX-License-Identifier: ISC */
#define _GNU_SOURCE /* memmem() */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "pb-frame.h"
#include "pb-name.h"
#include "pb-test-utils.h"

/*
 * Named tunnels (serve --domain, forward --name): real `piggyback` processes over
 * loopback.
 */

#define DOMAIN "example.test"

/* `piggyback serve --domain example.test` on 127.0.0.1 with the options that follow. */
static PbTestProc *
serve(guint16 *ws_port, const char *first, ...);

static PbTestProc *
serve(guint16 *ws_port, const char *first, ...)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	const char *const fixed[] = {g_getenv("PB_PIGGYBACK"),
				     "serve",
				     "-p",
				     "0",
				     "-l",
				     "127.0.0.1",
				     "-H",
				     "127.0.0.1",
				     "--domain",
				     DOMAIN};
	PbTestProc *server;
	va_list args;

	for (gsize i = 0; i < G_N_ELEMENTS(fixed); i++)
		g_ptr_array_add(argv, (gpointer)fixed[i]);
	va_start(args, first);
	for (const char *arg = first; arg != NULL; arg = va_arg(args, const char *))
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);
	server = pb_test_proc_spawnv(launcher, (const char *const *)argv->pdata);
	*ws_port = pb_test_proc_wait_port(server, "Listening on");
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

	g_test_summary("Names are RFC 1123 labels in lowercase");
	for (gsize i = 0; i < G_N_ELEMENTS(valid); i++)
		g_assert_true(pb_name_is_valid(valid[i]));
	for (gsize i = 0; i < G_N_ELEMENTS(invalid); i++)
		g_assert_false(pb_name_is_valid(invalid[i]));
	for (guint i = 0; i < 100; i++) {
		g_autofree char *name = pb_name_new_random();

		g_assert_true(pb_name_is_valid(name));
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

/* The status of an upgrade request to @port with @headers. */
static guint
upgrade_status(guint16 port, const char *headers)
{
	g_autofree char *head = g_strdup_printf(
	    "GET " PB_WS_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n%s\r\n",
	    headers);
	g_autoptr(GSocket) socket = pb_test_connect(port);
	char buf[64] = {0};

	g_assert_cmpint(g_socket_send(socket, head, strlen(head), NULL, NULL), ==, strlen(head));
	g_assert_cmpint(g_socket_receive(socket, buf, sizeof buf - 1, NULL, NULL), >=, 12);
	return (guint)g_ascii_strtoull(buf + 9, NULL, 10);
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

	g_assert_cmpuint(upgrade_status(ws_port, "Piggyback-Features: flow, name\r\n"
						 "Piggyback-Name: alpha\r\n"),
			 ==, 409);
	g_assert_cmpuint(upgrade_status(ws_port, "Piggyback-Features: name\r\n"
						 "Piggyback-Name: Bad_Name\r\n"),
			 ==, 400);
	g_assert_cmpuint(upgrade_status(ws_port, "Piggyback-Features: name\r\n"
						 "Piggyback-Name: -a\r\n"),
			 ==, 400);

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

static void
test_names_grace(void)
{
	guint16 ws_port;
	PbTestProc *server = serve(&ws_port, "--grace", "30", NULL);
	g_autoptr(GSocket) first = NULL;
	g_autoptr(GSocket) again = NULL;
	g_autofree char *hello = NULL;
	g_autofree char *session_header = NULL;
	PbTestProc *other;
	const char *session;

	g_test_summary("A lost client's name is kept for it for --grace: another client gets "
		       "409, the same client (its session) gets its name back; a client that "
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

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/names/parse", test_names_parse);
	g_test_add_func("/names/refused", test_names_refused);
	g_test_add_func("/names/grace", test_names_grace);
	status = g_test_run();
	return status;
}
