/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-client-policy.h"

#include <glib/gi18n.h>
#include <string.h>

#include "pb-text.h"
#include "pb-token.h"

/*
 * Who may open a tunnel and what it may claim, from the [client NAME] groups of serve
 * --config (sshd's authorized_keys with permitlisten, frp's allowPorts): each group is one
 * person's or machine's own token, the names it may take (glob patterns), the public ports
 * it may have and how many connections its tunnel keeps open. A client is told no before
 * its upgrade, with the reason; on a reload, one whose token went, or whose tunnel's name or
 * port is no longer its to claim, is disconnected with the reason.
 */

struct _PbClientRule {
	grefcount ref;
	char *name;	     /* (owned) NAME of [client NAME], for logs and metrics */
	char *token;	     /* (owned) */
	GPtrArray *patterns; /* (owned) (nullable) (element-type GPatternSpec) names= */
	char *names;	     /* (owned) (nullable) names= as written, for reasons */
	guint16 first_port;  /* ports=; 0 = any */
	guint16 last_port;
	guint max_connections; /* 0: the server's */
	guint max_services;    /* 0: the server's */
	/* (owned) (nullable) allow=, deny=, max-connections-per-address=: on top of the
	 * server's */
	PbAddressRules *address_rules;
};

struct _PbClientPolicy {
	GPtrArray *rules; /* (owned) (element-type PbClientRule) in the file's order */
};

#define PB_CLIENT_GROUP "client "

PbClientRule *
pb_client_rule_ref(PbClientRule *rule)
{
	g_ref_count_inc(&rule->ref);
	return rule;
}

void
pb_client_rule_unref(PbClientRule *rule)
{
	if (!g_ref_count_dec(&rule->ref))
		return;
	g_free(rule->name);
	if (rule->token != NULL)
		memset(rule->token, 0, strlen(rule->token));
	g_free(rule->token);
	g_clear_pointer(&rule->patterns, g_ptr_array_unref);
	g_free(rule->names);
	g_clear_pointer(&rule->address_rules, pb_address_rules_free);
	g_free(rule);
}

const char *
pb_client_rule_get_name(PbClientRule *rule)
{
	return rule->name;
}

void
pb_client_policy_free(PbClientPolicy *self)
{
	if (self == NULL)
		return;
	g_ptr_array_unref(self->rules);
	g_free(self);
}

/* A client's name ends up in log lines and a /metrics label: keep it plain. */
static gboolean
pb_client_policy_is_name(const char *name)
{
	gsize len = strlen(name);

	if (len == 0 || len > 63)
		return FALSE;
	for (const char *p = name; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
			return FALSE;
	}
	return TRUE;
}

/* ports=: PORT or FIRST-LAST, from 1 to 65535. */
static gboolean
pb_client_policy_parse_ports(const char *value, guint16 *first, guint16 *last)
{
	g_auto(GStrv) parts = g_strsplit(value, "-", 3);
	guint64 a = 0, b = 0;

	if (g_strv_length(parts) == 1 &&
	    g_ascii_string_to_unsigned(parts[0], 10, 1, G_MAXUINT16, &a, NULL)) {
		*first = *last = (guint16)a;
		return TRUE;
	}
	if (g_strv_length(parts) == 2 &&
	    g_ascii_string_to_unsigned(parts[0], 10, 1, G_MAXUINT16, &a, NULL) &&
	    g_ascii_string_to_unsigned(parts[1], 10, 1, G_MAXUINT16, &b, NULL) && a <= b) {
		*first = (guint16)a;
		*last = (guint16)b;
		return TRUE;
	}
	return FALSE;
}

/* An error at @key of @group (nullable: the group's header) with @message. */
static void
pb_client_policy_error(GError **error, PbConfigFile *config, const char *group, const char *key,
		       const char *message)
{
	g_autofree char *where = pb_config_file_where(config, group, key);

	g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "%s: [%s] %s", where,
		    group, message);
}

/* @key of @group: a count of at least 1, into *@count; left as it is without the key. */
static gboolean
pb_client_policy_read_count(PbConfigFile *config, GKeyFile *key_file, const char *group,
			    const char *key, guint *count, GError **error)
{
	g_autofree char *value = g_key_file_get_value(key_file, group, key, NULL);
	guint64 n = 0;

	if (value == NULL)
		return TRUE;
	if (!g_ascii_string_to_unsigned(g_strstrip(value), 10, 1, G_MAXUINT, &n, NULL)) {
		g_autofree char *message =
		    /* TRANSLATORS: a key as it is (max-connections), and the value given */
		    g_strdup_printf(_("%s=%s: a number of at least 1 is needed"), key, value);

		pb_client_policy_error(error, config, group, key, message);
		return FALSE;
	}
	*count = (guint)n;
	return TRUE;
}

