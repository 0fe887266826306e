/*
 * config.c — the table-driven configuration system.
 *
 * A nops_cfg is a list of registered sections, each a static table plus the caller's struct
 * the table's offsets point into. Every source (defaults, file, environment, flags) ends in
 * one function, set_entry(), which parses text by the entry's type, checks the bounds and
 * writes the struct; so a value is validated the same way wherever it came from. Errors name
 * where the bad value came from ("config.ini:12", "NEURALOPS_DETECT_WINDOW", "--window").
 */
#include "core/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NOPS__CFG_MAX_LINE 4096

nops_cfg *nops_cfg_new(void)
{
    return nops_calloc(1, sizeof(nops_cfg));
}

void nops_cfg_destroy(nops_cfg *cfg)
{
    nops_free(cfg);
}

static const char *type_name(nops_cfg_type t)
{
    switch (t) {
    case NOPS_CFG_INT:
        return "integer";
    case NOPS_CFG_DOUBLE:
        return "number";
    case NOPS_CFG_BOOL:
        return "boolean";
    case NOPS_CFG_STRING:
        return "string";
    case NOPS_CFG_ENUM:
        return "choice";
    }
    return "?";
}

static int enum_index(const char *choices, const char *v)
{
    size_t vlen = strlen(v);
    int idx = 0;
    for (const char *p = choices; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vlen && strncasecmp(p, v, len) == 0)
            return idx;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

static void enum_name(const char *choices, int idx, char *out, size_t cap)
{
    const char *p = choices;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        if (p)
            p++;
    }
    if (!p) {
        snprintf(out, cap, "?");
        return;
    }
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    snprintf(out, cap, "%.*s", (int)len, p);
}

static nops_err parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"};
    static const char *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return NOPS_OK;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return NOPS_OK;
        }
    }
    return NOPS_PARSE;
}

/* The single place a value is parsed, checked and stored. */
static nops_err set_entry(const nops_cfg_section *sec, const nops_cfg_entry *e, void *base,
                          const char *v, const char *source, char *errstr, size_t errstr_size)
{
    char *field = (char *)base + e->offset;
    char *end = NULL;
    switch (e->type) {
    case NOPS_CFG_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
            nops_errf(errstr, errstr_size, "%s: %s.%s expects an integer, got \"%s\"", source,
                      sec->name, e->key, v);
            return NOPS_PARSE;
        }
        if ((double)x < e->min || (double)x > e->max) {
            nops_errf(errstr, errstr_size, "%s: %s.%s = %lld is outside [%.17g, %.17g]", source,
                      sec->name, e->key, x, e->min, e->max);
            return NOPS_RANGE;
        }
        *(int64_t *)(void *)field = (int64_t)x;
        return NOPS_OK;
    }
    case NOPS_CFG_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x)) {
            nops_errf(errstr, errstr_size, "%s: %s.%s expects a finite number, got \"%s\"",
                      source, sec->name, e->key, v);
            return NOPS_PARSE;
        }
        if (x < e->min || x > e->max) {
            nops_errf(errstr, errstr_size, "%s: %s.%s = %g is outside [%g, %g]", source,
                      sec->name, e->key, x, e->min, e->max);
            return NOPS_RANGE;
        }
        *(double *)(void *)field = x;
        return NOPS_OK;
    }
    case NOPS_CFG_BOOL: {
        bool b;
        if (parse_bool(v, &b) != NOPS_OK) {
            nops_errf(errstr, errstr_size, "%s: %s.%s expects true or false, got \"%s\"", source,
                      sec->name, e->key, v);
            return NOPS_PARSE;
        }
        *(bool *)(void *)field = b;
        return NOPS_OK;
    }
    case NOPS_CFG_STRING: {
        size_t len = strlen(v);
        if ((double)len + 1 > e->max) {
            nops_errf(errstr, errstr_size, "%s: %s.%s is %zu bytes long, at most %.0f allowed",
                      source, sec->name, e->key, len, e->max - 1);
            return NOPS_RANGE;
        }
        memcpy(field, v, len + 1);
        return NOPS_OK;
    }
    case NOPS_CFG_ENUM: {
        int idx = enum_index(e->choices, v);
        if (idx < 0) {
            nops_errf(errstr, errstr_size, "%s: %s.%s must be one of %s, got \"%s\"", source,
                      sec->name, e->key, e->choices, v);
            return NOPS_PARSE;
        }
        *(int *)(void *)field = idx;
        return NOPS_OK;
    }
    }
    return NOPS_INTERNAL;
}

