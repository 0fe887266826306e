/*
 * test_api_series.c — GET /series over real loopback HTTP in front of a real pipeline
 * consuming the librdkafka mock cluster (api_fixture.c): points posted through POST /ingest
 * come back with their own times, the spike marked, the signal's window served after the live
 * window moved past it, from/to/limit cutting the points, an irregular series' times marked
 * estimated, and every error (400s named, 404, 401, 503 without a pipeline).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/api/api_fixture.h"

#include <math.h>
#include <time.h>

#define T0_S 1796101200ll /* 2026-12-01T05:00:00Z */
#define STEP_S 10         /* series a1's step */
#define KEY_A "sv_v{host=\"a1\"}"
#define KEY_B "sv_v{host=\"b1\"}"

/* RFC 3339 with milliseconds, written here independently of the engine's formatter. */
static void rfc3339(int64_t ns, char *out, size_t cap)
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char b[32];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03dZ", b, (int)(ns % 1000000000 / 1000000));
}

/* Point i of series a1: calm 100..102, a spike of 500 at i = 40. */
static int64_t ts_a(int i)
{
    return (T0_S + (int64_t)i * STEP_S) * 1000000000ll;
}

static double value_a(int i)
{
    return i == 40 ? 500.0 : 100.0 + (i % 3);
}

static void post_lines(const char *body, int lines)
{
    http_res r = http_do(g_port, "POST", "/ingest", H_OP_TEXT, body, (size_t)-1);
    if (r.status != 202)
        fail_msg("ingest: %ld %s", r.status, r.body);
    json_t *o = json_of(&r);
    assert_int_equal(json_integer_value(json_object_get(o, "accepted")), lines);
    json_decref(o);
    http_free(&r);
}

/* Post a1's points [from, to]. */
static void post_a(int from, int to)
{
    static char body[65536];
    size_t at = 0;
    for (int i = from; i <= to; i++)
        at += (size_t)snprintf(body + at, sizeof body - at, "sv,host=a1 v=%.1f %lld\n",
                               value_a(i), (long long)ts_a(i));
    post_lines(body, to - from + 1);
}

/* The key URL-encoded into out. */
static void urlenc(const char *s, char *out, size_t cap)
{
    size_t at = 0;
    for (; *s && at + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-' || c == '.')
            out[at++] = (char)c;
        else
            at += (size_t)snprintf(out + at, cap - at, "%%%02X", c);
    }
    out[at] = '\0';
}

/* GET /series?key=<key>&<extra> as `hdrs`; the answer (caller frees). */
static http_res get_series(const char *key, const char *extra, const char **hdrs)
{
    char enc[512], path[1024];
    urlenc(key, enc, sizeof enc);
    snprintf(path, sizeof path, "/series?key=%s%s%s", enc, extra && *extra ? "&" : "",
             extra ? extra : "");
    return http_do(g_port, "GET", path, hdrs, NULL, 0);
}

/* The 200 answer as JSON (fails the test otherwise). */
static json_t *series_ok(const char *key, const char *extra)
{
    http_res r = get_series(key, extra, H_VIEWER);
    if (r.status != 200)
        fail_msg("GET /series %s %s: %ld %s", key, extra ? extra : "", r.status, r.body);
    json_t *o = json_of(&r);
    http_free(&r);
    return o;
}

/* Poll until the newest point of `key` is at `ts` (and `signals` signals are held). */
static json_t *await_newest(const char *key, int64_t ts, size_t signals)
{
    char want[40];
    rfc3339(ts, want, sizeof want);
    for (int i = 0; i < 1200; i++) { /* 120 s: a loaded machine */
        http_res r = get_series(key, NULL, H_VIEWER);
        if (r.status == 200) {
            json_t *o = json_of(&r);
            json_t *pts = json_object_get(o, "points");
            json_t *last = json_array_get(pts, json_array_size(pts) - 1);
            const char *t = json_string_value(json_object_get(last, "ts"));
            if (t && strcmp(t, want) == 0 &&
                json_array_size(json_object_get(o, "signals")) == signals) {
                http_free(&r);
                return o;
            }
            json_decref(o);
        }
        http_free(&r);
        sleep_ms(100);
    }
    fail_msg("series %s never reached %s with %zu signal(s)", key, want, signals);
    return NULL;
}

