/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "pb-backoff.h"
#include "pb-error.h"
#include "pb-frame.h"
#include "pb-hello.h"
#include "pb-proxy-header.h"
#include "pb-proxy.h"
#include "pb-server-url.h"
#include "pb-token.h"
#include "pb-upgrade.h"

static void
test_frame_round_trip(void)
{
	const guint8 payload[] = {0x00, 0xff, 0x80, 0x7f, 'x'};
	g_autoptr(GBytes) message =
	    pb_frame_new(PB_FRAME_DATA, 0x01020304, payload, sizeof payload);
	g_autoptr(GError) error = NULL;
	const guint8 *raw = g_bytes_get_data(message, NULL);
	PbFrame frame;

	g_test_summary("A frame is type, connId big endian, payload; parsing gives them back");
	g_assert_cmpuint(g_bytes_get_size(message), ==, PB_FRAME_HEADER_SIZE + sizeof payload);
	g_assert_cmpuint(raw[0], ==, 0x02);
	g_assert_cmpuint(raw[1], ==, 0x01);
	g_assert_cmpuint(raw[4], ==, 0x04);
	g_assert_true(pb_frame_parse(message, &frame, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(frame.type, ==, PB_FRAME_DATA);
	g_assert_cmpuint(frame.conn_id, ==, 0x01020304);
	g_assert_cmpmem(frame.payload, frame.payload_len, payload, sizeof payload);
}

static void
test_frame_empty_payload(void)
{
	g_autoptr(GBytes) message = pb_frame_new(PB_FRAME_CLOSE, G_MAXUINT32, NULL, 0);
	g_autoptr(GError) error = NULL;
	PbFrame frame;

	g_test_summary("OPEN and CLOSE are bare headers; the largest connId survives");
	g_assert_true(pb_frame_parse(message, &frame, &error));
	g_assert_cmpuint(frame.type, ==, PB_FRAME_CLOSE);
	g_assert_cmpuint(frame.conn_id, ==, G_MAXUINT32);
	g_assert_cmpuint(frame.payload_len, ==, 0);
}

static void
test_frame_short(void)
{
	g_test_summary("Messages shorter than 5 bytes are protocol errors");
	for (gsize len = 0; len < PB_FRAME_HEADER_SIZE; len++) {
		const guint8 raw[PB_FRAME_HEADER_SIZE] = {PB_FRAME_DATA, 0, 0, 0, 1};
		g_autoptr(GBytes) message = g_bytes_new(raw, len);
		g_autoptr(GError) error = NULL;
		PbFrame frame;

		g_assert_false(pb_frame_parse(message, &frame, &error));
		g_assert_error(error, PB_ERROR, PB_ERROR_PROTOCOL);
	}
}

static void
test_frame_unknown_type(void)
{
	const guint8 raw[] = {0x7e, 0, 0, 0, 9, 'a'};
	g_autoptr(GBytes) message = g_bytes_new_static(raw, sizeof raw);
	PbFrame frame;

	g_test_summary("The parser accepts unknown types; the tunnel drops them (PROTOCOL.md)");
	g_assert_true(pb_frame_parse(message, &frame, NULL));
	g_assert_cmpuint(frame.type, ==, 0x7e);
	g_assert_cmpuint(frame.conn_id, ==, 9);
}

static void
test_hello_round_trip(void)
{
	g_autoptr(PbHello) hello = pb_hello_new("tunnel.example.com", 9000, "2.0.0");
	g_autofree char *json = pb_hello_to_json(hello);
	g_autoptr(PbHello) parsed = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *tcp = NULL;
	g_autofree char *http = NULL;

	g_test_summary("HELLO carries publicHost, tunnelPort, version; the access URLs follow");
	g_assert_nonnull(strstr(json, "\"publicHost\""));
	g_assert_nonnull(strstr(json, "\"tunnelPort\""));
	parsed = pb_hello_parse((const guint8 *)json, strlen(json), &error);
	g_assert_no_error(error);
	g_assert_cmpstr(parsed->public_host, ==, "tunnel.example.com");
	g_assert_cmpuint(parsed->tunnel_port, ==, 9000);
	g_assert_cmpstr(parsed->version, ==, "2.0.0");
	tcp = pb_hello_get_access_url(parsed, "tcp");
	http = pb_hello_get_access_url(parsed, "http");
	g_assert_cmpstr(tcp, ==, "tcp://tunnel.example.com:9000");
	g_assert_cmpstr(http, ==, "http://tunnel.example.com:9000");
}

static void
test_hello_extra_members(void)
{
	const char *json = "{\"publicHost\":\"::1\",\"tunnelPort\":1,\"features\":[\"flow\"],"
			   "\"window\":262144}";
	g_autoptr(PbHello) hello = pb_hello_parse((const guint8 *)json, strlen(json), NULL);
	g_autofree char *url = NULL;

	g_test_summary("Unknown members are ignored; version is optional; IPv6 gets brackets");
	g_assert_nonnull(hello);
	g_assert_null(hello->version);
	url = pb_hello_get_access_url(hello, "tcp");
	g_assert_cmpstr(url, ==, "tcp://[::1]:1");
}

static void
test_hello_names_only(void)
{
	const char *json = "{\"publicHost\":\"h\",\"tunnelPort\":0,\"features\":[\"name\"],"
			   "\"name\":\"alpha\",\"domain\":\"example.test\","
			   "\"urlScheme\":\"https\",\"urlPort\":8443}";
	const char *bad_urls[] = {
	    "\"urlScheme\":\"ftp\",\"urlPort\":21",
	    "\"urlScheme\":\"https\",\"urlPort\":65536",
	    "\"urlScheme\":\"https\",\"urlPort\":-1",
	    "\"urlScheme\":\"https\",\"urlPort\":\"8443\"",
	    "\"urlScheme\":7",
	};
	g_autoptr(PbHello) hello = pb_hello_parse((const guint8 *)json, strlen(json), NULL);
	g_autofree char *written = NULL;
	g_autoptr(PbHello) again = NULL;

	g_test_summary("tunnelPort 0 means names only and needs a name; urlScheme and urlPort "
		       "(serve --public-url) come both valid or are ignored");
	g_assert_nonnull(hello);
	g_assert_cmpuint(hello->tunnel_port, ==, 0);
	g_assert_cmpstr(hello->url_scheme, ==, "https");
	g_assert_cmpuint(hello->url_port, ==, 8443);
	written = pb_hello_to_json(hello);
	again = pb_hello_parse((const guint8 *)written, strlen(written), NULL);
	g_assert_nonnull(again);
	g_assert_cmpstr(again->url_scheme, ==, "https");
	g_assert_cmpuint(again->url_port, ==, 8443);
	for (gsize i = 0; i < G_N_ELEMENTS(bad_urls); i++) {
		g_autofree char *with = g_strdup_printf(
		    "{\"publicHost\":\"h\",\"tunnelPort\":80,\"features\":[\"name\"],"
		    "\"name\":\"alpha\",\"domain\":\"example.test\",%s}",
		    bad_urls[i]);
		g_autoptr(PbHello) ignored =
		    pb_hello_parse((const guint8 *)with, strlen(with), NULL);

		g_test_message("case %s", with);
		g_assert_nonnull(ignored);
		g_assert_null(ignored->url_scheme);
	}
}

static void
test_hello_malformed(void)
{
	const char *cases[] = {
	    "",
	    "not json",
	    "[1,2]",
	    "\"publicHost\"",
	    "{}",
	    "{\"publicHost\":\"h\"}",
	    "{\"tunnelPort\":80}",
	    "{\"publicHost\":7,\"tunnelPort\":80}",
	    "{\"publicHost\":\"\",\"tunnelPort\":80}",
	    "{\"publicHost\":\"h\",\"tunnelPort\":\"80\"}",
	    "{\"publicHost\":\"h\",\"tunnelPort\":0}",
	    /* names only needs the name feature and a name */
	    "{\"publicHost\":\"h\",\"tunnelPort\":0,\"name\":\"alpha\",\"domain\":\"d\"}",
	    "{\"publicHost\":\"h\",\"tunnelPort\":65536}",
	    "{\"publicHost\":\"h\",\"tunnelPort\":80.5}",
	    "{\"publicHost\":\"h\",\"tunnelPort\":-1}",
	};

	g_test_summary("A HELLO that is not an object with publicHost and tunnelPort is refused");
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(PbHello) hello =
		    pb_hello_parse((const guint8 *)cases[i], strlen(cases[i]), &error);

		g_test_message("case %s", cases[i]);
		g_assert_null(hello);
		g_assert_error(error, PB_ERROR, PB_ERROR_PROTOCOL);
	}
}

static void
test_server_url_resolve(void)
{
	const struct {
		const char *input;
		const char *expected;
	} cases[] = {
	    {"localhost:8081", "ws://localhost:8081/http-stream"},
	    {"ws://localhost:8081", "ws://localhost:8081/http-stream"},
	    {"wss://tunnel.example.com", "wss://tunnel.example.com/http-stream"},
	    {"wss://tunnel.example.com/custom-path", "wss://tunnel.example.com/custom-path"},
	    {"ws://localhost:8081/", "ws://localhost:8081/http-stream"},
	    {"127.0.0.1:9", "ws://127.0.0.1:9/http-stream"},
	    {"[::1]:8080", "ws://[::1]:8080/http-stream"},
	    {"tunnel.example.com", "ws://tunnel.example.com/http-stream"},
	    {"https://t.example/p?x=1", "wss://t.example/p?x=1"},
	};

	g_test_summary("The --server forms of the issue's table resolve as documented");
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *url = pb_server_url_resolve(cases[i].input, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(url, ==, cases[i].expected);
	}
}

static void
test_server_url_bad(void)
{
	const char *cases[] = {
	    "",		  "ftp://x", "ws://", "localhost:99999", "localhost:port", "ws://host:0",
	    "http://[::1"};

	g_test_summary("Unparsable servers are refused with a message, not crashed on");
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *url = pb_server_url_resolve(cases[i], &error);

		g_test_message("case %s", cases[i]);
		g_assert_null(url);
		g_assert_nonnull(error);
		g_assert_nonnull(error->message);
	}
}

