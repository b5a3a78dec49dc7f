/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-frame.h"
#include "pb-stream.h"
#include "pb-test-utils.h"

/* PbStream over a real loopback TCP connection. */

typedef struct {
	GSocketListener *listener; /* (owned) */
	GSocketConnection *ours;   /* (owned) the stream's end */
	GSocketConnection *theirs; /* (owned) the local service's end */
	PbStream *stream;	   /* (owned) */
	gboolean relieved;
	gboolean closed;
} StreamFixture;

static void
accepted_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	StreamFixture *fx = user_data;

	fx->theirs = g_socket_listener_accept_finish(G_SOCKET_LISTENER(source), res, NULL, NULL);
	g_assert_nonnull(fx->theirs);
}

static void
connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	StreamFixture *fx = user_data;

	fx->ours = g_socket_client_connect_finish(G_SOCKET_CLIENT(source), res, NULL);
	g_assert_nonnull(fx->ours);
}

static void
relieved_cb(PbStream *stream, gpointer user_data)
{
	StreamFixture *fx = user_data;

	fx->relieved = TRUE;
}

static void
closed_cb(PbStream *stream, const GError *error, gpointer user_data)
{
	StreamFixture *fx = user_data;

	g_assert_no_error(error);
	fx->closed = TRUE;
}

static void
stream_set_up(StreamFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketConnectable) address = NULL;
	guint16 port;

	fx->listener = g_socket_listener_new();
	port = g_socket_listener_add_any_inet_port(fx->listener, NULL, NULL);
	address = g_network_address_new("127.0.0.1", port);
	g_socket_listener_accept_async(fx->listener, NULL, accepted_cb, fx);
	g_socket_client_connect_async(client, address, NULL, connected_cb, fx);
	pb_test_wait_until(fx->ours != NULL && fx->theirs != NULL, 10);

	fx->stream = pb_stream_new(7);
	g_signal_connect(fx->stream, "relieved", G_CALLBACK(relieved_cb), fx);
	g_signal_connect(fx->stream, "closed", G_CALLBACK(closed_cb), fx);
}

static void
stream_tear_down(StreamFixture *fx, gconstpointer user_data)
{
	g_signal_handlers_disconnect_by_data(fx->stream, fx);
	g_clear_object(&fx->stream);
	g_clear_object(&fx->ours);
	g_clear_object(&fx->theirs);
	g_socket_listener_close(fx->listener);
	g_clear_object(&fx->listener);
}

typedef struct {
	GSocketConnection *connection;
	gsize size;
	gboolean expect_eof;
} ReadJob;

/* Reads @size bytes of the pattern, then (optionally) the end of the stream. */
static gpointer
read_job_cb(gpointer user_data)
{
	ReadJob *job = user_data;
	GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(job->connection));
	g_autofree guint8 *buf = g_malloc(65536);
	gsize got = 0;

	while (got < job->size) {
		gssize n = g_input_stream_read(in, buf, 65536, NULL, NULL);

		g_assert_cmpint(n, >, 0);
		g_assert_true(pb_test_pattern_check(buf, (gsize)n, got));
		got += (gsize)n;
	}
	if (job->expect_eof)
		g_assert_cmpint(g_input_stream_read(in, buf, 1, NULL, NULL), ==, 0);
	return GSIZE_TO_POINTER(got);
}

static void
write_pattern(PbStream *stream, gsize size)
{
	for (gsize offset = 0; offset < size; offset += 65536) {
		g_autofree guint8 *buf = g_malloc(65536);
		g_autoptr(GBytes) bytes = NULL;

		pb_test_pattern_fill(buf, 65536, offset);
		bytes = g_bytes_new_take(g_steal_pointer(&buf), 65536);
		g_assert_true(pb_stream_write(stream, bytes, 0, NULL));
	}
}

static void
test_stream_queue_before_connect(StreamFixture *fx, gconstpointer user_data)
{
	ReadJob job = {NULL, 2 * 1024 * 1024, FALSE};

	g_test_summary("Data queued while the local connection is still being made is written "
		       "once it exists, and a stream congested meanwhile is relieved");
	write_pattern(fx->stream, job.size);
	g_assert_true(pb_stream_is_congested(fx->stream));
	g_assert_cmpuint(pb_stream_get_pending(fx->stream), ==, job.size);

	job.connection = fx->theirs;
	pb_stream_set_connection(fx->stream, fx->ours);
	g_assert_cmpuint(GPOINTER_TO_SIZE(pb_test_run_in_thread(read_job_cb, &job, 20)), ==,
			 job.size);
	pb_test_wait_until(fx->relieved, 10);
	g_assert_false(pb_stream_is_congested(fx->stream));
}

static void
test_stream_finish_flushes(StreamFixture *fx, gconstpointer user_data)
{
	ReadJob job = {NULL, 0, TRUE};

	g_test_summary("Finishing a stream writes everything queued, then closes the socket");
	pb_stream_set_connection(fx->stream, fx->ours);
	/* write until the socket's buffers are full and the stream queues */
	while (pb_stream_get_pending(fx->stream) == 0 && job.size < 256 * 1024 * 1024) {
		guint8 *buf = g_malloc(65536);
		g_autoptr(GBytes) bytes = NULL;

		pb_test_pattern_fill(buf, 65536, job.size);
		bytes = g_bytes_new_take(buf, 65536);
		g_assert_true(pb_stream_write(fx->stream, bytes, 0, NULL));
		job.size += 65536;
	}
	g_assert_cmpuint(pb_stream_get_pending(fx->stream), >, 0);
	g_assert_false(pb_stream_finish(fx->stream));

	job.connection = fx->theirs;
	g_assert_cmpuint(GPOINTER_TO_SIZE(pb_test_run_in_thread(read_job_cb, &job, 20)), ==,
			 job.size);
	pb_test_wait_until(fx->closed, 10);
}

static void
readable_cb(PbStream *stream, gpointer user_data)
{
	int *n_readable = user_data;

	(*n_readable)++;
}

static void
wrote_cb(PbStream *stream, guint64 n, gpointer user_data)
{
}

static void
test_stream_reading_switch(StreamFixture *fx, gconstpointer user_data)
{
	GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(fx->theirs));
	int n_readable = 0;
	guint8 buf[16];

	static const PbStreamIoFuncs io_funcs = {.readable = readable_cb, .wrote = wrote_cb};

	g_test_summary("The readable function is called only while reading is on; receive "
		       "returns the bytes");
	pb_stream_set_io_funcs(fx->stream, &io_funcs, &n_readable);
	pb_stream_set_connection(fx->stream, fx->ours);
	g_assert_true(g_output_stream_write_all(out, "hello", 5, NULL, NULL, NULL));
	for (int i = 0; i < 20; i++) {
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
	g_assert_cmpint(n_readable, ==, 0);

	pb_stream_set_reading(fx->stream, TRUE);
	pb_test_wait_until(n_readable > 0, 10);
	g_assert_cmpint(pb_stream_receive(fx->stream, buf, sizeof buf, NULL), ==, 5);
	g_assert_cmpmem(buf, 5, "hello", 5);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/stream/queue-before-connect", StreamFixture, NULL, stream_set_up,
		   test_stream_queue_before_connect, stream_tear_down);
	g_test_add("/stream/finish-flushes", StreamFixture, NULL, stream_set_up,
		   test_stream_finish_flushes, stream_tear_down);
	g_test_add("/stream/reading-switch", StreamFixture, NULL, stream_set_up,
		   test_stream_reading_switch, stream_tear_down);
	return g_test_run();
}
