/* SPDX-License-Identifier: ISC */
#define _GNU_SOURCE /* memmem() */
#include "config.h"

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>

#include "pb-test-utils.h"

/*
 * Several `piggyback serve` instances behind the real HAProxy, configured by the shipped
 * data/haproxy.cfg.example with loopback addresses put in: every name is answered by its
 * own local service through HAProxy, when an instance dies, comes back, or drains. Public
 * requests go on in a thread the whole time and each failure is counted.
 */

#define DOMAIN	  "example.test"
#define N_SERVERS 3
#define N_NAMES	  8
#define DRAIN_S	  8 /* more than HAProxy takes to see it: 2 checks 2 s apart */
#define N_LATE	  4

static const char *const names[N_NAMES] = {"ant", "bee", "cat", "dog", "elk", "fox", "gnu", "hen"};
/* clients that come while an instance drains */
static const char *const late_names[N_LATE] = {"ibis", "jay", "kiwi", "lark"};

/* A local HTTP service that answers every request with its name. */
typedef struct {
	SoupServer *soup; /* (owned) */
	const char *name;
	guint16 port;
} Service;

static void
service_cb(SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
	   gpointer user_data)
{
	Service *service = user_data;

	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_STATIC, service->name,
					 strlen(service->name));
}

static void
service_init(Service *service, const char *name)
{
	service->name = name;
	service->soup = soup_server_new(NULL, NULL);
	soup_server_add_handler(service->soup, NULL, service_cb, service, NULL);
	service->port = pb_test_soup_listen(service->soup);
}

static void
service_clear(Service *service)
{
	soup_server_disconnect(service->soup);
	g_clear_object(&service->soup);
}

/* One GET of @path with Host @host from 127.0.0.1:@port, on a connection of its own, within
 * 5 s; its status (0: no answer) and, in *@body, its body. */
static guint
get(guint16 port, const char *host, const char *path, char **body)
{
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, port);
	g_autoptr(GSocket) socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
	g_autofree char *head =
	    g_strdup_printf("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
	g_autoptr(GByteArray) answer = g_byte_array_new();
	const char *end;
	char chunk[4096];
	gssize n;

	g_socket_set_timeout(socket, 5);
	if (!g_socket_connect(socket, address, NULL, NULL) ||
	    g_socket_send(socket, head, strlen(head), NULL, NULL) != (gssize)strlen(head))
		return 0;
	while (answer->len < 65536 &&
	       (n = g_socket_receive(socket, chunk, sizeof chunk, NULL, NULL)) > 0)
		g_byte_array_append(answer, (const guint8 *)chunk, (guint)n);
	g_byte_array_append(answer, (const guint8 *)"", 1);
	end = memmem(answer->data, answer->len, "\r\n\r\n", 4);
	if (answer->len < 13 || end == NULL || memcmp(answer->data, "HTTP/1.", 7) != 0)
		return 0;
	if (body != NULL)
		*body = g_strdup(end + 4);
	return (guint)g_ascii_strtoull((const char *)answer->data + 9, NULL, 10);
}

/* The public: asks for every name in turn through HAProxy, until told to stop. */
typedef struct {
	guint16 port;
	GThread *thread;
	GMutex mutex;
	gboolean stop;
	guint failures[N_NAMES]; /* since the last reset */
	gint64 last_ok[N_NAMES]; /* monotonic time of the last right answer */
	GString *log;		 /* (owned) what failed, for a failing test */
} Public;

