/*
 * test_api.c — the HTTP API over real loopback HTTP (libcurl and raw sockets as clients), in
 * front of a real pipeline consuming the librdkafka mock cluster hosted by this process:
 * every endpoint's success and error statuses, the auth and role matrix (API keys and HS256
 * tokens), pagination and filters, /ingest through Kafka to signals and incidents, body and
 * rate limits, slow and truncated clients, `promtool check metrics`, and the OpenAPI document
 * walked against the server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "tests/api/http.h"
#include "tests/support/kafkautil.h"
#include "tests/support/pgutil.h"
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SECRET "test-secret-0123456789"
#define ISSUER "neuralops-test"

static nops_registry *g_reg;
static nops_audit *g_audit;
static nops_secret *g_audit_key; /* the audit chain's key (in memory) */
static nops_orchestrator *g_orch;
static nops_secret *g_secret; /* the engine's key for the orchestrators */
static rd_kafka_t *g_cluster;
static char g_dir[] = "/tmp/nops-api-XXXXXX";
static nops_detect_params g_dp;
static nops_sinks *g_sinks;
static nops_store *g_store;
static nops_pipeline *g_pipe;
static nops_api *g_api;
static int g_port;

static const char *H_VIEWER[] = {"X-API-Key: viewer-key-1", NULL};
static const char *H_OPERATOR[] = {"X-API-Key: operator-key-1", NULL};
static const char *H_ADMIN[] = {"X-API-Key: admin-key-1", NULL};
static const char *H_ADMIN_JSON[] = {"X-API-Key: admin-key-1", "Content-Type: application/json",
                                     NULL};
static const char *H_OP_TEXT[] = {"X-API-Key: operator-key-1", "Content-Type: text/plain",
                                  NULL};

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

static void keys(char *out, size_t cap)
{
    const char *k[][3] = {{"v1", "viewer", "viewer-key-1"},
                          {"o1", "operator", "operator-key-1"},
                          {"a1", "org-admin", "admin-key-1"}};
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        char hex[65];
        assert_int_equal(nops_api_hash_key(k[i][2], hex), NOPS_OK);
        at += (size_t)snprintf(out + at, cap - at, "%s%s:%s:%s", i ? "," : "", k[i][0], k[i][1],
                               hex);
    }
}

static void api_params(nops_api_params *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->listen, sizeof p->listen, "127.0.0.1:0");
    keys(p->keys, sizeof p->keys);
    snprintf(p->jwt_secret, sizeof p->jwt_secret, SECRET);
    snprintf(p->jwt_issuer, sizeof p->jwt_issuer, ISSUER);
    p->rate = 1000;
    p->burst = 1000;
    p->body_limit = 65536;
    p->timeout_s = 2;
    p->threads = 1;
    p->access_log = true;
    p->history = 1000;
}

static nops_api *start_api(const nops_api_params *p, char *boot)
{
    nops_api_deps deps = {.pipeline = g_pipe, .sinks = g_sinks, .store = g_store,
                          .detect = &g_dp, .brokers = boot, .metrics_topic = "neuralops.metrics",
                          .orchestrator = g_orch, .registry = g_reg,
                          .audit = g_audit};
    char err[512];
    nops_api *api = nops_api_new(p, &deps, err, sizeof err);
    if (!api)
        fail_msg("nops_api_new: %s", err);
    assert_int_equal(nops_api_start(api, err, sizeof err), NOPS_OK);
    return api;
}

static char g_boot[512];

