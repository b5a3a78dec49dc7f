/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "pb-frame.h"
#include "pb-metrics.h"
#include "pb-test-utils.h"

/*
 * The real `piggyback serve` answering plain HTTP on its WebSocket port: /healthz, /metrics
 * (Prometheus text, parsed here, its counters matched against the traffic the test sent
 * through a real `piggyback forward`), the metrics token, --metrics=off, and the texts for
 * other paths.
 */

typedef struct {
	PbTestService *echo;  /* (owned) */
	PbTestProc *server;   /* (owned) */
	PbTestProc *client;   /* (owned) (nullable) */
	SoupSession *session; /* (owned) */
	guint16 ws_port;
	guint16 public_port;
} MetricsFixture;

/* How a test's server is started. */
typedef struct {
	const char *metrics_token; /* (nullable) PIGGY_METRICS_TOKEN */
	const char *token;	   /* (nullable) PIGGY_TOKEN: the tunnel token */
	const char *args[4];	   /* more arguments to serve */
} MetricsSetup;

/* Starts serve as @user_data (a MetricsSetup, or NULL for no token) says. */
static void
metrics_set_up(MetricsFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	const MetricsSetup *setup = user_data;

	const char *const base[] = {
	    g_getenv("PB_PIGGYBACK"), "serve", "-p", "0", "-l", "127.0.0.1", "-H", "127.0.0.1"};

	g_subprocess_launcher_unsetenv(launcher, "PIGGY_METRICS_TOKEN");
	g_subprocess_launcher_unsetenv(launcher, "PIGGY_TOKEN");
	if (setup != NULL && setup->metrics_token != NULL)
		g_subprocess_launcher_setenv(launcher, "PIGGY_METRICS_TOKEN", setup->metrics_token,
					     TRUE);
	if (setup != NULL && setup->token != NULL)
		g_subprocess_launcher_setenv(launcher, "PIGGY_TOKEN", setup->token, TRUE);
	for (guint i = 0; i < G_N_ELEMENTS(base); i++)
		g_ptr_array_add(args, (gpointer)base[i]);
	for (gsize i = 0; setup != NULL && setup->args[i] != NULL; i++)
		g_ptr_array_add(args, (gpointer)setup->args[i]);
	g_ptr_array_add(args, NULL);

	fx->echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	fx->session = soup_session_new();
	fx->server = pb_test_proc_spawnv(launcher, (const char *const *)args->pdata);
	fx->ws_port = pb_test_proc_wait_port(fx->server, "Listening on");
}

/* Starts forward, asking for the name @name (nullable). */
static void
metrics_start_named_client(MetricsFixture *fx, const char *name)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autofree char *local = g_strdup_printf("%u", pb_test_service_get_port(fx->echo));
	g_autofree char *server_url = g_strdup_printf("127.0.0.1:%u", fx->ws_port);

	fx->client = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", local,
					"-h", "127.0.0.1", "-s", server_url, "--no-dbus",
					name != NULL ? "--name" : NULL, name, NULL);
	fx->public_port = pb_test_proc_wait_port(fx->client, "Access URL:");
}

static void
metrics_start_client(MetricsFixture *fx)
{
	metrics_start_named_client(fx, NULL);
}

static void
metrics_tear_down(MetricsFixture *fx, gconstpointer user_data)
{
	if (fx->client != NULL)
		g_assert_cmpint(pb_test_proc_finish(fx->client), ==, 0);
	g_assert_cmpint(pb_test_proc_finish(fx->server), ==, 0);
	g_clear_object(&fx->session);
	pb_test_service_free(fx->echo);
}

typedef struct {
	guint status;
	char *body;	    /* (owned) */
	char *content_type; /* (owned) */
	gboolean done;
} Reply;

