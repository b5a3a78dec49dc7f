/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-hello.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "pb-error.h"
#include "pb-name.h"
#include "pb-text.h"

/* Each protocol v2 feature's name on the wire (Piggyback-Features, HELLO's `features`). */
static const struct {
	PbFeatures feature;
	const char *name;
} pb_feature_names[] = {
    {PB_FEATURE_FLOW, "flow"},	       {PB_FEATURE_EOF, "eof"},	  {PB_FEATURE_PROXY_V1, "proxy-v1"},
    {PB_FEATURE_PROXY_V2, "proxy-v2"}, {PB_FEATURE_NAME, "name"}, {PB_FEATURE_SERVICES, "services"},
    {PB_FEATURE_RESUME, "resume"},
};

PbHello *
pb_hello_new(const char *public_host, guint16 tunnel_port, const char *version)
{
	PbHello *hello = g_new0(PbHello, 1);

	hello->public_host = g_strdup(public_host);
	hello->tunnel_port = tunnel_port;
	hello->version = g_strdup(version);
	return hello;
}

/* 32 lowercase hex digits, as the server makes them */
static gboolean
pb_hello_is_session(const char *value)
{
	gsize n = 0;

	for (; value[n] != '\0'; n++) {
		if (!g_ascii_isxdigit(value[n]) || g_ascii_isupper(value[n]))
			return FALSE;
	}
	return n == 32;
}

/**
 * pb_hello_check_bounds:
 * @json: JSON from a peer
 * @max_size: the most bytes it may have
 * @max_depth: how deeply arrays and objects may nest in it
 *
 * A scan before json-glib parses @json, in one pass without recursion: its size, and how
 * deep its arrays and objects nest (brackets in strings do not count). json-glib also
 * takes 'single-quoted strings' and comments, where a `"` would hide brackets from this
 * scan: so `'` and `/` outside a string are refused too (they are not JSON).
 *
 * Returns: %FALSE with %PB_ERROR_PROTOCOL if @json is too big, too deep or has them
 */
gboolean
pb_hello_check_bounds(const guint8 *json, gsize len, gsize max_size, guint max_depth,
		      GError **error)
{
	gboolean in_string = FALSE;
	guint depth = 0;

	if (len > max_size) {
		g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
			    "HELLO has %" G_GSIZE_FORMAT " bytes, more than %" G_GSIZE_FORMAT, len,
			    max_size);
		return FALSE;
	}
	for (gsize i = 0; i < len; i++) {
		if (in_string) {
			if (json[i] == '\\')
				i++; /* whatever it escapes, a quote included */
			else if (json[i] == '"')
				in_string = FALSE;
			continue;
		}
		switch (json[i]) {
		case '"':
			in_string = TRUE;
			break;
		case '[':
		case '{':
			if (++depth > max_depth) {
				g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
					    "HELLO nests deeper than %u levels", max_depth);
				return FALSE;
			}
			break;
		case ']':
		case '}':
			if (depth > 0)
				depth--;
			break;
		case '\'':
		case '/':
			g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
				    "HELLO is not valid JSON: “%c” outside a string", json[i]);
			return FALSE;
		default:
			break;
		}
	}
	return TRUE;
}

/* `urlScheme` and `urlPort`, where public clients reach names (serve --public-url): both
 * valid, or else ignored (the client then names the URL after the server it reaches). */
static void
pb_hello_parse_url(PbHello *hello, JsonObject *object)
{
	JsonNode *scheme = json_object_get_member(object, "urlScheme");
	JsonNode *port = json_object_get_member(object, "urlPort");

	if (scheme == NULL || json_node_get_value_type(scheme) != G_TYPE_STRING ||
	    (g_strcmp0(json_node_get_string(scheme), "http") != 0 &&
	     g_strcmp0(json_node_get_string(scheme), "https") != 0))
		return;
	if (port != NULL && (json_node_get_value_type(port) != G_TYPE_INT64 ||
			     json_node_get_int(port) < 0 || json_node_get_int(port) > G_MAXUINT16))
		return;
	hello->url_scheme = g_strdup(json_node_get_string(scheme));
	hello->url_port = port != NULL ? (guint16)json_node_get_int(port) : 0;
}

static void
pb_hello_service_free(PbHelloService *service)
{
	g_free(service->name);
	g_free(service);
}

