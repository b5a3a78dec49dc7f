/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-dashboard.h"

#include <glib/gi18n.h>
#include <string.h>

/*
 * The screen is built line by line on a canvas that knows the width: every piece of text is
 * cut to what is left of the line, ending in "…" when something was cut, so no line ever
 * wraps. Colour is SGR escapes around a piece, added only when the piece shows at least one
 * character, so stripping the escapes gives exactly the colourless screen.
 *
 * Values come from the network (peer addresses, URLs, error messages): invalid UTF-8 is
 * replaced and control characters become spaces, so nothing can move the cursor or change
 * the terminal's state. A column is one character, except East Asian wide characters, which
 * take two; so a line never has more characters than the width.
 */

#define PB_DASHBOARD_LABEL_WIDTH 14 /* the label column of the client view */
#define PB_DASHBOARD_COLUMN_GAP	 2  /* spaces between the server table's columns */
#define PB_DASHBOARD_PEER_MIN	 21 /* "255.255.255.255:65535": columns go before the peer is cut */
#define PB_DASHBOARD_NAME_MAX	 20 /* names have up to 63 characters: longer ones are cut */

#define PB_SGR_RESET  "\033[0m"
#define PB_SGR_BOLD   "\033[1m"
#define PB_SGR_DIM    "\033[2m"
#define PB_SGR_RED    "\033[31m"
#define PB_SGR_GREEN  "\033[32m"
#define PB_SGR_YELLOW "\033[33m"

#define PB_ELLIPSIS "…"

typedef struct {
	GPtrArray *lines; /* (owned) (element-type utf8) finished lines */
	GString *line;	  /* (owned) the current line */
	guint width;
	guint height;
	guint col; /* columns used on the current line */
	gboolean color;
} PbCanvas;

char *
pb_format_bytes(guint64 n)
{
	static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double value = (double)n;
	guint i = 0;

	if (n < 1024)
		return g_strdup_printf("%u B", (guint)n);
	value /= 1024.0;
	/* 1023.97 KiB would print as "1024.0 KiB": that is 1.0 MiB */
	while (value >= 1023.95 && i + 1 < G_N_ELEMENTS(units)) {
		value /= 1024.0;
		i++;
	}
	return g_strdup_printf("%.1f %s", value, units[i]);
}

char *
pb_format_rate(double bytes_per_s)
{
	g_autofree char *bytes = NULL;

	/* a rate is never negative; NaN (0/0 over an empty window) shows as nothing moving */
	if (!(bytes_per_s > 0))
		bytes_per_s = 0;
	bytes_per_s = MIN(bytes_per_s, (double)G_MAXUINT64 / 2);
	bytes = pb_format_bytes((guint64)(bytes_per_s + 0.5));
	/* TRANSLATORS: a transfer rate; %s is an amount of data, "1.2 MiB" */
	return g_strdup_printf(_("%s/s"), bytes);
}

char *
pb_format_duration(gint64 seconds)
{
	int days, hours, minutes, secs;

	/* clocks step backwards; and cap so the days fit an int */
	seconds = CLAMP(seconds, 0, (gint64)G_MAXINT * 86400);
	days = (int)(seconds / 86400);
	hours = (int)(seconds / 3600 % 24);
	minutes = (int)(seconds / 60 % 60);
	secs = (int)(seconds % 60);
	if (seconds < 60)
		/* TRANSLATORS: a duration: seconds */
		return g_strdup_printf(_("%ds"), secs);
	if (seconds < 3600)
		/* TRANSLATORS: a duration: minutes and seconds */
		return g_strdup_printf(_("%dm %02ds"), minutes, secs);
	if (seconds < 86400)
		/* TRANSLATORS: a duration: hours and minutes */
		return g_strdup_printf(_("%dh %02dm"), hours, minutes);
	/* TRANSLATORS: a duration: days and hours */
	return g_strdup_printf(_("%dd %02dh"), days, hours);
}

/* Text safe to show: valid UTF-8 without control characters. */
static char *
pb_dashboard_sanitize(const char *text)
{
	g_autofree char *valid = g_utf8_make_valid(text != NULL ? text : "", -1);
	GString *out = g_string_sized_new(strlen(valid));

	for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		/* C0, DEL and C1: C1 has its own CSI (U+009B) */
		if (g_unichar_iscntrl(c))
			g_string_append_c(out, ' ');
		else
			g_string_append_unichar(out, c);
	}
	return g_string_free(out, FALSE);
}

