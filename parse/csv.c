/*
 * csv.c — the `timestamp,value` rows of `neuralops analyze`.
 *
 * Deliberately strict: exactly two fields, optional double quotes around each (no embedded
 * commas or quotes), blanks around fields ignored, a finite value inside the float32 range
 * (detector state is float32). Anything else is an error with a reason the CLI prefixes with the
 * line number.
 */
#include "parse/parse.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim blanks and one pair of surrounding quotes. */
static bool field(const char **b, const char **e)
{
    while (*b < *e && blank(**b))
        (*b)++;
    while (*e > *b && blank((*e)[-1]))
        (*e)--;
    if (*e - *b >= 2 && **b == '"' && (*e)[-1] == '"') {
        (*b)++;
        (*e)--;
    }
    return memchr(*b, '"', (size_t)(*e - *b)) == NULL;
}

static nops_err parse_value(const char *b, const char *e, double *out, const char **reason)
{
    char buf[128];
    size_t n = (size_t)(e - b);
    if (n == 0) {
        *reason = "value is empty";
        return NOPS_PARSE;
    }
    if (n >= sizeof buf) {
        *reason = "value is too long to be a number";
        return NOPS_PARSE;
    }
    memcpy(buf, b, n); /* strtod needs a terminator; the line itself is not ours to modify */
    buf[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end) {
        *reason = "value is not a number";
        return NOPS_PARSE;
    }
    if (isnan(v) || isinf(v)) {
        *reason = "value is NaN or infinite";
        return NOPS_PARSE;
    }
    if (fabs(v) > FLT_MAX) {
        *reason = "value is outside the float32 range";
        return NOPS_PARSE;
    }
    *out = v;
    return NOPS_OK;
}

nops_err nops_ingest_csv_line(const char *line, size_t len, bool first, nops_csv_row *row,
                              nops_csv_kind *kind, const char **reason)
{
    const char *r = NULL;
    if (!reason)
        reason = &r;
    if (len && line[len - 1] == '\r')
        len--;
    if (memchr(line, '\0', len)) {
        *reason = "line contains a NUL byte";
        return NOPS_PARSE;
    }
    if (!nops_utf8_valid(line, len)) {
        *reason = "line is not valid UTF-8";
        return NOPS_PARSE;
    }
    const char *end = line + len;
    const char *p = line;
    while (p < end && (blank(*p)))
        p++;
    if (p == end) {
        *kind = NOPS_CSV_BLANK;
        return NOPS_OK;
    }
    const char *comma = memchr(line, ',', len);
    if (!comma) {
        *reason = "expected two fields `timestamp,value`, found one";
        return NOPS_PARSE;
    }
    if (memchr(comma + 1, ',', (size_t)(end - comma - 1))) {
        *reason = "expected two fields `timestamp,value`, found more";
        return NOPS_PARSE;
    }
    const char *tb = line, *te = comma, *vb = comma + 1, *ve = end;
    if (!field(&tb, &te) || !field(&vb, &ve)) {
        *reason = "quotes inside a field are not supported";
        return NOPS_PARSE;
    }
    double v;
    nops_err err = parse_value(vb, ve, &v, reason);
    if (err != NOPS_OK) {
        /* a first line whose value field is a word is a header */
        if (first && ve > vb && !((*vb >= '0' && *vb <= '9') || *vb == '-' || *vb == '+' ||
                                  *vb == '.')) {
            const char *why = NULL;
            double dummy;
            if (parse_value(vb, ve, &dummy, &why) != NOPS_OK &&
                strcmp(why, "value is not a number") == 0) {
                *kind = NOPS_CSV_HEADER;
                return NOPS_OK;
            }
        }
        return err;
    }
    if (te == tb) {
        *reason = "timestamp is empty";
        return NOPS_PARSE;
    }
    err = nops_ingest_parse_timestamp(tb, (size_t)(te - tb), &row->ts_ns, reason);
    if (err != NOPS_OK)
        return err;
    row->ts = tb;
    row->ts_len = (size_t)(te - tb);
    row->value = v;
    *kind = NOPS_CSV_ROW;
    return NOPS_OK;
}
