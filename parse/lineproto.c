/*
 * lineproto.c — Influx line protocol, as Telegraf's Kafka output writes it.
 *
 *     measurement[,tag=value...] field=value[,field=value...] [timestamp-ns]
 *
 * The parser walks the message once and never allocates. Names and tag values are handed out
 * as spans into the message; only a token that contains a backslash escape is copied (unescaped)
 * into a per-line scratch buffer on the stack. Numbers take Clinger's fast path (an integer
 * mantissa below 2^53 scaled by an exact power of ten) and fall back to strtod for everything
 * else, so results are correctly rounded either way. Integer (`12i`), unsigned (`12u`) and float
 * fields are samples; string and boolean fields are skipped, as they carry no series value.
 * A bad line is counted and skipped; the lines around it still count. A line must be valid
 * UTF-8 (checked before anything else): names and tag values become series keys and JSON text
 * downstream, where invalid bytes would make records fail to serialise.
 */
#include "parse/parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LP_SCRATCH 4096

typedef struct lp_line {
    const char *p;      /* cursor */
    const char *end;    /* end of the line */
    char scratch[LP_SCRATCH]; /* unescaped tokens of this line */
    size_t used;        /* bytes of scratch in use */
    nops_label tags[NOPS_INGEST_MAX_TAGS];
    size_t n_tags;
    int64_t ts_mult;    /* nanoseconds per timestamp unit (the precision) */
} lp_line;

const char *nops_ingest_reject_name(nops_reject r)
{
    static const char *names[] = {"none",  "syntax", "value",       "timestamp",
                                  "too_large", "empty", "utf8", "series_limit", "memory",
                                  "name", "unsupported_format"};
    _Static_assert(sizeof names / sizeof names[0] == NOPS_REJECT_COUNT, "a name per reason");
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "unknown";
}

/* The bytes nops_series_name_ok (bit 1) and nops_label_key_ok (bit 2) refuse, as a table: the
 * check runs for every point, and core's strchr per byte was a tenth of the JSON parse time.
 * test_formats holds the two equal for every byte. */
#define BAD_NAME 1
#define BAD_KEY 2
#define CTL(c) [c] = BAD_NAME | BAD_KEY
static const unsigned char NAME_BAD[256] = {
    CTL(0),  CTL(1),  CTL(2),  CTL(3),  CTL(4),  CTL(5),  CTL(6),  CTL(7),  CTL(8),
    CTL(9),  CTL(10), CTL(11), CTL(12), CTL(13), CTL(14), CTL(15), CTL(16), CTL(17),
    CTL(18), CTL(19), CTL(20), CTL(21), CTL(22), CTL(23), CTL(24), CTL(25), CTL(26),
    CTL(27), CTL(28), CTL(29), CTL(30), CTL(31), CTL(0x7f), CTL('{'), CTL('}'), CTL('"'),
    ['='] = BAD_KEY, [','] = BAD_KEY};
#undef CTL

