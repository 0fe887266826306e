/*
 * handlers.c — the endpoints of api.h: POST /analyze (inline values, the engine's own recent
 * window of a series, or a Prometheus range query), POST /ingest (parsed here, produced to the
 * metrics topic one message per series so the pipeline sees it like any producer's), the
 * signal and incident listings, health and readiness, and the OpenAPI document.
 */
#include "api/api_int.h"

#include <errno.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const char nops__openapi_json[];
extern const char nops__dashboard_html[];

/* ---- request bodies ------------------------------------------------------------------------ */

bool nops__api_content_type_is(struct MHD_Connection *c, const char *want)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct)
        return true;
    size_t n = strlen(want);
    return strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

json_t *nops__api_body_object(request *rq, response *res)
{
    if (rq->body.len == 0) {
        nops__api_error(res, 400, "empty body: a JSON object is expected");
        return NULL;
    }
    json_error_t je;
    json_t *o = json_loadb(rq->body.b, rq->body.len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        nops__api_error(res, 400, "malformed JSON at line %d column %d: %s", je.line,
                        je.column, je.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        nops__api_error(res, 400, "the body must be a JSON object");
        return NULL;
    }
    return o;
}

bool nops__api_known_fields(json_t *o, const char *const *known, size_t n, response *res)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (!ok) {
            nops__api_error(res, 400, "unknown field \"%.100s\"", k);
            return false;
        }
    }
    return true;
}

/* ---- POST /analyze ------------------------------------------------------------------------ */

typedef struct analysis {
    float *values;
    size_t n;
    nops_detect_params dp;
    const char *source; /* "values" | "series" | "prom_query" */
} analysis;

/* Optional detector overrides of the request: window, alpha, thresholds, method. */
static bool overrides(json_t *o, nops_detect_params *dp, response *res)
{
    json_t *v;
    if ((v = json_object_get(o, "window"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 4 ||
            json_integer_value(v) > NOPS_DETECT_MAX_WINDOW) {
            nops__api_error(res, 400, "window must be an integer in [4, %d]",
                            NOPS_DETECT_MAX_WINDOW);
            return false;
        }
        dp->window = (int64_t)json_integer_value(v);
    }
    struct { const char *k; double *dst; double lo, hi; } nums[] = {
        {"alpha", &dp->alpha, 1e-6, 1},
        {"z_threshold", &dp->z_threshold, 0.1, 1e6},
        {"ewma_threshold", &dp->ewma_threshold, 0.1, 1e6},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (!(v = json_object_get(o, nums[i].k)))
            continue;
        double x = json_number_value(v);
        if (!json_is_number(v) || !(x >= nums[i].lo && x <= nums[i].hi)) {
            nops__api_error(res, 400, "%s must be a number in [%g, %g]", nums[i].k, nums[i].lo,
                            nums[i].hi);
            return false;
        }
        *nums[i].dst = x;
    }
    if ((v = json_object_get(o, "method"))) {
        const char *m = json_string_value(v);
        static const char *names[] = {"zscore", "ewma", "both", "all"};
        int k = -1;
        for (int i = 0; m && i < 4; i++)
            if (strcmp(m, names[i]) == 0)
                k = i;
        if (k < 0) {
            nops__api_error(res, 400,
                            "method must be \"zscore\", \"ewma\", \"both\" or \"all\"");
            return false;
        }
        dp->method = (nops_detect_method)k;
    }
    return true;
}

static bool inline_values(json_t *arr, analysis *a, response *res)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > MAX_ANALYZE_VALUES) {
        nops__api_error(res, 400, "values must be an array of 1 to %d numbers", MAX_ANALYZE_VALUES);
        return false;
    }
    a->n = json_array_size(arr);
    if (!(a->values = nops_malloc(a->n * sizeof *a->values))) {
        nops__api_error(res, 500, "out of memory");
        return false;
    }
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        double d = json_number_value(x);
        if (!json_is_number(x) || !isfinite((float)d)) {
            nops__api_error(res, 400, "values[%zu] is not a finite number (single precision)", i);
            return false;
        }
        a->values[i] = (float)d;
    }
    return true;
}

