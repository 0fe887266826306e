/*
 * test_ingest.c — POST /ingest when Kafka is away (issue 12, item 2) and the /ingest producer's
 * log lines (item 15), against the librdkafka mock cluster hosted by this process:
 *   - broker down: the answer is not 202 but 503/504 naming the counts, within the configured
 *     bound; once the broker is back, requests are answered 202 again and each answer counts
 *     its own points only (no report of an earlier request lands in a later one's count);
 *   - the server keeps answering /healthz while an /ingest waits (asked from another thread;
 *     no timing threshold: the /ingest provably waits until the test lets the broker back);
 *   - stopping the server while an /ingest waits answers it and frees everything (ASan);
 *   - librdkafka's own lines go through the engine's logger, none raw to stderr.
 * Under ASan (with detect_stack_use_after_return) a late delivery report writing into a dead
 * stack frame — the old defect — is reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "tests/api/http.h"
#include "tests/support/kafkautil.h"

#include <fcntl.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define TOPIC "neuralops.metrics"

static const char *H_OP[] = {"X-API-Key: operator-key-1", "Content-Type: text/plain", NULL};

static rd_kafka_t *g_host;          /* hosts the mock cluster */
static rd_kafka_mock_cluster_t *g_mc;
static char g_boot[512];
static nops_store *g_store;
static nops_detect_params g_dp;

/* ---- the logger's sink: count what librdkafka said through it -------------------------- */

static atomic_int g_kafka_lines;

static void sink(void *ud, nops_log_level level, const char *line)
{
    (void)ud;
    (void)level;
    if (strstr(line, " kafka: ") || strstr(line, "\"module\":\"kafka\""))
        atomic_fetch_add(&g_kafka_lines, 1);
    fprintf(stderr, "%s\n", line);
}

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac, (void)buf;
}