static void
reply_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Reply *reply = user_data;
	SoupMessage *msg = soup_session_get_async_result_message(SOUP_SESSION(source), res);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) body =
	    soup_session_send_and_read_finish(SOUP_SESSION(source), res, &error);

	g_assert_no_error(error);
	reply->status = soup_message_get_status(msg);
	reply->body = g_strndup(g_bytes_get_data(body, NULL), g_bytes_get_size(body));
	reply->content_type = g_strdup(
	    soup_message_headers_get_content_type(soup_message_get_response_headers(msg), NULL));
	reply->done = TRUE;
}

/* GET @path on the WebSocket port, with @token as a bearer token if not NULL. */
static void
metrics_get(MetricsFixture *fx, const char *path, const char *token, Reply *reply)
{
	g_autofree char *url = g_strdup_printf("http://127.0.0.1:%u%s", fx->ws_port, path);
	g_autoptr(SoupMessage) msg = soup_message_new("GET", url);

	if (token != NULL) {
		g_autofree char *value = g_strdup_printf("Bearer %s", token);

		soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
					     value);
	}
	memset(reply, 0, sizeof *reply);
	soup_session_send_and_read_async(fx->session, msg, G_PRIORITY_DEFAULT, NULL, reply_cb,
					 reply);
	pb_test_wait_until(reply->done, 10);
}

static void
reply_clear(Reply *reply)
{
	g_free(reply->body);
	g_free(reply->content_type);
}

/* Parses Prometheus text: "name{labels}" → value; checks every sample has HELP and TYPE. */
static GHashTable *
metrics_parse(const char *text)
{
	GHashTable *samples = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GHashTable) typed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++) {
		const char *line = lines[i];
		const char *space;
		g_autofree char *name = NULL;
		guint64 *value;
		char *end = NULL;

		if (*line == '\0')
			continue;
		if (g_str_has_prefix(line, "# TYPE ")) {
			g_auto(GStrv) words = g_strsplit(line + strlen("# TYPE "), " ", 2);

			g_assert_nonnull(words[1]);
			g_assert_true(g_strv_contains(
			    (const char *const[]){"gauge", "counter", NULL}, words[1]));
			g_hash_table_add(typed, g_strdup(words[0]));
			continue;
		}
		if (g_str_has_prefix(line, "# HELP "))
			continue;
		space = strrchr(line, ' ');
		g_assert_nonnull(space);
		name = g_strndup(line, space - line);
		value = g_new(guint64, 1);
		*value = g_ascii_strtoull(space + 1, &end, 10);
		g_assert_true(end != space + 1 && *end == '\0');
		{
			g_autofree char *family = g_strndup(name, strcspn(name, "{"));

			g_assert_true(g_hash_table_contains(typed, family));
		}
		g_hash_table_insert(samples, g_steal_pointer(&name), value);
	}
	return samples;
}

static guint64
metrics_value(GHashTable *samples, const char *name)
{
	guint64 *value = g_hash_table_lookup(samples, name);

	if (value == NULL)
		g_error("no sample %s", name);
	return *value;
}

/* Sends @size bytes through the tunnel to the echo service, reads them back, closes. */
static gpointer
echo_job_cb(gpointer user_data)
{
	PbTestEchoJob *job = user_data;

	return pb_test_echo_job_cb(job);
}

