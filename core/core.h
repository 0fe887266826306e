/*
 * core.h — what every NeuralOps module shares: errors, allocation, logging, configuration.
 *
 * Ownership in one sentence: whoever calls a `_new`/`_create` owns the result and frees it with the
 * matching `_destroy` (NULL is always accepted); functions that take a `char *errstr, size_t
 * errstr_size` fill it with a sentence a user can act on whenever they return an error, and
 * ownership of an argument moves only when the call succeeds.
 *
 * Library code never prints or exits: it returns a nops_err and, for setup calls, an error
 * sentence. Only app/ prints. Logging goes through nops_log(), which the application points at
 * stderr (text or JSON lines) or anywhere else.
 */
#ifndef NOPS_CORE_H
#define NOPS_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** One X-macro drives the enum, nops_strerror() and nops_err_name(). */
#define NOPS_ERRORS(X)                                                                         \
    X(OK, 0, "success")                                                                        \
    X(NOMEM, -1, "out of memory")                                                              \
    X(INVAL, -2, "invalid argument")                                                           \
    X(PARSE, -3, "malformed input")                                                            \
    X(RANGE, -4, "value out of range")                                                         \
    X(IO, -5, "input/output error")                                                            \
    X(NOTFOUND, -6, "not found")                                                               \
    X(EXISTS, -7, "already exists")                                                            \
    X(FULL, -8, "capacity exhausted")                                                          \
    X(UNSUPPORTED, -9, "not supported on this machine")                                        \
    X(CONFIG, -10, "invalid configuration")                                                    \
    X(INTERNAL, -11, "internal error")

typedef enum nops_err {
#define NOPS__ERR_ENUM(name, code, text) NOPS_##name = code,
    NOPS_ERRORS(NOPS__ERR_ENUM)
#undef NOPS__ERR_ENUM
} nops_err;

/** Human sentence for an error code; never NULL, static storage. */
const char *nops_strerror(nops_err err);
/** Symbolic name ("NOPS_PARSE"); never NULL, static storage. */
const char *nops_err_name(nops_err err);

/** Format into an error buffer (no-op when errstr is NULL or errstr_size is 0). */
void nops_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------------------------ */
/* Allocation                                                                                  */
/* ------------------------------------------------------------------------------------------ */
/*
 * Every module allocates through these so that the process can report the bytes it holds and
 * tests can make the Nth allocation fail. Memory from nops_malloc/nops_calloc/nops_realloc/
 * nops_aligned_alloc/nops_strdup is released with nops_free (and only with it).
 */

void *nops_malloc(size_t size);
void *nops_calloc(size_t n, size_t size);
/** Like realloc(3); not for memory from nops_aligned_alloc. On failure the old block stays. */
void *nops_realloc(void *ptr, size_t size);
/** Zeroed memory aligned to `align` (a power of two, 16..4096). */
void *nops_aligned_alloc(size_t align, size_t size);
/** Block `ptr` from nops_aligned_alloc (or NULL) grown to `size` bytes: its contents kept, the
 *  new bytes zero; it may move (the old pointer is then invalid). Large blocks grow in place in
 *  memory terms (pages remapped, not copied). On failure NULL, and the old block stays. */
void *nops_aligned_grow(void *ptr, size_t align, size_t size);
char *nops_strdup(const char *s);
char *nops_strndup(const char *s, size_t n);
void nops_free(void *ptr);

/**
 * Process-wide malloc settings for a streaming engine, called once at the start of main(),
 * before any thread:
 *  - blocks up to 32 MiB come from the heap and up to 256 MiB free at its top are kept
 *    (glibc's M_MMAP_THRESHOLD, M_TRIM_THRESHOLD). librdkafka's fetch and lz4 buffers (MBs
 *    each) were otherwise mapped and unmapped, or trimmed and grown again, on every fetch, and
 *    each new page faulted in: 39 % fewer page faults in the end-to-end benchmark;
 *  - at most nops_alloc_arena_limit() malloc arenas (M_ARENA_MAX; glibc's default is 8 per
 *    CPU). Each of librdkafka's broker threads otherwise grew an arena of its own to hold the
 *    messages it decompressed, faulting in fresh pages for data the process already had pages
 *    for: the end-to-end benchmark's faults fell by another ~45 % (bench/RESULTS.md). The
 *    threads that allocate are librdkafka's and the poller; the workers' hot loop does not.
 * Left alone, returning false, when the environment sets malloc tunables (GLIBC_TUNABLES with
 * "glibc.malloc.", MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_ARENA_MAX): the
 * operator's settings win.
 */
