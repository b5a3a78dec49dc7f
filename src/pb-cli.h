/* SPDX-License-Identifier: ISC */
#pragma once

#include <gio/gio.h>

#include "pb-config-file.h"
#include "pb-console.h"
#include "pb-dashboard-view.h"
#include "pb-frame.h"

G_BEGIN_DECLS

/* Exit statuses: 2 for a usage error, 1 for a failure at run time (sysexits-like, and what
 * systemd's RestartPreventExitStatus= can tell apart). */
#define PB_EXIT_RUNTIME 1
#define PB_EXIT_USAGE	2

/* A command's run: its main loop, exit status, signal sources and dashboard. */
typedef struct {
	GMainLoop *loop; /* (unowned) */
	int status;
	guint sigint; /* source ids */
	guint sigterm;
	guint sighup;
	PbDashboardView *view; /* (owned) (nullable) the live dashboard, on a terminal */
} PbCli;

void
pb_cli_stop_view(PbCli *cli);
void
pb_cli_print(const char *format, ...) G_GNUC_PRINTF(1, 2);
int
pb_cli_usage_error(const char *message);
gboolean
pb_cli_check_port(int port, gboolean zero_ok, const char *option, int *status);
gboolean
pb_cli_check_address(const char *value, const char *option, int *status);
gboolean
pb_cli_read_token(const char *file, const char *option, const char *variable, char **token,
		  int *status);
gboolean
pb_cli_get_token(const char *token_file, char **token, int *status);
gboolean
pb_cli_parse(GOptionContext *context, const GOptionEntry *entries, int *argc, char ***argv,
	     int *status);
PbConfigFile *
pb_cli_load_config(const char *path, const char *group, const GOptionEntry *entries,
		   const char *const *groups, gboolean check_only, GError **error);
gboolean
pb_cli_parse_config(GOptionContext *context, const GOptionEntry *entries, const char *group,
		    const char *const *groups, PbConfigFile **config, int *argc, char ***argv,
		    int *status);
PbConsole *
pb_cli_dashboard_console(void);
void
pb_cli_begin(PbCli *cli);
int
pb_cli_run(PbCli *cli);
guint
pb_cli_get_keepalive(void);
guint64
pb_cli_get_max_message_size(void);
gboolean
pb_cli_check_features(const char *value, PbFeatures *features, int *status);

int
pb_serve_command(int argc, char **argv);
int
pb_forward_command(int argc, char **argv, gboolean use_settings);

G_END_DECLS
