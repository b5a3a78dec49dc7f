/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-connection-table.h"

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

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/connection-table/ids", test_table_ids);
	g_test_add_func("/connection-table/retire", test_table_retire);
	g_test_add_func("/connection-table/clear", test_table_clear);
	return g_test_run();
}
