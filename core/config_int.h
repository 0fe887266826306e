/*
 * config_int.h — inside core's configuration system only (config.c, cfgvalue.c).
 */
#ifndef NOPS_CORE_CONFIG_INT_H
#define NOPS_CORE_CONFIG_INT_H

#include "core/core.h"

/*
 * Turn the text of a value as written into the value a setting is given (cfgvalue.c says how:
 * quotes and inline comments for file values, ${VAR} expansion, @file secrets). `raw` is the
 * text after '=' with the surrounding blanks trimmed (from_file), or an environment variable's
 * value as it is (!from_file: no quotes, comments or ${VAR}, only @file). The result goes to
 * out[cap]. `what` names the setting and where it came from, for messages; *from_secret_file is
 * set when the value is a file's content (the caller must not echo it). Errors never contain
 * the content of a file.
 */
nops_err nops__cfg_value(const char *raw, bool from_file, char *out, size_t cap,
                         const char *what, bool *from_secret_file, char *errstr,
                         size_t errstr_size);

#endif
