/* SPDX-License-Identifier: ISC */
#define _GNU_SOURCE /* posix_openpt() and friends */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pb-console.h"
#include "pb-dashboard.h"
#include "pb-test-utils.h"

/* The dashboard's renderer as pure text, and PbConsole on a real pseudo-terminal. */

#define NOW    G_GINT64_CONSTANT(1700000000000000) /* Unix µs */
#define SEC(s) ((gint64)(s)*G_USEC_PER_SEC)

/* @text without SGR escapes. */
static char *
strip_escapes(const char *text)
{
	GString *out = g_string_new(NULL);

	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\033' && p[1] == '[') {
			p += 2;
			while (*p != '\0' && !g_ascii_isalpha(*p))
				p++;
			if (*p == '\0')
				break;
			continue;
		}
		g_string_append_c(out, *p);
	}
	return g_string_free(out, FALSE);
}

/* Every line at most @width characters once escapes are stripped, and at most @height lines. */
static void
assert_fits(const char *screen, guint width, guint height)
{
	g_autofree char *plain = strip_escapes(screen);
	g_auto(GStrv) lines = g_strsplit(plain, "\n", -1);

	g_assert_true(g_utf8_validate(screen, -1, NULL));
	g_assert_cmpuint(g_strv_length(lines), <=, height);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_utf8_strlen(lines[i], -1) > (glong)width)
			g_error("line %u is wider than %u: \"%s\"", i, width, lines[i]);
	}
}

