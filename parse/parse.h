/*
 * parse.h — parsers of outside input: timestamps, the `timestamp,value` CSV of
 * `neuralops analyze`, and the metric formats of a Kafka message or a POST /ingest body
 * (Influx line protocol, prometheus-kafka-adapter JSON, Telegraf JSON), gzip request bodies
 * and Prometheus remote write. The pipeline (ingest/) and the HTTP ingest (api/) call them.
 *
 * Parsers never allocate and never copy: results point into the caller's buffer, which must
 * outlive them (the two decoders of encoded bodies at the end — gzip, remote write — are the
 * exception, and say so). Errors come back as nops_err plus a short reason (static storage)
 * suitable for "line N: <reason>" messages. They keep no state: any thread may call them at
 * any time. They depend on core, jansson, zlib, libsnappy and protobuf-c (the last three for
 * gzip bodies and Prometheus remote write).
 */
#ifndef NOPS_PARSE_H
#define NOPS_PARSE_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Parse a timestamp into nanoseconds since the Unix epoch (UTC). Accepted:
 *   - ISO-8601 `2024-01-01T00:00:00[.fff…][Z|±HH:MM|±HHMM]` (no zone means UTC),
 *   - the same with a space instead of `T` (`2024-01-01 00:00:00`), or a date alone,
 *   - epoch numbers: integers are seconds (< 1e11), milliseconds (< 1e14), microseconds
 *     (< 1e17) or nanoseconds, told apart by magnitude; decimals are seconds.
 * @return NOPS_OK, or NOPS_PARSE with *reason set.
 */
nops_err nops_ingest_parse_timestamp(const char *s, size_t len, int64_t *ns, const char **reason);

/** One parsed CSV row; `ts` points into the line. */
typedef struct nops_csv_row {
    const char *ts;  /**< timestamp text, verbatim (quotes and surrounding blanks removed) */
    size_t ts_len;   /**< its length */
    int64_t ts_ns;   /**< parsed timestamp */
    double value;    /**< the value as written (finite, within float32 range) */
} nops_csv_row;

typedef enum nops_csv_kind {
    NOPS_CSV_ROW = 0,    /**< a data row */
    NOPS_CSV_BLANK = 1,  /**< empty or whitespace-only line: not a row */
    NOPS_CSV_HEADER = 2, /**< a header line (only recognised when `first` is set) */
} nops_csv_kind;

/**
 * Parse one line (without its '\n'; a trailing '\r' is ignored) of `timestamp,value`.
 * `first`: this is the first non-blank line, which may be a header (two fields, the second not
 * a number). On NOPS_PARSE *reason names the problem ("value is not a number", ...).
 */
nops_err nops_ingest_csv_line(const char *line, size_t len, bool first, nops_csv_row *row,
                              nops_csv_kind *kind, const char **reason);

/* ---- metric points ------------------------------------------------------------------- */

#define NOPS_INGEST_MAX_TAGS NOPS_LABELS_MAX /**< more tags than this on one point is a bad point */

/**
 * One numeric sample, valid only during the callback that receives it. The series name is
 * `measurement_field`, or `measurement` alone when the field is `value`; `field` is
 * empty for formats that carry a name and no field (prometheus-kafka-adapter).
 */
typedef struct nops_point {
    const char *measurement;       /**< measurement / metric name */
    size_t measurement_len;
    const char *field;             /**< field name, or "" */
    size_t field_len;
    const nops_label *tags;        /**< labels, in message order, `__name__` excluded; spans into
                                        the message or into the parser's scratch space */
    size_t n_tags;
    double value;                  /**< finite */
    int64_t ts_ns;                 /**< nanoseconds since the epoch */
    const char *series;            /**< measurement and tags as written in the message (escapes
                                        and tag order as they came), or NULL when the format
                                        gives no such span; equal spans with equal `field` are
                                        one series (the key is then built once, see
                                        nops_ingest_series_resolve) */
    size_t series_len;             /**< its length (0: none) */
} nops_point;

/** Receives each point; return false to stop parsing (the parse returns NOPS_OK). */
typedef bool (*nops_point_fn)(void *ud, const nops_point *pt);

/** Why a message (or part of it) was rejected; names the label of ..._rejected_total{reason}. */
typedef enum nops_reject {
    NOPS_REJECT_NONE = 0,
    NOPS_REJECT_SYNTAX,      /**< not line protocol / not the expected JSON */
    NOPS_REJECT_VALUE,       /**< a field value that is not a finite number */
    NOPS_REJECT_TIMESTAMP,   /**< a bad timestamp */
    NOPS_REJECT_TOO_LARGE,   /**< too many tags, names too long */
    NOPS_REJECT_EMPTY,       /**< no point in the message */
    NOPS_REJECT_UTF8,        /**< names, tags or text that are not valid UTF-8 */
    NOPS_REJECT_SERIES_LIMIT,/**< a new series past the series limit (memory budget) */
    NOPS_REJECT_MEMORY,      /**< the engine ran out of memory taking the point (pipeline) */
    NOPS_REJECT_NAME,        /**< a metric name with `{`, `}`, `"` or a control character, or a
                                  label key with `=`, `"`, `,`, `{`, `}` or a control character:
                                  a series key could not be split back into it */
    NOPS_REJECT_FORMAT,      /**< a message in a shape no parser takes ("unsupported_format"):
                                  binary data, a JSON value that is not an object, an object
                                  that is neither prometheus-kafka-adapter nor Telegraf */
    NOPS_REJECT_COUNT        /**< number of reasons (not a reason) */
} nops_reject;