nops_err nops_cfg_add(nops_cfg *cfg, const nops_cfg_section *sec, void *base, char *errstr,
                      size_t errstr_size)
{
    if (!cfg || !sec || !base)
        return NOPS_INVAL;
    if (cfg->n == NOPS__CFG_MAX_SECTIONS) {
        nops_errf(errstr, errstr_size, "too many config sections");
        return NOPS_FULL;
    }
    for (size_t i = 0; i < sec->n_entries; i++) {
        const nops_cfg_entry *e = &sec->entries[i];
        nops_err err = set_entry(sec, e, base, e->def, "default", errstr, errstr_size);
        if (err != NOPS_OK)
            return err;
    }
    cfg->slots[cfg->n++] = (cfg_slot){sec, base};
    return NOPS_OK;
}

static const nops_cfg_entry *find(const nops_cfg *cfg, const char *section, size_t slen,
                                  const char *key, cfg_slot **slot_out)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const nops_cfg_section *sec = cfg->slots[i].sec;
        if (strlen(sec->name) != slen || strncmp(sec->name, section, slen) != 0)
            continue;
        for (size_t j = 0; j < sec->n_entries; j++) {
            if (strcmp(sec->entries[j].key, key) == 0) {
                if (slot_out)
                    *slot_out = (cfg_slot *)&cfg->slots[i];
                return &sec->entries[j];
            }
        }
    }
    return NULL;
}

nops_err nops_cfg_set(nops_cfg *cfg, const char *name, const char *value, const char *source,
                      char *errstr, size_t errstr_size)
{
    const char *mkey = NULL;
    map_slot *ms = nops__cfg_map_of(cfg, name, &mkey);
    if (ms)
        return nops__cfg_map_put(ms, mkey, value, source, errstr, errstr_size);
    const char *dot = strchr(name, '.');
    cfg_slot *slot = NULL;
    const nops_cfg_entry *e = dot ? find(cfg, name, (size_t)(dot - name), dot + 1, &slot) : NULL;
    if (!e) {
        nops_errf(errstr, errstr_size, "%s: unknown setting \"%s\" (see docs/configuration.md)",
                  source, name);
        return NOPS_NOTFOUND;
    }
    return set_entry(slot->sec, e, slot->base, value, source, errstr, errstr_size);
}

const char *nops_cfg_flag_target(const nops_cfg *cfg, const char *flag, bool *takes_value)
{
    static __thread char name[160];
    for (size_t i = 0; i < cfg->n; i++) {
        const nops_cfg_section *sec = cfg->slots[i].sec;
        for (size_t j = 0; j < sec->n_entries; j++) {
            const nops_cfg_entry *e = &sec->entries[j];
            snprintf(name, sizeof name, "%s.%s", sec->name, e->key);
            if ((e->flag && strcmp(e->flag, flag) == 0) || strcmp(name, flag) == 0) {
                if (takes_value)
                    *takes_value = true;
                return name;
            }
        }
    }
    return NULL;
}

/* A value as written (cfgvalue.c: quotes, comments, ${VAR}, @file) resolved and set; a value
 * read from a file is not repeated in a message, whatever the setting refuses. */