static guint
pb_dashboard_char_width(gunichar c)
{
	return g_unichar_iswide(c) ? 2 : 1;
}

static guint
pb_dashboard_text_width(const char *text)
{
	guint width = 0;

	for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p))
		width += pb_dashboard_char_width(g_utf8_get_char(p));
	return width;
}

/* Appends @text (sanitized) to @out, at most @max columns, cut with "…"; returns the columns
 * used. */
static guint
pb_dashboard_fit(GString *out, const char *text, guint max)
{
	guint used = 0;

	if (pb_dashboard_text_width(text) <= max) {
		g_string_append(out, text);
		return pb_dashboard_text_width(text);
	}
	if (max == 0)
		return 0;
	for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		guint w = pb_dashboard_char_width(c);

		if (used + w > max - 1)
			break;
		g_string_append_unichar(out, c);
		used += w;
	}
	g_string_append(out, PB_ELLIPSIS);
	return used + 1;
}

static void
pb_canvas_init(PbCanvas *canvas, guint width, guint height, gboolean color)
{
	canvas->lines = g_ptr_array_new_with_free_func(g_free);
	canvas->line = g_string_new(NULL);
	canvas->width = width;
	canvas->height = height;
	canvas->col = 0;
	canvas->color = color;
}

/* Adds @text to the current line in the colour @sgr (nullable), cut to the width. */
static void
pb_canvas_add(PbCanvas *canvas, const char *sgr, const char *text)
{
	g_autofree char *safe = pb_dashboard_sanitize(text);
	g_autoptr(GString) piece = g_string_new(NULL);

	canvas->col += pb_dashboard_fit(piece, safe, canvas->width - canvas->col);
	if (piece->len == 0)
		return;
	if (canvas->color && sgr != NULL)
		g_string_append(canvas->line, sgr);
	g_string_append_len(canvas->line, piece->str, piece->len);
	if (canvas->color && sgr != NULL)
		g_string_append(canvas->line, PB_SGR_RESET);
}

/* Spaces up to @column, within the width. */
static void
pb_canvas_pad(PbCanvas *canvas, guint column)
{
	for (column = MIN(column, canvas->width); canvas->col < column; canvas->col++)
		g_string_append_c(canvas->line, ' ');
}

static void
pb_canvas_newline(PbCanvas *canvas)
{
	g_ptr_array_add(canvas->lines, g_string_free(canvas->line, FALSE));
	canvas->line = g_string_new(NULL);
	canvas->col = 0;
}

/* Lines the screen still has room for. */
static guint
pb_canvas_lines_left(PbCanvas *canvas)
{
	return canvas->height > canvas->lines->len ? canvas->height - canvas->lines->len : 0;
}

/* The screen, at most height lines, lines separated by "\n"; frees the canvas. */
static char *
pb_canvas_finish(PbCanvas *canvas)
{
	g_autoptr(GPtrArray) lines = g_steal_pointer(&canvas->lines);

	if (canvas->line->len > 0)
		g_ptr_array_add(lines, g_string_free(canvas->line, FALSE));
	else
		g_string_free(canvas->line, TRUE);
	canvas->line = NULL;
	if (lines->len > canvas->height)
		g_ptr_array_set_size(lines, canvas->height);
	g_ptr_array_add(lines, NULL);
	return g_strjoinv("\n", (char **)lines->pdata);
}

/* "Label         value": the label dim and cut to leave at least one space. */
static void
pb_canvas_label(PbCanvas *canvas, const char *label)
{
	g_autoptr(GString) cut = g_string_new(NULL);

	pb_dashboard_fit(cut, label, PB_DASHBOARD_LABEL_WIDTH - 1);
	pb_canvas_add(canvas, PB_SGR_DIM, cut->str);
	pb_canvas_pad(canvas, PB_DASHBOARD_LABEL_WIDTH);
}

/* A label row; a NULL value shows as "—". */
static void
pb_canvas_row(PbCanvas *canvas, const char *label, const char *value)
{
	pb_canvas_label(canvas, label);
	if (value != NULL)
		pb_canvas_add(canvas, NULL, value);
	else
		pb_canvas_add(canvas, PB_SGR_DIM, "—");
	pb_canvas_newline(canvas);
}

