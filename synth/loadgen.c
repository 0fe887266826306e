/*
 * loadgen.c — the synthetic fleet of loadgen.h.
 *
 * Values: cpu usage_user ~ 30 ± 2 with a slow daily wave, usage_system ~ 8 ± 1, latency ~ 120 ±
 * 4 ms, error_rate ~ 0.5 ± 0.05 %, Gaussian noise from a per-run xorshift generator. Data time
 * advances tick_s per tick, whatever the real pacing, so a demo can replay hours of a fleet in
 * seconds while timestamps stay realistic; a run of known length (seconds and rate given) starts
 * that many ticks in the past and ends at the wall clock, so it never runs into the pipeline's
 * bound on future timestamps (pipeline.max_future_s); an open-ended run starts at the wall clock.
 */
#include "synth/loadgen.h"
#include "kafka/kafka.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TRUTH 256

static const char *services[] = {"checkout", "search", "auth", "payments", "catalog", "ledger"};
#define N_SERVICES 6
static const char *regions[] = {"eu-west-1", "us-east-1"};

typedef enum { INC_SPIKE, INC_REGRESSION, INC_CPU, INC_ERRORS, INC_KINDS } inc_kind;
static const char *inc_names[] = {"latency_spike", "deploy_regression", "cpu_saturation",
                                  "error_burst"};
static const uint32_t inc_ticks[] = {1, 30, 20, 10};

typedef struct active_inc {
    inc_kind kind;
    int service;      /* index */
    int host;         /* index, or -1 for the whole service */
    uint64_t until;   /* last tick (inclusive) */
} active_inc;

struct loadgen {
    loadgen_opts o;
    rd_kafka_t *rk;            /* producer */
    bool own_rk;               /* we created it */
    uint32_t hosts;            /* fleet size */
    uint64_t rng;              /* xorshift state */
    uint64_t points, messages; /* produced */
    loadgen_injected truth[MAX_TRUTH];
    size_t n_truth;
    active_inc active[MAX_TRUTH];
    size_t n_active;
    FILE *truth_f;             /* ground truth output */
    bool truth_failed;         /* a write to it failed (logged once) */
};

static double urand(loadgen *lg)
{
    lg->rng ^= lg->rng << 13;
    lg->rng ^= lg->rng >> 7;
    lg->rng ^= lg->rng << 17;
    return (double)(lg->rng >> 11) * (1.0 / 9007199254740992.0);
}

static double nrand(loadgen *lg)
{
    double u1 = urand(lg), u2 = urand(lg);
    return sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300)) * cos(6.283185307179586 * u2);
}

loadgen *loadgen_new(const loadgen_opts *o, rd_kafka_t *producer, char *errstr, size_t sz)
{
    loadgen *lg = nops_calloc(1, sizeof *lg);
    if (!lg) {
        nops_errf(errstr, sz, "out of memory");
        return NULL;
    }
    lg->o = *o;
    lg->hosts = o->series / 4 ? o->series / 4 : 1;
    lg->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)nops_wall_ns();
    if (lg->o.tick_s <= 0)
        lg->o.tick_s = 10;
    if (o->truth && !(lg->truth_f = nops_file_fopen(o->truth, "w"))) {
        nops_errf(errstr, sz, "cannot write %s: %s", o->truth, strerror(errno));
        nops_free(lg);
        return NULL;
    }
    if (producer) {
        lg->rk = producer;
        return lg;
    }
    const nops_kafka_prop props[] = {{"linger.ms", "5"},
                                     {"batch.num.messages", "10000"},
                                     {"compression.codec", "lz4"},
                                     {"queue.buffering.max.messages", "1000000"}};
    rd_kafka_conf_t *c =
        nops_kafka_conf_new(o->kafka, o->brokers, "loadgen", props, sizeof props / sizeof props[0], errstr, sz);
    if (!c || !(lg->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sz))) {
        if (c)
            rd_kafka_conf_destroy(c);
        loadgen_destroy(lg);
        return NULL;
    }
    lg->own_rk = true;
    return lg;
}

void loadgen_destroy(loadgen *lg)
{
    if (!lg)
        return;
    if (lg->own_rk) {
        rd_kafka_flush(lg->rk, 5000);
        rd_kafka_destroy(lg->rk);
    }
    if (lg->truth_f)
        fclose(lg->truth_f);
    nops_free(lg);
}

