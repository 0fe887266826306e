/*
 * kafkautil.h — the librdkafka mock cluster the integration tests host (header-only, tests only).
 */
#ifndef NOPS_TESTS_SUPPORT_KAFKAUTIL_H
#define NOPS_TESTS_SUPPORT_KAFKAUTIL_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>

typedef struct tu_topic {
    const char *name;
    int partitions;
} tu_topic;

typedef void (*tu_kafka_log_fn)(const rd_kafka_t *rk, int level, const char *fac,
                                const char *buf);

/*
 * A mock cluster of `brokers` brokers on loopback with the topics created, hosted by the
 * returned producer handle (destroy it to stop the cluster); its bootstrap servers into `boot`.
 * The host's own log lines go to `log` (NULL: errors to stderr). NULL when anything failed.
 */
static inline rd_kafka_t *tu_mock_cluster_log(int brokers, const tu_topic *topics, size_t n,
                                              char *boot, size_t cap, tu_kafka_log_fn log)
{
    char err[256], nb[16];
    snprintf(nb, sizeof nb, "%d", brokers);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "test.mock.num.brokers", nb, err, sizeof err);
    rd_kafka_conf_set(c, "linger.ms", "2", err, sizeof err);
    rd_kafka_conf_set(c, "log_level", "3", err, sizeof err);
    if (log)
        rd_kafka_conf_set_log_cb(c, log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    rd_kafka_mock_cluster_t *mc = rk ? rd_kafka_handle_mock_cluster(rk) : NULL;
    for (size_t i = 0; mc && i < n; i++)
        if (rd_kafka_mock_topic_create(mc, topics[i].name, topics[i].partitions, 1) != 0)
            mc = NULL;
    if (!mc) {
        if (rk)
            rd_kafka_destroy(rk);
        else
            rd_kafka_conf_destroy(c);
        return NULL;
    }
    snprintf(boot, cap, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    return rk;
}

static inline rd_kafka_t *tu_mock_cluster(int brokers, const tu_topic *topics, size_t n,
                                          char *boot, size_t cap)
{
    return tu_mock_cluster_log(brokers, topics, n, boot, cap, NULL);
}

#endif
