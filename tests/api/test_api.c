/*
 * test_api.c — the HTTP API over real loopback HTTP (libcurl and raw sockets as clients), in
 * front of a real pipeline consuming the librdkafka mock cluster hosted by this process
 * (api_fixture.c): every endpoint's success and error statuses, the auth and role matrix (API
 * keys and HS256 tokens), pagination and filters, /ingest through Kafka to signals and
 * incidents, body and rate limits, slow and truncated clients, `promtool check metrics`, and
 * the OpenAPI document walked against the server. The orchestration routes: test_api_orch.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/api/api_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- tests ------------------------------------------------------------------------------- */

static void test_health_ready_openapi(void **state)
{
    (void)state;
    http_res r = http_do(g_port, "GET", "/healthz", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *o = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "ok");
    json_decref(o);
    http_free(&r);
    long ready = 0;
    for (int i = 0; i < 200 && ready != 200; i++) { /* until the consumer is assigned */
        ready = status_of(http_do(g_port, "GET", "/readyz", NULL, NULL, 0));
        if (ready != 200)
            sleep_ms(100);
    }
    assert_int_equal(ready, 200);
    r = http_do(g_port, "GET", "/openapi.json", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    o = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(o, "openapi")), "3.0.3");
    json_decref(o);
    http_free(&r);
    /* the dashboard: public HTML, locked down to talk to this server only; every route it
     * calls exists (the walk below checks they are documented) */
    r = http_do(g_port, "GET", "/", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "text/html"));
    assert_non_null(strstr(r.headers, "Content-Security-Policy: default-src 'none'"));
    assert_non_null(strstr(r.headers, "connect-src 'self'"));
    assert_non_null(strstr(r.body, "<title>NeuralOps</title>"));
    const char *calls[] = {"\"/healthz\"", "\"/readyz\"", "\"/incidents?status=open",
                           "\"/signals?limit=", "\"/orchestrations?state=dry_run_ok",
                           "\"/audit?limit=", "textContent"};
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        if (!strstr(r.body, calls[i]))
            fail_msg("the dashboard does not contain %s", calls[i]);
    assert_null(strstr(r.body, "innerHTML")); /* data goes in as text only */
    http_free(&r);
}

static void test_unready_without_pipeline(void **state)
{
    (void)state;
    nops_api_params ap;
    api_params(&ap);
    nops_api_deps deps = {.store = g_store, .detect = &g_dp};
    char err[256];
    nops_api *api = nops_api_new(&ap, &deps, err, sizeof err);
    assert_non_null(api);
    assert_int_equal(nops_api_start(api, err, sizeof err), NOPS_OK);
    int port = nops_api_port(api);
    expect_error(http_do(port, "GET", "/readyz", NULL, NULL, 0), 503, "not ready");
    expect_error(http_do(port, "POST", "/ingest", H_OP_TEXT, "cpu v=1", (size_t)-1), 503,
                 "producer");
    /* no orchestration: every route of it says so, and why when it is known */
    expect_error(http_do(port, "GET", "/playbooks", H_VIEWER, NULL, 0), 503, "not configured");
    nops_api_destroy(api);
    deps.orchestration_off = "audit: PostgreSQL: connection refused";
    api = nops_api_new(&ap, &deps, err, sizeof err);
    assert_non_null(api);
    assert_int_equal(nops_api_start(api, err, sizeof err), NOPS_OK);
    port = nops_api_port(api);
    const char *routes[][2] = {{"GET", "/playbooks"}, {"GET", "/audit"},
                               {"GET", "/orchestrations"}, {"GET", "/orchestrations/orch-1"},
                               {"POST", "/orchestrations/orch-1/approve"}};
    for (size_t i = 0; i < 5; i++)
        expect_error(http_do(port, routes[i][0], routes[i][1], H_ADMIN_JSON,
                             routes[i][0][0] == 'P' ? "" : NULL, 0),
                     503, "orchestration is off: audit: PostgreSQL: connection refused");
    nops_api_destroy(api);
}