static void inject(loadgen *lg, uint64_t tick, int64_t ts)
{
    if (lg->n_truth == MAX_TRUTH)
        return;
    inc_kind k = (inc_kind)(lg->n_truth % INC_KINDS);
    active_inc *a = &lg->active[lg->n_active++];
    a->kind = k;
    a->service = (int)(urand(lg) * N_SERVICES) % N_SERVICES;
    /* a host of that service: hosts are assigned to services round-robin */
    uint32_t per_service = (lg->hosts + N_SERVICES - 1 - (uint32_t)a->service) / N_SERVICES;
    uint32_t pick = per_service ? (uint32_t)(urand(lg) * per_service) % per_service : 0;
    a->host = (k == INC_REGRESSION || k == INC_ERRORS) ? -1 : (int)(pick * N_SERVICES + (uint32_t)a->service);
    a->until = tick + inc_ticks[k] - 1;
    loadgen_injected *t = &lg->truth[lg->n_truth++];
    snprintf(t->kind, sizeof t->kind, "%s", inc_names[k]);
    snprintf(t->service, sizeof t->service, "%s", services[a->service]);
    if (a->host < 0)
        snprintf(t->host, sizeof t->host, "*");
    else
        snprintf(t->host, sizeof t->host, "%s-%03d", services[a->service], a->host);
    snprintf(t->metric, sizeof t->metric, "%s",
             k == INC_CPU ? "cpu_usage_user" : k == INC_ERRORS ? "http_error_rate"
                                                               : "http_latency_p50_ms");
    t->start_ns = ts;
    t->end_ns = ts + (int64_t)((inc_ticks[k] - 1) * lg->o.tick_s * 1e9);
    if (lg->truth_f) {
        char s[40], e[40];
        nops_format_ts(t->start_ns, s, sizeof s);
        nops_format_ts(t->end_ns, e, sizeof e);
        fprintf(lg->truth_f,
                "{\"kind\":\"%s\",\"service\":\"%s\",\"host\":\"%s\",\"metric\":\"%s\","
                "\"start\":\"%s\",\"end\":\"%s\"}\n",
                t->kind, t->service, t->host, t->metric, s, e);
        if (fflush(lg->truth_f) != 0 && !lg->truth_failed) {
            lg->truth_failed = true; /* once: the load goes on without its ground truth */
            NOPS_WARN("loadgen", "cannot write %s: %s", lg->o.truth, strerror(errno));
        }
    }
}

/* Offsets an active incident adds to a host's four values this tick. */
static void effects(loadgen *lg, uint32_t h, double *lat, double *cpu, double *err_scale)
{
    for (size_t i = 0; i < lg->n_active; i++) {
        const active_inc *a = &lg->active[i];
        if ((int)(h % N_SERVICES) != a->service || (a->host >= 0 && (uint32_t)a->host != h))
            continue;
        switch (a->kind) {
        case INC_SPIKE:
            *lat += 160.0;
            break;
        case INC_REGRESSION:
            *lat += 60.0;
            break;
        case INC_CPU:
            *cpu += 55.0;
            break;
        case INC_ERRORS:
            *err_scale = 12.0;
            break;
        default:
            break;
        }
    }
}

static int format_host(loadgen *lg, uint32_t h, int64_t ts, char *buf, size_t cap)
{
    const char *svc = services[h % N_SERVICES], *reg = regions[(h / N_SERVICES) % 2];
    double lat = 120.0 + 4.0 * nrand(lg), cpu = 30.0 + 2.0 * nrand(lg), err_scale = 1.0;
    effects(lg, h, &lat, &cpu, &err_scale);
    double sys = 8.0 + nrand(lg);
    double er = fabs(0.5 + 0.05 * err_scale * nrand(lg) + (err_scale > 1 ? 1.5 : 0.0));
    if (lg->o.json)
        return snprintf(buf, cap,
                        "{\"metrics\":[{\"name\":\"cpu\",\"tags\":{\"host\":\"%s-%03u\","
                        "\"service\":\"%s\",\"region\":\"%s\"},\"fields\":{\"usage_user\":%.3f,"
                        "\"usage_system\":%.3f},\"timestamp\":%lld},{\"name\":\"http\",\"tags\":"
                        "{\"host\":\"%s-%03u\",\"service\":\"%s\",\"region\":\"%s\"},\"fields\":"
                        "{\"latency_p50_ms\":%.3f,\"error_rate\":%.4f},\"timestamp\":%lld}]}",
                        svc, h, svc, reg, cpu, sys, (long long)(ts / 1000000), svc, h, svc, reg,
                        lat, er, (long long)(ts / 1000000));
    return snprintf(buf, cap,
                    "cpu,host=%s-%03u,service=%s,region=%s usage_user=%.3f,usage_system=%.3f "
                    "%lld\nhttp,host=%s-%03u,service=%s,region=%s latency_p50_ms=%.3f,"
                    "error_rate=%.4f %lld",
                    svc, h, svc, reg, cpu, sys, (long long)ts, svc, h, svc, reg, lat, er,
                    (long long)ts);
}

