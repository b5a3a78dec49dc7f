/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-text.h"

#include <string.h>

/*
 * Text a peer chose (close reasons, HELLO's strings, HTTP reason phrases, error messages
 * that quote them) on its way to a terminal, the log, D-Bus or a notification: a server
 * that can put an escape sequence there can set the terminal's title, clear the screen or
 * draw a fake access URL. So such text is made visible instead of obeyed.
 */

/* Whether @c may reach a terminal as it is: not a C0 or C1 control (ESC, BEL, CR, and
 * U+009B, which some terminals take for CSI) nor DEL, and not one of the invisible
 * bidirectional controls that reorder what follows them (a URL read backwards). */
static gboolean
pb_text_is_shown(gunichar c)
{
	if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f))
		return FALSE;
	if (c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
	    (c >= 0x2066 && c <= 0x2069))
		return FALSE;
	return TRUE;
}

static char *
pb_text_escape_full(const char *text, gssize len, gboolean keep_newlines)
{
	g_autoptr(GString) out = NULL;
	const char *end;

	if (text == NULL)
		return g_strdup("");
	if (len < 0)
		len = (gssize)strlen(text);
	end = text + len;
	out = g_string_sized_new((gsize)len);
	for (const char *p = text; p < end;) {
		gunichar c = g_utf8_get_char_validated(p, end - p);
		gsize n;

		if (c == (gunichar)-1 || c == (gunichar)-2) {
			/* not UTF-8 (or a NUL): the byte's value, visibly */
			g_string_append_printf(out, "\\x%02x", (guint8)*p);
			p++;
			continue;
		}
		n = (gsize)(g_utf8_next_char(p) - p);
		if (pb_text_is_shown(c) || (c == '\n' && keep_newlines))
			g_string_append_len(out, p, (gssize)n);
		else if (c < 0x80)
			g_string_append_printf(out, "\\x%02x", c);
		else
			g_string_append_printf(out, "\\u%04x", c);
		p += n;
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/**
 * pb_text_escape:
 * @text: (nullable): text from a peer, in any encoding
 * @len: its length in bytes, or -1 if it is nul-terminated
 *
 * Returns: valid UTF-8 with every control character (newline and tab included), DEL, C1
 *   control and bidirectional control written as a visible escape: `\x1b`, `\u009b`,
 *   `\u202e`; a byte that is not UTF-8 (or a NUL) as `\xff`. Escaping twice changes
 *   nothing more.
 */
char *
pb_text_escape(const char *text, gssize len)
{
	return pb_text_escape_full(text, len, FALSE);
}

/* pb_text_escape(), but newlines stay: for a log message made of lines. */
char *
pb_text_escape_lines(const char *text, gssize len)
{
	return pb_text_escape_full(text, len, TRUE);
}

/**
 * pb_text_truncate:
 * @text: valid UTF-8
 * @max_bytes: at least 3
 *
 * Returns: @text if it has at most @max_bytes bytes, else its start, cut between two
 *   characters, and "…", in @max_bytes bytes at most (a WebSocket close reason has 123)
 */
char *
pb_text_truncate(const char *text, gsize max_bytes)
{
	const char ellipsis[] = "…";
	const char *cut;

	g_return_val_if_fail(max_bytes >= sizeof ellipsis - 1, NULL);

	if (strlen(text) <= max_bytes)
		return g_strdup(text);
	cut = text + max_bytes - (sizeof ellipsis - 1);
	while (cut > text && (*cut & 0xc0) == 0x80)
		cut--; /* to the first byte of the character it is in */
	return g_strdup_printf("%.*s%s", (int)(cut - text), text, ellipsis);
}

/**
 * pb_text_is_host:
 *
 * Returns: whether @host is an IP address (IPv6 without brackets) or a DNS host name:
 *   labels of 1 to 63 ASCII letters, digits, `-` or `_`, separated by dots, 253 bytes at
 *   most (a final dot allowed); an international name only in its ASCII form (xn--…)
 */
gboolean
pb_text_is_host(const char *host)
{
	gsize len = strlen(host);
	gsize label = 0;

	if (len == 0 || len > 254)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (host[i] <= ' ' || host[i] > '~') /* signed char: also any byte >= 0x80 */
			return FALSE;
	}
	if (g_hostname_is_ip_address(host))
		return TRUE;
	if (len == 254 && host[len - 1] != '.')
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (host[i] == '.') {
			if (label == 0)
				return FALSE; /* an empty label: ".", "a..b", ".a" */
			label = 0;
		} else if ((g_ascii_isalnum(host[i]) || host[i] == '-' || host[i] == '_') &&
			   label < 63) {
			label++;
		} else {
			return FALSE;
		}
	}
	return TRUE;
}
