/*
 * kafkautil.h — the librdkafka mock cluster the integration tests host (header-only, tests only;
 * the cluster itself is made by kafka/'s nops_kafka_mock_new, as for the demo and the bench).
 */
#ifndef NOPS_TESTS_SUPPORT_KAFKAUTIL_H
#define NOPS_TESTS_SUPPORT_KAFKAUTIL_H

#include "kafka/kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h> /* the tests inject broker errors */
#include <pthread.h>
#include <stdbool.h>
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

/* Produce a copy of `len` bytes at `value` to `topic` — to partition `part`, or by `key` with
 * RD_KAFKA_PARTITION_UA (key NULL: none) — waiting while the producer's queue is full;
 * librdkafka's answer otherwise (0: queued). */
static inline rd_kafka_resp_err_t tu_produce(rd_kafka_t *rk, const char *topic, int32_t part,
                                             const char *key, const void *value, size_t len)
{
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_VALUE((void *)value, len),
                                  RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk, 10);
    return e;
}

static inline rd_kafka_t *tu_mock_cluster(int brokers, const tu_topic *topics, size_t n,
                                          char *boot, size_t cap)
{
    return tu_mock_cluster_log(brokers, topics, n, boot, cap, NULL);
}

/*
 * The engine's log lines captured in memory (nops_log_set_sink), at debug level, e.g. to see
 * the configuration a client was given: with the librdkafka property debug=conf, each client
 * logs its configuration as rd_kafka_new makes it, one property a line, the client's name
 * (neuralops-ROLE#producer-N) in front. The first 64 KiB are kept.
 */
typedef struct tu_logcap {
    pthread_mutex_t mu; /* lines arrive from librdkafka's threads too */
    size_t n;           /* bytes kept */
    char buf[1 << 16];  /* the lines, each ending in '\n' */
} tu_logcap;

static inline void tu_logcap_line(void *ud, nops_log_level level, const char *line)
{
    (void)level;
    tu_logcap *lc = ud;
    pthread_mutex_lock(&lc->mu);
    size_t len = strlen(line);
    if (lc->n + len + 2 <= sizeof lc->buf) {
        memcpy(lc->buf + lc->n, line, len);
        lc->n += len;
        lc->buf[lc->n++] = '\n';
        lc->buf[lc->n] = '\0';
    }
    pthread_mutex_unlock(&lc->mu);
}

static inline void tu_logcap_start(tu_logcap *lc)
{
    memset(lc, 0, sizeof *lc);
    pthread_mutex_init(&lc->mu, NULL);
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_TEXT);
    nops_log_set_sink(tu_logcap_line, lc);
}

static inline void tu_logcap_stop(tu_logcap *lc)
{
    nops_log_set_sink(NULL, NULL);
    nops_log_configure(NOPS_LOG_INFO, NOPS_LOG_TEXT);
    pthread_mutex_destroy(&lc->mu);
}

/* True when one captured line holds both `a` and `b`. */
static inline bool tu_logcap_has(const tu_logcap *lc, const char *a, const char *b)
{
    for (const char *p = lc->buf; (p = strstr(p, a)); p++) {
        const char *bol = p;
        while (bol > lc->buf && bol[-1] != '\n')
            bol--;
        const char *eol = strchr(p, '\n');
        const char *hit = strstr(bol, b);
        if (hit && (!eol || hit < eol))
            return true;
    }
    return false;
}

#endif