/* allow=, deny= and max-connections-per-address= of @group: which public addresses the
 * client's ports take, and how many connections each, checked after the server's (which a
 * connection must pass first). The count is per group: all its tunnels together. */
static gboolean
pb_client_policy_parse_addresses(PbConfigFile *config, const char *group, PbClientRule *rule,
				 GError **error)
{
	GKeyFile *key_file = pb_config_file_get_key_file(config);
	g_autofree char *allow = g_key_file_get_value(key_file, group, "allow", NULL);
	g_autofree char *deny = g_key_file_get_value(key_file, group, "deny", NULL);
	g_autoptr(PbAddressRules) rules = NULL;
	g_autoptr(GError) local = NULL;
	const char *key = "allow";
	guint max_per_address = 0; /* none */

	if (!pb_client_policy_read_count(config, key_file, group, "max-connections-per-address",
					 &max_per_address, error))
		return FALSE;
	if (allow == NULL && deny == NULL && max_per_address == 0)
		return TRUE;
	rules = pb_address_rules_new();
	if (max_per_address != 0)
		pb_address_rules_set_max_per_address(rules, max_per_address);
	/* each alone first, to name the key that is wrong */
	if (pb_address_rules_set(rules, allow, NULL, &local)) {
		key = "deny";
		pb_address_rules_set(rules, allow, deny, &local);
	}
	if (local != NULL) {
		g_autofree char *message = g_strdup_printf(
		    "%s=%s: %s", key, g_strcmp0(key, "allow") == 0 ? allow : deny, local->message);

		pb_client_policy_error(error, config, group, key, message);
		return FALSE;
	}
	if (pb_address_rules_is_empty(rules) && max_per_address == 0)
		return TRUE;
	{
		g_autofree char *label = g_strdup_printf("Client %s", rule->name);

		pb_address_rules_set_label(rules, label);
	}
	rule->address_rules = g_steal_pointer(&rules);
	return TRUE;
}

static PbClientRule *
pb_client_policy_parse_rule(PbConfigFile *config, const char *group, GError **error)
{
	static const char *const known[] = {"token-file",
					    "names",
					    "ports",
					    "max-connections",
					    "max-services",
					    "allow",
					    "deny",
					    "max-connections-per-address",
					    NULL};
	GKeyFile *key_file = pb_config_file_get_key_file(config);
	g_autoptr(PbClientRule) rule = g_new0(PbClientRule, 1);
	g_auto(GStrv) keys = g_key_file_get_keys(key_file, group, NULL, NULL);
	g_autofree char *token_file = NULL;
	g_autofree char *value = NULL;
	g_autoptr(GError) local = NULL;

	g_ref_count_init(&rule->ref);
	rule->name = g_strdup(group + strlen(PB_CLIENT_GROUP));
	if (!pb_client_policy_is_name(rule->name)) {
		pb_client_policy_error(error, config, group, NULL,
				       _("a client's name is 1 to 63 letters, digits, “.”, “-” "
					 "and “_”"));
		return NULL;
	}
	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		if (!g_strv_contains(known, keys[i])) {
			g_autofree char *message = g_strdup_printf(_("unknown key “%s”"), keys[i]);

			pb_client_policy_error(error, config, group, keys[i], message);
			return NULL;
		}
	}

	token_file = g_key_file_get_string(key_file, group, "token-file", NULL);
	if (token_file == NULL || *token_file == '\0') {
		pb_client_policy_error(error, config, group, NULL,
				       _("needs token-file, the file with its token"));
		return NULL;
	}
	{
		g_autofree char *path = pb_config_file_resolve(config, token_file);

		rule->token = pb_token_read_file(path, &local);
		if (rule->token == NULL) {
			g_autofree char *message =
			    g_strdup_printf("token-file=%s: %s", token_file, local->message);

			pb_client_policy_error(error, config, group, "token-file", message);
			return NULL;
		}
	}

	value = g_key_file_get_value(key_file, group, "names", NULL);
	if (value != NULL) {
		g_auto(GStrv) patterns =
		    g_key_file_get_string_list(key_file, group, "names", NULL, NULL);

		rule->names = g_strdup(value);
		rule->patterns =
		    g_ptr_array_new_with_free_func((GDestroyNotify)g_pattern_spec_free);
		for (guint i = 0; patterns != NULL && patterns[i] != NULL; i++) {
			g_strstrip(patterns[i]);
			if (*patterns[i] == '\0')
				continue;
			g_ptr_array_add(rule->patterns, g_pattern_spec_new(patterns[i]));
		}
		if (rule->patterns->len == 0) {
			g_autofree char *message = g_strdup_printf(
			    _("names=%s: a list of name patterns (such as alice-*) is needed"),
			    value);

			pb_client_policy_error(error, config, group, "names", message);
			return NULL;
		}
	}
	g_clear_pointer(&value, g_free);

	value = g_key_file_get_value(key_file, group, "ports", NULL);
	if (value != NULL &&
	    !pb_client_policy_parse_ports(g_strstrip(value), &rule->first_port, &rule->last_port)) {
		g_autofree char *message = g_strdup_printf(
		    _("ports=%s: a port or a range FIRST-LAST of ports from 1 to 65535 is needed"),
		    value);

		pb_client_policy_error(error, config, group, "ports", message);
		return NULL;
	}
	g_clear_pointer(&value, g_free);

	if (!pb_client_policy_read_count(config, key_file, group, "max-connections",
					 &rule->max_connections, error) ||
	    !pb_client_policy_read_count(config, key_file, group, "max-services",
					 &rule->max_services, error))
		return NULL;

	if (!pb_client_policy_parse_addresses(config, group, rule, error))
		return NULL;
	return g_steal_pointer(&rule);
}

