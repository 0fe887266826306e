/*
 * test_thresholds.c — nops_pipeline_set_thresholds on a running pipeline (what SIGHUP does to
 * serve's detectors): the mock cluster, noisy series with a spike every 100 points. At the
 * start every spike makes a signal; with thresholds raised far above any spike the next spike
 * makes none, though the series keep their state; with the thresholds derived from
 * false_alarm_points again the spike after that does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/support/kafkautil.h"
#include "tests/support/pipeutil.h"

#include "ingest/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOSTS 4

static rd_kafka_t *g_cluster;
static char g_boot[512];

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

/* Noise in [-1, 1) from (host, t), the same every run. */
static double noise(int host, int t)
{
    uint64_t x = (uint64_t)host * 0x9E3779B97F4A7C15ull + (uint64_t)t * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    return (double)(x >> 11) / 4503599627370496.0 - 1.0;
}

/* Ticks [from, to) of every host, one message per tick and host; a spike of +60 at t % 100 ==
 * 50 from t = 150 on. */
static void produce(int from, int to)
{
    char line[160], key[8];
    for (int t = from; t < to; t++)
        for (int h = 0; h < HOSTS; h++) {
            double v = 100.0 + noise(h, t) + ((t % 100) == 50 && t >= 150 ? 60.0 : 0.0);
            int n = snprintf(line, sizeof line, "cpu,host=t%d usage=%.4f %lld", h, v,
                             1700000000000000000ll + (long long)t * 1000000000ll);
            snprintf(key, sizeof key, "t%d", h);
            assert_int_equal(tu_produce(g_cluster, "th", RD_KAFKA_PARTITION_UA,
                                        key, line, (size_t)n), 0);
        }
    assert_int_equal(rd_kafka_flush(g_cluster, 30000), 0);
}

/* Wait (generous: a loaded machine) until the pipeline has detected on `points` points. */
static void await_points(nops_pipeline *p, uint64_t points, nops_pipeline_stats *st)
{
    for (int i = 0; i < 3000; i++) {
        nops_pipeline_get_stats(p, st);
        if (st->points >= points)
            return;
        sleep_ms(50);
    }
    fail_msg("the pipeline detected on %llu of %llu points within 150 s",
             (unsigned long long)st->points, (unsigned long long)points);
}

static void test_thresholds_change_while_running(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-thr-XXXXXX";
    assert_non_null(mkdtemp(dir));
    nops_kafka_params kp;
    tu_kafka_params(&kp, g_boot, "g-thr");
    snprintf(kp.topic, sizeof kp.topic, "th");
    snprintf(kp.dlq_topic, sizeof kp.dlq_topic, "th.dlq");
    nops_pipeline_params pp = {2, 4096, 512, 100, 1000000, 1000, 0, 0, 0, 0};
    nops_sinks *sinks;
    nops_pipeline *p = tu_pipeline_new(dir, &kp, &pp, &sinks);
    tu_pipeline_start(p);
    nops_detect_params dp; /* the thresholds it runs with: the defaults */
    nops_detect_params_default(&dp);
    char err[512];
    nops_pipeline_stats st;

    produce(0, 200); /* one spike per host, at t = 150 */
    await_points(p, 200 * HOSTS, &st);
    const uint64_t first = st.signals;
    print_message("  defaults: %llu signals\n", (unsigned long long)first);
    assert_true(first >= HOSTS); /* every spike seen */

    nops_detect_params high = dp;
    high.z_threshold = high.ewma_threshold = high.cusum_threshold = 1e6;
    assert_int_equal(nops_pipeline_set_thresholds(p, &high, err, sizeof err), NOPS_OK);
    produce(200, 300); /* the spikes at t = 250 */
    await_points(p, 300 * HOSTS, &st);
    print_message("  thresholds 1e6: %llu signals\n", (unsigned long long)st.signals);
    assert_int_equal(st.signals, first); /* none: the new thresholds are in force */

    /* refused settings change nothing */
    nops_detect_params bad = dp;
    bad.z_threshold = 0.01;
    assert_int_equal(nops_pipeline_set_thresholds(p, &bad, err, sizeof err), NOPS_CONFIG);
    assert_non_null(strstr(err, "at least 0.1"));

    assert_int_equal(nops_pipeline_set_thresholds(p, &dp, err, sizeof err), NOPS_OK);
    produce(300, 400); /* the spikes at t = 350 */
    await_points(p, 400 * HOSTS, &st);
    print_message("  derived again: %llu signals\n", (unsigned long long)st.signals);
    assert_true(st.signals >= first + HOSTS);

    assert_int_equal(nops_pipeline_stop(p, 15000), NOPS_OK);
    nops_pipeline_destroy(p);
    nops_sinks_destroy(sinks);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    static const tu_topic topics[] = {{"th", 2}, {"th.dlq", 1}};
    g_cluster = tu_mock_cluster(1, topics, 2, g_boot, sizeof g_boot);
    return g_cluster ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rd_kafka_destroy(g_cluster);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thresholds_change_while_running),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
