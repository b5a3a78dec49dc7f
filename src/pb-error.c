/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-error.h"

#include <gio/gio.h>

/* Registered as D-Bus error names so remote callers see meaningful errors. */
static const GDBusErrorEntry pb_error_entries[] = {
    {PB_ERROR_FAILED, "io.github.piggyback.PiggyBack.Error.Failed"},
    {PB_ERROR_PROTOCOL, "io.github.piggyback.PiggyBack.Error.Protocol"},
    {PB_ERROR_REFUSED, "io.github.piggyback.PiggyBack.Error.Refused"},
    {PB_ERROR_CLOSED, "io.github.piggyback.PiggyBack.Error.Closed"},
    {PB_ERROR_UNAUTHORIZED, "io.github.piggyback.PiggyBack.Error.Unauthorized"},
    {PB_ERROR_NAME_TAKEN, "io.github.piggyback.PiggyBack.Error.NameTaken"},
};

GQuark
pb_error_quark(void)
{
	static gsize quark = 0;

	g_dbus_error_register_error_domain("pb-error-quark", &quark, pb_error_entries,
					   G_N_ELEMENTS(pb_error_entries));
	return (GQuark)quark;
}