/**
 * pb_client_policy_new_from_config:
 *
 * Returns: (transfer full): the [client NAME] groups of @config (maybe none), or %NULL with
 *   @error naming the place of a bad one
 */
PbClientPolicy *
pb_client_policy_new_from_config(PbConfigFile *config, GError **error)
{
	g_autoptr(PbClientPolicy) self = g_new0(PbClientPolicy, 1);
	g_auto(GStrv) groups = g_key_file_get_groups(pb_config_file_get_key_file(config), NULL);

	self->rules = g_ptr_array_new_with_free_func((GDestroyNotify)pb_client_rule_unref);
	for (guint i = 0; groups[i] != NULL; i++) {
		PbClientRule *rule;

		if (!g_str_has_prefix(groups[i], PB_CLIENT_GROUP))
			continue;
		rule = pb_client_policy_parse_rule(config, groups[i], error);
		if (rule == NULL)
			return NULL;
		/* a token says who a client is: two groups cannot share one */
		for (guint r = 0; r < self->rules->len; r++) {
			PbClientRule *other = self->rules->pdata[r];

			if (pb_token_equal(other->token, rule->token)) {
				g_autofree char *message = g_strdup_printf(
				    _("has the token of [client %s]: each needs its own"),
				    other->name);

				pb_client_policy_error(error, config, groups[i], "token-file",
						       message);
				pb_client_rule_unref(rule);
				return NULL;
			}
		}
		g_ptr_array_add(self->rules, rule);
	}
	return g_steal_pointer(&self);
}

guint
pb_client_policy_get_n_rules(PbClientPolicy *self)
{
	return self != NULL ? self->rules->len : 0;
}

/**
 * pb_client_policy_lookup:
 * @authorization: (nullable): the request's Authorization header
 *
 * Every token is compared, whichever matches, so the time taken says nothing of which.
 *
 * Returns: (transfer none) (nullable): the rule of the token presented, if any
 */
PbClientRule *
pb_client_policy_lookup(PbClientPolicy *self, const char *authorization)
{
	PbClientRule *found = NULL;

	for (guint i = 0; self != NULL && i < self->rules->len; i++) {
		PbClientRule *rule = self->rules->pdata[i];

		if (pb_token_authorize(authorization, rule->token) && found == NULL)
			found = rule;
	}
	return found;
}

static gboolean
pb_client_rule_matches(PbClientRule *rule, const char *name)
{
	for (guint i = 0; i < rule->patterns->len; i++) {
		if (g_pattern_spec_match_string(rule->patterns->pdata[i], name))
			return TRUE;
	}
	return FALSE;
}

/**
 * pb_client_rule_check_name:
 * @asked: (nullable): the name the client asks for, if it takes names
 * @reason: (out) (transfer full): why not, for the client
 *
 * A client whose token may take some names only asks for one of them: any name the server
 * would pick for it is none of them.
 */
gboolean
pb_client_rule_check_name(PbClientRule *rule, const char *asked, char **reason)
{
	if (rule->patterns == NULL || (asked != NULL && pb_client_rule_matches(rule, asked)))
		return TRUE;
	if (asked == NULL)
		*reason = g_strdup_printf("Client %s takes only names matching %s: ask for one "
					  "(forward --name)",
					  rule->name, rule->names);
	else
		*reason = g_strdup_printf("Client %s may not take the name %s, only names "
					  "matching %s",
					  rule->name, asked, rule->names);
	return FALSE;
}

/**
 * pb_client_rule_check_services:
 * @n_services: how many services the client asks for, its first included
 * @reason: (out) (transfer full): why not, for the client
 *
 * The server's --max-services holds for every client; a group may take fewer.
 */