static bool series_values(nops_api *api, json_t *o, analysis *a, response *res)
{
    const char *key = json_string_value(json_object_get(o, "series"));
    json_t *lb = json_object_get(o, "lookback");
    int64_t want = NOPS_DETECT_MAX_WINDOW;
    if (!key || !*key || strlen(key) >= NOPS_KEY_MAX) {
        nops__api_error(res, 400, "series must be a series key such as "
                                  "cpu_usage_user{host=\"web-1\"}");
        return false;
    }
    if (lb && (!json_is_integer(lb) || json_integer_value(lb) < 1)) {
        nops__api_error(res, 400, "lookback must be a positive integer (points) for series");
        return false;
    }
    if (lb)
        want = json_integer_value(lb) < want ? json_integer_value(lb) : want;
    if (!api->d.pipeline) {
        nops__api_error(res, 503, "no pipeline runs in this process: no series history");
        return false;
    }
    float win[NOPS_DETECT_MAX_WINDOW];
    uint32_t n = 0;
    double mean, sd;
    nops_err e = nops_pipeline_series_window(api->d.pipeline, key, win, NOPS_DETECT_MAX_WINDOW,
                                             &n, &mean, &sd, 2000);
    if (e == NOPS_NOTFOUND || (e == NOPS_OK && n == 0)) {
        nops__api_error(res, 404, "series %.300s is not tracked (canonical keys are listed in "
                                  "the signals' \"series\" field)", key);
        return false;
    }
    if (e != NOPS_OK) {
        nops__api_error(res, 503, "the detectors did not answer in time");
        return false;
    }
    uint32_t from = n > (uint32_t)want ? n - (uint32_t)want : 0;
    a->n = n - from;
    if (!(a->values = nops_malloc(a->n * sizeof *a->values))) {
        nops__api_error(res, 500, "out of memory");
        return false;
    }
    memcpy(a->values, win + from, a->n * sizeof *a->values);
    return true;
}

/* "90", 90, "15m", "2h", "30s", "1d" → seconds; -1 when malformed. */
static int64_t duration_s(json_t *v, int64_t def)
{
    if (!v)
        return def;
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? json_integer_value(v) : -1;
    const char *s = json_string_value(v);
    char *end;
    long long n = s ? strtoll(s, &end, 10) : -1;
    if (!s || end == s || n <= 0)
        return -1;
    int64_t mul = *end == '\0' || strcmp(end, "s") == 0 ? 1
                  : strcmp(end, "m") == 0              ? 60
                  : strcmp(end, "h") == 0              ? 3600
                  : strcmp(end, "d") == 0              ? 86400
                                                       : -1;
    return mul < 0 || n > 366ll * 86400 ? -1 : n * mul;
}