static nops_err resolve_and_set(cfg_slot *slot, const nops_cfg_entry *e, const char *raw,
                                bool from_file, const char *where, const char *what,
                                char *errstr, size_t errstr_size)
{
    char *value = nops_malloc(NOPS__CFG_MAX_VALUE);
    if (!value) {
        nops_errf(errstr, errstr_size, "%s: out of memory", what);
        return NOPS_NOMEM;
    }
    bool secret_file = false;
    nops_err err = nops__cfg_value(raw, from_file, value, NOPS__CFG_MAX_VALUE, what,
                                   &secret_file, errstr, errstr_size);
    if (err == NOPS_OK)
        err = set_entry(slot->sec, e, slot->base, value, where, errstr, errstr_size);
    if (err != NOPS_OK && secret_file && strstr(errstr, value) && value[0])
        nops_errf(errstr, errstr_size, "%s: the content of the value's file is not a valid %s "
                  "(not shown)", what, type_name(e->type));
    nops_free(value);
    return err;
}

static char *trim(char *s, char *end)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    *end = '\0';
    return s;
}

/* A "[section]" line: the section must be known (a table or a map section). */
static nops_err load_section(nops_cfg *cfg, char *s, const char *origin, size_t lineno,
                             char *section, size_t section_size, char *errstr,
                             size_t errstr_size)
{
    char *close = strchr(s, ']');
    const char *after = close ? close + 1 + strspn(close + 1, " \t") : NULL;
    if (!close || (*after != '\0' && *after != '#' && *after != ';')) {
        nops_errf(errstr, errstr_size, "%s:%zu: expected [section], got \"%s\"", origin,
                  lineno, s);
        return NOPS_PARSE;
    }
    char *name = trim(s + 1, close);
    if (strlen(name) >= section_size || *name == '\0') {
        nops_errf(errstr, errstr_size, "%s:%zu: bad section name", origin, lineno);
        return NOPS_PARSE;
    }
    bool known = nops__cfg_map_find(cfg, name, strlen(name)) != NULL;
    for (size_t i = 0; i < cfg->n; i++)
        known |= strcmp(cfg->slots[i].sec->name, name) == 0;
    if (!known) {
        nops_errf(errstr, errstr_size, "%s:%zu: unknown section [%s]", origin, lineno, name);
        return NOPS_NOTFOUND;
    }
    snprintf(section, section_size, "%s", name);
    return NOPS_OK;
}

/* A "key = value" line of section. */
static nops_err load_key(nops_cfg *cfg, char *s, const char *section, const char *origin,
                         size_t lineno, char *errstr, size_t errstr_size)
{
    char *eq = strchr(s, '=');
    if (!eq) {
        nops_errf(errstr, errstr_size, "%s:%zu: expected key = value, got \"%s\"", origin,
                  lineno, s);
        return NOPS_PARSE;
    }
    if (section[0] == '\0') {
        nops_errf(errstr, errstr_size, "%s:%zu: key outside any [section]", origin, lineno);
        return NOPS_PARSE;
    }
    char *key = trim(s, eq);
    char *val = trim(eq + 1, eq + 1 + strlen(eq + 1));
    char where[300];
    snprintf(where, sizeof where, "%s:%zu", origin, lineno);
    map_slot *ms = nops__cfg_map_find(cfg, section, strlen(section));
    if (ms) /* a section of arbitrary keys: the value as any other (quotes, comments, ${VAR},
             * @file: a password can come from a mounted secret) */
        return nops__cfg_map_put_raw(ms, key, val, true, where, errstr, errstr_size);
    cfg_slot *slot = NULL;
    const nops_cfg_entry *e = find(cfg, section, strlen(section), key, &slot);
    if (!e) {
        nops_errf(errstr, errstr_size, "%s: unknown key \"%s\" in [%s]", where, key, section);
        return NOPS_NOTFOUND;
    }
    char what[700];
    snprintf(what, sizeof what, "%s: %s.%.200s", where, section, key);
    return resolve_and_set(slot, e, val, true, where, what, errstr, errstr_size);
}

