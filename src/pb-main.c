/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb-cli.h"
#include "pb-log.h"

/* The program: picks the command (serve, forward) by argument or by the name it was run
 * as; the commands are in pb-serve-command.c and pb-forward-command.c. */

static int
pb_main_usage(FILE *out)
{
	fprintf(out, "%s",
		_("Usage:\n"
		  "  piggyback serve [OPTION…]     run the tunnel server\n"
		  "  piggyback forward [OPTION…]   expose a local TCP service\n"
		  "  piggyback --version\n"
		  "\n"
		  "“piggyback COMMAND --help” lists a command’s options.\n"));
	return out == stdout ? EXIT_SUCCESS : PB_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	g_autofree char *name = g_path_get_basename(argv[0]);

	setlocale(LC_ALL, "");
	bindtextdomain(GETTEXT_PACKAGE,
		       g_getenv("PB_LOCALEDIR") != NULL ? g_getenv("PB_LOCALEDIR") : LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
	textdomain(GETTEXT_PACKAGE);
	pb_log_init(PB_LOG_NORMAL); /* before anything logs; the options may change the level */

	if (g_str_has_prefix(name, "piggyback-forward")) {
		g_set_prgname("piggyback-forward");
		return pb_forward_command(argc, argv, TRUE);
	}
	g_set_prgname("piggyback");
	if (argc < 2)
		return pb_main_usage(stderr);
	if (strcmp(argv[1], "serve") == 0) {
		g_set_prgname("piggyback serve");
		return pb_serve_command(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "forward") == 0) {
		g_set_prgname("piggyback forward");
		return pb_forward_command(argc - 1, argv + 1, FALSE);
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		pb_cli_print("piggyback %s\n", PACKAGE_VERSION);
		return EXIT_SUCCESS;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0)
		return pb_main_usage(stdout);
	g_printerr(_("piggyback: unknown command “%s”\n"), argv[1]);
	return pb_main_usage(stderr);
}