bool nops_alloc_tune_process(void);
/** The arena limit nops_alloc_tune_process sets: one per 4 online CPUs, 1 below 8 CPUs. */
int nops_alloc_arena_limit(void);

/** Bytes currently held through this layer (requested sizes, headers excluded). */
size_t nops_alloc_bytes_in_use(void);
/** Highest value nops_alloc_bytes_in_use() has reached. */
size_t nops_alloc_bytes_peak(void);
/** Number of live allocations. */
size_t nops_alloc_live_count(void);
/**
 * Make the allocation `n` calls from now fail (0 = the very next one), and every one after it
 * when `sticky`; n < 0 turns failure injection off. For tests.
 */
void nops_alloc_fail_after(long n, bool sticky);

/**
 * A growable byte buffer (owned bytes, freed with nops_free(buf.b)). Reserve before writing:
 * nops_buf_reserve makes room for `extra` more bytes past len, doubling, all or nothing.
 */
typedef struct nops_buf {
    char *b;    /**< bytes */
    size_t len; /**< used */
    size_t cap; /**< allocated */
} nops_buf;

nops_err nops_buf_reserve(nops_buf *buf, size_t extra);

/* ------------------------------------------------------------------------------------------ */
/* Logging                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef enum nops_log_level {
    NOPS_LOG_DEBUG = 0,
    NOPS_LOG_INFO = 1,
    NOPS_LOG_WARN = 2,
    NOPS_LOG_ERROR = 3,
    NOPS_LOG_OFF = 4,
} nops_log_level;

typedef enum nops_log_format {
    NOPS_LOG_TEXT = 0, /**< `2026-11-23T10:00:00.123Z INFO  detect: message` */
    NOPS_LOG_JSON = 1, /**< `{"ts":"…","level":"info","module":"detect","msg":"…"}` */
} nops_log_format;

/** Where log lines go; `line` has no trailing newline. */
typedef void(nops_log_sink_fn)(void *userdata, nops_log_level level, const char *line);

/** Set level and format; the sink stays as it is (stderr by default). Thread-safe. */
void nops_log_configure(nops_log_level level, nops_log_format format);
/** Route lines to `fn` (NULL restores stderr). */
void nops_log_set_sink(nops_log_sink_fn *fn, void *userdata);
nops_log_level nops_log_get_level(void);
/** Parse "debug|info|warn|error|off". */
nops_err nops_log_level_parse(const char *s, nops_log_level *out);