/* RFC 6455 §1.3's example key and the answer it must get. */
#define RFC_KEY	   "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static void
test_upgrade_accept(void)
{
	g_autofree char *accept = pb_upgrade_expected_accept(RFC_KEY);
	const char *ok = "HTTP/1.1 101 Switching Protocols\r\n"
			 "Upgrade: websocket\r\n"
			 "Connection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
			 "\r\n";
	g_autoptr(GError) error = NULL;

	g_test_summary("A 101 with the right Sec-WebSocket-Accept (RFC 6455's example) is taken");
	g_assert_cmpstr(accept, ==, RFC_ACCEPT);
	g_assert_true(pb_upgrade_check_response(ok, strlen(ok), RFC_KEY, &error));
	g_assert_no_error(error);
}

static void
test_upgrade_refused(void)
{
	const struct {
		const char *text;
		int code;
		const char *needle;
	} cases[] = {
	    {"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", PB_ERROR_UNAUTHORIZED,
	     "refused the token"},
	    {"HTTP/1.1 403 Forbidden\r\n\r\n", PB_ERROR_UNAUTHORIZED, "does not allow"},
	    {"HTTP/1.1 503 Service Unavailable\r\n\r\n", PB_ERROR_REFUSED, "503"},
	    {"HTTP/1.1 404 Not Found\r\n\r\n", PB_ERROR_REFUSED, "404"},
	    {"SSH-2.0-OpenSSH_9.2\r\n\r\n", PB_ERROR_PROTOCOL, "not HTTP"},
	    {"", PB_ERROR_PROTOCOL, "not HTTP"},
	    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
	     "Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
	     PB_ERROR_PROTOCOL, "handshake is invalid"},
	    {"HTTP/1.1 101 Switching Protocols\r\nConnection: "
	     "Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
	     PB_ERROR_PROTOCOL, "handshake is invalid"},
	    {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
	     "Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT
	     "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
	     PB_ERROR_PROTOCOL, "extension"},
	};

	g_test_summary("Refusals, a wrong accept value and extensions are errors with a reason; "
		       "401 and 403 are permanent (PB_ERROR_UNAUTHORIZED)");
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;

		g_test_message("case %" G_GSIZE_FORMAT, i);
		g_assert_false(pb_upgrade_check_response(cases[i].text, strlen(cases[i].text),
							 RFC_KEY, &error));
		g_assert_error(error, PB_ERROR, cases[i].code);
		g_assert_nonnull(strstr(error->message, cases[i].needle));
	}
}

