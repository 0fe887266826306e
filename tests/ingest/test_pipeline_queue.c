/*
 * test_pipeline_queue.c — the poller-to-worker queue holds at most pipeline.queue_mb of message
 * bytes, however many messages pipeline.queue_depth would let in, on a real (mock) cluster.
 *
 * A backlog is the case: the poller takes messages from librdkafka much faster than a worker
 * parses and detects them, so the queue fills to whichever bound comes first. Before the byte
 * bound, a worker's queue of 65536 messages could hold 65536 × the message size (64 GB of 1 MB
 * messages) while a backlog was caught up.
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

static rd_kafka_t *g_cluster; /* producer handle hosting the mock cluster */
static char g_boot[512];

static int setup(void **state)
{
    (void)state;
    static const tu_topic topics[] = {{"queue-bytes", 4}, {"queue-bytes-dlq", 1}};
    g_cluster = tu_mock_cluster(1, topics, sizeof topics / sizeof topics[0], g_boot,
                                sizeof g_boot);
    assert_non_null(g_cluster);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rd_kafka_destroy(g_cluster);
    return 0;
}

/* ~26 KB a message, ~2.6 MB a partition (below the mock partition's ~5 MiB: it drops older
 * batches), ~10 MB of backlog */
enum { PARTITIONS = 4, MESSAGES = 400, LINES = 500 };

/* MESSAGES messages of LINES line-protocol points each, round robin over the partitions, every
 * point of a series of its own (so that the worker, registering them, is much slower than the
 * poller); the size of the largest message into *max_len. */
static void produce_backlog(size_t *max_len)
{
    static char msg[LINES * 64];
    const long long t0 = (long long)(nops_wall_ns() / 1000000000 - 3600) * 1000000000ll;
    *max_len = 0;
    for (int m = 0; m < MESSAGES; m++) {
        size_t len = 0;
        for (int i = 0; i < LINES; i++)
            len += (size_t)snprintf(msg + len, sizeof msg - len,
                                    "%smem,host=h%06d,service=s%d used=%d %lld", i ? "\n" : "",
                                    m * LINES + i, i % 5, 1000 + (m + i) % 17,
                                    t0 + (long long)m * 1000000000ll);
        assert_int_equal(tu_produce(g_cluster, "queue-bytes", m % PARTITIONS, "k", msg, len), 0);
        *max_len = len > *max_len ? len : *max_len;
    }
    assert_int_equal(rd_kafka_flush(g_cluster, 10000), 0);
}

static void test_queue_holds_at_most_queue_mb(void **state)
{
    (void)state;
    size_t max_len = 0;
    produce_backlog(&max_len);
    char dir[] = "/tmp/nops-queue-XXXXXX";
    assert_non_null(mkdtemp(dir));
    nops_kafka_params kp;
    tu_kafka_params(&kp, g_boot, "g-queue-bytes");
    snprintf(kp.topic, sizeof kp.topic, "queue-bytes");
    snprintf(kp.dlq_topic, sizeof kp.dlq_topic, "queue-bytes-dlq");
    /* room for 4096 messages by count, 1 MiB by bytes: the byte bound is the one that binds */
    nops_pipeline_params pp = {.workers = 1, .queue_depth = 4096, .batch = 512, .flush_ms = 100,
                               .snapshot_ms = 1000, .max_future_s = 86400,
                               .series_memory_mb = 512, .queue_mb = 1};
    nops_sinks *sinks;
    nops_pipeline *p = tu_pipeline_new(dir, &kp, &pp, &sinks);
    tu_pipeline_start(p);
    nops_pipeline_stats st;
    for (int i = 0; i < 2400; i++) { /* 120 s: a loaded machine */
        nops_pipeline_get_stats(p, &st);
        if (st.messages >= MESSAGES)
            break;
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    }
    print_message("  %llu messages, queue peak %llu bytes (bound %d, largest message %zu)\n",
                  (unsigned long long)st.messages, (unsigned long long)st.queued_bytes_peak,
                  1 << 20, max_len);
    assert_int_equal(st.messages, MESSAGES); /* all through: the bound only slowed the poller */
    assert_int_equal(st.points, (uint64_t)MESSAGES * LINES);
    assert_int_equal(st.dlq, 0);
    assert_true(st.queued_bytes_peak > 0);
    /* below the bound plus the one message that crossed it */
    assert_true(st.queued_bytes_peak < ((uint64_t)1 << 20) + max_len);
    assert_int_equal(st.queued_bytes, 0); /* everything taken */
    nops_pipeline_stop(p, 15000);
    nops_pipeline_destroy(p);
    nops_sinks_destroy(sinks);
    assert_int_equal(tu_remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_holds_at_most_queue_mb),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