/* A signed playbook registry, an audit log and an orchestrator for the orchestration routes. */
static void setup_orchestration(void)
{
    char cmd[2048], err[512], path[256];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/reg && openssl ecparam -name prime256v1 -genkey "
             "-noout -out %s/k.pem 2>/dev/null && openssl ec -in %s/k.pem -pubout -out "
             "%s/p.pem 2>/dev/null", g_dir, g_dir, g_dir, g_dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/reg/echo.json", g_dir);
    FILE *f = fopen(path, "w");
    fputs("{\"id\":\"echo\",\"name\":\"Echo\",\"version\":\"1\",\"safety\":{\"mode\":"
          "\"manual\",\"allowed_roles\":[\"org-admin\"]},\"steps\":[{\"name\":\"say\","
          "\"exec\":[\"/bin/echo\",\"fixed\"]}],\"timeout_s\":20}", f);
    fclose(f);
    char key[256], pub[256], reg[256];
    snprintf(key, sizeof key, "%s/k.pem", g_dir);
    snprintf(pub, sizeof pub, "%s/p.pem", g_dir);
    snprintf(reg, sizeof reg, "%s/reg", g_dir);
    assert_int_equal(nops_playbook_sign(path, key, err, sizeof err), NOPS_OK);
    g_reg = nops_registry_load(reg, pub, err, sizeof err);
    assert_non_null(g_reg);
    snprintf(path, sizeof path, "%s/audit.jsonl", g_dir);
    g_audit_key = nops_secret_from_bytes("test-audit-key", 14);
    g_audit = nops_audit_open(path, NULL, g_audit_key, NULL, err, sizeof err);
    g_secret = nops_secret_from_bytes("api test key", 12);
    snprintf(path, sizeof path, "%s/orch", g_dir);
    char hist[256];
    snprintf(hist, sizeof hist, "%s/runs.jsonl", g_dir);
    nops_orch_deps d = {.state_dir = path, .history_jsonl = hist, .reg = g_reg, .audit = g_audit,
                        .secret = g_secret};
    g_orch = nops_orch_new(&d, err, sizeof err);
    assert_non_null(g_orch);
}

