/*
 * config_map.c — sections of arbitrary keys (core.h, "map sections").
 *
 * A table section knows its keys; a map section passes any key through to a library with its
 * own open-ended property set ([kafka.librdkafka] → librdkafka). The pairs live in the
 * caller's nops_cfg_map: one flat buffer of NUL-terminated keys and values plus two offset
 * arrays, so the map copies by value and needs no allocation or cleanup. A key set again gets
 * its new value appended and pointed at (later sources win; the old bytes stay until the map
 * is rebuilt — at most a few settings, from a file, the environment and flags).
 *
 * Every source (file line, --set, environment) ends in nops__cfg_map_put, which runs the
 * section's check, so a property the library refuses is named with where it came from.
 */
#include "core/config_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAP_KEY_MAX 256 /* longest key, NUL included */

nops_err nops_cfg_add_map(nops_cfg *cfg, const nops_cfg_map_section *sec, nops_cfg_map *map,
                          char *errstr, size_t errstr_size)
{
    if (!cfg || !sec || !map)
        return NOPS_INVAL;
    if (cfg->n_maps == NOPS__CFG_MAX_MAPS) {
        nops_errf(errstr, errstr_size, "too many config sections");
        return NOPS_FULL;
    }
    memset(map, 0, sizeof *map);
    cfg->maps[cfg->n_maps++] = (map_slot){sec, map};
    return NOPS_OK;
}

static long map_index(const nops_cfg_map *map, const char *key)
{
    for (uint32_t i = 0; i < map->n; i++)
        if (strcmp(map->buf + map->key[i], key) == 0)
            return (long)i;
    return -1;
}

/* Append s (NUL included) to the buffer; its offset, or -1 when there is no room. */
static long map_append(nops_cfg_map *map, const char *s)
{
    size_t len = strlen(s) + 1;
    if (len > sizeof map->buf - map->used)
        return -1;
    memcpy(map->buf + map->used, s, len);
    map->used += (uint32_t)len;
    return (long)(map->used - len);
}

nops_err nops_cfg_map_set(nops_cfg_map *map, const char *key, const char *value)
{
    if (!map || !key || !*key || !value || strlen(key) >= MAP_KEY_MAX)
        return NOPS_INVAL;
    long i = map_index(map, key);
    if (i < 0 && map->n == NOPS_CFG_MAP_MAX)
        return NOPS_FULL;
    const uint32_t used = map->used;
    long k = i < 0 ? map_append(map, key) : (long)map->key[i];
    long v = k < 0 ? -1 : map_append(map, value);
    if (v < 0) {
        map->used = used; /* nothing half-added */
        return NOPS_FULL;
    }
    if (i < 0) {
        i = (long)map->n++;
        map->key[i] = (uint32_t)k;
    }
    map->val[i] = (uint32_t)v;
    return NOPS_OK;
}

const char *nops_cfg_map_get(const nops_cfg_map *map, const char *key)
{
    long i = map && key ? map_index(map, key) : -1;
    return i < 0 ? NULL : map->buf + map->val[i];
}

const char *nops_cfg_map_key(const nops_cfg_map *map, size_t i)
{
    return i < map->n ? map->buf + map->key[i] : NULL;
}

const char *nops_cfg_map_value(const nops_cfg_map *map, size_t i)
{
    return i < map->n ? map->buf + map->val[i] : NULL;
}

/* ---- the nops_cfg side ------------------------------------------------------------------- */

map_slot *nops__cfg_map_find(const nops_cfg *cfg, const char *section, size_t len)
{
    for (size_t i = 0; i < cfg->n_maps; i++) {
        const char *name = cfg->maps[i].sec->name;
        if (strlen(name) == len && strncmp(name, section, len) == 0)
            return (map_slot *)&cfg->maps[i];
    }
    return NULL;
}

map_slot *nops__cfg_map_of(const nops_cfg *cfg, const char *name, const char **key)
{
    for (size_t i = 0; i < cfg->n_maps; i++) {
        const char *sn = cfg->maps[i].sec->name;
        size_t sl = strlen(sn);
        if (strncmp(name, sn, sl) == 0 && name[sl] == '.' && name[sl + 1]) {
            *key = name + sl + 1;
            return (map_slot *)&cfg->maps[i];
        }
    }
    return NULL;
}

static bool valid_key(const char *key)
{
    if (!*key || strlen(key) >= MAP_KEY_MAX)
        return false;
    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return false;
    return true;
}

nops_err nops__cfg_map_put(map_slot *ms, const char *key, const char *value, const char *source,
                           char *errstr, size_t errstr_size)
{
    if (!valid_key(key)) {
        nops_errf(errstr, errstr_size,
                  "%s: [%s] key \"%.80s\" is not a property name (letters, digits, '.', '_', "
                  "'-'; at most %d bytes)", source, ms->sec->name, key, MAP_KEY_MAX - 1);
        return NOPS_PARSE;
    }
    if (ms->sec->check) {
        char why[512];
        why[0] = '\0';
        nops_err e = ms->sec->check(key, value, why, sizeof why);
        if (e != NOPS_OK) {
            nops_errf(errstr, errstr_size, "%s: [%s] %s", source, ms->sec->name, why);
            return e;
        }
    }
    nops_err e = nops_cfg_map_set(ms->map, key, value);
    if (e != NOPS_OK)
        nops_errf(errstr, errstr_size, "%s: [%s] has no room for %s (at most %d keys, %d bytes)",
                  source, ms->sec->name, key, NOPS_CFG_MAP_MAX, NOPS_CFG_MAP_BYTES);
    return e;
}

