/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <sys/socket.h>

#include "pb-connection-table.h"
#include "pb-test-utils.h"

static void
test_table_ids(void)
{
	g_autoptr(PbConnectionTable) table = pb_connection_table_new();
	g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);

	g_test_summary("connIds are never 0 and never one in use");
	for (int i = 0; i < 100; i++) {
		guint32 id = pb_connection_table_next_id(table);
		g_autoptr(PbStream) stream = pb_stream_new(id);

		g_assert_cmpuint(id, !=, 0);
		g_assert_false(g_hash_table_contains(seen, GUINT_TO_POINTER(id)));
		g_hash_table_add(seen, GUINT_TO_POINTER(id));
		pb_connection_table_add(table, stream);
	}
	g_assert_cmpuint(pb_connection_table_get_n_live(table), ==, 100);
}

static void
test_table_retire(void)
{
	g_autoptr(PbConnectionTable) table = pb_connection_table_new();
	g_autoptr(PbStream) first = pb_stream_new(7);
	g_autoptr(PbStream) second = pb_stream_new(7);

	g_test_summary("A retired stream frees its connId for a new stream, and is kept until "
		       "removed");
	pb_connection_table_add(table, first);
	g_assert_true(pb_connection_table_lookup(table, 7) == first);
	pb_connection_table_retire(table, first);
	g_assert_null(pb_connection_table_lookup(table, 7));
	g_assert_false(pb_connection_table_is_live(table, first));
	g_assert_cmpuint(G_OBJECT(first)->ref_count, ==, 2); /* ours and the table's */

	pb_connection_table_add(table, second);
	g_assert_true(pb_connection_table_lookup(table, 7) == second);
	pb_connection_table_remove(table, first); /* does not touch the live one */
	g_assert_cmpuint(G_OBJECT(first)->ref_count, ==, 1);
	g_assert_true(pb_connection_table_is_live(table, second));
	pb_connection_table_remove(table, second);
	g_assert_cmpuint(pb_connection_table_get_n_live(table), ==, 0);
}

static void
test_table_clear(void)
{
	g_autoptr(PbConnectionTable) table = pb_connection_table_new();
	g_autoptr(PbStream) live = pb_stream_new(1);
	g_autoptr(PbStream) retired = pb_stream_new(2);

	g_test_summary("Clearing drops live and retired streams");
	pb_connection_table_add(table, live);
	pb_connection_table_add(table, retired);
	pb_connection_table_retire(table, retired);
	pb_connection_table_clear(table);
	g_assert_cmpuint(pb_connection_table_get_n_live(table), ==, 0);
	g_assert_cmpuint(G_OBJECT(live)->ref_count, ==, 1);
	g_assert_cmpuint(G_OBJECT(retired)->ref_count, ==, 1);
}

#define N_TURNS	   6
#define READS_EACH 2 /* reads before reading pauses, as when the WebSocket's queue is full */
#define N_ROUNDS   (N_TURNS * 2 / READS_EACH)

typedef struct {
	PbConnectionTable *table;
	guint reads[N_TURNS]; /* by connId - 1 */
	guint reads_this_round;
} Turns;

/* Reads a byte, as a tunnel reads a socket, and pauses all reading after READS_EACH. */
static void
turns_readable_cb(PbStream *stream, gpointer user_data)
{
	Turns *turns = user_data;
	guint8 byte;

	g_assert_cmpint(pb_stream_receive(stream, &byte, 1, NULL), ==, 1);
	turns->reads[pb_stream_get_id(stream) - 1]++;
	if (++turns->reads_this_round == READS_EACH)
		pb_connection_table_pause_reading(turns->table, stream);
}

static void
turns_wrote_cb(PbStream *stream, guint64 n, gpointer user_data)
{
}

static void
test_table_turns(void)
{
	static const PbStreamIoFuncs funcs = {turns_readable_cb, turns_wrote_cb};
	g_autoptr(PbConnectionTable) table = pb_connection_table_new();
	GSocket *peers[N_TURNS];
	Turns turns = {.table = table};

	g_test_summary("Every stream with data gets its turn when reading pauses after a few "
		       "reads each time (the WebSocket is the bottleneck), not only the first "
		       "few in the table");
	for (guint i = 0; i < N_TURNS; i++) {
		g_autoptr(PbStream) stream = pb_stream_new(i + 1);
		g_autoptr(GSocket) socket = NULL;
		g_autoptr(GSocketConnection) connection = NULL;
		int fds[2];

		g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), ==, 0);
		socket = g_socket_new_from_fd(fds[0], NULL);
		peers[i] = g_socket_new_from_fd(fds[1], NULL);
		g_assert_nonnull(socket);
		g_assert_nonnull(peers[i]);
		g_assert_cmpint(g_socket_send(peers[i], "0123456789", 10, NULL, NULL), ==, 10);
		connection = g_socket_connection_factory_create_connection(socket);
		pb_stream_set_io_funcs(stream, &funcs, &turns);
		pb_connection_table_add(table, stream);
		pb_stream_set_connection(stream, connection);
	}
	for (guint round = 0; round < N_ROUNDS; round++) {
		turns.reads_this_round = 0;
		pb_connection_table_set_reading(table, TRUE);
		pb_test_wait_until(turns.reads_this_round == READS_EACH, 10);
	}
	for (guint i = 0; i < N_TURNS; i++)
		g_assert_cmpuint(turns.reads[i], ==, N_ROUNDS * READS_EACH / N_TURNS);

	pb_connection_table_clear(table);
	for (guint i = 0; i < N_TURNS; i++)
		g_object_unref(peers[i]);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/connection-table/ids", test_table_ids);
	g_test_add_func("/connection-table/retire", test_table_retire);
	g_test_add_func("/connection-table/clear", test_table_clear);
	g_test_add_func("/connection-table/turns", test_table_turns);
	return g_test_run();
}