static void
pb_canvas_header(PbCanvas *canvas, const char *text)
{
	pb_canvas_add(canvas, PB_SGR_BOLD, text);
	pb_canvas_newline(canvas);
}

/* "Recent events", a rule, then the newest events that fit, oldest first. */
static void
pb_canvas_events(PbCanvas *canvas, const PbDashboardEvent *events, guint n_events)
{
	g_autoptr(GString) rule = g_string_new(NULL);
	guint n_shown;

	pb_canvas_add(canvas, PB_SGR_BOLD, _("Recent events"));
	pb_canvas_newline(canvas);
	for (guint i = 0; i < canvas->width; i++)
		g_string_append(rule, "─");
	pb_canvas_add(canvas, PB_SGR_DIM, rule->str);
	pb_canvas_newline(canvas);
	if (n_events == 0) {
		pb_canvas_add(canvas, PB_SGR_DIM, _("none yet"));
		pb_canvas_newline(canvas);
		return;
	}
	n_shown = MIN(n_events, pb_canvas_lines_left(canvas));
	for (guint i = n_events - n_shown; i < n_events; i++) {
		g_autoptr(GDateTime) dt =
		    g_date_time_new_from_unix_local(events[i].time / G_USEC_PER_SEC);
		g_autofree char *time = dt != NULL ? g_date_time_format(dt, "%H:%M:%S") : NULL;

		pb_canvas_add(canvas, PB_SGR_DIM, time != NULL ? time : "--:--:--");
		pb_canvas_add(canvas, NULL, "  ");
		pb_canvas_add(canvas, NULL, events[i].message);
		pb_canvas_newline(canvas);
	}
}

/* The state as shown, and its colour. */
static const char *
pb_dashboard_state(const char *state, const char **sgr)
{
	*sgr = NULL;
	if (g_strcmp0(state, "online") == 0) {
		*sgr = PB_SGR_GREEN;
		/* TRANSLATORS: the client's state */
		return _("online");
	}
	if (g_strcmp0(state, "connecting") == 0) {
		*sgr = PB_SGR_YELLOW;
		/* TRANSLATORS: the client's state */
		return _("connecting");
	}
	if (g_strcmp0(state, "reconnecting") == 0) {
		*sgr = PB_SGR_YELLOW;
		/* TRANSLATORS: the client's state */
		return _("reconnecting");
	}
	if (g_strcmp0(state, "offline") == 0) {
		*sgr = PB_SGR_RED;
		/* TRANSLATORS: the client's state */
		return _("offline");
	}
	return state != NULL ? state : "";
}

static void
pb_canvas_services(PbCanvas *canvas, const PbClientView *view);

/**
 * pb_dashboard_render_client:
 * @view: the client's state
 * @width: columns of the screen
 * @height: lines of the screen
 * @color: whether to add SGR colour escapes
 *
 * Returns: the whole screen, lines separated by "\n", none wider than @width columns, at
 * most @height lines.
 */
