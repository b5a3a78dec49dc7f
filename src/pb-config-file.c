/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-config-file.h"

#include <glib/gi18n.h>
#include <string.h>

/*
 * serve --config FILE: a GKeyFile. The keys of a command's group are its command-line
 * options under their long names, set from the same GOptionEntry table the command line is
 * parsed with, so an option needs no second list to work in the file. The file is applied
 * before the command line is parsed: an option given there then simply replaces the
 * file's value, which is how the command line wins.
 *
 * GKeyFile's own errors do not say where in the file they are; this keeps the text to name
 * the line of a key, or of a line that is no key, group or comment.
 */

/* One option the file set: what to look at to tell whether the command line replaced it. */
typedef struct {
	char *group; /* (owned) */
	char *key;   /* (owned) */
	char *raw;   /* (owned) the value as written */
	GOptionArg arg;
	gpointer slot;	   /* (unowned) the option's variable */
	gint64 number;	   /* the value set, for ints and booleans */
	char *string;	   /* (unowned) the value set, for strings: the variable owns it */
	gboolean replaced; /* the command line gave the option too */
} PbConfigSetting;

struct _PbConfigFile {
	char *path;	     /* (owned) as given */
	char *dir;	     /* (owned) its directory, which relative file names start from */
	char **lines;	     /* (owned) the text, for line numbers */
	GKeyFile *key_file;  /* (owned) */
	GPtrArray *settings; /* (owned) (element-type PbConfigSetting) */
	GHashTable *applied; /* (owned) "GROUP\nKEY" of each key an option table took */
};

static void
pb_config_setting_free(PbConfigSetting *setting)
{
	g_free(setting->group);
	g_free(setting->key);
	g_free(setting->raw);
	g_free(setting);
}

void
pb_config_file_free(PbConfigFile *self)
{
	if (self == NULL)
		return;
	g_free(self->path);
	g_free(self->dir);
	g_strfreev(self->lines);
	g_clear_pointer(&self->key_file, g_key_file_unref);
	g_clear_pointer(&self->settings, g_ptr_array_unref);
	g_clear_pointer(&self->applied, g_hash_table_unref);
	g_free(self);
}

/* The first line, from 1, that GKeyFile cannot take: 0 if none is found. */
static guint
pb_config_file_find_bad_line(PbConfigFile *self)
{
	gboolean in_group = FALSE;

	for (guint i = 0; self->lines[i] != NULL; i++) {
		g_autofree char *line = g_strstrip(g_strdup(self->lines[i]));
		const char *eq = strchr(line, '=');

		if (*line == '\0' || *line == '#')
			continue;
		if (*line == '[') {
			if (!g_str_has_suffix(line, "]") || strlen(line) < 3)
				return i + 1;
			in_group = TRUE;
			continue;
		}
		if (!in_group || eq == NULL || eq == line)
			return i + 1;
	}
	return 0;
}

/**
 * pb_config_file_load:
 * @path: the file, as the user named it (errors name it so)
 *
 * Returns: (transfer full): the file, or %NULL if it cannot be read or is no key file
 */
PbConfigFile *
pb_config_file_load(const char *path, GError **error)
{
	g_autoptr(PbConfigFile) self = g_new0(PbConfigFile, 1);
	g_autoptr(GError) local = NULL;
	g_autofree char *text = NULL;
	gsize len = 0;

	self->path = g_strdup(path);
	self->dir = g_path_get_dirname(path);
	self->key_file = g_key_file_new();
	self->settings = g_ptr_array_new_with_free_func((GDestroyNotify)pb_config_setting_free);
	self->applied = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	/* g_file_get_contents() names the file in its message */
	if (!g_file_get_contents(path, &text, &len, &local)) {
		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_NOT_FOUND,
			    _("cannot read the configuration file: %s"), local->message);
		return NULL;
	}
	self->lines = g_strsplit(text, "\n", -1);
	if (!g_key_file_load_from_data(self->key_file, text, len, G_KEY_FILE_NONE, &local)) {
		guint line = pb_config_file_find_bad_line(self);

		if (line != 0)
			g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "%s:%u: %s",
				    path, line, local->message);
		else
			g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "%s: %s", path,
				    local->message);
		return NULL;
	}
	return g_steal_pointer(&self);
}

const char *
pb_config_file_get_path(PbConfigFile *self)
{
	return self->path;
}

GKeyFile *
pb_config_file_get_key_file(PbConfigFile *self)
{
	return self->key_file;
}

/* The line, from 1, where @key of @group (or the group's header, for a %NULL @key) is set:
 * the last one, which is the one GKeyFile takes; 0 if it is not there. */
