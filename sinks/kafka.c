/*
 * kafka.c — the Kafka sink: signals and incidents as JSON on one topic (default
 * neuralops.signals), keyed by series or incident id, with a `kind` header.
 *
 * A write hands the record to the producer (which copies it). Delivery reports arrive while
 * flush() polls the producer: a failed delivery's payload is kept and produced again by the
 * next flush, and flush() succeeds only when nothing is outstanding and nothing failed, so the
 * pipeline never commits offsets for records the topic does not hold.
 */
#include "kafka/kafka.h"
#include "sinks/sinks.h"

#include <librdkafka/rdkafka.h>
#include <string.h>

typedef struct retry_rec {
    int kind;    /* NOPS_SINK_* */
    char *json;  /* owned copy */
    size_t len;
} retry_rec;

typedef struct kafka_sink {
    rd_kafka_t *rk;        /* producer */
    char topic[256];       /* destination */
    retry_rec *retry;      /* failed deliveries to produce again */
    size_t n_retry, cap_retry;
    size_t max_retry;      /* bound */
    uint64_t failed;       /* delivery failures since the last flush */
    uint64_t lost;         /* failed deliveries that could not be kept: flushes fail from then
                              on, so no offset past them is committed (a restart replays) */
} kafka_sink;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_sink *s = opaque;
    if (!m->err)
        return;
    s->failed++;
    if (s->n_retry == s->max_retry) { /* bounded: lost, and said so by every later flush */
        s->lost++;
        return;
    }
    if (s->n_retry == s->cap_retry) {
        size_t ncap = s->cap_retry ? s->cap_retry * 2 : 64;
        retry_rec *nr = nops_realloc(s->retry, ncap * sizeof *nr);
        if (!nr) {
            s->lost++;
            return;
        }
        s->retry = nr;
        s->cap_retry = ncap;
    }
    char *copy = nops_strndup(m->payload, m->len);
    if (!copy) {
        s->lost++;
        return;
    }
    s->retry[s->n_retry++] = (retry_rec){(int)(intptr_t)m->_private, copy, m->len};
    (void)rk;
}

static nops_err produce(kafka_sink *s, int kind, const char *json, size_t len)
{
    const char *kname = kind == NOPS_SINK_INCIDENT ? "incident" : "signal";
    rd_kafka_resp_err_t e = rd_kafka_producev(
        s->rk, RD_KAFKA_V_TOPIC(s->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE((void *)json, len), RD_KAFKA_V_HEADER("kind", kname, -1),
        RD_KAFKA_V_OPAQUE((void *)(intptr_t)kind), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return NOPS_FULL;
    return e ? NOPS_IO : NOPS_OK;
}

static nops_err kafka_write(void *self, int kind, const char *json, size_t len)
{
    return produce(self, kind, json, len);
}

static nops_err kafka_flush(void *self, char *errstr, size_t errstr_size)
{
    kafka_sink *s = self;
    rd_kafka_poll(s->rk, 0);
    size_t n = s->n_retry; /* produce earlier failures again */
    for (size_t i = 0; i < n; i++) {
        if (produce(s, s->retry[i].kind, s->retry[i].json, s->retry[i].len) != NOPS_OK) {
            memmove(s->retry, s->retry + i, (n - i) * sizeof *s->retry);
            s->n_retry = n - i;
            nops_errf(errstr, errstr_size, "producer queue refuses records");
            return NOPS_IO;
        }
        nops_free(s->retry[i].json);
    }
    if (s->n_retry > n) /* failures reported while producing the retries */
        memmove(s->retry, s->retry + n, (s->n_retry - n) * sizeof *s->retry);
    s->n_retry -= n;
    s->failed = 0;
    rd_kafka_resp_err_t e = rd_kafka_flush(s->rk, 5000);
    if (s->lost) {
        nops_errf(errstr, errstr_size, "%llu failed delivery(ies) to %s could not be kept for "
                  "another try: offsets are no longer committed; restart to replay them",
                  (unsigned long long)s->lost, s->topic);
        return NOPS_IO;
    }
    if (e || s->failed || s->n_retry) {
        nops_errf(errstr, errstr_size, "%s: %llu record(s) not delivered to %s",
                  e ? rd_kafka_err2str(e) : "delivery failed",
                  (unsigned long long)(rd_kafka_outq_len(s->rk) + s->n_retry), s->topic);
        return NOPS_IO;
    }
    return NOPS_OK;
}

static void kafka_destroy(void *self)
{
    kafka_sink *s = self;
    if (s->rk) {
        rd_kafka_flush(s->rk, 5000);
        rd_kafka_destroy(s->rk);
    }
    for (size_t i = 0; i < s->n_retry; i++)
        nops_free(s->retry[i].json);
    nops_free(s->retry);
    nops_free(s);
}

static const nops_sink_ops kafka_ops = {"kafka", kafka_write, kafka_flush, kafka_destroy, false};

nops_err nops_sinks_add_kafka(nops_sinks *set, const nops_kafka_params *kp, const char *topic,
                              char *errstr, size_t errstr_size)
{
    kafka_sink *s = nops_calloc(1, sizeof *s);
    if (!s) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    snprintf(s->topic, sizeof s->topic, "%s", topic);
    s->max_retry = 1000000;
    /* idempotent: a retried produce (librdkafka's own, after a lost ack) is not written twice */
    const nops_kafka_prop props[] = {{"linger.ms", "20"},
                                     {"acks", "all"},
                                     {"enable.idempotence", "true"},
                                     {"message.timeout.ms", "30000"}};
    char err[512];
    rd_kafka_conf_t *c =
        nops_kafka_conf_new(kp, NULL, "sink", props, sizeof props / sizeof props[0], err, sizeof err);
    if (!c) {
        nops_errf(errstr, errstr_size, "kafka sink: %s", err);
        nops_free(s);
        return NOPS_CONFIG;
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, s);
    if (!(s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err))) {
        rd_kafka_conf_destroy(c);
        nops_errf(errstr, errstr_size, "kafka sink: %s", err);
        nops_free(s);
        return NOPS_IO;
    }
    nops_err e = nops_sinks_add(set, &kafka_ops, s);
    if (e != NOPS_OK) {
        nops_errf(errstr, errstr_size, "too many sinks");
        kafka_destroy(s);
    }
    return e;
}