static char *
write_temp(const char *dir, const char *name, const char *contents, gssize len)
{
	char *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(path, contents, len, NULL));
	return path;
}

static void
test_token_file(void)
{
	const struct {
		const char *contents;
		gssize len;
		const char *expected; /* NULL: an error */
	} cases[] = {
	    {"s3cret", -1, "s3cret"},
	    {"s3cret\n", -1, "s3cret"},
	    {"s3cret\r\n", -1, "s3cret"},
	    {"s3cret\n\n", -1, NULL},
	    {"", -1, NULL},
	    {"\n", -1, NULL},
	    {"two words\n", -1, NULL},
	    {"tab\there", -1, NULL},
	    {"caf\xc3\xa9", -1, NULL},
	    {"nul\0byte", 8, NULL},
	};
	g_autofree char *dir = g_dir_make_tmp("pb-token-XXXXXX", NULL);
	g_autofree char *missing = g_build_filename(dir, "missing", NULL);
	g_autoptr(GError) error = NULL;

	g_test_summary("A token file loses one trailing newline; empty, binary, spaced or "
		       "missing files are errors with the file's name");
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *path = write_temp(dir, "token", cases[i].contents, cases[i].len);
		g_autoptr(GError) case_error = NULL;
		g_autofree char *token = pb_token_read_file(path, &case_error);

		g_test_message("case %" G_GSIZE_FORMAT, i);
		g_assert_cmpstr(token, ==, cases[i].expected);
		if (cases[i].expected == NULL) {
			g_assert_nonnull(case_error);
			g_assert_nonnull(strstr(case_error->message, path));
		}
		g_unlink(path);
	}
	g_assert_null(pb_token_read_file(missing, &error));
	g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
	g_rmdir(dir);
}

