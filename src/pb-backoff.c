/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-backoff.h"

/**
 * pb_backoff_delay_ms:
 * @attempt: 0 for the first retry after a loss
 * @random: uniform in [0, 1), e.g. g_random_double()
 *
 * How long the client waits before dialling again: PB_BACKOFF_FIRST_MS doubling with each
 * attempt, ±25 % of jitter so that many clients of a restarted server do not all come back
 * in the same instant, and never more than PB_BACKOFF_MAX_MS.
 */
guint
pb_backoff_delay_ms(guint attempt, double random)
{
	double base = PB_BACKOFF_FIRST_MS;
	double delay;

	for (guint i = 0; i < attempt && base < PB_BACKOFF_MAX_MS; i++)
		base *= 2;
	delay = base * (0.75 + 0.5 * CLAMP(random, 0.0, 1.0));
	return (guint)MIN(delay, (double)PB_BACKOFF_MAX_MS);
}
