/*
 * test_api_analyze.c — POST /analyze on its reusable per-thread detector and its body
 * tokenizer (api/analyze.c), over real loopback HTTP against a server of three threads:
 *   - the first answer to each of a set of bodies (the tokenizer's shape with and without
 *     overrides, other windows and methods that remake the detector, long and short series,
 *     bodies the tokenizer leaves to jansson) equals what a fresh detector of the same params
 *     says, computed here; then four client threads send them again and again in different
 *     orders, and every answer is byte-identical to the first (no state leaks between requests
 *     served by the same thread); each answer is what jansson's compact dump of it gives;
 *   - near-miss bodies the tokenizer must not take get the jansson path's exact 400 messages;
 *   - the tokenizer itself (api_int.h): 200,000 random JSON numbers (integers up to 20 digits,
 *     decimals with exponents, signs, zeros) convert to the float jansson's path gives, and
 *     whatever it takes jansson takes too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "api/api_int.h"
#include "tests/api/http.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

static nops_store *g_store;
static nops_detect_params g_dp;
static nops_api *g_api;
static int g_port;

static const char *H_JSON[] = {"X-API-Key: viewer-key-1", "Content-Type: application/json",
                               NULL};

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_store = nops_store_new(100, 10);
    nops_detect_params_default(&g_dp);
    nops_api_params p;
    nops_api_params_default(&p);
    snprintf(p.listen, sizeof p.listen, "127.0.0.1:0");
    char hex[65], err[512];
    if (nops_api_hash_key("viewer-key-1", hex) != NOPS_OK)
        return -1;
    snprintf(p.keys, sizeof p.keys, "v1:viewer:%s", hex);
    p.rate = 1e6;
    p.burst = 1e6;
    p.body_limit = 1 << 20;
    p.timeout_s = 60;
    p.threads = 3;
    p.access_log = false;
    nops_api_deps d = {.store = g_store, .detect = &g_dp};
    if (!(g_api = nops_api_new(&p, &d, err, sizeof err)) ||
        nops_api_start(g_api, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "cannot start the API: %s\n", err);
        return -1;
    }
    g_port = nops_api_port(g_api);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nops_api_destroy(g_api);
    nops_store_destroy(g_store);
    curl_global_cleanup();
    return 0;
}

/* ---- the bodies ---------------------------------------------------------------------------- */

#define N_BODIES 8
static char *g_body[N_BODIES];   /* malloc'd */
static char *g_first[N_BODIES];  /* the first answer to each, malloc'd */

/* n values of a wave with a spike at `spike` (or none when spike >= n), as a JSON array. */
static char *values_json(size_t n, size_t spike, const char *before, const char *after)
{
    size_t cap = n * 24 + strlen(before) + strlen(after) + 16;
    char *b = malloc(cap);
    size_t at = (size_t)snprintf(b, cap, "%s[", before);
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(b + at, cap - at, "%s%.3f", i ? "," : "",
                               i == spike ? 400.0 : 100.0 + 5 * sin((double)i / 7) + (i % 3));
    snprintf(b + at, cap - at, "]%s", after);
    return b;
}

static void make_bodies(void)
{
    g_body[0] = values_json(200, 199, "{\"values\":", "}");
    g_body[1] = values_json(200, 1000, "{\"values\":", "}");
    g_body[2] = values_json(150, 149, "{\"window\":8,\"method\":\"zscore\",\"values\":", "}");
    g_body[3] = values_json(3000, 2500, " {\n \"values\" : ", " , \"alpha\":0.2 } ");
    g_body[4] = values_json(10, 100, "{\"values\":", "}"); /* too few for a verdict */
    g_body[5] = values_json(200, 150, "{\"values\":",
                            ",\"method\":\"ewma\",\"z_threshold\":2.5,\"ewma_threshold\":3}");
    /* left to jansson: a field the tokenizer does not take, an escaped method name */
    g_body[6] = values_json(200, 199, "{\"labels\":{\"a\":\"b\"},\"values\":", "}");
    g_body[7] = values_json(200, 180, "{\"method\":\"e\\u0077ma\",\"values\":", "}");
}

static char *post(const char *body, long *status)
{
    http_res r = http_do(g_port, "POST", "/analyze", H_JSON, body, (size_t)-1);
    *status = r.status;
    return r.body;
}