static void
test_token_authorize(void)
{
	g_test_summary("Only `Bearer <the token>` is let in (scheme in any case)");
	g_assert_true(pb_token_equal("s3cret", "s3cret"));
	g_assert_false(pb_token_equal("s3cret", "s3creT"));
	g_assert_false(pb_token_equal("s3cret", "s3cret2"));
	g_assert_false(pb_token_equal("s3cret", ""));
	g_assert_true(pb_token_authorize("Bearer s3cret", "s3cret"));
	g_assert_true(pb_token_authorize("bearer s3cret", "s3cret"));
	g_assert_true(pb_token_authorize("BEARER  s3cret", "s3cret"));
	g_assert_false(pb_token_authorize(NULL, "s3cret"));
	g_assert_false(pb_token_authorize("", "s3cret"));
	g_assert_false(pb_token_authorize("Bearer", "s3cret"));
	g_assert_false(pb_token_authorize("Bearer ", "s3cret"));
	g_assert_false(pb_token_authorize("s3cret", "s3cret"));
	g_assert_false(pb_token_authorize("Basic s3cret", "s3cret"));
	g_assert_false(pb_token_authorize("Bearer s3cre", "s3cret"));
	g_assert_false(pb_token_authorize("Bearer s3cretX", "s3cret"));
}

