/*
 * ingest.c — POST /ingest: metrics in either input format for producers without Kafka.
 *
 * The body is parsed here (the same parsers as the pipeline), so a bad line is answered at once
 * with its line number and reason while the good points of the same body go on. Each good point
 * is written back as one line-protocol line (escaped) and produced to the metrics topic keyed
 * by its measurement and sorted tags — the keying DESIGN.md asks of every producer, so a series
 * stays on one partition — and the answer waits until the broker has acknowledged them all:
 * 202 means the points are in Kafka, consumed like any others.
 */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct delivery {
    atomic_uint failed;
} delivery;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    delivery *d = m->_private;
    if (d && m->err)
        atomic_fetch_add(&d->failed, 1);
}

nops_err nops__api_producer(nops_api *api, char *errstr, size_t errstr_size)
{
    if (!api->d.brokers)
        return NOPS_OK;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char err[512];
    const char *props[][2] = {{"bootstrap.servers", api->d.brokers},
                              {"linger.ms", "1"},
                              {"compression.codec", "lz4"},
                              {"message.timeout.ms", "10000"},
                              {"enable.idempotence", "true"}};
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        if (rd_kafka_conf_set(c, props[i][0], props[i][1], err, sizeof err) != RD_KAFKA_CONF_OK)
            goto bad;
    if (!nops_kafka_conf_extra(c, api->d.kafka_extra, err, sizeof err))
        goto bad;
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    if (!(api->producer = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err)))
        goto bad;
    snprintf(api->topic, sizeof api->topic, "%s",
             api->d.metrics_topic ? api->d.metrics_topic : "neuralops.metrics");
    return NOPS_OK;
bad:
    rd_kafka_conf_destroy(c);
    nops_errf(errstr, errstr_size, "the /ingest producer: %s", err);
    return NOPS_CONFIG;
}

/* ---- points → escaped line protocol -------------------------------------------------------- */

static bool put_escaped(nops_buf *b, const char *s, size_t n, const char *special)
{
    if (nops_buf_reserve(b, 2 * n + 1) != NOPS_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (strchr(special, s[i]) && s[i])
            b->b[b->len++] = '\\';
        b->b[b->len++] = s[i];
    }
    return true;
}

static bool put_raw(nops_buf *b, const char *s, size_t n)
{
    if (nops_buf_reserve(b, n + 1) != NOPS_OK)
        return false;
    memcpy(b->b + b->len, s, n);
    b->len += n;
    return true;
}

typedef struct ingest_ctx {
    nops_api *api;
    delivery d;
    nops_buf line;
    uint32_t produced;
    rd_kafka_resp_err_t err; /* first produce error */
} ingest_ctx;

/* measurement,sorted tags → the key; then " field=value ts" → the whole line. */
static bool encode(const nops_point *pt, nops_buf *b, size_t *key_len)
{
    size_t order[64], n = pt->n_tags < 64 ? pt->n_tags : 64;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++) /* insertion sort by key: few tags */
        for (size_t j = i; j > 0; j--) {
            const nops_ingest_tag *x = &pt->tags[order[j - 1]], *y = &pt->tags[order[j]];
            size_t m = x->key_len < y->key_len ? x->key_len : y->key_len;
            int c = memcmp(x->key, y->key, m);
            if (c < 0 || (c == 0 && x->key_len <= y->key_len))
                break;
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    b->len = 0;
    bool ok = put_escaped(b, pt->measurement, pt->measurement_len, ", ");
    for (size_t i = 0; ok && i < n; i++) {
        const nops_ingest_tag *t = &pt->tags[order[i]];
        ok = put_raw(b, ",", 1) && put_escaped(b, t->key, t->key_len, ",= ") &&
             put_raw(b, "=", 1) && put_escaped(b, t->value, t->value_len, ",= ");
    }
    *key_len = b->len;
    char num[64];
    int nl = snprintf(num, sizeof num, "=%.17g %lld", pt->value, (long long)pt->ts_ns);
    ok = ok && put_raw(b, " ", 1) &&
         (pt->field_len ? put_escaped(b, pt->field, pt->field_len, ",= ")
                        : put_raw(b, "value", 5)) &&
         put_raw(b, num, (size_t)nl);
    return ok;
}

static bool on_point(void *ud, const nops_point *pt)
{
    ingest_ctx *x = ud;
    size_t key_len;
    if (!encode(pt, &x->line, &key_len)) {
        x->err = RD_KAFKA_RESP_ERR__FAIL;
        return false;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        x->api->producer, RD_KAFKA_V_TOPIC(x->api->topic),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(x->line.b, x->line.len),
        RD_KAFKA_V_KEY(x->line.b, key_len), RD_KAFKA_V_OPAQUE(&x->d), RD_KAFKA_V_END);
    if (e) {
        x->err = e;
        return false;
    }
    x->produced++;
    return true;
}

void nops__api_ingest(nops_api *api, struct MHD_Connection *c, request *rq, response *res)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    static const char *types[] = {"text/plain", "application/json", "application/x-ndjson"};
    bool type_ok = !ct;
    for (size_t i = 0; !type_ok && i < 3; i++)
        type_ok = strncasecmp(ct, types[i], strlen(types[i])) == 0;
    if (!type_ok) {
        nops__api_error(res, 415, "send line protocol as text/plain or JSON as "
                                  "application/json");
        return;
    }
    if (!api->producer) {
        nops__api_error(res, 503, "no Kafka producer is configured for /ingest");
        return;
    }
    ingest_ctx x = {.api = api};
    nops_parse_stats ps = {0};
    nops_ingest_parse(rq->body.b ? rq->body.b : "", rq->body.len, nops_wall_ns(), on_point, &x,
                      &ps);
    rd_kafka_flush(api->producer, 10000); /* 202 = acknowledged by the broker */
    nops_free(x.line.b);
    uint32_t failed = atomic_load(&x.d.failed);
    atomic_fetch_add(&api->m.ingest_points, x.produced - failed);
    atomic_fetch_add(&api->m.ingest_rejected, ps.rejected);
    if (x.err || failed) {
        nops__api_error(res, 503, "Kafka refused points (%s): %u of %u delivered; send the "
                        "body again (points are idempotent by series and time)",
                        x.err ? rd_kafka_err2str(x.err) : "delivery failed",
                        x.produced - failed, x.produced + (x.err ? 1 : 0));
        return;
    }
    if (x.produced == 0) {
        if (ps.rejected)
            nops__api_error(res, 400, "no point accepted: line %u: %s (%s)", ps.first_bad,
                            ps.detail ? ps.detail : "rejected",
                            nops_ingest_reject_name(ps.reason));
        else
            nops__api_error(res, 400, "the body holds no point");
        return;
    }
    json_t *o = json_pack("{s:I, s:I}", "accepted", (json_int_t)x.produced, "rejected",
                          (json_int_t)ps.rejected);
    if (o && ps.rejected)
        json_object_set_new(o, "first_error",
                            json_pack("{s:I, s:s, s:s}", "line", (json_int_t)ps.first_bad,
                                      "reason", nops_ingest_reject_name(ps.reason), "detail",
                                      ps.detail ? ps.detail : ""));
    if (o)
        nops__api_json(res, 202, o);
    else
        nops__api_error(res, 500, "out of memory");
}