static void test_auth_and_roles(void **state)
{
    (void)state;
    const char *body = "{\"values\":[1,2,3,2,1]}";
    const char *json_only[] = {"Content-Type: application/json", NULL};
    expect_error(http_do(g_port, "POST", "/analyze", json_only, body, (size_t)-1), 401,
                 "authentication required");
    const char *bad_key[] = {"X-API-Key: nope", NULL};
    expect_error(http_do(g_port, "GET", "/signals", bad_key, NULL, 0), 401, "unknown API key");
    /* the matrix: viewer reads and analyzes, operator also ingests */
    const char **who[] = {H_VIEWER, H_OPERATOR, H_ADMIN};
    const long ingest_expect[] = {403, 202, 202};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(status_of(http_do(g_port, "GET", "/signals", who[i], NULL, 0)), 200);
        assert_int_equal(status_of(http_do(g_port, "GET", "/incidents", who[i], NULL, 0)), 200);
        const char *hj[] = {who[i][0], "Content-Type: application/json", NULL};
        assert_int_equal(status_of(http_do(g_port, "POST", "/analyze", hj, body, (size_t)-1)),
                         200);
        const char *h[] = {who[i][0], "Content-Type: text/plain", NULL};
        http_res r = http_do(g_port, "POST", "/ingest", h, "authz,host=m v=1 1700000000000000000",
                             (size_t)-1);
        if (r.status != ingest_expect[i])
            fail_msg("role %d: /ingest %ld: %s", i, r.status, r.body);
        http_free(&r);
    }
    /* public endpoints need nothing */
    assert_int_equal(status_of(http_do(g_port, "GET", "/metrics", NULL, NULL, 0)), 200);
    /* bearer tokens */
    char h[1400];
    long now = (long)time(NULL);
    char p[512];
    snprintf(p, sizeof p, "{\"sub\":\"ci\",\"role\":\"viewer\",\"iss\":\"%s\",\"exp\":%ld}",
             ISSUER, now + 600);
    bearer(p, SECRET, h, sizeof h);
    const char *hv[] = {h, NULL};
    assert_int_equal(status_of(http_do(g_port, "GET", "/signals", hv, NULL, 0)), 200);
    const char *hv_text[] = {h, "Content-Type: text/plain", NULL};
    expect_error(http_do(g_port, "POST", "/ingest", hv_text, "x v=1", (size_t)-1), 403,
                 "needs operator");
    bearer(p, "another-secret", h, sizeof h);
    expect_error(http_do(g_port, "GET", "/signals", hv, NULL, 0), 401, NULL);
    snprintf(p, sizeof p, "{\"role\":\"viewer\",\"iss\":\"%s\",\"exp\":%ld}", ISSUER, now - 10);
    bearer(p, SECRET, h, sizeof h);
    expect_error(http_do(g_port, "GET", "/signals", hv, NULL, 0), 401, "expired");
    snprintf(p, sizeof p, "{\"role\":\"viewer\",\"iss\":\"other\",\"exp\":%ld}", now + 600);
    bearer(p, SECRET, h, sizeof h);
    expect_error(http_do(g_port, "GET", "/signals", hv, NULL, 0), 401, "issuer");
    snprintf(p, sizeof p, "{\"role\":\"operator\",\"iss\":\"%s\",\"exp\":%ld,\"nbf\":%ld}",
             ISSUER, now + 600, now + 300);
    bearer(p, SECRET, h, sizeof h);
    expect_error(http_do(g_port, "GET", "/signals", hv, NULL, 0), 401, "not yet valid");
}

static json_t *analyze(const char *body, long expect)
{
    http_res r = http_do(g_port, "POST", "/analyze", H_ADMIN_JSON, body, (size_t)-1);
    if (r.status != expect)
        fail_msg("analyze %.80s: %ld %s", body, r.status, r.body);
    json_t *o = json_of(&r);
    http_free(&r);
    return o;
}

