/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <signal.h>

#include "pb-poller.h"
#include "pb-signal.h"
#include "pb-test-utils.h"

/* How many sources the default main context holds (ids are handed out in order). */
static guint
count_sources(void)
{
	g_autoptr(GSource) probe = g_idle_source_new();
	guint last = g_source_attach(probe, NULL);
	guint n = 0;

	g_source_destroy(probe);
	for (guint id = 1; id < last; id++) {
		if (g_main_context_find_source_by_id(NULL, id) != NULL)
			n++;
	}
	return n;
}

static gboolean
count_cb(gpointer user_data)
{
	guint *calls = user_data;

	(*calls)++;
	return G_SOURCE_CONTINUE;
}

static gboolean
once_cb(gpointer user_data)
{
	guint *calls = user_data;

	(*calls)++;
	return G_SOURCE_REMOVE;
}

static gboolean
is_default_action(int signum)
{
	struct sigaction action;

	g_assert_cmpint(sigaction(signum, NULL, &action), ==, 0);
	return action.sa_handler == SIG_DFL;
}

static void
test_signal_watch(void)
{
	guint usr1 = 0;
	guint usr2 = 0;
	guint also_usr1 = 0;
	guint usr1_id;
	guint usr2_id;
	guint also_id;
	guint before;

	g_test_summary("Signals are handled in the main loop like g_unix_signal_add()'s, "
		       "without a GSource each: the main loop's wake-ups do not pay for them");
	pb_poller_start();
	before = count_sources();
	usr1_id = pb_signal_add(SIGUSR1, count_cb, &usr1);
	usr2_id = pb_signal_add(SIGUSR2, once_cb, &usr2);
	also_id = pb_signal_add(SIGUSR1, count_cb, &also_usr1);
	g_assert_cmpuint(count_sources(), ==, before);
	g_assert_false(is_default_action(SIGUSR1));

	/* each watch of a signal is called, in the main loop, and again for the next one */
	raise(SIGUSR1);
	pb_test_wait_until(usr1 == 1 && also_usr1 == 1, 10);
	raise(SIGUSR1);
	pb_test_wait_until(usr1 == 2 && also_usr1 == 2, 10);
	g_assert_cmpuint(usr2, ==, 0);

	/* G_SOURCE_REMOVE removes the watch: the signal is back to its default action */
	raise(SIGUSR2);
	pb_test_wait_until(usr2 == 1, 10);
	g_assert_true(is_default_action(SIGUSR2));
	(void)usr2_id;

	/* a signal keeps being handled until its last watch goes */
	pb_signal_remove(usr1_id);
	g_assert_false(is_default_action(SIGUSR1));
	raise(SIGUSR1);
	pb_test_wait_until(also_usr1 == 3, 10);
	g_assert_cmpuint(usr1, ==, 2);
	pb_signal_remove(also_id);
	g_assert_true(is_default_action(SIGUSR1));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/signal/watch", test_signal_watch);
	return g_test_run();
}
