/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-error.h"
#include "pb-replay.h"
#include "pb-resume.h"
#include "pb-test-utils.h"

/*
 * The pieces of resumption (feature `resume`): PbReplay keeps what a side sent until the
 * peer confirmed it, and gives back exactly what the peer says it did not receive; RESUME
 * says how much each side received.
 */

/* Pushes @len bytes of the pattern from @offset, in chunks of @chunk. */
static void
push_pattern(PbReplay *replay, guint64 offset, gsize len, gsize chunk)
{
	g_autofree guint8 *data = g_malloc(len);

	pb_test_pattern_fill(data, len, offset);
	for (gsize done = 0; done < len; done += chunk)
		g_assert_true(pb_replay_push(replay, data + done, MIN(chunk, len - done)));
}

/* The bytes of @resend, end to end, are the pattern from @offset to @end. */
static void
assert_resend(GPtrArray *resend, guint64 offset, guint64 end)
{
	g_autoptr(GByteArray) all = g_byte_array_new();

	for (guint i = 0; i < resend->len; i++) {
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(resend->pdata[i], &len);

		g_assert_cmpuint(len, >, 0);
		g_byte_array_append(all, data, (guint)len);
	}
	g_assert_cmpuint(all->len, ==, end - offset);
	g_assert_true(pb_test_pattern_check(all->data, all->len, offset));
}

static void
test_replay_bounded(void)
{
	g_autoptr(PbReplay) replay = pb_replay_new(1000);
	guint8 byte = 0;

	g_test_summary("A replay buffer keeps at most its window: a push past it is refused "
		       "whole; confirmed bytes make room");
	push_pattern(replay, 0, 1000, 300);
	g_assert_cmpuint(pb_replay_get_size(replay), ==, 1000);
	g_assert_false(pb_replay_push(replay, &byte, 1));
	g_assert_cmpuint(pb_replay_get_room(replay), ==, 0);
	g_assert_cmpuint(pb_replay_get_sent(replay), ==, 1000);
	g_assert_true(pb_replay_acknowledge(replay, 1));
	g_assert_cmpuint(pb_replay_get_room(replay), ==, 1);
	g_assert_true(pb_replay_push(replay, &byte, 1));
	g_assert_false(pb_replay_push(replay, &byte, 1));
	/* 0 bytes: nothing, always allowed */
	g_assert_true(pb_replay_push(replay, NULL, 0));
	/* the same count again changes nothing; all of it drops all there is */
	g_assert_true(pb_replay_acknowledge(replay, 1));
	g_assert_cmpuint(pb_replay_get_size(replay), ==, 1000);
	g_assert_true(pb_replay_acknowledge(replay, 1001));
	g_assert_cmpuint(pb_replay_get_size(replay), ==, 0);
	g_assert_cmpuint(pb_replay_get_confirmed(replay), ==, 1001);
	g_assert_cmpuint(pb_replay_get_sent(replay), ==, 1001);
}

static void
test_replay_rewind(void)
{
	g_autoptr(PbReplay) replay = pb_replay_new(1 << 20);
	const guint64 cases[] = {250, 251, 299, 300, 301, 777, 999, 1000};

	g_test_summary("After confirmations that end inside a chunk, a rewind to any offset "
		       "between the confirmed and the sent gives back exactly the bytes after it");
	push_pattern(replay, 0, 1000, 100);
	g_assert_true(pb_replay_acknowledge(replay, 250)); /* in the middle of the third chunk */
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GPtrArray) resend = NULL;
		g_autoptr(GError) error = NULL;

		g_assert_true(pb_replay_rewind(replay, cases[i], &resend, &error));
		g_assert_no_error(error);
		assert_resend(resend, cases[i], 1000);
	}
	/* a rewind takes nothing away: the bytes stay until confirmed */
	g_assert_cmpuint(pb_replay_get_size(replay), ==, 750);
}

