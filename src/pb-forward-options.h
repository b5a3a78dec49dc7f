/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

#include "pb-config-file.h"

G_BEGIN_DECLS

/* The options of `piggyback forward`, as parsed from its command line and its --config file
 * ([forward]), before they are checked. */
typedef struct {
	char *config; /* --config FILE */
	int port;     /* -1: not given */
	char *host;
	char *server;
	char *features;
	char **expose; /* [NAME=][HOST:]PORT each */
	char *name;
	char *proxy_protocol;
	gboolean no_dbus;
	gboolean no_reconnect;
	int max_connections;
	char *token_file;
	char *ca_file;
	char *pin_sha256;
} PbForwardOptions;

void
pb_forward_options_init(PbForwardOptions *self);
GOptionEntry *
pb_forward_options_get_entries(PbForwardOptions *self);
char **
pb_forward_options_read_services(PbConfigFile *config, GError **error);
void
pb_forward_options_clear(PbForwardOptions *self);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PbForwardOptions, pb_forward_options_clear)

G_END_DECLS