nops_err nops_cfg_load_buffer(nops_cfg *cfg, const char *text, size_t len, const char *origin,
                              char *errstr, size_t errstr_size)
{
    char section[128] = "";
    char line[NOPS__CFG_MAX_LINE];
    size_t lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (llen >= sizeof line) {
            nops_errf(errstr, errstr_size, "%s:%zu: line longer than %zu bytes", origin, lineno,
                      sizeof line - 1);
            return NOPS_PARSE;
        }
        memcpy(line, text + pos, llen);
        line[llen] = '\0';
        pos += llen + (nl ? 1 : 0);
        if (memchr(line, '\0', llen)) {
            nops_errf(errstr, errstr_size, "%s:%zu: NUL byte in config", origin, lineno);
            return NOPS_PARSE;
        }
        char *s = trim(line, line + llen);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        nops_err err = *s == '['
                           ? load_section(cfg, s, origin, lineno, section, sizeof section,
                                          errstr, errstr_size)
                           : load_key(cfg, s, section, origin, lineno, errstr, errstr_size);
        if (err != NOPS_OK)
            return err;
    }
    return NOPS_OK;
}

nops_err nops_cfg_load_file(nops_cfg *cfg, const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = nops_file_fopen(path, "r");
    if (!f) {
        nops_errf(errstr, errstr_size, "cannot open config file %s: %s", path, strerror(errno));
        return NOPS_IO;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    nops_err err = NOPS_OK;
    for (;;) {
        if (len + 4096 > cap) {
            if (cap >= (16u << 20)) {
                nops_errf(errstr, errstr_size, "config file %s is larger than 16 MiB", path);
                err = NOPS_RANGE;
                break;
            }
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = nops_realloc(buf, ncap);
            if (!nb) {
                err = NOPS_NOMEM;
                nops_errf(errstr, errstr_size, "out of memory reading %s", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f)) {
                nops_errf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
                err = NOPS_IO;
            }
            break;
        }
    }
    fclose(f);
    if (err == NOPS_OK)
        err = nops_cfg_load_buffer(cfg, buf ? buf : "", len, path, errstr, errstr_size);
    nops_free(buf);
    return err;
}

static void env_name(const char *section, const char *key, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "NEURALOPS_%s_%s", section, key);
    for (size_t i = 0; i < o && i < cap; i++)
        out[i] = (char)toupper((unsigned char)out[i]);
}

nops_err nops_cfg_apply_env(nops_cfg *cfg, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const nops_cfg_section *sec = cfg->slots[i].sec;
        for (size_t j = 0; j < sec->n_entries; j++) {
            char name[160];
            env_name(sec->name, sec->entries[j].key, name, sizeof name);
            const char *v = getenv(name);
            if (!v)
                continue;
            char what[500];
            snprintf(what, sizeof what, "%s: %s.%s", name, sec->name, sec->entries[j].key);
            nops_err err = resolve_and_set(&cfg->slots[i], &sec->entries[j], v, false, name,
                                           what, errstr, errstr_size);
            if (err != NOPS_OK)
                return err;
        }
    }
    return nops__cfg_map_apply_env(cfg, errstr, errstr_size);
}

/*
 * NEURALOPS_* variables that are not settings, so not typos either: the test harness's
 * (tests/with-postgres.sh exports NEURALOPS_TEST_PG_DSN and friends to every process of a run)
 * and the ones a playbook step is given (orchestrate/steps.c and runner.c), since a step may
 * itself run neuralops. A trailing '*' matches any rest of the name.
 */
static const char *const env_not_settings[] = {
    "NEURALOPS_TEST_*",     "NEURALOPS_DRY_RUN",     "NEURALOPS_ORCHESTRATION_ID",
    "NEURALOPS_PLAYBOOK_ID", "NEURALOPS_INCIDENT_ID", "NEURALOPS_SERVICE",
    "NEURALOPS_HOST",
};

static bool env_allowed(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof env_not_settings / sizeof env_not_settings[0]; i++) {
        const char *a = env_not_settings[i];
        size_t alen = strlen(a);
        if (a[alen - 1] == '*' ? len >= alen - 1 && strncmp(name, a, alen - 1) == 0
                               : len == alen && strncmp(name, a, len) == 0)
            return true;
    }
    return false;
}