/* Points of a1 in an answer are exactly those of `idx` (n of them), times and values. */
static void expect_points_a(json_t *o, const int *idx, size_t n)
{
    json_t *pts = json_object_get(o, "points");
    if (json_array_size(pts) != n)
        fail_msg("%zu points, want %zu", json_array_size(pts), n);
    for (size_t k = 0; k < n; k++) {
        json_t *p = json_array_get(pts, k);
        char want[40];
        rfc3339(ts_a(idx[k]), want, sizeof want);
        const char *got = json_string_value(json_object_get(p, "ts"));
        if (!got || strcmp(got, want) != 0)
            fail_msg("point %zu: ts %s, want %s (point %d)", k, got ? got : "(none)", want,
                     idx[k]);
        assert_true(fabs(json_real_value(json_object_get(p, "value")) - value_a(idx[k])) < 1e-9);
        assert_true(json_is_boolean(json_object_get(p, "anomalous")));
        assert_int_equal(json_is_true(json_object_get(p, "anomalous")), idx[k] == 40);
    }
}

static size_t range_idx(int *idx, int from, int to)
{
    size_t n = 0;
    for (int i = from; i <= to; i++)
        idx[n++] = i;
    return n;
}

/* The spike's signal: its id, time, value, method and the band before it. */
static void expect_signal(json_t *o)
{
    json_t *sigs = json_object_get(o, "signals");
    assert_int_equal(json_array_size(sigs), 1);
    json_t *s = json_array_get(sigs, 0);
    char want[40];
    rfc3339(ts_a(40), want, sizeof want);
    assert_string_equal(json_string_value(json_object_get(s, "ts")), want);
    assert_true(json_real_value(json_object_get(s, "value")) == 500.0);
    assert_non_null(json_string_value(json_object_get(s, "method")));
    assert_int_equal(strlen(json_string_value(json_object_get(s, "id"))), 16);
    json_t *b = json_object_get(s, "baseline");
    /* the window before the spike: 100 + (i % 3) for i = 0..39, mean 4039 / 40 */
    assert_true(fabs(json_real_value(json_object_get(b, "mean")) - 4039.0 / 40) < 1e-4);
    assert_true(json_real_value(json_object_get(b, "upper")) < 500.0);
    assert_true(json_real_value(json_object_get(b, "lower")) <
                json_real_value(json_object_get(b, "mean")));
    /* the same signal is in GET /signals */
    char path[128];
    snprintf(path, sizeof path, "/signals?labels=host=a1");
    http_res r = http_do(g_port, "GET", path, H_VIEWER, NULL, 0);
    json_t *page = json_of(&r);
    http_free(&r);
    json_t *first = json_array_get(json_object_get(page, "signals"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "id")),
                        json_string_value(json_object_get(s, "id")));
    json_decref(page);
}

/* a1's points posted so far: none, 0..40 (phase 1) or 0..120 (phase 2); posted once each, so
 * each test runs alone too (a point posted twice would be a second point to the detectors) */
static int g_phase;

/* a1 posted and consumed up to `phase`. */
static void ensure_a(int phase)
{
    if (g_phase < 1 && phase >= 1) {
        post_a(0, 40);
        json_decref(await_newest(KEY_A, ts_a(40), 1));
        g_phase = 1;
    }
    if (g_phase < 2 && phase >= 2) {
        post_a(41, 120);
        json_decref(await_newest(KEY_A, ts_a(120), 1));
        g_phase = 2;
    }
}

/* Before and after the live window moved past the spike: the spike and the points of its
 * window stay, with their own times; the live points join them without duplicates. */
