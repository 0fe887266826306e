/*
 * analyze.c — what makes POST /analyze cheap per request: a detector per HTTP thread that is
 * reused (one series, put back to its registered state before every request) with its output
 * arrays, and a tokenizer for the common body {"values":[...]} that fills those arrays without
 * building a jansson tree.
 *
 * Thread contract: a context belongs to the one MHD thread that made it (found through a
 * pthread key of the server), so using it takes no lock; the server's list of contexts is
 * locked only when a thread makes its first one, and the contexts are freed with the server,
 * after its threads stopped (nops__analyze_fini). A thread holds one context for the life of
 * the server: a detector of the request's params (remade only when a request asks for other
 * ones) and arrays as long as the longest request it served (at most MAX_VALUES points).
 *
 * The tokenizer accepts only a body that it can prove valid, with the answer jansson's path
 * would give: an object whose keys are among values, window, alpha, z_threshold,
 * ewma_threshold, method (each once, no escapes), values a non-empty array of at most
 * MAX_VALUES JSON numbers finite in single precision, the overrides within their bounds. Each
 * number is converted as jansson converts it (an integer token by strtoll then to double, any
 * other by strtod; the C library's conversion must stop exactly at the token's end). Anything
 * else — other fields, other types, an out-of-range value, malformed JSON — goes to the jansson
 * path, which gives the same 400 messages as before.
 */
#include "api/api_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct analyze_ctx {
    nops_detector *det;       /* one series, at `dp`; NULL until the first request */
    nops_detect_params dp;    /* the params det was made with (as the request gave them) */
    uint32_t slot;            /* the series' slot in det */
    float *values;            /* the fast path's parsed values */
    float *z, *ze, *ratio;    /* the kernel's outputs, `cap` each */
    uint8_t *flags;           /* ditto */
    uint32_t *slots;          /* `cap` copies of `slot` (for nops_detect_update_pairs) */
    size_t cap;               /* length of the arrays above */
    struct analyze_ctx *next; /* the server's list */
};

static void ctx_free(analyze_ctx *cx)
{
    nops_detect_destroy(cx->det);
    nops_free(cx->values);
    nops_free(cx->z);
    nops_free(cx->ze);
    nops_free(cx->ratio);
    nops_free(cx->flags);
    nops_free(cx->slots);
    nops_free(cx);
}

nops_err nops__analyze_init(nops_api *api)
{
    pthread_mutex_init(&api->an_mu, NULL);
    api->an_key_ok = pthread_key_create(&api->an_key, NULL) == 0;
    return api->an_key_ok ? NOPS_OK : NOPS_NOMEM;
}

void nops__analyze_fini(nops_api *api)
{
    for (analyze_ctx *cx = api->an_ctxs, *next; cx; cx = next) {
        next = cx->next;
        ctx_free(cx);
    }
    api->an_ctxs = NULL;
    if (api->an_key_ok)
        pthread_key_delete(api->an_key);
    api->an_key_ok = false;
    pthread_mutex_destroy(&api->an_mu);
}

analyze_ctx *nops__analyze_ctx(nops_api *api)
{
    if (!api->an_key_ok)
        return NULL;
    analyze_ctx *cx = pthread_getspecific(api->an_key);
    if (cx)
        return cx;
    if (!(cx = nops_calloc(1, sizeof *cx)))
        return NULL;
    if (pthread_setspecific(api->an_key, cx) != 0) {
        nops_free(cx);
        return NULL;
    }
    pthread_mutex_lock(&api->an_mu);
    cx->next = api->an_ctxs;
    api->an_ctxs = cx;
    pthread_mutex_unlock(&api->an_mu);
    return cx;
}

/* Room for n points in every array (contents kept, as realloc keeps them). */
static bool ctx_reserve(analyze_ctx *cx, size_t n)
{
    if (n <= cx->cap)
        return true;
    size_t cap = cx->cap ? cx->cap : 256;
    while (cap < n)
        cap *= 2;
    float *v = nops_realloc(cx->values, cap * sizeof *v);
    if (v)
        cx->values = v;
    float *z = nops_realloc(cx->z, cap * sizeof *z);
    if (z)
        cx->z = z;
    float *ze = nops_realloc(cx->ze, cap * sizeof *ze);
    if (ze)
        cx->ze = ze;
    float *r = nops_realloc(cx->ratio, cap * sizeof *r);
    if (r)
        cx->ratio = r;
    uint8_t *f = nops_realloc(cx->flags, cap);
    if (f)
        cx->flags = f;
    uint32_t *s = nops_realloc(cx->slots, cap * sizeof *s);
    if (s)
        cx->slots = s;
    if (!v || !z || !ze || !r || !f || !s)
        return false; /* cap stays: the arrays that grew are merely larger than it says */
    for (size_t i = cx->cap; i < cap; i++)
        s[i] = cx->slot;
    cx->cap = cap;
    return true;
}

