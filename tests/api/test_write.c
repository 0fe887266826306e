/*
 * test_write.c — the write endpoints of the tools teams run, against the librdkafka mock cluster
 * hosted by this process: every point read back from the metrics topic with its key.
 *   - POST /api/v2/write (Influx): each precision, org/bucket ignored, a bad precision, partial
 *     writes, `Authorization: Token` as the API key;
 *   - gzip bodies on /ingest and /api/v2/write, corrupt gzip, a zip bomb (413), an unknown
 *     encoding (415);
 *   - POST /api/v1/write (Prometheus remote write): 204, points keyed exactly as /ingest keys
 *     the same series, staleness markers skipped and counted, malformed bodies 400, and 5xx
 *     (retried by Prometheus) while Kafka is down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/support/gzutil.h"

#include "api/api.h"
#include "tests/api/http.h"
#include "tests/support/kafkautil.h"

#include "remote.pb-c.h"

#include <librdkafka/rdkafka_mock.h>
#include <math.h>
#include <snappy-c.h>
#include <time.h>
#include <zlib.h>

#define TOPIC "neuralops.metrics"

static const char *H_OP[] = {"X-API-Key: operator-key-1", "Content-Type: text/plain", NULL};
static const char *H_TOKEN[] = {"Authorization: Token operator-key-1", NULL};
static const char *H_GZ[] = {"X-API-Key: operator-key-1", "Content-Encoding: gzip",
                             "Content-Type: text/plain; charset=utf-8", NULL};
static const char *H_RW[] = {"X-API-Key: operator-key-1", "Content-Encoding: snappy",
                             "Content-Type: application/x-protobuf",
                             "X-Prometheus-Remote-Write-Version: 0.1.0", NULL};

static rd_kafka_t *g_host;
static rd_kafka_mock_cluster_t *g_mc;
static char g_boot[512];
static nops_store *g_store;
static nops_detect_params g_dp;
static nops_api *g_api;
static int g_port;

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac, (void)buf;
}

static int setup(void **state)
{
    (void)state;
    const tu_topic topics[] = {{TOPIC, 1}};
    g_host = tu_mock_cluster_log(1, topics, 1, g_boot, sizeof g_boot, quiet);
    assert_non_null(g_host);
    g_mc = rd_kafka_handle_mock_cluster(g_host);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_store = nops_store_new(100, 10);
    nops_detect_params_default(&g_dp);
    nops_api_params p = {.rate = 1e6, .burst = 1e6, .body_limit = 65536, .timeout_s = 30,
                         .threads = 1, .ingest_timeout_s = 3};
    snprintf(p.listen, sizeof p.listen, "127.0.0.1:0");
    char hex[65];
    assert_int_equal(nops_api_hash_key("operator-key-1", hex), NOPS_OK);
    snprintf(p.keys, sizeof p.keys, "o1:operator:%s", hex);
    static nops_kafka_params kp; /* reconnect quickly once the broker is back */
    memset(&kp, 0, sizeof kp);
    nops_cfg_map_set(&kp.librdkafka, "reconnect.backoff.ms", "20");
    nops_cfg_map_set(&kp.librdkafka, "reconnect.backoff.max.ms", "200");
    nops_api_deps d = {.store = g_store, .detect = &g_dp, .brokers = g_boot,
                       .metrics_topic = TOPIC, .kafka = &kp};
    char err[512];
    g_api = nops_api_new(&p, &d, err, sizeof err);
    if (!g_api)
        fail_msg("nops_api_new: %s", err);
    assert_int_equal(nops_api_start(g_api, err, sizeof err), NOPS_OK);
    g_port = nops_api_port(g_api);
    /* the producer connects: /ingest answers 202 once it has */
    bool ok = false;
    for (int i = 0; i < 60 && !ok; i++) {
        http_res r = http_do(g_port, "POST", "/ingest", H_OP, "warmup value=1 1", (size_t)-1);
        ok = r.status == 202;
        http_free(&r);
        if (!ok)
            nanosleep(&(struct timespec){0, 500000000}, NULL);
    }
    assert_true(ok);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nops_api_destroy(g_api);
    nops_store_destroy(g_store);
    rd_kafka_destroy(g_host);
    curl_global_cleanup();
    return 0;
}

