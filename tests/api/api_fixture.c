/*
 * api_fixture.c — what the HTTP API tests share (test_api.c, test_api_orch.c): one engine in
 * this process — a mock cluster, a pipeline, the sinks and the store, a signed playbook
 * registry, an audit trail, an orchestrator — behind an API on loopback, and the helpers to
 * talk to it. Declared in api_fixture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/api/api_fixture.h"
#include "tests/support/kafkautil.h"

#include <time.h>


nops_registry *g_reg;
nops_audit *g_audit;
nops_secret *g_audit_key; /* the audit chain's key (in memory) */
nops_orchestrator *g_orch;
nops_secret *g_secret; /* the engine's key for the orchestrators */
rd_kafka_t *g_cluster;
char g_dir[] = "/tmp/nops-api-XXXXXX";
nops_detect_params g_dp;
nops_sinks *g_sinks;
nops_store *g_store;
nops_pipeline *g_pipe;
nops_api *g_api;
int g_port;

const char *H_VIEWER[] = {"X-API-Key: viewer-key-1", NULL};
const char *H_OPERATOR[] = {"X-API-Key: operator-key-1", NULL};
const char *H_ADMIN[] = {"X-API-Key: admin-key-1", NULL};
const char *H_ADMIN_JSON[] = {"X-API-Key: admin-key-1", "Content-Type: application/json",
                                     NULL};
const char *H_OP_TEXT[] = {"X-API-Key: operator-key-1", "Content-Type: text/plain",
                                  NULL};

void sleep_ms(long ms)
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

void api_params(nops_api_params *p)
{
    nops_api_params_default(p);
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

nops_api *start_api(const nops_api_params *p, char *boot)
{
    nops_api_deps deps = {.pipeline = g_pipe, .sinks = g_sinks, .store = g_store,
                          .detect = &g_dp, .brokers = boot, .metrics_topic = "neuralops.metrics",
                          .orchestrator = g_orch, .registry = g_reg, .recommender = g_reco,
                          .learner = g_learner,
                          .audit = g_audit};
    char err[512];
    nops_api *api = nops_api_new(p, &deps, err, sizeof err);
    if (!api)
        fail_msg("nops_api_new: %s", err);
    assert_int_equal(nops_api_start(api, err, sizeof err), NOPS_OK);
    return api;
}

char g_boot[512];
nops_recommender *g_reco;
nops_learner *g_learner;

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
          "\"manual\",\"allowed_roles\":[\"operator\",\"org-admin\"]},\"steps\":[{\"name\":\"say\","
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

int tapi_setup(void **state)
{
    (void)state;
    char err[512];
    static const tu_topic topics[] = {{"neuralops.metrics", 4}, {"neuralops.metrics.dlq", 1}};
    g_cluster = tu_mock_cluster(1, topics, 2, g_boot, sizeof g_boot);
    assert_non_null(g_cluster);
    assert_non_null(mkdtemp(g_dir));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setup_orchestration();

    nops_kafka_params kp;
    tu_kafka_params(&kp, g_boot, "api-test");
    nops_pipeline_params pp = {2, 4096, 512, 100, 1000000, 1000, 0, 0, 0, 0};
    nops_detect_params_default(&g_dp);
    /* the series here are 41–60 points long: a 30-point warm-up (the default is 2W = 120) */
    g_dp.warmup = 30;
    nops_correlate_params cp;
    nops_correlate_defaults(&cp);
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

int tapi_teardown(void **state)
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
    return tu_remove_tree(g_dir);
}

/* ---- helpers ------------------------------------------------------------------------------ */

json_t *json_of(const http_res *r)
{
    json_t *o = json_loadb(r->body, r->len, 0, NULL);
    if (!o)
        fail_msg("not JSON (status %ld): %.300s", r->status, r->body);
    return o;
}

/* Assert an error answer: status, the error shape, and `needle` in the message. */
void expect_error(http_res r, long status, const char *needle)
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

long status_of(http_res r)
{
    long s = r.status;
    http_free(&r);
    return s;
}

/* An HS256 token for `payload` signed with `secret`, as an Authorization header line. */
void bearer(const char *payload, const char *secret, char *out, size_t cap)
{
    http_jwt("Authorization: Bearer ", "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, secret,
             out, cap);
}