/* What a fresh detector of these params says about the body's values: z and EWMA z of the last
 * point and the anomalous points, the answer's fields to compare. */
static void fresh(const char *body, double *z, double *ze, long long *anomalies)
{
    json_t *o = json_loads(body, 0, NULL);
    assert_non_null(o);
    nops_detect_params dp = g_dp;
    json_t *v;
    if ((v = json_object_get(o, "window")))
        dp.window = json_integer_value(v);
    if ((v = json_object_get(o, "alpha")))
        dp.alpha = json_number_value(v);
    if ((v = json_object_get(o, "z_threshold")))
        dp.z_threshold = json_number_value(v);
    if ((v = json_object_get(o, "ewma_threshold")))
        dp.ewma_threshold = json_number_value(v);
    if ((v = json_object_get(o, "method"))) {
        const char *m = json_string_value(v);
        dp.method = strcmp(m, "zscore") == 0 ? 0 : strcmp(m, "ewma") == 0 ? 1
                    : strcmp(m, "both") == 0 ? 2 : 3;
    }
    json_t *arr = json_object_get(o, "values");
    size_t n = json_array_size(arr);
    float *x = malloc(n * sizeof *x), *zz = malloc(n * sizeof *zz), *zze = malloc(n * 4);
    uint8_t *fl = malloc(n);
    uint32_t *slots = calloc(n, sizeof *slots), slot;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)json_number_value(json_array_get(arr, i));
    char err[256];
    nops_detector *det = nops_detect_new(&dp, 1, err, sizeof err);
    assert_non_null(det);
    assert_int_equal(nops_detect_slot(det, 1, NULL, 0, 0, &slot), NOPS_OK);
    for (size_t i = 0; i < n; i++)
        slots[i] = slot;
    nops_detect_update_pairs(det, slots, x, n, &(nops_detect_out){zz, zze, fl, NULL});
    *z = zz[n - 1];
    *ze = zze[n - 1];
    *anomalies = 0;
    for (size_t i = 0; i < n; i++)
        *anomalies += (fl[i] & NOPS_DETECT_ANOM) != 0;
    nops_detect_destroy(det);
    json_decref(o);
    free(x), free(zz), free(zze), free(fl), free(slots);
}

typedef struct client {
    int id;
    int rounds;
    int mismatches;
    char what[256];
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    for (int r = 0; r < c->rounds; r++)
        for (int k = 0; k < N_BODIES; k++) {
            int i = (k * (c->id + 1) + r + c->id) % N_BODIES; /* each client its own order */
            long status;
            char *a = post(g_body[i], &status);
            if (status != 200 || strcmp(a, g_first[i]) != 0) {
                if (!c->mismatches++)
                    snprintf(c->what, sizeof c->what, "body %d, round %d: %ld %.150s", i, r,
                             status, a);
            }
            free(a);
        }
    return NULL;
}