/* Edit distance (insertions, deletions, substitutions; case-insensitive) of a[0..al), b. */
static size_t edit_distance(const char *a, size_t al, const char *b)
{
    size_t bl = strlen(b), row[161];
    if (al > 160 || bl > 160)
        return al > bl ? al : bl;
    for (size_t j = 0; j <= bl; j++)
        row[j] = j;
    for (size_t i = 1; i <= al; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bl; j++) {
            size_t up = row[j];
            size_t sub = diag + (toupper((unsigned char)a[i - 1]) !=
                                 toupper((unsigned char)b[j - 1]));
            size_t best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[bl];
}

/* True when `name` (len bytes, from the environment) is the variable of a registered setting;
 * otherwise the closest such variable goes to `closest` with its distance. */
static bool env_known(const nops_cfg *cfg, const char *name, size_t len, char *closest,
                      size_t cap, size_t *dist)
{
    *dist = (size_t)-1;
    for (size_t i = 0; i < cfg->n; i++) {
        const nops_cfg_section *sec = cfg->slots[i].sec;
        for (size_t j = 0; j < sec->n_entries; j++) {
            char env[160];
            env_name(sec->name, sec->entries[j].key, env, sizeof env);
            if (strlen(env) == len && strncmp(env, name, len) == 0)
                return true;
            size_t d = edit_distance(name, len, env);
            if (d < *dist) {
                *dist = d;
                snprintf(closest, cap, "%s", env);
            }
        }
    }
    return false;
}

size_t nops_cfg_warn_unknown_env(const nops_cfg *cfg)
{
    extern char **environ;
    size_t unknown = 0;
    for (char **ep = environ; ep && *ep; ep++) {
        const char *var = *ep;
        size_t len = strcspn(var, "=");
        if (len < 10 || strncasecmp(var, "NEURALOPS_", 10) != 0 || env_allowed(var, len))
            continue;
        char closest[160] = "", shown[104];
        size_t dist;
        if (nops__cfg_map_env_of(cfg, var, len) ||
            env_known(cfg, var, len, closest, sizeof closest, &dist))
            continue;
        unknown++;
        size_t n = len < 100 ? len : 100; /* the name only (the value may be a secret), tamed */
        for (size_t i = 0; i < n; i++)
            shown[i] = isalnum((unsigned char)var[i]) || var[i] == '_' ? var[i] : '?';
        snprintf(shown + n, sizeof shown - n, "%s", len > n ? "..." : "");
        if (!closest[0])
            NOPS_WARN("config", "environment variable %s is not a setting and is ignored", shown);
        else if (dist <= 3 || dist * 4 <= len)
            NOPS_WARN("config", "environment variable %s is not a setting and is ignored: did "
                      "you mean %s?", shown, closest);
        else
            NOPS_WARN("config", "environment variable %s is not a setting and is ignored (the "
                      "closest is %s; docs/configuration.md lists them all)", shown, closest);
    }
    return unknown;
}

const char *nops_cfg_default(const nops_cfg *cfg, const char *name)
{
    const char *dot = strchr(name, '.');
    const nops_cfg_entry *e = dot ? find(cfg, name, (size_t)(dot - name), dot + 1, NULL) : NULL;
    return e ? e->def : NULL;
}

nops_err nops_cfg_finalize(nops_cfg *cfg, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const nops_cfg_section *sec = cfg->slots[i].sec;
        if (!sec->finalize)
            continue;
        nops_err err = sec->finalize(cfg->slots[i].base, errstr, errstr_size);
        if (err != NOPS_OK)
            return err;
    }
    return NOPS_OK;
}

