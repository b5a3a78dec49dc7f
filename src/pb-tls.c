/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-tls.h"

#include <glib/gi18n.h>
#include <string.h>

#include "pb-error.h"

/**
 * pb_tls_database_new:
 * @ca_file: a PEM file of trusted CA certificates, relative or absolute
 *
 * GTlsFileDatabase needs an absolute path (glib-networking refuses a relative one and
 * then trusts nothing), so @ca_file is made absolute first.
 */
GTlsDatabase *
pb_tls_database_new(const char *ca_file, GError **error)
{
	g_autofree char *path = g_canonicalize_filename(ca_file, NULL);
	g_autoptr(GError) error_local = NULL;
	g_autoptr(GTlsDatabase) database = NULL;

	g_return_val_if_fail(ca_file != NULL, NULL);

	/* the database reads the file lazily: fail here on a missing or empty one */
	if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("%s is not a file"),
			    ca_file);
		return NULL;
	}
	database = g_tls_file_database_new(path, &error_local);
	if (database == NULL) {
		g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE, "%s: %s", ca_file,
			    error_local->message);
		return NULL;
	}
	{
		g_autolist(GTlsCertificate) certificates =
		    g_tls_certificate_list_new_from_file(path, &error_local);

		if (certificates == NULL) {
			g_set_error(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
				    _("%s holds no PEM certificate%s%s"), ca_file,
				    error_local != NULL ? ": " : "",
				    error_local != NULL ? error_local->message : "");
			return NULL;
		}
	}
	return g_steal_pointer(&database);
}

/**
 * pb_tls_pin_parse:
 * @pin: a SHA-256 in hex, 64 digits, with or without colons (as `openssl x509
 *   -fingerprint -sha256` prints it), in either case
 *
 * Returns: (transfer full): the pin as 64 lowercase hex digits, or %NULL with @error set
 */
char *
pb_tls_pin_parse(const char *pin, GError **error)
{
	g_autoptr(GString) hex = g_string_new(NULL);

	g_return_val_if_fail(pin != NULL, NULL);

	for (const char *p = pin; *p != '\0'; p++) {
		if (*p == ':')
			continue;
		if (!g_ascii_isxdigit(*p) || hex->len == 64) {
			hex->len = 0;
			break;
		}
		g_string_append_c(hex, g_ascii_tolower(*p));
	}
	if (hex->len != 64) {
		g_set_error(error, PB_ERROR, PB_ERROR_FAILED,
			    _("“%s” is not a SHA-256 in hex (64 digits, colons allowed)"), pin);
		return NULL;
	}
	return g_string_free(g_steal_pointer(&hex), FALSE);
}

/* The SHA-256 of @certificate's DER encoding, as 64 lowercase hex digits. */
char *
pb_tls_certificate_sha256(GTlsCertificate *certificate)
{
	g_autoptr(GByteArray) der = NULL;

	g_return_val_if_fail(G_IS_TLS_CERTIFICATE(certificate), NULL);

	g_object_get(certificate, "certificate", &der, NULL);
	if (der == NULL)
		return NULL;
	return g_compute_checksum_for_data(G_CHECKSUM_SHA256, der->data, der->len);
}

/* Why a certificate was refused, in words: "it has expired; it is not for the host …". */
char *
pb_tls_describe_errors(GTlsCertificateFlags errors, const char *host)
{
	g_autoptr(GPtrArray) reasons = g_ptr_array_new_with_free_func(g_free);

	if (errors & G_TLS_CERTIFICATE_UNKNOWN_CA)
		g_ptr_array_add(
		    reasons, g_strdup(_("its issuer is unknown (not in the trust store: trust its "
					"CA with --ca-file or pin it with --pin-sha256)")));
	if (errors & G_TLS_CERTIFICATE_BAD_IDENTITY)
		g_ptr_array_add(reasons, g_strdup_printf(_("it is not for the host %s"), host));
	if (errors & G_TLS_CERTIFICATE_NOT_ACTIVATED)
		g_ptr_array_add(reasons, g_strdup(_("it is not valid yet")));
	if (errors & G_TLS_CERTIFICATE_EXPIRED)
		g_ptr_array_add(reasons, g_strdup(_("it has expired")));
	if (errors & G_TLS_CERTIFICATE_REVOKED)
		g_ptr_array_add(reasons, g_strdup(_("it has been revoked")));
	if (errors & G_TLS_CERTIFICATE_INSECURE)
		g_ptr_array_add(reasons, g_strdup(_("it uses an insecure algorithm")));
	if (errors & G_TLS_CERTIFICATE_GENERIC_ERROR || reasons->len == 0)
		g_ptr_array_add(reasons, g_strdup(_("it could not be checked")));
	g_ptr_array_add(reasons, NULL);
	return g_strjoinv("; ", (char **)reasons->pdata);
}

/**
 * pb_tls_certificate_covers_names:
 * @domain: serve --domain
 *
 * Returns: whether @certificate is made out for `*.@domain` (a wildcard), so that clients
 *   trust it for every NAME.@domain
 */
gboolean
pb_tls_certificate_covers_names(GTlsCertificate *certificate, const char *domain)
{
	g_autoptr(GPtrArray) names = g_tls_certificate_get_dns_names(certificate);
	g_autofree char *wildcard = g_strdup_printf("*.%s", domain);

	for (guint i = 0; names != NULL && i < names->len; i++) {
		gsize len = 0;
		const char *name = g_bytes_get_data(names->pdata[i], &len);

		if (len == strlen(wildcard) && g_ascii_strncasecmp(name, wildcard, len) == 0)
			return TRUE;
	}
	return FALSE;
}
