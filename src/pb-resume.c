/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-resume.h"

#include "pb-error.h"
#include "pb-frame.h"

/*
 * RESUME (connId 0, feature `resume`): after a lost WebSocket, the client comes back with
 * its session and each side lists its open connections and how much of each it received;
 * the other sends again what is missing (see PbReplay), and may send as much after it as
 * the credit says (WINDOW frames lost with the WebSocket are in it). A peer may list no more
 * connections than the tunnel takes, each once, none of them connId 0.
 */

/**
 * pb_resume_parse:
 * @max_entries: the most connections the tunnel may have open
 *
 * Returns: (transfer full) (element-type PbResumeEntry) (nullable): the entries, or %NULL
 *   with @error set: a length that is not a whole number of entries, more than
 *   @max_entries, connId 0, or a connId twice
 */
GArray *
pb_resume_parse(const guint8 *payload, gsize len, guint max_entries, GError **error)
{
	g_autoptr(GArray) entries = NULL;
	g_autoptr(GHashTable) seen = NULL;
	gsize n = len / PB_RESUME_ENTRY_SIZE;

	if (len % PB_RESUME_ENTRY_SIZE != 0 || n > max_entries) {
		g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL,
			    "RESUME of %" G_GSIZE_FORMAT " bytes is not up to %u entries of %d",
			    len, max_entries, PB_RESUME_ENTRY_SIZE);
		return NULL;
	}
	entries = g_array_sized_new(FALSE, FALSE, sizeof(PbResumeEntry), (guint)n);
	seen = g_hash_table_new(NULL, NULL);
	for (gsize i = 0; i < n; i++) {
		const guint8 *p = payload + i * PB_RESUME_ENTRY_SIZE;
		PbResumeEntry entry = {0};

		entry.conn_id = pb_frame_read_u32(p);
		entry.received = pb_frame_read_u64(p + 4);
		entry.credit = pb_frame_read_u32(p + 12);
		entry.eof = (p[16] & PB_RESUME_FLAG_EOF) != 0;
		if (entry.conn_id == 0 ||
		    !g_hash_table_add(seen, GUINT_TO_POINTER(entry.conn_id))) {
			g_set_error(error, PB_ERROR, PB_ERROR_PROTOCOL, "RESUME lists connId %u %s",
				    entry.conn_id,
				    entry.conn_id == 0 ? "(the control channel's)" : "twice");
			return NULL;
		}
		g_array_append_val(entries, entry);
	}
	return g_steal_pointer(&entries);
}

/* RESUME's payload for @entries. */
GBytes *
pb_resume_write(const PbResumeEntry *entries, guint n_entries)
{
	gsize len = (gsize)n_entries * PB_RESUME_ENTRY_SIZE;
	guint8 *payload = g_malloc(MAX(len, 1));

	for (guint i = 0; i < n_entries; i++) {
		guint8 *p = payload + (gsize)i * PB_RESUME_ENTRY_SIZE;

		pb_frame_write_u32(p, entries[i].conn_id);
		pb_frame_write_u64(p + 4, entries[i].received);
		pb_frame_write_u32(p + 12, entries[i].credit);
		p[16] = entries[i].eof ? PB_RESUME_FLAG_EOF : 0;
	}
	return g_bytes_new_take(payload, len);
}