static void value_text(const nops_cfg_entry *e, const void *base, char *out, size_t cap)
{
    const char *field = (const char *)base + e->offset;
    if (e->flags & NOPS_CFG_SECRET) {
        snprintf(out, cap, "%s", *field ? "********" : "");
        return;
    }
    switch (e->type) {
    case NOPS_CFG_INT:
        snprintf(out, cap, "%lld", (long long)*(const int64_t *)(const void *)field);
        break;
    case NOPS_CFG_DOUBLE:
        snprintf(out, cap, "%.17g", *(const double *)(const void *)field);
        break;
    case NOPS_CFG_BOOL:
        snprintf(out, cap, "%s", *(const bool *)(const void *)field ? "true" : "false");
        break;
    case NOPS_CFG_STRING:
        snprintf(out, cap, "%s", field);
        break;
    case NOPS_CFG_ENUM:
        enum_name(e->choices, *(const int *)(const void *)field, out, cap);
        break;
    }
}

static void range_text(const nops_cfg_entry *e, char *out, size_t cap)
{
    if (e->type == NOPS_CFG_INT || e->type == NOPS_CFG_DOUBLE)
        snprintf(out, cap, "%g … %g", e->min, e->max);
    else if (e->type == NOPS_CFG_ENUM)
        snprintf(out, cap, "%s", e->choices);
    else if (e->type == NOPS_CFG_STRING)
        snprintf(out, cap, "≤ %.0f bytes", e->max - 1);
    else
        snprintf(out, cap, "true, false");
}

void nops_cfg_print_flags(const nops_cfg *cfg, FILE *out)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const nops_cfg_section *sec = cfg->slots[i].sec;
        for (size_t j = 0; j < sec->n_entries; j++) {
            const nops_cfg_entry *e = &sec->entries[j];
            if (!e->flag)
                continue;
            char opt[64];
            snprintf(opt, sizeof opt, "--%s %s", e->flag,
                     e->type == NOPS_CFG_ENUM ? e->choices : type_name(e->type));
            fprintf(out, "  %-34s %s (default %s; %s.%s)\n", opt, e->doc, e->def, sec->name,
                    e->key);
        }
    }
    fprintf(out, "  %-34s %s\n", "--set SECTION.KEY=VALUE",
             "any setting of docs/configuration.md");
}