static void
test_hello_session(void)
{
	const char *valid = "0123456789abcdef0123456789abcdef";
	const char *ignored[] = {"0123456789ABCDEF0123456789ABCDEF", "0123", "x\r\nEvil: 1", ""};
	g_autoptr(PbHello) hello = pb_hello_new("example.com", 9000, "2.0.0");
	g_autofree char *json = NULL;
	g_autoptr(PbHello) parsed = NULL;

	g_test_summary("HELLO carries the session id; anything but 32 lowercase hex digits is "
		       "ignored, so it can never inject a header when sent back");
	hello->session = g_strdup(valid);
	json = pb_hello_to_json(hello);
	parsed = pb_hello_parse((const guint8 *)json, strlen(json), NULL);
	g_assert_nonnull(parsed);
	g_assert_cmpstr(parsed->session, ==, valid);
	for (gsize i = 0; i < G_N_ELEMENTS(ignored); i++) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		g_autoptr(JsonGenerator) generator = json_generator_new();
		g_autoptr(JsonNode) root = NULL;
		g_autofree char *text = NULL;
		g_autoptr(PbHello) other = NULL;

		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "publicHost");
		json_builder_add_string_value(builder, "example.com");
		json_builder_set_member_name(builder, "tunnelPort");
		json_builder_add_int_value(builder, 9000);
		json_builder_set_member_name(builder, "session");
		json_builder_add_string_value(builder, ignored[i]);
		json_builder_end_object(builder);
		root = json_builder_get_root(builder);
		json_generator_set_root(generator, root);
		text = json_generator_to_data(generator, NULL);
		other = pb_hello_parse((const guint8 *)text, strlen(text), NULL);
		g_assert_nonnull(other);
		g_assert_null(other->session);
	}
}

static void
test_backoff(void)
{
	guint previous = 0;

	g_test_summary("Reconnection waits start near 0.5 s, double, carry ±25 % jitter and stop "
		       "at 30 s");
	g_assert_cmpuint(pb_backoff_delay_ms(0, 0.0), ==, 375);
	g_assert_cmpuint(pb_backoff_delay_ms(0, 0.5), ==, 500);
	g_assert_cmpuint(pb_backoff_delay_ms(0, 0.999), <, 625);
	g_assert_cmpuint(pb_backoff_delay_ms(1, 0.5), ==, 1000);
	g_assert_cmpuint(pb_backoff_delay_ms(3, 0.5), ==, 4000);
	for (guint attempt = 0; attempt < 100; attempt++) {
		guint delay = pb_backoff_delay_ms(attempt, 0.5);

		g_assert_cmpuint(delay, >=, previous);
		g_assert_cmpuint(delay, <=, PB_BACKOFF_MAX_MS);
		previous = delay;
	}
	g_assert_cmpuint(previous, ==, PB_BACKOFF_MAX_MS);
	g_assert_cmpuint(pb_backoff_delay_ms(G_MAXUINT, 0.0), ==, 24000);
	g_assert_cmpuint(pb_backoff_delay_ms(G_MAXUINT, 1.0), ==, PB_BACKOFF_MAX_MS);
}

/* What @resolver says for @uri: the first proxy URI ("direct://" for none). */
static char *
proxy_lookup(GProxyResolver *resolver, const char *uri)
{
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) proxies = g_proxy_resolver_lookup(resolver, uri, NULL, &error);

	g_assert_no_error(error);
	return g_strdup(proxies[0]);
}

