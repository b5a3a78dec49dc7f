/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-address-rules.h"

#include <glib/gi18n.h>
#include <string.h>

/*
 * serve --allow and --deny (allow= and deny= in [serve]): CIDR ranges, IPv4 and IPv6, that
 * a public connection's address is checked against as it is accepted, before any byte of
 * it reaches a tunnel. A range of --deny refuses; a non-empty --allow refuses every address
 * in none of its ranges. An IPv4 client of a dual-stack port (::ffff:192.0.2.1) is checked
 * as the IPv4 address it is. A refused connection is closed at once and counted; the log
 * says so at most once per 10 s per rule, so that a flood cannot flood the log too.
 *
 * max-connections-per-address= (serve --max-connections-per-address, and per [client]) is
 * kept here too: the public connections open at once from one IPv4 address or IPv6 /64 (a
 * single IPv6 host usually has a /64 to pick from). Each one taken holds a count until its
 * connection object goes; the count table is reference-counted, so that a connection that
 * outlives its rules (a [client] group a reload replaced) still gives its count back.
 */

#define PB_ADDRESS_RULES_LOG_INTERVAL (10 * G_USEC_PER_SEC)

/* A range, or the "not in --allow" rule, with its refusals since its last log line. */
typedef struct {
	GInetAddressMask *mask; /* (owned) (nullable) NULL: the address is in no --allow range */
	char *text;		/* (owned) for the log: "deny=10.0.0.0/8" */
	guint n_refused;
	gint64 logged; /* monotonic µs */
} PbAddressRule;

struct _PbAddressRules {
	GPtrArray *allow;	/* (owned) (element-type PbAddressRule) */
	GPtrArray *deny;	/* (owned) (element-type PbAddressRule) */
	PbAddressRule *outside; /* (owned) refuses what no --allow range holds */
	guint64 n_refused;	/* since the server started */
	char *label;		/* (owned) (nullable) "Client alice", in front of log lines */
	char *what;		/* (owned) what the log calls a refused connection */
	char *prefix;		/* (owned) of the options' names: "" or "listen-" */
	guint max_per_address;	/* 0: no limit */
	GHashTable *open;	/* (owned) address key → open connections (GUINT_TO_POINTER) */
	guint n_over;		/* refused over max_per_address since the last log line */
	gint64 over_logged;	/* monotonic µs of that line */
};

/* A connection's count of its address, given back when the connection object goes. */
typedef struct {
	GHashTable *open; /* (owned) */
	char *key;	  /* (owned) */
} PbAddressHold;

static void
pb_address_rule_free(PbAddressRule *rule)
{
	g_clear_object(&rule->mask);
	g_free(rule->text);
	g_free(rule);
}

static PbAddressRule *
pb_address_rule_new(GInetAddressMask *mask, const char *text)
{
	PbAddressRule *rule = g_new0(PbAddressRule, 1);

	rule->mask = mask;
	rule->text = g_strdup(text);
	return rule;
}

PbAddressRules *
pb_address_rules_new(void)
{
	PbAddressRules *self = g_new0(PbAddressRules, 1);

	self->allow = g_ptr_array_new_with_free_func((GDestroyNotify)pb_address_rule_free);
	self->deny = g_ptr_array_new_with_free_func((GDestroyNotify)pb_address_rule_free);
	self->outside = pb_address_rule_new(NULL, "allow=");
	self->open = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->what = g_strdup("public connection(s)");
	self->prefix = g_strdup("");
	return self;
}

void
pb_address_rules_free(PbAddressRules *self)
{
	if (self == NULL)
		return;
	g_ptr_array_unref(self->allow);
	g_ptr_array_unref(self->deny);
	pb_address_rule_free(self->outside);
	g_free(self->label);
	g_free(self->what);
	g_free(self->prefix);
	g_hash_table_unref(self->open);
	g_free(self);
}

/* @list: "RANGE,RANGE" (commas, semicolons or spaces between), of option @option. */
static GPtrArray *
pb_address_rules_parse(const char *list, const char *option, GError **error)
{
	g_autoptr(GPtrArray) rules =
	    g_ptr_array_new_with_free_func((GDestroyNotify)pb_address_rule_free);
	g_auto(GStrv) ranges = g_strsplit_set(list != NULL ? list : "", ",; ", -1);

	for (guint i = 0; ranges[i] != NULL; i++) {
		g_autofree char *text = NULL;
		GInetAddressMask *mask;

		if (*ranges[i] == '\0')
			continue;
		mask = g_inet_address_mask_new_from_string(ranges[i], NULL);
		if (mask == NULL) {
			g_set_error(
			    error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			    _("--%s takes IP addresses and CIDR ranges such as 192.0.2.0/24 "
			      "or 2001:db8::/32, not “%s”"),
			    option, ranges[i]);
			return NULL;
		}
		text = g_strdup_printf("%s=%s", option, ranges[i]);
		g_ptr_array_add(rules, pb_address_rule_new(mask, text));
	}
	return g_steal_pointer(&rules);
}