static void
test_dashboard_format_bytes(void)
{
	struct {
		guint64 n;
		const char *text;
	} cases[] = {
	    {0, "0 B"},
	    {512, "512 B"},
	    {1023, "1023 B"},
	    {1024, "1.0 KiB"},
	    {1536, "1.5 KiB"},
	    {18841, "18.4 KiB"},
	    {1024 * 1024 - 1, "1.0 MiB"},
	    {1024 * 1024, "1.0 MiB"},
	    {1258291, "1.2 MiB"},
	    {G_GUINT64_CONSTANT(1) << 30, "1.0 GiB"},
	    {G_GUINT64_CONSTANT(3) << 30, "3.0 GiB"},
	    {(G_GUINT64_CONSTANT(3) << 39), "1.5 TiB"},
	    {G_MAXUINT64, "16.0 EiB"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text = pb_format_bytes(cases[i].n);

		g_assert_cmpstr(text, ==, cases[i].text);
	}
}

static void
test_dashboard_format_rate(void)
{
	g_autofree char *zero = pb_format_rate(0);
	g_autofree char *negative = pb_format_rate(-5);
	g_autofree char *mib = pb_format_rate(1.2 * 1024 * 1024);
	g_autofree char *small = pb_format_rate(511.6);

	g_assert_cmpstr(zero, ==, "0 B/s");
	g_assert_cmpstr(negative, ==, "0 B/s");
	g_assert_cmpstr(mib, ==, "1.2 MiB/s");
	g_assert_cmpstr(small, ==, "512 B/s");
}

static void
test_dashboard_format_duration(void)
{
	struct {
		gint64 seconds;
		const char *text;
	} cases[] = {
	    {-3, "0s"},
	    {0, "0s"},
	    {12, "12s"},
	    {59, "59s"},
	    {60, "1m 00s"},
	    {61, "1m 01s"},
	    {185, "3m 05s"},
	    {3599, "59m 59s"},
	    {3600, "1h 00m"},
	    {3600 * 2 + 180 + 59, "2h 03m"},
	    {86399, "23h 59m"},
	    {86400, "1d 00h"},
	    {86400 * 4 + 3600 * 2 + 5, "4d 02h"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *text = pb_format_duration(cases[i].seconds);

		g_assert_cmpstr(text, ==, cases[i].text);
	}
}

static const PbDashboardEvent client_events[] = {
    {NOW - SEC(50), "event one: connecting to ws://tunnel.example.com:8080"},
    {NOW - SEC(40), "event two"},
    {NOW - SEC(30), "event three"},
    {NOW - SEC(20), "event four"},
    {NOW - SEC(10),
     "event five: tunnel ready: customers can reach you at tcp://tunnel.example.com:9000"},
};

static void
client_view_init(PbClientView *view)
{
	*view = (PbClientView){
	    .version = "2.0.0",
	    .state = "online",
	    .now = NOW,
	    .connected_since = NOW - SEC(12),
	    .server_url = "ws://tunnel.example.com:8080/http-stream",
	    .local_address = "localhost:4321",
	    .access_url = "tcp://tunnel.example.com:9000",
	    .http_url = "http://tunnel.example.com:9000",
	    .connections_total = 3,
	    .connections_active = 1,
	    .bytes_in = 1258291,
	    .bytes_out = 18841,
	    .rate_in = 3481,
	    .rate_out = 0,
	    .events = client_events,
	    .n_events = G_N_ELEMENTS(client_events),
	};
}

static void
test_dashboard_client_layout(void)
{
	PbClientView view;
	g_autofree char *screen = NULL;
	g_auto(GStrv) lines = NULL;

	client_view_init(&view);
	screen = pb_dashboard_render_client(&view, 100, 40, FALSE);
	lines = g_strsplit(screen, "\n", -1);
	g_assert_cmpstr(lines[0], ==, "piggyback client 2.0.0 (Ctrl+C to quit)");
	g_assert_cmpstr(lines[1], ==, "Status        online (uptime 12s)");
	g_assert_cmpstr(lines[2], ==, "Server        ws://tunnel.example.com:8080/http-stream");
	g_assert_cmpstr(lines[3], ==, "Forwarding    localhost:4321");
	g_assert_cmpstr(lines[4], ==, "Access URL    tcp://tunnel.example.com:9000");
	g_assert_cmpstr(lines[5], ==, "HTTP URL      http://tunnel.example.com:9000");
	g_assert_cmpstr(lines[6], ==, "Connections   total 3   active 1");
	g_assert_cmpstr(lines[7], ==,
			"Traffic       in 1.2 MiB (3.4 KiB/s)   out 18.4 KiB (0 B/s)");
	g_assert_cmpstr(lines[8], ==, "Recent events");
	g_assert_true(g_str_has_prefix(lines[9], "───"));
	g_assert_cmpint(g_utf8_strlen(lines[9], -1), ==, 100);
	g_assert_true(
	    g_str_has_suffix(lines[10], "  event one: connecting to ws://tunnel.example.com:8080"));
	g_assert_cmpuint(g_strv_length(lines), ==, 15);
}

static void
test_dashboard_client_name(void)
{
	PbClientView view;
	g_autofree char *screen = NULL;
	g_auto(GStrv) lines = NULL;

	g_test_summary("A named tunnel's dashboard has a Name row before its URLs");
	client_view_init(&view);
	view.name = "myapp";
	view.http_url = "https://myapp.tunnel.example.com";
	screen = pb_dashboard_render_client(&view, 100, 40, FALSE);
	lines = g_strsplit(screen, "\n", -1);
	g_assert_cmpstr(lines[3], ==, "Forwarding    localhost:4321");
	g_assert_cmpstr(lines[4], ==, "Name          myapp");
	g_assert_cmpstr(lines[5], ==, "Access URL    tcp://tunnel.example.com:9000");
	g_assert_cmpstr(lines[6], ==, "HTTP URL      https://myapp.tunnel.example.com");
	g_assert_cmpstr(lines[9], ==, "Recent events");
	for (guint width = 0; width < 40; width++) {
		g_autofree char *narrow = pb_dashboard_render_client(&view, width, 24, TRUE);

		assert_fits(narrow, width, 24);
	}
}

static void
test_dashboard_client_widths(void)
{
	const guint widths[] = {0, 1, 5, 14, 20, 40, 80, 200};
	PbClientView view;

	client_view_init(&view);
	for (guint i = 0; i < G_N_ELEMENTS(widths); i++) {
		for (guint color = 0; color < 2; color++) {
			g_autofree char *screen =
			    pb_dashboard_render_client(&view, widths[i], 24, color);

			assert_fits(screen, widths[i], 24);
		}
	}
}

static void
test_dashboard_client_truncated(void)
{
	PbClientView view;
	g_autoptr(GString) url = g_string_new("tcp://");
	g_autofree char *screen = NULL;
	g_auto(GStrv) lines = NULL;

	client_view_init(&view);
	while (url->len < 300)
		g_string_append(url, "very-long-host.");
	view.access_url = url->str;
	screen = pb_dashboard_render_client(&view, 80, 24, FALSE);
	assert_fits(screen, 80, 24);
	lines = g_strsplit(screen, "\n", -1);
	g_assert_true(g_str_has_prefix(lines[4], "Access URL    tcp://very-long-host."));
	g_assert_true(g_str_has_suffix(lines[4], "…"));
	g_assert_cmpint(g_utf8_strlen(lines[4], -1), ==, 80);
}

static void
test_dashboard_client_events(void)
{
	PbClientView view;
	g_autofree char *tall = NULL;
	g_autofree char *short_screen = NULL;
	g_auto(GStrv) lines = NULL;
	const char *two, *five;

	client_view_init(&view);

	/* newest last */
	tall = pb_dashboard_render_client(&view, 120, 50, FALSE);
	two = strstr(tall, "event two");
	five = strstr(tall, "event five");
	g_assert_nonnull(two);
	g_assert_nonnull(five);
	g_assert_true(two < five);

	/* ten fixed lines and two events: the newest two */
	short_screen = pb_dashboard_render_client(&view, 120, 12, FALSE);
	assert_fits(short_screen, 120, 12);
	lines = g_strsplit(short_screen, "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 12);
	g_assert_null(strstr(short_screen, "event three"));
	g_assert_nonnull(strstr(lines[10], "event four"));
	g_assert_nonnull(strstr(lines[11], "event five"));

	/* shorter than the fixed lines: cut, no events */
	for (guint height = 0; height < 11; height++) {
		g_autofree char *screen = pb_dashboard_render_client(&view, 80, height, FALSE);

		assert_fits(screen, 80, height);
		g_assert_null(strstr(screen, "  event"));
	}
}

static void
test_dashboard_client_missing(void)
{
	PbClientView view;
	g_autofree char *screen = NULL;
	g_auto(GStrv) lines = NULL;

	client_view_init(&view);
	view.state = "connecting";
	view.connected_since = 0;
	view.access_url = NULL;
	view.http_url = NULL;
	view.events = NULL;
	view.n_events = 0;
	screen = pb_dashboard_render_client(&view, 80, 24, FALSE);
	lines = g_strsplit(screen, "\n", -1);
	g_assert_cmpstr(lines[1], ==, "Status        connecting");
	g_assert_cmpstr(lines[4], ==, "Access URL    —");
	g_assert_cmpstr(lines[5], ==, "HTTP URL      —");
}

static void
test_dashboard_client_hostile(void)
{
	PbClientView view;
	const PbDashboardEvent events[] = {
	    {NOW, "line\nbreak \033[2J and \xc2\x9b"
		  "31m C1 and invalid \xff UTF-8"},
	};
	g_autofree char *screen = NULL;
	g_auto(GStrv) lines = NULL;

	client_view_init(&view);
	view.events = events;
	view.n_events = G_N_ELEMENTS(events);
	view.server_url = "ws://\033]0;title\007";
	screen = pb_dashboard_render_client(&view, 80, 24, FALSE);
	assert_fits(screen, 80, 24);
	g_assert_null(strchr(screen, '\033'));
	g_assert_null(strchr(screen, '\007'));
	g_assert_null(strstr(screen, "\xc2\x9b"));
	lines = g_strsplit(screen, "\n", -1);
	g_assert_nonnull(strstr(lines[10], "  line break "));

	/* wide characters take two columns: fewer characters fit */
	view.server_url =
	    "ws://例え.テスト/長い長い長い長い長い長い長い長い長い長い長い長い長い長い";
	for (guint width = 10; width < 60; width++) {
		g_autofree char *wide = pb_dashboard_render_client(&view, width, 24, FALSE);

		assert_fits(wide, width, 24);
	}
}

static void
test_dashboard_client_color(void)
{
	const char *states[] = {"online", "connecting", "reconnecting", "offline", "unknown"};
	PbClientView view;

	client_view_init(&view);
	for (guint i = 0; i < G_N_ELEMENTS(states); i++) {
		g_autofree char *plain = NULL;
		g_autofree char *colored = NULL;
		g_autofree char *stripped = NULL;

		view.state = states[i];
		plain = pb_dashboard_render_client(&view, 60, 24, FALSE);
		colored = pb_dashboard_render_client(&view, 60, 24, TRUE);
		stripped = strip_escapes(colored);
		g_assert_null(strchr(plain, '\033'));
		g_assert_nonnull(strchr(colored, '\033'));
		g_assert_cmpstr(stripped, ==, plain);
	}
	view.state = "online";
	{
		g_autofree char *colored = pb_dashboard_render_client(&view, 60, 24, TRUE);

		g_assert_nonnull(strstr(colored, "\033[32monline\033[0m"));
	}
	view.state = "offline";
	{
		g_autofree char *colored = pb_dashboard_render_client(&view, 60, 24, TRUE);

		g_assert_nonnull(strstr(colored, "\033[31moffline\033[0m"));
	}
}

static const PbDashboardService client_services[] = {
    {"myapp", "https://myapp.tunnel.example.com", 1, 3, 1258291, 18841},
    {"db", "tcp://tunnel.example.com:9001", 2, 7, 4096, 2048},
    {"localhost:2222", NULL, 0, 0, 0, 0},
};

static void
test_dashboard_client_services(void)
{
	PbClientView view;
	g_autofree char *screen = NULL;
	g_autofree char *one = NULL;
	g_autofree char *single = NULL;
	g_autofree char *short_screen = NULL;
	g_auto(GStrv) lines = NULL;

	g_test_summary("A client with several services has a Services table, one row per "
		       "service with its URL and counters, below the rows it always had; one "
		       "service keeps the old layout; every width fits, a short screen says "
		       "how many more");
	client_view_init(&view);
	single = pb_dashboard_render_client(&view, 100, 40, FALSE);
	view.services = client_services;
	view.n_services = 1;
	one = pb_dashboard_render_client(&view, 100, 40, FALSE);
	g_assert_cmpstr(one, ==, single);

	view.n_services = G_N_ELEMENTS(client_services);
	screen = pb_dashboard_render_client(&view, 100, 40, FALSE);
	lines = g_strsplit(screen, "\n", -1);
	g_assert_cmpstr(lines[7], ==,
			"Traffic       in 1.2 MiB (3.4 KiB/s)   out 18.4 KiB (0 B/s)");
	g_assert_cmpstr(lines[8], ==, "Services");
	g_assert_cmpstr(
	    lines[9], ==,
	    "Service         URL                               Conns       In       Out");
	g_assert_cmpstr(
	    lines[10], ==,
	    "myapp           https://myapp.tunnel.example.com    1/3  1.2 MiB  18.4 KiB");
	g_assert_cmpstr(
	    lines[11], ==,
	    "db              tcp://tunnel.example.com:9001       2/7  4.0 KiB   2.0 KiB");
	g_assert_cmpstr(
	    lines[12], ==,
	    "localhost:2222  -                                   0/0      0 B       0 B");
	g_assert_cmpstr(lines[13], ==, "Recent events");

	for (guint width = 0; width <= 100; width++) {
		g_autofree char *narrow = pb_dashboard_render_client(&view, width, 40, TRUE);

		assert_fits(narrow, width, 40);
	}
	/* narrow: the URL keeps its room, the counters go */
	{
		g_autofree char *narrow = pb_dashboard_render_client(&view, 40, 40, FALSE);
		g_auto(GStrv) narrow_lines = g_strsplit(narrow, "\n", -1);

		g_assert_cmpstr(narrow_lines[10], ==, "myapp           https://myapp.tunnel.ex…");
	}
	short_screen = pb_dashboard_render_client(&view, 100, 17, FALSE);
	assert_fits(short_screen, 100, 17);
	g_assert_nonnull(strstr(short_screen, "… and 2 more services"));
	g_assert_nonnull(strstr(short_screen, "event five"));
}

static void
test_dashboard_server_services(void)
{
	const PbDashboardClientRow rows[] = {
	    {"203.0.113.5:51234", 9000, NOW - SEC(185), 1, 3, 1258291, 18841, "alpha", FALSE},
	    {"203.0.113.5:51234", 9003, NOW - SEC(185), 2, 5, 4096, 1024, "db", TRUE},
	    {"198.51.100.77:60000", 9001, NOW - SEC(5), 0, 0, 0, 0, "beta", FALSE},
	};
	PbServerView view = {
	    .version = "2.0.0",
	    .now = NOW,
	    .started = NOW - SEC(3600),
	    .listen_url = "ws://0.0.0.0:8080/http-stream",
	    .n_clients = 2,
	    .clients = rows,
	    .n_rows = G_N_ELEMENTS(rows),
	};
	g_autofree char *screen = NULL;
	g_autofree char *short_screen = NULL;
	g_auto(GStrv) lines = NULL;
	guint heading = 0;

	g_test_summary("A client's further services get a row each below its first, with "
		       "their name, port and counters, without repeating the peer; they count "
		       "as no client");
	for (guint width = 0; width <= 120; width++) {
		g_autofree char *colored = pb_dashboard_render_server(&view, width, 24, TRUE);

		assert_fits(colored, width, 24);
	}
	screen = pb_dashboard_render_server(&view, 120, 24, FALSE);
	lines = g_strsplit(screen, "\n", -1);
	g_assert_cmpstr(lines[3], ==, "Clients       2");
	while (lines[heading] != NULL && !g_str_has_prefix(lines[heading], "Peer"))
		heading++;
	g_assert_nonnull(lines[heading]);
	g_assert_cmpstr(lines[heading], ==,
			"Peer                 Name   Port  Conns       In       Out  Connected");
	g_assert_cmpstr(lines[heading + 1], ==,
			"203.0.113.5:51234    alpha  9000    1/3  1.2 MiB  18.4 KiB     3m 05s");
	g_assert_cmpstr(lines[heading + 2], ==,
			"                     db     9003    2/5  4.0 KiB   1.0 KiB");
	g_assert_true(g_str_has_prefix(lines[heading + 3], "198.51.100.77:60000  beta   9001"));
	g_assert_null(strstr(screen, "more client"));

	/* room for one row and the "more" line: the second client is the one not shown */
	view.n_events = 0;
	short_screen = pb_dashboard_render_server(&view, 120, 10, FALSE);
	assert_fits(short_screen, 120, 10);
	g_assert_nonnull(strstr(short_screen, "203.0.113.5:51234  alpha"));
	g_assert_nonnull(strstr(short_screen, "… and 1 more client"));
	g_assert_null(strstr(short_screen, "198.51.100.77"));
}

static void
test_dashboard_server(void)
{
	const PbDashboardClientRow rows[] = {
	    {"203.0.113.5:51234", 9000, NOW - SEC(185), 1, 3, 1258291, 18841, NULL, FALSE},
	    {"[2001:db8::1234:5678:9abc]:40000", 9001, NOW - SEC(7200), 12, 4096,
	     G_GUINT64_CONSTANT(3) << 30, 1023, NULL, FALSE},
	    {"198.51.100.77:60000", 9002, NOW - SEC(5), 0, 0, 0, 0, NULL, FALSE},
	};
	const PbDashboardEvent events[] = {
	    {NOW - SEC(5), "client 198.51.100.77:60000 connected: port 9002"},
	};
	PbServerView view = {
	    .version = "2.0.0",
	    .now = NOW,
	    .started = NOW - SEC(3600),
	    .listen_url = "ws://0.0.0.0:8080/http-stream",
	    .n_clients = 0,
	    .events = events,
	    .n_events = G_N_ELEMENTS(events),
	};
	const guint widths[] = {10, 30, 60, 120};

	for (guint n = 0; n <= G_N_ELEMENTS(rows); n += G_N_ELEMENTS(rows)) {
		view.n_clients = n;
		view.clients = n > 0 ? rows : NULL;
		view.n_rows = n;
		for (guint i = 0; i < G_N_ELEMENTS(widths); i++) {
			for (guint color = 0; color < 2; color++) {
				g_autofree char *screen =
				    pb_dashboard_render_server(&view, widths[i], 24, color);
				g_autofree char *plain =
				    pb_dashboard_render_server(&view, widths[i], 24, FALSE);
				g_autofree char *stripped = strip_escapes(screen);

				assert_fits(screen, widths[i], 24);
				g_assert_cmpstr(stripped, ==, plain);
				g_assert_true(g_str_has_prefix(plain, "piggyback server 2.0.0 "
								      "(Ctrl+C to quit)") ||
					      widths[i] < 40);
			}
		}
	}

	/* at 120 columns, everything */
	{
		g_autofree char *screen = pb_dashboard_render_server(&view, 120, 24, FALSE);

		g_assert_nonnull(strstr(screen, "Listening     ws://0.0.0.0:8080/http-stream"));
		g_assert_nonnull(strstr(screen, "Uptime        1h 00m"));
		g_assert_nonnull(strstr(screen, "Clients       3"));
		g_assert_nonnull(strstr(screen, "[2001:db8::1234:5678:9abc]:40000"));
		g_assert_nonnull(strstr(screen, "12/4096"));
		g_assert_nonnull(strstr(screen, "3.0 GiB"));
		g_assert_nonnull(strstr(screen, "2h 00m"));
		g_assert_nonnull(strstr(screen, "port 9002"));
	}
	/* at 60, the port and traffic still, the peer maybe cut */
	{
		g_autofree char *screen = pb_dashboard_render_server(&view, 60, 24, FALSE);

		g_assert_nonnull(strstr(screen, "9001"));
		g_assert_nonnull(strstr(screen, "3.0 GiB"));
		g_assert_nonnull(strstr(screen, "203.0.113.5:51234"));
	}
	/* too short for all rows: "… and N more", and the newest event still */
	{
		g_autofree char *screen = pb_dashboard_render_server(&view, 120, 10, FALSE);

		assert_fits(screen, 120, 10);
		g_assert_nonnull(strstr(screen, "more client"));
		g_assert_nonnull(strstr(screen, "port 9002"));
	}
	/* no names (a server without --domain): no Name column */
	{
		g_autofree char *screen = pb_dashboard_render_server(&view, 120, 24, FALSE);

		g_assert_null(strstr(screen, "Name"));
	}
	/* no clients */
	{
		g_autofree char *screen = NULL;

		view.n_clients = 0;
		view.clients = NULL;
		view.n_rows = 0;
		screen = pb_dashboard_render_server(&view, 60, 24, FALSE);
		g_assert_nonnull(strstr(screen, "no clients connected"));
	}
}

static void
test_dashboard_server_names(void)
{
	const PbDashboardClientRow rows[] = {
	    {"203.0.113.5:51234", 9000, NOW - SEC(185), 1, 3, 1258291, 18841, "alpha", FALSE},
	    {"198.51.100.77:60000", 9001, NOW - SEC(5), 0, 0, 0, 0, NULL, FALSE},
	    {"198.51.100.78:60001", 9002, NOW - SEC(5), 0, 0, 0, 0,
	     "a-name-of-sixty-three-characters-which-is-the-longest-there-is", FALSE},
	    /* a names-only server (--tunnel-port off): no port */
	    {"198.51.100.79:60002", 0, NOW - SEC(5), 0, 0, 0, 0, "beta", FALSE},
	};
	PbServerView view = {
	    .version = "2.0.0",
	    .now = NOW,
	    .started = NOW - SEC(3600),
	    .listen_url = "ws://0.0.0.0:8080/http-stream",
	    .n_clients = G_N_ELEMENTS(rows),
	    .clients = rows,
	    .n_rows = G_N_ELEMENTS(rows),
	};
	g_autofree char *screen = NULL;
	g_auto(GStrv) lines = NULL;
	guint heading = 0;

	g_test_summary("With named tunnels the client table has a Name column after the peer: "
		       "\"-\" for a client without one, long names cut, every width fits");
	for (guint width = 0; width <= 120; width++) {
		g_autofree char *colored = pb_dashboard_render_server(&view, width, 24, TRUE);

		assert_fits(colored, width, 24);
	}
	screen = pb_dashboard_render_server(&view, 120, 24, FALSE);
	lines = g_strsplit(screen, "\n", -1);
	while (lines[heading] != NULL && !g_str_has_prefix(lines[heading], "Peer"))
		heading++;
	g_assert_nonnull(lines[heading]);
	g_assert_true(g_str_has_prefix(lines[heading], "Peer                 Name   "));
	g_assert_true(g_str_has_prefix(lines[heading + 1], "203.0.113.5:51234    alpha  "));
	g_assert_true(g_str_has_prefix(lines[heading + 2], "198.51.100.77:60000  -      "));
	/* cut to 20 columns, the last an ellipsis */
	g_assert_nonnull(strstr(lines[heading + 3], "  a-name-of-sixty-thr…  "));
	g_assert_null(strstr(screen, "longest"));
	{
		g_auto(GStrv) cells = g_strsplit_set(lines[heading + 4], " ", -1);
		g_autoptr(GPtrArray) words = g_ptr_array_new();

		for (guint i = 0; cells[i] != NULL; i++)
			if (*cells[i] != '\0')
				g_ptr_array_add(words, cells[i]);
		g_assert_cmpuint(words->len, >=, 3);
		g_assert_cmpstr(words->pdata[1], ==, "beta");
		g_assert_cmpstr(words->pdata[2], ==, "-");
	}
	/* narrow: the port goes before the name */
	{
		g_autofree char *narrow = pb_dashboard_render_server(&view, 45, 24, FALSE);

		g_assert_nonnull(strstr(narrow, "alpha"));
		g_assert_null(strstr(narrow, "9000"));
	}
}

/* The console on a pseudo-terminal */

typedef struct {
	guint n_calls;
	guint width;
	guint height;
	gboolean color;
} RenderState;

static char *
render_cb(guint width, guint height, gboolean color, gpointer user_data)
{
	RenderState *state = user_data;

	state->n_calls++;
	state->width = width;
	state->height = height;
	state->color = color;
	return g_strdup_printf("hello %ux%u\nsecond line", width, height);
}

static void
pty_open(int *master, int *slave)
{
	const char *name;

	*master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0) {
		*slave = -1;
		return;
	}
	g_assert_cmpint(grantpt(*master), ==, 0);
	g_assert_cmpint(unlockpt(*master), ==, 0);
	name = ptsname(*master);
	g_assert_nonnull(name);
	*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	g_assert_cmpint(*slave, >=, 0);
	g_assert_cmpint(fcntl(*master, F_SETFL, O_NONBLOCK), ==, 0);
}

static void
pty_set_size(int master, guint16 cols, guint16 rows)
{
	struct winsize size = {.ws_row = rows, .ws_col = cols};

	g_assert_cmpint(ioctl(master, TIOCSWINSZ, &size), ==, 0);
}

/* Appends what the terminal was sent so far. */
static void
pty_drain(int master, GString *out)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(master, buf, sizeof buf)) > 0)
		g_string_append_len(out, buf, n);
}

