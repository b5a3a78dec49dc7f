/* SPDX-License-Identifier: ISC */
#include "config.h"

#include <string.h>

#include "pb-error.h"
#include "pb-hello.h"
#include "pb-log.h"
#include "pb-text.h"
#include "pb-upgrade.h"

/* Text from peers (src/pb-text.c) and the bounds a HELLO is checked against before
 * json-glib parses it (pb_hello_check_bounds()). */

static void
test_escape(void)
{
	const struct {
		const char *in;
		gssize len;
		const char *out;
	} cases[] = {
	    {"tunnel.example.com", -1, "tunnel.example.com"},
	    {"", -1, ""},
	    {"\x1b]0;pwned\x07", -1, "\\x1b]0;pwned\\x07"},
	    {"\x1b[2J\x1b[H", -1, "\\x1b[2J\\x1b[H"},
	    {"a\rb\nc\td\x7f", -1, "a\\x0db\\x0ac\\x09d\\x7f"},
	    {"nul\0inside", 10, "nul\\x00inside"},
	    /* C1 CSI (U+009B), a right-to-left override (U+202E), isolates (U+2066) */
	    {"\xc2\x9b"
	     "31m",
	     -1, "\\u009b31m"},
	    {"moc.\xe2\x80\xae"
	     "example",
	     -1, "moc.\\u202eexample"},
	    {"\xe2\x81\xa6x\xe2\x80\x8f", -1, "\\u2066x\\u200f"},
	    /* not UTF-8: each byte shown; a cut sequence too */
	    {"\xff\xfe", -1, "\\xff\\xfe"},
	    {"ok\xc3", -1, "ok\\xc3"},
	    {"\xc0\xaf", -1, "\\xc0\\xaf"}, /* overlong "/" */
	    /* what is printable stays, in any script */
	    {"Grüße, “ça va” — 日本", -1, "Grüße, “ça va” — 日本"},
	    {"back\\slash", -1, "back\\slash"},
	};

	g_test_summary("pb_text_escape(): every control character, DEL, C1 control, "
		       "bidirectional control and byte that is not UTF-8 becomes a visible "
		       "escape; the rest is kept; the result is valid UTF-8 and escaping it "
		       "again changes nothing");
	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *out = pb_text_escape(cases[i].in, cases[i].len);
		g_autofree char *again = pb_text_escape(out, -1);

		g_assert_cmpstr(out, ==, cases[i].out);
		g_assert_true(g_utf8_validate(out, -1, NULL));
		g_assert_cmpstr(again, ==, out);
	}
	{
		g_autofree char *null = pb_text_escape(NULL, -1);

		g_assert_cmpstr(null, ==, "");
	}
}

static void
test_escape_lines(void)
{
	g_autofree char *out = pb_text_escape_lines("one\ntwo\r\x1b[1A", -1);

	g_test_summary("pb_text_escape_lines() keeps newlines only");
	g_assert_cmpstr(out, ==, "one\ntwo\\x0d\\x1b[1A");
}

static void
test_truncate(void)
{
	g_autofree char *short_text = pb_text_truncate("abc", 3);
	g_autofree char *cut = pb_text_truncate("abcdefgh", 6);
	g_autofree char *multibyte = pb_text_truncate("ab€€€", 8); /* € is 3 bytes */
	g_autofree char *reason = NULL;
	g_autofree char *long_text = g_strnfill(400, 'x');

	g_test_summary("pb_text_truncate(): at most max bytes, cut between characters, with …");
	g_assert_cmpstr(short_text, ==, "abc");
	g_assert_cmpstr(cut, ==, "abc…");
	g_assert_cmpstr(multibyte, ==, "ab€…");
	reason = pb_text_truncate(long_text, 123);
	g_assert_cmpuint(strlen(reason), <=, 123);
	g_assert_true(g_str_has_suffix(reason, "…"));
	g_assert_true(g_utf8_validate(reason, -1, NULL));
}

