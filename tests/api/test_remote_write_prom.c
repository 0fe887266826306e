/*
 * test_remote_write_prom.c — a real Prometheus (the Debian package), started by this test on
 * loopback, scrapes itself every second and remote-writes into the API's POST /api/v1/write;
 * the API produces to the metrics topic of a librdkafka mock cluster hosted by this process.
 * The test reads the topic back and checks that the scraped series arrive keyed like /ingest
 * keys them, with the timestamps Prometheus itself stored for those samples, and that
 * Prometheus counted no failed sample (a 400 would have made it drop some). It authenticates
 * with `authorization: {type: Token, credentials: <API key>}` (Prometheus 2.42 from Debian does
 * not send remote_write `headers`). Everything is polled with generous deadlines; no timing is
 * asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "tests/api/http.h"
#include "tests/support/promutil.h"
#include "tests/support/kafkautil.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPIC "neuralops.metrics"

static char g_dir[] = "/tmp/nops-promrw-XXXXXX";
static rd_kafka_t *g_host;
static char g_boot[512];
static nops_detect_params g_dp;
static nops_store *g_store;
static nops_api *g_api;
static pid_t g_prom = -1;
static int g_prom_port;

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac, (void)buf;
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(g_dir));
    const tu_topic topics[] = {{TOPIC, 1}};
    g_host = tu_mock_cluster_log(1, topics, 1, g_boot, sizeof g_boot, quiet);
    assert_non_null(g_host);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    nops_detect_params_default(&g_dp);
    g_store = nops_store_new(100, 10);
    nops_api_params p = {.rate = 1e6, .burst = 1e6, .body_limit = 1 << 20, .timeout_s = 30,
                         .threads = 1, .ingest_timeout_s = 10};
    snprintf(p.listen, sizeof p.listen, "127.0.0.1:0");
    char hex[65];
    assert_int_equal(nops_api_hash_key("rw-test-key", hex), NOPS_OK);
    snprintf(p.keys, sizeof p.keys, "rw:operator:%s", hex);
    nops_api_deps d = {.store = g_store, .detect = &g_dp, .brokers = g_boot,
                       .metrics_topic = TOPIC};
    char err[512];
    g_api = nops_api_new(&p, &d, err, sizeof err);
    if (!g_api)
        fail_msg("nops_api_new: %s", err);
    assert_int_equal(nops_api_start(g_api, err, sizeof err), NOPS_OK);

    g_prom_port = tu_free_port();
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/prometheus.yml", g_dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: prometheus\n"
            "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
            "remote_write:\n  - url: http://127.0.0.1:%d/api/v1/write\n"
            "    authorization:\n      type: Token\n      credentials: rw-test-key\n"
            "    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n"
            "      max_backoff: 1s\n",
            g_prom_port, nops_api_port(g_api));
    fclose(f);
    g_prom = tu_prometheus_start(g_dir, cfg, g_prom_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_prometheus_stop(g_prom);
    nops_api_destroy(g_api);
    nops_store_destroy(g_store);
    rd_kafka_destroy(g_host);
    curl_global_cleanup();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A reader of the topic from its beginning. */
static rd_kafka_t *reader(void)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", g_boot, err, sizeof err);
    rd_kafka_conf_set(c, "group.id", "test-promrw-reader", err, sizeof err);
    rd_kafka_conf_set_log_cb(c, quiet);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    return rk;
}

/* Sum of every sample of `name` on Prometheus' own /metrics; -1 when not there. */
static double prom_metric(const char *name)
{
    http_res r = http_do(g_prom_port, "GET", "/metrics", NULL, NULL, 0);
    double sum = -1;
    size_t n = strlen(name);
    for (char *l = r.status == 200 ? r.body : ""; l && *l;) {
        if (strncmp(l, name, n) == 0 && (l[n] == ' ' || l[n] == '{')) {
            char *sp = strchr(l, ' ');
            if (l[n] == '{')
                sp = strstr(l, "} ") ? strstr(l, "} ") + 1 : NULL;
            if (sp)
                sum = (sum < 0 ? 0 : sum) + strtod(sp + 1, NULL);
        }
        char *nl = strchr(l, '\n');
        l = nl ? nl + 1 : NULL;
    }
    http_free(&r);
    return sum;
}