static bool same_params(const nops_detect_params *a, const nops_detect_params *b)
{
    return a->window == b->window && a->alpha == b->alpha && a->alpha_var == b->alpha_var &&
           a->false_alarm_points == b->false_alarm_points &&
           a->z_threshold == b->z_threshold && a->ewma_threshold == b->ewma_threshold &&
           a->cusum_threshold == b->cusum_threshold && a->cusum_k == b->cusum_k &&
           a->long_window == b->long_window && a->season_points == b->season_points &&
           a->season_s == b->season_s && a->warmup == b->warmup && a->method == b->method &&
           a->hysteresis == b->hysteresis && a->clear_points == b->clear_points &&
           a->ttl_s == b->ttl_s && a->variant == b->variant;
}

nops_err nops__analyze_prepare(analyze_ctx *cx, const nops_detect_params *dp, size_t n,
                               char *errstr, size_t errstr_size)
{
    if (cx->det && !same_params(&cx->dp, dp)) {
        nops_detect_destroy(cx->det);
        cx->det = NULL;
    }
    if (!cx->det) {
        if (!(cx->det = nops_detect_new(dp, 1, errstr, errstr_size)))
            return NOPS_CONFIG;
        uint32_t slot = 0;
        if (nops_detect_slot(cx->det, 1, NULL, 0, 0, &slot) != NOPS_OK) {
            nops_detect_destroy(cx->det);
            cx->det = NULL;
            nops_errf(errstr, errstr_size, "out of memory");
            return NOPS_NOMEM;
        }
        cx->dp = *dp;
        if (slot != cx->slot) /* always 0 in a new detector; kept general */
            for (size_t i = 0; i < cx->cap; i++)
                cx->slots[i] = slot;
        cx->slot = slot;
    } else if (nops_detect_reset_slot(cx->det, cx->slot) != NOPS_OK) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_INTERNAL;
    }
    if (!ctx_reserve(cx, n)) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    return NOPS_OK;
}

nops_detector *nops__analyze_run(analyze_ctx *cx, const float *values, size_t n,
                                 nops_detect_out *out, uint32_t *slot)
{
    *out = (nops_detect_out){cx->z, cx->ze, cx->flags, cx->ratio};
    *slot = cx->slot;
    nops_detect_update_pairs(cx->det, cx->slots, values, n, out);
    return cx->det;
}

/* ---- the tokenizer ------------------------------------------------------------------------ */

typedef struct tok {
    const char *p, *e; /* next byte, end of the body */
} tok;

static void skip_ws(tok *t)
{
    while (t->p < t->e && (*t->p == ' ' || *t->p == '\t' || *t->p == '\n' || *t->p == '\r'))
        t->p++;
}

static bool take(tok *t, char c)
{
    skip_ws(t);
    if (t->p < t->e && *t->p == c) {
        t->p++;
        return true;
    }
    return false;
}

static bool digit(const tok *t, const char *q)
{
    return q < t->e && *q >= '0' && *q <= '9';
}

/* 10^0 .. 10^22: every one exact in double precision */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * A JSON number (-?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?) converted as jansson converts it; false
 * when it is not one, or does not convert cleanly (jansson's path then says why).
 *
 * jansson converts an integer token with strtoll and any other with strtod, both exact (glibc's
 * strtod rounds correctly). Most values take a shorter road to the same double: an integer of
 * at most 18 digits is exact in int64; a decimal whose digits, read as an integer M, are at most
 * 2^53 with a decimal exponent e (the exponent less the fraction digits) in [-22, 22] is
 * M × 10^e or M / 10^−e — both operands exact doubles, so the one IEEE operation rounds
 * correctly and gives strtod's answer (Clinger's fast path). The rest goes to the C library.
 */