char *
pb_dashboard_render_client(const PbClientView *view, guint width, guint height, gboolean color)
{
	PbCanvas canvas;
	const char *state_sgr = NULL;
	const char *state;
	g_autofree char *header = NULL;
	g_autofree char *total = NULL;
	g_autofree char *active = NULL;
	g_autofree char *connections = NULL;
	g_autofree char *in = NULL;
	g_autofree char *in_rate = NULL;
	g_autofree char *out = NULL;
	g_autofree char *out_rate = NULL;
	g_autofree char *traffic = NULL;

	g_return_val_if_fail(view != NULL, NULL);

	pb_canvas_init(&canvas, width, height, color);
	/* TRANSLATORS: the dashboard's first line; %s is the version */
	header = g_strdup_printf(_("piggyback client %s (Ctrl+C to quit)"),
				 view->version != NULL ? view->version : "");
	pb_canvas_header(&canvas, header);

	state = pb_dashboard_state(view->state, &state_sgr);
	/* TRANSLATORS: the dashboard's labels are cut to 13 characters */
	pb_canvas_label(&canvas, _("Status"));
	pb_canvas_add(&canvas, state_sgr, state);
	if (g_strcmp0(view->state, "online") == 0 && view->connected_since > 0) {
		g_autofree char *uptime =
		    pb_format_duration((view->now - view->connected_since) / G_USEC_PER_SEC);
		g_autofree char *text = NULL;

		/* TRANSLATORS: after the state "online"; %s is a duration, "3m 05s" */
		text = g_strdup_printf(_(" (uptime %s)"), uptime);
		pb_canvas_add(&canvas, NULL, text);
	}
	pb_canvas_newline(&canvas);

	pb_canvas_row(&canvas, _("Server"), view->server_url);
	pb_canvas_row(&canvas, _("Forwarding"), view->local_address);
	if (view->name != NULL)
		/* TRANSLATORS: the tunnel's name, "myapp" in https://myapp.tunnel.example.com */
		pb_canvas_row(&canvas, _("Name"), view->name);
	pb_canvas_row(&canvas, _("Access URL"), view->access_url);
	pb_canvas_row(&canvas, _("HTTP URL"), view->http_url);

	total = g_strdup_printf("%" G_GUINT64_FORMAT, view->connections_total);
	active = g_strdup_printf("%u", view->connections_active);
	/* TRANSLATORS: tunneled connections since start, and open now */
	connections = g_strdup_printf(_("total %s   active %s"), total, active);
	pb_canvas_row(&canvas, _("Connections"), connections);

	in = pb_format_bytes(view->bytes_in);
	in_rate = pb_format_rate(view->rate_in);
	out = pb_format_bytes(view->bytes_out);
	out_rate = pb_format_rate(view->rate_out);
	/* TRANSLATORS: data received and sent, each with its current rate */
	traffic = g_strdup_printf(_("in %s (%s)   out %s (%s)"), in, in_rate, out, out_rate);
	pb_canvas_row(&canvas, _("Traffic"), traffic);

	/* one service: the rows above say it all, as they always did */
	if (view->n_services > 1 && view->services != NULL)
		pb_canvas_services(&canvas, view);
	pb_canvas_events(&canvas, view->events, view->n_events);
	return pb_canvas_finish(&canvas);
}

/* The server's table */
typedef enum {
	PB_COLUMN_PEER,
	PB_COLUMN_NAME,
	PB_COLUMN_PORT,
	PB_COLUMN_CONNECTIONS,
	PB_COLUMN_IN,
	PB_COLUMN_OUT,
	PB_COLUMN_SINCE,
	PB_COLUMN_LAST
} PbColumn;

/* Dropped first when the screen is narrow: the least useful at a glance. The name goes
 * last: a named tunnel is known by its name more than by its port. */
static const PbColumn pb_column_drop_order[] = {
    PB_COLUMN_SINCE, PB_COLUMN_CONNECTIONS, PB_COLUMN_OUT,
    PB_COLUMN_IN,    PB_COLUMN_PORT,	    PB_COLUMN_NAME,
};

/* Appends @text in a cell @width columns wide, cut or padded; numbers right-aligned. */
static void
pb_dashboard_cell(GString *out, const char *text, guint width, gboolean right)
{
	g_autoptr(GString) cell = g_string_new(NULL);
	guint used = pb_dashboard_fit(cell, text, width);

	if (!right)
		g_string_append(out, cell->str);
	for (; used < width; used++)
		g_string_append_c(out, ' ');
	if (right)
		g_string_append(out, cell->str);
}

/* One line of a table of @n_columns: the first @n_left ones left-aligned, text; the others
 * right-aligned, numbers. */
static void
pb_dashboard_line(PbCanvas *canvas, const char *sgr, char **cells, const guint *widths,
		  const gboolean *shown, guint n_columns, guint n_left)
{
	g_autoptr(GString) line = g_string_new(NULL);
	gboolean first = TRUE;

	for (guint i = 0; i < n_columns; i++) {
		if (!shown[i])
			continue;
		if (!first)
			g_string_append(line, "  ");
		first = FALSE;
		pb_dashboard_cell(line, cells[i], widths[i], i >= n_left);
	}
	/* a left-aligned last column (the name, on a narrow screen) needs no padding */
	while (line->len > 0 && line->str[line->len - 1] == ' ')
		g_string_truncate(line, line->len - 1);
	pb_canvas_add(canvas, sgr, line->str);
	pb_canvas_newline(canvas);
}