static void test_analyze(void **state)
{
    (void)state;
    /* 59 calm points and a spike */
    char body[4096];
    size_t at = (size_t)snprintf(body, sizeof body, "{\"values\":[");
    for (int i = 0; i < 59; i++)
        at += (size_t)snprintf(body + at, sizeof body - at, "%.1f,", 100.0 + (i % 5) * 0.5);
    snprintf(body + at, sizeof body - at, "180]}");
    json_t *o = analyze(body, 200);
    assert_true(json_is_true(json_object_get(o, "anomaly")));
    assert_true(json_real_value(json_object_get(o, "score")) > 0.9);
    assert_true(json_real_value(json_object_get(o, "zscore")) > 10);
    assert_int_equal(json_integer_value(json_object_get(o, "points")), 60);
    assert_non_null(strstr(json_string_value(json_object_get(o, "hint")), "above"));
    json_decref(o);
    /* the same without the spike: normal */
    snprintf(body + at, sizeof body - at, "100.5]}");
    o = analyze(body, 200);
    assert_true(json_is_false(json_object_get(o, "anomaly")));
    assert_true(json_real_value(json_object_get(o, "score")) < 0.5);
    json_decref(o);
    /* overrides */
    o = analyze("{\"values\":[1,1,1,1,1,1,1,1,9],\"window\":8,\"method\":\"zscore\"}", 200);
    assert_string_equal(json_string_value(json_object_get(o, "method")), "zscore");
    assert_int_equal(json_integer_value(json_object_get(o, "window")), 8);
    json_decref(o);

    /* errors name what is wrong */
    const struct { const char *body; const char *needle; } bad[] = {
        {"{\"values\":[1,2,", "malformed JSON"},
        {"[1,2,3]", "JSON object"},
        {"{\"values\":[1,\"x\",3]}", "values[1]"},
        {"{\"values\":[]}", "values must be"},
        {"{\"values\":[1],\"foo\":1}", "unknown field \"foo\""},
        {"{\"values\":[1],\"series\":\"a\"}", "exactly one"},
        {"{}", "exactly one"},
        {"{\"values\":[1],\"window\":2}", "window"},
        {"{\"values\":[1],\"method\":\"magic\"}", "method"},
        {"{\"values\":[1e300]}", "values[0]"},
        {"{\"values\":[1],\"values\":[2]}", "malformed JSON"},
        {"{\"series\":\"\"}", "series must be"},
        {"{\"prom_query\":\"up\",\"lookback\":\"5 weeks\"}", "lookback"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(http_do(g_port, "POST", "/analyze", H_ADMIN_JSON, bad[i].body, (size_t)-1),
                     400, bad[i].needle);
    expect_error(http_do(g_port, "POST", "/analyze", H_ADMIN_JSON, "", 0), 400, "empty body");
    /* invalid UTF-8, deep nesting */
    expect_error(http_do(g_port, "POST", "/analyze", H_ADMIN_JSON,
                         "{\"values\":[1],\"labels\":{\"a\":\"\xff\xfe\"}}", (size_t)-1),
                 400, "malformed JSON");
    char deep[8200];
    memset(deep, '[', 4000);
    memset(deep + 4000, ']', 4000);
    deep[8000] = '\0';
    expect_error(http_do(g_port, "POST", "/analyze", H_ADMIN_JSON, deep, (size_t)-1), 400,
                 "malformed JSON");
    const char *form[] = {"X-API-Key: admin-key-1",
                          "Content-Type: application/x-www-form-urlencoded", NULL};
    expect_error(http_do(g_port, "POST", "/analyze", form, "{\"values\":[1]}", (size_t)-1), 415,
                 "application/json");
    /* prom_query without a Prometheus server configured */
    expect_error(http_do(g_port, "POST", "/analyze", H_ADMIN_JSON, "{\"prom_query\":\"up\"}",
                         (size_t)-1),
                 501, "api.prometheus_url");
    expect_error(http_do(g_port, "POST", "/analyze", H_ADMIN_JSON,
                         "{\"series\":\"nothing{host=\\\"x\\\"}\"}", (size_t)-1),
                 404, "not tracked");
}

/* Lines of a series h with a spike at the end: 40 calm points then one far off. */
static void spike_body(char *buf, size_t cap, const char *svc, int h, long long t0)
{
    size_t at = 0;
    for (int i = 0; i <= 40; i++)
        at += (size_t)snprintf(buf + at, cap - at,
                               "lat,cluster=c1,host=h%02d,service=%s ms=%.1f %lld\n", h, svc,
                               i == 40 ? 500.0 : 100.0 + (i % 3),
                               t0 + (long long)i * 1000000000ll);
}

static size_t page_items(const char *path, const char *key, char ***ids_out, char *next,
                         size_t next_cap)
{
    http_res r = http_do(g_port, "GET", path, H_VIEWER, NULL, 0);
    if (r.status != 200)
        fail_msg("%s: %ld %s", path, r.status, r.body);
    json_t *o = json_of(&r);
    json_t *items = json_object_get(o, key);
    assert_true(json_is_array(items));
    size_t n = json_array_size(items);
    *ids_out = calloc(n + 1, sizeof **ids_out);
    for (size_t i = 0; i < n; i++)
        (*ids_out)[i] = strdup(json_string_value(json_object_get(json_array_get(items, i), "id")));
    json_t *nc = json_object_get(o, "next_cursor");
    snprintf(next, next_cap, "%s", json_is_string(nc) ? json_string_value(nc) : "");
    json_decref(o);
    http_free(&r);
    return n;
}

/* The value of an unlabelled sample in an exposition; -1 if absent. */
static double metric(const char *text, const char *name)
{
    char needle[160];
    snprintf(needle, sizeof needle, "\n%s ", name);
    const char *at = strstr(text, needle);
    return at ? strtod(at + strlen(needle), NULL) : -1;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/*
 * The data the signal and incident tests read: 12 series on 4 services, each with a spike,
 * posted once through POST /ingest → Kafka → pipeline (one bad line among the first body's good
 * ones: named, the rest accepted). Each test that reads them calls await_signals, so each runs
 * alone too.
 */
static bool g_posted;

static void post_spikes(void)
{
    if (g_posted)
        return;
    g_posted = true;
    static char body[16384];
    const long long t0 = 1700000000000000000ll;
    for (int h = 0; h < 12; h++) {
        char svc[16];
        snprintf(svc, sizeof svc, "svc%d", h % 4);
        spike_body(body, sizeof body, svc, h, t0 + h * 500000000ll);
        if (h == 0)
            strcat(body, "lat,host=h00 ms=notanumber 1700000000000000000\n");
        http_res r = http_do(g_port, "POST", "/ingest", H_OP_TEXT, body, (size_t)-1);
        if (r.status != 202)
            fail_msg("ingest: %ld %s", r.status, r.body);
        json_t *o = json_of(&r);
        assert_int_equal(json_integer_value(json_object_get(o, "accepted")), 41);
        assert_int_equal(json_integer_value(json_object_get(o, "rejected")), h == 0 ? 1 : 0);
        if (h == 0)
            assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "first_error"),
                                                                "line")), 42);
        json_decref(o);
        http_free(&r);
    }
}