static bool bytes_ok(const char *s, size_t len, unsigned char bad)
{
    if (!s || len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (NAME_BAD[(unsigned char)s[i]] & bad)
            return false;
    return true;
}

nops_reject nops_ingest_check_names(const nops_point *pt, const char **detail)
{
    const char *why = NULL;
    if (!bytes_ok(pt->measurement, pt->measurement_len, BAD_NAME) ||
        (pt->field_len && !bytes_ok(pt->field, pt->field_len, BAD_NAME)))
        why = "metric name contains {, }, \" or a control character";
    for (size_t i = 0; !why && i < pt->n_tags; i++)
        if (!bytes_ok(pt->tags[i].key, pt->tags[i].key_len, BAD_KEY))
            why = "label key contains =, \", a comma, {, } or a control character";
    if (detail && why)
        *detail = why;
    return why ? NOPS_REJECT_NAME : NOPS_REJECT_NONE;
}

/*
 * Read a token up to one of the stop characters (unescaped). Escapes (a backslash before a comma,
 * equals sign, space, quote or backslash) are resolved into scratch when present. On return
 * *tok and *len hold the token.
 */
/* Stop-character sets as 256-entry tables: one load per byte instead of a strchr. */
typedef struct lp_stops {
    bool stop[256];
} lp_stops;

static const lp_stops STOP_MEAS = {.stop = {[','] = true, [' '] = true}};
static const lp_stops STOP_TAGKEY = {.stop = {[','] = true, ['='] = true, [' '] = true}};
static const lp_stops STOP_FIELDKEY = {.stop = {['='] = true, [' '] = true}};

static bool lp_token(lp_line *l, const lp_stops *stops, const char **tok, size_t *len)
{
    const char *s = l->p;
    const char *q = s;
    bool escaped = false;
    while (q < l->end && !stops->stop[(unsigned char)*q]) {
        if (*q == '\\' && q + 1 < l->end) {
            escaped = true;
            q += 2;
            continue;
        }
        q++;
    }
    l->p = q;
    if (!escaped) {
        *tok = s;
        *len = (size_t)(q - s);
        return true;
    }
    char *out = l->scratch + l->used;
    size_t o = 0;
    for (const char *r = s; r < q; r++) {
        if (l->used + o + 1 >= LP_SCRATCH)
            return false;
        if (*r == '\\' && r + 1 < q && strchr(", =\\\"", r[1]))
            r++;
        out[o++] = *r;
    }
    l->used += o;
    *tok = out;
    *len = o;
    return true;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * Parse a number occupying exactly [s, e). Clinger's fast path when the decimal mantissa has at
 * most 15 significant digits and the power of ten is at most 22 (both exact in double, so one
 * rounding gives the correctly rounded result); strtod otherwise.
 */
static bool lp_number(const char *s, const char *e, double *out)
{
    const char *p = s;
    bool neg = false;
    if (p < e && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    uint64_t mant = 0;
    int digits = 0, exp10 = 0;
    bool any = false;
    while (p < e && (unsigned)(*p - '0') <= 9) {
        if (digits < 19) {
            mant = mant * 10 + (uint64_t)(*p - '0');
            if (mant)
                digits++;
        } else {
            exp10++;
        }
        p++;
        any = true;
    }
    if (p < e && *p == '.') {
        p++;
        while (p < e && (unsigned)(*p - '0') <= 9) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                if (mant)
                    digits++;
                exp10--;
            }
            p++;
            any = true;
        }
    }
    if (!any)
        return false;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < e && (*p == '-' || *p == '+'))
            eneg = *p++ == '-';
        int ev = 0;
        const char *es = p;
        while (p < e && (unsigned)(*p - '0') <= 9) {
            if (ev < 100000)
                ev = ev * 10 + (*p - '0');
            p++;
        }
        if (p == es)
            return false;
        exp10 += eneg ? -ev : ev;
    }
    if (p != e)
        return false;
    if (digits <= 15 && exp10 >= -22 && exp10 <= 22) {
        double v = (double)mant;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
        *out = neg ? -v : v;
        return true;
    }
    char buf[128];
    size_t n = (size_t)(e - s);
    if (n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *endp;
    errno = 0;
    double v = strtod(buf, &endp);
    if (*endp)
        return false;
    *out = v;
    return true;
}

typedef enum lp_field_kind { LP_NUMBER, LP_SKIP, LP_BAD } lp_field_kind;

/* A field value [s, e): number (float, 12i, 12u), or string/boolean to skip, or malformed. */
static lp_field_kind lp_field_value(const char *s, const char *e, double *v)
{
    if (s == e)
        return LP_BAD;
    if (*s == '"')
        return LP_SKIP; /* strings were delimited by the caller */
    if (*s == 't' || *s == 'T' || *s == 'f' || *s == 'F') { /* booleans: only then compare */
        static const char *bools[] = {"t",     "T", "true",  "True",  "TRUE",
                                      "f",     "F", "false", "False", "FALSE"};
        for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
            if ((size_t)(e - s) == strlen(bools[i]) && memcmp(s, bools[i], (size_t)(e - s)) == 0)
                return LP_SKIP;
        return LP_BAD;
    }
    if (e[-1] == 'i' || e[-1] == 'u') { /* integer types */
        if (e - s < 2 || (e[-1] == 'u' && *s == '-'))
            return LP_BAD;
        for (const char *p = (*s == '-' ? s + 1 : s); p < e - 1; p++)
            if ((unsigned)(*p - '0') > 9)
                return LP_BAD;
        if (!lp_number(s, e - 1, v))
            return LP_BAD;
        return LP_NUMBER;
    }
    if (!lp_number(s, e, v))
        return LP_BAD;
    return isfinite(*v) ? LP_NUMBER : LP_BAD;
}

/* Skip a quoted string field value starting at l->p (on the quote). */
static bool lp_skip_string(lp_line *l)
{
    const char *q = l->p + 1;
    while (q < l->end && *q != '"') {
        if (*q == '\\' && q + 1 < l->end)
            q++;
        q++;
    }
    if (q >= l->end)
        return false;
    l->p = q + 1;
    return true;
}

typedef struct lp_field {
    const char *key;
    size_t key_len;
    double value;
    bool numeric;
} lp_field;

#define LP_MAX_FIELDS 256

