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
#include <string.h>

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

/* [kafka] settings for a pipeline in a test: brokers `boot`, topic neuralops.metrics, dead
 * letters to neuralops.metrics.dlq, consumer group `group`, a 6 s session timeout. */
static inline void tu_kafka_params(nops_kafka_params *kp, const char *boot, const char *group)
{
    memset(kp, 0, sizeof *kp);
    snprintf(kp->brokers, sizeof kp->brokers, "%s", boot);
    snprintf(kp->topic, sizeof kp->topic, "neuralops.metrics");
    snprintf(kp->group, sizeof kp->group, "%s", group);
    snprintf(kp->dlq_topic, sizeof kp->dlq_topic, "neuralops.metrics.dlq");
    kp->session_timeout_ms = 6000;
}

/* A consumer of `boot` in `group` that starts at the earliest offset, errors logged only;
 * NULL when it cannot be made. */
static inline rd_kafka_t *tu_consumer(const char *boot, const char *group)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", boot, err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(c, "group.id", group, err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof err) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(c, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk)
        rd_kafka_conf_destroy(c);
    return rk;
}

static inline rd_kafka_t *tu_mock_cluster(int brokers, const tu_topic *topics, size_t n,
                                          char *boot, size_t cap)
{
    return tu_mock_cluster_log(brokers, topics, n, boot, cap, NULL);
}

#endif