/* Every message of the topic so far as "key|value\n" lines (malloc'd): read to the end. */
static char *topic_dump(void)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", g_boot, err, sizeof err);
    rd_kafka_conf_set(c, "group.id", "test-write-reader", err, sizeof err);
    rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_conf_set_log_cb(c, quiet);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);
    out[0] = '\0';
    for (int idle = 0; idle < 300;) { /* up to 30 s without a message or the end */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle++;
            continue;
        }
        bool eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        if (!m->err) {
            size_t need = len + m->key_len + m->len + 3;
            if (need > cap) {
                cap = need * 2;
                out = realloc(out, cap);
            }
            memcpy(out + len, m->key, m->key_len);
            len += m->key_len;
            out[len++] = '|';
            memcpy(out + len, m->payload, m->len);
            len += m->len;
            out[len++] = '\n';
            out[len] = '\0';
        }
        rd_kafka_message_destroy(m);
        if (eof)
            break;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return out;
}

/* The topic holds the line `want` ("key|value"); the answers came after Kafka acknowledged,
 * so it is there at once, but read until the end anyway. */
static void expect_message(const char *want)
{
    char *d = topic_dump();
    char line[600];
    snprintf(line, sizeof line, "%s\n", want);
    if (!strstr(d, line))
        fail_msg("no message \"%s\" on the topic; it holds:\n%s", want, d);
    free(d);
}

static void expect_no_message(const char *needle)
{
    char *d = topic_dump();
    if (strstr(d, needle))
        fail_msg("unexpected \"%s\" on the topic", needle);
    free(d);
}

/* ---- Influx /api/v2/write ------------------------------------------------------------------- */

static void test_influx_each_precision(void **state)
{
    (void)state;
    static const struct { const char *p, *ts; } cases[] = {
        {"ns", "1700000000123456789"}, {"us", "1700000000123456"},
        {"ms", "1700000000123"},       {"s", "1700000000"},
        {NULL, "1700000000123456789"}, /* no precision: ns, as Influx */
    };
    static const char *want[] = {"1700000000123456789", "1700000000123456000",
                                 "1700000000123000000", "1700000000000000000",
                                 "1700000000123456789"};
    for (size_t i = 0; i < 5; i++) {
        char path[128], body[256], msg[256];
        if (cases[i].p)
            snprintf(path, sizeof path, "/api/v2/write?org=acme&bucket=telegraf&precision=%s",
                     cases[i].p);
        else
            snprintf(path, sizeof path, "/api/v2/write?bucket=b");
        snprintf(body, sizeof body, "inflx%zu,zone=b,host=a usage_user=12.5,n=3i %s\n", i,
                 cases[i].ts);
        http_res r = http_do(g_port, "POST", path, H_TOKEN, body, (size_t)-1);
        if (r.status != 204)
            fail_msg("%s: %ld %s", path, r.status, r.body);
        assert_int_equal(r.len, 0);
        http_free(&r);
        snprintf(msg, sizeof msg,
                 "inflx%zu,host=a,zone=b|inflx%zu,host=a,zone=b usage_user=12.5 %s", i, i,
                 want[i]);
        expect_message(msg);
        snprintf(msg, sizeof msg, "inflx%zu,host=a,zone=b|inflx%zu,host=a,zone=b n=3 %s", i, i,
                 want[i]);
        expect_message(msg);
    }
}