/* The tags after the measurement (",k=v" pairs) into l->tags; NOPS_REJECT_NONE or why not. */
static nops_reject lp_tags(lp_line *l, const char **detail)
{
    while (l->p < l->end && *l->p == ',') {
        l->p++;
        nops_label t;
        if (l->n_tags == NOPS_INGEST_MAX_TAGS) {
            *detail = "more than 64 tags";
            return NOPS_REJECT_TOO_LARGE;
        }
        if (!lp_token(l, &STOP_TAGKEY, &t.key, &t.key_len) || l->p >= l->end || *l->p != '=' ||
            t.key_len == 0) {
            *detail = "tag is not key=value";
            return NOPS_REJECT_SYNTAX;
        }
        l->p++;
        if (!lp_token(l, &STOP_MEAS, &t.value, &t.value_len) || t.value_len == 0) {
            *detail = "tag has an empty value";
            return NOPS_REJECT_SYNTAX;
        }
        l->tags[l->n_tags++] = t;
    }
    return NOPS_REJECT_NONE;
}

/* The field set ("k=v,k=v") into fields (LP_MAX_FIELDS), their count in *n. */
static nops_reject lp_fields(lp_line *l, lp_field *fields, size_t *n, const char **detail)
{
    *n = 0;
    for (;;) {
        lp_field f = {0};
        if (!lp_token(l, &STOP_FIELDKEY, &f.key, &f.key_len) || l->p >= l->end || *l->p != '=' ||
            f.key_len == 0) {
            *detail = "field is not key=value";
            return NOPS_REJECT_SYNTAX;
        }
        l->p++;
        const char *vs = l->p;
        if (l->p < l->end && *l->p == '"') {
            if (!lp_skip_string(l)) {
                *detail = "unterminated string field";
                return NOPS_REJECT_SYNTAX;
            }
        } else {
            while (l->p < l->end && *l->p != ',' && *l->p != ' ')
                l->p++;
            lp_field_kind k = lp_field_value(vs, l->p, &f.value);
            if (k == LP_BAD) {
                *detail = "field value is not a finite number, integer, string or boolean";
                return NOPS_REJECT_VALUE;
            }
            f.numeric = k == LP_NUMBER;
        }
        if (*n == LP_MAX_FIELDS) {
            *detail = "more than 256 fields";
            return NOPS_REJECT_TOO_LARGE;
        }
        fields[(*n)++] = f;
        if (l->p < l->end && *l->p == ',') {
            l->p++;
            continue;
        }
        return NOPS_REJECT_NONE;
    }
}

bool nops_ingest_precision_parse(const char *s, size_t len, nops_ts_precision *out)
{
    static const char *names[] = {"ns", "us", "ms", "s"};
    _Static_assert(sizeof names / sizeof names[0] == NOPS_TS_PRECISION_COUNT, "a name each");
    for (size_t i = 0; s && i < NOPS_TS_PRECISION_COUNT; i++)
        if (len == strlen(names[i]) && memcmp(s, names[i], len) == 0) {
            *out = (nops_ts_precision)i;
            return true;
        }
    return false;
}

/* The optional timestamp ending the line (an integer of l->ts_mult nanoseconds) into *ts in
 * nanoseconds, left as it is when the line has none. */
static nops_reject lp_timestamp(lp_line *l, int64_t *ts, const char **detail)
{
    while (l->p < l->end && *l->p == ' ')
        l->p++;
    if (l->p >= l->end)
        return NOPS_REJECT_NONE;
    bool neg = *l->p == '-';
    if (neg)
        l->p++;
    uint64_t v = 0;
    const char *ds = l->p;
    while (l->p < l->end && (unsigned)(*l->p - '0') <= 9) {
        if (v > (uint64_t)INT64_MAX / 10) {
            *detail = "timestamp does not fit in int64 nanoseconds";
            return NOPS_REJECT_TIMESTAMP;
        }
        v = v * 10 + (uint64_t)(*l->p++ - '0');
    }
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\r'))
        l->p++;
    if (l->p == ds || l->p != l->end || v > (uint64_t)INT64_MAX) {
        *detail = "timestamp is not an integer";
        return NOPS_REJECT_TIMESTAMP;
    }
    if (v > (uint64_t)INT64_MAX / (uint64_t)l->ts_mult) {
        *detail = "timestamp does not fit in int64 nanoseconds at its precision";
        return NOPS_REJECT_TIMESTAMP;
    }
    v *= (uint64_t)l->ts_mult;
    *ts = neg ? -(int64_t)v : (int64_t)v;
    return NOPS_REJECT_NONE;
}