static void
test_proxy_environ(void)
{
	const char *const none[] = {"HOME=/root", "http_proxy=", NULL};
	const char *const set[] = {"https_proxy=http://proxy.example:3128",
				   "HTTP_PROXY=http://plain.example:8080",
				   "no_proxy=localhost, .internal.example", NULL};
	const char *const all[] = {"ALL_PROXY=socks5://127.0.0.1:1080", NULL};
	g_autoptr(GProxyResolver) resolver = NULL;
	g_autoptr(GProxyResolver) fallback = NULL;
	g_autofree char *wss = NULL;
	g_autofree char *ws = NULL;
	g_autofree char *direct = NULL;
	g_autofree char *socks = NULL;

	g_test_summary("Outside a desktop session the server is reached through the proxy the "
		       "environment names (https_proxy for wss://, http_proxy for ws://, "
		       "all_proxy, no_proxy), and directly when none is set");
	g_assert_null(pb_proxy_resolver_new_from_environ(none));
	resolver = pb_proxy_resolver_new_from_environ(set);
	g_assert_nonnull(resolver);
	wss = proxy_lookup(resolver, "wss://tunnel.example:443");
	g_assert_cmpstr(wss, ==, "http://proxy.example:3128");
	ws = proxy_lookup(resolver, "ws://tunnel.example:8080");
	g_assert_cmpstr(ws, ==, "http://plain.example:8080");
	direct = proxy_lookup(resolver, "wss://db.internal.example:443");
	g_assert_cmpstr(direct, ==, "direct://");
	fallback = pb_proxy_resolver_new_from_environ(all);
	socks = proxy_lookup(fallback, "wss://tunnel.example:443");
	g_assert_cmpstr(socks, ==, "socks5://127.0.0.1:1080");
}

static GSocketAddress *
socket_address(const char *ip, guint16 port)
{
	g_autoptr(GInetAddress) address = g_inet_address_new_from_string(ip);

	return g_inet_socket_address_new(address, port);
}

/* The header pb_proxy_header_write() makes for @from → @to, as a string (v1). */
static char *
proxy_v1(const char *from, guint16 from_port, const char *to, guint16 to_port)
{
	g_autoptr(GSocketAddress) source = from != NULL ? socket_address(from, from_port) : NULL;
	g_autoptr(GSocketAddress) destination = to != NULL ? socket_address(to, to_port) : NULL;
	guint8 buf[PB_PROXY_HEADER_MAX];
	gsize len = pb_proxy_header_write(buf, PB_FEATURE_PROXY_V1, source, destination);

	g_assert_cmpuint(len, <=, 107); /* the specification's longest line */
	return g_strndup((const char *)buf, len);
}

static void
test_proxy_header_v1(void)
{
	g_autofree char *tcp4 = proxy_v1("203.0.113.5", 51234, "192.0.2.1", 9000);
	g_autofree char *tcp6 = proxy_v1("2001:db8::5", 51234, "2001:db8::1", 9000);
	g_autofree char *mapped = proxy_v1("::ffff:203.0.113.5", 1, "::ffff:192.0.2.1", 2);
	g_autofree char *mixed = proxy_v1("203.0.113.5", 1, "2001:db8::1", 2);
	g_autofree char *unknown = proxy_v1(NULL, 0, NULL, 0);
	g_autofree char *longest = proxy_v1("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535,
					    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);

	g_test_summary("PROXY protocol v1: TCP4 and TCP6 lines, a dual-stack port's IPv4 client "
		       "as TCP4, UNKNOWN without both addresses of one family");
	g_assert_cmpstr(tcp4, ==, "PROXY TCP4 203.0.113.5 192.0.2.1 51234 9000\r\n");
	g_assert_cmpstr(tcp6, ==, "PROXY TCP6 2001:db8::5 2001:db8::1 51234 9000\r\n");
	g_assert_cmpstr(mapped, ==, "PROXY TCP4 203.0.113.5 192.0.2.1 1 2\r\n");
	g_assert_cmpstr(mixed, ==, "PROXY UNKNOWN\r\n");
	g_assert_cmpstr(unknown, ==, "PROXY UNKNOWN\r\n");
	g_assert_true(g_str_has_suffix(longest, " 65535 65535\r\n"));
}