static void
test_replay_wrap(void)
{
	g_autoptr(PbReplay) replay = pb_replay_new(1000);
	const guint64 cases[] = {500, 600, 999, 1000, 1001, 1399, 1400};

	g_test_summary("Bytes kept across the end of the ring buffer come back in order, also "
		       "after a trim, which frees nothing while bytes are kept; all of them "
		       "confirmed and trimmed, the next ones start afresh");
	push_pattern(replay, 0, 600, 600);
	g_assert_true(pb_replay_acknowledge(replay, 500));
	push_pattern(replay, 600, 800, 250); /* 400 at the end of the ring, 400 at its start */
	g_assert_cmpuint(pb_replay_get_size(replay), ==, 900);
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GPtrArray) resend = NULL;

		g_assert_true(pb_replay_rewind(replay, cases[i], &resend, NULL));
		assert_resend(resend, cases[i], 1400);
	}
	pb_replay_trim(replay); /* bytes are kept: nothing freed */
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GPtrArray) resend = NULL;

		g_assert_true(pb_replay_rewind(replay, cases[i], &resend, NULL));
		assert_resend(resend, cases[i], 1400);
	}
	g_assert_true(pb_replay_acknowledge(replay, 1400));
	g_assert_cmpuint(pb_replay_get_size(replay), ==, 0);
	pb_replay_trim(replay); /* all confirmed: the ring goes */
	push_pattern(replay, 1400, 1000, 1000);
	g_assert_cmpuint(pb_replay_get_room(replay), ==, 0);
	{
		g_autoptr(GPtrArray) resend = NULL;

		g_assert_true(pb_replay_rewind(replay, 1400, &resend, NULL));
		assert_resend(resend, 1400, 2400);
	}
}

static void
test_replay_grows(void)
{
	g_autoptr(PbReplay) replay = pb_replay_new(256 * 1024);
	gsize len = 0;
	gsize last = 0;
	guint reads = 0;

	g_test_summary("A connection that sends a byte keeps a ring of 64 bytes, not room for "
		       "its whole window (what a socket read might have brought); one that "
		       "fills the room it is given gets at most twice as much each time, up to "
		       "its window, in a dozen reads");
	g_assert_nonnull(pb_replay_begin_push(replay, 256 * 1024, &len));
	g_assert_cmpuint(len, ==, 64);
	pb_replay_end_push(replay, 1); /* a keystroke */
	g_assert_nonnull(pb_replay_begin_push(replay, 256 * 1024, &len));
	g_assert_cmpuint(len, ==, 63); /* no growth: the last read did not fill its room */
	pb_replay_end_push(replay, 63);
	while (pb_replay_get_room(replay) > 0 && reads < 64) {
		g_assert_nonnull(pb_replay_begin_push(replay, 256 * 1024, &len));
		g_assert_cmpuint(len, >, 0);
		g_assert_cmpuint(len, <=, MAX(last, 64) * 2);
		pb_replay_end_push(replay, len);
		last = len;
		reads++;
	}
	g_assert_cmpuint(pb_replay_get_size(replay), ==, 256 * 1024);
	g_assert_cmpuint(reads, <=, 13);
	g_assert_null(pb_replay_begin_push(replay, 1, &len));
	g_assert_cmpuint(len, ==, 0);
}

static void
test_replay_lies(void)
{
	g_autoptr(PbReplay) replay = pb_replay_new(1 << 20);
	const guint64 lies[] = {0, 249, 1001, G_MAXUINT64};

	g_test_summary("A peer that says it received fewer bytes than it confirmed, or more than "
		       "were sent (up to 2^64-1): refused, nothing to resend");
	push_pattern(replay, 0, 1000, 64);
	g_assert_true(pb_replay_acknowledge(replay, 250));
	for (gsize i = 0; i < G_N_ELEMENTS(lies); i++) {
		GPtrArray *resend = NULL;
		g_autoptr(GError) error = NULL;

		g_assert_false(pb_replay_rewind(replay, lies[i], &resend, &error));
		g_assert_error(error, PB_ERROR, PB_ERROR_PROTOCOL);
		g_assert_null(resend);
		/* the same lies in a WINDOW: refused, nothing dropped */
		g_assert_false(pb_replay_acknowledge(replay, lies[i]));
		g_assert_cmpuint(pb_replay_get_confirmed(replay), ==, 250);
	}
}