guint
pb_config_file_get_line(PbConfigFile *self, const char *group, const char *key)
{
	g_autofree char *current = NULL;
	guint found = 0;

	for (guint i = 0; self->lines[i] != NULL; i++) {
		g_autofree char *line = g_strstrip(g_strdup(self->lines[i]));
		char *eq = strchr(line, '=');

		if (*line == '[' && g_str_has_suffix(line, "]")) {
			g_free(current);
			current = g_strndup(line + 1, strlen(line) - 2);
			if (key == NULL && g_strcmp0(current, group) == 0)
				return i + 1;
			continue;
		}
		if (*line == '#' || eq == NULL || key == NULL || g_strcmp0(current, group) != 0)
			continue;
		*eq = '\0';
		if (g_strcmp0(g_strchomp(line), key) == 0)
			found = i + 1;
	}
	return found;
}

/* Returns: (transfer full): "FILE:LINE" of @key in @group, or "FILE" */
char *
pb_config_file_where(PbConfigFile *self, const char *group, const char *key)
{
	guint line = pb_config_file_get_line(self, group, key);

	return line != 0 ? g_strdup_printf("%s:%u", self->path, line) : g_strdup(self->path);
}

/* Returns: (transfer full): @path, a relative one taken from the file's directory (a token
 * file beside the configuration is then found wherever serve was started) */
char *
pb_config_file_resolve(PbConfigFile *self, const char *path)
{
	return g_canonicalize_filename(path, self->dir);
}

/**
 * pb_config_file_check_groups:
 * @known: the groups the file may have; one ending in a space is a prefix ("client ")
 *
 * Returns: %FALSE with @error naming the first group that is none of them
 */
gboolean
pb_config_file_check_groups(PbConfigFile *self, const char *const *known, GError **error)
{
	g_auto(GStrv) groups = g_key_file_get_groups(self->key_file, NULL);

	for (guint i = 0; groups[i] != NULL; i++) {
		gboolean ok = FALSE;

		for (guint k = 0; known[k] != NULL && !ok; k++) {
			if (g_str_has_suffix(known[k], " "))
				ok = g_str_has_prefix(groups[i], known[k]) &&
				     groups[i][strlen(known[k])] != '\0';
			else
				ok = g_strcmp0(groups[i], known[k]) == 0;
		}
		if (!ok) {
			g_autofree char *where = pb_config_file_where(self, groups[i], NULL);

			g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
				    _("%s: unknown group [%s]"), where, groups[i]);
			return FALSE;
		}
	}
	return TRUE;
}

/* Sets the option of @entry from @raw, as written in the file at @where. */
static gboolean
pb_config_file_set(PbConfigFile *self, const char *group, const GOptionEntry *entry,
		   const char *where, const char *raw, GError **error)
{
	PbConfigSetting *setting = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree char *value = NULL;
	gint64 number = 0;

	switch (entry->arg) {
	case G_OPTION_ARG_INT:
		if (!g_ascii_string_to_signed(raw, 10, G_MININT, G_MAXINT, &number, NULL)) {
			g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
				    _("%s: %s must be a whole number, not “%s”"), where,
				    entry->long_name, raw);
			return FALSE;
		}
		*(int *)entry->arg_data = (int)number;
		break;
	case G_OPTION_ARG_NONE:
		number = g_key_file_get_boolean(self->key_file, group, entry->long_name, &local);
		if (local != NULL) {
			g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
				    _("%s: %s must be true or false, not “%s”"), where,
				    entry->long_name, raw);
			return FALSE;
		}
		if (entry->flags & G_OPTION_FLAG_REVERSE)
			number = !number;
		*(gboolean *)entry->arg_data = (gboolean)number;
		break;
	case G_OPTION_ARG_STRING:
	case G_OPTION_ARG_FILENAME:
		value = g_key_file_get_string(self->key_file, group, entry->long_name, &local);
		if (value == NULL) {
			g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
				    "%s: %s: %s", where, entry->long_name, local->message);
			return FALSE;
		}
		/* an empty value leaves the default, as not writing the key would */
		if (*value == '\0')
			return TRUE;
		if (entry->arg == G_OPTION_ARG_FILENAME) {
			g_autofree char *relative = g_steal_pointer(&value);

			value = pb_config_file_resolve(self, relative);
		}
		g_free(*(char **)entry->arg_data);
		*(char **)entry->arg_data = value;
		break;
	default:
		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
			    _("%s: %s cannot be set in a file"), where, entry->long_name);
		return FALSE;
	}
	setting = g_new0(PbConfigSetting, 1);
	setting->group = g_strdup(group);
	setting->key = g_strdup(entry->long_name);
	setting->raw = g_strdup(raw);
	setting->arg = entry->arg;
	setting->slot = entry->arg_data;
	setting->number = number;
	setting->string = g_steal_pointer(&value);
	g_ptr_array_add(self->settings, setting);
	return TRUE;
}