static gpointer
public_cb(gpointer user_data)
{
	Public *self = user_data;

	for (guint i = 0;; i = (i + 1) % N_NAMES) {
		g_autofree char *host = g_strdup_printf("%s." DOMAIN, names[i]);
		g_autofree char *body = NULL;
		guint status;
		gboolean ok;

		g_mutex_lock(&self->mutex);
		if (self->stop) {
			g_mutex_unlock(&self->mutex);
			return NULL;
		}
		g_mutex_unlock(&self->mutex);
		status = get(self->port, host, "/", &body);
		ok = status == 200 && g_strcmp0(body, names[i]) == 0;
		g_mutex_lock(&self->mutex);
		if (ok) {
			self->last_ok[i] = g_get_monotonic_time();
		} else {
			self->failures[i]++;
			g_string_append_printf(self->log, "%s: %u\n", names[i], status);
		}
		g_mutex_unlock(&self->mutex);
		g_usleep(10 * 1000);
	}
}

static void
public_start(Public *self, guint16 port)
{
	self->port = port;
	self->log = g_string_new(NULL);
	g_mutex_init(&self->mutex);
	self->thread = g_thread_new("public", public_cb, self);
}

static void
public_stop(Public *self)
{
	g_mutex_lock(&self->mutex);
	self->stop = TRUE;
	g_mutex_unlock(&self->mutex);
	g_thread_join(self->thread);
	g_mutex_clear(&self->mutex);
	g_string_free(self->log, TRUE);
}

static void
public_reset(Public *self)
{
	g_mutex_lock(&self->mutex);
	memset(self->failures, 0, sizeof self->failures);
	g_string_truncate(self->log, 0);
	g_mutex_unlock(&self->mutex);
}

/* Name @i was answered right after @since. */
static gboolean
public_ok_since(Public *self, guint i, gint64 since)
{
	gboolean ok;

	g_mutex_lock(&self->mutex);
	ok = self->last_ok[i] > since;
	g_mutex_unlock(&self->mutex);
	return ok;
}

static gboolean
public_all_ok_since(Public *self, gint64 since)
{
	for (guint i = 0; i < N_NAMES; i++) {
		if (!public_ok_since(self, i, since))
			return FALSE;
	}
	return TRUE;
}

/* No request for a name not in @except failed since the last reset. */
static void
public_assert_no_failures(Public *self, const gboolean *except)
{
	g_mutex_lock(&self->mutex);
	for (guint i = 0; i < N_NAMES; i++) {
		if (except == NULL || !except[i]) {
			if (self->failures[i] != 0)
				g_error("%u requests for %s failed:\n%s", self->failures[i],
					names[i], self->log->str);
		}
	}
	g_mutex_unlock(&self->mutex);
}

/* Iterates the main context (the services answer meanwhile) for @ms. */
static void
wait_ms(guint ms)
{
	gint64 until = g_get_monotonic_time() + ms * 1000;

	pb_test_wait_until(g_get_monotonic_time() > until, ms / 1000 + 2);
}

static PbTestProc *
serve_args(const char *const *args, guint16 *port, ...)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	PbTestProc *server;
	va_list rest;

	va_start(rest, port);
	server = pb_test_serve_valist(launcher, args, port, NULL, rest);
	va_end(rest);
	return server;
}

/* `piggyback serve --domain` on 127.0.0.1:@port (0: any, into *@port), draining on SIGTERM. */
static PbTestProc *
serve(guint16 *port)
{
	g_autofree char *port_arg = g_strdup_printf("%u", *port);
	g_autofree char *drain = g_strdup_printf("%d", DRAIN_S);
	const char *const args[] = {"--domain", DOMAIN, "--drain", drain, "-p", port_arg, NULL};

	return serve_args(args, port);
}

/* `piggyback forward --name @name` for @local_port through HAProxy at @port, online. */
static PbTestProc *
forward_online(guint16 port, guint16 local_port, const char *name)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autofree char *server = g_strdup_printf("127.0.0.1:%u", port);
	g_autofree char *local = g_strdup_printf("%u", local_port);
	g_autofree char *url = g_strdup_printf("HTTP URL: http://%s." DOMAIN ":%u\n", name, port);
	PbTestProc *client =
	    pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", local, "-h",
			       "127.0.0.1", "-s", server, "--no-dbus", "--name", name, NULL);

	pb_test_wait_until(pb_test_proc_said(client, url) || pb_test_proc_exited(client), 10);
	if (!pb_test_proc_said(client, url))
		g_error("no “%s” in: %s", url, pb_test_proc_get_output(client));
	return client;
}