/* Post the spikes (once) and wait until their 12 signals are in the store. */
static void await_signals(void)
{
    post_spikes();
    char **ids = NULL, next[64];
    size_t n = 0;
    for (int i = 0; i < 300 && n < 12; i++) {
        free_ids(ids, n);
        n = page_items("/signals?limit=1000", "signals", &ids, next, sizeof next);
        if (n < 12)
            sleep_ms(100);
    }
    free_ids(ids, n);
    assert_int_equal(n, 12);
}

/* How many items a page of `path` holds (`key`: signals or incidents). */
static size_t count_items(const char *path, const char *key)
{
    char **ids = NULL, next[64];
    size_t n = page_items(path, key, &ids, next, sizeof next);
    free_ids(ids, n);
    return n;
}

/* POST /ingest: line protocol and JSON accepted, bad lines named, other types refused. */
static void test_ingest_lines(void **state)
{
    (void)state;
    post_spikes();
    expect_error(http_do(g_port, "POST", "/ingest", H_OP_TEXT, "garbage", (size_t)-1), 400,
                 "line 1");
    const char *op_xml[] = {"X-API-Key: operator-key-1", "Content-Type: application/xml", NULL};
    expect_error(http_do(g_port, "POST", "/ingest", op_xml, "<a/>", (size_t)-1), 415, NULL);
    const char *op_json[] = {"X-API-Key: operator-key-1", "Content-Type: application/json", NULL};
    assert_int_equal(status_of(http_do(g_port, "POST", "/ingest", op_json,
                                       "{\"name\":\"cpu\",\"tags\":{\"host\":\"j1\"},"
                                       "\"fields\":{\"u\":1.5},\"timestamp\":1700000000}",
                                       (size_t)-1)),
                     202);
}

/* GET /signals filtered by labels and by time. */
static void test_signal_filters(void **state)
{
    (void)state;
    await_signals();
    assert_int_equal(count_items("/signals?labels=metric_kind=x", "signals"), 0);
    assert_int_equal(count_items("/signals?labels=service=svc1", "signals"), 3);
    assert_int_equal(count_items("/signals?labels=service=svc1,host=h05", "signals"), 1);
    /* time filters: the spikes are at t0 + h/2 s + 40 s */
    assert_int_equal(count_items("/signals?until=2023-11-14T22:13:59Z", "signals"), 0);
    assert_int_equal(count_items("/signals?since=1700000043", "signals"), 6); /* h = 6..11 */
}

/* GET /signals in pages of 5: newest first, every signal once, then a null cursor; bad
 * queries are named. */