static void
test_metrics_after_traffic(MetricsFixture *fx, gconstpointer user_data)
{
	enum { SIZE = 300000, N_CONNECTIONS = 3 };
	g_autoptr(GHashTable) samples = NULL;
	g_autofree char *key = NULL;
	PbTestEchoJob job = {0, SIZE};
	Reply reply;

	g_test_summary("/metrics after real traffic: 3 connections of 300 000 bytes echoed give "
		       "exactly those counts, per port and in all; every sample has its TYPE");
	metrics_start_client(fx);
	job.port = fx->public_port;
	for (guint i = 0; i < N_CONNECTIONS; i++)
		g_assert_true(pb_test_run_in_thread(echo_job_cb, &job, 30));
	key = g_strdup_printf("piggyback_port_connections_open{port=\"%u\"}", fx->public_port);
	/* the server sees each connection end a moment after the test does */
	for (guint tries = 0; tries < 100; tries++) {
		g_clear_pointer(&samples, g_hash_table_unref);
		metrics_get(fx, "/metrics", NULL, &reply);
		g_assert_cmpuint(reply.status, ==, 200);
		g_assert_cmpstr(reply.content_type, ==, "text/plain");
		samples = metrics_parse(reply.body);
		reply_clear(&reply);
		if (metrics_value(samples, key) == 0)
			break;
		g_usleep(50 * G_TIME_SPAN_MILLISECOND);
	}
	g_assert_cmpuint(metrics_value(samples, key), ==, 0);
	g_assert_cmpuint(metrics_value(samples, "piggyback_clients"), ==, 1);
	g_assert_cmpuint(metrics_value(samples, "piggyback_connections_total"), ==, N_CONNECTIONS);
	g_assert_cmpuint(metrics_value(samples, "piggyback_connections_open"), ==, 0);
	/* the public sent SIZE per connection (sent to the client), the echo came back */
	g_assert_cmpuint(metrics_value(samples, "piggyback_sent_bytes_total"), ==,
			 N_CONNECTIONS * SIZE);
	g_assert_cmpuint(metrics_value(samples, "piggyback_received_bytes_total"), ==,
			 N_CONNECTIONS * SIZE);
	g_free(key);
	key = g_strdup_printf("piggyback_port_sent_bytes_total{port=\"%u\"}", fx->public_port);
	g_assert_cmpuint(metrics_value(samples, key), ==, N_CONNECTIONS * SIZE);
	g_free(key);
	key = g_strdup_printf("piggyback_port_connections_total{port=\"%u\"}", fx->public_port);
	g_assert_cmpuint(metrics_value(samples, key), ==, N_CONNECTIONS);
	/* at least OPEN, one DATA and CLOSE per connection, and HELLO */
	g_assert_cmpuint(metrics_value(samples, "piggyback_frames_sent_total"), >=,
			 1 + 3 * N_CONNECTIONS);
	g_assert_cmpuint(metrics_value(samples, "piggyback_frames_received_total"), >=,
			 N_CONNECTIONS);
	g_assert_cmpuint(metrics_value(samples, "piggyback_protocol_errors_total"), ==, 0);
	/* the scrape's own connection is one that is not a tunnel */
	g_assert_cmpuint(metrics_value(samples, "piggyback_handshakes_pending"), ==, 1);

	/* the totals outlive the tunnel */
	g_assert_cmpint(pb_test_proc_finish(g_steal_pointer(&fx->client)), ==, 0);
	g_clear_pointer(&samples, g_hash_table_unref);
	for (guint tries = 0; tries < 100; tries++) {
		g_clear_pointer(&samples, g_hash_table_unref);
		metrics_get(fx, "/metrics", NULL, &reply);
		samples = metrics_parse(reply.body);
		reply_clear(&reply);
		if (metrics_value(samples, "piggyback_clients") == 0)
			break;
		g_usleep(50 * G_TIME_SPAN_MILLISECOND);
	}
	g_assert_cmpuint(metrics_value(samples, "piggyback_clients"), ==, 0);
	g_assert_cmpuint(metrics_value(samples, "piggyback_connections_total"), ==, N_CONNECTIONS);
	g_assert_cmpuint(metrics_value(samples, "piggyback_sent_bytes_total"), ==,
			 N_CONNECTIONS * SIZE);
}

static void
test_metrics_healthz_and_paths(MetricsFixture *fx, gconstpointer user_data)
{
	Reply reply;

	g_test_summary("/healthz answers 200; other paths 404 with a text that says what the port "
		       "is; the WebSocket path without an upgrade 400 with a helpful text");
	metrics_get(fx, "/healthz", NULL, &reply);
	g_assert_cmpuint(reply.status, ==, 200);
	g_assert_cmpstr(reply.body, ==, "ok\n");
	reply_clear(&reply);
	metrics_get(fx, "/favicon.ico", NULL, &reply);
	g_assert_cmpuint(reply.status, ==, 404);
	g_assert_nonnull(strstr(reply.body, "PiggyBack tunnel server"));
	reply_clear(&reply);
	metrics_get(fx, PB_WS_PATH, NULL, &reply);
	g_assert_cmpuint(reply.status, ==, 400);
	g_assert_nonnull(strstr(reply.body, "piggyback forward"));
	reply_clear(&reply);
}

