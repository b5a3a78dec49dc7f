/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

#include "pb-address-rules.h"
#include "pb-config-file.h"
#include "pb-public-ports.h"
#include "pb-server-client.h"

G_BEGIN_DECLS

/* The [client NAME] groups of serve --config: a token each, and what it may claim. */
typedef struct _PbClientPolicy PbClientPolicy;

PbClientPolicy *
pb_client_policy_new_from_config(PbConfigFile *config, GError **error);
guint
pb_client_policy_get_n_rules(PbClientPolicy *self);
PbClientRule *
pb_client_policy_lookup(PbClientPolicy *self, const char *authorization);
char *
pb_client_policy_recheck(PbClientPolicy *self, PbServerClient *client, guint max_connections);
void
pb_client_policy_apply(PbClientPolicy *self, const GList *clients, guint max_connections);
void
pb_client_policy_free(PbClientPolicy *self);

PbClientRule *
pb_client_rule_ref(PbClientRule *rule);
void
pb_client_rule_unref(PbClientRule *rule);
const char *
pb_client_rule_get_name(PbClientRule *rule);
gboolean
pb_client_rule_check_name(PbClientRule *rule, const char *asked, char **reason);
gboolean
pb_client_rule_check_services(PbClientRule *rule, guint n_services, char **reason);
PbAddressRules *
pb_client_rule_get_address_rules(PbClientRule *rule);
void
pb_client_rule_limit_ports(PbClientRule *rule, PbPublicPorts *ports);
void
pb_client_rule_adopt(PbClientRule *rule, PbServerClient *client, guint max_connections);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbClientPolicy, pb_client_policy_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbClientRule, pb_client_rule_unref)

G_END_DECLS
