/*
 * jsonfmt.c — the two JSON metric shapes, read by a streaming tokenizer written here.
 *
 *   prometheus-kafka-adapter: {"timestamp":"2024-01-01T00:00:00Z","value":"0.53","name":"cpu",
 *                              "labels":{"__name__":"cpu","host":"a"}}
 *   Telegraf:                 {"name":"cpu","tags":{...},"fields":{"usage":1.5},
 *                              "timestamp":1700000000}   (also {"metrics":[ ... ]})
 *
 * A message may hold one object, a Telegraf batch, or several objects one per line. Each
 * object is judged alone: a bad one is counted and skipped. Telegraf timestamps are epoch
 * numbers whose unit is told apart by magnitude (s, ms, µs, ns), like everywhere else.
 *
 * Why hand-written, against the house rule of using the libraries: this is ingest's hot path.
 * jansson built a tree per message — an allocation per value and a copy of every string — and
 * held both shapes to 0.41–0.48 M points/s against 16.5 M for line protocol. The tokenizer
 * allocates nothing: names and labels point into the message (zero-copy), strings holding
 * escapes are decoded into a per-call scratch on the stack, numbers take an exact fast path
 * (at most 2^53 as an integer mantissa times a power of ten up to 22: one correctly rounded
 * operation) and strtod on a bounded copy otherwise, and only the fields the two shapes need
 * are pulled out; everything else is skipped.
 *
 * Each document goes through two passes: validate (jsontok.c), then extract. The validator
 * accepts only JSON jansson accepts as the tree parser was called (grammar, UTF-8 as jansson
 * checks it, escapes and surrogate pairs, no U+0000, no duplicate key, integers within int64,
 * reals that do not overflow), so no point of a document is delivered before the whole of it
 * is known to be good, as with the tree. Whatever it does not vouch for — every malformed
 * document, and a few rare shapes it does not track (a key with an escape, nesting past 64,
 * more than 256 keys open, a string past 4 KiB, more than 16 KiB of escaped text, a top-level
 * array, a real that may pass 1e308) — goes whole to the jansson slow path (jsonfmt_jansson.c),
 * so every rejection keeps its old reason (syntax, UTF-8, format) and resynchronisation, and
 * the malformed-input cost is what it was. tests/parse/test_jsonfmt_diff.c and the fuzz target
 * fuzz_json_diff hold the two parsers equal (points, values bit for bit, reasons, counts).
 */
#include "parse/jsonfmt_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char nops_json_unsupported[] = "unsupported format: not an object of the "
                                     "prometheus-kafka-adapter shape {name, value, labels} nor "
                                     "of Telegraf's {name, fields, tags}";

void nops_json_reject(json_ctx *c, nops_reject r, const char *detail)
{
    if (c->st->rejected++ == 0) {
        c->st->reason = r;
        c->st->first_bad = c->objects;
        c->st->detail = detail;
    }
}

/* ---- pass 2: extraction from a document known good --------------------------------------- */

typedef struct jt {
    const char *end;  /* end of the message */
    char *scratch;    /* decoded escaped strings of this document */
    size_t used;
} jt;

typedef struct jstr {
    const char *s;
    size_t n;
} jstr;

/* The closing quote of the string whose text starts at s; *esc: it holds a backslash. */
static inline const char *str_close(const char *s, const char *end, bool *esc)
{
    const char *p = s;
    *esc = false;
    for (;;) {
        while (end - p >= 8) {
            unsigned k = swar_special(p, false);
            p += k;
            if (k < 8)
                break;
        }
        while (*p != '"' && *p != '\\')
            p++;
        if (*p == '"')
            return p;
        *esc = true;
        p += 2; /* the escaped byte (\u's hex digits are plain bytes) */
    }
}

