/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Who may connect to the public ports: serve --allow and --deny, lists of CIDR ranges, and
 * how many connections one address may have open (--max-connections-per-address). */
typedef struct _PbAddressRules PbAddressRules;

PbAddressRules *
pb_address_rules_new(void);
gboolean
pb_address_rules_set(PbAddressRules *self, const char *allow, const char *deny, GError **error);
gboolean
pb_address_rules_check(PbAddressRules *self, GInetAddress *address);
gboolean
pb_address_rules_check_connection(PbAddressRules *self, GSocketConnection *connection);
void
pb_address_rules_set_max_per_address(PbAddressRules *self, guint max);
gboolean
pb_address_rules_admit(PbAddressRules *self, GSocketConnection *connection,
		       GSocketConnection *origin);
GInetAddress *
pb_address_rules_unmap(GInetAddress *address);
char *
pb_address_rules_key(GInetAddress *address);
void
pb_address_rules_set_what(PbAddressRules *self, const char *what, const char *prefix);
void
pb_address_rules_set_label(PbAddressRules *self, const char *label);
gboolean
pb_address_rules_is_empty(PbAddressRules *self);
void
pb_address_rules_add_refused(PbAddressRules *self, guint64 n);
guint64
pb_address_rules_get_n_refused(PbAddressRules *self);
char *
pb_address_rules_render_metrics(PbAddressRules *self, const char *name, const char *help);
void
pb_address_rules_free(PbAddressRules *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbAddressRules, pb_address_rules_free)

G_END_DECLS
