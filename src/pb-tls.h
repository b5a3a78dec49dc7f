/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* TLS policy for `forward`: a private CA, certificate pinning, errors in words. */

/* Errors a matching --pin-sha256 overrides: the pin names the one certificate to trust,
 * whoever signed it and whatever name it carries. Expiry and the rest still count. */
#define PB_TLS_PINNABLE_ERRORS (G_TLS_CERTIFICATE_UNKNOWN_CA | G_TLS_CERTIFICATE_BAD_IDENTITY)

GTlsDatabase *
pb_tls_database_new(const char *ca_file, GError **error);
char *
pb_tls_pin_parse(const char *pin, GError **error);
char *
pb_tls_certificate_sha256(GTlsCertificate *certificate);
char *
pb_tls_describe_errors(GTlsCertificateFlags errors, const char *host);
gboolean
pb_tls_certificate_covers_names(GTlsCertificate *certificate, const char *domain);

G_END_DECLS