static gboolean
pty_has(int master, GString *out, const char *needle)
{
	pty_drain(master, out);
	return strstr(out->str, needle) != NULL;
}

static void
test_console_pty(void)
{
	int master, slave;
	RenderState state = {0};
	g_autoptr(PbConsole) console = NULL;
	g_autoptr(GString) out = g_string_new(NULL);

	pty_open(&master, &slave);
	if (master < 0) {
		g_test_skip("no pseudo-terminals here");
		return;
	}
	g_setenv("TERM", "xterm-256color", TRUE);
	g_unsetenv("NO_COLOR");
	pty_set_size(master, 50, 10);
	console = pb_console_new(slave);
	g_assert_true(pb_console_is_interactive(console));
	g_assert_true(pb_console_get_color(console));
	pb_console_set_render_func(console, render_cb, &state, NULL);
	pb_console_start(console);
	pb_test_wait_until(pty_has(master, out, "hello 50x10"), 2);
	g_assert_nonnull(strstr(out->str, "\033[?1049h"));
	g_assert_nonnull(strstr(out->str, "\033[?25l"));
	g_assert_nonnull(strstr(out->str, "\033[H"));
	g_assert_nonnull(strstr(out->str, "hello 50x10\033[K"));
	g_assert_nonnull(strstr(out->str, "second line\033[K\033[J"));
	g_assert_cmpuint(state.width, ==, 50);
	g_assert_cmpuint(state.height, ==, 10);
	g_assert_true(state.color);

	/* resized: drawn again at once, at the new size */
	g_string_truncate(out, 0);
	pty_set_size(master, 100, 20);
	g_assert_cmpint(kill(getpid(), SIGWINCH), ==, 0);
	pb_test_wait_until(pty_has(master, out, "hello 100x20"), 2);
	g_assert_cmpuint(state.width, ==, 100);
	g_assert_cmpuint(state.height, ==, 20);

	/* invalidations coalesce: a burst is one frame */
	pb_test_wait_until(state.n_calls >= 3, 2); /* the tick, and 250 ms since the last frame */
	{
		guint n_calls = state.n_calls;

		for (guint i = 0; i < 100; i++)
			pb_console_invalidate(console);
		pb_test_wait_until(state.n_calls > n_calls, 2);
		g_assert_cmpuint(state.n_calls, ==, n_calls + 1);
	}

	g_string_truncate(out, 0);
	pb_console_stop(console);
	pb_test_wait_until(pty_has(master, out, "\033[?1049l"), 2);
	g_assert_nonnull(strstr(out->str, "\033[?25h"));

	/* stopped: no more frames */
	{
		guint n_calls = state.n_calls;

		pb_console_invalidate(console);
		g_usleep(300 * 1000);
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_assert_cmpuint(state.n_calls, ==, n_calls);
	}

	g_clear_object(&console);
	close(slave);
	close(master);
}