static bool prom_values(nops_api *api, json_t *o, analysis *a, response *res)
{
    const char *q = json_string_value(json_object_get(o, "prom_query"));
    int64_t lookback = duration_s(json_object_get(o, "lookback"), 3600);
    if (!q || !*q) {
        nops__api_error(res, 400, "prom_query must be a PromQL expression");
        return false;
    }
    if (lookback < 0 || lookback > 366ll * 86400) {
        nops__api_error(res, 400, "lookback must be a duration such as \"15m\" or seconds");
        return false;
    }
    int64_t step = duration_s(json_object_get(o, "step"), lookback / 240 ? lookback / 240 : 1);
    if (step < 0 || lookback / step > 11000) {
        nops__api_error(res, 400, "step must be a duration with at most 11000 points in "
                                  "the lookback");
        return false;
    }
    if (!api->p.prometheus_url[0]) {
        nops__api_error(res, 501, "prom_query needs a Prometheus server: set "
                                  "api.prometheus_url");
        return false;
    }
    double *vals = NULL;
    size_t n = 0;
    char err[300];
    if (nops__prom_query(api->p.prometheus_url, q, lookback, step, &vals, &n, err, sizeof err) !=
        NOPS_OK) {
        nops__api_error(res, 502, "Prometheus: %s", err);
        return false;
    }
    if (n == 0) {
        free(vals);
        nops__api_error(res, 404, "the query returned no samples in the last %lld s",
                        (long long)lookback);
        return false;
    }
    if (!(a->values = nops_malloc(n * sizeof *a->values))) {
        free(vals);
        nops__api_error(res, 500, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        a->values[i] = (float)vals[i];
    a->n = n;
    free(vals);
    return true;
}

/* Run the detectors over the values, on the thread's reusable detector (analyze.c); the
 * verdict is about the last point. */
static void run_analysis(analyze_ctx *cx, const analysis *a, response *res)
{
    char err[256] = "out of memory";
    if (!cx || nops__analyze_prepare(cx, &a->dp, a->n, err, sizeof err) != NOPS_OK) {
        nops__api_error(res, 500, "cannot run the detectors: %s", err);
        return;
    }
    nops_detect_out out;
    uint32_t slot;
    nops_detector *det = nops__analyze_run(cx, a->values, a->n, &out, &slot);
    const float *z = out.z, *ze = out.ze, *ratio = out.ratio;
    const uint8_t *flags = out.flags;
    size_t last = a->n - 1, anomalies = 0;
    for (size_t i = 0; i < a->n; i++)
        anomalies += (flags[i] & NOPS_DETECT_ANOM) != 0;
    /* the kernel's combined ratio and the detector that gave it */
    const nops_detector_kind which = (nops_detector_kind)NOPS_DETECT_WHICH(flags[last]);
    const bool use_z = which == NOPS_DETECTOR_ZSCORE;
    const double zz = use_z ? z[last] : ze[last];
    double mean = 0, sd = 0;
    uint32_t cnt = 0;
    nops_detect_slot_stats(det, slot, &mean, &sd, &cnt);
    const bool anomalous = (flags[last] & NOPS_DETECT_ANOM) != 0;
    char hint[400];
    if (!(flags[last] & NOPS_DETECT_VALID))
        snprintf(hint, sizeof hint, "the last value is not finite: no verdict");
    else if (!(flags[last] & NOPS_DETECT_WARM))
        snprintf(hint, sizeof hint, "%zu points are too few for a verdict (the detectors need "
                 "%u)", a->n, nops_detect_warmup(det) + 1);
    else if (which == NOPS_DETECTOR_CUSUM)
        snprintf(hint, sizeof hint, "the last value (%.6g) is part of a sustained move %s the "
                 "long-run baseline%s", a->values[last],
                 (flags[last] & NOPS_DETECT_CUSUM_DOWN) ? "below" : "above",
                 anomalous ? ": anomalous" : ": within the normal range");
    else
        snprintf(hint, sizeof hint, "the last value (%.6g) is %.1fσ %s its %s%s", a->values[last],
                 fabs(zz), zz >= 0 ? "above" : "below",
                 use_z ? "rolling mean" : "moving average",
                 anomalous ? ": anomalous" : ": within the normal range");
    const analyze_answer ans = {nops_detect_score(ratio[last]), z[last], ze[last],
                                nops_detector_name(which), hint, a->n, anomalous, anomalies,
                                a->source, a->dp.window};
    if (!nops__analyze_answer(res, &ans))
        nops__api_error(res, 500, "out of memory");
}

void nops__api_analyze(nops_api *api, struct MHD_Connection *c, request *rq, response *res)
{
    if (!nops__api_content_type_is(c, "application/json")) {
        nops__api_error(res, 415, "send the body as application/json");
        return;
    }
    analyze_ctx *cx = nops__analyze_ctx(api);
    analysis a = {.dp = *api->d.detect};
    /* the common shape, valid: no jansson tree (anything else is judged below, as before) */
    if (cx && nops__analyze_fast_body(rq->body.b, rq->body.len, cx, &a.dp, &a.n)) {
        a.source = "values";
        a.values = (float *)nops__analyze_values(cx);
        run_analysis(cx, &a, res);
        return;
    }
    json_t *o = nops__api_body_object(rq, res);
    if (!o)
        return;
    static const char *const known[] = {"values", "series", "prom_query", "lookback", "step",
                                        "window", "alpha", "z_threshold", "ewma_threshold",
                                        "method", "labels"};
    if (!nops__api_known_fields(o, known, sizeof known / sizeof known[0], res)) {
        json_decref(o);
        return;
    }
    int forms = !!json_object_get(o, "values") + !!json_object_get(o, "series") +
                !!json_object_get(o, "prom_query");
    if (forms != 1) {
        nops__api_error(res, 400, "give exactly one of values, series, prom_query");
    } else if (overrides(o, &a.dp, res)) {
        bool ok;
        if (json_object_get(o, "values")) {
            a.source = "values";
            ok = inline_values(json_object_get(o, "values"), &a, res);
        } else if (json_object_get(o, "series")) {
            a.source = "series";
            ok = series_values(api, o, &a, res);
        } else {
            a.source = "prom_query";
            ok = prom_values(api, o, &a, res);
        }
        if (ok)
            run_analysis(cx, &a, res);
    }
    nops_free(a.values);
    json_decref(o);
}

/* ---- GET /signals, /incidents, /incidents/{id} ------------------------------------------- */

typedef struct list_args {
    nops_store_query q;
    int kind;
    response *res;
    bool bad;
} list_args;

bool nops__api_count_arg(const char *key, const char *v, unsigned long long lo,
                         unsigned long long hi, unsigned long long *out, response *res)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = v && *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
    if (!end || *end || errno == ERANGE || n < lo || n > hi) {
        nops__api_error(res, 400, "%s must be an integer in [%llu, %llu]", key, lo, hi);
        return false;
    }
    *out = n;
    return true;
}

static enum MHD_Result list_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    list_args *la = cls;
    const char *v = value ? value : "";
    char *end = NULL;
    if (strcmp(key, "since") == 0 || strcmp(key, "until") == 0) {
        int64_t ns;
        if (nops_ingest_parse_timestamp(v, strlen(v), &ns, NULL) != NOPS_OK) {
            nops__api_error(la->res, 400, "%s: \"%.60s\" is not a timestamp (RFC 3339 or "
                                          "epoch seconds/ms/ns)", key, v);
            la->bad = true;
            return MHD_NO;
        }
        *(key[0] == 's' ? &la->q.since_ns : &la->q.until_ns) = ns;
    } else if (strcmp(key, "limit") == 0) {
        unsigned long long n;
        if (!nops__api_count_arg(key, v, 1, 1000, &n, la->res)) {
            la->bad = true;
            return MHD_NO;
        }
        la->q.limit = (size_t)n;
    } else if (strcmp(key, "cursor") == 0) {
        unsigned long long n = strtoull(v, &end, 10);
        if (end == v || *end || n == 0 || v[0] == '-') {
            nops__api_error(la->res, 400, "cursor must be the next_cursor of a previous page");
            la->bad = true;
            return MHD_NO;
        }
        la->q.cursor = n;
    } else if (strcmp(key, "labels") == 0) {
        la->q.labels = v;
    } else if (strcmp(key, "status") == 0 && la->kind == NOPS_SINK_INCIDENT &&
               (strcmp(v, "open") == 0 || strcmp(v, "resolved") == 0)) {
        la->q.status = v;
    } else {
        nops__api_error(la->res, 400, strcmp(key, "status") == 0
                                          ? "status must be \"open\" or \"resolved\""
                                          : "unknown query parameter \"%.60s\"", key);
        la->bad = true;
        return MHD_NO;
    }
    return MHD_YES;
}