static int setup(void **state)
{
    (void)state;
    char err[512];
    static const tu_topic topics[] = {{"neuralops.metrics", 4}, {"neuralops.metrics.dlq", 1}};
    g_cluster = tu_mock_cluster(1, topics, 2, g_boot, sizeof g_boot);
    assert_non_null(g_cluster);
    assert_non_null(mkdtemp(g_dir));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setup_orchestration();

    nops_kafka_params kp = {0};
    snprintf(kp.brokers, sizeof kp.brokers, "%s", g_boot);
    snprintf(kp.topic, sizeof kp.topic, "neuralops.metrics");
    snprintf(kp.group, sizeof kp.group, "api-test");
    snprintf(kp.dlq_topic, sizeof kp.dlq_topic, "neuralops.metrics.dlq");
    kp.session_timeout_ms = 6000;
    nops_pipeline_params pp = {2, 4096, 512, 100, 1000000, 1000, 0, 0, 0};
    nops_detect_params_default(&g_dp);
    /* the series here are 41–60 points long: a 30-point warm-up (the default is 2W = 120) */
    g_dp.warmup = 30;
    nops_correlate_params cp = {120, 0.8, "service,host,cluster", 300};
    nops_storage_params sp;
    snprintf(sp.data_dir, sizeof sp.data_dir, "%s", g_dir);
    g_sinks = nops_sinks_new();
    g_store = nops_store_new(1000, 100);
    assert_int_equal(nops_store_attach(g_store, g_sinks, err, sizeof err), NOPS_OK);
    assert_int_equal(nops_sinks_add_jsonl(g_sinks, g_dir, 0, err, sizeof err), NOPS_OK);
    g_pipe = nops_pipeline_new(&kp, &pp, &g_dp, &cp, &sp, g_sinks, err, sizeof err);
    assert_non_null(g_pipe);
    assert_int_equal(nops_pipeline_start(g_pipe, err, sizeof err), NOPS_OK);
    nops_api_params ap;
    api_params(&ap);
    g_api = start_api(&ap, g_boot);
    g_port = nops_api_port(g_api);
    assert_true(g_port > 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nops_api_destroy(g_api);
    nops_pipeline_stop(g_pipe, 15000);
    nops_pipeline_destroy(g_pipe);
    nops_sinks_destroy(g_sinks);
    nops_store_destroy(g_store);
    nops_orch_destroy(g_orch);
    nops_audit_close(g_audit);
    nops_secret_destroy(g_secret);
    nops_secret_destroy(g_audit_key);
    nops_registry_destroy(g_reg);
    rd_kafka_destroy(g_cluster);
    curl_global_cleanup();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static json_t *json_of(const http_res *r)
{
    json_t *o = json_loadb(r->body, r->len, 0, NULL);
    if (!o)
        fail_msg("not JSON (status %ld): %.300s", r->status, r->body);
    return o;
}

/* Assert an error answer: status, the error shape, and `needle` in the message. */
static void expect_error(http_res r, long status, const char *needle)
{
    if (r.status != status)
        fail_msg("expected %ld, got %ld: %.300s", status, r.status, r.body);
    json_t *o = json_of(&r);
    json_t *e = json_object_get(o, "error");
    assert_true(json_is_string(json_object_get(e, "code")));
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    if (needle && !strstr(msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
    json_decref(o);
    http_free(&r);
}

static long status_of(http_res r)
{
    long s = r.status;
    http_free(&r);
    return s;
}

/* An HS256 token for `payload` signed with `secret`, as an Authorization header line. */
static void bearer(const char *payload, const char *secret, char *out, size_t cap)
{
    http_jwt("Authorization: Bearer ", "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, secret,
             out, cap);
}

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

static void test_ingest_signals_incidents(void **state)
{
    (void)state;
    /* 12 series on 4 services, each with a spike, through POST /ingest → Kafka → pipeline */
    static char body[16384];
    const long long t0 = 1700000000000000000ll;
    for (int h = 0; h < 12; h++) {
        char svc[16];
        snprintf(svc, sizeof svc, "svc%d", h % 4);
        spike_body(body, sizeof body, svc, h, t0 + h * 500000000ll);
        if (h == 0) /* one bad line among good ones: named, the rest accepted */
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
    expect_error(http_do(g_port, "POST", "/ingest", H_OP_TEXT, "garbage", (size_t)-1), 400,
                 "line 1");
    const char *op_xml[] = {"X-API-Key: operator-key-1", "Content-Type: application/xml", NULL};
    expect_error(http_do(g_port, "POST", "/ingest", op_xml, "<a/>", (size_t)-1), 415, NULL);
    /* JSON works too */
    const char *op_json[] = {"X-API-Key: operator-key-1", "Content-Type: application/json", NULL};
    assert_int_equal(status_of(http_do(g_port, "POST", "/ingest", op_json,
                                       "{\"name\":\"cpu\",\"tags\":{\"host\":\"j1\"},"
                                       "\"fields\":{\"u\":1.5},\"timestamp\":1700000000}",
                                       (size_t)-1)),
                     202);

    /* the 12 signals arrive */
    http_res r;
    char **ids = NULL, next[64];
    size_t n = 0;
    for (int i = 0; i < 300 && n < 12; i++) {
        free_ids(ids, n);
        n = page_items("/signals?labels=metric_kind=x", "signals", &ids, next, sizeof next);
        assert_int_equal(n, 0); /* a filter nothing matches */
        free_ids(ids, n);
        n = page_items("/signals?limit=1000", "signals", &ids, next, sizeof next);
        if (n < 12)
            sleep_ms(100);
    }
    assert_int_equal(n, 12);
    free_ids(ids, n);
    n = page_items("/signals?labels=service=svc1", "signals", &ids, next, sizeof next);
    assert_int_equal(n, 3);
    free_ids(ids, n);
    n = page_items("/signals?labels=service=svc1,host=h05", "signals", &ids, next, sizeof next);
    assert_int_equal(n, 1);
    free_ids(ids, n);
    /* time filters: the spikes are at t0 + h/2 s + 40 s */
    n = page_items("/signals?until=2023-11-14T22:13:59Z", "signals", &ids, next, sizeof next);
    assert_int_equal(n, 0);
    free_ids(ids, n);
    n = page_items("/signals?since=1700000043", "signals", &ids, next, sizeof next);
    assert_int_equal(n, 6); /* h = 6..11 */
    free_ids(ids, n);

    /* pagination: pages of 5, newest first, every signal once, then null */
    char path[128] = "/signals?limit=5";
    size_t seen = 0, pages = 0;
    char *all[12];
    do {
        n = page_items(path, "signals", &ids, next, sizeof next);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < seen; j++)
                assert_string_not_equal(all[j], ids[i]);
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

    /* incidents: the 12 share cluster=c1 within the window: one incident, found by id */
    n = page_items("/incidents?status=open", "incidents", &ids, next, sizeof next);
    assert_int_equal(n, 1);
    snprintf(path, sizeof path, "/incidents/%s", ids[0]);
    r = http_do(g_port, "GET", path, H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *o = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(o, "id")), ids[0]);
    assert_int_equal(json_array_size(json_object_get(o, "signals")), 12);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "labels"),
                                                          "cluster")), "c1");
    json_decref(o);
    http_free(&r);
    free_ids(ids, n);
    n = page_items("/incidents?labels=cluster=c1", "incidents", &ids, next, sizeof next);
    assert_int_equal(n, 1);
    free_ids(ids, n);
    n = page_items("/incidents?labels=cluster=c2", "incidents", &ids, next, sizeof next);
    assert_int_equal(n, 0);
    free_ids(ids, n);
    n = page_items("/incidents?status=resolved", "incidents", &ids, next, sizeof next);
    assert_int_equal(n, 0);
    free_ids(ids, n);
    expect_error(http_do(g_port, "GET", "/incidents?status=maybe", H_VIEWER, NULL, 0), 400,
                 "status");
    expect_error(http_do(g_port, "GET", "/incidents/ffffffffffffffff", H_VIEWER, NULL, 0), 404,
                 "no incident");

    /* the engine's own window of a series, through /analyze */
    o = analyze("{\"series\":\"lat_ms{cluster=\\\"c1\\\",host=\\\"h03\\\",service=\\\"svc3\\\"}\"}",
                200);
    assert_int_equal(json_integer_value(json_object_get(o, "points")), 41);
    assert_string_equal(json_string_value(json_object_get(o, "source")), "series");
    json_decref(o);
    o = analyze("{\"series\":\"lat_ms{cluster=\\\"c1\\\",host=\\\"h03\\\",service=\\\"svc3\\\"}\","
                "\"lookback\":10}", 200);
    assert_int_equal(json_integer_value(json_object_get(o, "points")), 10);
    json_decref(o);

    /* the counters moved */
    r = http_do(g_port, "GET", "/metrics", NULL, NULL, 0);
    assert_true(metric(r.body, "neuralops_signals_total") == 12);
    assert_true(metric(r.body, "neuralops_anomaly_total") >= 12);
    assert_true(metric(r.body, "neuralops_api_ingest_points_total") >= 12 * 41 + 1);
    assert_true(metric(r.body, "neuralops_api_ingest_rejected_total") >= 2);
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
    /* announced far over it (more than 16 times the limit): refused before any of it is read
     * (curl waits for "100 Continue" on a body this large, so the answer comes first) */
    size_t huge = 2u << 20;
    b = malloc(huge + 1);
    memset(b, ' ', huge);
    b[huge] = '\0';
    expect_error(http_do(g_port, "POST", "/analyze", H_ADMIN_JSON, b, huge), 413, "limit");
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

/* Poll GET /orchestrations/{id} on `port` until it is in `state` (the worker runs the steps). */
static void await_state_on(int port, const char *id, const char *state)
{
    char path[160], want[64];
    snprintf(path, sizeof path, "/orchestrations/%s", id);
    snprintf(want, sizeof want, "\"state\":\"%s\"", state);
    for (int i = 0; i < 500; i++) {
        http_res r = http_do(port, "GET", path, H_VIEWER, NULL, 0);
        bool there = r.status == 200 && r.body && strstr(r.body, want);
        http_free(&r);
        if (there)
            return;
        nanosleep(&(struct timespec){0, 20000000}, NULL);
    }
    fail_msg("orchestration %s never reached %s", id, state);
}

static void await_state(const char *id, const char *state)
{
    await_state_on(g_port, id, state);
}

/* suggest → dry-run → approve → execute over HTTP, with the role checks on the way. */
static void test_orchestration_over_http(void **state)
{
    (void)state;
    http_res r = http_do(g_port, "GET", "/playbooks", H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"echo\""));
    http_free(&r);
    const char *op_json[] = {"X-API-Key: operator-key-1", "Content-Type: application/json", NULL};
    const char *body = "{\"playbook_id\":\"echo\",\"incident\":{\"summary\":\"test\","
                       "\"labels\":{\"service\":\"checkout\"}}}";
    expect_error(http_do(g_port, "POST", "/orchestrate", op_json,
                         "{\"playbook_id\":\"nope\",\"incident\":{}}", (size_t)-1),
                 404, "no signed playbook");
    expect_error(http_do(g_port, "POST", "/orchestrate", H_VIEWER, body, (size_t)-1), 403,
                 "needs operator");
    r = http_do(g_port, "POST", "/orchestrate", op_json, body, (size_t)-1);
    assert_int_equal(r.status, 201);
    json_t *o = json_of(&r);
    char id[64], path[160];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(o, "id")));
    assert_string_equal(json_string_value(json_object_get(o, "state")), "suggested");
    json_decref(o);
    http_free(&r);
    snprintf(path, sizeof path, "/orchestrations/%s/execute", id);
    expect_error(http_do(g_port, "POST", path, op_json, "", 0), 409, "is suggested");
    snprintf(path, sizeof path, "/orchestrations/%s/dry-run", id);
    r = http_do(g_port, "POST", path, op_json, "", 0);
    assert_int_equal(r.status, 202); /* steps run on the worker: the record says so */
    assert_non_null(strstr(r.body, "\"dry_running\""));
    http_free(&r);
    await_state(id, "dry_run_ok");
    /* what waits for an approval: listed by state, newest first */
    r = http_do(g_port, "GET", "/orchestrations?state=dry_run_ok&limit=10", H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *doc = json_of(&r), *waiting = json_object_get(doc, "orchestrations");
    http_free(&r);
    assert_int_equal(json_array_size(waiting), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(waiting, 0), "id")), id);
    json_decref(doc);
    expect_error(http_do(g_port, "GET", "/orchestrations?state=pending", H_VIEWER, NULL, 0), 400,
                 "state must be");
    r = http_do(g_port, "GET", "/orchestrations?state=damaged", H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"orchestrations\":[]"));
    http_free(&r);
    expect_error(http_do(g_port, "GET", "/orchestrations?limit=0", H_VIEWER, NULL, 0), 400,
                 "limit");
    snprintf(path, sizeof path, "/orchestrations/%s/approve", id);
    expect_error(http_do(g_port, "POST", path, op_json, "", 0), 403, "needs org-admin");
    assert_int_equal(status_of(http_do(g_port, "POST", path, H_ADMIN_JSON, "", 0)), 200);
    snprintf(path, sizeof path, "/orchestrations/%s/execute", id);
    r = http_do(g_port, "POST", path, op_json, "", 0);
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body, "\"executing\""));
    http_free(&r);
    /* taken once: a second execute while (or after) it runs is refused */
    expect_error(http_do(g_port, "POST", path, op_json, "", 0), 409, NULL);
    await_state(id, "executed");
    snprintf(path, sizeof path, "/orchestrations/%s", id);
    r = http_do(g_port, "GET", path, H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "fixed\\n"));
    http_free(&r);
    /* /metrics counted the flow */
    r = http_do(g_port, "GET", "/metrics", NULL, NULL, 0);
    assert_non_null(strstr(r.body, "neuralops_orchestration_steps_total{step=\"execute\","
                                   "outcome=\"executed\"} 1\n"));
    assert_non_null(strstr(r.body, "neuralops_orchestration_steps_total{step=\"approve\","
                                   "outcome=\"approved\"} 1\n"));
    assert_non_null(strstr(r.body, "neuralops_orchestration_running 0\n"));
    assert_non_null(strstr(r.body, "neuralops_orchestration_damaged_records 0\n"));
    assert_non_null(strstr(r.body, "neuralops_audit_integrity_failures_total 0\n"));
    http_free(&r);
    /* the audit trail of it: operators and admins read it, page by page and filtered */
    expect_error(http_do(g_port, "GET", "/audit", H_VIEWER, NULL, 0), 403, "needs operator");
    snprintf(path, sizeof path, "/audit?subject=%s&limit=2", id);
    r = http_do(g_port, "GET", path, H_OPERATOR, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *page = json_of(&r);
    http_free(&r);
    json_t *entries = json_object_get(page, "entries");
    assert_int_equal(json_array_size(entries), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(entries, 0), "action")),
                        "suggest");
    json_int_t next = json_integer_value(json_object_get(page, "next"));
    assert_true(next >= 2);
    json_decref(page);
    snprintf(path, sizeof path, "/audit?subject=%s&after=%lld&limit=1000", id, (long long)next);
    r = http_do(g_port, "GET", path, H_ADMIN, NULL, 0);
    page = json_of(&r);
    http_free(&r);
    entries = json_object_get(page, "entries");
    /* after suggest and dry-run: approved, execute started, executed (the refusals above were
     * the server's role check or a wrong state, before any decision about this run) */
    assert_int_equal(json_array_size(entries), 3);
    assert_true(json_is_null(json_object_get(page, "next")));
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        assert_string_equal(json_string_value(json_object_get(e, "subject")), id);
        assert_true(json_integer_value(json_object_get(e, "seq")) > next);
    }
    const char *decisions[] = {"approved", "started", "executed"};
    json_array_foreach(entries, i, e)
        assert_string_equal(json_string_value(json_object_get(e, "decision")), decisions[i]);
    json_decref(page);
    expect_error(http_do(g_port, "GET", "/audit?limit=0", H_ADMIN, NULL, 0), 400, "limit");
    expect_error(http_do(g_port, "GET", "/audit?after=-1", H_ADMIN, NULL, 0), 400, "after");
    expect_error(http_do(g_port, "GET", "/audit?sort=x", H_ADMIN, NULL, 0), 400, "sort");
    expect_error(http_do(g_port, "GET", "/orchestrations/orch-none", H_VIEWER, NULL, 0), 404,
                 "no orchestration");
    expect_error(http_do(g_port, "POST", "/orchestrations/x/undo", op_json, "", 0), 404, NULL);
}

