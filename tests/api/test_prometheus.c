/*
 * test_prometheus.c — a real Prometheus server (the Debian package), started by this test on
 * loopback with a temporary TSDB, scrapes the API's /metrics every second; the test waits until
 * the target is up with no scrape error, then asks POST /analyze for a prom_query against that
 * server (a second API instance configured with api.prometheus_url) and checks what comes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "tests/api/http.h"
#include "tests/support/promutil.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-prom-XXXXXX";
static nops_detect_params g_dp;
static nops_store *g_store;
static nops_api *g_api;
static pid_t g_prom = -1;
static int g_prom_port;

static const char *H_JSON[] = {"X-API-Key: prom-test-key", "Content-Type: application/json",
                               NULL};

static nops_api *start_api(const char *prom_url)
{
    nops_api_params p = {.rate = 1e6, .burst = 1e6, .body_limit = 1 << 20, .timeout_s = 5,
                         .threads = 1, .access_log = false, .history = 100};
    snprintf(p.listen, sizeof p.listen, "127.0.0.1:0");
    snprintf(p.prometheus_url, sizeof p.prometheus_url, "%s", prom_url ? prom_url : "");
    char hex[65];
    assert_int_equal(nops_api_hash_key("prom-test-key", hex), NOPS_OK);
    snprintf(p.keys, sizeof p.keys, "p:viewer:%s", hex);
    nops_api_deps d = {.store = g_store, .detect = &g_dp};
    char err[256];
    nops_api *api = nops_api_new(&p, &d, err, sizeof err);
    assert_non_null(api);
    assert_int_equal(nops_api_start(api, err, sizeof err), NOPS_OK);
    return api;
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(g_dir));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    nops_detect_params_default(&g_dp);
    g_store = nops_store_new(100, 10);
    g_api = start_api(NULL);
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/prometheus.yml", g_dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: neuralops\n    metrics_path: /metrics\n"
            "    static_configs:\n      - targets: ['127.0.0.1:%d']\n",
            nops_api_port(g_api));
    fclose(f);
    g_prom_port = tu_free_port();
    g_prom = tu_prometheus_start(g_dir, cfg, g_prom_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_prometheus_stop(g_prom);
    nops_api_destroy(g_api);
    nops_store_destroy(g_store);
    curl_global_cleanup();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Prometheus's own view of our target: "up" with no scrape error. */
static bool target_up(char *last_error, size_t cap)
{
    http_res r = http_do(g_prom_port, "GET", "/api/v1/targets", NULL, NULL, 0);
    bool up = false;
    json_t *o = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    json_t *t = json_array_get(json_object_get(json_object_get(o, "data"), "activeTargets"), 0);
    const char *health = json_string_value(json_object_get(t, "health"));
    const char *err = json_string_value(json_object_get(t, "lastError"));
    snprintf(last_error, cap, "%s", err ? err : "");
    up = health && strcmp(health, "up") == 0 && err && !*err;
    json_decref(o);
    http_free(&r);
    return up;
}

static void test_prometheus_scrapes_metrics(void **state)
{
    (void)state;
    char err[512] = "";
    bool up = false;
    for (int i = 0; i < 600 && !up; i++) { /* up to 60 s for the server and a first scrape */
        up = target_up(err, sizeof err);
        if (!up)
            nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    if (!up)
        fail_msg("Prometheus did not scrape /metrics cleanly (last error: \"%s\"; log in %s)",
                 err, g_dir);
    /* a series of ours is queryable */
    http_res r = http_do(g_prom_port, "GET", "/api/v1/query?query=neuralops_build_info", NULL,
                         NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"version\""));
    http_free(&r);
}

static void test_analyze_prom_query(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", g_prom_port);
    nops_api *api = start_api(url);
    int port = nops_api_port(api);
    /* wait for a few scrapes, then analyze the uptime series (a steady ramp) */
    json_t *o = NULL;
    for (int i = 0; i < 300; i++) {
        http_res r = http_do(port, "POST", "/analyze", H_JSON,
                             "{\"prom_query\":\"neuralops_uptime_seconds\",\"lookback\":\"2m\","
                             "\"step\":\"1s\"}",
                             (size_t)-1);
        json_decref(o);
        o = json_loadb(r.body, r.len, 0, NULL);
        long st = r.status;
        http_free(&r);
        if (st == 200 && json_integer_value(json_object_get(o, "points")) >= 4)
            break;
        nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "source")), "prom_query");
    assert_true(json_integer_value(json_object_get(o, "points")) >= 4);
    assert_true(json_is_number(json_object_get(o, "score")));
    json_decref(o);
    /* Prometheus refuses bad PromQL: 502 with its reason */
    http_res r = http_do(port, "POST", "/analyze", H_JSON, "{\"prom_query\":\"rate(((\"}",
                         (size_t)-1);
    assert_int_equal(r.status, 502);
    assert_non_null(strstr(r.body, "Prometheus"));
    http_free(&r);
    /* a query with no data: 404 */
    r = http_do(port, "POST", "/analyze", H_JSON, "{\"prom_query\":\"no_such_metric_xyz\"}",
                (size_t)-1);
    assert_int_equal(r.status, 404);
    http_free(&r);
    nops_api_destroy(api);
    /* a Prometheus that is not there: 502, quickly, and the server keeps serving */
    api = start_api("http://127.0.0.1:1");
    port = nops_api_port(api);
    r = http_do(port, "POST", "/analyze", H_JSON, "{\"prom_query\":\"up\"}", (size_t)-1);
    assert_int_equal(r.status, 502);
    http_free(&r);
    r = http_do(port, "GET", "/healthz", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    http_free(&r);
    nops_api_destroy(api);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prometheus_scrapes_metrics),
        cmocka_unit_test(test_analyze_prom_query),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
