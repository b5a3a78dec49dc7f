/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PB_BACKOFF_FIRST_MS 500	  /* the first retry, before jitter */
#define PB_BACKOFF_MAX_MS   30000 /* no wait is longer */
#define PB_BACKOFF_STABLE_S 10	  /* online this long, the next loss starts over */

guint
pb_backoff_delay_ms(guint attempt, double random);

G_END_DECLS