static void test_reuse_gives_first_answer(void **state)
{
    (void)state;
    make_bodies();
    for (int i = 0; i < N_BODIES; i++) {
        long status;
        g_first[i] = post(g_body[i], &status);
        if (status != 200)
            fail_msg("body %d: %ld %s", i, status, g_first[i]);
        json_t *o = json_loads(g_first[i], 0, NULL);
        assert_non_null(o);
        double z, ze;
        long long anomalies;
        fresh(g_body[i], &z, &ze, &anomalies);
        if (fabs(json_number_value(json_object_get(o, "zscore")) - z) > 1e-6 * (1 + fabs(z)) ||
            fabs(json_number_value(json_object_get(o, "ewma")) - ze) > 1e-6 * (1 + fabs(ze)) ||
            json_integer_value(json_object_get(o, "anomalous_points")) != anomalies)
            fail_msg("body %d: answer %s, a fresh detector says z %g, ewma %g, %lld anomalous",
                     i, g_first[i], z, ze, anomalies);
        /* written as jansson's compact dump writes it (the answer used to be json_pack'd) */
        char *again = json_dumps(o, JSON_COMPACT);
        if (strcmp(again, g_first[i]) != 0)
            fail_msg("body %d: answer %s, as jansson dumps it %s", i, g_first[i], again);
        free(again);
        json_decref(o);
    }
    /* the spike is seen, the calm series is calm: the bodies test something */
    assert_non_null(strstr(g_first[0], "\"anomaly\":true"));
    assert_non_null(strstr(g_first[1], "\"anomaly\":false"));
    assert_non_null(strstr(g_first[4], "too few"));
    assert_non_null(strstr(g_first[7], "\"method\":\"ewma\"") ||
                    strstr(g_first[7], "\"method\":\"cusum\""));
    client c[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (client){.id = i, .rounds = 12};
        assert_int_equal(pthread_create(&t[i], NULL, client_main, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (c[i].mismatches)
            fail_msg("client %d: %d answers differ from the first; first: %s", i,
                     c[i].mismatches, c[i].what);
    }
    for (int i = 0; i < N_BODIES; i++) {
        free(g_body[i]);
        free(g_first[i]);
    }
}

/* Bodies near the tokenizer's shape that it must leave to jansson: the same 400 as before. */
static void test_malformed_same_messages(void **state)
{
    (void)state;
    static const struct { const char *body; const char *message; } bad[] = {
        {"{\"values\":[01]}", "malformed JSON at line 1 column 12: invalid token near '0'"},
        {"{\"values\":[1.]}", "malformed JSON at line 1 column 13: invalid token near '1.'"},
        {"{\"values\":[.5]}", "malformed JSON at line 1 column 12: invalid token near '.'"},
        {"{\"values\":[+1]}", "malformed JSON at line 1 column 12: invalid token near '+'"},
        {"{\"values\":[1e]}", "malformed JSON at line 1 column 13: invalid token near '1e'"},
        {"{\"values\":[-]}", "malformed JSON at line 1 column 12: invalid token near '-'"},
        {"{\"values\":[1,]}", "malformed JSON at line 1 column 14: unexpected token near ']'"},
        {"{\"values\":[1]}x", "malformed JSON at line 1 column 15: end of file expected near 'x'"},
        {"{\"values\":[1]", "malformed JSON at line 1 column 13: '}' expected near end of file"},
        {"{\"values\":[NaN]}", "malformed JSON at line 1 column 14: invalid token near 'NaN'"},
        {"{\"values\":[0x10]}", "malformed JSON at line 1 column 13: ']' expected near 'x'"},
        {"{\"values\":[1],\"values\":[2]}",
         "malformed JSON at line 1 column 22: duplicate object key near '\"values\"'"},
        {"{\"values\":[99999999999999999999]}",
         "malformed JSON at line 1 column 31: too big integer near '99999999999999999999'"},
        {"{\"values\":[1e39]}", "values[0] is not a finite number (single precision)"},
        {"{\"values\":[1,2,1e400]}",
         "malformed JSON at line 1 column 20: real number overflow near '1e400'"},
        {"{\"values\":[1,true]}", "values[1] is not a finite number (single precision)"},
        {"{\"values\":[[1]]}", "values[0] is not a finite number (single precision)"},
        {"{\"values\":[]}", "values must be an array of 1 to 100000 numbers"},
        {"{\"values\":5}", "values must be an array of 1 to 100000 numbers"},
        {"{\"values\":[1],\"window\":8.0}", "window must be an integer in [4, 1024]"},
        {"{\"values\":[1],\"window\":1025}", "window must be an integer in [4, 1024]"},
        {"{\"values\":[1],\"alpha\":0}", "alpha must be a number in [1e-06, 1]"},
        {"{\"values\":[1],\"alpha\":\"0.5\"}", "alpha must be a number in [1e-06, 1]"},
        {"{\"values\":[1],\"z_threshold\":1e7}", "z_threshold must be a number in [0.1, 1e+06]"},
        {"{\"values\":[1],\"method\":\"ZSCORE\"}",
         "method must be \"zscore\", \"ewma\", \"both\" or \"all\""},
        {"{\"values\":[1],\"Values\":[1]}", "unknown field \"Values\""},
        {"{\"values\":[1],\"series\":\"a\"}", "give exactly one of values, series, prom_query"},
        {"{\"window\":8}", "give exactly one of values, series, prom_query"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long status;
        char *a = post(bad[i].body, &status);
        json_t *o = json_loads(a, 0, NULL);
        const char *m = json_string_value(
            json_object_get(json_object_get(o, "error"), "message"));
        if (status != 400 || !m || strcmp(m, bad[i].message) != 0)
            fail_msg("%s: %ld %s (expected 400 \"%s\")", bad[i].body, status, a,
                     bad[i].message);
        json_decref(o);
        free(a);
    }
    /* one value past the limit */
    char *big = values_json(100001, 100001, "{\"values\":", "}");
    long status;
    char *a = post(big, &status);
    assert_int_equal(status, 400);
    assert_non_null(strstr(a, "values must be an array of 1 to 100000 numbers"));
    free(a);
    free(big);
    /* a NUL after the object */
    http_res r = http_do(g_port, "POST", "/analyze", H_JSON, "{\"values\":[1]}\0", 15);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "malformed JSON"));
    http_free(&r);
}

/* A random JSON number token; mostly valid, its digits, fraction and exponent varied. */
static void random_number(char *b, size_t cap, unsigned *seed)
{
    size_t at = 0;
    if (rand_r(seed) % 3 == 0)
        b[at++] = '-';
    int ilen = 1 + rand_r(seed) % (rand_r(seed) % 4 == 0 ? 20 : 6);
    for (int i = 0; i < ilen; i++)
        b[at++] = (char)('0' + (i == 0 && ilen > 1 ? 1 + rand_r(seed) % 9 : rand_r(seed) % 10));
    if (rand_r(seed) % 3) {
        b[at++] = '.';
        int flen = 1 + rand_r(seed) % (rand_r(seed) % 4 == 0 ? 25 : 8);
        for (int i = 0; i < flen; i++)
            b[at++] = (char)('0' + (rand_r(seed) % 4 == 0 ? 0 : rand_r(seed) % 10));
    }
    if (rand_r(seed) % 4 == 0)
        at += (size_t)snprintf(b + at, cap - at, "%c%s%d", rand_r(seed) % 2 ? 'e' : 'E',
                               rand_r(seed) % 3 == 0 ? "-" : rand_r(seed) % 2 ? "+" : "",
                               rand_r(seed) % (rand_r(seed) % 5 == 0 ? 400 : 30));
    b[at] = '\0';
}

static void test_tokenizer_numbers(void **state)
{
    (void)state;
    analyze_ctx *cx = nops__analyze_ctx(g_api); /* this thread's, freed with the server */
    assert_non_null(cx);
    unsigned seed = 14;
    size_t taken = 0, doubles = 0;
    for (int i = 0; i < 200000; i++) {
        char num[96], body[160];
        random_number(num, sizeof num, &seed);
        snprintf(body, sizeof body, "{\"values\":[%s,%s]}", num, i % 2 ? "1" : "-0.5");
        nops_detect_params dp = g_dp;
        size_t n = 0;
        bool fast = nops__analyze_fast_body(body, strlen(body), cx, &dp, &n);
        json_t *o = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
        if (!fast) {
            json_decref(o);
            continue;
        }
        taken++;
        if (!o || n != 2)
            fail_msg("%s: taken by the tokenizer (%zu values), not by jansson", body, n);
        float want = (float)json_number_value(json_array_get(json_object_get(o, "values"), 0));
        float got = nops__analyze_values(cx)[0];
        if (memcmp(&want, &got, sizeof want) != 0)
            fail_msg("%s: the tokenizer gives %.9g, jansson's path %.9g", num, (double)got,
                     (double)want);
        json_decref(o);
        /* a double kept as such: z_threshold (in [0.1, 1e6]) */
        snprintf(body, sizeof body, "{\"values\":[1],\"z_threshold\":%s}",
                 num[0] == '-' ? num + 1 : num);
        if (!nops__analyze_fast_body(body, strlen(body), cx, &dp, &n))
            continue;
        o = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(o);
        double dwant = json_number_value(json_object_get(o, "z_threshold"));
        if (memcmp(&dwant, &dp.z_threshold, sizeof dwant) != 0)
            fail_msg("%s: the tokenizer gives %.17g, jansson's path %.17g", num, dp.z_threshold,
                     dwant);
        doubles++;
        json_decref(o);
    }
    assert_true(taken > 150000); /* most are taken: the comparison is not vacuous */
    assert_true(doubles > 20000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_gives_first_answer),
        cmocka_unit_test(test_malformed_same_messages),
        cmocka_unit_test(test_tokenizer_numbers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