static void test_series_points_and_context(void **state)
{
    (void)state;
    int idx[200];
    assert_int_equal(g_phase, 0);
    post_a(0, 40);
    g_phase = 1;
    json_t *o = await_newest(KEY_A, ts_a(40), 1);
    assert_string_equal(json_string_value(json_object_get(o, "series")), KEY_A);
    expect_points_a(o, idx, range_idx(idx, 0, 40));
    assert_true(json_is_false(json_object_get(o, "ts_estimated")));
    assert_true(json_is_false(json_object_get(o, "truncated")));
    json_t *b = json_object_get(o, "baseline");
    assert_true(json_is_object(b));
    assert_true(fabs(json_real_value(json_object_get(b, "z_threshold")) - g_dp.z_threshold) <
                1e-9);
    const double mean = json_real_value(json_object_get(b, "mean"));
    const double sd = json_real_value(json_object_get(b, "std"));
    assert_true(fabs(json_real_value(json_object_get(b, "upper")) -
                     (mean + g_dp.z_threshold * sd)) < 1e-6);
    expect_signal(o);
    json_decref(o);

    /* 80 calm points more: the live window (60) no longer holds the spike */
    post_a(41, 120);
    g_phase = 2;
    o = await_newest(KEY_A, ts_a(120), 1);
    size_t n = range_idx(idx, 0, 40);
    n += range_idx(idx + n, 61, 120);
    expect_points_a(o, idx, n);
    expect_signal(o);
    assert_true(json_is_object(json_object_get(o, "baseline")));
    json_decref(o);
}

/* from/to (RFC 3339 and unix ms) cut the points and the signals; limit keeps the newest. */
static void test_series_ranges(void **state)
{
    (void)state;
    int idx[200];
    char q[256], f[40], t[40];
    ensure_a(2);

    rfc3339(ts_a(30), f, sizeof f);
    snprintf(q, sizeof q, "from=%s&to=%lld", f, (long long)(ts_a(70) / 1000000));
    json_t *o = series_ok(KEY_A, q);
    size_t n = range_idx(idx, 30, 40);
    n += range_idx(idx + n, 61, 70);
    expect_points_a(o, idx, n);
    expect_signal(o);
    json_decref(o);

    rfc3339(ts_a(45), f, sizeof f);
    rfc3339(ts_a(60), t, sizeof t);
    snprintf(q, sizeof q, "from=%s&to=%s", f, t);
    o = series_ok(KEY_A, q); /* between the signal's window and the live one: nothing */
    expect_points_a(o, idx, 0);
    assert_int_equal(json_array_size(json_object_get(o, "signals")), 0);
    json_decref(o);

    snprintf(q, sizeof q, "from=%lld", (long long)(ts_a(100) / 1000000));
    o = series_ok(KEY_A, q);
    expect_points_a(o, idx, range_idx(idx, 100, 120));
    assert_int_equal(json_array_size(json_object_get(o, "signals")), 0);
    json_decref(o);

    o = series_ok(KEY_A, "limit=5");
    expect_points_a(o, idx, range_idx(idx, 116, 120));
    assert_true(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);

    snprintf(q, sizeof q, "limit=5&to=%lld", (long long)(ts_a(40) / 1000000));
    o = series_ok(KEY_A, q);
    expect_points_a(o, idx, range_idx(idx, 36, 40));
    assert_true(json_is_true(json_object_get(o, "truncated")));
    expect_signal(o);
    json_decref(o);
}

/* A series whose steps were not regular: the newest points since the odd step keep their own
 * times, the older ones are estimated and the answer says so. */
static void test_series_estimated_times(void **state)
{
    (void)state;
    static char body[8192];
    size_t at = 0;
    int64_t ts[45];
    for (int i = 0; i < 45; i++) { /* steps of 10 s, one of 7 s before the last 6 points */
        ts[i] = (T0_S + (int64_t)i * 10 - (i >= 39 ? 3 : 0)) * 1000000000ll;
        at += (size_t)snprintf(body + at, sizeof body - at, "sv,host=b1 v=%d %lld\n",
                               100 + (i % 2), (long long)ts[i]);
    }
    post_lines(body, 45);
    json_t *o = await_newest(KEY_B, ts[44], 0);
    json_t *pts = json_object_get(o, "points");
    assert_int_equal(json_array_size(pts), 45);
    assert_true(json_is_true(json_object_get(o, "ts_estimated")));
    for (int i = 39; i < 45; i++) { /* the newest 6: exact */
        char want[40];
        rfc3339(ts[i], want, sizeof want);
        assert_string_equal(json_string_value(json_object_get(json_array_get(pts, (size_t)i),
                                                              "ts")), want);
    }
    char own[40];
    rfc3339(ts[0], own, sizeof own); /* the oldest: estimated at 10 s steps, 3 s off */
    assert_string_not_equal(json_string_value(json_object_get(json_array_get(pts, 0), "ts")),
                            own);
    json_decref(o);
}

