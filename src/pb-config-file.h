/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A configuration file (serve --config): a GKeyFile whose groups hold a command's options
 * under their long names, and which says where each key is for error messages. */
typedef struct _PbConfigFile PbConfigFile;

PbConfigFile *
pb_config_file_load(const char *path, GError **error);
const char *
pb_config_file_get_path(PbConfigFile *self);
GKeyFile *
pb_config_file_get_key_file(PbConfigFile *self);
guint
pb_config_file_get_line(PbConfigFile *self, const char *group, const char *key);
char *
pb_config_file_where(PbConfigFile *self, const char *group, const char *key);
char *
pb_config_file_resolve(PbConfigFile *self, const char *path);
gboolean
pb_config_file_check_groups(PbConfigFile *self, const char *const *known, GError **error);
gboolean
pb_config_file_apply(PbConfigFile *self, const char *group, const GOptionEntry *entries,
		     GError **error);
gboolean
pb_config_file_check_keys(PbConfigFile *self, const char *group, GError **error);
void
pb_config_file_settle(PbConfigFile *self);
char *
pb_config_file_annotate(PbConfigFile *self, const char *message);
const char *
pb_config_file_find_option(int argc, char **argv, const char *name);
void
pb_config_file_free(PbConfigFile *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbConfigFile, pb_config_file_free)

G_END_DECLS