static void
pb_dashboard_table(PbCanvas *canvas, const PbServerView *view, guint n_rows, guint n_hidden)
{
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
	char *titles[PB_COLUMN_LAST] = {
	    /* TRANSLATORS: table heading: the client's address */
	    _("Peer"),
	    /* TRANSLATORS: table heading: the client's tunnel name, "myapp" */
	    _("Name"),
	    /* TRANSLATORS: table heading: the client's public tunnel port */
	    _("Port"),
	    /* TRANSLATORS: table heading: tunneled connections open now / since it came */
	    _("Conns"),
	    /* TRANSLATORS: table heading: data received */
	    _("In"),
	    /* TRANSLATORS: table heading: data sent */
	    _("Out"),
	    /* TRANSLATORS: table heading: how long the client has been connected */
	    _("Connected"),
	};
	guint widths[PB_COLUMN_LAST];
	gboolean shown[PB_COLUMN_LAST];
	gboolean named = FALSE;
	guint total;

	for (guint i = 0; i < n_rows; i++) {
		const PbDashboardClientRow *row = &view->clients[i];
		char **cells = g_new0(char *, PB_COLUMN_LAST + 1);

		/* a further service of the client above: its peer and time are that row's */
		cells[PB_COLUMN_PEER] = pb_dashboard_sanitize(row->continued ? "" : row->peer);
		/* "-": a PiggyBack 1.1 client gets no name from a server with --domain */
		cells[PB_COLUMN_NAME] = pb_dashboard_sanitize(row->name != NULL ? row->name : "-");
		named = named || row->name != NULL;
		/* 0: a names-only server (--tunnel-port off) gives no port */
		cells[PB_COLUMN_PORT] = row->tunnel_port != 0
					    ? g_strdup_printf("%u", (guint)row->tunnel_port)
					    : g_strdup("-");
		cells[PB_COLUMN_CONNECTIONS] = g_strdup_printf(
		    "%u/%" G_GUINT64_FORMAT, row->connections_active, row->connections_total);
		cells[PB_COLUMN_IN] = pb_format_bytes(row->bytes_in);
		cells[PB_COLUMN_OUT] = pb_format_bytes(row->bytes_out);
		cells[PB_COLUMN_SINCE] =
		    row->continued
			? g_strdup("")
			: pb_format_duration((view->now - row->connected_since) / G_USEC_PER_SEC);
		g_ptr_array_add(rows, cells);
	}

	/* each column as wide as its widest cell */
	for (guint i = 0; i < PB_COLUMN_LAST; i++) {
		widths[i] = pb_dashboard_text_width(titles[i]);
		shown[i] = TRUE;
		for (guint j = 0; j < rows->len; j++) {
			char **cells = g_ptr_array_index(rows, j);

			widths[i] = MAX(widths[i], pb_dashboard_text_width(cells[i]));
		}
	}
	/* a server without --domain has no names: no column for them */
	shown[PB_COLUMN_NAME] = named;
	widths[PB_COLUMN_NAME] = MIN(widths[PB_COLUMN_NAME], PB_DASHBOARD_NAME_MAX);

	/* drop columns until the rest fit with the peer cut to its minimum */
	for (guint d = 0;; d++) {
		guint peer_min = MIN(widths[PB_COLUMN_PEER], PB_DASHBOARD_PEER_MIN);

		total = peer_min;
		for (guint i = PB_COLUMN_PEER + 1; i < PB_COLUMN_LAST; i++) {
			if (shown[i])
				total += PB_DASHBOARD_COLUMN_GAP + widths[i];
		}
		if (total <= canvas->width || d == G_N_ELEMENTS(pb_column_drop_order))
			break;
		shown[pb_column_drop_order[d]] = FALSE;
	}
	/* the peer gets what is left, up to its natural width */
	total -= MIN(widths[PB_COLUMN_PEER], PB_DASHBOARD_PEER_MIN);
	if (canvas->width > total)
		widths[PB_COLUMN_PEER] = MIN(widths[PB_COLUMN_PEER], canvas->width - total);
	else
		widths[PB_COLUMN_PEER] = MIN(widths[PB_COLUMN_PEER], PB_DASHBOARD_PEER_MIN);

	pb_dashboard_line(canvas, PB_SGR_DIM, titles, widths, shown, PB_COLUMN_LAST,
			  PB_COLUMN_NAME + 1);
	for (guint j = 0; j < rows->len; j++)
		pb_dashboard_line(canvas, NULL, g_ptr_array_index(rows, j), widths, shown,
				  PB_COLUMN_LAST, PB_COLUMN_NAME + 1);
	if (n_hidden > 0) {
		g_autofree char *more = NULL;

		/* TRANSLATORS: below the table of clients when the screen is too short */
		more = g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "… and %u more client",
						   "… and %u more clients", n_hidden),
				       n_hidden);
		pb_canvas_add(canvas, PB_SGR_DIM, more);
		pb_canvas_newline(canvas);
	}
}