static bool number(tok *t, double *out, bool *is_int)
{
    skip_ws(t);
    const char *q = t->p;
    const bool neg = q < t->e && *q == '-';
    uint64_t m = 0;            /* the digits as an integer, while `exact` */
    int digits = 0, frac = 0;  /* digits taken into m; of them after the point */
    bool exact = true;
    if (neg)
        q++;
    if (!digit(t, q))
        return false;
#define TAKE_DIGIT(after_point)                                                                \
    do {                                                                                       \
        if (m == 0 && *q == '0' && !(after_point)) { /* a leading zero adds nothing */         \
        } else if (digits < 18) {                                                              \
            m = m * 10 + (uint64_t)(*q - '0');                                                 \
            digits++;                                                                          \
            frac += (after_point);                                                             \
        } else                                                                                 \
            exact = false;                                                                     \
        q++;                                                                                   \
    } while (0)
    if (*q == '0')
        q++;
    else
        while (digit(t, q))
            TAKE_DIGIT(0);
    bool integer = true;
    if (q < t->e && *q == '.') {
        integer = false;
        if (!digit(t, ++q))
            return false;
        while (digit(t, q))
            TAKE_DIGIT(1);
    }
#undef TAKE_DIGIT
    long ex = 0;
    if (q < t->e && (*q == 'e' || *q == 'E')) {
        integer = false;
        q++;
        bool eneg = false;
        if (q < t->e && (*q == '+' || *q == '-'))
            eneg = *q++ == '-';
        if (!digit(t, q))
            return false;
        while (digit(t, q)) {
            if (ex < 100000)
                ex = ex * 10 + (*q - '0');
            else
                exact = false;
            q++;
        }
        ex = eneg ? -ex : ex;
    }
    if (q == t->e) /* a valid body goes on after a number: strto* must not read past the end */
        return false;
    const long e10 = ex - frac;
    if (integer && exact) {
        *out = (double)(neg ? -(long long)m : (long long)m);
    } else if (!integer && exact && m <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double d = e10 < 0 ? (double)m / pow10_exact[-e10] : (double)m * pow10_exact[e10];
        *out = neg ? -d : d;
    } else {
        char *end;
        errno = 0;
        if (integer)
            *out = (double)strtoll(t->p, &end, 10);
        else
            *out = strtod(t->p, &end);
        if (end != q || errno == ERANGE)
            return false;
    }
    *is_int = integer;
    t->p = q;
    return true;
}

/* A string of printable ASCII without escapes, into buf (NUL-terminated). */
static bool plain_string(tok *t, char *buf, size_t cap)
{
    if (!take(t, '"'))
        return false;
    size_t n = 0;
    while (t->p < t->e && *t->p != '"') {
        unsigned char c = (unsigned char)*t->p++;
        if (c < 0x20 || c >= 0x7f || c == '\\' || n + 1 >= cap)
            return false;
        buf[n++] = (char)c;
    }
    if (t->p == t->e)
        return false;
    t->p++;
    buf[n] = '\0';
    return true;
}

static bool fast_values(tok *t, analyze_ctx *cx, size_t *n_out)
{
    if (!take(t, '['))
        return false;
    size_t n = 0;
    do {
        double d;
        bool is_int;
        if (n == MAX_ANALYZE_VALUES || !number(t, &d, &is_int) || !isfinite((float)d))
            return false;
        if (n == cx->cap && !ctx_reserve(cx, n + 1))
            return false;
        cx->values[n++] = (float)d;
    } while (take(t, ','));
    if (!take(t, ']'))
        return false;
    *n_out = n;
    return true;
}

static bool fast_override(tok *t, int k, nops_detect_params *dp)
{
    static const struct { double lo, hi; } range[] = {{1e-6, 1}, {0.1, 1e6}, {0.1, 1e6}};
    if (k == 0) { /* window */
        double x;
        bool is_int;
        if (!number(t, &x, &is_int) || !is_int || x < 4 || x > NOPS_DETECT_MAX_WINDOW)
            return false;
        dp->window = (int64_t)x;
        return true;
    }
    if (k <= 3) { /* alpha, z_threshold, ewma_threshold */
        double x;
        bool is_int;
        if (!number(t, &x, &is_int) || !(x >= range[k - 1].lo && x <= range[k - 1].hi))
            return false;
        *(k == 1 ? &dp->alpha : k == 2 ? &dp->z_threshold : &dp->ewma_threshold) = x;
        return true;
    }
    static const char *names[] = {"zscore", "ewma", "both", "all"};
    char m[8];
    if (!plain_string(t, m, sizeof m))
        return false;
    for (int i = 0; i < 4; i++)
        if (strcmp(m, names[i]) == 0) {
            dp->method = i;
            return true;
        }
    return false;
}

