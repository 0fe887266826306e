/*
 * kafkautil.h — the librdkafka mock cluster the integration tests host (header-only, tests only;
 * the cluster itself is made by kafka/'s nops_kafka_mock_new, as for the demo and the bench).
 */
#ifndef NOPS_TESTS_SUPPORT_KAFKAUTIL_H
#define NOPS_TESTS_SUPPORT_KAFKAUTIL_H

#include "kafka/kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h> /* the tests inject broker errors */
#include <stdio.h>

typedef nops_kafka_topic tu_topic;
typedef nops_kafka_log_fn tu_kafka_log_fn;

/*
 * A mock cluster of `brokers` brokers on loopback with the topics created (nops_kafka_mock_new,
 * the one home of the mock cluster), hosted by the returned producer handle (destroy it to stop
 * the cluster); its bootstrap servers into `boot`. The host's own log lines go to `log` (NULL:
 * the engine's logger). NULL when anything failed, the reason on stderr.
 */
static inline rd_kafka_t *tu_mock_cluster_log(int brokers, const tu_topic *topics, size_t n,
                                              char *boot, size_t cap, tu_kafka_log_fn log)
{
    const nops_kafka_prop props[] = {{"linger.ms", "2"}, {"log_level", "3"}};
    char err[256];
    rd_kafka_t *rk = nops_kafka_mock_new(brokers, topics, n, props, 2, log, boot, cap, err,
                                         sizeof err);
    if (!rk)
        fprintf(stderr, "mock cluster: %s\n", err);
    return rk;
}

static inline rd_kafka_t *tu_mock_cluster(int brokers, const tu_topic *topics, size_t n,
                                          char *boot, size_t cap)
{
    return tu_mock_cluster_log(brokers, topics, n, boot, cap, NULL);
}

#endif