static nops_err produce(loadgen *lg, const char *buf, int len, uint32_t h, atomic_bool *stop)
{
    char key[48];
    int kl = snprintf(key, sizeof key, "%s-%03u", services[h % N_SERVICES], h);
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            lg->rk, RD_KAFKA_V_TOPIC(lg->o.topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)buf, (size_t)len), RD_KAFKA_V_KEY(key, (size_t)kl),
            RD_KAFKA_V_END);
        if (!e)
            return NOPS_OK;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            NOPS_ERROR("loadgen", "produce failed: %s", rd_kafka_err2str(e));
            return NOPS_IO;
        }
        rd_kafka_poll(lg->rk, 10); /* local queue full: let deliveries drain */
        if (stop && atomic_load(stop))
            return NOPS_OK;
    }
}

nops_err loadgen_run(loadgen *lg, atomic_bool *stop)
{
    const double tick_rate = lg->o.rate > 0 ? lg->o.rate / (4.0 * lg->hosts) : 0;
    const uint64_t total_ticks = lg->o.seconds > 0 && tick_rate > 0
                                     ? (uint64_t)(lg->o.seconds * tick_rate)
                                     : 0;
    const uint64_t warm = lg->o.warmup_ticks ? lg->o.warmup_ticks : 120;
    const uint64_t every = lg->o.incidents && total_ticks > warm
                               ? (total_ticks - warm) / (lg->o.incidents + 1)
                               : 0;
    /* a run of known length ends at the wall clock, so a long replay never runs into
     * pipeline.max_future_s; an open-ended one starts at it */
    const int64_t t0 =
        nops_wall_ns() - (int64_t)((double)total_ticks * lg->o.tick_s * 1e9);
    const uint64_t start = nops_now_ns();
    char buf[1024];
    for (uint64_t tick = 0; !(stop && atomic_load(stop)); tick++) {
        if (total_ticks && tick >= total_ticks)
            break;
        if (!total_ticks && lg->o.seconds > 0 &&
            (double)(nops_now_ns() - start) / 1e9 >= lg->o.seconds)
            break;
        const int64_t ts = t0 + (int64_t)(tick * lg->o.tick_s * 1e9);
        if (every && tick >= warm && (tick - warm) % every == every - 1 &&
            lg->n_truth < lg->o.incidents)
            inject(lg, tick, ts);
        for (uint32_t h = 0; h < lg->hosts; h++) {
            int len = format_host(lg, h, ts, buf, sizeof buf);
            if (len <= 0 || (size_t)len >= sizeof buf || produce(lg, buf, len, h, stop) != NOPS_OK)
                return NOPS_IO;
            __atomic_fetch_add(&lg->messages, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&lg->points, 4, __ATOMIC_RELAXED);
        }
        size_t k = 0; /* retire finished incidents */
        for (size_t i = 0; i < lg->n_active; i++)
            if (lg->active[i].until > tick)
                lg->active[k++] = lg->active[i];
        lg->n_active = k;
        rd_kafka_poll(lg->rk, 0);
        if (tick_rate > 0) { /* pace: tick n is due at start + n / tick_rate */
            double due = (double)(tick + 1) / tick_rate;
            double now = (double)(nops_now_ns() - start) / 1e9;
            if (due > now)
                nanosleep(&(struct timespec){(time_t)(due - now),
                                             (long)(fmod(due - now, 1.0) * 1e9)},
                          NULL);
        }
    }
    rd_kafka_flush(lg->rk, 10000);
    return NOPS_OK;
}

uint64_t loadgen_points(const loadgen *lg)
{
    return __atomic_load_n(&lg->points, __ATOMIC_RELAXED);
}

uint64_t loadgen_messages(const loadgen *lg)
{
    return __atomic_load_n(&lg->messages, __ATOMIC_RELAXED);
}

const loadgen_injected *loadgen_truth(const loadgen *lg, size_t *n)
{
    *n = lg->n_truth;
    return lg->truth;
}
