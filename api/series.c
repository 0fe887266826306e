/*
 * series.c — GET /series?key=&from=&to=&limit=: the points the engine holds for one series,
 * for a chart of an anomaly (README "The HTTP API", api/openapi.json).
 *
 * Two sources, merged oldest first with no time twice: the live window, asked of the worker
 * that holds the series (nops_pipeline_series_view: values with their times, the window's mean
 * and std), and the signal contexts the pipeline keeps (nops_pipeline_signal_contexts: the
 * window each signal was judged on, which outlives the live window). A point is `anomalous`
 * when |value − mean| ≥ z·std for the band it was judged against (the live window's, or the
 * one before its signal), with the detector's scale floor, and always at a signal's point.
 * Over `limit` points the newest are kept ("truncated": true). A time the engine only
 * estimated (ingest.h: the series' steps were not regular) sets "ts_estimated".
 *
 * The query string is outside input: series_arg judges each parameter alone (400 with the
 * parameter named); tests/fuzz/fuzz_api_query.c throws arbitrary query strings at it.
 */
#include "api/api_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SERIES_LIMIT_DEFAULT 2000 /* points answered when `limit` is not given */
#define SERIES_LIMIT_MAX 10000    /* the largest `limit` */
#define SERIES_ASK_MS 2000        /* how long the workers may take to answer */

typedef struct series_args {
    const char *key;          /* URL-decoded by MHD; valid during the request */
    int64_t from_ns, to_ns;   /* INT64_MIN / INT64_MAX when not given */
    unsigned long long limit; /* points at most */
    response *res;
    bool bad;                 /* res holds a 400 */
} series_args;

/* T: unix milliseconds (digits, optionally signed) or an RFC 3339 time; false if neither. */
static bool series_time(const char *v, int64_t *ns)
{
    const size_t len = strlen(v);
    const char *d = v + (v[0] == '-');
    if (*d && strspn(d, "0123456789") == strlen(d)) {
        errno = 0;
        const long long ms = strtoll(v, NULL, 10);
        if (errno || ms > INT64_MAX / 1000000 || ms < INT64_MIN / 1000000)
            return false; /* past what nanoseconds in int64 hold (the years 1677 to 2262) */
        *ns = (int64_t)ms * 1000000;
        return true;
    }
    if (len < 10 || v[4] != '-')
        return false;
    return nops_ingest_parse_timestamp(v, len, ns, NULL) == NOPS_OK;
}

static enum MHD_Result series_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    series_args *a = cls;
    const char *v = value ? value : "";
    if (strcmp(key, "key") == 0) {
        a->key = v;
    } else if (strcmp(key, "from") == 0 || strcmp(key, "to") == 0) {
        int64_t ns;
        if (!series_time(v, &ns)) {
            nops__api_error(a->res, 400, "%s: \"%.60s\" is not a time (RFC 3339 such as "
                            "2026-12-01T05:00:00Z, or unix milliseconds)", key, v);
            a->bad = true;
            return MHD_NO;
        }
        *(key[0] == 'f' ? &a->from_ns : &a->to_ns) = ns;
    } else if (strcmp(key, "limit") == 0) {
        if (!nops__api_count_arg(key, v, 1, SERIES_LIMIT_MAX, &a->limit, a->res)) {
            a->bad = true;
            return MHD_NO;
        }
    } else {
        nops__api_error(a->res, 400, "unknown query parameter \"%.60s\" (key, from, to, limit)",
                        key);
        a->bad = true;
        return MHD_NO;
    }
    return MHD_YES;
}

/* One point of the answer while it is merged. */
typedef struct mpoint {
    int64_t ts;
    float value;
    bool estimated, anomalous;
} mpoint;

static int by_ts(const void *x, const void *y)
{
    const mpoint *a = x, *b = y;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return (int)a->estimated - (int)b->estimated; /* the exact one first */
}

/* |v − mean| ≥ z·scale, the scale floored as the detector floors it (detect.h). */
static bool outside(double v, double mean, double std, double z)
{
    const double floor = NOPS_DETECT_FLOOR_REL * fabs(mean) + NOPS_DETECT_FLOOR_ABS;
    return fabs(v - mean) >= z * (std > floor ? std : floor);
}

static json_t *band(double mean, double std, double z)
{
    const double floor = NOPS_DETECT_FLOOR_REL * fabs(mean) + NOPS_DETECT_FLOOR_ABS;
    const double w = z * (std > floor ? std : floor);
    return json_pack("{s:f, s:f, s:f, s:f, s:f}", "mean", mean, "std", std, "lower", mean - w,
                     "upper", mean + w, "z_threshold", z);
}

static json_t *ts_str(int64_t ns)
{
    char b[48];
    nops_format_ts(ns, b, sizeof b);
    return json_string(b);
}

