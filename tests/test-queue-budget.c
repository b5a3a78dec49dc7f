/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-queue-budget.h"

/*
 * PbQueueBudget's arithmetic: when a share is held over the server's --max-buffer, and
 * when it is released.
 */

static void
released_cb(PbQueueShare *share, gpointer user_data)
{
	(*(guint *)user_data)++;
}

static void
test_queue_budget_fair_part(void)
{
	g_autoptr(PbQueueBudget) budget = pb_queue_budget_new(1000);
	PbQueueShare hog;
	PbQueueShare good;
	guint hog_released = 0;
	guint good_released = 0;

	g_test_summary("Over the limit, only a share with at least its fair part (limit / "
		       "shares) is held; it is released under three quarters of that part");
	pb_queue_share_init(&hog, budget, released_cb, &hog_released);
	pb_queue_share_init(&good, budget, released_cb, &good_released);
	pb_queue_share_add(&hog, 900);
	g_assert_false(pb_queue_share_check(&hog)); /* at the limit is not over it */
	pb_queue_share_add(&good, 200);
	g_assert_cmpuint(pb_queue_budget_get_used(budget), ==, 1100);
	g_assert_false(pb_queue_share_check(&good)); /* 200 < 1000 / 2 */
	g_assert_true(pb_queue_share_check(&hog));
	g_assert_true(pb_queue_share_is_held(&hog));
	/* the good share's bytes going do not release the hog: 1000 used > 750 */
	pb_queue_share_remove(&good, 100);
	g_assert_cmpuint(hog_released, ==, 0);
	/* 400 >= 375, three quarters of its fair part: still held; then under it */
	pb_queue_share_remove(&hog, 500);
	g_assert_cmpuint(hog_released, ==, 1); /* 500 used <= 750: the total is low again */
	g_assert_false(pb_queue_share_is_held(&hog));
	g_assert_cmpuint(good_released, ==, 0);
	pb_queue_share_clear(&good);
	pb_queue_share_clear(&hog);
	g_assert_cmpuint(pb_queue_budget_get_used(budget), ==, 0);
}

static void
test_queue_budget_release_on_leave(void)
{
	g_autoptr(PbQueueBudget) budget = pb_queue_budget_new(1000);
	PbQueueShare a;
	PbQueueShare b;
	guint a_released = 0;
	guint b_released = 0;

	g_test_summary("A share that goes (its tunnel closed) takes its bytes with it: a share "
		       "held because of them is released; limits of 0 and G_MAXUINT64 work");
	pb_queue_share_init(&a, budget, released_cb, &a_released);
	pb_queue_share_init(&b, budget, released_cb, &b_released);
	pb_queue_share_add(&a, 600);
	pb_queue_share_add(&b, 600);
	g_assert_true(pb_queue_share_check(&a));
	g_assert_true(pb_queue_share_check(&b));
	pb_queue_share_clear(&b);
	g_assert_cmpuint(a_released, ==, 1);
	g_assert_cmpuint(b_released, ==, 0);  /* a share that leaves is not called back */
	pb_queue_budget_set_limit(budget, 0); /* taken as 1 */
	g_assert_cmpuint(pb_queue_budget_get_limit(budget), ==, 1);
	g_assert_true(pb_queue_share_check(&a));
	pb_queue_budget_set_limit(budget, G_MAXUINT64);
	g_assert_cmpuint(a_released, ==, 2);
	g_assert_false(pb_queue_share_check(&a));
	pb_queue_share_clear(&a);
}

static void
test_queue_budget_none(void)
{
	PbQueueShare share;
	guint released = 0;

	g_test_summary("Without a budget a share only counts (the client's tunnels)");
	pb_queue_share_init(&share, NULL, released_cb, &released);
	pb_queue_share_add(&share, G_MAXUINT32);
	g_assert_false(pb_queue_share_check(&share));
	pb_queue_share_remove(&share, G_MAXUINT32);
	pb_queue_share_clear(&share);
	g_assert_cmpuint(released, ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/queue-budget/fair-part", test_queue_budget_fair_part);
	g_test_add_func("/queue-budget/release-on-leave", test_queue_budget_release_on_leave);
	g_test_add_func("/queue-budget/none", test_queue_budget_none);
	return g_test_run();
}