static void
test_is_host(void)
{
	g_autofree char *label63 = g_strnfill(63, 'a');
	g_autofree char *label64 = g_strnfill(64, 'a');
	g_autofree char *long_name = NULL;
	const char *const good[] = {
	    "tunnel.example.com", "localhost", "example.com.", "xn--bcher-kva.example",
	    "a_b-c.example",	  "127.0.0.1", "::1",	       "2001:db8::42",
	    "10.0.0.1",
	};
	const char *const bad[] = {
	    "",
	    ".",
	    "a..b",
	    ".example",
	    "tunnel example.com",
	    "a/b",
	    "a:b@c",
	    "b\xc3\xbc"
	    "cher.example",
	    "\x1b]0;x\x07",
	    "host\r",
	    "[::1]",
	    "example.com:80",
	};

	g_test_summary("pb_text_is_host(): an IP address or a DNS name of ASCII labels of 1 to "
		       "63 characters, 253 at most; nothing with control characters, spaces, "
		       "brackets or ports");
	for (gsize i = 0; i < G_N_ELEMENTS(good); i++)
		g_assert_true(pb_text_is_host(good[i]));
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
		g_assert_false(pb_text_is_host(bad[i]));
	g_assert_true(pb_text_is_host(label63));
	g_assert_false(pb_text_is_host(label64));
	/* 3 × 63 + 61 + 3 dots = 253 bytes, the most; with a final dot 254 */
	long_name = g_strdup_printf("%s.%s.%s.%.61s.", label63, label63, label63, label63);
	g_assert_true(pb_text_is_host(long_name));
	long_name[253] = '\0';
	g_assert_true(pb_text_is_host(long_name));
	long_name[252] = 'b'; /* 254 bytes without the final dot */
	long_name[253] = 'c';
	g_assert_false(pb_text_is_host(long_name));
}

static gboolean
check_bounds(const char *json, gsize max_size, guint max_depth)
{
	g_autoptr(GError) error = NULL;
	gboolean ok =
	    pb_hello_check_bounds((const guint8 *)json, strlen(json), max_size, max_depth, &error);

	if (!ok)
		g_assert_error(error, PB_ERROR, PB_ERROR_PROTOCOL);
	else
		g_assert_no_error(error);
	return ok;
}

static char *
nested(guint depth)
{
	GString *json = g_string_new(NULL);

	for (guint i = 0; i < depth; i++)
		g_string_append_c(json, i % 2 == 0 ? '[' : '{');
	for (guint i = depth; i > 0; i--)
		g_string_append_c(json, (i - 1) % 2 == 0 ? ']' : '}');
	return g_string_free(json, FALSE);
}

static void
test_bounds_depth(void)
{
	g_autofree char *at_max = nested(PB_HELLO_MAX_DEPTH);
	g_autofree char *over = nested(PB_HELLO_MAX_DEPTH + 1);

	g_test_summary("pb_hello_check_bounds(): depth 0 and the maximum pass, one more level "
		       "is refused; brackets inside strings, escaped quotes included, do not "
		       "count; closing brackets never make the depth negative");
	g_assert_true(check_bounds("", 64, 0));
	g_assert_true(check_bounds("42", 64, 0));
	g_assert_false(check_bounds("[]", 64, 0));
	g_assert_true(check_bounds(at_max, 1024, PB_HELLO_MAX_DEPTH));
	g_assert_false(check_bounds(over, 1024, PB_HELLO_MAX_DEPTH));
	g_assert_true(check_bounds("{\"a\": \"[[[[{{{{\"}", 64, 1));
	g_assert_true(check_bounds("{\"a\": \"\\\"[[[[\\\\\"}", 64, 1));
	g_assert_false(check_bounds("{\"a\": \"\\\\\", \"b\": [[1]]}", 64, 2));
	g_assert_false(check_bounds("]]]]]]]][[", 64, 1));
	g_assert_true(check_bounds("]]]]]]]][", 64, 1));
}

static void
test_bounds_lexer(void)
{
	g_test_summary("pb_hello_check_bounds(): json-glib also takes 'strings' and comments, in "
		       "which a \" would hide brackets from the scan: refused outside strings, "
		       "taken inside them");
	g_assert_false(check_bounds("['\"', [[[[1]]]]]", 64, 8));
	g_assert_false(check_bounds("[/* \" */ [[1]]]", 64, 8));
	g_assert_false(check_bounds("[ // \"\n [[1]]]", 64, 8));
	g_assert_true(check_bounds("{\"url\": \"http://a/'b'\"}", 64, 8));
}

static void
test_bounds_size(void)
{
	g_autofree char *at_max = g_strnfill(PB_HELLO_MAX_SIZE, ' ');
	g_autofree char *over = g_strnfill(PB_HELLO_MAX_SIZE + 1, ' ');

	g_test_summary("pb_hello_check_bounds(): the maximum size passes, one byte more is "
		       "refused before anything is scanned");
	g_assert_true(check_bounds(at_max, PB_HELLO_MAX_SIZE, PB_HELLO_MAX_DEPTH));
	g_assert_false(check_bounds(over, PB_HELLO_MAX_SIZE, PB_HELLO_MAX_DEPTH));
}