void nops_cfg_print_markdown(const nops_cfg *cfg, FILE *out)
{
    fprintf(out, "# Configuration\n\n"
                 "<!-- Generated by `neuralops config docs` from the tables in the code; "
                 "do not edit by hand. -->\n\n"
                 "Every setting can come from the config file (`-c FILE`, INI: `[section]` "
                 "then `key = value`), from an environment variable "
                 "`NEURALOPS_<SECTION>_<KEY>`, or from a command-line flag "
                 "(`--set section.key=value`, or the short alias shown). Later sources win: "
                 "defaults < file < environment < flags. Unknown keys and out-of-range values "
                 "are errors that name the file and line, the variable or the flag; a "
                 "`NEURALOPS_*` environment variable that is no setting's is logged as a "
                 "warning naming the closest setting.\n\n"
                 "Values in the file: a comment may follow a value after `#` or `;` (at the "
                 "start of the value or after a blank: `window = 60   # rolling window`); a "
                 "value in double quotes keeps `#` and `;` (inside, `\\\"` is a quote and "
                 "`\\\\` a backslash). `${VAR}` is replaced by the environment variable VAR, "
                 "quoted or not (an unset VAR is an error naming it; `$${` is a literal `${`). "
                 "An unquoted value that starts with `@` names a file whose content is the "
                 "value, one trailing newline removed — for secrets mounted as files "
                 "(`jwt_secret = @/run/secrets/jwt`, `@${CREDENTIALS_DIRECTORY}/jwt` under "
                 "systemd); `@@` is a literal `@`; a relative path is from the working "
                 "directory. Environment variables take `@file` too (no comments, quotes or "
                 "`${VAR}` there). Order within a value: quotes and comment, then `${VAR}`, "
                 "then `@file`. Neither a file's content nor a secret setting's value is ever "
                 "logged or shown in an error (`config show` and `/config` mask secrets).\n\n"
                 "`serve` reads the file again on SIGHUP (`systemctl reload neuralops`) and "
                 "applies `log.*`, `api.keys`, `api.jwt_secret`, `api.jwt_issuer`, the "
                 "detector thresholds (`detect.false_alarm_points`, `z_threshold`, "
                 "`ewma_threshold`, `cusum_threshold`, `hysteresis`, `clear_points`), the "
                 "notification routes (`notify.alertmanager_severities`, "
                 "`notify.webhook_severities`), and the signed playbooks and the policy "
                 "(`orchestrate.registry_dir`, `pubkeys` and `policy_file`, read again even "
                 "when their names did not change); one log line names "
                 "any other changed setting, which needs a restart. A file that does not load "
                 "changes nothing.\n\n");
    for (size_t i = 0; i < cfg->n; i++) {
        const nops_cfg_section *sec = cfg->slots[i].sec;
        fprintf(out, "## [%s]\n\n%s\n\n", sec->name, sec->doc);
        fprintf(out, "| key | type | default | allowed | environment | flag | description |\n"
                     "|---|---|---|---|---|---|---|\n");
        for (size_t j = 0; j < sec->n_entries; j++) {
            const nops_cfg_entry *e = &sec->entries[j];
            char env[160], range[128];
            env_name(sec->name, e->key, env, sizeof env);
            range_text(e, range, sizeof range);
            fprintf(out, "| `%s` | %s | `%s` | %s | `%s` | %s%s%s | %s%s |\n", e->key,
                    type_name(e->type), e->def, range, env, e->flag ? "`--" : "",
                    e->flag ? e->flag : "", e->flag ? "`" : "", e->doc,
                    (e->flags & NOPS_CFG_SECRET) ? " Secret: masked in dumps." : "");
        }
        fprintf(out, "\n");
        nops__cfg_map_print_markdown(cfg, sec->name, out);
    }
    nops__cfg_map_print_markdown(cfg, NULL, out);
}

void nops_cfg_print_values(const nops_cfg *cfg, FILE *out)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const nops_cfg_section *sec = cfg->slots[i].sec;
        fprintf(out, "%s[%s]\n", i ? "\n" : "", sec->name);
        for (size_t j = 0; j < sec->n_entries; j++) {
            char v[512];
            value_text(&sec->entries[j], cfg->slots[i].base, v, sizeof v);
            fprintf(out, "%s = %s\n", sec->entries[j].key, v);
        }
        nops__cfg_map_print_values(cfg, sec->name, out);
    }
    nops__cfg_map_print_values(cfg, NULL, out);
}

/* Whether entry e holds the same value in base a and base b. */
static bool same_value(const nops_cfg_entry *e, const void *a, const void *b)
{
    const char *fa = (const char *)a + e->offset, *fb = (const char *)b + e->offset;
    switch (e->type) {
    case NOPS_CFG_INT:
        return *(const int64_t *)(const void *)fa == *(const int64_t *)(const void *)fb;
    case NOPS_CFG_DOUBLE:
        return *(const double *)(const void *)fa == *(const double *)(const void *)fb;
    case NOPS_CFG_BOOL:
        return *(const bool *)(const void *)fa == *(const bool *)(const void *)fb;
    case NOPS_CFG_STRING:
        return strcmp(fa, fb) == 0;
    case NOPS_CFG_ENUM:
        return *(const int *)(const void *)fa == *(const int *)(const void *)fb;
    }
    return false;
}

size_t nops_cfg_diff(const nops_cfg *a, const nops_cfg *b, nops_cfg_diff_fn *fn, void *ud)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        const nops_cfg_section *sec = a->slots[i].sec;
        if (b->slots[i].sec != sec)
            continue;
        for (size_t j = 0; j < sec->n_entries; j++) {
            if (same_value(&sec->entries[j], a->slots[i].base, b->slots[i].base))
                continue;
            n++;
            if (fn)
                fn(ud, sec->name, sec->entries[j].key);
        }
    }
    return n;
}