void nops__api_list(nops_api *api, struct MHD_Connection *c, int kind, response *res)
{
    list_args la = {.q = {.limit = 100}, .kind = kind, .res = res};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, list_arg, &la);
    if (la.bad)
        return;
    char err[256];
    nops_err e = nops_store_page(api->d.store, kind, &la.q, &res->body, err, sizeof err);
    if (e == NOPS_INVAL)
        nops__api_error(res, 400, "%s", err);
    else if (e != NOPS_OK)
        nops__api_error(res, 500, "out of memory");
    else
        res->status = 200;
}

void nops__api_incident(nops_api *api, const char *id, response *res)
{
    nops_err e = nops_store_incident(api->d.store, id, &res->body);
    if (e == NOPS_NOTFOUND)
        nops__api_error(res, 404, "no incident %.40s (or it is older than the API keeps)", id);
    else if (e != NOPS_OK)
        nops__api_error(res, 500, "out of memory");
    else
        res->status = 200;
}

/* ---- health ---------------------------------------------------------------------------- */

void nops__api_healthz(nops_api *api, response *res)
{
    json_t *o = json_pack("{s:s, s:s, s:f}", "status", "ok", "version", NOPS_VERSION,
                          "uptime_s", (double)(nops_now_ns() - api->started_ns) / 1e9);
    if (o)
        nops__api_json(res, 200, o);
    else
        nops__api_error(res, 500, "out of memory");
}

void nops__api_readyz(nops_api *api, response *res)
{
    if (!api->d.pipeline) {
        nops__api_error(res, 503, "not ready: no pipeline runs in this process");
        return;
    }
    nops_pipeline_stats st;
    nops_pipeline_get_stats(api->d.pipeline, &st);
    if (st.partitions == 0) {
        nops__api_error(res, 503, "not ready: no partitions assigned to this instance yet");
        return;
    }
    if (st.paused) {
        nops__api_error(res, 503, "not ready: a sink is down, consumption is paused");
        return;
    }
    json_t *o = json_pack("{s:b, s:i, s:I}", "ready", 1, "partitions", (int)st.partitions, "lag",
                          (json_int_t)st.lag);
    if (o)
        nops__api_json(res, 200, o);
    else
        nops__api_error(res, 500, "out of memory");
}

void nops__api_dashboard(response *res)
{
    if (nops__api_put(res, nops__dashboard_html, strlen(nops__dashboard_html))) {
        res->content_type = "text/html; charset=utf-8";
        res->status = 200;
    } else
        nops__api_error(res, 500, "out of memory");
}

void nops__api_openapi(response *res)
{
    if (nops__api_put(res, nops__openapi_json, strlen(nops__openapi_json)))
        res->status = 200;
    else
        nops__api_error(res, 500, "out of memory");
}