/* The points of the view and the contexts within [from, to], merged; n set. NULL: no memory. */
static mpoint *merge(const series_args *a, const nops_series_view *v, bool live,
                     nops_signal_context **cv, size_t nc, size_t *n)
{
    size_t cap = live ? v->n : 0;
    for (size_t i = 0; i < nc; i++)
        cap += cv[i]->n;
    mpoint *m = nops_malloc((cap ? cap : 1) * sizeof *m);
    if (!m)
        return NULL;
    size_t k = 0;
    for (uint32_t j = 0; live && j < v->n; j++) {
        const nops_series_point *p = &v->points[j];
        if (p->ts_ns >= a->from_ns && p->ts_ns <= a->to_ns)
            m[k++] = (mpoint){p->ts_ns, p->value, p->estimated,
                              outside(p->value, v->mean, v->std, v->z_threshold)};
    }
    for (size_t i = 0; i < nc; i++) {
        const nops_signal_context *c = cv[i];
        for (uint32_t j = 0; j < c->n; j++) {
            const nops_series_point *p = &c->points[j];
            if (p->ts_ns < a->from_ns || p->ts_ns > a->to_ns)
                continue;
            const bool sig = j == c->n - 1 && p->ts_ns == c->ts_ns; /* the signal's point */
            m[k++] = (mpoint){p->ts_ns, p->value, p->estimated,
                              sig || outside(p->value, c->mean, c->std, c->z_threshold)};
        }
    }
    qsort(m, k, sizeof *m, by_ts);
    size_t out = 0;
    for (size_t j = 0; j < k; j++) { /* one point per time: the exact one, anomalous if any */
        if (out && m[out - 1].ts == m[j].ts) {
            m[out - 1].anomalous |= m[j].anomalous;
            continue;
        }
        m[out++] = m[j];
    }
    *n = out;
    return m;
}

/* The answer's JSON (see the file's comment); NULL when out of memory. */
static json_t *answer(const series_args *a, const nops_series_view *v, bool live,
                      nops_signal_context **cv, size_t nc)
{
    size_t n = 0;
    mpoint *m = merge(a, v, live, cv, nc, &n);
    if (!m)
        return NULL;
    const size_t from = n > a->limit ? n - (size_t)a->limit : 0;
    bool estimated = false, ok = true;
    json_t *pts = json_array(), *sigs = json_array();
    for (size_t j = from; ok && pts && j < n; j++) {
        estimated |= m[j].estimated;
        ok = json_array_append_new(pts, json_pack("{s:o, s:f, s:b}", "ts", ts_str(m[j].ts),
                                                  "value", (double)m[j].value, "anomalous",
                                                  m[j].anomalous)) == 0;
    }
    nops_free(m);
    for (size_t i = 0; ok && sigs && i < nc; i++) {
        const nops_signal_context *c = cv[i];
        if (c->ts_ns < a->from_ns || c->ts_ns > a->to_ns)
            continue;
        ok = json_array_append_new(
                 sigs, json_pack("{s:s, s:o, s:f, s:s, s:o}", "id", c->id, "ts",
                                 ts_str(c->ts_ns), "value", c->value, "method",
                                 nops_detector_name((nops_detector_kind)c->method), "baseline",
                                 band(c->mean, c->std, c->z_threshold))) == 0;
    }
    json_t *o = ok && pts && sigs
                    ? json_pack("{s:s, s:O, s:b, s:b, s:o, s:O}", "series", a->key, "points",
                                pts, "ts_estimated", estimated, "truncated", from > 0,
                                "baseline",
                                live ? band(v->mean, v->std, v->z_threshold) : json_null(),
                                "signals", sigs)
                    : NULL;
    json_decref(pts);
    json_decref(sigs);
    return o;
}

void nops__api_series(nops_api *api, struct MHD_Connection *c, response *res)
{
    series_args a = {.from_ns = INT64_MIN, .to_ns = INT64_MAX, .limit = SERIES_LIMIT_DEFAULT,
                     .res = res};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, series_arg, &a);
    if (a.bad)
        return;
    if (!a.key || !*a.key) {
        nops__api_error(res, 400, "key is required: a canonical series key such as "
                        "cpu_usage_user{host=\"web-1\"}, URL-encoded (a signal's \"series\")");
        return;
    }
    if (strlen(a.key) >= NOPS_KEY_MAX) {
        nops__api_error(res, 400, "key is longer than a series key can be (%d bytes)",
                        NOPS_KEY_MAX - 1);
        return;
    }
    if (a.from_ns > a.to_ns) {
        nops__api_error(res, 400, "from is after to");
        return;
    }
    if (!api->d.pipeline) {
        nops__api_error(res, 503, "no pipeline runs in this process: no series are held");
        return;
    }
    nops_series_view v = {.cap = NOPS_DETECT_MAX_WINDOW};
    nops_signal_context **cv = NULL;
    size_t nc = 0, held = 0;
    if (!(v.points = nops_malloc(v.cap * sizeof *v.points))) {
        nops__api_error(res, 500, "out of memory");
        return;
    }
    const nops_err e = nops_pipeline_series_view(api->d.pipeline, a.key, &v, SERIES_ASK_MS);
    const nops_err ce = nops_pipeline_signal_contexts(api->d.pipeline, a.key, a.from_ns,
                                                      a.to_ns, &cv, &nc, &held);
    json_t *o = NULL;
    if (ce != NOPS_OK || (e != NOPS_OK && e != NOPS_NOTFOUND && e != NOPS_IO))
        nops__api_error(res, 500, "out of memory");
    else if (e == NOPS_NOTFOUND && held == 0)
        nops__api_error(res, 404, "series %.300s is neither tracked nor in a signal the engine "
                        "holds (canonical keys are the signals' \"series\" field)", a.key);
    else if (e == NOPS_IO && held == 0)
        nops__api_error(res, 503, "the detectors did not answer in time");
    else if (!(o = answer(&a, &v, e == NOPS_OK, cv, nc)))
        nops__api_error(res, 500, "out of memory");
    else
        nops__api_json(res, 200, o);
    nops_signal_contexts_free(cv, nc);
    nops_free(v.points);
}