/* The timestamps (ms) Prometheus holds for up{job="prometheus"} over the last 10 minutes. */
static size_t prom_up_times(int64_t *ms, size_t cap)
{
    http_res r = http_do(g_prom_port, "GET",
                         "/api/v1/query?query=up%7Bjob%3D%22prometheus%22%7D%5B10m%5D", NULL,
                         NULL, 0);
    json_t *o = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    json_t *res = json_array_get(json_object_get(json_object_get(o, "data"), "result"), 0);
    json_t *values = json_object_get(res, "values"), *v;
    size_t i, n = 0;
    json_array_foreach(values, i, v) if (n < cap)
        ms[n++] = (int64_t)llround(json_number_value(json_array_get(v, 0)) * 1000.0);
    json_decref(o);
    http_free(&r);
    return n;
}

static void test_prometheus_remote_writes_into_kafka(void **state)
{
    (void)state;
    const long long start_ms = (long long)(nops_wall_ns() / 1000000) - 5000;
    char key[128];
    snprintf(key, sizeof key, "up,instance=127.0.0.1:%d,job=prometheus", g_prom_port);
    rd_kafka_t *rk = reader();
    enum { WANT = 3, MAXT = 4096 };
    static int64_t got_ms[MAXT];
    size_t n_up = 0, messages = 0;
    bool build_info = false;
    /* up to 180 s for Prometheus to start, scrape and send three scrapes of `up` */
    const uint64_t deadline = nops_now_ns() + 180ull * 1000000000ull;
    while ((n_up < WANT || !build_info) && nops_now_ns() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            messages++;
            const char *k = m->key, *v = m->payload;
            /* the key is the series, the value the escaped line protocol of the point */
            if (m->key_len == strlen(key) && memcmp(k, key, m->key_len) == 0) {
                char line[512];
                snprintf(line, sizeof line, "%.*s", (int)m->len, v);
                char want[200];
                snprintf(want, sizeof want, "%s value=1 ", key);
                if (strncmp(line, want, strlen(want)) != 0)
                    fail_msg("up sample: \"%s\"", line);
                long long ns = strtoll(line + strlen(want), NULL, 10);
                if (ns % 1000000 != 0 || ns / 1000000 < start_ms)
                    fail_msg("up sample time %lld ns is not a recent millisecond", ns);
                if (n_up < MAXT)
                    got_ms[n_up++] = ns / 1000000;
            }
            if (m->key_len > 24 && memcmp(k, "prometheus_build_info,", 22) == 0)
                build_info = true; /* another series, its labels sorted into the key */
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (n_up < WANT || !build_info) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "tail -20 %s/prometheus.log >&2", g_dir);
        (void)system(cmd);
        fail_msg("%zu messages, %zu up samples, build_info %d", messages, n_up, build_info);
    }
    /* each time is one Prometheus stored for that series */
    static int64_t prom_ms[MAXT];
    size_t n_prom = prom_up_times(prom_ms, MAXT);
    assert_true(n_prom >= WANT);
    for (size_t i = 0; i < n_up; i++) {
        bool found = false;
        for (size_t j = 0; j < n_prom && !found; j++)
            found = prom_ms[j] == got_ms[i];
        if (!found)
            fail_msg("up sample at %lld ms is not in Prometheus' TSDB (%zu samples there)",
                     (long long)got_ms[i], n_prom);
    }
    /* Prometheus sent samples and failed none (a 400 drops a batch and counts it here) */
    assert_true(prom_metric("prometheus_remote_storage_samples_total") > 0);
    assert_true(prom_metric("prometheus_remote_storage_samples_failed_total") == 0);
    print_message("  %zu messages, %zu up samples, all in Prometheus' TSDB\n", messages, n_up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prometheus_remote_writes_into_kafka),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