void nops_log(nops_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void nops_vlog(nops_log_level level, const char *module, const char *fmt, va_list ap);

/** The type of a structured field's value. */
typedef enum nops_log_field_type {
    NOPS_LOGF_STR,  /**< text, escaped like the message */
    NOPS_LOGF_INT,  /**< integer */
    NOPS_LOGF_NUM,  /**< finite number, written with 3 decimals (a duration in ms) */
    NOPS_LOGF_BOOL, /**< true / false */
} nops_log_field_type;

/** One structured field of a log entry. The caller owns everything; nothing is kept. */
typedef struct nops_log_field {
    const char *key;          /**< [a-z0-9_]+; not ts, level, module or msg */
    nops_log_field_type type; /**< which member below holds the value */
    const char *str;          /**< NOPS_LOGF_STR (NULL writes "-") */
    int64_t i;                /**< NOPS_LOGF_INT, NOPS_LOGF_BOOL (non-zero = true) */
    double num;               /**< NOPS_LOGF_NUM */
} nops_log_field;

/**
 * One entry with structured fields beside the message: JSON gets each as its own member after
 * "msg" (`"status":200`), text gets ` key=value` after the message (a string value holding a
 * blank, '=' or '"' is quoted, its '"' written \"). At most 16 fields; the entry is one line
 * like every other.
 */
void nops_log_fields(nops_log_level level, const char *module, const nops_log_field *fields,
                     size_t n_fields, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define NOPS_DEBUG(mod, ...) nops_log(NOPS_LOG_DEBUG, mod, __VA_ARGS__)
#define NOPS_INFO(mod, ...) nops_log(NOPS_LOG_INFO, mod, __VA_ARGS__)
#define NOPS_WARN(mod, ...) nops_log(NOPS_LOG_WARN, mod, __VA_ARGS__)
#define NOPS_ERROR(mod, ...) nops_log(NOPS_LOG_ERROR, mod, __VA_ARGS__)

#define NOPS_RATELIMIT_NS (10ll * 1000000000ll) /**< one line per this many ns, at most */

/** At most one log line per NOPS_RATELIMIT_NS for one kind of event; the events in between are
 *  counted and reported with the next line. Zeroed = nothing logged yet. Not thread-safe: keep
 *  one per thread or guard it with the lock of the state it belongs to. */
typedef struct nops_ratelimit {
    int64_t last_ns;     /**< clock of the last line (0 = never) */
    uint64_t suppressed; /**< events since that were not logged */
} nops_ratelimit;

/** Whether a line is due at `now_ns` (any clock, the same for every call on `rl`); when it is,
 *  *missed gets the events not logged since the last line. */
bool nops_ratelimit_due(nops_ratelimit *rl, int64_t now_ns, uint64_t *missed);

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                               */
/* ------------------------------------------------------------------------------------------ */
/*
 * Each module describes its settings in one table of nops_cfg_entry rows pointing into a
 * struct of its own. The same table drives defaults, the config file, NEURALOPS_<SECTION>_<KEY>
 * environment overrides, command-line flags, validation, `--help` text, docs/configuration.md
 * and the masked dump. Precedence: defaults < file < environment < flags.
 *
 * The file format is INI-like:
 *
 *     # comment
 *     [detect]
 *     window = 60
 *     method = both
 */

typedef enum nops_cfg_type {
    NOPS_CFG_INT,    /**< int64_t; min/max inclusive */
    NOPS_CFG_DOUBLE, /**< double; finite, min/max inclusive */
    NOPS_CFG_BOOL,   /**< bool; true/false/yes/no/on/off/1/0 */
    NOPS_CFG_STRING, /**< char[max] inside the struct; max is the buffer size */
    NOPS_CFG_ENUM,   /**< int; index into the '|'-separated `choices` */
} nops_cfg_type;

#define NOPS_CFG_SECRET 0x1u /**< masked in dumps and never logged */

typedef struct nops_cfg_entry {
    const char *key;     /**< key within its section, lower_snake_case */
    nops_cfg_type type;  /**< how the value is parsed and stored */
    size_t offset;       /**< offsetof() into the section struct */
    double min;          /**< lower bound (INT/DOUBLE) */
    double max;          /**< upper bound (INT/DOUBLE) or buffer size (STRING) */
    const char *def;     /**< default, as text, parsed like any other value */
    const char *choices; /**< ENUM only: "a|b|c" */
    const char *flag;    /**< command-line alias without dashes ("window"), or NULL */
    unsigned flags;      /**< NOPS_CFG_SECRET, ... */
    const char *doc;     /**< one or two sentences for --help and the docs */
} nops_cfg_entry;

typedef struct nops_cfg_section {
    const char *name;                 /**< "[name]" in the file, NEURALOPS_NAME_* in env */
    const char *doc;                  /**< one paragraph for the docs */
    const nops_cfg_entry *entries;    /**< the table */
    size_t n_entries;                 /**< rows in the table */
    /** Cross-field checks after all sources were applied (may be NULL). */
    nops_err (*finalize)(void *base, char *errstr, size_t errstr_size);
} nops_cfg_section;

typedef struct nops_cfg nops_cfg;

/** An empty configuration; add sections next. */
nops_cfg *nops_cfg_new(void);
void nops_cfg_destroy(nops_cfg *cfg);
/**
 * Register a section whose settings live in `*base` (caller-owned, must outlive cfg) and write
 * the defaults into it. `sec` must have static storage.
 */
nops_err nops_cfg_add(nops_cfg *cfg, const nops_cfg_section *sec, void *base, char *errstr,
                      size_t errstr_size);
/** Set one value from text; `name` is "section.key". `source` names it in errors ("--window"). */
nops_err nops_cfg_set(nops_cfg *cfg, const char *name, const char *value, const char *source,
                      char *errstr, size_t errstr_size);
/** Look up the entry behind a command-line alias or a "section.key" name; NULL if none. */
const char *nops_cfg_flag_target(const nops_cfg *cfg, const char *flag, bool *takes_value);
/** Apply a config file's text; errors name `origin` and the line. Unknown keys are errors. */
nops_err nops_cfg_load_buffer(nops_cfg *cfg, const char *text, size_t len, const char *origin,
                              char *errstr, size_t errstr_size);
nops_err nops_cfg_load_file(nops_cfg *cfg, const char *path, char *errstr, size_t errstr_size);
/** Apply every NEURALOPS_<SECTION>_<KEY> variable that is set. */
nops_err nops_cfg_apply_env(nops_cfg *cfg, char *errstr, size_t errstr_size);
/**
 * Log a warning for each NEURALOPS_* variable in the environment (the prefix in any case) that
 * is no setting's variable, naming it (never its value) and the closest setting's variable, so
 * a typo does not silently leave a default in force. NEURALOPS_TEST_* and the variables a
 * playbook step is given (NEURALOPS_DRY_RUN, _ORCHESTRATION_ID, _PLAYBOOK_ID, _INCIDENT_ID,
 * _SERVICE, _HOST) are not settings and are left alone. Returns how many were unknown.
 */
size_t nops_cfg_warn_unknown_env(const nops_cfg *cfg);
/** The default of "section.key" as text (the table's), or NULL when there is no such setting. */
const char *nops_cfg_default(const nops_cfg *cfg, const char *name);
/** Run every section's finalize check. */
nops_err nops_cfg_finalize(nops_cfg *cfg, char *errstr, size_t errstr_size);

/** `--help` lines for every entry that has a flag alias (and `--set section.key=V`). */
void nops_cfg_print_flags(const nops_cfg *cfg, FILE *out);
/** Called by nops_cfg_diff for each setting whose value differs. */
typedef void(nops_cfg_diff_fn)(void *userdata, const char *section, const char *key);
/**
 * The settings whose values differ between two configurations built with the same sections in
 * the same order (e.g. the running one and one read again from the file): `fn` (may be NULL)
 * is called with each, in table order. Compares the stored values, secrets included (their
 * values are never passed out). Returns how many differ.
 */
size_t nops_cfg_diff(const nops_cfg *a, const nops_cfg *b, nops_cfg_diff_fn *fn, void *ud);
/** docs/configuration.md, generated from the tables. */
void nops_cfg_print_markdown(const nops_cfg *cfg, FILE *out);
/** Current values as INI text; secrets masked. */
void nops_cfg_print_values(const nops_cfg *cfg, FILE *out);

/*
 * Sections of arbitrary keys ("map sections"), for settings passed through to a library that
 * has its own, open-ended set of properties (e.g. [kafka.librdkafka]). A map section takes any
 * `key = value` line, one per line; the value is the rest of the line (it may hold commas, '='
 * and spaces). The same keys come from `--set SECTION.KEY=VALUE` and from the environment:
 * NEURALOPS_<SECTION>_<KEY> with the section's dots as '_', and in KEY '_' for '.' and '__' for
 * '_' (NEURALOPS_KAFKA_LIBRDKAFKA_SASL_PASSWORD is sasl.password, ..._LOG__LEVEL is log_level).
 * A key given again replaces the earlier value (later sources win). The pairs live in a
 * caller-owned nops_cfg_map (no allocation); values of keys the section calls secret are
 * masked by `config show`.
 */
#define NOPS_CFG_MAP_MAX 64      /**< keys in one map section, at most */
#define NOPS_CFG_MAP_BYTES 16384 /**< bytes for its keys and values (NULs included) */

/** The pairs of a map section. Zeroed = empty. Copy it by value freely (no pointers). */
typedef struct nops_cfg_map {
    uint32_t n;                      /**< pairs held */
    uint32_t used;                   /**< bytes of `buf` in use */
    uint32_t key[NOPS_CFG_MAP_MAX];  /**< offset in buf of the i-th key */
    uint32_t val[NOPS_CFG_MAP_MAX];  /**< offset in buf of its value */
    char buf[NOPS_CFG_MAP_BYTES];    /**< the text, NUL-terminated pieces */
} nops_cfg_map;

typedef struct nops_cfg_map_section {
    const char *name;  /**< "[name]" in the file; may hold dots ("kafka.librdkafka") */
    const char *doc;   /**< one paragraph for the docs */
    /** True when the value of `key` must never be shown (may be NULL: none is). */
    bool (*is_secret)(const char *key);
    /** Validates one pair as it is set; errors must not quote a secret value (may be NULL). */
    nops_err (*check)(const char *key, const char *value, char *errstr, size_t errstr_size);
} nops_cfg_map_section;

/**
 * Register a map section whose pairs go into `*map` (caller-owned, zeroed here, must outlive
 * cfg). `sec` must have static storage. Same errors as nops_cfg_add.
 */
nops_err nops_cfg_add_map(nops_cfg *cfg, const nops_cfg_map_section *sec, nops_cfg_map *map,
                          char *errstr, size_t errstr_size);
/** Set `key` to `value` in `map` (replacing an earlier value); NOPS_FULL when it has no room,
 *  NOPS_INVAL for an empty key. For programs and tests; files and flags go through nops_cfg. */
nops_err nops_cfg_map_set(nops_cfg_map *map, const char *key, const char *value);
/** The value of `key`, or NULL. */
const char *nops_cfg_map_get(const nops_cfg_map *map, const char *key);
/** The i-th key and value (i < map->n), in the order they were first set. */
const char *nops_cfg_map_key(const nops_cfg_map *map, size_t i);
const char *nops_cfg_map_value(const nops_cfg_map *map, size_t i);

/* ------------------------------------------------------------------------------------------ */
/* Records shared by detection, sinks and the API (api/openapi.json: Signal, Incident)        */
/* ------------------------------------------------------------------------------------------ */

#define NOPS_KEY_MAX 1024   /**< longest canonical series key, NUL included */
#define NOPS_ID_LEN 17      /**< 16 hex digits + NUL */

/** One label of a series (parsers' tags, canonical keys); strings need not be NUL-terminated
 *  (parsers point into messages). The one label type of every module. */
typedef struct nops_label {
    const char *key;    /**< label name */
    size_t key_len;     /**< its length */
    const char *value;  /**< label value, unescaped */
    size_t value_len;   /**< its length */
} nops_label;

#define NOPS_LABELS_MAX 64 /**< labels of one series, at most (a point with more is refused) */

/**
 * The labels of one series as (key, value) pairs, stored inline so a record holding them can be
 * copied and queued like the rest of it: the unescaped keys and values sit back to back in
 * `text`, and `at` spans them. Built by nops_labels_add or nops_series_key_labels, read with
 * nops_labels_at. A canonical key's labels always fit (their text is shorter than the key).
 */
typedef struct nops_labels {
    uint32_t n;                 /**< pairs held */
    uint32_t used;              /**< bytes of `text` in use */
    struct {
        uint16_t key_off, key_len;     /**< the key: text[key_off .. +key_len) */
        uint16_t value_off, value_len; /**< the value, likewise */
    } at[NOPS_LABELS_MAX];      /**< the pairs, in the order added */
    char text[NOPS_KEY_MAX];    /**< keys and values, unescaped, not NUL-terminated */
} nops_labels;

/** Append a pair (copied). NOPS_FULL when the set holds NOPS_LABELS_MAX pairs or the text does
 *  not fit; the set is unchanged then. */
nops_err nops_labels_add(nops_labels *ls, const char *key, size_t key_len, const char *value,
                         size_t value_len);
/** Pair i (< ls->n) as spans into ls (valid while ls is unchanged). */
nops_label nops_labels_at(const nops_labels *ls, uint32_t i);
/** True when every pair of ls lies within its text (for a set read back from storage). */
bool nops_labels_valid(const nops_labels *ls);
/** True when ls holds the pair l (same key, same value). */
bool nops_labels_has(const nops_labels *ls, const nops_label *l);

/*
 * Canonical series keys (core/serieskey.c): `name{k1="v1",k2="v2"}`, labels sorted by key, no
 * braces without labels, values escaped like the Prometheus exposition format (backslash,
 * quote, newline). The detector hashes this text into the series id (nops_detect_series_key).
 */

/**
 * Whether name[0..len) may be a series' metric name: not empty, and no `{`, `}`, `"` or control
 * character (a key is split at its first `{`). Parsers refuse a point whose name is not.
 */
bool nops_series_name_ok(const char *name, size_t len);
/**
 * Whether key[0..len) may be a label key: not empty, and no `=`, `"`, `,`, `{`, `}` or control
 * character (label keys are not escaped in a canonical key). Parsers refuse a point with one.
 */
bool nops_label_key_ok(const char *key, size_t len);

/**
 * Write the canonical key of name + labels into key (at most key_cap bytes with the NUL); its
 * length in *key_len (may be NULL). `labels` is sorted in place. NOPS_RANGE when it does not fit,
 * NOPS_INVAL for an empty name, more than NOPS_LABELS_MAX labels, a duplicate label key, or a
 * name or label key that could not be split back out of the key (nops_series_name_ok,
 * nops_label_key_ok).
 */
nops_err nops_series_key(const char *name, size_t name_len, nops_label *labels, size_t n_labels,
                         char *key, size_t key_cap, size_t *key_len);
/**
 * Split a canonical key back into its name (its length in *name_len: the name is key's prefix)
 * and its labels (unescaped, into *out, which is reset; out may be NULL to get the name alone).
 * NOPS_PARSE when the text is not a canonical key.
 */
nops_err nops_series_key_labels(const char *key, size_t *name_len, nops_labels *out);

/** How a signal was raised. */
typedef enum nops_method_fired {
    NOPS_FIRED_ZSCORE = 0, /**< the rolling z-score crossed its threshold (first, or larger) */
    NOPS_FIRED_EWMA = 1,   /**< the EWMA z crossed its threshold */
    NOPS_FIRED_CUSUM = 2,  /**< the long-horizon CUSUM found a sustained shift */
    NOPS_FIRED_SEASON = 3, /**< the EWMA on the deseasonalised value (a series with a season) */
} nops_method_fired;

/**
 * A signal: one series entering its anomalous state. Plain data; strings are inline so a record
 * can be copied, queued and written without ownership questions.
 */
typedef struct nops_signal {
    char id[NOPS_ID_LEN];        /**< hex of a hash of (series id, ts): stable across replays */
    uint64_t series_id;          /**< XXH3 of `series` */
    char series[NOPS_KEY_MAX];   /**< canonical key `name{k="v",...}` */
    uint32_t metric_len;         /**< the metric name: series[0 .. metric_len) */
    nops_labels labels;          /**< the series' labels as pairs, sorted by key */
    int64_t ts_ns;               /**< point timestamp */
    double value;                /**< the point's value */
    nops_method_fired method;    /**< which detector decided */
    float zscore;                /**< rolling z at the point */
    float ewma;                  /**< EWMA z at the point */
    double score;                /**< in [0, 1] */
    char hint[384];              /**< one human sentence */
    int64_t received_ns;         /**< wall clock when the point was read (latency figures) */
} nops_signal;

/**
 * Set a signal's series from its canonical key: `series`, `metric_len` and `labels` (decoded
 * once here, so the correlator and the sinks read pairs). NOPS_PARSE when `key` is not a
 * canonical key, NOPS_RANGE when it is longer than NOPS_KEY_MAX: `series` then still holds the
 * key (cut to NOPS_KEY_MAX − 1 bytes for NOPS_RANGE), `metric_len` is its whole length and
 * `labels` is empty, so the signal keeps its identity; the caller counts the failure.
 */
nops_err nops_signal_set_series(nops_signal *sig, const char *key);

#define NOPS_INCIDENT_MAX_SIGNALS 64 /**< signals listed per incident (the count goes on) */

typedef enum nops_incident_status {
    NOPS_INCIDENT_OPEN = 0,
    NOPS_INCIDENT_RESOLVED = 1,
} nops_incident_status;

/** How urgent an incident is (correlate.h documents the rules); only warning and above page. */
typedef enum nops_severity {
    NOPS_SEVERITY_INFO = 0,     /**< for the record: a single weak signal, not paging */
    NOPS_SEVERITY_WARNING = 1,  /**< worth a look: several metrics, a strong or lasting signal */
    NOPS_SEVERITY_CRITICAL = 2, /**< page now: several hosts, or broad and strong or long */
} nops_severity;

/** "info", "warning" or "critical". */
static inline const char *nops_severity_name(nops_severity s)
{
    return s == NOPS_SEVERITY_CRITICAL ? "critical" : s == NOPS_SEVERITY_WARNING ? "warning"
                                                                                 : "info";
}

#define NOPS_INCIDENT_MAX_RECOS 3    /**< recommendations carried inline by an incident */
#define NOPS_INCIDENT_MAX_METRICS 4  /**< metric names an incident keeps (for recommendations) */
#define NOPS_INCIDENT_METRIC_LEN 64  /**< longest metric name kept + NUL (longer: left out) */

/** One recommended playbook attached to an incident (recommend/'s nops_recommend_incident). */
typedef struct nops_incident_reco {
    char playbook_id[64]; /**< the playbook's id, NUL-terminated */
    float score;          /**< ranking score in [0, 1] (docs/recommendation.md) */
    float confidence;     /**< confidence in [0, 1] */
    uint32_t evidence;    /**< similar past runs of that playbook behind it */
} nops_incident_reco;

/** An incident: correlated signals. Inline storage, like nops_signal. New fields go at the end:
 *  correlate/state.c reads the snapshots of earlier builds by this layout's prefix. */
typedef struct nops_incident {
    char id[NOPS_ID_LEN];                              /**< hex id */
    nops_incident_status status;                       /**< open or resolved */
    int64_t opened_ns;                                 /**< first signal's timestamp */
    int64_t updated_ns;                                /**< last change */
    uint32_t n_signals;                                /**< signals joined (may exceed the list) */
    char signals[NOPS_INCIDENT_MAX_SIGNALS][NOPS_ID_LEN]; /**< the first signal ids */
    nops_labels common;        /**< labels common to all its series, as pairs */
    char labels[512];          /**< the same as text `k="v",...` (values unescaped), for summaries */
    char summary[384];         /**< one line: how many series, which metrics */
    char root_cause_hint[384]; /**< earliest and strongest signal named */
    nops_severity severity;    /**< from score, breadth and duration; never lowered */
    uint32_t n_series;         /**< distinct series among its signals */
    uint32_t n_hosts;          /**< distinct hosts (2+: a service-wide incident) */
    /** the first distinct metric names of its series (what the embedder weighs most); a name
     *  of NOPS_INCIDENT_METRIC_LEN bytes or more is left out */
    char metrics[NOPS_INCIDENT_MAX_METRICS][NOPS_INCIDENT_METRIC_LEN];
    uint8_t n_metrics;         /**< names in metrics[] */
    uint8_t n_recos;           /**< recommendations in recos[] (0: none attached) */
    nops_incident_reco recos[NOPS_INCIDENT_MAX_RECOS]; /**< best first; kept on later records */
    int64_t recommended_ns;    /**< wall clock when recos[] was attached (0: never) */
    float best_score;          /**< the strongest of its signals' scores */
    uint32_t n_above;          /**< its signals whose series moved above the baseline */
    uint32_t n_ewma;           /**< its signals raised by the EWMA detector */
} nops_incident;

/**
 * What happened to an incident for the record about to be written (bits of the `events` of a
 * nops_incident_hook). OPENED comes alone on the first record; UPDATED on each later record
 * of the signal path that changed it (a signal joined, or it reopened), with NEW_SERIES when a
 * series new to it joined and SEVERITY_UP when its severity rose; RESOLVED alone on the
 * resolve record; 0 on a replayed signal's record (nothing changed).
 */
enum {
    NOPS_INC_OPENED = 1u << 0,      /**< the incident is new */
    NOPS_INC_NEW_SERIES = 1u << 1,  /**< a series joined that was not in it */
    NOPS_INC_SEVERITY_UP = 1u << 2, /**< its severity rose */
    NOPS_INC_UPDATED = 1u << 3,     /**< a signal joined (or it reopened) */
    NOPS_INC_RESOLVED = 1u << 4,    /**< it resolved */
};

/**
 * Called by the pipeline with each incident record right before it goes to the sinks
 * (nops_pipeline_set_incident_hook), in the thread that writes it, with that record's events
 * (NOPS_INC_*). The hook may fill inc->recos / n_recos / recommended_ns (nothing else): what
 * it attaches is written with this record and stays on the incident's later records.
 */
typedef void (*nops_incident_hook)(void *ctx, nops_incident *inc, unsigned events);

/** Format nanoseconds since the epoch as RFC 3339 UTC with milliseconds. */
void nops_format_ts(int64_t ns, char *buf, size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* Small shared helpers                                                                        */
/* ------------------------------------------------------------------------------------------ */

/** Monotonic clock in nanoseconds. */
uint64_t nops_now_ns(void);
/** Wall clock in nanoseconds since the Unix epoch. */
int64_t nops_wall_ns(void);

/* ------------------------------------------------------------------------------------------ */
/* Text from outside (core/text.c)                                                             */
/* ------------------------------------------------------------------------------------------ */

/** Length of the longest valid UTF-8 prefix of s[0..n) (RFC 3629: no overlongs, surrogates). */
size_t nops_utf8_valid_prefix(const char *s, size_t n);
/** True when s[0..n) is valid UTF-8 (NUL bytes count as valid here). */
bool nops_utf8_valid(const char *s, size_t n);
/**
 * Copy s[0..n) into out (cap bytes, NUL-terminated) as valid UTF-8: each byte that does not
 * start a valid sequence, and each NUL, becomes U+FFFD; a full `out` ends on a character
 * boundary. Returns the bytes written (NUL excluded); `*replaced` (may be NULL) counts the
 * replacements.
 */
size_t nops_utf8_sanitize(const char *s, size_t n, char *out, size_t cap, size_t *replaced);
/** The largest length <= max that does not cut a UTF-8 character of s[0..n) in two. */
size_t nops_utf8_cut(const char *s, size_t n, size_t max);
/** Whether `word` is an item of the comma-separated `list` (items trimmed of spaces, compared
 *  ignoring ASCII case; an item "*" names every word). Settings such as
 *  notify.webhook_severities and loop.suggest_severities are such lists. */
bool nops_list_has(const char *list, const char *word);

/* ------------------------------------------------------------------------------------------ */
/* Files the engine creates (core/files.c)                                                     */
/* ------------------------------------------------------------------------------------------ */

/**
 * [storage] settings: the data directory every module that keeps files writes under (the JSONL
 * sink, the pipeline's state snapshots, the audit log, orchestration records, history).
 */
typedef struct nops_storage_params {
    char data_dir[512]; /**< the engine's data directory */
} nops_storage_params;

extern const nops_cfg_section nops_storage_cfg_section;

#define NOPS_DIR_MODE 0750  /**< every directory the engine creates */
#define NOPS_FILE_MODE 0640 /**< every data file the engine creates */

/**
 * open(2) with O_CLOEXEC always; with O_CREAT a new file gets exactly NOPS_FILE_MODE whatever the
 * umask and an existing file of ours that is wider is narrowed. Returns the fd or -1 (errno).
 */
int nops_file_open(const char *path, int flags);
/** fopen(3) through nops_file_open ("r", "w", "a", with "+"); close-on-exec, private mode. */
FILE *nops_file_fopen(const char *path, const char *mode);
/** mkdir with NOPS_DIR_MODE whatever the umask; an existing directory is fine. 0 or -1 (errno). */
int nops_dir_make(const char *path);
/** fsync the directory that holds `path` (after a rename into it). 0 or -1 (errno). */
int nops_fsync_dir_of(const char *path);
/** Write `data` to path.tmp.PID, fsync, rename over `path`, fsync the directory. 0 or -1. */
int nops_file_replace(const char *path, const void *data, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* The engine's secret (core/secret.c)                                                         */
/* ------------------------------------------------------------------------------------------ */
/*
 * 32 random bytes in a key file outside the data dir. What the engine reads back from disk or
 * the database and then acts on (approvals, the audit chain, remembered heads) carries an
 * HMAC-SHA256 under a subkey derived for its purpose, so whoever can write the data dir or the
 * database but cannot read the key file cannot forge it. Thread contract: a loaded nops_secret
 * is immutable; any number of threads may MAC with it at once.
 */

#define NOPS_MAC_LEN 32 /**< bytes of an HMAC-SHA256 */

typedef struct nops_secret nops_secret;

typedef struct nops_security_params {
    char key_file[512]; /**< the key file; "" = the per-user default (nops_security_key_path) */
} nops_security_params;

extern const nops_cfg_section nops_security_cfg_section;

/** The key file to use for `p`: p->key_file, else $XDG_CONFIG_HOME or ~/.config/neuralops/. */
void nops_security_key_path(const nops_security_params *p, char *out, size_t cap);
/**
 * Read the key at `path`; when it is missing and `create`, make it first (parent directories
 * 0700, file 0600, O_EXCL: an existing key is never replaced). A key readable by group or
 * others is refused. The caller owns the result (nops_secret_destroy).
 */
nops_secret *nops_secret_load(const char *path, bool create, char *errstr, size_t errstr_size);
/** A key from bytes (tests, fuzzers); any length, reduced with SHA-256. */
nops_secret *nops_secret_from_bytes(const void *key, size_t len);
void nops_secret_destroy(nops_secret *s);
/** False (and a sentence) when the key file lies inside `dir` (e.g. the data dir). */
bool nops_secret_outside(const nops_secret *s, const char *dir, char *errstr,
                         size_t errstr_size);
/** HMAC-SHA256 of data under the subkey HMAC(key, purpose). */
void nops_secret_mac(const nops_secret *s, const char *purpose, const void *data, size_t len,
                     unsigned char out[NOPS_MAC_LEN]);
/** The same as 64 lower-case hex digits and a NUL. */
void nops_secret_mac_hex(const nops_secret *s, const char *purpose, const void *data, size_t len,
                         char out[2 * NOPS_MAC_LEN + 1]);
/** Lower-case hex of the `n` bytes at `b` into `out` (2n + 1 bytes: the digits and a NUL). */
void nops_hex(const void *b, size_t n, char *out);
/** SHA-256 of the `n` bytes at `b` as 64 lower-case hex digits and a NUL; false (out = "") when
 *  OpenSSL failed. */
bool nops_sha256_hex(const void *b, size_t n, char out[65]);
/** Constant-time check of a hex MAC made by nops_secret_mac_hex; false for NULL or bad length. */
bool nops_secret_verify_hex(const nops_secret *s, const char *purpose, const void *data,
                            size_t len, const char *hex);

/* ------------------------------------------------------------------------------------------ */
/* librdkafka's log lines through ours (core/log.c)                                            */
/* ------------------------------------------------------------------------------------------ */

struct rd_kafka_s;
/**
 * A librdkafka log callback (`rd_kafka_conf_set_log_cb(conf, nops_log_kafka)`): each line goes
 * through nops_log under module "kafka" as "FACILITY: text", escaped like every entry; syslog
 * levels map to error (0-3), warn (4-5), info (6), debug (7). core does not link librdkafka.
 */
void nops_log_kafka(const struct rd_kafka_s *rk, int level, const char *fac, const char *buf);

#endif /* NOPS_CORE_H */