static void
test_proxy_header_v2(void)
{
	static const guint8 tcp4[] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
				      0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 203,	0,    113,  5,
				      192,  0,	  2,	1,    0xc8, 0x22, 0x23, 0x28};
	g_autoptr(GSocketAddress) from4 = socket_address("::ffff:203.0.113.5", 51234);
	g_autoptr(GSocketAddress) to4 = socket_address("192.0.2.1", 9000);
	g_autoptr(GSocketAddress) from6 = socket_address("2001:db8::5", 51234);
	g_autoptr(GSocketAddress) to6 = socket_address("2001:db8::1", 9000);
	guint8 buf[PB_PROXY_HEADER_MAX];
	gsize len;

	g_test_summary(
	    "PROXY protocol v2: the signature, version and command, TCP over IPv4 "
	    "(12 address bytes) or IPv6 (36), ports big-endian; LOCAL without addresses");
	len = pb_proxy_header_write(buf, PB_FEATURE_PROXY_V2, from4, to4);
	g_assert_cmpmem(buf, len, tcp4, sizeof tcp4);

	len = pb_proxy_header_write(buf, PB_FEATURE_PROXY_V2, from6, to6);
	g_assert_cmpuint(len, ==, 16 + 36);
	g_assert_cmpmem(buf, 12, tcp4, 12);
	g_assert_cmpuint(buf[12], ==, 0x21);
	g_assert_cmpuint(buf[13], ==, 0x21);
	g_assert_cmpuint(buf[15], ==, 36);
	g_assert_cmpuint(buf[16], ==, 0x20);	       /* 2001:… */
	g_assert_cmpuint(buf[16 + 16 + 15], ==, 0x01); /* …::1 */

	len = pb_proxy_header_write(buf, PB_FEATURE_PROXY_V2, NULL, to6);
	g_assert_cmpuint(len, ==, 16);
	g_assert_cmpuint(buf[12], ==, 0x20);
	g_assert_cmpuint(buf[13], ==, 0x00);
}

static void
test_features_names(void)
{
	g_autofree char *all = pb_features_to_string(PB_FEATURES_ALL | PB_FEATURE_PROXY_V2);
	g_autofree char *none = pb_features_to_string(0);

	g_test_summary("Feature names on the wire: flow, eof, proxy-v1, proxy-v2, resume; unknown "
		       "ones are ignored");
	g_assert_cmpstr(all, ==, "flow, eof, proxy-v2, resume");
	g_assert_cmpstr(none, ==, "");
	g_assert_cmpint(pb_features_parse("proxy-v1, zip,FLOW"), ==,
			PB_FEATURE_PROXY_V1 | PB_FEATURE_FLOW);
	g_assert_cmpint(pb_features_parse(all), ==, PB_FEATURES_ALL | PB_FEATURE_PROXY_V2);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/frame/round-trip", test_frame_round_trip);
	g_test_add_func("/frame/empty-payload", test_frame_empty_payload);
	g_test_add_func("/frame/short", test_frame_short);
	g_test_add_func("/frame/unknown-type", test_frame_unknown_type);
	g_test_add_func("/hello/round-trip", test_hello_round_trip);
	g_test_add_func("/hello/extra-members", test_hello_extra_members);
	g_test_add_func("/hello/malformed", test_hello_malformed);
	g_test_add_func("/hello/names-only", test_hello_names_only);
	g_test_add_func("/server-url/resolve", test_server_url_resolve);
	g_test_add_func("/server-url/bad", test_server_url_bad);
	g_test_add_func("/upgrade/accept", test_upgrade_accept);
	g_test_add_func("/upgrade/refused", test_upgrade_refused);
	g_test_add_func("/token/file", test_token_file);
	g_test_add_func("/token/authorize", test_token_authorize);
	g_test_add_func("/backoff", test_backoff);
	g_test_add_func("/proxy-header/v1", test_proxy_header_v1);
	g_test_add_func("/proxy-header/v2", test_proxy_header_v2);
	g_test_add_func("/features/names", test_features_names);
	g_test_add_func("/hello/session", test_hello_session);
	g_test_add_func("/proxy/environ", test_proxy_environ);
	return g_test_run();
}
