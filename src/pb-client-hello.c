/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-client-hello.h"

#include <string.h>

/*
 * A TLS ClientHello's server_name (SNI, RFC 6066 §3), from the first bytes of a connection:
 * the handshake message may be split over several records (RFC 8446 §5.1), and the records
 * over several reads. Nothing else of the hello is checked: the TLS library does that.
 */

#define PB_TLS_RECORD_HANDSHAKE	  0x16
#define PB_TLS_CLIENT_HELLO	  0x01
#define PB_TLS_EXT_SERVER_NAME	  0x0000
#define PB_TLS_SNI_HOST_NAME	  0x00
#define PB_TLS_RECORD_HEADER_SIZE 5

/* A reader over a byte range that fails, once, on reading past its end. */
typedef struct {
	const guint8 *data;
	gsize len;
	gsize pos;
	gboolean short_read;
} PbReader;

static guint
pb_reader_uint(PbReader *r, gsize size)
{
	guint value = 0;

	if (r->short_read || r->len - r->pos < size) {
		r->short_read = TRUE;
		return 0;
	}
	for (gsize i = 0; i < size; i++)
		value = value << 8 | r->data[r->pos++];
	return value;
}

static void
pb_reader_skip(PbReader *r, gsize size)
{
	if (r->short_read || r->len - r->pos < size) {
		r->short_read = TRUE;
		return;
	}
	r->pos += size;
}

/* A sub-reader of the next @size bytes, which @r skips. */
static PbReader
pb_reader_sub(PbReader *r, gsize size)
{
	PbReader sub = {NULL, 0, 0, TRUE};

	if (r->short_read || r->len - r->pos < size) {
		r->short_read = TRUE;
		return sub;
	}
	sub.data = r->data + r->pos;
	sub.len = size;
	sub.short_read = FALSE;
	r->pos += size;
	return sub;
}

/* The host_name of a server_name extension's body; NULL if it has none or it is not text. */
static char *
pb_client_hello_server_name(PbReader *ext)
{
	PbReader list = pb_reader_sub(ext, pb_reader_uint(ext, 2));

	while (!list.short_read && list.pos < list.len) {
		guint type = pb_reader_uint(&list, 1);
		PbReader name = pb_reader_sub(&list, pb_reader_uint(&list, 2));

		if (list.short_read || type != PB_TLS_SNI_HOST_NAME)
			continue;
		if (name.len == 0 || memchr(name.data, '\0', name.len) != NULL)
			return NULL;
		for (gsize i = 0; i < name.len; i++) {
			if (g_ascii_iscntrl(name.data[i]) || name.data[i] == ' ' ||
			    name.data[i] >= 0x80)
				return NULL;
		}
		return g_strndup((const char *)name.data, name.len);
	}
	return NULL;
}

/* The server_name of a whole ClientHello body; NULL when it has none. */
static char *
pb_client_hello_body(const guint8 *body, gsize len)
{
	PbReader r = {body, len, 0, FALSE};
	PbReader extensions;

	pb_reader_skip(&r, 2 + 32);		   /* legacy_version, random */
	pb_reader_skip(&r, pb_reader_uint(&r, 1)); /* legacy_session_id */
	pb_reader_skip(&r, pb_reader_uint(&r, 2)); /* cipher_suites */
	pb_reader_skip(&r, pb_reader_uint(&r, 1)); /* legacy_compression_methods */
	extensions = pb_reader_sub(&r, pb_reader_uint(&r, 2));
	while (!extensions.short_read && extensions.pos < extensions.len) {
		guint type = pb_reader_uint(&extensions, 2);
		PbReader ext = pb_reader_sub(&extensions, pb_reader_uint(&extensions, 2));

		if (!extensions.short_read && type == PB_TLS_EXT_SERVER_NAME)
			return pb_client_hello_server_name(&ext);
	}
	return NULL;
}

/**
 * pb_client_hello_parse:
 * @data: the first bytes a TLS client sent
 * @server_name: (out) (optional): with %PB_CLIENT_HELLO_COMPLETE, its host_name, as sent
 *   (printable ASCII), or %NULL without one
 *
 * Returns: whether @data holds a whole ClientHello, needs more bytes, or is none
 */
PbClientHello
pb_client_hello_parse(const guint8 *data, gsize len, char **server_name)
{
	g_autoptr(GByteArray) message = g_byte_array_new();
	gsize offset = 0;

	if (server_name != NULL)
		*server_name = NULL;
	/* the handshake message, gathered from the payloads of consecutive records */
	for (;;) {
		gsize record_len;
		gsize message_len;

		if (message->len >= 4) {
			message_len = (gsize)message->data[1] << 16 | (gsize)message->data[2] << 8 |
				      message->data[3];
			if (message->data[0] != PB_TLS_CLIENT_HELLO ||
			    message_len > PB_CLIENT_HELLO_MAX)
				return PB_CLIENT_HELLO_INVALID;
			if (message->len >= 4 + message_len)
				break;
		}
		if (offset >= PB_CLIENT_HELLO_MAX)
			return PB_CLIENT_HELLO_INVALID;
		if (len - offset < PB_TLS_RECORD_HEADER_SIZE) {
			/* what there is of a record header must be one already */
			if (len > offset && data[offset] != PB_TLS_RECORD_HANDSHAKE)
				return PB_CLIENT_HELLO_INVALID;
			return PB_CLIENT_HELLO_INCOMPLETE;
		}
		record_len = (gsize)data[offset + 3] << 8 | data[offset + 4];
		if (data[offset] != PB_TLS_RECORD_HANDSHAKE || data[offset + 1] != 0x03 ||
		    record_len == 0)
			return PB_CLIENT_HELLO_INVALID;
		offset += PB_TLS_RECORD_HEADER_SIZE;
		if (len - offset < record_len) {
			return PB_CLIENT_HELLO_INCOMPLETE;
		}
		g_byte_array_append(message, data + offset, (guint)record_len);
		offset += record_len;
	}
	if (server_name != NULL) {
		gsize message_len =
		    (gsize)message->data[1] << 16 | (gsize)message->data[2] << 8 | message->data[3];

		*server_name = pb_client_hello_body(message->data + 4, message_len);
	}
	return PB_CLIENT_HELLO_COMPLETE;
}