/* NEURALOPS_ + the section name upper-cased with '.' as '_' + '_'. */
static void env_prefix(const char *section, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "NEURALOPS_%s_", section);
    for (size_t i = 0; i < o && i < cap; i++)
        out[i] = out[i] == '.' ? '_' : (char)toupper((unsigned char)out[i]);
}

/* The key of a variable's rest: lower case, '_' → '.', "__" → '_'. False if it is too long
 * or empty. */
static bool env_key(const char *rest, size_t len, char *key, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (o + 1 >= cap)
            return false;
        if (rest[i] == '_' && i + 1 < len && rest[i + 1] == '_') {
            key[o++] = '_';
            i++;
        } else {
            key[o++] = rest[i] == '_' ? '.' : (char)tolower((unsigned char)rest[i]);
        }
    }
    key[o] = '\0';
    return o > 0;
}

nops_err nops__cfg_map_put_raw(map_slot *ms, const char *key, const char *raw, bool from_file,
                               const char *source, char *errstr, size_t errstr_size)
{
    char *value = nops_malloc(NOPS__CFG_MAX_VALUE);
    if (!value) {
        nops_errf(errstr, errstr_size, "%s: out of memory", source);
        return NOPS_NOMEM;
    }
    char what[400];
    snprintf(what, sizeof what, "%s: %s.%.200s", source, ms->sec->name, key);
    bool secret_file = false; /* the value's errors never quote it (nops__cfg_map_put) */
    nops_err e = nops__cfg_value(raw, from_file, value, NOPS__CFG_MAX_VALUE, what, &secret_file,
                                 errstr, errstr_size);
    if (e == NOPS_OK)
        e = nops__cfg_map_put(ms, key, value, source, errstr, errstr_size);
    nops_free(value);
    return e;
}

nops_err nops__cfg_map_apply_env(const nops_cfg *cfg, char *errstr, size_t errstr_size)
{
    extern char **environ;
    for (size_t m = 0; m < cfg->n_maps; m++) {
        char prefix[160];
        env_prefix(cfg->maps[m].sec->name, prefix, sizeof prefix);
        const size_t pl = strlen(prefix);
        for (char **ep = environ; ep && *ep; ep++) {
            const char *eq = strchr(*ep, '=');
            if (!eq || strncmp(*ep, prefix, pl) != 0 || eq == *ep + pl)
                continue;
            char key[MAP_KEY_MAX], var[MAP_KEY_MAX + 160];
            snprintf(var, sizeof var, "%.*s", (int)(eq - *ep), *ep);
            if (!env_key(*ep + pl, (size_t)(eq - *ep) - pl, key, sizeof key)) {
                nops_errf(errstr, errstr_size, "%.200s: the property name is too long", var);
                return NOPS_PARSE;
            }
            nops_err e = nops__cfg_map_put_raw((map_slot *)&cfg->maps[m], key, eq + 1, false,
                                               var, errstr, errstr_size);
            if (e != NOPS_OK)
                return e;
        }
    }
    return NOPS_OK;
}

bool nops__cfg_map_env_of(const nops_cfg *cfg, const char *var, size_t len)
{
    for (size_t m = 0; m < cfg->n_maps; m++) {
        char prefix[160];
        env_prefix(cfg->maps[m].sec->name, prefix, sizeof prefix);
        size_t pl = strlen(prefix);
        if (len > pl && strncmp(var, prefix, pl) == 0)
            return true;
    }
    return false;
}

/* Whether map section `ms` is printed under `parent` (see config_int.h). */
static bool under(const nops_cfg *cfg, const map_slot *ms, const char *parent)
{
    const char *name = ms->sec->name;
    const char *dot = strchr(name, '.');
    size_t pl = dot ? (size_t)(dot - name) : strlen(name);
    if (parent)
        return strlen(parent) == pl && strncmp(parent, name, pl) == 0;
    for (size_t i = 0; i < cfg->n; i++)
        if (strlen(cfg->slots[i].sec->name) == pl && strncmp(cfg->slots[i].sec->name, name, pl) == 0)
            return false;
    return true;
}

void nops__cfg_map_print_markdown(const nops_cfg *cfg, const char *parent, FILE *out)
{
    for (size_t m = 0; m < cfg->n_maps; m++) {
        const map_slot *ms = &cfg->maps[m];
        if (!under(cfg, ms, parent))
            continue;
        char prefix[160];
        env_prefix(ms->sec->name, prefix, sizeof prefix);
        fprintf(out, "## [%s]\n\n%s\n\n", ms->sec->name, ms->sec->doc);
        fprintf(out, "Any key, one per line (`key = value`; the value is the rest of the line and "
                     "may hold commas, `=` and spaces). Also `--set %s.KEY=VALUE`, and the "
                     "environment: `%sKEY` with `_` for `.` and `__` for `_` in KEY (`%sSASL_"
                     "PASSWORD` is `sasl.password`). A key given again replaces the earlier "
                     "value.\n\n", ms->sec->name, prefix, prefix);
    }
}

void nops__cfg_map_print_values(const nops_cfg *cfg, const char *parent, FILE *out)
{
    for (size_t m = 0; m < cfg->n_maps; m++) {
        const map_slot *ms = &cfg->maps[m];
        if (!under(cfg, ms, parent))
            continue;
        fprintf(out, "\n[%s]\n", ms->sec->name);
        for (size_t i = 0; i < ms->map->n; i++) {
            const char *k = nops_cfg_map_key(ms->map, i);
            const bool secret = ms->sec->is_secret && ms->sec->is_secret(k);
            fprintf(out, "%s = %s\n", k, secret ? "********" : nops_cfg_map_value(ms->map, i));
        }
    }
}