bool nops__analyze_fast_body(const char *body, size_t len, analyze_ctx *cx,
                             nops_detect_params *dp, size_t *n)
{
    static const char *const keys[] = {"window", "alpha", "z_threshold", "ewma_threshold",
                                       "method", "values"};
    tok t = {body, body + len};
    nops_detect_params q = *dp;
    unsigned seen = 0;
    if (!take(&t, '{'))
        return false;
    do {
        char key[24];
        int k = -1;
        if (!plain_string(&t, key, sizeof key) || !take(&t, ':'))
            return false;
        for (int i = 0; i < 6 && k < 0; i++)
            if (strcmp(key, keys[i]) == 0)
                k = i;
        if (k < 0 || (seen & (1u << k)))
            return false;
        seen |= 1u << k;
        if (!(k == 5 ? fast_values(&t, cx, n) : fast_override(&t, k, &q)))
            return false;
    } while (take(&t, ','));
    if (!take(&t, '}') || !(seen & (1u << 5)))
        return false;
    skip_ws(&t);
    if (t.p != t.e)
        return false;
    *dp = q;
    return true;
}

const float *nops__analyze_values(const analyze_ctx *cx)
{
    return cx->values;
}

/* ---- the answer ---------------------------------------------------------------------------- */

/* A real as jansson's compact dump writes it (jsonp_dtostr at precision 17): "%.17g", ".0" when
 * it would read back as an integer, no '+' nor leading zeros in the exponent. */
static size_t real_str(char *b, size_t cap, double v)
{
    int len = snprintf(b, cap, "%.17g", v);
    if (len < 0 || (size_t)len + 3 >= cap)
        return 0;
    size_t n = (size_t)len;
    if (!strchr(b, '.') && !strchr(b, 'e')) {
        memcpy(b + n, ".0", 3);
        n += 2;
    }
    char *start = strchr(b, 'e');
    if (start) {
        start++;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, n - (size_t)(end - b) + 1);
            n -= (size_t)(end - start);
        }
    }
    return n;
}

/* A string as jansson's dump escapes it (no JSON_ENSURE_ASCII: UTF-8 passes), quoted and
 * NUL-terminated; 0 when it does not fit. */
static size_t str_json(char *b, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap < 3)
        return 0;
    b[n++] = '"';
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t k = 0;
        switch (c) {
        case '"': memcpy(esc, "\\\"", k = 2); break;
        case '\\': memcpy(esc, "\\\\", k = 2); break;
        case '\b': memcpy(esc, "\\b", k = 2); break;
        case '\f': memcpy(esc, "\\f", k = 2); break;
        case '\n': memcpy(esc, "\\n", k = 2); break;
        case '\r': memcpy(esc, "\\r", k = 2); break;
        case '\t': memcpy(esc, "\\t", k = 2); break;
        default:
            if (c < 0x20)
                k = (size_t)snprintf(esc, sizeof esc, "\\u%04X", c);
            else
                esc[k++] = (char)c;
        }
        if (n + k + 2 > cap)
            return 0;
        memcpy(b + n, esc, k);
        n += k;
    }
    b[n++] = '"';
    b[n] = '\0'; /* room kept by the check above */
    return n;
}

bool nops__analyze_answer(response *res, const analyze_answer *a)
{
    char score[40], z[40], ze[40], method[64], hint[1024], source[64];
    if (!isfinite(a->score) || !isfinite(a->zscore) || !isfinite(a->ewma) ||
        !real_str(score, sizeof score, a->score) || !real_str(z, sizeof z, a->zscore) ||
        !real_str(ze, sizeof ze, a->ewma) || !str_json(method, sizeof method, a->method) ||
        !str_json(hint, sizeof hint, a->hint) || !str_json(source, sizeof source, a->source))
        return false; /* json_pack would have refused these too */
    char out[1400];
    int n = snprintf(out, sizeof out,
                     "{\"score\":%s,\"zscore\":%s,\"ewma\":%s,\"method\":%s,\"hint\":%s,"
                     "\"points\":%lld,\"anomaly\":%s,\"anomalous_points\":%lld,\"source\":%s,"
                     "\"window\":%lld}",
                     score, z, ze, method, hint, (long long)a->points,
                     a->anomaly ? "true" : "false", (long long)a->anomalous_points, source,
                     (long long)a->window);
    if (n < 0 || (size_t)n >= sizeof out)
        return false;
    res->status = 200;
    res->body.len = 0;
    return nops__api_put(res, out, (size_t)n);
}