/**
 * pb_config_file_apply:
 * @group: the command's group ("serve")
 * @entries: options of the command, as for g_option_context_add_main_entries(); string and
 *   file name variables must hold %NULL or a string of their own
 *
 * Sets each option of @entries that @group has a key for, by its long name: a number, a
 * boolean (true or false), a string (empty: the default), a file name (relative to the
 * file's directory). Apply every table before parsing the command line over them, then
 * call pb_config_file_check_keys() and, once parsed, pb_config_file_settle().
 */
gboolean
pb_config_file_apply(PbConfigFile *self, const char *group, const GOptionEntry *entries,
		     GError **error)
{
	for (const GOptionEntry *entry = entries; entry->long_name != NULL; entry++) {
		g_autofree char *raw = NULL;
		g_autofree char *where = NULL;

		/* a file that names another is more than a list of options: not supported */
		if (g_strcmp0(entry->long_name, "config") == 0)
			continue;
		raw = g_key_file_get_value(self->key_file, group, entry->long_name, NULL);
		if (raw == NULL)
			continue;
		where = pb_config_file_where(self, group, entry->long_name);
		if (!pb_config_file_set(self, group, entry, where, raw, error))
			return FALSE;
		g_hash_table_add(self->applied, g_strconcat(group, "\n", entry->long_name, NULL));
	}
	return TRUE;
}

/* Returns: %FALSE with @error naming the first key of @group that no table applied */
gboolean
pb_config_file_check_keys(PbConfigFile *self, const char *group, GError **error)
{
	g_auto(GStrv) keys = g_key_file_get_keys(self->key_file, group, NULL, NULL);

	for (guint i = 0; keys != NULL && keys[i] != NULL; i++) {
		g_autofree char *id = g_strconcat(group, "\n", keys[i], NULL);
		g_autofree char *where = NULL;

		if (g_hash_table_contains(self->applied, id))
			continue;
		where = pb_config_file_where(self, group, keys[i]);
		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
			    _("%s: unknown key “%s” in [%s]"), where, keys[i], group);
		return FALSE;
	}
	return TRUE;
}

/* Once the command line is parsed over the file's values: GOption replaces a string
 * without freeing what was there, so the file's strings the command line replaced are
 * freed here. */
void
pb_config_file_settle(PbConfigFile *self)
{
	for (guint i = 0; i < self->settings->len; i++) {
		PbConfigSetting *setting = self->settings->pdata[i];

		switch (setting->arg) {
		case G_OPTION_ARG_STRING:
		case G_OPTION_ARG_FILENAME:
			if (*(char **)setting->slot != setting->string) {
				g_free(setting->string);
				setting->replaced = TRUE;
			}
			setting->string = NULL;
			break;
		case G_OPTION_ARG_INT:
			setting->replaced = *(int *)setting->slot != setting->number;
			break;
		case G_OPTION_ARG_NONE:
			setting->replaced = *(gboolean *)setting->slot != setting->number;
			break;
		default:
			break;
		}
	}
}

/* Whether @message names the option --@name. */
static gboolean
pb_config_file_names_option(const char *message, const char *name)
{
	g_autofree char *option = g_strconcat("--", name, NULL);

	for (const char *p = strstr(message, option); p != NULL; p = strstr(p + 1, option)) {
		char next = p[strlen(option)];

		if (!g_ascii_isalnum(next) && next != '-')
			return TRUE;
	}
	return FALSE;
}

/**
 * pb_config_file_annotate:
 * @message: an error about options, naming them as --NAME
 *
 * Returns: (transfer full): @message, led by "FILE:LINE: KEY=VALUE: " if it names an option
 *   whose value came from the file (a value the command line gave needs no place)
 */
char *
pb_config_file_annotate(PbConfigFile *self, const char *message)
{
	for (guint i = 0; i < self->settings->len; i++) {
		PbConfigSetting *setting = self->settings->pdata[i];
		g_autofree char *where = NULL;

		if (setting->replaced || !pb_config_file_names_option(message, setting->key))
			continue;
		where = pb_config_file_where(self, setting->group, setting->key);
		return g_strdup_printf("%s: %s=%s: %s", where, setting->key, setting->raw, message);
	}
	return g_strdup(message);
}

/* The value of --@name in @argv ("--NAME VALUE" or "--NAME=VALUE", the last one wins, as
 * in GOption), before GOption parses it: the file's options go in first. */
const char *
pb_config_file_find_option(int argc, char **argv, const char *name)
{
	g_autofree char *option = g_strconcat("--", name, NULL);
	gsize len = strlen(option);
	const char *found = NULL;

	for (int i = 1; i < argc; i++) {
		if (g_strcmp0(argv[i], "--") == 0)
			break;
		if (g_strcmp0(argv[i], option) == 0 && i + 1 < argc)
			found = argv[++i];
		else if (strncmp(argv[i], option, len) == 0 && argv[i][len] == '=')
			found = argv[i] + len + 1;
	}
	return found;
}
