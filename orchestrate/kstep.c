/*
 * kstep.c — `kafka` steps of a playbook: the step's message goes to a topic that remote runtime
 * agents consume. One idempotent producer (acks=all) per orchestrator; a step waits for the
 * broker's acknowledgement of its message, within the playbook's deadline.
 */
#include "kafka/kafka.h"
#include "orchestrate/orch_int.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct nops_kstep {
    rd_kafka_t *rk;
};

/* Delivery of one message: whoever of the waiter and the delivery callback comes second frees
 * it, so a waiter that gave up at its deadline leaves nothing dangling. */
enum { PENDING, DELIVERED, ABANDONED };
typedef struct delivery {
    atomic_int state;
    rd_kafka_resp_err_t err;
} delivery;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    delivery *d = m->_private;
    if (!d)
        return;
    d->err = m->err;
    if (atomic_exchange(&d->state, DELIVERED) == ABANDONED)
        free(d);
}

nops_kstep *nops__kstep_new(const char *brokers, const nops_kafka_params *kp, char *errstr,
                            size_t errstr_size)
{
    if (!brokers || !*brokers) {
        nops_errf(errstr, errstr_size, "kafka steps need kafka.brokers");
        return NULL;
    }
    const nops_kafka_prop props[] = {{"acks", "all"},
                                     {"enable.idempotence", "true"},
                                     {"allow.auto.create.topics", "false"}, /* a typo: error */
                                     {"linger.ms", "0"},
                                     {"message.timeout.ms", "30000"},
                                     {"log_level", "3"}};
    char err[512];
    rd_kafka_conf_t *c =
        nops_kafka_conf_new(kp, brokers, "kafka-step", props, sizeof props / sizeof props[0], err, sizeof err);
    if (!c) {
        nops_errf(errstr, errstr_size, "kafka steps: %s", err);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk) {
        nops_errf(errstr, errstr_size, "kafka steps: %s", err);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    nops_kstep *k = nops_calloc(1, sizeof *k);
    if (!k) {
        rd_kafka_destroy(rk);
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    k->rk = rk;
    return k;
}

void nops__kstep_destroy(nops_kstep *k)
{
    if (!k)
        return;
    rd_kafka_flush(k->rk, 5000);
    rd_kafka_destroy(k->rk);
    nops_free(k);
}

static int ms_left(int64_t deadline_ns)
{
    int64_t ms = (deadline_ns - (int64_t)nops_now_ns()) / 1000000;
    return ms < 0 ? 0 : ms > 600000 ? 600000 : (int)ms;
}

nops_err nops__kstep_publish(nops_kstep *k, const char *topic, const char *key,
                             const json_t *value, int64_t deadline_ns, char *why,
                             size_t why_size)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
    delivery *d = calloc(1, sizeof *d);
    if (!text || !d) {
        free(text);
        free(d);
        snprintf(why, why_size, "out of memory");
        return NOPS_NOMEM;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        k->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE(text, strlen(text)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    free(text);
    if (e) {
        free(d);
        snprintf(why, why_size, "cannot publish to %s: %s", topic, rd_kafka_err2str(e));
        return NOPS_IO;
    }
    while (atomic_load(&d->state) == PENDING && ms_left(deadline_ns) > 0)
        rd_kafka_poll(k->rk, ms_left(deadline_ns) < 50 ? ms_left(deadline_ns) : 50);
    if (atomic_exchange(&d->state, ABANDONED) == PENDING) {
        snprintf(why, why_size, "no acknowledgement from %s before the playbook's timeout (the "
                 "message may still be delivered)", topic);
        return NOPS_IO; /* the delivery callback frees d */
    }
    e = d->err;
    free(d);
    if (e) {
        snprintf(why, why_size, "publishing to %s failed: %s", topic, rd_kafka_err2str(e));
        return NOPS_IO;
    }
    return NOPS_OK;
}

nops_err nops__kstep_check(nops_kstep *k, const char *topic, int64_t deadline_ns, char *why,
                           size_t why_size)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(k->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int left = ms_left(deadline_ns);
    rd_kafka_resp_err_t e = t ? rd_kafka_metadata(k->rk, 0, t, &md, left > 10000 ? 10000 : left)
                              : rd_kafka_last_error();
    if (!e && md && md->topic_cnt == 1)
        e = md->topics[0].err;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (t)
        rd_kafka_topic_destroy(t);
    if (e) {
        snprintf(why, why_size, "topic %s is not available: %s", topic, rd_kafka_err2str(e));
        return NOPS_IO;
    }
    return NOPS_OK;
}
