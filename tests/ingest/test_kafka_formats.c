/*
 * test_kafka_formats.c — what arrives on the metrics topic from tools teams run, through the
 * real pipeline and a mock cluster: line protocol in seconds read with
 * kafka.timestamp_precision = s (and refused as 1970 without it), a prometheus-kafka-adapter
 * staleness marker ("value":"NaN") skipped and counted but not dead-lettered, and a message in
 * a shape no parser takes dead-lettered with reason unsupported_format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/testutil.h"
#include "tests/support/kafkautil.h"
#include "tests/support/pipeutil.h"

#include "ingest/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static rd_kafka_t *g_cluster;
static char g_boot[512];

static int setup(void **state)
{
    (void)state;
    static const tu_topic topics[] = {{"kf1", 2}, {"kf2", 2}, {"kfdlq", 1}};
    g_cluster = tu_mock_cluster(1, topics, sizeof topics / sizeof topics[0], g_boot,
                                sizeof g_boot);
    return g_cluster ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rd_kafka_destroy(g_cluster);
    return 0;
}

enum { T = 200, SPIKE = 130, MSGS = T + 2 };
static const long long T0_S = 1700000000; /* 2023-11-14: seconds, as Telegraf precision=1s */

/* `T` points of one series in seconds (a spike at SPIKE), a staleness marker, and an
 * unsupported message, produced by kcat to `topic`. */
static void produce(const char *topic, const char *dir)
{
    char path[256], cmd[1024];
    snprintf(path, sizeof path, "%s/in-%s.txt", dir, topic);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int t = 0; t < T; t++)
        fprintf(f, "a|cpu,host=h1 usage=%.1f %lld\n", t == SPIKE ? 180.0 : 100.0, T0_S + t);
    fprintf(f, "b|{\"name\":\"up\",\"value\":\"NaN\",\"labels\":{\"job\":\"node\"},"
               "\"timestamp\":\"2023-11-14T22:13:20Z\"}\n");
    fprintf(f, "c|[{\"name\":\"cpu\",\"value\":1}]\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "kcat -P -b '%s' -t %s -K '|' < %s", g_boot, topic, path);
    assert_int_equal(system(cmd), 0);
}

/* Run a pipeline on `topic` with precision `prec` until it has taken every message. */
static void run(const char *topic, int prec, const char *dir, nops_pipeline_stats *st)
{
    nops_kafka_params kp;
    tu_kafka_params(&kp, g_boot, topic);
    snprintf(kp.topic, sizeof kp.topic, "%s", topic);
    snprintf(kp.dlq_topic, sizeof kp.dlq_topic, "kfdlq");
    kp.timestamp_precision = prec;
    nops_pipeline_params pp = {1, 4096, 512, 100, 0, 1000, 0, 0, 0, 0};
    pp.max_past_s = 20ll * 365 * 86400; /* 2023 is in, 1970 is out */
    nops_sinks *sinks;
    nops_pipeline *p = tu_pipeline_new(dir, &kp, &pp, &sinks);
    tu_pipeline_start(p);
    for (int i = 0; i < 1200; i++) { /* up to 120 s on a loaded machine */
        nops_pipeline_get_stats(p, st);
        if (st->messages >= MSGS && st->dlq >= 1)
            break;
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    assert_int_equal(nops_pipeline_stop(p, 10000), NOPS_OK);
    nops_pipeline_get_stats(p, st);
    nops_pipeline_destroy(p);
    nops_sinks_destroy(sinks);
}

static void test_precision_stale_and_unsupported(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-kfmt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    produce("kf1", dir);
    nops_pipeline_stats st;
    run("kf1", 3 /* s */, dir, &st);
    assert_int_equal(st.messages, MSGS);
    assert_int_equal(st.points, T);
    assert_int_equal(st.rejected[NOPS_REJECT_TIMESTAMP], 0);
    assert_int_equal(st.stale, 1);                           /* counted ... */
    assert_int_equal(st.rejected[NOPS_REJECT_VALUE], 0);     /* ... not an error */
    assert_int_equal(st.rejected[NOPS_REJECT_FORMAT], 1);
    assert_int_equal(st.dlq, 1);                             /* the unsupported one alone */
    /* the spike's signal carries its time read in seconds */
    char path[300], ts[40], needle[80];
    snprintf(path, sizeof path, "%s/signals.jsonl", dir);
    char *sigs = tu_read_file(path);
    assert_non_null(sigs);
    nops_format_ts((T0_S + SPIKE) * 1000000000ll, ts, sizeof ts);
    snprintf(needle, sizeof needle, "\"ts\":\"%s\"", ts);
    if (!strstr(sigs, needle))
        fail_msg("no signal at %s in %s", ts, sigs);
    free(sigs);
    /* the dead letter says why */
    char cmd[1024];
    snprintf(path, sizeof path, "%s/dlq.txt", dir);
    snprintf(cmd, sizeof cmd, "kcat -C -b '%s' -t kfdlq -o beginning -e -q -f '%%h|%%s\\n' > %s",
             g_boot, path);
    assert_int_equal(system(cmd), 0);
    char *dlq = tu_read_file(path);
    assert_non_null(strstr(dlq, "reason=unsupported_format"));
    assert_non_null(strstr(dlq, "|[{\"name\":\"cpu\",\"value\":1}]"));
    assert_null(strstr(dlq, "NaN")); /* the marker was not dead-lettered */
    free(dlq);

    /* the same seconds read as nanoseconds (the default) are 1970: refused by max_past_s */
    char dir2[] = "/tmp/nops-kfmt-XXXXXX";
    assert_non_null(mkdtemp(dir2));
    produce("kf2", dir2);
    run("kf2", 0 /* ns */, dir2, &st);
    assert_int_equal(st.messages, MSGS);
    assert_int_equal(st.points, 0);
    assert_int_equal(st.rejected[NOPS_REJECT_TIMESTAMP], T);
    tu_remove_tree(dir);
    tu_remove_tree(dir2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precision_stale_and_unsupported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