/** "syntax", "value", ... — the Prometheus label value. */
const char *nops_ingest_reject_name(nops_reject r);

/**
 * Whether a point stamped `ts_ns` lies within [now − max_past_s, now + max_future_s] of the
 * wall clock `now_ns` (a bound ≤ 0 is off). NOPS_REJECT_TIMESTAMP with *detail (may be NULL)
 * naming the bound it broke, else NOPS_REJECT_NONE. Bounds must be ≤ 100 years.
 */
nops_reject nops_ingest_check_time(int64_t ts_ns, int64_t now_ns, int64_t max_past_s,
                                   int64_t max_future_s, const char **detail);

/**
 * Whether a point's series can be written as a canonical key and split back: the metric name
 * (`measurement`, `measurement_field`) passes nops_series_name_ok and every tag key
 * nops_label_key_ok. NOPS_REJECT_NAME with *detail (may be NULL) saying which, else
 * NOPS_REJECT_NONE. Every parser checks its points with it before delivering them.
 */
nops_reject nops_ingest_check_names(const nops_point *pt, const char **detail);

/** Result of parsing one message. */
typedef struct nops_parse_stats {
    uint32_t points;      /**< points delivered */
    uint32_t rejected;    /**< lines or objects rejected */
    nops_reject reason;   /**< reason of the first rejection */
    uint32_t first_bad;   /**< 1-based line (or JSON object) of the first rejection */
    const char *detail;   /**< a human sentence for the first rejection (static storage) */
    uint32_t stale;       /**< NaN values skipped, not rejected: Prometheus staleness markers
                               (prometheus-kafka-adapter's "value":"NaN", remote write's
                               0x7ff0000000000002) and other NaN samples, which carry no value */
} nops_parse_stats;

/** The unit of integer line-protocol timestamps (Influx's `precision`). */
typedef enum nops_ts_precision {
    NOPS_TS_NS = 0, /**< nanoseconds (the default, as Influx) */
    NOPS_TS_US,     /**< microseconds */
    NOPS_TS_MS,     /**< milliseconds */
    NOPS_TS_S,      /**< seconds */
    NOPS_TS_PRECISION_COUNT
} nops_ts_precision;

/** "ns|us|ms|s": the choices, in enum order (a config ENUM's `choices`). */
#define NOPS_TS_PRECISION_CHOICES "ns|us|ms|s"

/** `s[0..len)` ("ns", "us", "ms", "s") into *out; false (and *out untouched) otherwise. */
bool nops_ingest_precision_parse(const char *s, size_t len, nops_ts_precision *out);

/**
 * Parse one Kafka message (or POST /ingest body) holding Influx line protocol lines, a
 * prometheus-kafka-adapter JSON object, a Telegraf JSON object (or {"metrics":[...]}), or
 * newline-separated JSON objects; the format is detected from the first non-blank byte (a
 * message no parser takes — binary data, a JSON array, a JSON object of neither shape — is
 * rejected with NOPS_REJECT_FORMAT; a prometheus-kafka-adapter "value":"NaN" is skipped and
 * counted in st->stale, not rejected). Every
 * good point goes to `fn`; bad lines or objects are counted in `st` and skipped, so one bad
 * point never loses its neighbours. `now_ns` stamps points without a timestamp.
 * @return NOPS_OK when at least one point was delivered or the message had none to give,
 *         NOPS_PARSE when every line or object was rejected (see st->reason).
 */
nops_err nops_ingest_parse(const char *msg, size_t len, int64_t now_ns, nops_point_fn fn,
                           void *ud, nops_parse_stats *st);

/** nops_ingest_parse with line-protocol timestamps in `prec` units (JSON timestamps keep
 * their own rules). A timestamp that does not fit int64 nanoseconds once scaled is rejected
 * (NOPS_REJECT_TIMESTAMP). */
nops_err nops_ingest_parse_prec(const char *msg, size_t len, int64_t now_ns,
                                nops_ts_precision prec, nops_point_fn fn, void *ud,
                                nops_parse_stats *st);

/** Line protocol only (exposed for tests and the parse benchmark). */
nops_err nops_ingest_parse_lineproto(const char *msg, size_t len, int64_t now_ns,
                                     nops_point_fn fn, void *ud, nops_parse_stats *st);