static void
test_metrics_token(MetricsFixture *fx, gconstpointer user_data)
{
	const MetricsSetup *setup = user_data;
	/* the metrics token if there is one, else the tunnel token */
	const char *token = setup->metrics_token != NULL ? setup->metrics_token : setup->token;
	const char *wrong[] = {NULL, "scrape-me-not", setup->token};
	Reply reply;

	g_test_summary("With a metrics token (PIGGY_METRICS_TOKEN), /metrics wants it as a bearer "
		       "token; with only a tunnel token, that one (/metrics lists every public "
		       "port and its traffic): 401 without it, with a wrong one, or with the "
		       "tunnel token when a metrics token is set; /healthz stays open");
	for (guint i = 0; i < G_N_ELEMENTS(wrong); i++) {
		if (i > 0 && (wrong[i] == NULL || g_strcmp0(wrong[i], token) == 0))
			continue;
		metrics_get(fx, "/metrics", wrong[i], &reply);
		g_assert_cmpuint(reply.status, ==, 401);
		g_assert_null(strstr(reply.body, "piggyback_clients"));
		reply_clear(&reply);
	}
	metrics_get(fx, "/metrics", token, &reply);
	g_assert_cmpuint(reply.status, ==, 200);
	g_assert_nonnull(strstr(reply.body, "piggyback_clients 0\n"));
	reply_clear(&reply);
	metrics_get(fx, "/healthz", NULL, &reply);
	g_assert_cmpuint(reply.status, ==, 200);
	reply_clear(&reply);
}

static void
test_metrics_off(MetricsFixture *fx, gconstpointer user_data)
{
	Reply reply;

	g_test_summary("--metrics=off: /metrics is 404");
	metrics_get(fx, "/metrics", "scrape-me-please", &reply);
	g_assert_cmpuint(reply.status, ==, 404);
	reply_clear(&reply);
}

static void
test_metrics_public(MetricsFixture *fx, gconstpointer user_data)
{
	Reply reply;

	g_test_summary("--metrics=public: /metrics is open on purpose, tunnel token or not");
	metrics_get(fx, "/metrics", NULL, &reply);
	g_assert_cmpuint(reply.status, ==, 200);
	g_assert_nonnull(strstr(reply.body, "piggyback_clients 0\n"));
	reply_clear(&reply);
}

static void
test_metrics_named(MetricsFixture *fx, gconstpointer user_data)
{
	g_autoptr(GHashTable) samples = NULL;
	g_autofree char *key = NULL;
	g_autofree char *unnamed = NULL;
	Reply reply;

	g_test_summary("A named tunnel's per-port series carry its name as a label: "
		       "name=\"alpha\"");
	metrics_start_named_client(fx, "alpha");
	metrics_get(fx, "/metrics", NULL, &reply);
	g_assert_cmpuint(reply.status, ==, 200);
	samples = metrics_parse(reply.body);
	reply_clear(&reply);
	key = g_strdup_printf("piggyback_port_connections_total{port=\"%u\",name=\"alpha\"}",
			      fx->public_port);
	g_assert_cmpuint(metrics_value(samples, key), ==, 0);
	g_free(key);
	key = g_strdup_printf("piggyback_port_connections_open{port=\"%u\",name=\"alpha\"}",
			      fx->public_port);
	g_assert_cmpuint(metrics_value(samples, key), ==, 0);
	/* one series per port: not a second one without the name */
	unnamed = g_strdup_printf("piggyback_port_connections_total{port=\"%u\"}", fx->public_port);
	g_assert_false(g_hash_table_contains(samples, unnamed));
	g_assert_cmpuint(metrics_value(samples, "piggyback_clients"), ==, 1);
}

/* Scrapes /metrics until @key is 0 (the server sees connections end a moment after the
 * test does); returns the samples. */