/* The client's services table: what each one is, where the public reaches it, and what it
 * carried. The URL takes what the other columns leave; columns go when it would get less
 * than PB_DASHBOARD_URL_MIN. */
enum {
	PB_SERVICE_LABEL,
	PB_SERVICE_URL,
	PB_SERVICE_CONNECTIONS,
	PB_SERVICE_IN,
	PB_SERVICE_OUT,
	PB_SERVICE_LAST
};
#define PB_DASHBOARD_URL_MIN 20

static void
pb_canvas_services(PbCanvas *canvas, const PbClientView *view)
{
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
	char *titles[PB_SERVICE_LAST] = {
	    /* TRANSLATORS: table heading: a service's name, or its local host:port */
	    _("Service"),
	    /* TRANSLATORS: table heading: where the public reaches a service */
	    _("URL"),
	    /* TRANSLATORS: table heading: tunneled connections open now / since it came */
	    _("Conns"),
	    /* TRANSLATORS: table heading: data received */
	    _("In"),
	    /* TRANSLATORS: table heading: data sent */
	    _("Out"),
	};
	/* dropped first when the screen is narrow */
	static const guint drop_order[] = {PB_SERVICE_OUT, PB_SERVICE_IN, PB_SERVICE_CONNECTIONS};
	guint widths[PB_SERVICE_LAST];
	gboolean shown[PB_SERVICE_LAST];
	guint keep = 2 + MAX(MIN(view->n_events, 3), 1); /* the newest events, their heading */
	guint left = pb_canvas_lines_left(canvas);
	guint room = left > keep + 2 ? left - keep - 2 : 0;
	guint n_rows = MIN(view->n_services, room);
	guint rest = 0;

	if (n_rows < view->n_services && n_rows > 0)
		n_rows--; /* for the "… and N more" line */
	for (guint i = 0; i < n_rows; i++) {
		const PbDashboardService *service = &view->services[i];
		char **cells = g_new0(char *, PB_SERVICE_LAST + 1);

		cells[PB_SERVICE_LABEL] = pb_dashboard_sanitize(service->label);
		cells[PB_SERVICE_URL] =
		    pb_dashboard_sanitize(service->url != NULL ? service->url : "-");
		cells[PB_SERVICE_CONNECTIONS] =
		    g_strdup_printf("%u/%" G_GUINT64_FORMAT, service->connections_active,
				    service->connections_total);
		cells[PB_SERVICE_IN] = pb_format_bytes(service->bytes_in);
		cells[PB_SERVICE_OUT] = pb_format_bytes(service->bytes_out);
		g_ptr_array_add(rows, cells);
	}
	for (guint i = 0; i < PB_SERVICE_LAST; i++) {
		widths[i] = pb_dashboard_text_width(titles[i]);
		shown[i] = TRUE;
		for (guint j = 0; j < rows->len; j++)
			widths[i] = MAX(widths[i], pb_dashboard_text_width(
						       ((char **)g_ptr_array_index(rows, j))[i]));
	}
	widths[PB_SERVICE_LABEL] = MIN(widths[PB_SERVICE_LABEL], PB_DASHBOARD_NAME_MAX);
	for (guint d = 0;; d++) {
		rest = widths[PB_SERVICE_LABEL];
		for (guint i = PB_SERVICE_CONNECTIONS; i < PB_SERVICE_LAST; i++) {
			if (shown[i])
				rest += PB_DASHBOARD_COLUMN_GAP + widths[i];
		}
		rest += PB_DASHBOARD_COLUMN_GAP;
		if (rest + MIN(widths[PB_SERVICE_URL], PB_DASHBOARD_URL_MIN) <= canvas->width ||
		    d == G_N_ELEMENTS(drop_order))
			break;
		shown[drop_order[d]] = FALSE;
	}
	widths[PB_SERVICE_URL] =
	    canvas->width > rest ? MIN(widths[PB_SERVICE_URL], canvas->width - rest) : 0;

	/* TRANSLATORS: the heading of the client's table of services */
	pb_canvas_header(canvas, _("Services"));
	pb_dashboard_line(canvas, PB_SGR_DIM, titles, widths, shown, PB_SERVICE_LAST,
			  PB_SERVICE_URL + 1);
	for (guint j = 0; j < rows->len; j++)
		pb_dashboard_line(canvas, NULL, g_ptr_array_index(rows, j), widths, shown,
				  PB_SERVICE_LAST, PB_SERVICE_URL + 1);
	if (n_rows < view->n_services) {
		guint n_hidden = view->n_services - n_rows;
		g_autofree char *more = NULL;

		/* TRANSLATORS: below the table of services when the screen is too short */
		more = g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "… and %u more service",
						   "… and %u more services", n_hidden),
				       n_hidden);
		pb_canvas_add(canvas, PB_SGR_DIM, more);
		pb_canvas_newline(canvas);
	}
}