/* Kept reachable, so LeakSanitizer in the child does not report it. */
static PbConsole *crash_console = NULL;

/* A child that starts a console on the pty then ends by @how, without stopping it. */
static void
test_console_restored_by(const char *how)
{
	int master, slave;
	pid_t pid;
	int status = 0;
	g_autoptr(GString) out = g_string_new(NULL);

	pty_open(&master, &slave);
	if (master < 0) {
		g_test_skip("no pseudo-terminals here");
		return;
	}
	g_setenv("TERM", "xterm-256color", TRUE);
	fflush(NULL); /* or the child writes the TAP output again */
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		/* no core file for an intended crash */
		struct rlimit no_core = {0, 0};

		setrlimit(RLIMIT_CORE, &no_core);
		crash_console = pb_console_new(slave);
		pb_console_start(crash_console);
		if (g_strcmp0(how, "abort") == 0)
			abort();
		exit(0);
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	if (g_strcmp0(how, "abort") == 0) {
		g_assert_true(WIFSIGNALED(status));
		g_assert_cmpint(WTERMSIG(status), ==, SIGABRT);
	} else {
		g_assert_true(WIFEXITED(status));
		g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	}
	pty_drain(master, out);
	g_assert_nonnull(strstr(out->str, "\033[?1049h"));
	g_assert_nonnull(strstr(out->str, "\033[?25h\033[?1049l"));
	close(slave);
	close(master);
}