/* Replaces the rules with @allow and @deny (nullable), or leaves them if either is bad. */
gboolean
pb_address_rules_set(PbAddressRules *self, const char *allow, const char *deny, GError **error)
{
	g_autofree char *allow_option = g_strconcat(self->prefix, "allow", NULL);
	g_autofree char *deny_option = g_strconcat(self->prefix, "deny", NULL);
	g_autoptr(GPtrArray) allow_rules = pb_address_rules_parse(allow, allow_option, error);
	g_autoptr(GPtrArray) deny_rules = NULL;

	if (allow_rules == NULL)
		return FALSE;
	deny_rules = pb_address_rules_parse(deny, deny_option, error);
	if (deny_rules == NULL)
		return FALSE;
	g_ptr_array_unref(self->allow);
	self->allow = g_steal_pointer(&allow_rules);
	g_ptr_array_unref(self->deny);
	self->deny = g_steal_pointer(&deny_rules);
	return TRUE;
}

/* The rule that refuses @address, if one does. */
static PbAddressRule *
pb_address_rules_find(PbAddressRules *self, GInetAddress *address)
{
	gboolean allowed = self->allow->len == 0;

	for (guint i = 0; i < self->deny->len; i++) {
		PbAddressRule *rule = self->deny->pdata[i];

		if (g_inet_address_mask_matches(rule->mask, address))
			return rule;
	}
	for (guint i = 0; i < self->allow->len && !allowed; i++) {
		PbAddressRule *rule = self->allow->pdata[i];

		allowed = g_inet_address_mask_matches(rule->mask, address);
	}
	return allowed ? NULL : self->outside;
}

/* ::ffff:a.b.c.d, the IPv4 client of a dual-stack socket, as the IPv4 address it is
 * (g_inet_address_get_is_ipv4_mapped() is GLib 2.76). */
GInetAddress *
pb_address_rules_unmap(GInetAddress *address)
{
	static const guint8 prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const guint8 *bytes = g_inet_address_to_bytes(address);

	if (g_inet_address_get_family(address) == G_SOCKET_FAMILY_IPV6 &&
	    memcmp(bytes, prefix, sizeof prefix) == 0)
		return g_inet_address_new_from_bytes(bytes + 12, G_SOCKET_FAMILY_IPV4);
	return g_object_ref(address);
}

/**
 * pb_address_rules_check:
 *
 * Returns: whether a public connection from @address may go on; a refusal is counted
 */
gboolean
pb_address_rules_check(PbAddressRules *self, GInetAddress *address)
{
	g_autoptr(GInetAddress) plain = pb_address_rules_unmap(address);
	PbAddressRule *rule = pb_address_rules_find(self, plain);
	gint64 now;

	if (rule == NULL)
		return TRUE;
	self->n_refused++;
	rule->n_refused++;
	now = g_get_monotonic_time();
	if (rule->logged == 0 || now - rule->logged >= PB_ADDRESS_RULES_LOG_INTERVAL) {
		g_autofree char *shown = g_inet_address_to_string(plain);
		const char *label = self->label != NULL ? self->label : "";
		const char *colon = self->label != NULL ? ": " : "";

		if (rule->mask != NULL)
			g_message("%s%sRefused %u %s, the last from %s: %s", label, colon,
				  rule->n_refused, self->what, shown, rule->text);
		else
			g_message("%s%sRefused %u %s, the last from %s: in no %sallow= range",
				  label, colon, rule->n_refused, self->what, shown, self->prefix);
		rule->n_refused = 0;
		rule->logged = now;
	}
	return FALSE;
}

/* Like pb_address_rules_check(), for an accepted @connection: one that has no IP address
 * (it cannot happen on a public port) goes on. */
gboolean
pb_address_rules_check_connection(PbAddressRules *self, GSocketConnection *connection)
{
	g_autoptr(GSocketAddress) remote = NULL;

	if (pb_address_rules_is_empty(self))
		return TRUE;
	remote = g_socket_connection_get_remote_address(connection, NULL);
	if (!G_IS_INET_SOCKET_ADDRESS(remote))
		return TRUE;
	return pb_address_rules_check(
	    self, g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote)));
}

/* @label: (nullable): what the rules are of, in front of their log lines ("Client alice") */
void
pb_address_rules_set_label(PbAddressRules *self, const char *label)
{
	g_free(self->label);
	self->label = g_strdup(label);
}

/* @what: what the log calls the connections refused ("connection(s) to the WebSocket
 * port"; public ones by default), @prefix: of the options' names in messages ("listen-") */
void
pb_address_rules_set_what(PbAddressRules *self, const char *what, const char *prefix)
{
	g_free(self->what);
	self->what = g_strdup(what);
	g_free(self->prefix);
	self->prefix = g_strdup(prefix);
}