/** Line protocol only, timestamps in `prec` units. */
nops_err nops_ingest_parse_lineproto_prec(const char *msg, size_t len, int64_t now_ns,
                                          nops_ts_precision prec, nops_point_fn fn, void *ud,
                                          nops_parse_stats *st);
/** JSON only: one object, {"metrics":[...]}, or newline-separated objects. */
nops_err nops_ingest_parse_json(const char *msg, size_t len, int64_t now_ns, nops_point_fn fn,
                                void *ud, nops_parse_stats *st);

/* ---- encoded bodies ----------------------------------------------------------------------
 * These two allocate (through nops_malloc), unlike the parsers above: a decompressed copy,
 * and for remote write the unpacked message. Both stop at a caller's cap on the decompressed
 * size before allocating past it, so a small body cannot make them allocate much. */

/**
 * Decompress a gzip body (RFC 1952; several members one after another are read in turn) into
 * `out`, which is emptied first, holds at most `max` bytes plus a NUL after them, and is the
 * caller's (nops_free(out->b)), whatever the result.
 * @return NOPS_OK; NOPS_RANGE as soon as the output passes `max` (a zip bomb: the caller
 *         answers 413); NOPS_PARSE for a body that is not gzip, corrupt or truncated; NOPS_NOMEM.
 *         *why (may be NULL) gets a sentence for the last two.
 */
nops_err nops_ingest_gunzip(const void *in, size_t len, size_t max, nops_buf *out,
                            const char **why);

/**
 * Decode a Prometheus remote-write 1.0 body — a snappy (block format) compressed protobuf
 * WriteRequest — into points: one per sample, named by its `__name__` label, the other labels
 * as tags (empty ones dropped), field "", the sample's milliseconds as nanoseconds, `series`
 * NULL. NaN samples (the staleness marker 0x7ff0000000000002 and any other NaN) are skipped
 * and counted in st->stale. The samples of a series that cannot be keyed (no `__name__`, a NUL,
 * bad UTF-8, more than 64 labels, names nops_ingest_check_names refuses) and infinite or
 * out-of-range samples are rejected, each counted in st->rejected (st->first_bad is then the
 * 1-based series); the rest go on. Metadata, exemplars and native histograms are ignored.
 * @return NOPS_OK (even when samples were rejected: see st); NOPS_PARSE when the body is not
 *         snappy or not a WriteRequest (nothing delivered; st->reason syntax, st->detail says);
 *         NOPS_RANGE when it decompresses past `max` bytes; NOPS_NOMEM.
 */
nops_err nops_ingest_parse_remote_write(const void *body, size_t len, size_t max,
                                        nops_point_fn fn, void *ud, nops_parse_stats *st);

/* ---- JSON objects for other modules --------------------------------------------------------
 * The JSON metric tokenizer's two passes (jsontok.c, jsonfmt.c) for a module that wants a few
 * fields of a JSON object without a jansson tree (vectorize's workflow runs). First
 * nops_json_object_ok vouches for the whole text; the walkers below may then be used on it
 * only (they trust the text and do no checks). Nothing allocates; nothing is copied except by
 * nops_json_string into the caller's buffer. Stateless: safe from any number of threads. */

/** One member of an object: its key (never escaped) and the first byte of its value. */
typedef struct nops_json_member {
    const char *k; /**< key text (points into the document, not NUL-terminated) */
    size_t kn;     /**< its length */
    const char *v; /**< the value's first byte ('"', '{', '[', 't', 'f', 'n', '-' or a digit) */
} nops_json_member;

/**
 * True when doc[0..len) is one JSON object (whitespace around it allowed) that jansson's
 * json_loadb(doc, len, 0) would accept and that holds no duplicate key, within the tokenizer's
 * limits (nesting 64, 256 keys open, strings up to 4 KiB, 16 KiB of escaped text, keys
 * without escapes, no real that may pass 1e308). False says only "not vouched for": a caller
 * then takes the jansson path, which decides. *body is set to the object's '{'.
 */
bool nops_json_object_ok(const char *doc, size_t len, const char **body);
/** The next member of the object whose members *it walks: start with *it just past '{';
 *  false at its end. */
bool nops_json_next_member(const char **it, const char *end, nops_json_member *m);
/** The next element of the array whose elements *it walks: start with *it just past '[';
 *  false at its end. */
bool nops_json_next_element(const char **it, const char *end, const char **v);
/**
 * The string at v (its opening quote) decoded (escapes, \u and surrogate pairs to UTF-8) into
 * out, NUL-terminated; out holds at least its raw length + 1 bytes. Returns the length.
 */
size_t nops_json_string(const char *v, const char *end, char *out);
/** The raw length (between the quotes) of the string at v: a bound of its decoded length. */
size_t nops_json_string_raw(const char *v, const char *end);
/** The number at v as jansson's json_number_value gives it (an integer token as int64 → double). */
double nops_json_number(const char *v, const char *end);

#endif /* NOPS_PARSE_H */
