/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-request-head.h"

#include <string.h>

/* The length of the line at @data (up to @len bytes), without its LF or CRLF; -1 when no
 * LF ends it within @len. */
static gssize
pb_request_head_line(const guint8 *data, gsize len, gsize *next)
{
	const guint8 *lf = memchr(data, '\n', len);
	gsize line_len;

	if (lf == NULL)
		return -1;
	line_len = (gsize)(lf - data);
	*next = line_len + 1;
	if (line_len > 0 && data[line_len - 1] == '\r')
		line_len--;
	return (gssize)line_len;
}

/**
 * pb_request_head_parse:
 * @data: the first bytes of an HTTP/1.x request
 * @head_len: (out) (optional): with %PB_REQUEST_HEAD_COMPLETE, the head's length, its
 *   blank line included
 * @host: (out) (optional): with %PB_REQUEST_HEAD_COMPLETE, the value of the one Host header
 *   without surrounding blanks; %NULL when there is none, or more than one, or it holds a
 *   control character
 *
 * Finds the end of the request head (a blank line; lines end in CRLF or LF) and its Host
 * header. Nothing else is checked: the request goes on, unchanged, to a tunnel or to
 * libsoup, which judge the rest.
 */
PbRequestHead
pb_request_head_parse(const guint8 *data, gsize len, gsize *head_len, char **host)
{
	g_autofree char *found = NULL;
	gboolean first = TRUE;
	guint n_hosts = 0;
	gsize offset = 0;

	if (len > PB_REQUEST_HEAD_MAX)
		len = PB_REQUEST_HEAD_MAX;
	for (;;) {
		gsize next = 0;
		gssize line_len = pb_request_head_line(data + offset, len - offset, &next);
		const char *line = (const char *)data + offset;

		if (line_len < 0)
			return len >= PB_REQUEST_HEAD_MAX ? PB_REQUEST_HEAD_TOO_LARGE
							  : PB_REQUEST_HEAD_INCOMPLETE;
		offset += next;
		if (line_len == 0 && !first)
			break;
		if (line_len == 0)
			continue; /* RFC 9112 §2.2: a blank line before the request line */
		first = FALSE;
		if (line_len >= 5 && g_ascii_strncasecmp(line, "host:", 5) == 0) {
			const char *value = line + 5;
			const char *end = line + line_len;

			while (value < end && (*value == ' ' || *value == '\t'))
				value++;
			while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			/* a NUL would cut the value short: a Host that is not one */
			n_hosts += memchr(value, '\0', (gsize)(end - value)) != NULL ? 2 : 1;
			g_free(found);
			found = g_strndup(value, (gsize)(end - value));
		}
	}
	if (head_len != NULL)
		*head_len = offset;
	if (host != NULL) {
		gboolean clean = found != NULL && n_hosts == 1;

		for (const char *c = found; clean && *c != '\0'; c++)
			clean = !g_ascii_iscntrl(*c) && *c != ' ';
		*host = clean ? g_steal_pointer(&found) : NULL;
	}
	return PB_REQUEST_HEAD_COMPLETE;
}