static void
test_resume_round_trip(void)
{
	const PbResumeEntry entries[] = {
	    {1, 0, 0, FALSE},
	    {G_MAXUINT32, G_MAXUINT64, G_MAXUINT32, TRUE},
	    {42, (guint64)G_MAXUINT32 + 1, 262144, FALSE},
	};
	g_autoptr(GBytes) payload = pb_resume_write(entries, G_N_ELEMENTS(entries));
	g_autoptr(GArray) parsed = NULL;
	g_autoptr(GBytes) none = pb_resume_write(NULL, 0);
	g_autoptr(GArray) empty = NULL;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(payload, &len);

	g_test_summary("RESUME entries, the largest connId and count included, parse back as "
		       "written; no entries is an empty payload");
	g_assert_cmpuint(len, ==, 3 * PB_RESUME_ENTRY_SIZE);
	parsed = pb_resume_parse(data, len, 3, NULL);
	g_assert_nonnull(parsed);
	g_assert_cmpuint(parsed->len, ==, 3);
	for (guint i = 0; i < 3; i++) {
		const PbResumeEntry *entry = &g_array_index(parsed, PbResumeEntry, i);

		g_assert_cmpuint(entry->conn_id, ==, entries[i].conn_id);
		g_assert_cmpuint(entry->received, ==, entries[i].received);
		g_assert_cmpuint(entry->credit, ==, entries[i].credit);
		g_assert_cmpint(entry->eof, ==, entries[i].eof);
	}
	g_assert_cmpuint(g_bytes_get_size(none), ==, 0);
	empty = pb_resume_parse(NULL, 0, 0, NULL);
	g_assert_nonnull(empty);
	g_assert_cmpuint(empty->len, ==, 0);
}

static void
test_resume_malformed(void)
{
	const PbResumeEntry two[] = {{7, 1, 0, FALSE}, {7, 2, 0, TRUE}};
	const PbResumeEntry zero[] = {{0, 1, 0, FALSE}};
	g_autoptr(GBytes) twice = pb_resume_write(two, 2);
	g_autoptr(GBytes) control = pb_resume_write(zero, 1);
	g_autoptr(GBytes) one = pb_resume_write(two, 1);
	guint8 flags[PB_RESUME_ENTRY_SIZE];
	g_autoptr(GArray) other_flags = NULL;
	struct {
		GBytes *payload;
		gsize len; /* of it */
		guint max;
	} cases[] = {
	    {twice, 2 * PB_RESUME_ENTRY_SIZE, 8}, /* a connId twice */
	    {control, PB_RESUME_ENTRY_SIZE, 8},	  /* connId 0 */
	    {one, PB_RESUME_ENTRY_SIZE - 1, 8},	  /* not whole entries */
	    {one, PB_RESUME_ENTRY_SIZE, 0},	  /* more than the tunnel may have */
	    {twice, 2 * PB_RESUME_ENTRY_SIZE, 1},
	};

	g_test_summary("RESUME refused: a length that is not whole entries, more entries than "
		       "connections, connId 0, a connId twice; unknown flags are ignored");
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GArray) parsed = pb_resume_parse(g_bytes_get_data(cases[i].payload, NULL),
							   cases[i].len, cases[i].max, &error);

		g_assert_null(parsed);
		g_assert_error(error, PB_ERROR, PB_ERROR_PROTOCOL);
	}
	memcpy(flags, g_bytes_get_data(one, NULL), sizeof flags);
	flags[16] = 0xfe;
	other_flags = pb_resume_parse(flags, sizeof flags, 1, NULL);
	g_assert_nonnull(other_flags);
	g_assert_false(g_array_index(other_flags, PbResumeEntry, 0).eof);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/replay/bounded", test_replay_bounded);
	g_test_add_func("/replay/rewind", test_replay_rewind);
	g_test_add_func("/replay/wrap", test_replay_wrap);
	g_test_add_func("/replay/grows", test_replay_grows);
	g_test_add_func("/replay/lies", test_replay_lies);
	g_test_add_func("/resume/round-trip", test_resume_round_trip);
	g_test_add_func("/resume/malformed", test_resume_malformed);
	return g_test_run();
}
