/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-token.h"

#include <string.h>

#include "pb-error.h"

/* A token file larger than this is not a token. */
#define PB_TOKEN_FILE_MAX 4096

/**
 * pb_token_validate:
 * @token: a candidate token
 * @origin: where it came from, for the message (a file name, "PIGGY_TOKEN")
 *
 * A token is one or more visible ASCII characters (no spaces, no control characters), so
 * it fits in an HTTP header as it is and cannot end or add a header line.
 */
gboolean
pb_token_validate(const char *token, const char *origin, GError **error)
{
	g_return_val_if_fail(token != NULL, FALSE);

	if (*token == '\0') {
		g_set_error(error, PB_ERROR, PB_ERROR_FAILED, "the token in %s is empty", origin);
		return FALSE;
	}
	for (const char *p = token; *p != '\0'; p++) {
		if ((guchar)*p < 0x21 || (guchar)*p > 0x7e) {
			g_set_error(error, PB_ERROR, PB_ERROR_FAILED,
				    "the token in %s may only hold visible ASCII characters, no "
				    "spaces",
				    origin);
			return FALSE;
		}
	}
	return TRUE;
}

/**
 * pb_token_read_file:
 *
 * Reads a token from the file at @path; one trailing newline (`\n` or `\r\n`) is not part
 * of it, as editors and `echo` add one.
 *
 * Returns: (transfer full): the token, or %NULL with @error set if the file cannot be read
 *   or holds no valid token
 */
char *
pb_token_read_file(const char *path, GError **error)
{
	g_autofree char *contents = NULL;
	gsize len = 0;

	g_return_val_if_fail(path != NULL, NULL);

	if (!g_file_get_contents(path, &contents, &len, error))
		return NULL;
	if (len > PB_TOKEN_FILE_MAX || strlen(contents) != len) {
		g_set_error(error, PB_ERROR, PB_ERROR_FAILED,
			    "%s does not hold a token: it is binary or longer than %d bytes", path,
			    PB_TOKEN_FILE_MAX);
		return NULL;
	}
	if (len > 0 && contents[len - 1] == '\n')
		contents[--len] = '\0';
	if (len > 0 && contents[len - 1] == '\r')
		contents[--len] = '\0';
	if (!pb_token_validate(contents, path, error))
		return NULL;
	return g_steal_pointer(&contents);
}

/**
 * pb_token_equal:
 *
 * Compares two tokens in time that depends on neither's contents: both are hashed and
 * the digests compared without an early exit, so a wrong guess does not tell how many of
 * its first bytes were right.
 */
gboolean
pb_token_equal(const char *a, const char *b)
{
	g_autoptr(GChecksum) sha_a = g_checksum_new(G_CHECKSUM_SHA256);
	g_autoptr(GChecksum) sha_b = g_checksum_new(G_CHECKSUM_SHA256);
	guint8 digest_a[32];
	guint8 digest_b[32];
	gsize len_a = sizeof digest_a;
	gsize len_b = sizeof digest_b;
	guint8 diff = 0;

	g_return_val_if_fail(a != NULL && b != NULL, FALSE);

	g_checksum_update(sha_a, (const guchar *)a, -1);
	g_checksum_update(sha_b, (const guchar *)b, -1);
	g_checksum_get_digest(sha_a, digest_a, &len_a);
	g_checksum_get_digest(sha_b, digest_b, &len_b);
	for (gsize i = 0; i < sizeof digest_a; i++)
		diff |= digest_a[i] ^ digest_b[i];
	return diff == 0;
}

/**
 * pb_token_authorize:
 * @authorization: (nullable): the request's Authorization header
 * @token: the token the server requires
 *
 * Returns: %TRUE if @authorization is `Bearer <token>` (the scheme in any case, RFC 7235)
 */
gboolean
pb_token_authorize(const char *authorization, const char *token)
{
	const char *presented;

	g_return_val_if_fail(token != NULL, FALSE);

	if (authorization == NULL || g_ascii_strncasecmp(authorization, "Bearer ", 7) != 0)
		return FALSE;
	presented = authorization + 7;
	while (*presented == ' ')
		presented++;
	return pb_token_equal(presented, token);
}
