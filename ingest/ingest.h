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

#endif /* NOPS_INGEST_H */
