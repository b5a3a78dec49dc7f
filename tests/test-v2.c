/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-flow.h"
#include "pb-frame.h"
#include "pb-test-utils.h"
#include "pb-tunnel-client.h"
#include "pb-tunnel-server.h"

/*
 * Protocol v2 end to end, in one process: what is negotiated between versions, TCP
 * half-close in both directions, and the credit rules (PbFlow) on their own.
 */

typedef struct {
	PbTunnelServer *server; /* (owned) */
	PbTunnelClient *client; /* (owned) */
	guint16 public_port;
	gboolean ready;
} V2Fixture;

static void
ready_cb(PbTunnelClient *client, const char *access_url, const char *http_url, gpointer user_data)
{
	V2Fixture *fx = user_data;

	fx->public_port = (guint16)g_ascii_strtoull(strrchr(access_url, ':') + 1, NULL, 10);
	fx->ready = TRUE;
}

static void
start(V2Fixture *fx, PbFeatures server_features, PbFeatures client_features, guint16 local_port)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *url = NULL;

	fx->server = pb_tunnel_server_new(0, "127.0.0.1", 0, NULL);
	pb_tunnel_server_set_listen_host(fx->server, "127.0.0.1");
	pb_tunnel_server_set_features(fx->server, server_features, PB_FLOW_WINDOW_DEFAULT);
	g_assert_true(pb_tunnel_server_start(fx->server, &error));
	url =
	    g_strdup_printf("ws://127.0.0.1:%u" PB_WS_PATH, pb_tunnel_server_get_port(fx->server));
	fx->client = pb_tunnel_client_new(url, "127.0.0.1", local_port);
	pb_tunnel_client_set_features(fx->client, client_features);
	g_signal_connect(fx->client, "ready", G_CALLBACK(ready_cb), fx);
	pb_tunnel_client_connect_async(fx->client, NULL, NULL, NULL);
	pb_test_wait_until(fx->ready, 10);
}

static void
stop(V2Fixture *fx)
{
	g_signal_handlers_disconnect_by_data(fx->client, fx);
	pb_tunnel_client_close(fx->client);
	g_clear_object(&fx->client);
	pb_tunnel_server_stop(fx->server);
	g_clear_object(&fx->server);
	pb_test_settle();
}

#define HALF_SIZE (10 * 1024 * 1024)

/* As a public client: send HALF_SIZE bytes, shut down writing, then read the answer. */
static gpointer
request_then_answer_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	g_autofree guint8 *buf = g_malloc(65536);
	guint64 offset = 0;

	g_socket_set_timeout(socket, 30);
	while (offset < HALF_SIZE) {
		gssize n;

		pb_test_pattern_fill(buf, 65536, offset);
		n = g_socket_send(socket, (const char *)buf, MIN(65536, HALF_SIZE - offset), NULL,
				  NULL);
		g_assert_cmpint(n, >, 0);
		offset += (guint64)n;
	}
	g_assert_true(g_socket_shutdown(socket, FALSE, TRUE, NULL));
	offset = 0;
	for (;;) {
		gssize n = g_socket_receive(socket, (char *)buf, 65536, NULL, NULL);

		g_assert_cmpint(n, >=, 0);
		if (n == 0)
			break;
		g_assert_true(pb_test_pattern_check(buf, (gsize)n, offset));
		offset += (guint64)n;
	}
	return GSIZE_TO_POINTER(offset);
}

static void
test_v2_half_close_public(void)
{
	PbTestService *service = pb_test_service_new(PB_TEST_SERVICE_ANSWER, HALF_SIZE, 0);
	V2Fixture fx = {0};
	gsize answered;

	g_test_summary("eof: the public side sends 10 MiB and shuts down writing; the local "
		       "service answers 10 MiB only after it saw the end, and all of it arrives");
	start(&fx, PB_FEATURES_ALL, PB_FEATURES_ALL, pb_test_service_get_port(service));
	g_assert_cmpuint(pb_tunnel_client_get_features(fx.client), ==, PB_FEATURES_ALL);
	answered = GPOINTER_TO_SIZE(
	    pb_test_run_in_thread(request_then_answer_cb, GUINT_TO_POINTER(fx.public_port), 60));
	g_assert_cmpuint(pb_test_service_get_bytes(service), ==, 2 * HALF_SIZE);
	g_assert_false(pb_test_service_get_corrupt(service));
	g_assert_cmpuint(answered, ==, HALF_SIZE);
	pb_test_service_free(service);
	stop(&fx);
}

/* As a public client: read until the end, then answer with as much and shut down. */
static gpointer
read_then_answer_cb(gpointer user_data)
{
	g_autoptr(GSocket) socket = pb_test_connect(GPOINTER_TO_UINT(user_data));
	g_autofree guint8 *buf = g_malloc(65536);
	guint64 offset = 0;
	char end;

	g_socket_set_timeout(socket, 30);
	for (;;) {
		gssize n = g_socket_receive(socket, (char *)buf, 65536, NULL, NULL);

		g_assert_cmpint(n, >=, 0);
		if (n == 0)
			break;
		g_assert_true(pb_test_pattern_check(buf, (gsize)n, offset));
		offset += (guint64)n;
	}
	g_assert_cmpuint(offset, ==, HALF_SIZE);
	for (offset = 0; offset < HALF_SIZE;) {
		gssize n;

		pb_test_pattern_fill(buf, 65536, offset);
		n = g_socket_send(socket, (const char *)buf, MIN(65536, HALF_SIZE - offset), NULL,
				  NULL);
		g_assert_cmpint(n, >, 0);
		offset += (guint64)n;
	}
	g_assert_true(g_socket_shutdown(socket, FALSE, TRUE, NULL));
	/* the tunnel closes the connection once both directions have ended */
	g_assert_cmpint(g_socket_receive(socket, &end, 1, NULL, NULL), ==, 0);
	return GSIZE_TO_POINTER(offset);
}