/* Every refusal: named 400s, 404, 401 without credentials, 503 without a pipeline. */
static void test_series_errors(void **state)
{
    (void)state;
    expect_error(http_do(g_port, "GET", "/series", H_VIEWER, NULL, 0), 400, "key is required");
    expect_error(http_do(g_port, "GET", "/series?key=", H_VIEWER, NULL, 0), 400,
                 "key is required");
    char longkey[3000] = "/series?key=";
    memset(longkey + 12, 'a', 2000);
    longkey[2012] = '\0';
    expect_error(http_do(g_port, "GET", longkey, H_VIEWER, NULL, 0), 400, "longer");
    const char *bad[][2] = {
        {"from=yesterday", "from"},         {"to=2026-13-45T00:00:00Z", "to"},
        {"from=1.5", "from"},               {"from=99999999999999999999", "from"},
        {"to=9300000000000", "to"},         {"from=-9300000000000", "from"},
        {"limit=0", "limit"},               {"limit=10001", "limit"},
        {"limit=ten", "limit"},             {"limit=-1", "limit"},
        {"from=2000&to=1000", "after"},     {"colour=red", "unknown query parameter"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(get_series(KEY_A, bad[i][0], H_VIEWER), 400, bad[i][1]);
    /* a parameter's name or value that is not UTF-8 is named in the message all the same
     * (it was a 500: the error's JSON could not hold the bytes) */
    expect_error(get_series(KEY_A, "%FF%FEx=1", H_VIEWER), 400, "unknown query parameter");
    expect_error(get_series(KEY_A, "from=%C3%28", H_VIEWER), 400, "from");
    expect_error(http_do(g_port, "GET", "/signals?since=%FF", H_VIEWER, NULL, 0), 400, "since");
    expect_error(get_series("nothing{host=\"x\"}", NULL, H_VIEWER), 404, "neither tracked");
    expect_error(get_series(KEY_A, NULL, NULL), 401, NULL);
    const char *wrong[] = {"X-API-Key: not-a-key", NULL};
    expect_error(get_series(KEY_A, NULL, wrong), 401, NULL);

    nops_api_params ap;
    api_params(&ap);
    nops_api_deps deps = {.store = g_store, .detect = &g_dp};
    char err[256];
    nops_api *api = nops_api_new(&ap, &deps, err, sizeof err);
    assert_non_null(api);
    assert_int_equal(nops_api_start(api, err, sizeof err), NOPS_OK);
    expect_error(http_do(nops_api_port(api), "GET", "/series?key=a", H_VIEWER, NULL, 0), 503,
                 "no pipeline");
    expect_error(http_do(nops_api_port(api), "GET", "/series?key=a&limit=0", H_VIEWER, NULL, 0),
                 400, "limit");
    nops_api_destroy(api);
}

/* Roles: a viewer, an operator, an org-admin and a viewer's bearer token may read it. */
static void test_series_roles(void **state)
{
    (void)state;
    ensure_a(1);
    const char **who[] = {H_VIEWER, H_OPERATOR, H_ADMIN};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(status_of(get_series(KEY_A, NULL, who[i])), 200);
    char tok[1024];
    char payload[256];
    snprintf(payload, sizeof payload, "{\"sub\":\"v\",\"role\":\"viewer\",\"iss\":\"%s\","
             "\"exp\":%lld}", ISSUER, (long long)time(NULL) + 600);
    bearer(payload, SECRET, tok, sizeof tok);
    const char *h[] = {tok, NULL};
    assert_int_equal(status_of(get_series(KEY_A, NULL, h)), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_points_and_context),
        cmocka_unit_test(test_series_ranges),
        cmocka_unit_test(test_series_estimated_times),
        cmocka_unit_test(test_series_errors),
        cmocka_unit_test(test_series_roles),
    };
    return cmocka_run_group_tests(tests, tapi_setup, tapi_teardown);
}