static void test_influx_errors_and_auth(void **state)
{
    (void)state;
    http_res r = http_do(g_port, "POST", "/api/v2/write?precision=h", H_TOKEN, "x v=1 1",
                         (size_t)-1);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "precision"));
    http_free(&r);
    /* a partial write: 400 naming the bad line, the good one written */
    r = http_do(g_port, "POST", "/api/v2/write?precision=s", H_TOKEN,
                "part_ok value=7 1700000001\npart_bad value=lots 1\n", (size_t)-1);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "partial write: 1 point(s) written, 1 line(s) rejected"));
    assert_non_null(strstr(r.body, "line 2"));
    http_free(&r);
    expect_message("part_ok|part_ok value=7 1700000001000000000");
    /* JSON is not line protocol here */
    r = http_do(g_port, "POST", "/api/v2/write", H_TOKEN, "{\"name\":\"a\",\"value\":1}",
                (size_t)-1);
    assert_int_equal(r.status, 400);
    http_free(&r);
    /* the scheme in any case, blanks after it */
    const char *loose[] = {"Authorization: token   operator-key-1", NULL};
    r = http_do(g_port, "POST", "/api/v2/write", loose, "tok_loose v=1 1", (size_t)-1);
    assert_int_equal(r.status, 204);
    http_free(&r);
    /* a wrong token is a wrong key; no credentials at all is 401 too */
    const char *bad[] = {"Authorization: Token nope", NULL};
    r = http_do(g_port, "POST", "/api/v2/write", bad, "tok v=1 1", (size_t)-1);
    assert_int_equal(r.status, 401);
    http_free(&r);
    r = http_do(g_port, "POST", "/api/v2/write", NULL, "tok v=1 1", (size_t)-1);
    assert_int_equal(r.status, 401);
    http_free(&r);
    expect_no_message("tok v=1");
}

/* ---- gzip bodies ---------------------------------------------------------------------------- */

static void test_gzip_bodies(void **state)
{
    (void)state;
    static unsigned char zb[1 << 16];
    const char *lp = "gz_ingest,host=a value=1 1700000000000000000\n"
                     "gz_ingest,host=b value=2 1700000000000000000\n";
    size_t zl = tu_gzip(lp, strlen(lp), zb, sizeof zb);
    http_res r = http_do(g_port, "POST", "/ingest", H_GZ, (const char *)zb, zl);
    if (r.status != 202 || !strstr(r.body, "\"accepted\":2"))
        fail_msg("/ingest gzip: %ld %s", r.status, r.body);
    http_free(&r);
    expect_message("gz_ingest,host=b|gz_ingest,host=b value=2 1700000000000000000");
    const char *lp2 = "gz_influx,host=a value=3 1700000000\n";
    zl = tu_gzip(lp2, strlen(lp2), zb, sizeof zb);
    r = http_do(g_port, "POST", "/api/v2/write?precision=s", H_GZ, (const char *)zb, zl);
    assert_int_equal(r.status, 204);
    http_free(&r);
    expect_message("gz_influx,host=a|gz_influx,host=a value=3 1700000000000000000");
    /* corrupt (cut short) */
    zl = tu_gzip(lp, strlen(lp), zb, sizeof zb);
    r = http_do(g_port, "POST", "/ingest", H_GZ, (const char *)zb, zl - 10);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "gzip"));
    http_free(&r);
    /* a zip bomb: 16 MiB of line protocol in a few KiB, past body_limit (64 KiB) once inflated */
    size_t big = 16u << 20;
    char *lines = malloc(big);
    for (size_t i = 0; i < big; i++)
        lines[i] = (i % 32 == 31) ? '\n' : 'a';
    zl = tu_gzip(lines, big, zb, sizeof zb);
    free(lines);
    assert_true(zl < 65536);
    r = http_do(g_port, "POST", "/api/v2/write", H_GZ, (const char *)zb, zl);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "body_limit"));
    http_free(&r);
    /* an encoding the server does not speak */
    const char *br[] = {"X-API-Key: operator-key-1", "Content-Encoding: br", NULL};
    r = http_do(g_port, "POST", "/ingest", br, "x v=1", (size_t)-1);
    assert_int_equal(r.status, 415);
    http_free(&r);
}

