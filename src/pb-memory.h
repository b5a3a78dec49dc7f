/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void
pb_memory_release_soon(void);

G_END_DECLS