/* Parse one line; returns NOPS_REJECT_NONE or why it was rejected. */
static nops_reject lp_parse_line(lp_line *l, int64_t now_ns, nops_point_fn fn, void *ud,
                                 uint32_t *points, bool *stop, const char **detail)
{
    const char *meas;
    size_t meas_len;
    const char *series = l->p; /* measurement and tags as written: the point's raw series span */
    l->used = 0;
    l->n_tags = 0;
    if (!lp_token(l, &STOP_MEAS, &meas, &meas_len)) {
        *detail = "names on one line exceed the 4 KiB scratch space";
        return NOPS_REJECT_TOO_LARGE;
    }
    if (meas_len == 0) {
        *detail = "line has no measurement name";
        return NOPS_REJECT_SYNTAX;
    }
    nops_reject r = lp_tags(l, detail);
    if (r != NOPS_REJECT_NONE)
        return r;
    if (l->p >= l->end || *l->p != ' ') {
        *detail = "line has no fields";
        return NOPS_REJECT_SYNTAX;
    }
    const size_t series_len = (size_t)(l->p - series);
    while (l->p < l->end && *l->p == ' ')
        l->p++;
    lp_field fields[LP_MAX_FIELDS];
    size_t n_fields;
    int64_t ts = now_ns;
    if ((r = lp_fields(l, fields, &n_fields, detail)) != NOPS_REJECT_NONE ||
        (r = lp_timestamp(l, &ts, detail)) != NOPS_REJECT_NONE)
        return r;
    nops_point pts[2]; /* names checked before any point of the line goes out */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n_fields && !*stop; i++) {
            if (!fields[i].numeric)
                continue;
            bool is_value = fields[i].key_len == 5 && memcmp(fields[i].key, "value", 5) == 0;
            nops_point *pt = &pts[pass];
            *pt = (nops_point){meas,      meas_len, is_value ? "" : fields[i].key,
                               is_value ? 0 : fields[i].key_len,
                               l->tags,   l->n_tags, fields[i].value, ts, series, series_len};
            if (pass == 0) {
                if ((r = nops_ingest_check_names(pt, detail)) != NOPS_REJECT_NONE)
                    return r;
                continue;
            }
            (*points)++;
            if (!fn(ud, pt))
                *stop = true;
        }
    return NOPS_REJECT_NONE;
}

/* No byte ≥ 0x80 in s[0..n): plain ASCII, valid UTF-8 without a closer look (8 bytes a step). */
static bool lp_ascii(const char *s, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof w);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & 0x8080808080808080ull) == 0;
}

nops_err nops_ingest_parse_lineproto(const char *msg, size_t len, int64_t now_ns,
                                     nops_point_fn fn, void *ud, nops_parse_stats *st)
{
    return nops_ingest_parse_lineproto_prec(msg, len, now_ns, NOPS_TS_NS, fn, ud, st);
}

nops_err nops_ingest_parse_lineproto_prec(const char *msg, size_t len, int64_t now_ns,
                                          nops_ts_precision prec, nops_point_fn fn, void *ud,
                                          nops_parse_stats *st)
{
    static const int64_t mult[] = {1, 1000, 1000000, 1000000000};
    _Static_assert(sizeof mult / sizeof mult[0] == NOPS_TS_PRECISION_COUNT, "a unit each");
    lp_line l;
    l.ts_mult = (unsigned)prec < NOPS_TS_PRECISION_COUNT ? mult[prec] : 1;
    memset(st, 0, sizeof *st);
    const char *p = msg, *end = msg + len;
    uint32_t lineno = 0, lines = 0;
    bool stop = false;
    while (p < end && !stop) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        const char *ls = p;
        p = nl ? nl + 1 : end;
        while (ls < le && (*ls == ' ' || *ls == '\t'))
            ls++;
        const char *lt = le;
        while (lt > ls && (lt[-1] == '\r' || lt[-1] == ' ' || lt[-1] == '\t'))
            lt--;
        if (ls == lt || *ls == '#')
            continue;
        lines++;
        if (memchr(ls, '\0', (size_t)(lt - ls))) {
            if (st->rejected++ == 0) {
                st->reason = NOPS_REJECT_SYNTAX;
                st->first_bad = lineno;
                st->detail = "line contains a NUL byte";
            }
            continue;
        }
        if (!lp_ascii(ls, (size_t)(lt - ls)) && !nops_utf8_valid(ls, (size_t)(lt - ls))) { /* names and tags end up in JSON */
            if (st->rejected++ == 0) {
                st->reason = NOPS_REJECT_UTF8;
                st->first_bad = lineno;
                st->detail = "line is not valid UTF-8";
            }
            continue;
        }
        l.p = ls;
        l.end = lt;
        const char *detail = NULL;
        nops_reject r = lp_parse_line(&l, now_ns, fn, ud, &st->points, &stop, &detail);
        if (r != NOPS_REJECT_NONE && st->rejected++ == 0) {
            st->reason = r;
            st->first_bad = lineno;
            st->detail = detail;
        }
    }
    if (lines == 0) {
        st->reason = NOPS_REJECT_EMPTY;
        st->detail = "message holds no line";
        st->rejected = 1;
        return NOPS_PARSE;
    }
    return st->rejected == lines ? NOPS_PARSE : NOPS_OK;
}
