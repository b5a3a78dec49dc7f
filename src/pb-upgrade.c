/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-upgrade.h"

#include <glib/gi18n.h>
#include <libsoup/soup.h>
#include <string.h>

#include "pb-error.h"
#include "pb-text.h"

#define PB_WEBSOCKET_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* The Sec-WebSocket-Accept value the server must answer to @key (RFC 6455 §4.2.2). */
char *
pb_upgrade_expected_accept(const char *key)
{
	g_autoptr(GChecksum) sha1 = g_checksum_new(G_CHECKSUM_SHA1);
	guint8 digest[20];
	gsize digest_len = sizeof digest;

	g_return_val_if_fail(key != NULL, NULL);

	g_checksum_update(sha1, (const guchar *)key, -1);
	g_checksum_update(sha1, (const guchar *)PB_WEBSOCKET_GUID, -1);
	g_checksum_get_digest(sha1, digest, &digest_len);
	return g_base64_encode(digest, digest_len);
}

/**
 * pb_upgrade_check_response:
 * @text: the server's answer: status line and headers, up to and including the empty line
 * @len: the length of @text (it need not be nul-terminated, and comes from the network)
 * @key: the Sec-WebSocket-Key the request carried
 * @error: %PB_ERROR_UNAUTHORIZED for 401 and 403, %PB_ERROR_NAME_TAKEN for 409,
 *   %PB_ERROR_REFUSED for any other status
 *   than 101, %PB_ERROR_PROTOCOL for an answer that is not a valid WebSocket handshake
 *
 * Returns: %TRUE if the server switched to a WebSocket without extensions
 */
gboolean
pb_upgrade_check_response(const char *text, gsize len, const char *key, GError **error)
{
	g_autoptr(SoupMessageHeaders) headers =
	    soup_message_headers_new(SOUP_MESSAGE_HEADERS_RESPONSE);
	g_autofree char *phrase = NULL; /* the server's reason phrase, as it came */
	g_autofree char *escaped = NULL;
	g_autofree char *reason = NULL; /* the same, fit to be shown */
	g_autofree char *expected = NULL;
	guint status = 0;

	g_return_val_if_fail(text != NULL || len == 0, FALSE);
	g_return_val_if_fail(key != NULL, FALSE);

	if (len == 0 || len > G_MAXINT ||
	    !soup_headers_parse_response(text, (int)len, headers, NULL, &status, &phrase)) {
		g_set_error_literal(error, PB_ERROR, PB_ERROR_PROTOCOL,
				    _("the server's answer is not HTTP"));
		return FALSE;
	}
	escaped = pb_text_escape(phrase, -1);
	reason = pb_text_truncate(escaped, 200); /* a line, not 16 KiB of one */
	if (status == SOUP_STATUS_UNAUTHORIZED) {
		g_set_error(error, PB_ERROR, PB_ERROR_UNAUTHORIZED,
			    _("the server refused the token (%u %s): check --token-file or "
			      "PIGGY_TOKEN"),
			    status, reason);
		return FALSE;
	}
	if (status == SOUP_STATUS_FORBIDDEN) {
		g_set_error(error, PB_ERROR, PB_ERROR_UNAUTHORIZED,
			    _("the server does not allow this client (%u %s)"), status, reason);
		return FALSE;
	}
	if (status == SOUP_STATUS_CONFLICT) {
		/* TRANSLATORS: the reason is the server's, e.g. “The name x is held by another
		 * client” */
		g_set_error(error, PB_ERROR, PB_ERROR_NAME_TAKEN,
			    _("the server refused the name (%u %s): choose another --name"), status,
			    reason);
		return FALSE;
	}
	if (status != SOUP_STATUS_SWITCHING_PROTOCOLS) {
		g_set_error(error, PB_ERROR, PB_ERROR_REFUSED,
			    _("the server refused the tunnel: %u %s"), status, reason);
		return FALSE;
	}
	expected = pb_upgrade_expected_accept(key);
	if (!soup_message_headers_header_equals(headers, "Upgrade", "websocket") ||
	    !soup_message_headers_header_contains(headers, "Connection", "upgrade") ||
	    g_strcmp0(soup_message_headers_get_one(headers, "Sec-WebSocket-Accept"), expected) !=
		0) {
		g_set_error_literal(error, PB_ERROR, PB_ERROR_PROTOCOL,
				    _("the server's WebSocket handshake is invalid"));
		return FALSE;
	}
	if (soup_message_headers_get_one(headers, "Sec-WebSocket-Extensions") != NULL) {
		g_set_error_literal(
		    error, PB_ERROR, PB_ERROR_PROTOCOL,
		    _("the server accepted a WebSocket extension nobody asked for"));
		return FALSE;
	}
	return TRUE;
}
