/*
 * config_int.h — inside core's configuration system only: what config.c (the tables),
 * config_map.c (sections of arbitrary keys) and cfgvalue.c (value syntax) share.
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

#define NOPS__CFG_MAX_VALUE (64 * 1024) /* a value after ${VAR} and @file, NUL included */
#define NOPS__CFG_MAX_SECTIONS 32
#define NOPS__CFG_MAX_MAPS 8

typedef struct cfg_slot {
    const nops_cfg_section *sec; /* static table */
    void *base;                  /* caller's struct */
} cfg_slot;

typedef struct map_slot {
    const nops_cfg_map_section *sec; /* static description */
    nops_cfg_map *map;               /* caller's pairs */
} map_slot;

struct nops_cfg {
    cfg_slot slots[NOPS__CFG_MAX_SECTIONS]; /* registered sections, in order */
    size_t n;                               /* how many */
    map_slot maps[NOPS__CFG_MAX_MAPS];      /* registered map sections, in order */
    size_t n_maps;                          /* how many */
};

/* The map section named section[0..len), or NULL. */
map_slot *nops__cfg_map_find(const nops_cfg *cfg, const char *section, size_t len);
/* The map section a "section.key" name falls in (its key into *key), or NULL. */
map_slot *nops__cfg_map_of(const nops_cfg *cfg, const char *name, const char **key);
/* Check and store one pair; errors name `source` and the key, never a secret value. */
nops_err nops__cfg_map_put(map_slot *ms, const char *key, const char *value, const char *source,
                           char *errstr, size_t errstr_size);
/* The same for a value as written (nops__cfg_value: quotes, inline comments, ${VAR} and @file
 * for a file's line, from_file; @file only for an environment variable). */
nops_err nops__cfg_map_put_raw(map_slot *ms, const char *key, const char *raw, bool from_file,
                               const char *source, char *errstr, size_t errstr_size);
/* Apply every NEURALOPS_<SECTION>_<KEY> variable of every map section. */
nops_err nops__cfg_map_apply_env(const nops_cfg *cfg, char *errstr, size_t errstr_size);
/* True when the variable name var[0..len) is a map section's. */
bool nops__cfg_map_env_of(const nops_cfg *cfg, const char *var, size_t len);
/* Docs / values of the map sections under the table section `parent` ("kafka" for
 * "kafka.librdkafka"); NULL: those under no registered table section. */
void nops__cfg_map_print_markdown(const nops_cfg *cfg, const char *parent, FILE *out);
void nops__cfg_map_print_values(const nops_cfg *cfg, const char *parent, FILE *out);

#endif /* NOPS_CORE_CONFIG_INT_H */