static void test_signal_pages(void **state)
{
    (void)state;
    await_signals();
    char path[128] = "/signals?limit=5", **ids = NULL, next[64];
    size_t seen = 0, pages = 0, n;
    char *all[12];
    do {
        n = page_items(path, "signals", &ids, next, sizeof next);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < seen; j++)
                assert_string_not_equal(all[j], ids[i]);
            assert_true(seen < 12);
            all[seen++] = strdup(ids[i]);
        }
        free_ids(ids, n);
        pages++;
        snprintf(path, sizeof path, "/signals?limit=5&cursor=%s", next);
    } while (next[0] && pages < 10);
    assert_int_equal(seen, 12);
    assert_int_equal(pages, 3);
    for (size_t i = 0; i < seen; i++)
        free(all[i]);
    expect_error(http_do(g_port, "GET", "/signals?limit=0", H_VIEWER, NULL, 0), 400, "limit");
    expect_error(http_do(g_port, "GET", "/signals?cursor=abc", H_VIEWER, NULL, 0), 400, "cursor");
    expect_error(http_do(g_port, "GET", "/signals?since=yesterday", H_VIEWER, NULL, 0), 400,
                 "since");
    expect_error(http_do(g_port, "GET", "/signals?labels=service", H_VIEWER, NULL, 0), 400,
                 "key=value");
    expect_error(http_do(g_port, "GET", "/signals?colour=red", H_VIEWER, NULL, 0), 400,
                 "unknown query parameter");
}

/* The 12 hosts spike together, three of each service: one service-wide incident per service
 * (hosts of different services never share one), found by id and filters, with its severity. */
static void test_incident_of_signals(void **state)
{
    (void)state;
    await_signals();
    char **ids = NULL, next[64], path[128];
    size_t n = page_items("/incidents?status=open", "incidents", &ids, next, sizeof next);
    assert_int_equal(n, 4);
    for (size_t k = 0; k < n; k++) {
        snprintf(path, sizeof path, "/incidents/%s", ids[k]);
        http_res r = http_do(g_port, "GET", path, H_VIEWER, NULL, 0);
        assert_int_equal(r.status, 200);
        json_t *o = json_of(&r);
        assert_string_equal(json_string_value(json_object_get(o, "id")), ids[k]);
        assert_int_equal(json_array_size(json_object_get(o, "signals")), 3);
        assert_int_equal(json_integer_value(json_object_get(o, "host_count")), 3);
        assert_string_equal(json_string_value(json_object_get(o, "severity")), "critical");
        json_t *labels = json_object_get(o, "labels");
        assert_string_equal(json_string_value(json_object_get(labels, "cluster")), "c1");
        assert_non_null(json_string_value(json_object_get(labels, "service")));
        assert_null(json_object_get(labels, "host"));
        json_decref(o);
        http_free(&r);
    }
    free_ids(ids, n);
    assert_int_equal(count_items("/incidents?labels=cluster=c1", "incidents"), 4);
    assert_int_equal(count_items("/incidents?labels=service=svc1", "incidents"), 1);
    assert_int_equal(count_items("/incidents?labels=cluster=c2", "incidents"), 0);
    assert_int_equal(count_items("/incidents?status=resolved", "incidents"), 0);
    expect_error(http_do(g_port, "GET", "/incidents?status=maybe", H_VIEWER, NULL, 0), 400,
                 "status");
    expect_error(http_do(g_port, "GET", "/incidents/ffffffffffffffff", H_VIEWER, NULL, 0), 404,
                 "no incident");
}

/* The engine's own window of a series, through /analyze. */
static void test_analyze_engine_series(void **state)
{
    (void)state;
    await_signals();
    json_t *o = analyze("{\"series\":\"lat_ms{cluster=\\\"c1\\\",host=\\\"h03\\\","
                        "service=\\\"svc3\\\"}\"}", 200);
    assert_int_equal(json_integer_value(json_object_get(o, "points")), 41);
    assert_string_equal(json_string_value(json_object_get(o, "source")), "series");
    json_decref(o);
    o = analyze("{\"series\":\"lat_ms{cluster=\\\"c1\\\",host=\\\"h03\\\","
                "service=\\\"svc3\\\"}\",\"lookback\":10}", 200);
    assert_int_equal(json_integer_value(json_object_get(o, "points")), 10);
    json_decref(o);
}

/* /metrics counted the spikes: points in, the bad line, the signals. */
static void test_ingest_counters(void **state)
{
    (void)state;
    await_signals();
    http_res r = http_do(g_port, "GET", "/metrics", NULL, NULL, 0);
    assert_true(metric(r.body, "neuralops_signals_total") == 12);
    assert_true(metric(r.body, "neuralops_anomaly_total") >= 12);
    assert_true(metric(r.body, "neuralops_api_ingest_points_total") >= 12 * 41);
    assert_true(metric(r.body, "neuralops_api_ingest_rejected_total") >= 1);
    assert_true(metric(r.body, "neuralops_worker_cpu_seconds_total") > 0); /* workers ran */
    assert_true(metric(r.body, "neuralops_pipeline_queued_bytes") >= 0); /* -1: missing */
    http_free(&r);
}