/* Replaces @from, which must be there, with @to in @text. */
static void
replace(GString *text, const char *from, const char *to)
{
	g_assert_cmpuint(g_string_replace(text, from, to, 0), >, 0);
}

/* The shipped configuration, with HAProxy on 127.0.0.1:@port and the instances on @ports;
 * with @tls_port, also its TLS bind there, with tests/tls/wildcard.pem for *.DOMAIN.
 * Returns: (transfer full): the file written in @dir */
static char *
haproxy_config(const char *dir, guint16 port, const guint16 *ports, guint16 tls_port)
{
	g_autofree char *shipped =
	    g_test_build_filename(G_TEST_DIST, "..", "data", "haproxy.cfg.example", NULL);
	g_autofree char *contents = NULL;
	g_autoptr(GString) text = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *bind = g_strdup_printf("bind 127.0.0.1:%u\n", port);
	char *path = g_build_filename(dir, "haproxy.cfg", NULL);

	g_file_get_contents(shipped, &contents, NULL, &error);
	g_assert_no_error(error);
	text = g_string_new(contents);
	replace(text, "bind :80\n", bind);
	replace(text, "tunnel.example.com", DOMAIN);
	for (guint i = 0; i < N_SERVERS; i++) {
		g_autofree char *from = g_strdup_printf("10.0.0.%u:8080", i + 1);
		g_autofree char *to = g_strdup_printf("127.0.0.1:%u", ports[i]);

		replace(text, from, to);
	}
	if (tls_port != 0) {
		g_autofree char *cert =
		    g_test_build_filename(G_TEST_DIST, "tls", "wildcard.pem", NULL);
		g_autofree char *key =
		    g_test_build_filename(G_TEST_DIST, "tls", "wildcard.key", NULL);
		g_autofree char *cert_text = NULL;
		g_autofree char *key_text = NULL;
		g_autofree char *pem = g_build_filename(dir, "wildcard.pem", NULL);
		g_autofree char *pem_text = NULL;
		g_autofree char *tls_bind =
		    g_strdup_printf("bind 127.0.0.1:%u ssl crt %s ", tls_port, pem);

		/* HAProxy takes the certificate and its key in one file */
		g_file_get_contents(cert, &cert_text, NULL, &error);
		g_assert_no_error(error);
		g_file_get_contents(key, &key_text, NULL, &error);
		g_assert_no_error(error);
		pem_text = g_strconcat(cert_text, key_text, NULL);
		g_file_set_contents(pem, pem_text, -1, &error);
		g_assert_no_error(error);
		replace(text, "#bind :443 ssl crt /etc/haproxy/certs/" DOMAIN ".pem ", tls_bind);
	}
	g_file_set_contents(path, text->str, -1, &error);
	g_assert_no_error(error);
	return path;
}

/* Which instance holds @name now: the one whose log says it took it last. */
static int
holder(PbTestProc **servers, const char *name)
{
	g_autofree char *needle = g_strdup_printf("named %s." DOMAIN "\n", name);

	for (guint s = 0; s < N_SERVERS; s++) {
		if (servers[s] != NULL && pb_test_proc_said(servers[s], needle))
			return (int)s;
	}
	return -1;
}