/* ---- Prometheus /api/v1/write ---------------------------------------------------------------- */

/* One series up{job,instance} (name last, as order must not matter) with n samples, packed
 * and snappy-compressed into out (malloc'd); its length. */
static size_t rw_body(const char *name, const double *v, const int64_t *ms, size_t n, char **out)
{
    NopsPrompb__Label l[3] = {NOPS_PROMPB__LABEL__INIT, NOPS_PROMPB__LABEL__INIT,
                              NOPS_PROMPB__LABEL__INIT};
    NopsPrompb__Label *lp[3] = {&l[0], &l[1], &l[2]};
    const char *kv[6] = {"job", "node", "instance", "host-1:9100", "__name__", name};
    for (int i = 0; i < 3; i++) {
        l[i].name = (ProtobufCBinaryData){strlen(kv[2 * i]), (uint8_t *)kv[2 * i]};
        l[i].value = (ProtobufCBinaryData){strlen(kv[2 * i + 1]), (uint8_t *)kv[2 * i + 1]};
    }
    NopsPrompb__Sample s[8], *sp[8];
    for (size_t i = 0; i < n; i++) {
        nops_prompb__sample__init(&s[i]);
        s[i].value = v[i];
        s[i].timestamp = ms[i];
        sp[i] = &s[i];
    }
    NopsPrompb__TimeSeries ts = NOPS_PROMPB__TIME_SERIES__INIT, *tsp = &ts;
    ts.n_labels = 3;
    ts.labels = lp;
    ts.n_samples = n;
    ts.samples = sp;
    NopsPrompb__WriteRequest wr = NOPS_PROMPB__WRITE_REQUEST__INIT;
    wr.n_timeseries = 1;
    wr.timeseries = &tsp;
    size_t rl = nops_prompb__write_request__get_packed_size(&wr);
    uint8_t *raw = malloc(rl);
    nops_prompb__write_request__pack(&wr, raw);
    size_t cl = snappy_max_compressed_length(rl);
    *out = malloc(cl);
    assert_int_equal(snappy_compress((const char *)raw, rl, *out, &cl), SNAPPY_OK);
    free(raw);
    return cl;
}

static double stale_nan(void)
{
    uint64_t bits = 0x7ff0000000000002ull;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static void test_remote_write(void **state)
{
    (void)state;
    char *body;
    size_t n = rw_body("rw_up", (double[]){1, 0.5, stale_nan()},
                       (int64_t[]){1700000000000, 1700000015000, 1700000030000}, 3, &body);
    http_res r = http_do(g_port, "POST", "/api/v1/write", H_RW, body, n);
    if (r.status != 204)
        fail_msg("remote write: %ld %s", r.status, r.body);
    http_free(&r);
    free(body);
    /* keyed exactly as /ingest keys the same series */
    r = http_do(g_port, "POST", "/ingest", H_OP,
                "rw_up,job=node,instance=host-1:9100 value=9 1700000045000000000", (size_t)-1);
    assert_int_equal(r.status, 202);
    http_free(&r);
    const char *key = "rw_up,instance=host-1:9100,job=node";
    char msg[256];
    snprintf(msg, sizeof msg, "%s|%s value=1 1700000000000000000", key, key);
    expect_message(msg);
    snprintf(msg, sizeof msg, "%s|%s value=0.5 1700000015000000000", key, key);
    expect_message(msg);
    snprintf(msg, sizeof msg, "%s|%s value=9 1700000045000000000", key, key);
    expect_message(msg);
    expect_no_message("1700000030000000000"); /* the staleness marker */
    r = http_do(g_port, "GET", "/metrics", NULL, NULL, 0);
    assert_non_null(strstr(r.body, "neuralops_api_ingest_stale_total 1\n"));
    http_free(&r);

    /* malformed: 400, which Prometheus does not retry */
    r = http_do(g_port, "POST", "/api/v1/write", H_RW, "not snappy at all", (size_t)-1);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "snappy"));
    http_free(&r);
    /* a sample the engine refuses: 400 naming it, the others written */
    n = rw_body("rw_inf", (double[]){INFINITY, 4}, (int64_t[]){1700000000000, 1700000001000}, 2,
                &body);
    r = http_do(g_port, "POST", "/api/v1/write", H_RW, body, n);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "1 point(s) written, 1 sample(s) rejected"));
    http_free(&r);
    free(body);
    /* not snappy-encoded, not protobuf */
    const char *gzh[] = {"X-API-Key: operator-key-1", "Content-Encoding: gzip", NULL};
    r = http_do(g_port, "POST", "/api/v1/write", gzh, "x", 1);
    assert_int_equal(r.status, 415);
    http_free(&r);
    const char *jsh[] = {"X-API-Key: operator-key-1", "Content-Type: application/json", NULL};
    r = http_do(g_port, "POST", "/api/v1/write", jsh, "{}", 2);
    assert_int_equal(r.status, 415);
    http_free(&r);
    /* no credentials */
    r = http_do(g_port, "POST", "/api/v1/write", NULL, "x", 1);
    assert_int_equal(r.status, 401);
    http_free(&r);
}