/* Appends a further service: where it is reached. */
void
pb_hello_add_service(PbHello *hello, guint16 tunnel_port, const char *name)
{
	PbHelloService *service = g_new0(PbHelloService, 1);

	service->tunnel_port = tunnel_port;
	service->name = g_strdup(name);
	if (hello->services == NULL)
		hello->services =
		    g_ptr_array_new_with_free_func((GDestroyNotify)pb_hello_service_free);
	g_ptr_array_add(hello->services, service);
}

/* `services`: an array of objects with `tunnelPort` (0 only with a `name`) and, with the
 * `name` feature, a valid `name`; anything else is an error. */
static gboolean
pb_hello_parse_services(PbHello *hello, JsonObject *object, GError **error)
{
	JsonNode *node = json_object_get_member(object, "services");
	JsonArray *array;

	if (node == NULL)
		return TRUE;
	if (!JSON_NODE_HOLDS_ARRAY(node) ||
	    json_array_get_length(json_node_get_array(node)) > PB_HELLO_MAX_SERVICES) {
		g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
			    "HELLO's services is not an array of at most %d",
			    PB_HELLO_MAX_SERVICES);
		return FALSE;
	}
	array = json_node_get_array(node);
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *element = json_array_get_element(array, i);
		JsonObject *service =
		    JSON_NODE_HOLDS_OBJECT(element) ? json_node_get_object(element) : NULL;
		JsonNode *port = service != NULL ? json_object_get_member(service, "tunnelPort")
						 : NULL;
		JsonNode *name = service != NULL ? json_object_get_member(service, "name") : NULL;
		gboolean named = (hello->features & PB_FEATURE_NAME) && name != NULL &&
				 json_node_get_value_type(name) == G_TYPE_STRING &&
				 pb_name_is_valid(json_node_get_string(name));

		if (port == NULL || json_node_get_value_type(port) != G_TYPE_INT64 ||
		    json_node_get_int(port) < 0 || json_node_get_int(port) > G_MAXUINT16 ||
		    (json_node_get_int(port) == 0 && !named) ||
		    ((hello->features & PB_FEATURE_NAME) && !named)) {
			g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
				    "HELLO's service %u has no valid tunnelPort or name", i + 1);
			return FALSE;
		}
		pb_hello_add_service(hello, (guint16)json_node_get_int(port),
				     named ? json_node_get_string(name) : NULL);
	}
	return TRUE;
}

/**
 * pb_hello_parse:
 *
 * Parses a HELLO payload. It must be a JSON object with a string `publicHost` and an
 * integer `tunnelPort` in 1..65535 (or 0, names only, with the `name` feature); `publicHost` must
 * be a host name or an IP address, as it ends up on terminals (pb_text_is_host()); `version`,
 * `features` (an array of names), `window` and `session` are optional (with the `name` feature, a
 * valid `name` and a `domain` host name are not) and unknown members and feature names are ignored,
 * so later versions can add them freely. `flow` without a valid `window` is an error. A
 * HELLO over PB_HELLO_MAX_SIZE or nesting deeper than PB_HELLO_MAX_DEPTH is an error
 * before it is parsed (pb_hello_check_bounds()). Error messages quote the peer escaped.
 */