static GHashTable *
metrics_get_settled(MetricsFixture *fx, const char *key)
{
	GHashTable *samples = NULL;

	for (guint tries = 0; tries < 100; tries++) {
		Reply reply;

		g_clear_pointer(&samples, g_hash_table_unref);
		metrics_get(fx, "/metrics", NULL, &reply);
		g_assert_cmpuint(reply.status, ==, 200);
		samples = metrics_parse(reply.body);
		reply_clear(&reply);
		if (metrics_value(samples, key) == 0)
			break;
		g_usleep(50 * G_TIME_SPAN_MILLISECOND);
	}
	return samples;
}

static void
test_metrics_services(MetricsFixture *fx, gconstpointer user_data)
{
	enum { SIZE = 100000 };
	PbTestService *db = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	g_autofree char *local = g_strdup_printf("%u", pb_test_service_get_port(fx->echo));
	g_autofree char *server_url = g_strdup_printf("127.0.0.1:%u", fx->ws_port);
	g_autofree char *expose = g_strdup_printf("db=127.0.0.1:%u", pb_test_service_get_port(db));
	g_autoptr(GHashTable) samples = NULL;
	PbTestEchoJob job = {0, SIZE};
	guint16 db_port;
	struct {
		const char *metric;
		guint16 *port;
		const char *name;
		guint64 value;
	} expected[] = {
	    {"connections_total", &fx->public_port, "alpha", 1},
	    {"connections_total", &db_port, "db", 2},
	    {"connections_open", &db_port, "db", 0},
	    {"sent_bytes_total", &fx->public_port, "alpha", SIZE},
	    {"sent_bytes_total", &db_port, "db", 2 * SIZE},
	    {"received_bytes_total", &db_port, "db", 2 * SIZE},
	};

	g_test_summary("A client with two services has per-port series for each, with its own "
		       "port and name and what it carried; the tunnel-wide ones stay with the "
		       "first service's labels");
	fx->client = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "forward", "-p", local,
					"-h", "127.0.0.1", "-s", server_url, "--no-dbus", "--name",
					"alpha", "--expose", expose, NULL);
	fx->public_port = pb_test_proc_wait_port(fx->client, "Access URL:");
	db_port = pb_test_proc_wait_port(fx->client, "Access URL (db):");
	g_assert_cmpuint(db_port, !=, fx->public_port);
	job.port = fx->public_port;
	g_assert_true(pb_test_run_in_thread(echo_job_cb, &job, 30));
	job.port = db_port;
	g_assert_true(pb_test_run_in_thread(echo_job_cb, &job, 30));
	g_assert_true(pb_test_run_in_thread(echo_job_cb, &job, 30));

	samples = metrics_get_settled(fx, "piggyback_connections_open");
	for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
		g_autofree char *key =
		    g_strdup_printf("piggyback_port_%s{port=\"%u\",name=\"%s\"}",
				    expected[i].metric, *expected[i].port, expected[i].name);

		g_assert_cmpuint(metrics_value(samples, key), ==, expected[i].value);
	}
	{
		g_autofree char *first =
		    g_strdup_printf("piggyback_port_frames_sent_total{port=\"%u\",name=\"alpha\"}",
				    fx->public_port);
		g_autofree char *further = g_strdup_printf(
		    "piggyback_port_frames_sent_total{port=\"%u\",name=\"db\"}", db_port);

		g_assert_cmpuint(metrics_value(samples, first), >=, 1 + 3 * 3);
		g_assert_false(g_hash_table_contains(samples, further));
	}
	g_assert_cmpuint(metrics_value(samples, "piggyback_clients"), ==, 1);
	g_assert_cmpuint(metrics_value(samples, "piggyback_connections_total"), ==, 3);
	pb_test_service_free(db);
}

