/*
 * ingest.h — parsers of outside input: timestamps and the `timestamp,value` CSV of
 * `neuralops analyze`. (The Kafka consumer and the metric formats join this module later.)
 *
 * Parsers never allocate and never copy: results point into the caller's buffer, which must
 * outlive them. Errors come back as nops_err plus a short reason (static storage) suitable for
 * "line N: <reason>" messages.
 */
#ifndef NOPS_INGEST_H
#define NOPS_INGEST_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rd_kafka_conf_s; /* librdkafka's rd_kafka_conf_t */

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

#define NOPS_INGEST_MAX_TAGS 64  /**< more tags than this on one point is a bad point */

/** A label of a point (core's nops_label); spans point into the message or into the parser's
 *  scratch space. */
typedef nops_label nops_ingest_tag;

/**
 * One numeric sample, valid only during the callback that receives it. The series name is
 * `measurement_field`, or `measurement` alone when the field is `value` (DESIGN.md); `field` is
 * empty for formats that carry a name and no field (prometheus-kafka-adapter).
 */
typedef struct nops_point {
    const char *measurement;       /**< measurement / metric name */
    size_t measurement_len;
    const char *field;             /**< field name, or "" */
    size_t field_len;
    const nops_ingest_tag *tags;   /**< labels, in message order, `__name__` excluded */
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

/** Result of parsing one message. */
typedef struct nops_parse_stats {
    uint32_t points;      /**< points delivered */
    uint32_t rejected;    /**< lines or objects rejected */
    nops_reject reason;   /**< reason of the first rejection */
    uint32_t first_bad;   /**< 1-based line (or JSON object) of the first rejection */
    const char *detail;   /**< a human sentence for the first rejection (static storage) */
} nops_parse_stats;

/**
 * Parse one Kafka message (or POST /ingest body) holding Influx line protocol lines, a
 * prometheus-kafka-adapter JSON object, a Telegraf JSON object (or {"metrics":[...]}), or
 * newline-separated JSON objects; the format is detected from the first non-blank byte. Every
 * good point goes to `fn`; bad lines or objects are counted in `st` and skipped, so one bad
 * point never loses its neighbours. `now_ns` stamps points without a timestamp.
 * @return NOPS_OK when at least one point was delivered or the message had none to give,
 *         NOPS_PARSE when every line or object was rejected (see st->reason).
 */
nops_err nops_ingest_parse(const char *msg, size_t len, int64_t now_ns, nops_point_fn fn,
                           void *ud, nops_parse_stats *st);

/** Line protocol only (exposed for tests and the parse benchmark). */
nops_err nops_ingest_parse_lineproto(const char *msg, size_t len, int64_t now_ns,
                                     nops_point_fn fn, void *ud, nops_parse_stats *st);
/** JSON only: one object, {"metrics":[...]}, or newline-separated objects. */
nops_err nops_ingest_parse_json(const char *msg, size_t len, int64_t now_ns, nops_point_fn fn,
                                void *ud, nops_parse_stats *st);

/* ---- the streaming pipeline: Kafka → parse → detect → correlate → sinks -------------- */

#include "detect/detect.h"
#include "sinks/sinks.h"

/* ---- series identity of a point ----------------------------------------------------- */

/**
 * A per-worker cache from a point's raw series bytes (nops_point.series and its field) to its
 * detector slot, so the canonical key is built only for a series not seen in that raw form.
 * Not thread-safe: one per thread, beside the detector it indexes.
 */
typedef struct nops_ingest_series_cache nops_ingest_series_cache;

/** A new cache, or NULL when out of memory. */
nops_ingest_series_cache *nops_ingest_series_cache_new(void);
void nops_ingest_series_cache_destroy(nops_ingest_series_cache *c);

/* For tests: replace the raw hash (span, field → 128 bits) to force collisions; entries in use. */
typedef void (*nops__series_hash_fn)(const char *span, size_t span_len, const char *field,
                                     size_t field_len, uint64_t out[2]);
void nops__ingest_series_cache_set_hash(nops_ingest_series_cache *c, nops__series_hash_fn fn);
uint32_t nops__ingest_series_cache_size(const nops_ingest_series_cache *c);

/**
 * Asked before a new series is registered; returns why it may not be (static text), or NULL
 * when it may. `key_len` is its canonical key's length.
 */
typedef const char *(*nops_ingest_admit_fn)(void *ud, size_t key_len);

/**
 * The detector slot of the point's series, registering it in `det` when new and `admit` (may
 * be NULL: always) agrees; marks the series seen at now_s. The series id (XXH3 of the canonical
 * key) is then nops_detect_slot_id(det, *slot). `c` may be NULL (no cache: the key is built
 * every time); one cache serves one detector.
 * @return NOPS_REJECT_NONE; NOPS_REJECT_TOO_LARGE when the name or key is too long or a label
 *         is given twice; NOPS_REJECT_SERIES_LIMIT when the series is new and refused (by
 *         `admit`, or out of memory). *detail (static text) says why.
 */
nops_reject nops_ingest_series_resolve(nops_ingest_series_cache *c, nops_detector *det,
                                       const nops_point *pt, uint32_t now_s,
                                       nops_ingest_admit_fn admit, void *ud, uint32_t *slot,
                                       const char **detail);

/** [kafka] settings. */
typedef struct nops_kafka_params {
    char brokers[512];          /**< bootstrap servers */
    char topic[256];            /**< metrics topic */
    char group[128];            /**< consumer group */
    char dlq_topic[256];        /**< dead-letter topic for rejected messages */
    int64_t session_timeout_ms; /**< group session timeout */
    char extra[1024];           /**< more librdkafka properties: "k=v,k=v" */
} nops_kafka_params;

/** [pipeline] settings. */
typedef struct nops_pipeline_params {
    int64_t workers;     /**< detector threads; partition p goes to worker p % workers */
    int64_t queue_depth; /**< messages queued per worker before the poller waits */
    int64_t batch;       /**< messages a worker takes per turn */
    int64_t flush_ms;    /**< flush sinks and commit offsets at least this often */
    int64_t max_series;  /**< series per worker before registration is refused (0 = budget) */
    int64_t snapshot_ms; /**< detector state is snapshot to the data dir this often */
    int64_t max_future_s;     /**< points this far ahead of the wall clock are refused (0 = off) */
    int64_t max_past_s;       /**< points this far behind the wall clock are refused (0 = off) */
    int64_t series_memory_mb; /**< detector memory of all workers together (0 = no budget) */
} nops_pipeline_params;

/** [storage] settings. */
typedef struct nops_storage_params {
    char data_dir[512]; /**< JSONL files and state snapshots */
} nops_storage_params;

extern const nops_cfg_section nops_kafka_cfg_section;
extern const nops_cfg_section nops_pipeline_cfg_section;
extern const nops_cfg_section nops_storage_cfg_section;

/** Counters of a running pipeline (monotonic totals unless named otherwise). */
typedef struct nops_pipeline_stats {
    uint64_t messages;          /**< Kafka messages processed */
    uint64_t points;            /**< points detected on */
    uint64_t rejected[NOPS_REJECT_COUNT]; /**< rejected lines/objects/points by nops_reject */
    uint64_t dlq;               /**< messages sent to the dead-letter topic */
    uint64_t signals;           /**< signals raised */
    uint64_t anomalies;         /**< anomalous points (a signal is raised at the first) */
    uint64_t incidents_opened;  /**< incidents opened */
    uint64_t incidents_resolved;/**< incidents resolved */
    uint64_t incidents_open;    /**< open now */
    uint64_t series;            /**< series tracked now (all workers) */
    uint64_t commits;           /**< successful offset commits */
    uint64_t commit_failures;   /**< failed commits (retried) */
    uint64_t flush_failures;    /**< failed sink flushes (partitions paused, retried) */
    uint64_t snapshots;         /**< partition state snapshots written */
    uint64_t restored_series;   /**< series restored from snapshots on assignment */
    uint64_t snapshots_rejected;/**< snapshots refused on assignment (damaged, foreign, forged) */
    uint32_t partitions;        /**< partitions assigned now */
    bool paused;                /**< consumption paused because a sink is down */
    int64_t lag;                /**< sum over assigned partitions of high watermark − position */
    uint32_t lag_partitions;    /**< assigned partitions whose high watermark is known (in lag) */
    /** ingest-to-signal latency (wall clock at emission − point timestamp, for points stamped
     *  within the last hour): bucket i counts latencies below 2^i µs (the last is the rest) */
    uint64_t latency_us_log2[32];
} nops_pipeline_stats;

/** The q-quantile (0..1) of the latency histogram in microseconds (bucket upper bound). */
double nops_pipeline_latency_quantile(const nops_pipeline_stats *st, double q);

/**
 * The series one worker may hold: pipeline.max_series when set, and never more than fit in its
 * share (series_memory_mb / workers) of the budget with detect.window's state per series and
 * keys of ~128 bytes. Longer keys are charged as they come, so the budget holds whatever the
 * keys. 0 when not even the initial arrays fit (every new series is refused).
 */
uint32_t nops_pipeline_series_limit(const nops_pipeline_params *pp, const nops_detect_params *dp);

typedef struct nops_pipeline nops_pipeline;

/**
 * Build a pipeline: a consumer in the group, a DLQ producer, `workers` detector threads and a
 * correlator; detector state is snapshot per partition under sp->data_dir/state/ (on revoke,
 * periodically, at stop) and restored on assignment when it was taken at the committed offset,
 * so a rebalance or restart starts warm (a partition always resumes at its committed offset);
 * signals and incidents go to `sinks` (borrowed; must outlive the pipeline).
 * Nothing runs until nops_pipeline_start(). All params are copied.
 */
nops_pipeline *nops_pipeline_new(const nops_kafka_params *kp, const nops_pipeline_params *pp,
                                 const nops_detect_params *dp, const nops_correlate_params *cp,
                                 const nops_storage_params *sp, nops_sinks *sinks, char *errstr,
                                 size_t errstr_size);
/**
 * Key the state snapshots with the engine's secret (HMAC-SHA256, purpose "state-snapshot")
 * instead of a plain SHA-256, so whoever can write the state directory but not read the key
 * cannot plant a state. Call before nops_pipeline_start. `s` is borrowed and must outlive the
 * pipeline; NULL goes back to SHA-256. Snapshots written one way are refused the other way (the
 * partition then starts cold, once).
 */
void nops_pipeline_set_secret(nops_pipeline *p, const nops_secret *s);
nops_err nops_pipeline_start(nops_pipeline *p, char *errstr, size_t errstr_size);
/**
 * Stop consuming, let the workers drain, flush the sinks, commit, leave the group. Bounded by
 * `timeout_ms`; returns NOPS_IO if the final flush or commit failed (nothing is lost: the
 * uncommitted messages are consumed again by the next owner).
 */
nops_err nops_pipeline_stop(nops_pipeline *p, int timeout_ms);
/**
 * Apply kafka.extra — "k=v,k=v" librdkafka properties (security settings and the like) — to
 * `conf`, for every client the engine makes (consumer, producers). False with the reason naming
 * the bad entry or property.
 */
bool nops_kafka_conf_extra(struct rd_kafka_conf_s *conf, const char *extra, char *errstr,
                           size_t errstr_size);
/**
 * The recent window of series `key` (canonical `name{k="v",...}`) as the detectors hold it:
 * up to `cap` values, oldest first, and the window's mean and std. Asks the workers between
 * their batches; NOPS_NOTFOUND if no worker tracks the series, NOPS_IO if they did not answer
 * within `timeout_ms` (pipeline not running or stalled). Thread-safe.
 */
nops_err nops_pipeline_series_window(nops_pipeline *p, const char *key, float *out,
                                     uint32_t cap, uint32_t *n, double *mean, double *std,
                                     int timeout_ms);
void nops_pipeline_destroy(nops_pipeline *p);
void nops_pipeline_get_stats(nops_pipeline *p, nops_pipeline_stats *st);

#endif /* NOPS_INGEST_H */