static void
test_console_restored_on_crash(void)
{
	test_console_restored_by("abort");
}

static void
test_console_restored_on_exit(void)
{
	test_console_restored_by("exit");
}

static void
test_console_pipe(void)
{
	int fds[2];
	RenderState state = {0};
	g_autoptr(PbConsole) console = NULL;
	char buf[64];

	g_assert_cmpint(pipe(fds), ==, 0);
	g_setenv("TERM", "xterm-256color", TRUE);
	console = pb_console_new(fds[1]);
	g_assert_false(pb_console_is_interactive(console));
	g_assert_false(pb_console_get_color(console));

	/* nothing is drawn to a pipe */
	pb_console_set_render_func(console, render_cb, &state, NULL);
	pb_console_start(console);
	pb_console_invalidate(console);
	pb_console_stop(console);
	g_clear_object(&console);
	close(fds[1]);
	g_assert_cmpint(read(fds[0], buf, sizeof buf), ==, 0);
	g_assert_cmpuint(state.n_calls, ==, 0);
	close(fds[0]);
}

static void
test_console_environment(void)
{
	int master, slave;

	pty_open(&master, &slave);
	if (master < 0) {
		g_test_skip("no pseudo-terminals here");
		return;
	}
	g_setenv("TERM", "dumb", TRUE);
	{
		g_autoptr(PbConsole) console = pb_console_new(slave);

		g_assert_false(pb_console_is_interactive(console));
		g_assert_false(pb_console_get_color(console));
	}
	g_setenv("TERM", "xterm", TRUE);
	g_setenv("NO_COLOR", "1", TRUE);
	{
		g_autoptr(PbConsole) console = pb_console_new(slave);

		g_assert_true(pb_console_is_interactive(console));
		g_assert_false(pb_console_get_color(console));
	}
	g_setenv("NO_COLOR", "", TRUE);
	{
		g_autoptr(PbConsole) console = pb_console_new(slave);

		g_assert_true(pb_console_get_color(console));
	}
	g_unsetenv("NO_COLOR");
	close(slave);
	close(master);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* the forks first, while the process has one thread */
	g_test_add_func("/console/restored-on-crash", test_console_restored_on_crash);
	g_test_add_func("/console/restored-on-exit", test_console_restored_on_exit);
	g_test_add_func("/dashboard/format-bytes", test_dashboard_format_bytes);
	g_test_add_func("/dashboard/format-rate", test_dashboard_format_rate);
	g_test_add_func("/dashboard/format-duration", test_dashboard_format_duration);
	g_test_add_func("/dashboard/client-layout", test_dashboard_client_layout);
	g_test_add_func("/dashboard/client-name", test_dashboard_client_name);
	g_test_add_func("/dashboard/client-widths", test_dashboard_client_widths);
	g_test_add_func("/dashboard/client-truncated", test_dashboard_client_truncated);
	g_test_add_func("/dashboard/client-events", test_dashboard_client_events);
	g_test_add_func("/dashboard/client-missing", test_dashboard_client_missing);
	g_test_add_func("/dashboard/client-hostile", test_dashboard_client_hostile);
	g_test_add_func("/dashboard/client-color", test_dashboard_client_color);
	g_test_add_func("/dashboard/server", test_dashboard_server);
	g_test_add_func("/dashboard/server-names", test_dashboard_server_names);
	g_test_add_func("/dashboard/client-services", test_dashboard_client_services);
	g_test_add_func("/dashboard/server-services", test_dashboard_server_services);
	g_test_add_func("/console/pty", test_console_pty);
	g_test_add_func("/console/pipe", test_console_pipe);
	g_test_add_func("/console/environment", test_console_environment);
	return g_test_run();
}
