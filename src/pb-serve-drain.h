/* SPDX-License-Identifier: ISC */
#pragma once

#include "pb-cli.h"
#include "pb-tunnel-server.h"

G_BEGIN_DECLS

#define PB_DRAIN_MAX_S 3600

typedef struct _PbServeDrain PbServeDrain;

PbServeDrain *
pb_serve_drain_new(PbCli *cli, PbTunnelServer *server, guint seconds);
void
pb_serve_drain_free(PbServeDrain *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbServeDrain, pb_serve_drain_free)

G_END_DECLS
