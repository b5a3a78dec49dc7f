/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One open connection, as a side that resumes a tunnel sees it (feature `resume`). */
typedef struct {
	guint32 conn_id;
	guint64 received; /* DATA bytes received on it in all */
	guint32 credit;	  /* bytes the peer may send after those (`flow`) */
	gboolean eof;	  /* the peer's EOF received */
} PbResumeEntry;

/* An entry on the wire: connId (4), received (8), credit (4), flags (1), big-endian. */
#define PB_RESUME_ENTRY_SIZE 17
/* Flags: bit 0, EOF received; the others are ignored (later versions may use them). */
#define PB_RESUME_FLAG_EOF 0x01

GArray *
pb_resume_parse(const guint8 *payload, gsize len, guint max_entries, GError **error);
GBytes *
pb_resume_write(const PbResumeEntry *entries, guint n_entries);

G_END_DECLS