static int setup(void **state)
{
    (void)state;
    const tu_topic topics[] = {{TOPIC, 1}};
    /* the host's own lines are not under test */
    g_host = tu_mock_cluster_log(1, topics, 1, g_boot, sizeof g_boot, quiet);
    assert_non_null(g_host);
    g_mc = rd_kafka_handle_mock_cluster(g_host);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_store = nops_store_new(100, 10);
    nops_detect_params_default(&g_dp);
    nops_log_set_sink(sink, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nops_log_set_sink(NULL, NULL);
    nops_store_destroy(g_store);
    rd_kafka_destroy(g_host);
    curl_global_cleanup();
    return 0;
}

static nops_api *start_api_ex(int64_t ingest_timeout_s, int64_t max_future_s)
{
    nops_api_params p = {.rate = 1e6, .burst = 1e6, .body_limit = 65536, .timeout_s = 30,
                         .threads = 1, .access_log = true,
                         .ingest_timeout_s = ingest_timeout_s};
    snprintf(p.listen, sizeof p.listen, "127.0.0.1:0");
    char hex[65];
    assert_int_equal(nops_api_hash_key("operator-key-1", hex), NOPS_OK);
    snprintf(p.keys, sizeof p.keys, "o1:operator:%s", hex);
    /* reconnect quickly once the broker is back, so the test need not wait out a backoff */
    static nops_kafka_params kp; /* through [kafka.librdkafka], as a config file gives it */
    memset(&kp, 0, sizeof kp);
    nops_cfg_map_set(&kp.librdkafka, "reconnect.backoff.ms", "20");
    nops_cfg_map_set(&kp.librdkafka, "reconnect.backoff.max.ms", "200");
    nops_api_deps d = {.store = g_store, .detect = &g_dp, .brokers = g_boot,
                       .metrics_topic = TOPIC, .kafka = &kp,
                       .ingest_max_future_s = max_future_s};
    char err[512];
    nops_api *api = nops_api_new(&p, &d, err, sizeof err);
    if (!api)
        fail_msg("nops_api_new: %s", err);
    assert_int_equal(nops_api_start(api, err, sizeof err), NOPS_OK);
    return api;
}

static nops_api *start_api(int64_t ingest_timeout_s)
{
    return start_api_ex(ingest_timeout_s, 0);
}

static void broker(bool up)
{
    assert_int_equal(up ? rd_kafka_mock_broker_set_up(g_mc, 1)
                        : rd_kafka_mock_broker_set_down(g_mc, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* One point of series ingest-test{host=h} with value v, as a body. */
static void point(char *out, size_t cap, const char *host, int v)
{
    snprintf(out, cap, "ingest-test,host=%s v=%d %lld", host, v, now_ns());
}

/* True when some message of the topic's partition 0 holds `needle` (reads from the start). */
static bool topic_has(const char *needle)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", g_boot, err, sizeof err);
    rd_kafka_conf_set(c, "group.id", "test-ingest-reader", err, sizeof err);
    rd_kafka_conf_set_log_cb(c, quiet);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    bool found = false;
    for (int idle = 0; !found && idle < 100;) { /* up to ~10 s without a message */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            idle++;
            continue;
        }
        if (!m->err && m->len && memmem(m->payload, m->len, needle, strlen(needle)))
            found = true;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            idle = 100;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return found;
}

/* Error answers of /ingest: 503 or 504, the JSON error shape, counts "N of M". */
static void expect_unavailable(const http_res *r, const char *what)
{
    if (r->status != 503 && r->status != 504)
        fail_msg("%s: expected 503/504, got %ld: %s", what, r->status, r->body);
    assert_non_null(strstr(r->body, "\"error\""));
    assert_non_null(strstr(r->body, " of 1 "));
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_broker_down_then_back(void **state)
{
    (void)state;
    nops_api *api = start_api(2);
    int port = nops_api_port(api);
    char body[256];
    http_res r;
    bool ok = false; /* broker up: 202 once the producer has connected */
    for (int i = 0; i < 30 && !ok; i++) {
        point(body, sizeof body, "up", 1 + i);
        r = http_do(port, "POST", "/ingest", H_OP, body, (size_t)-1);
        ok = r.status == 202 && strstr(r.body, "\"accepted\":1");
        if (!ok)
            expect_unavailable(&r, "connecting");
        http_free(&r);
    }
    assert_true(ok);

    /* broker down: never 202; every raw librdkafka line would land in this file */
    char errpath[] = "/tmp/nops-ingest-stderr-XXXXXX";
    int efd = mkstemp(errpath);
    assert_true(efd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(efd, 2);
    int lines_before = atomic_load(&g_kafka_lines);
    broker(false);
    for (int i = 0; i < 3; i++) {
        point(body, sizeof body, "down", 100 + i);
        r = http_do_ex(port, "POST", "/ingest", H_OP, body, (size_t)-1,
                       (http_opts){.timeout_s = 120});
        expect_unavailable(&r, "broker down");
        http_free(&r);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    /* the producer said something about the lost broker, through the logger, one line each */
    assert_true(atomic_load(&g_kafka_lines) > lines_before);
    char buf[65536];
    ssize_t n = pread(efd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(efd);
    unlink(errpath);
    fputs(buf, stderr);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1
                                                                     : NULL)
        if (line[0] == '%' && line[1] >= '0' && line[1] <= '7' && line[2] == '|')
            fail_msg("a raw librdkafka line bypassed the logger: %.200s", line);

    /* back: answered 202 again (after the reconnect), and from then on every request's answer
     * is its own: 202 with accepted 1, its point in the topic */
    broker(true);
    ok = false;
    for (int i = 0; i < 30 && !ok; i++) {
        point(body, sizeof body, "back", 200 + i);
        r = http_do_ex(port, "POST", "/ingest", H_OP, body, (size_t)-1,
                       (http_opts){.timeout_s = 120});
        ok = r.status == 202;
        if (!ok)
            expect_unavailable(&r, "while reconnecting");
        http_free(&r);
    }
    assert_true(ok);
    for (int i = 0; i < 5; i++) {
        char mark[64];
        snprintf(mark, sizeof mark, "v=%d ", 300 + i);
        point(body, sizeof body, "after", 300 + i);
        r = http_do(port, "POST", "/ingest", H_OP, body, (size_t)-1);
        if (r.status != 202 || !strstr(r.body, "\"accepted\":1"))
            fail_msg("after recovery, request %d: %ld %s", i, r.status, r.body);
        http_free(&r);
        assert_true(topic_has(mark));
    }
    nops_api_destroy(api);
}

typedef struct waiter {
    int port;
    http_res r;
    atomic_bool done;
} waiter;

static void *post_ingest(void *arg)
{
    waiter *w = arg;
    char body[256];
    point(body, sizeof body, "waiting", 7);
    w->r = http_do_ex(w->port, "POST", "/ingest", H_OP, body, (size_t)-1,
                      (http_opts){.timeout_s = 240});
    atomic_store(&w->done, true);
    return NULL;
}

/* Poll GET /metrics until neuralops_api_ingest_waiting is 1 (an /ingest is suspended). */
static void await_waiting(int port)
{
    for (int i = 0; i < 3000; i++) {
        http_res r = http_do(port, "GET", "/metrics", NULL, NULL, 0);
        bool waiting = r.status == 200 && strstr(r.body, "\nneuralops_api_ingest_waiting 1\n");
        http_free(&r);
        if (waiting)
            return;
        nanosleep(&(struct timespec){0, 20000000}, NULL);
    }
    fail_msg("no /ingest ever waited");
}

static void test_healthz_while_ingest_waits(void **state)
{
    (void)state;
    nops_api *api = start_api(200); /* it waits until the broker is back, not until a timeout */
    waiter w = {.port = nops_api_port(api)};
    broker(false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, post_ingest, &w), 0);
    await_waiting(w.port);
    http_res h = http_do(w.port, "GET", "/healthz", NULL, NULL, 0);
    assert_int_equal(h.status, 200);
    http_free(&h);
    /* the /ingest cannot finish while the broker is down and its bound is far: /healthz was
     * answered while it waited */
    assert_false(atomic_load(&w.done));
    broker(true);
    pthread_join(t, NULL);
    if (w.r.status != 202)
        fail_msg("delivered after the broker came back: %ld %s", w.r.status, w.r.body);
    http_free(&w.r);
    nops_api_destroy(api);
}

/* A far-future point is refused by /ingest itself (the pipeline would only DLQ it after a 202):
 * alone → 400 naming the reason; beside a good point → 202 with it counted as rejected. */
static void test_out_of_time_points_named(void **state)
{
    (void)state;
    nops_api *api = start_api_ex(10, 86400);
    int port = nops_api_port(api);
    http_res r = http_do(port, "POST", "/ingest", H_OP,
                         "poison,host=x v=1 9000000000000000000", (size_t)-1);
    if (r.status != 400 || !strstr(r.body, "timestamp"))
        fail_msg("poison alone: %ld %s", r.status, r.body);
    http_free(&r);
    char body[512], good[256];
    point(good, sizeof good, "fine", 5);
    snprintf(body, sizeof body, "%s\npoison,host=x v=1 9000000000000000000\n", good);
    bool ok = false;
    for (int i = 0; i < 30 && !ok; i++) { /* the producer may still be connecting */
        r = http_do(port, "POST", "/ingest", H_OP, body, (size_t)-1);
        ok = r.status == 202;
        if (ok) {
            assert_non_null(strstr(r.body, "\"accepted\":1"));
            assert_non_null(strstr(r.body, "\"rejected\":1"));
            assert_non_null(strstr(r.body, "\"reason\":\"timestamp\""));
        } else
            expect_unavailable(&r, "connecting");
        http_free(&r);
    }
    assert_true(ok);
    assert_true(topic_has("ingest-test,host=fine")); /* the reader works: the good point is there */
    assert_false(topic_has("poison"));
    nops_api_destroy(api);
}

static void test_stop_while_ingest_waits(void **state)
{
    (void)state;
    nops_api *api = start_api(200);
    waiter w = {.port = nops_api_port(api)};
    broker(false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, post_ingest, &w), 0);
    await_waiting(w.port);
    nops_api_destroy(api); /* answers the waiting request, stops, drains the producer */
    pthread_join(t, NULL);
    assert_true(w.r.status != 202); /* 503 "stopping", or the connection closed */
    http_free(&w.r);
    broker(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_down_then_back),
        cmocka_unit_test(test_healthz_while_ingest_waits),
        cmocka_unit_test(test_stop_while_ingest_waits),
        cmocka_unit_test(test_out_of_time_points_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