gboolean
pb_client_rule_check_services(PbClientRule *rule, guint n_services, char **reason)
{
	if (rule->max_services == 0 || n_services <= rule->max_services)
		return TRUE;
	*reason = g_strdup_printf("Client %s may have at most %u services (max-services), not %u",
				  rule->name, rule->max_services, n_services);
	return FALSE;
}

/* Returns: (nullable): allow= and deny= of @rule, none if it has neither */
PbAddressRules *
pb_client_rule_get_address_rules(PbClientRule *rule)
{
	return rule != NULL ? rule->address_rules : NULL;
}

/* Narrows the server's public ports to those @rule (nullable) may have. */
void
pb_client_rule_limit_ports(PbClientRule *rule, PbPublicPorts *ports)
{
	if (rule == NULL || rule->first_port == 0)
		return;
	ports->first = rule->first_port;
	ports->last = rule->last_port;
}

/* @client is of @rule: its limits, and its name in front of its address in the log
 * ("alice@192.0.2.1:41000") and on the dashboard. @max_connections: the server's. */
void
pb_client_rule_adopt(PbClientRule *rule, PbServerClient *client, guint max_connections)
{
	if (client->rule != NULL) {
		g_autofree char *prefix = g_strconcat(client->rule->name, "@", NULL);

		if (g_str_has_prefix(client->peer, prefix)) {
			g_autofree char *peer = client->peer;

			client->peer = g_strdup(peer + strlen(prefix));
		}
	}
	pb_client_rule_ref(rule);
	g_clear_pointer(&client->rule, pb_client_rule_unref);
	client->rule = rule;
	client->max_connections = rule->max_connections != 0 ? rule->max_connections
							     : max_connections;
	{
		g_autofree char *peer = client->peer;

		client->peer = g_strdup_printf("%s@%s", rule->name, peer);
	}
}

/**
 * pb_client_policy_recheck:
 * @max_connections: the server's
 *
 * After a reload: whether @client may keep its tunnel under @self. A client of a [client]
 * group that is still there (by its token) takes the group's new limits.
 *
 * Returns: (transfer full) (nullable): why @client must go, %NULL if it stays
 */
char *
pb_client_policy_recheck(PbClientPolicy *self, PbServerClient *client, guint max_connections)
{
	PbClientRule *rule = NULL;

	if (client->rule == NULL)
		return NULL; /* the shared token (--token-file), which a reload does not change */
	for (guint i = 0; self != NULL && i < self->rules->len; i++) {
		PbClientRule *candidate = self->rules->pdata[i];

		if (pb_token_equal(candidate->token, client->rule->token) && rule == NULL)
			rule = candidate;
	}
	if (rule == NULL)
		return g_strdup_printf("The token of client %s was removed from the configuration",
				       client->rule->name);
	if (rule->max_services != 0 && client->services->len > rule->max_services)
		return g_strdup_printf("Client %s may no longer have %u services", rule->name,
				       client->services->len);
	for (guint i = 0; i < client->services->len; i++) {
		PbServerService *service = client->services->pdata[i];

		if (service->name != NULL && rule->patterns != NULL &&
		    !pb_client_rule_matches(rule, service->name))
			return g_strdup_printf("Client %s may no longer take the name %s",
					       rule->name, service->name);
		if (service->port != 0 && rule->first_port != 0 &&
		    (service->port < rule->first_port || service->port > rule->last_port))
			return g_strdup_printf("Client %s may no longer have port %u", rule->name,
					       service->port);
	}
	pb_client_rule_adopt(rule, client, max_connections);
	return NULL;
}

/**
 * pb_client_policy_apply:
 * @self: (nullable): the new policy
 * @clients: (element-type PbServerClient): the server's connected clients
 * @max_connections: the server's
 *
 * After a reload: each client of @clients that may no longer keep its tunnel (see
 * pb_client_policy_recheck()) is disconnected with close code 1008 and the reason.
 */
void
pb_client_policy_apply(PbClientPolicy *self, const GList *clients, guint max_connections)
{
	/* closing a tunnel takes its client out of the list */
	g_autoptr(GList) copy = g_list_copy((GList *)clients);

	for (GList *l = copy; l != NULL; l = l->next) {
		PbServerClient *client = l->data;
		g_autofree char *reason = pb_client_policy_recheck(self, client, max_connections);
		g_autofree char *close_reason = NULL;

		if (reason == NULL)
			continue;
		g_message("Disconnecting client %s: %s", client->peer, reason);
		/* it cannot come back as it was: no --grace, its port and name go at once */
		g_clear_pointer(&client->session, g_free);
		/* a close frame's reason is at most 123 bytes */
		close_reason = pb_text_truncate(reason, 123);
		pb_tunnel_close(client->tunnel, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
				close_reason);
	}
}