static void
test_several_haproxy(void)
{
	g_autofree char *haproxy_path = g_find_program_in_path("haproxy");
	g_autofree char *dir = NULL;
	g_autofree char *config = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GError) error = NULL;
	PbTestProc *servers[N_SERVERS] = {NULL};
	PbTestProc *clients[N_NAMES] = {NULL};
	PbTestProc *late[N_LATE] = {NULL};
	PbTestProc *haproxy;
	Service services[N_NAMES];
	guint16 ports[N_SERVERS] = {0};
	guint16 port = pb_test_free_port();
	gboolean moved[N_NAMES] = {FALSE};
	Public public = {0};
	guint counts[N_SERVERS] = {0};
	guint victim = 0;
	guint drained;
	gint64 t0;
	gint64 left;
	g_autofree char *event = NULL; /* a line of HAProxy's log */

	g_test_summary("Three serve instances behind HAProxy (the shipped configuration), eight "
		       "named clients: an instance killed, back, drained; no name on another "
		       "instance ever fails, the names of the one that went answer again");
	if (haproxy_path == NULL) {
		g_test_skip("haproxy is not installed (Debian: apt-get install haproxy)");
		return;
	}
	for (guint s = 0; s < N_SERVERS; s++)
		servers[s] = serve(&ports[s]);
	dir = g_dir_make_tmp("pb-several-XXXXXX", &error);
	g_assert_no_error(error);
	config = haproxy_config(dir, port, ports, 0);
	launcher = pb_test_proc_launcher_new();
	haproxy = pb_test_proc_spawn(launcher, haproxy_path, "-f", config, NULL);
	pb_test_wait_until(
	    get(port, DOMAIN, "/healthz", NULL) == 200 || pb_test_proc_exited(haproxy), 10);
	if (pb_test_proc_exited(haproxy))
		g_error("haproxy ended: %s", pb_test_proc_get_output(haproxy));

	/* a client without a name is refused, saying why: its name would go astray */
	{
		g_autofree char *server = g_strdup_printf("127.0.0.1:%u", port);
		PbTestProc *nameless =
		    pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", "9",
				       "-s", server, "--no-dbus", NULL);

		pb_test_wait_until(pb_test_proc_exited(nameless), 10);
		g_assert_true(pb_test_proc_said(nameless, "Every client needs a name here"));
		g_assert_cmpint(pb_test_proc_finish(nameless), ==, 1);
	}

	/* eight clients through HAProxy, each with its own service */
	for (guint i = 0; i < N_NAMES; i++) {
		service_init(&services[i], names[i]);
		clients[i] = forward_online(port, services[i].port, names[i]);
	}
	for (guint i = 0; i < N_NAMES; i++) {
		/* the instance's log line may come after the client's */
		pb_test_wait_until(holder(servers, names[i]) >= 0, 5);
		counts[holder(servers, names[i])]++;
	}
	for (guint s = 1; s < N_SERVERS; s++) {
		if (counts[s] > counts[victim])
			victim = s;
	}
	/* a name lives on one instance: a second client asking for it is sent there too, and
	 * refused */
	{
		g_autofree char *server = g_strdup_printf("127.0.0.1:%u", port);
		PbTestProc *twin =
		    pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", "9",
				       "-s", server, "--no-dbus", "--name", names[0], NULL);

		pb_test_wait_until(pb_test_proc_exited(twin), 10);
		if (!pb_test_proc_said(twin, "is held by another client"))
			g_error("the twin was not refused for its name: %s",
				pb_test_proc_get_output(twin));
		g_assert_cmpint(pb_test_proc_finish(twin), ==, 1);
	}
	t0 = g_get_monotonic_time();
	public_start(&public, port);
	pb_test_wait_until(public_all_ok_since(&public, t0), 10);
	public_assert_no_failures(&public, NULL);

	/* the instance with most names dies: its names answer again within 15 s, the others
	 * never stop */
	for (guint i = 0; i < N_NAMES; i++)
		moved[i] = holder(servers, names[i]) == (int)victim;
	public_reset(&public);
	t0 = g_get_monotonic_time();
	pb_test_proc_kill(servers[victim]);
	pb_test_proc_finish(servers[victim]);
	servers[victim] = NULL;
	pb_test_wait_until(public_all_ok_since(&public, t0), 15);
	g_test_message("names of the dead instance back after %.1f s",
		       (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC);
	wait_ms(500);
	public_assert_no_failures(&public, moved);

	/* it comes back on its port: HAProxy marks it up after two checks, and nothing fails
	 * meanwhile, the moved names included (their clients stay where they are) */
	public_reset(&public);
	servers[victim] = serve(&ports[victim]);
	event = g_strdup_printf("piggyback/pb%u is UP", victim + 1);
	pb_test_wait_until(pb_test_proc_said(haproxy, event), 15);
	t0 = g_get_monotonic_time();
	pb_test_wait_until(public_all_ok_since(&public, t0), 10);
	wait_ms(500);
	public_assert_no_failures(&public, NULL);

	/* another instance that holds names drains: /healthz says 503, its names are served
	 * until it stops, HAProxy sends no new client to it, then its names move */
	drained = (victim + 1) % N_SERVERS;
	for (guint s = 0; s < N_SERVERS; s++) {
		if (s == victim)
			continue;
		for (guint i = 0; i < N_NAMES; i++) {
			if (holder(servers, names[i]) == (int)s) {
				drained = s;
				break;
			}
		}
	}
	for (guint i = 0; i < N_NAMES; i++)
		moved[i] = holder(servers, names[i]) == (int)drained;
	public_reset(&public);
	t0 = g_get_monotonic_time();
	g_assert_cmpint(kill(pb_test_proc_get_pid(servers[drained]), SIGTERM), ==, 0);
	pb_test_wait_until(pb_test_proc_said(servers[drained], "Draining"), 5);
	g_assert_cmpuint(get(ports[drained], DOMAIN, "/healthz", NULL), ==, 503);
	g_free(event);
	event = g_strdup_printf("piggyback/pb%u is DOWN", drained + 1);
	pb_test_wait_until(pb_test_proc_said(haproxy, event), DRAIN_S - 2);
	for (guint i = 0; i < N_LATE; i++) {
		late[i] = forward_online(port, services[0].port, late_names[i]);
		pb_test_wait_until(holder(servers, late_names[i]) >= 0, 5);
		g_assert_cmpint(holder(servers, late_names[i]), !=, (int)drained);
	}
	/* its own names too were answered until a second before it stops (a machine so slow
	 * that it is past that already can only tell for the others) */
	left = t0 + (DRAIN_S - 1) * G_USEC_PER_SEC - g_get_monotonic_time();
	if (left > 0) {
		wait_ms((guint)(left / 1000));
		public_assert_no_failures(&public, NULL);
	} else {
		g_test_message("late clients took until the end of the drain");
		public_assert_no_failures(&public, moved);
	}
	pb_test_wait_until(pb_test_proc_exited(servers[drained]), 5);
	t0 = g_get_monotonic_time();
	g_assert_cmpint(pb_test_proc_finish(servers[drained]), ==, 0);
	servers[drained] = NULL;
	pb_test_wait_until(public_all_ok_since(&public, t0), 15);
	g_test_message("names of the drained instance back after %.1f s",
		       (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC);
	public_assert_no_failures(&public, moved);

	public_stop(&public);
	for (guint i = 0; i < N_LATE; i++)
		pb_test_proc_finish(late[i]);
	for (guint i = 0; i < N_NAMES; i++)
		pb_test_proc_finish(clients[i]);
	for (guint s = 0; s < N_SERVERS; s++) {
		if (servers[s] == NULL)
			continue;
		/* SIGINT: at once, without the drain */
		g_assert_cmpint(kill(pb_test_proc_get_pid(servers[s]), SIGINT), ==, 0);
		pb_test_proc_wait_exit(servers[s]);
		pb_test_proc_finish(servers[s]);
	}
	pb_test_proc_finish(haproxy);
	for (guint i = 0; i < N_NAMES; i++)
		service_clear(&services[i]);
	g_unlink(config);
	g_rmdir(dir);
}

/* A public request for tunnel @name on serve's WebSocket port, from a thread. */
typedef struct {
	guint16 port;
	const char *name;
	guint status;
	char *body;
} Ask;

static gpointer
ask_cb(gpointer user_data)
{
	Ask *ask = user_data;
	g_autofree char *host = g_strdup_printf("%s." DOMAIN, ask->name);

	ask->status = get(ask->port, host, "/", &ask->body);
	return NULL;
}

static void
test_several_haproxy_tls(void)
{
	g_autofree char *haproxy_path = g_find_program_in_path("haproxy");
	g_autofree char *cert = g_test_build_filename(G_TEST_DIST, "tls", "wildcard.pem", NULL);
	g_autoptr(GTlsDatabase) database = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *config = NULL;
	g_autofree char *pem = NULL;
	g_autofree char *server = NULL;
	g_autofree char *url = NULL;
	g_autofree char *answer = NULL;
	g_autofree char *local = NULL;
	PbTestProc *servers[N_SERVERS] = {NULL};
	guint16 ports[N_SERVERS] = {0};
	guint16 port = pb_test_free_port();
	guint16 tls_port = pb_test_free_port();
	PbTestProc *haproxy;
	PbTestProc *client;
	Service service;
	PbTestHttpsGet named;
	Ask ask = {0};

	g_test_summary("The shipped configuration's TLS bind, with a wildcard certificate: a "
		       "client through wss:// and https://NAME.DOMAIN reach the same instance");
	if (haproxy_path == NULL) {
		g_test_skip("haproxy is not installed (Debian: apt-get install haproxy)");
		return;
	}
	if (!g_tls_backend_supports_tls(g_tls_backend_get_default())) {
		g_test_skip("no TLS backend (glib-networking) installed");
		return;
	}
	database = g_tls_file_database_new(cert, &error);
	g_assert_no_error(error);
	for (guint s = 0; s < N_SERVERS; s++)
		servers[s] = serve(&ports[s]);
	dir = g_dir_make_tmp("pb-several-XXXXXX", &error);
	g_assert_no_error(error);
	config = haproxy_config(dir, port, ports, tls_port);
	pem = g_build_filename(dir, "wildcard.pem", NULL);
	launcher = pb_test_proc_launcher_new();
	haproxy = pb_test_proc_spawn(launcher, haproxy_path, "-f", config, NULL);
	pb_test_wait_until(
	    get(port, DOMAIN, "/healthz", NULL) == 200 || pb_test_proc_exited(haproxy), 10);
	if (pb_test_proc_exited(haproxy))
		g_error("haproxy ended: %s", pb_test_proc_get_output(haproxy));

	service_init(&service, "ant");
	server = g_strdup_printf("wss://127.0.0.1:%u", tls_port);
	local = g_strdup_printf("%u", service.port);
	url = g_strdup_printf("HTTP URL: https://ant." DOMAIN ":%u\n", tls_port);
	client = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", local,
				    "-h", "127.0.0.1", "-s", server, "--ca-file", cert, "--no-dbus",
				    "--name", "ant", NULL);
	pb_test_wait_until(pb_test_proc_said(client, url) || pb_test_proc_exited(client), 10);
	if (!pb_test_proc_said(client, url))
		g_error("no “%s” in: %s", url, pb_test_proc_get_output(client));

	named = (PbTestHttpsGet){tls_port, "ant." DOMAIN, "/", database};
	answer = pb_test_run_in_thread(pb_test_https_get_cb, &named, 20);
	g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 200 "));
	g_assert_true(g_str_has_suffix(answer, "\r\n\r\nant"));
	/* and by plain HTTP on the other bind */
	ask.port = port;
	ask.name = "ant";
	pb_test_run_in_thread(ask_cb, &ask, 10);
	g_assert_cmpuint(ask.status, ==, 200);
	g_assert_cmpstr(ask.body, ==, "ant");
	g_free(ask.body);

	g_assert_cmpint(pb_test_proc_finish(client), ==, 0);
	for (guint s = 0; s < N_SERVERS; s++) {
		/* SIGINT: at once, without the drain; its end awaited, or finish()'s SIGTERM
		 * may come while it shuts down (under ASan, slowly) */
		g_assert_cmpint(kill(pb_test_proc_get_pid(servers[s]), SIGINT), ==, 0);
		pb_test_proc_wait_exit(servers[s]);
		g_assert_cmpint(pb_test_proc_finish(servers[s]), ==, 0);
	}
	pb_test_proc_finish(haproxy);
	service_clear(&service);
	g_unlink(pem);
	g_unlink(config);
	g_rmdir(dir);
}