static void
test_metrics_label_escaped(void)
{
	g_autoptr(PbQueueBudget) budget = pb_queue_budget_new(1024);
	g_autoptr(GPtrArray) clients =
	    g_ptr_array_new_with_free_func((GDestroyNotify)pb_server_client_info_free);
	PbServerClientInfo *info = g_new0(PbServerClientInfo, 1);
	PbTunnelStats totals = {0};
	g_autofree char *text = NULL;

	g_test_summary("Label values are escaped as the text format says: \\, \" and line "
		       "feed");
	info->peer = g_strdup("127.0.0.1:1");
	info->name = g_strdup("a\"b\\c\nd");
	info->tunnel_port = 9000;
	g_ptr_array_add(clients, info);
	text = pb_metrics_render(&totals, clients, 0, budget);
	g_assert_nonnull(strstr(text, "piggyback_port_connections_total{port=\"9000\","
				      "name=\"a\\\"b\\\\c\\nd\"} 0\n"));
}

static void
test_metrics_bad_options(void)
{
	g_autoptr(GSubprocessLauncher) launcher = pb_test_proc_launcher_new();
	PbTestProc *proc;

	g_test_summary("--metrics public with a metrics token, or an unknown --metrics value: "
		       "exit 2 with the reason");
	g_subprocess_launcher_setenv(launcher, "PIGGY_METRICS_TOKEN", "scrape-me-please", TRUE);
	proc = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p", "0",
				  "--metrics=public", NULL);
	pb_test_proc_wait_exit(proc);
	g_assert_true(pb_test_proc_said(proc, "--metrics public takes no metrics token"));
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 2);
	proc = pb_test_proc_spawn(launcher, g_getenv("PB_PIGGYBACK"), "serve", "-p", "0",
				  "--metrics=open", NULL);
	pb_test_proc_wait_exit(proc);
	g_assert_true(pb_test_proc_said(proc, "--metrics must be on, off or public"));
	g_assert_cmpint(pb_test_proc_finish(proc), ==, 2);
}

int
main(int argc, char **argv)
{
	static const MetricsSetup with_token = {"scrape-me-please", NULL, {NULL}};
	static const MetricsSetup off = {"scrape-me-please", NULL, {"--metrics=off", NULL}};
	static const MetricsSetup tunnel_token = {NULL, "tunnel-s3cret", {NULL}};
	static const MetricsSetup both = {"scrape-me-please", "tunnel-s3cret", {NULL}};
	static const MetricsSetup public = {NULL, "tunnel-s3cret", {"--metrics=public", NULL}};
	static const MetricsSetup named = {NULL, NULL, {"--domain", "example.test", NULL}};

	g_test_init(&argc, &argv, NULL);
	g_test_add("/metrics/after-traffic", MetricsFixture, NULL, metrics_set_up,
		   test_metrics_after_traffic, metrics_tear_down);
	g_test_add("/metrics/healthz-and-paths", MetricsFixture, NULL, metrics_set_up,
		   test_metrics_healthz_and_paths, metrics_tear_down);
	g_test_add("/metrics/token", MetricsFixture, &with_token, metrics_set_up,
		   test_metrics_token, metrics_tear_down);
	g_test_add("/metrics/off", MetricsFixture, &off, metrics_set_up, test_metrics_off,
		   metrics_tear_down);
	g_test_add("/metrics/tunnel-token", MetricsFixture, &tunnel_token, metrics_set_up,
		   test_metrics_token, metrics_tear_down);
	g_test_add("/metrics/both-tokens", MetricsFixture, &both, metrics_set_up,
		   test_metrics_token, metrics_tear_down);
	g_test_add("/metrics/public", MetricsFixture, &public, metrics_set_up, test_metrics_public,
		   metrics_tear_down);
	g_test_add("/metrics/named", MetricsFixture, &named, metrics_set_up, test_metrics_named,
		   metrics_tear_down);
	g_test_add("/metrics/services", MetricsFixture, &named, metrics_set_up,
		   test_metrics_services, metrics_tear_down);
	g_test_add_func("/metrics/label-escaped", test_metrics_label_escaped);
	g_test_add_func("/metrics/bad-options", test_metrics_bad_options);
	return g_test_run();
}