static const char *skip_value(const char *p, const char *end)
{
    bool esc;
    if (*p == '"')
        return str_close(p + 1, end, &esc) + 1;
    if (*p == '{' || *p == '[') {
        int d = 0;
        for (;;) {
            char c = *p++;
            if (c == '"')
                p = str_close(p, end, &esc) + 1;
            else if (c == '{' || c == '[')
                d++;
            else if ((c == '}' || c == ']') && --d == 0)
                return p;
        }
    }
    while (p < end && (is_digit(*p) || is_alpha(*p) || *p == '-' || *p == '+' || *p == '.'))
        p++;
    return p;
}

typedef struct jmember {
    const char *k; /* key (never escaped: such documents take the slow path) */
    size_t kn;
    const char *v; /* the value's first byte */
} jmember;

/* The next member of an object; *it starts just after '{' and moves past each value. */
static bool obj_next(const char **it, const char *end, jmember *m)
{
    const char *p = ws(*it, end);
    if (*p == ',')
        p = ws(p + 1, end);
    if (*p == '}') {
        *it = p + 1;
        return false;
    }
    m->k = p + 1;
    const char *q = m->k;
    while (*q != '"')
        q++;
    m->kn = (size_t)(q - m->k);
    p = ws(q + 1, end); /* at ':' */
    m->v = ws(p + 1, end);
    *it = skip_value(m->v, end);
    return true;
}