/* A prometheus-kafka-adapter body of staleness markers alone, posted to /ingest: accepted with
 * nothing to produce (not "no point"), the markers counted. */
static void test_ingest_stale_only(void **state)
{
    (void)state;
    const char *hj[] = {"X-API-Key: operator-key-1", "Content-Type: application/json", NULL};
    http_res r = http_do(g_port, "POST", "/ingest", hj,
                         "{\"name\":\"st_up\",\"value\":\"NaN\",\"labels\":{\"job\":\"a\"}}\n"
                         "{\"name\":\"st_up\",\"value\":\"NaN\",\"labels\":{\"job\":\"b\"}}",
                         (size_t)-1);
    if (r.status != 202 || !strstr(r.body, "\"accepted\":0") || !strstr(r.body, "\"stale\":2"))
        fail_msg("/ingest of markers: %ld %s", r.status, r.body);
    http_free(&r);
    r = http_do(g_port, "GET", "/metrics", NULL, NULL, 0);
    assert_non_null(strstr(r.body, "neuralops_api_ingest_stale_total 3\n")); /* 1 + 2 */
    http_free(&r);
    expect_no_message("st_up");
}

/* Kafka down: 5xx (Prometheus retries), never 204; back up: 204 again. */
static void test_remote_write_kafka_down(void **state)
{
    (void)state;
    char *body;
    size_t n = rw_body("rw_down", (double[]){1}, (int64_t[]){1700000000000}, 1, &body);
    assert_int_equal(rd_kafka_mock_broker_set_down(g_mc, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    http_res r = http_do(g_port, "POST", "/api/v1/write", H_RW, body, n);
    if (r.status < 500)
        fail_msg("broker down: %ld %s", r.status, r.body);
    http_free(&r);
    assert_int_equal(rd_kafka_mock_broker_set_up(g_mc, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    bool ok = false;
    for (int i = 0; i < 60 && !ok; i++) { /* until the producer is back */
        r = http_do(g_port, "POST", "/api/v1/write", H_RW, body, n);
        ok = r.status == 204;
        if (!ok && r.status < 500)
            fail_msg("broker back: %ld %s", r.status, r.body);
        http_free(&r);
    }
    assert_true(ok);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_influx_each_precision),
        cmocka_unit_test(test_influx_errors_and_auth),
        cmocka_unit_test(test_gzip_bodies),
        cmocka_unit_test(test_remote_write),
        cmocka_unit_test(test_ingest_stale_only),
        cmocka_unit_test(test_remote_write_kafka_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
