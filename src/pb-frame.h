/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One WebSocket binary message = type (1 byte) + connId (4 bytes, big endian) + payload. */
#define PB_FRAME_HEADER_SIZE 5

/* connId 0 carries control frames (HELLO); tunneled connections use 1..G_MAXUINT32. */
#define PB_CONTROL_ID 0

/* Bytes read from a tunneled TCP socket at once, and so the largest DATA payload we send:
 * large enough that a GiB costs few system calls and frames, small enough that one
 * connection does not hold the WebSocket for long. */
#define PB_READ_CHUNK (256 * 1024)

/* The largest WebSocket message accepted from a peer (libsoup's own default is 128 KiB,
 * smaller than what we send). PiggyBack 1.1 sends one message per socket read (≤ 64 KiB). */
#define PB_MAX_MESSAGE_SIZE (1024 * 1024 + PB_FRAME_HEADER_SIZE)

/* Send side: stop reading TCP sockets while more than this is queued unsent on the
 * WebSocket, resume once it drops below the low mark (the PiggyBack 1.1 values). */
#define PB_WS_HIGH_WATERMARK (1024 * 1024)
#define PB_WS_LOW_WATERMARK  (256 * 1024)

/* Receive side: stop reading the WebSocket while a TCP socket has more than this queued
 * unwritten, resume once that socket's queue drops below the low mark. */
#define PB_STREAM_HIGH_WATERMARK (1024 * 1024)
#define PB_STREAM_LOW_WATERMARK	 (256 * 1024)

/* The WebSocket's input is read from the socket in chunks of this size; libsoup then
 * takes it 1 KiB at a time from memory instead of with one system call per KiB. */
#define PB_WS_READ_BUFFER_SIZE (256 * 1024)

#define PB_WS_PATH "/http-stream"

/* Seconds between WebSocket pings; two without any answer close the tunnel. */
#define PB_KEEPALIVE_DEFAULT 15

/* Seconds a lost client's public port stays reserved for it, and the upgrade request
 * header that presents the session id HELLO gave it. */
#define PB_GRACE_DEFAULT 30

/* The close code of a WebSocket given up by a side that will be back (a client that
 * reconnects, a keepalive that expired): not a goodbye, so the server keeps the client's
 * port for --grace. A clean exit says goodbye with 1001 (going away) or 1000. */
#define PB_CLOSE_COMING_BACK 4000

/* Seconds the server has to answer a ping after the client's network changed. */
#define PB_NETWORK_PROBE_TIMEOUT 3
#define PB_SESSION_HEADER	 "Piggyback-Session"
/* The services after the first one (forward --expose), with the `services` feature. */
#define PB_SERVICES_HEADER "Piggyback-Services"
/* Services per client a server takes by default (serve --max-services). */
#define PB_MAX_SERVICES_DEFAULT 16

/* Tunnels a server takes at once, and open connections per tunnel: each connection holds a
 * file descriptor on each side, and a process usually may open 1024. */
#define PB_MAX_CLIENTS_DEFAULT	   64
#define PB_MAX_CONNECTIONS_DEFAULT 1000

/* The WebSocket port: seconds a new connection has to complete its upgrade, and how many
 * may be waiting for theirs at once, in all and from one IP address (see PbWebPort). */
#define PB_HANDSHAKE_TIMEOUT_DEFAULT	   10
#define PB_MAX_PENDING_DEFAULT		   256
#define PB_MAX_PENDING_PER_ADDRESS_DEFAULT 32

typedef enum {
	PB_FRAME_OPEN = 0x01,	/* server → client: a public connection was accepted */
	PB_FRAME_DATA = 0x02,	/* both: raw TCP bytes */
	PB_FRAME_CLOSE = 0x03,	/* both: the connection is over */
	PB_FRAME_HELLO = 0x04,	/* server → client, connId 0: JSON object */
	PB_FRAME_WINDOW = 0x05, /* v2 `flow`, both: 4 bytes BE, a credit increment */
	PB_FRAME_EOF = 0x06,	/* v2 `eof`, both: the sender's TCP peer stopped writing */
	PB_FRAME_RESUME = 0x07, /* v2 `resume`, both, connId 0: what each connection received */
} PbFrameType;

/* Protocol v2 features, negotiated: the client lists its own in the Piggyback-Features
 * request header, the server answers with those it uses in HELLO's `features`. */
typedef enum {
	PB_FEATURE_FLOW = 1 << 0,     /* per-connection credit (WINDOW) */
	PB_FEATURE_EOF = 1 << 1,      /* TCP half-close (EOF) */
	PB_FEATURE_PROXY_V1 = 1 << 2, /* the server's first DATA is a PROXY protocol v1 header */
	PB_FEATURE_PROXY_V2 = 1 << 3, /* the same, PROXY protocol v2 (binary) */
	PB_FEATURE_NAME = 1 << 4,     /* a named tunnel: NAME.DOMAIN on the server's shared ports */
	PB_FEATURE_SERVICES = 1 << 5, /* several services per client: OPEN says which */
	PB_FEATURE_RESUME = 1 << 6,   /* connections survive a lost WebSocket (needs `flow`) */
} PbFeatures;

/* What --features turns on and off: how the protocol works. */
#define PB_FEATURES_ALL (PB_FEATURE_FLOW | PB_FEATURE_EOF | PB_FEATURE_RESUME)
/* What a client asks for with --proxy-protocol; a server offers both. */
#define PB_FEATURES_PROXY  (PB_FEATURE_PROXY_V1 | PB_FEATURE_PROXY_V2)
#define PB_FEATURES_HEADER "Piggyback-Features"

typedef struct {
	guint8 type;
	guint32 conn_id;
	const guint8 *payload; /* (unowned) points into the parsed message */
	gsize payload_len;
} PbFrame;

gboolean
pb_frame_parse(GBytes *message, PbFrame *frame, GError **error);
gboolean
pb_frame_parse_data(const guint8 *buf, gsize len, PbFrame *frame, GError **error);
void
pb_frame_write_header(guint8 *buf, guint8 type, guint32 conn_id);
GBytes *
pb_frame_new(guint8 type, guint32 conn_id, const void *payload, gsize payload_len);

/* The protocol's integers are big-endian: connIds, WINDOW increments, service indexes,
 * RESUME's byte counts. */
static inline guint32
pb_frame_read_u32(const guint8 *p)
{
	return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | (guint32)p[3];
}

static inline void
pb_frame_write_u32(guint8 *p, guint32 value)
{
	p[0] = (guint8)(value >> 24);
	p[1] = (guint8)(value >> 16);
	p[2] = (guint8)(value >> 8);
	p[3] = (guint8)value;
}

static inline guint64
pb_frame_read_u64(const guint8 *p)
{
	return (guint64)pb_frame_read_u32(p) << 32 | pb_frame_read_u32(p + 4);
}

static inline void
pb_frame_write_u64(guint8 *p, guint64 value)
{
	pb_frame_write_u32(p, (guint32)(value >> 32));
	pb_frame_write_u32(p + 4, (guint32)value);
}

G_END_DECLS
