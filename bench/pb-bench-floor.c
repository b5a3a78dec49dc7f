/* SPDX-License-Identifier: ISC */

/*
 * The memory floor of PiggyBack's stack: a program that links what `piggyback` links
 * (GLib, GIO, libsoup, json-glib), sets the locale as every translated program does, listens
 * with a SoupServer, holds a SoupSession and then does nothing. pb-bench prints its idle
 * memory beside the tunnel's, so the tunnel's own share is the difference.
 *
 *   pb-bench-floor PORT
 */

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <locale.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
	g_autoptr(SoupServer) server = NULL;
	g_autoptr(SoupSession) session = NULL;
	g_autoptr(JsonParser) parser = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GError) error = NULL;
	guint64 port = 0;

	setlocale(LC_ALL, "");
	if (argc != 2 || !g_ascii_string_to_unsigned(argv[1], 10, 1, 65535, &port, NULL)) {
		g_printerr("usage: pb-bench-floor PORT\n");
		return 2;
	}
	server = soup_server_new(NULL, NULL);
	if (!soup_server_listen_local(server, (guint)port, SOUP_SERVER_LISTEN_IPV4_ONLY, &error)) {
		g_printerr("pb-bench-floor: %s\n", error->message);
		return 1;
	}
	session = soup_session_new();
	parser = json_parser_new();
	g_main_loop_run(loop); /* until pb-bench's SIGTERM */
	return 0;
}