PbHello *
pb_hello_parse(const guint8 *json, gsize len, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(PbHello) hello = g_new0(PbHello, 1);
	g_autoptr(GError) error_local = NULL;
	JsonObject *object;
	JsonNode *node;

	if (!pb_hello_check_bounds(json, len, PB_HELLO_MAX_SIZE, PB_HELLO_MAX_DEPTH, error))
		return NULL;
	if (!json_parser_load_from_data(parser, (const char *)json, (gssize)len, &error_local)) {
		g_autofree char *shown = pb_text_escape(error_local->message, -1);

		g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL, "HELLO is not valid JSON: %s",
			    shown);
		return NULL;
	}
	node = json_parser_get_root(parser);
	if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
		g_set_error_literal(error, PB_ERROR, PB_ERROR_PROTOCOL,
				    "HELLO is not a JSON object");
		return NULL;
	}
	object = json_node_get_object(node);

	node = json_object_get_member(object, "publicHost");
	if (node == NULL || json_node_get_value_type(node) != G_TYPE_STRING ||
	    *json_node_get_string(node) == '\0') {
		g_set_error_literal(error, PB_ERROR, PB_ERROR_PROTOCOL,
				    "HELLO has no publicHost string");
		return NULL;
	}
	if (!pb_text_is_host(json_node_get_string(node))) {
		g_autofree char *escaped = pb_text_escape(json_node_get_string(node), -1);
		g_autofree char *shown = pb_text_truncate(escaped, 64);

		g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
			    "HELLO's publicHost “%s” is not a host name or an IP address", shown);
		return NULL;
	}
	hello->public_host = g_strdup(json_node_get_string(node));

	/* 0 is checked below: it means names only, and needs the name feature */
	node = json_object_get_member(object, "tunnelPort");
	if (node == NULL || json_node_get_value_type(node) != G_TYPE_INT64 ||
	    json_node_get_int(node) < 0 || json_node_get_int(node) > G_MAXUINT16) {
		g_set_error_literal(error, PB_ERROR, PB_ERROR_PROTOCOL,
				    "HELLO has no tunnelPort between 1 and 65535");
		return NULL;
	}
	hello->tunnel_port = (guint16)json_node_get_int(node);

	/* json-glib turns an escaped lone surrogate ("\ude00") into bytes that are not UTF-8:
	 * such a version is ignored, like any unusable optional member */
	node = json_object_get_member(object, "version");
	if (node != NULL && json_node_get_value_type(node) == G_TYPE_STRING &&
	    g_utf8_validate(json_node_get_string(node), -1, NULL))
		hello->version = g_strdup(json_node_get_string(node));

	node = json_object_get_member(object, "features");
	if (node != NULL && JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *array = json_node_get_array(node);

		for (guint i = 0; i < json_array_get_length(array); i++) {
			JsonNode *element = json_array_get_element(array, i);

			if (json_node_get_value_type(element) == G_TYPE_STRING)
				hello->features |= pb_features_parse(json_node_get_string(element));
		}
	}
	node = json_object_get_member(object, "window");
	if (node != NULL && json_node_get_value_type(node) == G_TYPE_INT64 &&
	    json_node_get_int(node) >= 1 && json_node_get_int(node) <= G_MAXUINT32)
		hello->window = (guint32)json_node_get_int(node);
	if ((hello->features & PB_FEATURE_FLOW) && hello->window == 0) {
		g_set_error_literal(error, PB_ERROR, PB_ERROR_PROTOCOL,
				    "HELLO has the flow feature but no window");
		return NULL;
	}
	/* an id we only ever send back in a header: hex digits only, or it is ignored */
	node = json_object_get_member(object, "session");
	if (node != NULL && json_node_get_value_type(node) == G_TYPE_STRING &&
	    pb_hello_is_session(json_node_get_string(node)))
		hello->session = g_strdup(json_node_get_string(node));
	if (hello->features & PB_FEATURE_NAME) {
		JsonNode *domain = json_object_get_member(object, "domain");

		node = json_object_get_member(object, "name");
		if (node == NULL || json_node_get_value_type(node) != G_TYPE_STRING ||
		    !pb_name_is_valid(json_node_get_string(node)) || domain == NULL ||
		    json_node_get_value_type(domain) != G_TYPE_STRING ||
		    !pb_text_is_host(json_node_get_string(domain))) {
			g_set_error_literal(
			    error, PB_ERROR, PB_ERROR_PROTOCOL,
			    "HELLO has the name feature but no valid name and domain");
			return NULL;
		}
		hello->name = g_strdup(json_node_get_string(node));
		hello->domain = g_strdup(json_node_get_string(domain));
		pb_hello_parse_url(hello, object);
	}
	if ((hello->features & PB_FEATURE_SERVICES) &&
	    !pb_hello_parse_services(hello, object, error))
		return NULL;
	if (hello->tunnel_port == 0 && hello->name == NULL) {
		g_set_error_literal(error, PB_ERROR, PB_ERROR_PROTOCOL,
				    "HELLO has no tunnelPort between 1 and 65535");
		return NULL;
	}
	/* `resume` needs `flow` and a grace period: without them it is not used */
	node = json_object_get_member(object, "grace");
	if (node != NULL && json_node_get_value_type(node) == G_TYPE_INT64 &&
	    json_node_get_int(node) >= 1 && json_node_get_int(node) <= PB_HELLO_MAX_GRACE)
		hello->grace = (guint32)json_node_get_int(node);
	if (!(hello->features & PB_FEATURE_FLOW) || hello->grace == 0)
		hello->features &= ~PB_FEATURE_RESUME;
	return g_steal_pointer(&hello);
}