/* The same flow over HTTP with the records, runs and audit trail in PostgreSQL. */
static void test_orchestration_over_http_on_postgres(void **state)
{
    (void)state;
    char dsn[600], err[512], path[256], state_dir[256];
    PGconn *c = tu_pg_schema("api_pg", dsn, sizeof dsn);
    snprintf(path, sizeof path, "%s/audit-pg.jsonl", g_dir);
    snprintf(state_dir, sizeof state_dir, "%s/orch-pg", g_dir);
    nops_audit *audit = nops_audit_open(path, dsn, g_audit_key, NULL, err, sizeof err);
    assert_non_null(audit);
    nops_orch_deps d = {.state_dir = state_dir, .pg_dsn = dsn, .reg = g_reg, .audit = audit,
                        .secret = g_secret, .max_open = 1};
    nops_orchestrator *orch = nops_orch_new(&d, err, sizeof err);
    assert_non_null(orch);
    nops_orchestrator *files_orch = g_orch;
    nops_audit *files_audit = g_audit;
    g_orch = orch;
    g_audit = audit;
    nops_api_params ap;
    api_params(&ap);
    ap.body_limit = 1 << 20; /* the incident's own cap is the one to meet */
    nops_api *api = start_api(&ap, g_boot);
    g_orch = files_orch;
    g_audit = files_audit;
    const int port = nops_api_port(api);
    const char *op_json[] = {"X-API-Key: operator-key-1", "Content-Type: application/json", NULL};
    http_res r = http_do(port, "POST", "/orchestrate", op_json,
                         "{\"playbook_id\":\"echo\",\"incident\":{\"summary\":\"pg\","
                         "\"labels\":{\"service\":\"ledger\"}}}",
                         (size_t)-1);
    assert_int_equal(r.status, 201);
    json_t *o = json_of(&r);
    http_free(&r);
    char id[64], url[160];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    /* an inline incident over 64 KiB of JSON */
    static char big[NOPS_ORCH_MAX_INCIDENT + 100];
    snprintf(big, sizeof big, "{\"playbook_id\":\"echo\",\"incident\":{\"summary\":\"%0*d\"}}",
             NOPS_ORCH_MAX_INCIDENT, 0);
    expect_error(http_do(port, "POST", "/orchestrate", op_json, big, (size_t)-1), 413,
                 "incident is");
    /* orchestrate.max_open = 1: a second open one is refused until the first ends */
    expect_error(http_do(port, "POST", "/orchestrate", op_json,
                         "{\"playbook_id\":\"echo\",\"incident\":{}}", (size_t)-1),
                 429, "orchestrate.max_open");
    snprintf(url, sizeof url, "/orchestrations/%s/dry-run", id);
    assert_int_equal(status_of(http_do(port, "POST", url, op_json, "", 0)), 202);
    await_state_on(port, id, "dry_run_ok");
    snprintf(url, sizeof url, "/orchestrations/%s/approve", id);
    assert_int_equal(status_of(http_do(port, "POST", url, H_ADMIN_JSON, "", 0)), 200);
    snprintf(url, sizeof url, "/orchestrations/%s/execute", id);
    assert_int_equal(status_of(http_do(port, "POST", url, op_json, "", 0)), 202);
    await_state_on(port, id, "executed");
    snprintf(url, sizeof url, "/audit?subject=%s", id);
    r = http_do(port, "GET", url, H_OPERATOR, NULL, 0);
    assert_int_equal(r.status, 200);
    o = json_of(&r);
    http_free(&r);
    assert_int_equal(json_array_size(json_object_get(o, "entries")), 5);
    json_decref(o);
    /* the row edited to be approved again by someone else: the approval does not verify */
    const char *v[1] = {id};
    PGresult *pr = PQexecParams(c, "UPDATE api_pg.orchestrations SET state = 'approved', record "
                                   "= jsonb_set(jsonb_set(record, '{state}', '\"approved\"'), "
                                   "'{approval,by}', '\"key:mallory\"') WHERE id = $1",
                                1, NULL, v, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(pr), PGRES_COMMAND_OK);
    PQclear(pr);
    snprintf(url, sizeof url, "/orchestrations/%s/execute", id);
    expect_error(http_do(port, "POST", url, op_json, "", 0), 409, "does not verify");
    nops_api_destroy(api);
    nops_orch_destroy(orch);
    nops_audit_close(audit);
    /* all of it is in the database: the record, the run and the five audit rows */
    tu_pg_expect_run(c, "api_pg", id, "approved", "success", 6); /* + the refusal */
    tu_pg_drop_schema(c, "api_pg");
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
    assert_int_equal(walked, 19);
    const char *routes[] = {"/analyze", "/ingest", "/recommend", "/orchestrate", "/orchestrations",
                            "/orchestrations/{id}", "/orchestrations/{id}/approve",
                            "/orchestrations/{id}/dry-run", "/orchestrations/{id}/execute",
                            "/playbooks", "/audit", "/signals", "/incidents", "/incidents/{id}",
                            "/metrics", "/healthz", "/readyz", "/openapi.json", "/"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!json_object_get(paths, routes[i]))
            fail_msg("route %s is not in the OpenAPI document", routes[i]);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_ready_openapi),
        cmocka_unit_test(test_unready_without_pipeline),
        cmocka_unit_test(test_auth_and_roles),
        cmocka_unit_test(test_analyze),
        cmocka_unit_test(test_ingest_signals_incidents),
        cmocka_unit_test(test_metrics_promtool),
        cmocka_unit_test(test_limits_and_bad_clients),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_orchestration_over_http),
        cmocka_unit_test(test_orchestration_over_http_on_postgres),
        cmocka_unit_test(test_openapi_is_true),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