/* promtool (the Prometheus package's linter) finds nothing to say about /metrics. */
static void test_metrics_promtool(void **state)
{
    (void)state;
    http_res r = http_do(g_port, "GET", "/metrics", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "text/plain; version=0.0.4"));
    char path[600], cmd[1400];
    snprintf(path, sizeof path, "%s/metrics.txt", g_dir);
    FILE *f = fopen(path, "w");
    fwrite(r.body, 1, r.len, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s.out 2>&1", path, path);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat %s.out", path);
        assert_int_equal(system(cmd), 0);
        fail_msg("promtool check metrics exited %d", WEXITSTATUS(rc));
    }
    /* the process families a Prometheus client library exports, and sane values */
    const double start = metric(r.body, "process_start_time_seconds");
    const double now = (double)time(NULL);
    assert_true(start > 1.6e9);         /* after 2020 */
    assert_true(start <= now + 1);      /* not in the future (btime is whole seconds) */
    assert_true(metric(r.body, "process_cpu_seconds_total") >= 0);
    assert_true(metric(r.body, "process_resident_memory_bytes") > 1 << 20);
    assert_true(metric(r.body, "process_virtual_memory_bytes") >=
                metric(r.body, "process_resident_memory_bytes"));
    const double fds = metric(r.body, "process_open_fds");
    assert_true(fds >= 3); /* stdin, stdout, stderr at least; the server's sockets too */
    assert_true(metric(r.body, "process_max_fds") >= fds);
    assert_non_null(strstr(r.body, "# TYPE process_cpu_seconds_total counter\n"));
    const char *bi = strstr(r.body, "\nneuralops_build_info{version=\"");
    assert_non_null(bi);
    assert_non_null(strstr(bi, ",commit=\""));
    assert_non_null(strstr(bi, ",compiler=\""));
    assert_non_null(strstr(bi, "} 1\n"));
    assert_null(strstr(bi, "commit=\"\"")); /* never empty: a hash, or "unknown" */
    http_free(&r);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {15, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void test_limits_and_bad_clients(void **state)
{
    (void)state;
    /* body over the limit: announced, and streamed (chunked) */
    size_t big = 100000;
    char *b = malloc(big + 1);
    memset(b, ' ', big);
    b[big] = '\0';
    expect_error(http_do(g_port, "POST", "/analyze", H_ADMIN_JSON, b, big), 413, "limit");
    const char *chunked[] = {"X-API-Key: admin-key-1", "Content-Type: application/json",
                             "Transfer-Encoding: chunked", NULL};
    expect_error(http_do(g_port, "POST", "/analyze", chunked, b, big), 413, "limit");
    free(b);
    /* announced far over it (more than 16 times the limit): refused before any of it is read.
     * The client asks for "100 Continue" first, as curl does by default for large bodies: a
     * client that sends the body unasked gets the 413 and a closed connection while it still
     * writes, which it may see as a reset before it reads the answer (a loaded machine did) */
    size_t huge = 2u << 20;
    b = malloc(huge + 1);
    memset(b, ' ', huge);
    b[huge] = '\0';
    expect_error(http_do_ex(g_port, "POST", "/analyze", H_ADMIN_JSON, b, huge,
                            (http_opts){.expect_100 = true}), 413, "limit");
    free(b);
    /* unknown path, wrong method */
    expect_error(http_do(g_port, "GET", "/nope", H_ADMIN, NULL, 0), 404, "no such endpoint");
    http_res r = http_do(g_port, "DELETE", "/signals", H_ADMIN, NULL, 0);
    assert_non_null(strstr(r.headers, "Allow: GET"));
    expect_error(r, 405, "DELETE");

    /* a slow client (headers never finished) is cut off; others are served meanwhile */
    int slow = dial(g_port);
    assert_int_equal(write(slow, "GET /signals HTTP/1.1\r\nHost: x\r\n", 33), 33);
    assert_int_equal(status_of(http_do(g_port, "GET", "/healthz", NULL, NULL, 0)), 200);
    char buf[256];
    ssize_t got = read(slow, buf, sizeof buf); /* the server closes it after timeout_s */
    assert_true(got <= 0 || (size_t)got < sizeof buf);
    assert_true(got == 0 || (got > 0 && read(slow, buf, sizeof buf) == 0));
    close(slow);
    /* a truncated body: Content-Length promises more than comes, then the client leaves */
    int t = dial(g_port);
    const char *req = "POST /analyze HTTP/1.1\r\nHost: x\r\nX-API-Key: admin-key-1\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"values\":";
    assert_int_equal(write(t, req, strlen(req)), (ssize_t)strlen(req));
    close(t);
    /* and garbage that is not HTTP at all */
    int g = dial(g_port);
    assert_int_equal(write(g, "\x16\x03\x01 not http\r\n\r\n", 17), 17);
    got = read(g, buf, sizeof buf);
    assert_true(got >= 0);
    close(g);
    assert_int_equal(status_of(http_do(g_port, "GET", "/healthz", NULL, NULL, 0)), 200);

    /* rate limit: a second server with a tiny bucket */
    nops_api_params ap;
    api_params(&ap);
    ap.rate = 0.5;
    ap.burst = 3;
    nops_api *api = start_api(&ap, NULL);
    int port = nops_api_port(api);
    long last = 0;
    int ok = 0;
    for (int i = 0; i < 6; i++) {
        r = http_do(port, "GET", "/signals", H_VIEWER, NULL, 0);
        last = r.status;
        ok += r.status == 200;
        if (r.status == 429) {
            const char *ra = strstr(r.headers, "Retry-After: ");
            assert_non_null(ra);
            assert_true(atoi(ra + 13) >= 1 && atoi(ra + 13) <= 2);
        }
        http_free(&r);
    }
    assert_int_equal(ok, 3);
    assert_int_equal(last, 429);
    /* another key has its own bucket */
    assert_int_equal(status_of(http_do(port, "GET", "/signals", H_OPERATOR, NULL, 0)), 200);
    nops_api_destroy(api);
}

/* Bad settings are refused with a sentence, not a crash. */
static void test_bad_settings(void **state)
{
    (void)state;
    nops_api_params ap;
    nops_api_deps deps = {.store = g_store, .detect = &g_dp};
    char err[256];
    const char *listen[] = {"nohost", "127.0.0.1:99999", "300.1.1.1:80", ":80"};
    for (size_t i = 0; i < 4; i++) {
        api_params(&ap);
        snprintf(ap.listen, sizeof ap.listen, "%s", listen[i]);
        err[0] = '\0';
        assert_null(nops_api_new(&ap, &deps, err, sizeof err));
        assert_non_null(strstr(err, "api.listen"));
    }
    api_params(&ap);
    snprintf(ap.keys, sizeof ap.keys, "k1:superuser:abcd");
    assert_null(nops_api_new(&ap, &deps, err, sizeof err));
    assert_true(strlen(err) > 0);
    /* a port in use */
    api_params(&ap);
    snprintf(ap.listen, sizeof ap.listen, "127.0.0.1:%d", g_port);
    nops_api *api = nops_api_new(&ap, &deps, err, sizeof err);
    assert_non_null(api);
    assert_int_equal(nops_api_start(api, err, sizeof err), NOPS_IO);
    assert_non_null(strstr(err, "cannot listen"));
    nops_api_destroy(api);
}

/*
 * The OpenAPI document walked against the server: every operation it lists answers (with an
 * admin key and no body) a status the document lists for it, and every route the server has
 * is in the document.
 */
static void test_openapi_is_true(void **state)
{
    (void)state;
    http_res r = http_do(g_port, "GET", "/openapi.json", NULL, NULL, 0);
    json_t *doc = json_of(&r);
    http_free(&r);
    json_t *paths = json_object_get(doc, "paths");
    assert_true(json_object_size(paths) >= 16);
    const char *path;
    json_t *ops;
    size_t walked = 0;
    json_object_foreach(paths, path, ops) {
        const char *method;
        json_t *op;
        json_object_foreach(ops, method, op) {
            char url[256], upper[8];
            snprintf(url, sizeof url, "%s", path);
            char *brace = strchr(url, '{');
            if (brace) { /* {id} → an id that does not exist, the rest of the path kept */
                char rest[128];
                snprintf(rest, sizeof rest, "%s", strchr(brace, '}') + 1);
                snprintf(brace, sizeof url - (size_t)(brace - url), "0000000000000000%s", rest);
            }
            for (size_t i = 0; i <= strlen(method) && i < sizeof upper; i++)
                upper[i] = (char)(method[i] >= 'a' ? method[i] - 32 : method[i]);
            const char *body = strcmp(upper, "POST") == 0 ? "{}" : NULL;
            long st = status_of(http_do(g_port, upper, url, H_ADMIN_JSON, body, (size_t)-1));
            char code[8];
            snprintf(code, sizeof code, "%ld", st);
            if (!json_object_get(json_object_get(op, "responses"), code))
                fail_msg("%s %s answered %ld, which the document does not list", upper, path,
                         st);
            walked++;
        }
    }
    assert_int_equal(walked, 25);
    const char *routes[] = {"/analyze", "/ingest", "/api/v1/write", "/api/v2/write",
                            "/recommend", "/orchestrate", "/orchestrations",
                            "/orchestrations/{id}", "/orchestrations/{id}/approve",
                            "/orchestrations/{id}/dry-run", "/orchestrations/{id}/execute",
                            "/playbooks", "/audit", "/automation", "/automation/pause",
                            "/automation/resume", "/signals", "/incidents", "/incidents/{id}", "/series",
                            "/metrics", "/healthz", "/readyz", "/openapi.json", "/"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!json_object_get(paths, routes[i]))
            fail_msg("route %s is not in the OpenAPI document", routes[i]);
    json_decref(doc);
}

/* Recommendations attached to an incident (issue 15) reach GET /incidents and
 * /incidents/{id} through the sink set and the store, as the Incident schema says: every
 * required field present, [] when none were attached. */
static void test_incident_recommendations(void **state)
{
    (void)state;
    nops_incident inc;
    memset(&inc, 0, sizeof inc);
    snprintf(inc.id, sizeof inc.id, "00000000000e0c01");
    inc.opened_ns = nops_wall_ns();
    inc.updated_ns = inc.opened_ns;
    assert_int_equal(nops_labels_add(&inc.common, "cluster", 7, "recos", 5), NOPS_OK);
    nops_incident plain = inc;
    snprintf(plain.id, sizeof plain.id, "00000000000e0c02");
    inc.n_recos = 1;
    snprintf(inc.recos[0].playbook_id, sizeof inc.recos[0].playbook_id, "scale-out");
    inc.recos[0].score = 0.5f;
    inc.recos[0].confidence = 0.75f;
    inc.recos[0].evidence = 9;
    inc.recommended_ns = inc.opened_ns;
    assert_int_equal(nops_sinks_incident(g_sinks, &inc), NOPS_OK);
    assert_int_equal(nops_sinks_incident(g_sinks, &plain), NOPS_OK);

    http_res r = http_do(g_port, "GET", "/openapi.json", NULL, NULL, 0);
    json_t *doc = json_of(&r);
    http_free(&r);
    json_t *schema = json_object_get(json_object_get(json_object_get(doc, "components"),
                                                     "schemas"), "Incident");
    json_t *required = json_object_get(schema, "required");
    r = http_do(g_port, "GET", "/incidents?labels=cluster=recos", H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *page = json_of(&r);
    http_free(&r);
    json_t *items = json_object_get(page, "incidents"), *item;
    assert_int_equal(json_array_size(items), 2);
    size_t i, k;
    json_t *field;
    json_array_foreach(items, i, item) {
        json_array_foreach(required, k, field) if (!json_object_get(item, json_string_value(field)))
            fail_msg("GET /incidents item lacks required field %s", json_string_value(field));
        const bool with = strcmp(json_string_value(json_object_get(item, "id")), inc.id) == 0;
        assert_int_equal(json_array_size(json_object_get(item, "recommendations")), with ? 1 : 0);
    }
    json_decref(page);
    json_decref(doc);
    r = http_do(g_port, "GET", "/incidents/00000000000e0c01", H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *o = json_of(&r);
    http_free(&r);
    json_t *first = json_array_get(json_object_get(o, "recommendations"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "playbook_id")), "scale-out");
    assert_true(json_real_value(json_object_get(first, "score")) == 0.5);
    assert_true(json_real_value(json_object_get(first, "confidence")) == 0.75);
    assert_int_equal(json_integer_value(json_object_get(first, "evidence")), 9);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_ready_openapi),
        cmocka_unit_test(test_unready_without_pipeline),
        cmocka_unit_test(test_auth_and_roles),
        cmocka_unit_test(test_analyze),
        cmocka_unit_test(test_ingest_lines),
        cmocka_unit_test(test_signal_filters),
        cmocka_unit_test(test_signal_pages),
        cmocka_unit_test(test_incident_of_signals),
        cmocka_unit_test(test_analyze_engine_series),
        cmocka_unit_test(test_ingest_counters),
        cmocka_unit_test(test_metrics_promtool),
        cmocka_unit_test(test_limits_and_bad_clients),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_openapi_is_true),
        cmocka_unit_test(test_incident_recommendations),
    };
    return cmocka_run_group_tests(tests, tapi_setup, tapi_teardown);
}
