/*
 * bench_ingest_prod.c — the latency runs' producer in a process of its own, as production has
 * it (the engine consumes what other machines' agents produce):
 *
 *   neuralops-bench ingest-produce BOOTSTRAP TOPIC POINTS_PER_S SECONDS SERIES
 *
 * produces 100-line line-protocol messages to TOPIC at POINTS_PER_S for SECONDS, every point
 * stamped with the time its message is handed to librdkafka, values 30..36 with a spike (+500)
 * every 20011th point once each of SERIES series has 40 points (windows warm), keyed as the
 * in-process producer of bench_ingest.c keys them. Prints one line on stdout at the end:
 * `sent POINTS in SECONDS s, behind MS ms at most` (how far it fell behind its schedule).
 *
 * The messages are formatted once, before the clock starts (a cycle of 700: 100 messages cover
 * the series, 7 the values), with fixed-width values and timestamps that are overwritten in
 * place per message: formatting 100 lines with snprintf per message would take a good part of
 * a core at millions of points/s, a core the consumer under test shares on this machine.
 *
 * bench_ingest_spawn runs it as a child of the bench (the same binary, /proc/self/exe).
 */
#include "bench/bench.h"
#include "core/core.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINES 100         /* points per message */
#define CYCLE 700         /* distinct messages: lcm(series / LINES at 10k series, 7) */
#define SPIKE_EVERY 20011 /* points between spikes */

typedef struct tmpl {
    char *buf;             /* CYCLE messages, back to back */
    size_t off[CYCLE + 1]; /* their start offsets */
    uint32_t val[CYCLE][LINES]; /* offset of each line's 6-byte value in buf */
    uint32_t ts[CYCLE][LINES];  /* offset of each line's 19-digit timestamp in buf */
} tmpl;

/* The CYCLE messages for `series` series (a multiple of LINES dividing LINES * CYCLE). */
static tmpl *make_templates(uint32_t series)
{
    tmpl *t = calloc(1, sizeof *t);
    size_t cap = (size_t)CYCLE * LINES * 64;
    t->buf = malloc(cap);
    size_t len = 0;
    for (size_t m = 0; m < CYCLE; m++) {
        t->off[m] = len;
        for (int i = 0; i < LINES; i++) {
            size_t s = (m * LINES + (size_t)i) % series;
            int n = snprintf(t->buf + len, cap - len, "%scpu,host=h%06zu usage=",
                             i ? "\n" : "", s);
            len += (size_t)n;
            t->val[m][i] = (uint32_t)len;
            /* 030.00 .. 036.00: six bytes, so a spike's 530.00 fits in place */
            n = snprintf(t->buf + len, cap - len, "%06.2f ", 30.0 + (double)((m + (size_t)i) % 7));
            len += (size_t)n;
            t->ts[m][i] = (uint32_t)len;
            n = snprintf(t->buf + len, cap - len, "%019d", 0);
            len += (size_t)n;
        }
    }
    t->off[CYCLE] = len;
    return t;
}

static rd_kafka_t *new_producer(const char *boot)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    /* as the mock cluster's host producer in bench_ingest.c (librdkafka's default linger) */
    const char *props[][2] = {{"bootstrap.servers", boot}, {"linger.ms", "5"},
                              {"batch.num.messages", "10000"}, {"compression.codec", "lz4"},
                              {"queue.buffering.max.messages", "2000000"}, {"log_level", "3"}};
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        if (rd_kafka_conf_set(c, props[i][0], props[i][1], err, sizeof err) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "ingest-produce: %s\n", err);
            rd_kafka_conf_destroy(c);
            return NULL;
        }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "ingest-produce: %s\n", err);
        rd_kafka_conf_destroy(c);
    }
    return rk;
}

int bench_ingest_produce(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: neuralops-bench ingest-produce BOOTSTRAP TOPIC POINTS_PER_S "
                        "SECONDS SERIES\n");
        return 2;
    }
    const char *boot = argv[0], *topic = argv[1];
    const double rate = atof(argv[2]), seconds = atof(argv[3]);
    const uint32_t series = (uint32_t)atol(argv[4]);
    if (rate <= 0 || seconds <= 0 || series < LINES || series % LINES ||
        ((size_t)CYCLE * LINES) % series) {
        fprintf(stderr, "ingest-produce: bad rate, seconds or series (a multiple of %d "
                        "dividing %d)\n", LINES, CYCLE * LINES);
        return 2;
    }
    rd_kafka_t *rk = new_producer(boot);
    if (!rk)
        return 1;
    tmpl *t = make_templates(series);
    char key[16], stamp[24];
    uint64_t sent = 0;
    double behind = 0;
    const double t0 = bench_seconds();
    for (uint64_t m = 0; bench_seconds() - t0 < seconds; m++) {
        const size_t c = (size_t)(m % CYCLE);
        char *msg = t->buf + t->off[c];
        snprintf(stamp, sizeof stamp, "%019lld", (long long)nops_wall_ns());
        for (int i = 0; i < LINES; i++)
            memcpy(t->buf + t->ts[c][i], stamp, 19);
        int spike = -1; /* the line holding a spike, restored after the send */
        for (int i = 0; i < LINES; i++)
            if ((m * LINES + (uint64_t)i) % SPIKE_EVERY == 0 && m * LINES > 40ull * series)
                spike = i;
        if (spike >= 0)
            t->buf[t->val[c][spike]] = '5';
        int kl = snprintf(key, sizeof key, "%zu", (size_t)(m * LINES % series) / 64);
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_VALUE(msg, t->off[c + 1] - t->off[c]),
                                 RD_KAFKA_V_KEY(key, (size_t)kl),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 5);
        if (spike >= 0)
            t->buf[t->val[c][spike]] = '0';
        if (m % 64 == 0) /* delivery reports (errors only matter; none are expected) */
            rd_kafka_poll(rk, 0);
        sent += LINES;
        /* paced in bursts of 2 ms: a sleep per message costs more than the message (a wakeup
         * of a few µs of kernel time each, on the cores the consumer under test uses) */
        const double due = (double)sent / rate, el = bench_seconds() - t0;
        if (due - el > 0.002)
            usleep((useconds_t)((due - el) * 1e6));
        else if (el - due > behind)
            behind = el - due;
    }
    const double el = bench_seconds() - t0;
    rd_kafka_flush(rk, 10000);
    printf("sent %llu in %.3f s, behind %.1f ms at most\n", (unsigned long long)sent, el,
           behind * 1e3);
    free(t->buf);
    free(t);
    rd_kafka_destroy(rk);
    return 0;
}

int bench_ingest_spawn(const char *boot, const char *topic, double rate, double seconds,
                       uint32_t series, double *achieved, double *behind_ms)
{
    char self[512], cmd[2048];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    snprintf(cmd, sizeof cmd, "'%s' ingest-produce '%s' '%s' %.0f %.3f %u", self, boot, topic,
             rate, seconds, series);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    unsigned long long sent = 0;
    double el = 0, beh = 0;
    const int got = fscanf(f, "sent %llu in %lf s, behind %lf ms", &sent, &el, &beh);
    const int rc = pclose(f);
    if (got != 3 || rc != 0 || el <= 0)
        return -1;
    *achieved = (double)sent / el;
    *behind_ms = beh;
    return 0;
}