static void
test_several_drain(void)
{
	Service service;
	guint16 port = 0;
	PbTestProc *server;
	PbTestProc *client;
	Ask ask = {0};
	gint64 t0;
	double took;
	const char *const drain[] = {"--domain", DOMAIN, "--drain", "2", NULL};
	const char *const long_drain[] = {"--domain", DOMAIN, "--drain", "60", NULL};

	g_test_summary("serve --drain: on SIGTERM /healthz answers 503 while the tunnels are "
		       "served, for that long, then it stops as without; a second SIGTERM "
		       "stops it at once");
	service_init(&service, "solo");
	server = serve_args(drain, &port, NULL);
	client = forward_online(port, service.port, "solo");
	g_assert_cmpuint(get(port, DOMAIN, "/healthz", NULL), ==, 200);

	t0 = g_get_monotonic_time();
	g_assert_cmpint(kill(pb_test_proc_get_pid(server), SIGTERM), ==, 0);
	pb_test_wait_until(pb_test_proc_said(server, "Draining"), 5);
	g_assert_cmpuint(get(port, DOMAIN, "/healthz", NULL), ==, 503);
	ask.port = port;
	ask.name = "solo";
	pb_test_run_in_thread(ask_cb, &ask, 10);
	g_assert_cmpuint(ask.status, ==, 200);
	g_assert_cmpstr(ask.body, ==, "solo");
	g_free(ask.body);
	pb_test_wait_until(pb_test_proc_exited(server), 10);
	took = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
	g_assert_cmpfloat(took, >=, 1.5);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	pb_test_wait_until(pb_test_proc_said(client, "server shutting down"), 5);
	pb_test_proc_finish(client);

	/* a second SIGTERM does not wait for the end of the drain */
	port = 0;
	server = serve_args(long_drain, &port, NULL);
	g_assert_cmpint(kill(pb_test_proc_get_pid(server), SIGTERM), ==, 0);
	pb_test_wait_until(pb_test_proc_said(server, "Draining"), 5);
	t0 = g_get_monotonic_time();
	g_assert_cmpint(kill(pb_test_proc_get_pid(server), SIGTERM), ==, 0);
	pb_test_wait_until(pb_test_proc_exited(server), 5);
	g_assert_cmpint(pb_test_proc_finish(server), ==, 0);
	service_clear(&service);
}

/* --drain takes 0 to 3600 s. */
static void
test_several_drain_usage(void)
{
	const char *const values[] = {"-1", "3601", "x"};

	for (guint i = 0; i < G_N_ELEMENTS(values); i++) {
		g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
		PbTestProc *server = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve",
							"-p", "0", "--drain", values[i], NULL);

		pb_test_wait_until(pb_test_proc_exited(server), 10);
		g_assert_true(pb_test_proc_said(server, "--drain"));
		g_assert_cmpint(pb_test_proc_finish(server), ==, 2);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/several/drain", test_several_drain);
	g_test_add_func("/several/drain-usage", test_several_drain_usage);
	g_test_add_func("/several/haproxy", test_several_haproxy);
	g_test_add_func("/several/haproxy-tls", test_several_haproxy_tls);
	return g_test_run();
}