char *
pb_hello_to_json(const PbHello *hello)
{
	g_autoptr(JsonBuilder) builder = json_builder_new_immutable();
	g_autoptr(JsonGenerator) generator = json_generator_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(builder);
	json_builder_set_member_name(builder, "publicHost");
	json_builder_add_string_value(builder, hello->public_host);
	json_builder_set_member_name(builder, "tunnelPort");
	json_builder_add_int_value(builder, hello->tunnel_port);
	json_builder_set_member_name(builder, "version");
	json_builder_add_string_value(builder, hello->version != NULL ? hello->version : "");
	if (hello->features != 0) {
		json_builder_set_member_name(builder, "features");
		json_builder_begin_array(builder);
		for (gsize i = 0; i < G_N_ELEMENTS(pb_feature_names); i++) {
			if (hello->features & pb_feature_names[i].feature)
				json_builder_add_string_value(builder, pb_feature_names[i].name);
		}
		json_builder_end_array(builder);
	}
	if (hello->session != NULL) {
		json_builder_set_member_name(builder, "session");
		json_builder_add_string_value(builder, hello->session);
	}
	if ((hello->features & PB_FEATURE_NAME) && hello->name != NULL) {
		json_builder_set_member_name(builder, "name");
		json_builder_add_string_value(builder, hello->name);
		json_builder_set_member_name(builder, "domain");
		json_builder_add_string_value(builder, hello->domain);
		if (hello->url_scheme != NULL) {
			json_builder_set_member_name(builder, "urlScheme");
			json_builder_add_string_value(builder, hello->url_scheme);
			json_builder_set_member_name(builder, "urlPort");
			json_builder_add_int_value(builder, hello->url_port);
		}
	}
	if (hello->features & PB_FEATURE_FLOW) {
		json_builder_set_member_name(builder, "window");
		json_builder_add_int_value(builder, hello->window);
	}
	if (hello->features & PB_FEATURE_RESUME) {
		json_builder_set_member_name(builder, "grace");
		json_builder_add_int_value(builder, hello->grace);
	}
	if ((hello->features & PB_FEATURE_SERVICES) && hello->services != NULL) {
		json_builder_set_member_name(builder, "services");
		json_builder_begin_array(builder);
		for (guint i = 0; i < hello->services->len; i++) {
			const PbHelloService *service = hello->services->pdata[i];

			json_builder_begin_object(builder);
			json_builder_set_member_name(builder, "tunnelPort");
			json_builder_add_int_value(builder, service->tunnel_port);
			if (service->name != NULL) {
				json_builder_set_member_name(builder, "name");
				json_builder_add_string_value(builder, service->name);
			}
			json_builder_end_object(builder);
		}
		json_builder_end_array(builder);
	}
	json_builder_end_object(builder);

	root = json_builder_get_root(builder);
	json_generator_set_root(generator, root);
	return json_generator_to_data(generator, NULL);
}

/* "tcp://host:port", with an IPv6 literal in brackets. */
char *
pb_hello_get_access_url(const PbHello *hello, const char *scheme)
{
	gboolean ipv6 = strchr(hello->public_host, ':') != NULL;

	return g_strdup_printf("%s://%s%s%s:%u", scheme, ipv6 ? "[" : "", hello->public_host,
			       ipv6 ? "]" : "", hello->tunnel_port);
}

/**
 * pb_features_parse:
 * @list: feature names separated by commas and spaces, as in the Piggyback-Features header
 *
 * Returns: the features named; unknown names are ignored
 */
PbFeatures
pb_features_parse(const char *list)
{
	g_auto(GStrv) names = g_strsplit_set(list != NULL ? list : "", ", \t", -1);
	PbFeatures features = 0;

	for (gsize i = 0; names[i] != NULL; i++) {
		for (gsize j = 0; j < G_N_ELEMENTS(pb_feature_names); j++) {
			if (g_ascii_strcasecmp(names[i], pb_feature_names[j].name) == 0)
				features |= pb_feature_names[j].feature;
		}
	}
	return features;
}

/* "flow, eof", as the Piggyback-Features header lists them; "" for none. */
char *
pb_features_to_string(PbFeatures features)
{
	g_autoptr(GString) list = g_string_new(NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(pb_feature_names); i++) {
		if (!(features & pb_feature_names[i].feature))
			continue;
		if (list->len > 0)
			g_string_append(list, ", ");
		g_string_append(list, pb_feature_names[i].name);
	}
	return g_string_free(g_steal_pointer(&list), FALSE);
}

void
pb_hello_free(PbHello *hello)
{
	if (hello == NULL)
		return;
	g_free(hello->public_host);
	g_free(hello->version);
	g_free(hello->session);
	g_free(hello->name);
	g_free(hello->domain);
	g_free(hello->url_scheme);
	g_clear_pointer(&hello->services, g_ptr_array_unref);
	g_free(hello);
}
