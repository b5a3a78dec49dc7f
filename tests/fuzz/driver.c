/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

/*
 * Without libFuzzer, every fuzz target is this program: it feeds each file named on the
 * command line, or each file in a directory named there, to LLVMFuzzerTestOneInput() once.
 * So the seed corpus is replayed as a plain test, and so are crash reproducers.
 */

static gboolean
pb_fuzz_run_file(const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *contents = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &contents, &len, &error)) {
		g_printerr("%s\n", error->message);
		return FALSE;
	}
	LLVMFuzzerTestOneInput((const uint8_t *)contents, len);
	return TRUE;
}

/* g_ptr_array_sort() passes pointers to the elements */
static int
pb_fuzz_compare_cb(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

int
main(int argc, char **argv)
{
	guint n_inputs = 0;

	for (int i = 1; i < argc; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GDir) dir = NULL;
		g_autoptr(GPtrArray) names = NULL;
		const char *name;

		if (!g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
			if (!pb_fuzz_run_file(argv[i]))
				return EXIT_FAILURE;
			n_inputs++;
			continue;
		}
		dir = g_dir_open(argv[i], 0, &error);
		if (dir == NULL) {
			g_printerr("%s\n", error->message);
			return EXIT_FAILURE;
		}
		names = g_ptr_array_new_with_free_func(g_free);
		while ((name = g_dir_read_name(dir)) != NULL)
			g_ptr_array_add(names, g_build_filename(argv[i], name, NULL));
		g_ptr_array_sort(names, pb_fuzz_compare_cb);
		for (guint k = 0; k < names->len; k++) {
			if (!pb_fuzz_run_file(g_ptr_array_index(names, k)))
				return EXIT_FAILURE;
			n_inputs++;
		}
	}
	/* an empty or missing corpus would pass without testing anything */
	if (n_inputs == 0) {
		g_printerr("no inputs: give corpus files or directories\n");
		return EXIT_FAILURE;
	}
	printf("%u inputs ran\n", n_inputs);
	return EXIT_SUCCESS;
}