/* Whether any range is set: rules without one take every address. */
gboolean
pb_address_rules_is_empty(PbAddressRules *self)
{
	return self == NULL || (self->allow->len == 0 && self->deny->len == 0);
}

/* Counts @n connections other rules (a [client] group's) refused, so that /metrics has
 * one total of the connections refused by address. */
void
pb_address_rules_add_refused(PbAddressRules *self, guint64 n)
{
	if (self != NULL)
		self->n_refused += n;
}

/* @max: public connections open at once from one IPv4 address or IPv6 /64; 0: any */
void
pb_address_rules_set_max_per_address(PbAddressRules *self, guint max)
{
	self->max_per_address = max;
}

/* Returns: (transfer full): what the per-address limit counts @address under: itself for
 * IPv4 (an IPv4-mapped one as IPv4), its /64 for IPv6 ("2001:db8:1:2::/64") */
char *
pb_address_rules_key(GInetAddress *address)
{
	g_autoptr(GInetAddress) plain = pb_address_rules_unmap(address);
	guint8 bytes[16];
	g_autoptr(GInetAddress) prefix = NULL;
	g_autofree char *text = NULL;

	if (g_inet_address_get_family(plain) != G_SOCKET_FAMILY_IPV6)
		return g_inet_address_to_string(plain);
	memcpy(bytes, g_inet_address_to_bytes(plain), sizeof bytes);
	memset(bytes + 8, 0, 8);
	prefix = g_inet_address_new_from_bytes(bytes, G_SOCKET_FAMILY_IPV6);
	text = g_inet_address_to_string(prefix);
	return g_strconcat(text, "/64", NULL);
}

static void
pb_address_hold_release_cb(gpointer data, GObject *where_the_object_was)
{
	PbAddressHold *hold = data;
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(hold->open, hold->key));

	if (n <= 1)
		g_hash_table_remove(hold->open, hold->key);
	else
		g_hash_table_insert(hold->open, g_strdup(hold->key), GUINT_TO_POINTER(n - 1));
	g_hash_table_unref(hold->open);
	g_free(hold->key);
	g_free(hold);
}

/* Whether another connection from @address may be open: over the limit it is counted and
 * logged (at most once per 10 s); taken, it counts until @lifetime goes. */
static gboolean
pb_address_rules_take(PbAddressRules *self, GInetAddress *address, GObject *lifetime)
{
	g_autofree char *key = pb_address_rules_key(address);
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(self->open, key));
	PbAddressHold *hold;
	gint64 now;

	if (n < self->max_per_address) {
		g_hash_table_insert(self->open, g_strdup(key), GUINT_TO_POINTER(n + 1));
		hold = g_new0(PbAddressHold, 1);
		hold->open = g_hash_table_ref(self->open);
		hold->key = g_steal_pointer(&key);
		g_object_weak_ref(lifetime, pb_address_hold_release_cb, hold);
		return TRUE;
	}
	self->n_refused++;
	self->n_over++;
	now = g_get_monotonic_time();
	if (self->over_logged == 0 || now - self->over_logged >= PB_ADDRESS_RULES_LOG_INTERVAL) {
		g_message("%s%sRefused %u public connection(s), the last from %s: %u open from "
			  "there (max-connections-per-address)",
			  self->label != NULL ? self->label : "", self->label != NULL ? ": " : "",
			  self->n_over, key, n);
		self->n_over = 0;
		self->over_logged = now;
	}
	return FALSE;
}

/**
 * pb_address_rules_admit:
 * @self: (nullable): no rules take every connection
 * @connection: what the tunnel keeps while the public connection is open
 * @origin: the public client's own connection, whose address counts
 *
 * The ranges (pb_address_rules_check_connection()), then the per-address limit.
 *
 * Returns: whether the public connection may go on; a refusal is counted and logged
 */
gboolean
pb_address_rules_admit(PbAddressRules *self, GSocketConnection *connection,
		       GSocketConnection *origin)
{
	g_autoptr(GSocketAddress) remote = NULL;

	if (self == NULL)
		return TRUE;
	if (!pb_address_rules_check_connection(self, origin))
		return FALSE;
	if (self->max_per_address == 0)
		return TRUE;
	remote = g_socket_connection_get_remote_address(origin, NULL);
	if (!G_IS_INET_SOCKET_ADDRESS(remote))
		return TRUE;
	return pb_address_rules_take(
	    self, g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote)),
	    G_OBJECT(connection));
}

guint64
pb_address_rules_get_n_refused(PbAddressRules *self)
{
	return self->n_refused;
}

/**
 * pb_address_rules_render_metrics:
 * @name: the counter's name
 * @help: its HELP line
 *
 * Returns: (transfer full): the refusals in Prometheus' text format, for GET /metrics
 */
char *
pb_address_rules_render_metrics(PbAddressRules *self, const char *name, const char *help)
{
	return g_strdup_printf("# HELP %s %s\n# TYPE %s counter\n%s %" G_GUINT64_FORMAT "\n", name,
			       help, name, name, self->n_refused);
}