/* The clients in the first @n_rows rows: a further service's row is none. */
static guint
pb_dashboard_count_clients(const PbServerView *view, guint n_rows)
{
	guint n = 0;

	for (guint i = 0; i < n_rows; i++) {
		if (!view->clients[i].continued)
			n++;
	}
	return n;
}

/**
 * pb_dashboard_render_server:
 * @view: the server's state
 * @width: columns of the screen
 * @height: lines of the screen
 * @color: whether to add SGR colour escapes
 *
 * Returns: the whole screen, lines separated by "\n", none wider than @width columns, at
 * most @height lines.
 */
char *
pb_dashboard_render_server(const PbServerView *view, guint width, guint height, gboolean color)
{
	PbCanvas canvas;
	g_autofree char *header = NULL;
	g_autofree char *uptime = NULL;
	g_autofree char *clients = NULL;
	guint n_total = 0;
	guint n_listed;
	guint n_rows = 0;
	guint room;

	g_return_val_if_fail(view != NULL, NULL);

	pb_canvas_init(&canvas, width, height, color);
	/* TRANSLATORS: the dashboard's first line; %s is the version */
	header = g_strdup_printf(_("piggyback server %s (Ctrl+C to quit)"),
				 view->version != NULL ? view->version : "");
	pb_canvas_header(&canvas, header);
	/* TRANSLATORS: the dashboard's labels are cut to 13 characters */
	pb_canvas_row(&canvas, _("Listening"), view->listen_url);
	uptime = pb_format_duration((view->now - view->started) / G_USEC_PER_SEC);
	pb_canvas_row(&canvas, _("Uptime"), uptime);
	clients = g_strdup_printf("%u", view->n_clients);
	pb_canvas_row(&canvas, _("Clients"), clients);

	n_listed = view->clients != NULL ? view->n_rows : 0;
	n_total = MAX(view->n_clients, pb_dashboard_count_clients(view, n_listed));
	if (n_total == 0) {
		pb_canvas_add(&canvas, PB_SGR_DIM, _("no clients connected"));
		pb_canvas_newline(&canvas);
	} else {
		/* lines for the table after the heading, keeping a few for the newest events
		 * (and the events' heading and rule) */
		guint keep = 2 + MAX(MIN(view->n_events, 3), 1);
		guint left = pb_canvas_lines_left(&canvas);

		room = left > keep + 1 ? left - keep - 1 : 0;
		n_rows = MIN(n_listed, room);
		if (n_rows > 0 &&
		    (n_rows < n_listed || pb_dashboard_count_clients(view, n_rows) < n_total))
			n_rows--; /* for the "… and N more" line */
		pb_dashboard_table(&canvas, view, n_rows,
				   n_total - pb_dashboard_count_clients(view, n_rows));
	}
	pb_canvas_events(&canvas, view->events, view->n_events);
	return pb_canvas_finish(&canvas);
}