static size_t utf8_put(uint32_t u, char *o)
{
    if (u < 0x80) {
        o[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        o[0] = (char)(0xC0 | (u >> 6));
        o[1] = (char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        o[0] = (char)(0xE0 | (u >> 12));
        o[1] = (char)(0x80 | ((u >> 6) & 0x3F));
        o[2] = (char)(0x80 | (u & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (u >> 18));
    o[1] = (char)(0x80 | ((u >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((u >> 6) & 0x3F));
    o[3] = (char)(0x80 | (u & 0x3F));
    return 4;
}

/* The text of the string at v (its opening quote): the message's bytes, or decoded into the
 * scratch when it holds escapes (the validator bounded their sum by the scratch's size). */
static jstr get_str(jt *t, const char *v)
{
    bool esc;
    const char *s = v + 1, *q = str_close(s, t->end, &esc);
    if (!esc)
        return (jstr){s, (size_t)(q - s)};
    char *o = t->scratch + t->used, *o0 = o;
    for (const char *p = s; p < q;) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        char e = p[1];
        p += 2;
        switch (e) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t u = (uint32_t)nops_json_hex4(p);
            p += 4;
            if (u >= 0xD800 && u <= 0xDBFF) { /* the validator saw its low half */
                u = ((u - 0xD800) << 10) + ((uint32_t)nops_json_hex4(p + 2) - 0xDC00) + 0x10000;
                p += 6;
            }
            o += utf8_put(u, o);
            break;
        }
        default: *o++ = e; break; /* " \ / */
        }
    }
    t->used += (size_t)(o - o0);
    return (jstr){o0, (size_t)(o - o0)};
}

static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                             1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                             1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * The number of the JSON number grammar at s..end, as strtod reads it: *len is how much of
 * the text it is (0: none). Exact fast path when the digits fit 2^53 and the power of ten is
 * at most 22 (one correctly rounded IEEE operation, as strtod's result); strtod on a bounded
 * copy otherwise. `as_int`: a token without fraction or exponent is jansson's int64 (so "-0"
 * is 0, not -0).
 */
static double number(const char *s, const char *end, bool as_int, size_t *len)
{
    const char *p = s;
    bool neg = p < end && *p == '-';
    p += neg;
    uint64_t m = 0;
    int digits = 0, frac = 0;
    bool real = false;
    const char *d0 = p;
    while (p < end && is_digit(*p)) {
        m = m * 10 + (uint64_t)(*p++ - '0');
        digits++;
    }
    *len = 0;
    if (p == d0 || (*d0 == '0' && p - d0 > 1))
        return 0; /* no digits, or leading zeros: not the grammar */
    if (p < end && *p == '.') {
        const char *f0 = ++p;
        while (p < end && is_digit(*p)) {
            m = m * 10 + (uint64_t)(*p++ - '0');
            digits++;
        }
        frac = (int)(p - f0);
        if (!frac)
            return 0;
        real = true;
    }
    int exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *e = p + 1;
        bool eneg = e < end && *e == '-';
        e += e < end && (*e == '+' || *e == '-');
        const char *e0 = e;
        while (e < end && is_digit(*e) && e - e0 < 6)
            exp = exp * 10 + (*e++ - '0');
        if (e == e0 || (e < end && is_digit(*e)))
            return 0;
        exp = eneg ? -exp : exp;
        p = e;
        real = true;
    }
    *len = (size_t)(p - s);
    if (as_int && !real) /* within int64 (the validator); (double)-m rounds as -(double)m */
        return neg && m ? -(double)m : (double)m;
    int e10 = exp - frac;
    if (digits <= 19 && m <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double v = (double)m;
        v = e10 < 0 ? v / p10[-e10] : v * p10[e10];
        return neg ? -v : v;
    }
    char buf[JT_NUM_MAX + 1];
    if (*len > JT_NUM_MAX) { /* only strings get here so long: strtod needs the whole text */
        *len = 0;
        return 0;
    }
    memcpy(buf, s, *len);
    buf[*len] = '\0';
    return strtod(buf, NULL);
}

/* ---- the same walkers for other modules (parse.h) -------------------------------------------
 * The statics above, exported; vectorize reads its workflow runs through them. */

bool nops_json_object_ok(const char *doc, size_t len, const char **body)
{
    const char *end = doc + len, *p = ws(doc, end);
    *body = p;
    if (p >= end)
        return false;
    const char *q = nops_json_validate(p, end);
    return q && ws(q, end) == end;
}

bool nops_json_next_member(const char **it, const char *end, nops_json_member *m)
{
    jmember jm;
    if (!obj_next(it, end, &jm))
        return false;
    *m = (nops_json_member){jm.k, jm.kn, jm.v};
    return true;
}

bool nops_json_next_element(const char **it, const char *end, const char **v)
{
    const char *p = ws(*it, end);
    if (*p == ',')
        p = ws(p + 1, end);
    if (*p == ']') {
        *it = p + 1;
        return false;
    }
    *v = p;
    *it = skip_value(p, end);
    return true;
}

size_t nops_json_string(const char *v, const char *end, char *out)
{
    jt t = {end, out, 0};
    jstr s = get_str(&t, v);
    if (s.s != out) /* no escapes: the document's bytes */
        memcpy(out, s.s, s.n);
    out[s.n] = '\0';
    return s.n;
}

size_t nops_json_string_raw(const char *v, const char *end)
{
    bool esc;
    return (size_t)(str_close(v + 1, end, &esc) - (v + 1));
}

double nops_json_number(const char *v, const char *end)
{
    size_t n;
    return number(v, end, true, &n);
}

/* A string holding a number (the adapter sends values as strings), as the tree parser took
 * it: through strtod, whole and finite. */
static bool string_number(jstr s, double *out)
{
    size_t n;
    double d = number(s.s, s.s + s.n, false, &n);
    if (n != s.n || n == 0) { /* not the JSON grammar: strtod's wider one decides */
        char buf[JT_STR_MAX + 1];
        memcpy(buf, s.s, s.n); /* strings are at most JT_STR_MAX bytes (the validator) */
        buf[s.n] = '\0';
        char *e;
        d = strtod(buf, &e);
        if (e == buf || *e)
            return false;
    }
    if (!isfinite(d))
        return false;
    *out = d;
    return true;
}

/* A JSON number token at v (the validator vouched for it, reals included: always finite). */
static bool token_number(jt *t, const char *v, double *out)
{
    size_t n;
    if (*v != '-' && !is_digit(*v))
        return false;
    *out = number(v, t->end, true, &n);
    return true;
}

static bool timestamp(jt *t, const char *v, int64_t now_ns, int64_t *ns)
{
    if (!v || *v == 'n') {
        *ns = now_ns;
        return true;
    }
    if (*v == '"') {
        jstr s = get_str(t, v);
        return nops_ingest_parse_timestamp(s.s, s.n, ns, NULL) == NOPS_OK;
    }
    if (*v != '-' && !is_digit(*v))
        return false;
    const char *e = v + (*v == '-');
    while (is_digit(*e))
        e++;
    bool real = *e == '.' || *e == 'e' || *e == 'E';
    if (!real) { /* the token is the integer as "%lld" prints it, but for "-0" */
        if (e - v == 2 && v[0] == '-' && v[1] == '0')
            return nops_ingest_parse_timestamp("0", 1, ns, NULL) == NOPS_OK;
        return nops_ingest_parse_timestamp(v, (size_t)(e - v), ns, NULL) == NOPS_OK;
    }
    size_t n;
    double d = number(v, t->end, true, &n);
    if (!isfinite(d) || fabs(d) > 9e9)
        return false;
    *ns = (int64_t)(d * 1e9);
    return true;
}

/* Labels from an object of strings; `__name__` is left out. */
static bool get_tags(jt *t, const char *v, nops_label *tags, size_t *n)
{
    *n = 0;
    if (!v)
        return true;
    if (*v != '{')
        return false;
    const char *it = v + 1;
    jmember m;
    while (obj_next(&it, t->end, &m)) {
        if (m.kn == 8 && memcmp(m.k, "__name__", 8) == 0)
            continue;
        if (*m.v != '"' || *n == NOPS_INGEST_MAX_TAGS)
            return false;
        jstr s = get_str(t, m.v);
        tags[(*n)++] = (nops_label){m.k, m.kn, s.s, s.n};
    }
    return true;
}

static nops_point make_point(jstr name, const char *field, size_t field_len,
                             const nops_label *tags, size_t n_tags, double value, int64_t ts)
{
    if (field_len == 5 && memcmp(field, "value", 5) == 0)
        field_len = 0;
    return (nops_point){name.s, name.n, field_len ? field : "", field_len, tags, n_tags,
                        value,  ts,     NULL, 0}; /* no raw span: keyed each time */
}

static inline bool non_numeric(char c) /* string, true, false, null: no series value */
{
    return c == '"' || c == 't' || c == 'f' || c == 'n';
}

/* The object's names (the metric name with each numeric field, the label keys) can make a
 * series key; otherwise the object is rejected (NOPS_REJECT_NAME) and false returned. */
static bool names_ok(json_ctx *c, jt *t, jstr name, const char *fields, const nops_label *tags,
                     size_t n_tags)
{
    const char *detail = NULL;
    nops_point pt = make_point(name, "", 0, tags, n_tags, 0, 0);
    if (nops_ingest_check_names(&pt, &detail) != NOPS_REJECT_NONE) {
        nops_json_reject(c, NOPS_REJECT_NAME, detail);
        return false;
    }
    if (!fields)
        return true;
    const char *it = fields + 1;
    jmember m;
    while (obj_next(&it, t->end, &m)) {
        if (non_numeric(*m.v))
            continue;
        pt = make_point(name, m.k, m.kn, NULL, 0, 0, 0); /* the tags passed above */
        if (nops_ingest_check_names(&pt, &detail) != NOPS_REJECT_NONE) {
            nops_json_reject(c, NOPS_REJECT_NAME, detail);
            return false;
        }
    }
    return true;
}

static void emit(json_ctx *c, const nops_point *pt)
{
    c->st->points++;
    if (!c->fn(c->ud, pt))
        c->stop = true;
}

static void telegraf_points(json_ctx *c, jt *t, jstr name, const char *fields, const char *tagv,
                            int64_t ts)
{
    nops_label tags[NOPS_INGEST_MAX_TAGS];
    size_t n_tags;
    if (*fields != '{' || !get_tags(t, tagv, tags, &n_tags)) {
        nops_json_reject(c, NOPS_REJECT_SYNTAX,
                         "Telegraf \"fields\"/\"tags\" are not objects of values");
        return;
    }
    if (!names_ok(c, t, name, fields, tags, n_tags))
        return;
    uint32_t before = c->st->points;
    bool bad = false;
    const char *it = fields + 1;
    jmember m;
    while (obj_next(&it, t->end, &m)) {
        double d;
        if (non_numeric(*m.v))
            continue;
        if (!token_number(t, m.v, &d)) { /* an object or an array */
            bad = true;
            continue;
        }
        if (!c->stop) {
            nops_point pt = make_point(name, m.k, m.kn, tags, n_tags, d, ts);
            emit(c, &pt);
        }
    }
    if (bad && c->st->points == before)
        nops_json_reject(c, NOPS_REJECT_VALUE, "no Telegraf field is a finite number");
}

static void adapter_point(json_ctx *c, jt *t, jstr name, const char *value, const char *labels,
                          int64_t ts)
{
    double d;
    bool ok;
    if (*value == '"') { /* decoded once: the scratch holds each escaped string once */
        jstr s = get_str(t, value);
        if (s.n == 3 && strncasecmp(s.s, "nan", 3) == 0) {
            c->st->stale++; /* a staleness marker (or another NaN): no value, no error */
            return;
        }
        ok = string_number(s, &d);
    } else {
        ok = token_number(t, value, &d);
    }
    if (!ok) {
        nops_json_reject(c, NOPS_REJECT_VALUE, "\"value\" is not a finite number");
        return;
    }
    nops_label tags[NOPS_INGEST_MAX_TAGS];
    size_t n_tags;
    if (!get_tags(t, labels, tags, &n_tags)) {
        nops_json_reject(c, NOPS_REJECT_SYNTAX, "\"labels\" is not an object of strings");
        return;
    }
    if (!names_ok(c, t, name, NULL, tags, n_tags))
        return;
    nops_point pt = make_point(name, "", 0, tags, n_tags, d, ts);
    emit(c, &pt);
}

/* The members of an object the two shapes use (NULL: absent). */
typedef struct jshape {
    const char *name, *fields, *value, *ts, *tags, *labels, *metrics;
} jshape;

/*
 * One walk over the object at v (its '{') noting where the members of interest start: past
 * the object. With `batch`, a "metrics" array ends the walk at once (s->metrics; NULL
 * returned): the batch is read element by element, not skipped first.
 */
static const char *shape_of(jt *t, const char *v, jshape *s, bool batch)
{
    memset(s, 0, sizeof *s);
    const char *p = v + 1;
    for (;;) {
        p = ws(p, t->end);
        if (*p == ',')
            p = ws(p + 1, t->end);
        if (*p == '}')
            return p + 1;
        const char *k = p + 1, *q = k;
        while (*q != '"') /* keys hold no escapes (the validator) */
            q++;
        const size_t kn = (size_t)(q - k);
        const char *val = ws(ws(q + 1, t->end) + 1, t->end); /* past ':' */
        const char **slot = NULL;
        if (kn == 4 && memcmp(k, "name", 4) == 0)
            slot = &s->name;
        else if (kn == 6 && memcmp(k, "fields", 6) == 0)
            slot = &s->fields;
        else if (kn == 5 && memcmp(k, "value", 5) == 0)
            slot = &s->value;
        else if (kn == 9 && memcmp(k, "timestamp", 9) == 0)
            slot = &s->ts;
        else if (kn == 4 && memcmp(k, "tags", 4) == 0)
            slot = &s->tags;
        else if (kn == 6 && memcmp(k, "labels", 6) == 0)
            slot = &s->labels;
        else if (kn == 7 && memcmp(k, "metrics", 7) == 0) {
            s->metrics = val;
            if (batch && *val == '[')
                return NULL;
        }
        if (slot)
            *slot = val;
        p = skip_value(val, t->end);
    }
}

static void shape_points(json_ctx *c, jt *t, const jshape *s)
{
    c->objects++;
    if (!s->name || (!s->fields && !s->value)) {
        nops_json_reject(c, NOPS_REJECT_FORMAT, nops_json_unsupported);
        return;
    }
    jstr nm = {NULL, 0};
    if (*s->name == '"')
        nm = get_str(t, s->name);
    if (nm.n == 0) {
        nops_json_reject(c, NOPS_REJECT_SYNTAX, "object has no \"name\" string");
        return;
    }
    int64_t ns;
    if (!timestamp(t, s->ts, c->now_ns, &ns)) {
        nops_json_reject(c, NOPS_REJECT_TIMESTAMP, "\"timestamp\" is not a timestamp");
        return;
    }
    if (s->fields)
        telegraf_points(c, t, nm, s->fields, s->tags, ns);
    else
        adapter_point(c, t, nm, s->value, s->labels, ns);
}

/* A document the validator vouched for: a Telegraf batch or one object. */
static void json_document(json_ctx *c, jt *t, const char *doc)
{
    jshape s;
    if (shape_of(t, doc, &s, true)) {
        shape_points(c, t, &s);
        return;
    }
    const char *p = ws(s.metrics + 1, t->end);
    while (*p != ']' && !c->stop) {
        const char *next;
        if (*p == '{') {
            jshape e;
            next = shape_of(t, p, &e, false);
            shape_points(c, t, &e);
        } else { /* not an object: of neither shape */
            c->objects++;
            nops_json_reject(c, NOPS_REJECT_FORMAT, nops_json_unsupported);
            next = skip_value(p, t->end);
        }
        p = ws(next, t->end);
        if (*p == ',')
            p = ws(p + 1, t->end);
    }
}

nops_err nops_ingest_parse_json(const char *msg, size_t len, int64_t now_ns, nops_point_fn fn,
                                void *ud, nops_parse_stats *st)
{
    memset(st, 0, sizeof *st);
    json_ctx c = {now_ns, fn, ud, st, 0, false};
    char scratch[JT_SCRATCH];
    const char *p = msg, *end = msg + len;
    while (p < end && !c.stop) {
        p = ws(p, end);
        if (p >= end)
            break;
        const char *next = nops_json_validate(p, end);
        if (!next) { /* malformed or unusual: jansson classifies it */
            p = nops_json_doc_jansson(&c, p, end);
            continue;
        }
        jt t = {end, scratch, 0};
        json_document(&c, &t, p);
        p = next;
    }
    if (c.objects == 0) {
        st->reason = NOPS_REJECT_EMPTY;
        st->detail = "message holds no JSON object";
        st->rejected = 1;
        return NOPS_PARSE;
    }
    return st->points == 0 && st->rejected ? NOPS_PARSE : NOPS_OK;
}

nops_err nops_ingest_parse(const char *msg, size_t len, int64_t now_ns, nops_point_fn fn,
                           void *ud, nops_parse_stats *st)
{
    return nops_ingest_parse_prec(msg, len, now_ns, NOPS_TS_NS, fn, ud, st);
}

/* The whole message refused as one of a shape no parser takes. */
static nops_err unsupported(nops_parse_stats *st, const char *detail)
{
    memset(st, 0, sizeof *st);
    st->rejected = 1;
    st->first_bad = 1;
    st->reason = NOPS_REJECT_FORMAT;
    st->detail = detail;
    return NOPS_PARSE;
}

nops_err nops_ingest_parse_prec(const char *msg, size_t len, int64_t now_ns,
                                nops_ts_precision prec, nops_point_fn fn, void *ud,
                                nops_parse_stats *st)
{
    size_t i = 0;
    while (i < len && (msg[i] == ' ' || msg[i] == '\t' || msg[i] == '\r' || msg[i] == '\n'))
        i++;
    if (i < len && msg[i] == '{')
        return nops_ingest_parse_json(msg, len, now_ns, fn, ud, st);
    /* text starts with a printable byte: a control byte first is binary (a Confluent schema
     * registry magic 0, gzip's 0x1f 0x8b, snappy, a protobuf tag) */
    if (i < len && ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f))
        return unsupported(st, "unsupported format: binary data (compressed, Avro or Protobuf?); "
                               "send line protocol or JSON text");
    if (i < len && msg[i] == '[')
        return unsupported(st, "unsupported format: a JSON array; send one object per line or "
                               "Telegraf's {\"metrics\":[...]}");
    return nops_ingest_parse_lineproto_prec(msg, len, now_ns, prec, fn, ud, st);
}