static void
test_hello_refused(void)
{
	gsize huge = 1000 * 1000;
	g_autofree char *brackets = g_malloc(huge);
	g_autofree char *deep = nested(30000); /* 60 000 bytes: under the size bound */
	const char *const hostile[] = {
	    "{\"publicHost\": \"\\u001b]0;pwned\\u0007x\", \"tunnelPort\": 1}",
	    "{\"publicHost\": \"evil.example\\r\\nAccess URL: tcp://x\", \"tunnelPort\": 1}",
	    "{\"publicHost\": \"a b\", \"tunnelPort\": 1}",
	    "{\"publicHost\": \"\\u202emoc.example\", \"tunnelPort\": 1}",
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(PbHello) hello = NULL;

	g_test_summary("pb_hello_parse() refuses a publicHost that is no host name (escape "
		       "sequences, CR LF, spaces, bidi controls) with an escaped message, and "
		       "1 000 000 '[' or 30 000 levels without recursing");
	for (gsize i = 0; i < G_N_ELEMENTS(hostile); i++) {
		g_autoptr(GError) host_error = NULL;
		g_autoptr(PbHello) refused =
		    pb_hello_parse((const guint8 *)hostile[i], strlen(hostile[i]), &host_error);

		g_assert_null(refused);
		g_assert_error(host_error, PB_ERROR, PB_ERROR_PROTOCOL);
		g_assert_nonnull(strstr(host_error->message, "publicHost"));
		for (const char *p = host_error->message; *p != '\0'; p++)
			g_assert_cmpint((guint8)*p, >=, 0x20);
	}
	memset(brackets, '[', huge);
	hello = pb_hello_parse((const guint8 *)brackets, huge, &error);
	g_assert_null(hello);
	g_assert_error(error, PB_ERROR, PB_ERROR_PROTOCOL);
	g_clear_error(&error);
	hello = pb_hello_parse((const guint8 *)deep, strlen(deep), &error);
	g_assert_null(hello);
	g_assert_error(error, PB_ERROR, PB_ERROR_PROTOCOL);
	g_assert_cmpstr(error->message, ==, "HELLO nests deeper than 32 levels");
}

static void
test_upgrade_reason_escaped(void)
{
	const char answer[] = "HTTP/1.1 503 \x1b]0;pwned\x07"
			      "Full\r\n\r\n";
	g_autoptr(GError) error = NULL;

	g_test_summary("The reason phrase of a refused upgrade is shown escaped");
	g_assert_false(pb_upgrade_check_response(answer, strlen(answer), "key", &error));
	g_assert_nonnull(error);
	g_test_message("%s", error->message);
	for (const char *p = error->message; *p != '\0'; p++)
		g_assert_cmpint((guint8)*p, >=, 0x20);
}

static void
log_sink_cb(GLogLevelFlags level, const char *message, gpointer user_data)
{
	g_free(*(char **)user_data);
	*(char **)user_data = g_strdup(message);
}

static void
test_log_escaped(void)
{
	g_autofree char *seen = NULL;

	g_test_summary("The log writer escapes whatever a message quotes, newlines aside: the "
		       "safety net for a peer's words nobody escaped");
	pb_log_init(PB_LOG_NORMAL);
	pb_log_set_sink(log_sink_cb, &seen);
	g_message("Closing: %s", "\x1b]0;pwned\x07\r\nline two\xff");
	pb_log_set_sink(NULL, NULL);
	g_assert_cmpstr(seen, ==, "Closing: \\x1b]0;pwned\\x07\\x0d\nline two\\xff");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/text/escape", test_escape);
	g_test_add_func("/text/escape-lines", test_escape_lines);
	g_test_add_func("/text/truncate", test_truncate);
	g_test_add_func("/text/is-host", test_is_host);
	g_test_add_func("/hello/bounds/depth", test_bounds_depth);
	g_test_add_func("/hello/bounds/lexer", test_bounds_lexer);
	g_test_add_func("/hello/bounds/size", test_bounds_size);
	g_test_add_func("/hello/refused", test_hello_refused);
	g_test_add_func("/upgrade/reason-escaped", test_upgrade_reason_escaped);
	g_test_add_func("/log/escaped", test_log_escaped);
	return g_test_run();
}