static void
test_v2_half_close_local(void)
{
	PbTestService *service = pb_test_service_new(PB_TEST_SERVICE_SPEAK_FIRST, HALF_SIZE, 0);
	V2Fixture fx = {0};

	g_test_summary("eof, the mirror case: the local service sends 10 MiB and shuts down "
		       "writing; the public side answers 10 MiB after the end");
	start(&fx, PB_FEATURES_ALL, PB_FEATURES_ALL, pb_test_service_get_port(service));
	g_assert_cmpuint(GPOINTER_TO_SIZE(pb_test_run_in_thread(
			     read_then_answer_cb, GUINT_TO_POINTER(fx.public_port), 60)),
			 ==, HALF_SIZE);
	pb_test_wait_until(pb_test_service_get_n_finished(service) == 1, 10);
	g_assert_cmpuint(pb_test_service_get_bytes(service), ==, 2 * HALF_SIZE);
	g_assert_false(pb_test_service_get_corrupt(service));
	pb_test_service_free(service);
	stop(&fx);
}

static void
test_v2_interop(gconstpointer user_data)
{
	const PbFeatures *sides = user_data; /* server's, client's, expected */
	PbTestService *echo = pb_test_service_new(PB_TEST_SERVICE_ECHO, 0, 0);
	V2Fixture fx = {0};
	PbTestEchoJob job = {0, 100000};

	g_test_summary("What both sides offer is what is used; a side offering nothing speaks "
		       "version 1, and the tunnel works every way");
	start(&fx, sides[0], sides[1], pb_test_service_get_port(echo));
	g_assert_cmpuint(pb_tunnel_client_get_features(fx.client), ==, sides[2]);
	job.port = fx.public_port;
	g_assert_true(pb_test_run_in_thread(pb_test_echo_job_cb, &job, 20));
	pb_test_service_free(echo);
	stop(&fx);
}

static void
test_flow_credit(void)
{
	guint64 budget = PB_FLOW_GROWTH_BUDGET;
	PbFlow flow;

	g_test_summary("Credit: never more than granted, given back in quarter windows, and a "
		       "window grows only while the consumer keeps up, within the budget");
	pb_flow_init(&flow, 1000);
	g_assert_cmpuint(pb_flow_sendable(&flow, 5000), ==, 1000);
	pb_flow_sent(&flow, 1000);
	g_assert_cmpuint(pb_flow_sendable(&flow, 5000), ==, 0);
	pb_flow_add_send_credit(&flow, 300);
	g_assert_cmpuint(pb_flow_sendable(&flow, 5000), ==, 300);

	g_assert_true(pb_flow_receive(&flow, 600));
	g_assert_false(pb_flow_receive(&flow, 401));			       /* 400 left */
	g_assert_cmpuint(pb_flow_consumed(&flow, 100, FALSE, &budget), ==, 0); /* < 250 */
	g_assert_cmpuint(pb_flow_consumed(&flow, 200, FALSE, &budget), ==, 300);
	g_assert_true(pb_flow_receive(&flow, 700));
	g_assert_false(pb_flow_receive(&flow, 1));

	/* the sender ran out of credit while we kept up: the window doubles */
	g_assert_cmpuint(pb_flow_consumed(&flow, 1000, TRUE, &budget), ==, 2000);
	g_assert_cmpuint(flow.window, ==, 2000);
	g_assert_cmpuint(budget, ==, PB_FLOW_GROWTH_BUDGET - 1000);
	g_assert_true(pb_flow_receive(&flow, 2000));
	g_assert_false(pb_flow_receive(&flow, 1));

	/* a slow consumer: no growth */
	g_assert_cmpuint(pb_flow_consumed(&flow, 2000, FALSE, &budget), ==, 2000);
	g_assert_cmpuint(flow.window, ==, 2000);

	/* no budget left: no growth */
	budget = 0;
	g_assert_true(pb_flow_receive(&flow, 2000));
	g_assert_cmpuint(pb_flow_consumed(&flow, 2000, TRUE, &budget), ==, 2000);
	g_assert_cmpuint(flow.window, ==, 2000);

	pb_flow_release(&flow, &budget);
	g_assert_cmpuint(budget, ==, 1000);
}

int
main(int argc, char **argv)
{
	static const PbFeatures both[] = {PB_FEATURES_ALL, PB_FEATURES_ALL, PB_FEATURES_ALL};
	static const PbFeatures old_server[] = {0, PB_FEATURES_ALL, 0};
	static const PbFeatures old_client[] = {PB_FEATURES_ALL, 0, 0};
	static const PbFeatures eof_only[] = {PB_FEATURE_EOF, PB_FEATURES_ALL, PB_FEATURE_EOF};

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/v2/flow-credit", test_flow_credit);
	g_test_add_data_func("/v2/interop/v2-client-v2-server", both, test_v2_interop);
	g_test_add_data_func("/v2/interop/v2-client-v1-server", old_server, test_v2_interop);
	g_test_add_data_func("/v2/interop/v1-client-v2-server", old_client, test_v2_interop);
	g_test_add_data_func("/v2/interop/eof-only-server", eof_only, test_v2_interop);
	g_test_add_func("/v2/half-close/public", test_v2_half_close_public);
	g_test_add_func("/v2/half-close/local", test_v2_half_close_local);
	return g_test_run();
}
