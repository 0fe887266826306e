/*
 * bench_ingest.c — the streaming path against its limits, measured in one run:
 *
 *   parse_*        parser points/s and MB/s per input format, beside memchr scanning the same
 *                  bytes for newlines (the floor any line-oriented parser pays);
 *   identity_*     line-protocol parse plus the pipeline's per-point series identity work
 *                  on a warm detector, every series known, as the pipeline does it: each point
 *                  hashed during the parse (nops_ingest_series_hash), found after the message's
 *                  parse (nops_ingest_series_find) — beside parse alone of the same bytes, and
 *                  (one_pass_points_per_s) nops_ingest_series_resolve called in the callback;
 *   e2e_*          end-to-end points/s of the pipeline (consume + parse + detect + correlate +
 *                  JSONL sink) over a pre-filled mock-cluster topic (lz4, 32 partitions), beside
 *                  a bare librdkafka consumer that only counts the same topic's messages, and
 *                  (100-line messages) beside the ceiling: parse alone of the same messages
 *                  times the pipeline's workers — with two workers, and with one (the other
 *                  vCPU of this machine left to the in-process brokers and librdkafka), the
 *                  one-worker runs also by the worker's own CPU per point, and over 10k series
 *                  (bench100w: 300 points a series) beside 100k (bench100: 30);
 *   latency_*      ingest-to-signal p50/p99 while producing at half (and a tenth) of the
 *                  measured 100-line end-to-end rate with spikes injected, the producer a
 *                  process of its own (bench_ingest_prod.c) as in production; and, for
 *                  comparison, at half the rate with the producer formatting messages in this
 *                  process (`_inproc_producer`).
 */
#include "bench/bench.h"
#include "ingest/ingest.h"
#include "kafka/kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- parse-only --------------------------------------------------------------------------- */

static bool count_point(void *ud, const nops_point *p)
{
    (*(uint64_t *)ud)++;
    (void)p;
    return true;
}

typedef struct corpus {
    char *buf;      /* all messages back to back */
    size_t *off;    /* message start offsets, n + 1 entries */
    size_t n;       /* messages */
    uint64_t points;/* points they hold */
} corpus;

static void corpus_add(corpus *c, const char *msg, size_t len, size_t *cap, uint32_t pts)
{
    if (c->off[c->n] + len > *cap) {
        *cap = (*cap + len) * 2;
        c->buf = realloc(c->buf, *cap);
    }
    memcpy(c->buf + c->off[c->n], msg, len);
    c->off[c->n + 1] = c->off[c->n] + len;
    c->n++;
    c->points += pts;
}

#define E2E_WORKERS 2 /* the pipeline's workers in the end-to-end runs */

/* One message of the end-to-end topics: `lines` points from series s0 on, out of `series`. */
static size_t e2e_message(char *msg, size_t cap, size_t m, int lines, uint32_t series)
{
    const uint64_t t = 1700000000000000000ull;
    size_t len = 0;
    const size_t s0 = (m * (size_t)lines) % series;
    for (int i = 0; i < lines; i++) {
        size_t s = (s0 + (size_t)i) % series;
        len += (size_t)snprintf(msg + len, cap - len, "%scpu,host=h%06zu usage=%.2f %llu",
                                i ? "\n" : "", s, 30.0 + (double)((m + (size_t)i) % 7),
                                (unsigned long long)(t + (m * (size_t)lines + (size_t)i) /
                                                             series * 10000000000ull));
    }
    return len;
}

/* kind 0: line protocol, 100 lines per message; 1: adapter JSON; 2: Telegraf JSON batch;
 * 3: the end-to-end topics' 100-line messages (100k series); 4: line protocol with 5 tags */
static corpus make_corpus(int kind, size_t messages)
{
    corpus c = {NULL, calloc(messages + 1, sizeof(size_t)), 0, 0};
    size_t cap = 0;
    char msg[32768];
    uint64_t t = 1700000000000000000ull;
    for (size_t m = 0; m < messages; m++) {
        size_t len = 0;
        uint32_t pts = 0;
        if (kind == 1) {
            len = (size_t)snprintf(msg, sizeof msg,
                                   "{\"timestamp\":\"2024-01-01T00:00:%02zuZ\",\"value\":\"%.3f\","
                                   "\"name\":\"node_cpu\",\"labels\":{\"__name__\":\"node_cpu\","
                                   "\"instance\":\"host-%05zu:9100\",\"mode\":\"user\"}}",
                                   m % 60, 12.5 + (double)(m % 7), m % 100000);
            pts = 1;
        } else if (kind == 2) {
            len = (size_t)snprintf(msg, sizeof msg, "{\"metrics\":[");
            for (int i = 0; i < 100; i++)
                len += (size_t)snprintf(msg + len, sizeof msg - len,
                                        "%s{\"name\":\"cpu\",\"tags\":{\"host\":\"h%05zu\","
                                        "\"region\":\"eu\"},\"fields\":{\"usage\":%.2f},"
                                        "\"timestamp\":1700000000}",
                                        i ? "," : "", (m * 100 + (size_t)i) % 100000,
                                        30.0 + i % 5);
            len += (size_t)snprintf(msg + len, sizeof msg - len, "]}");
            pts = 100;
        } else if (kind == 3) {
            len = e2e_message(msg, sizeof msg, m, 100, 100000);
            pts = 100;
        } else if (kind == 4) {
            for (int i = 0; i < 100; i++) {
                size_t s = (m * 100 + (size_t)i) % 100000;
                len += (size_t)snprintf(msg + len, sizeof msg - len,
                                        "cpu,host=h%05zu,region=eu-west-1,dc=dc%zu,rack=r%02zu,"
                                        "service=api usage_user=%.2f %llu\n",
                                        s, s % 3, s % 40, 30.0 + i % 5,
                                        (unsigned long long)(t + m));
            }
            pts = 100;
        } else {
            for (int i = 0; i < 100; i++)
                len += (size_t)snprintf(msg + len, sizeof msg - len,
                                        "cpu,host=h%05zu,region=eu-west-1 usage_user=%.2f %llu\n",
                                        (m * 100 + (size_t)i) % 100000, 30.0 + i % 5,
                                        (unsigned long long)(t + m));
            pts = 100;
        }
        corpus_add(&c, msg, len, &cap, pts);
    }
    return c;
}

/* This thread's CPU seconds: on a machine shared with other work, time spent waiting for a
 * core is not counted (the figures below run on one thread and never block). */
static double thread_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds to parse every message of `c` with `fn`, calling `after` (may be NULL) after
 * each message's parse. */
static double time_parse(const corpus *c, nops_point_fn fn, void (*after)(void *), void *ud)
{
    double t0 = thread_seconds();
    for (size_t m = 0; m < c->n; m++) {
        nops_parse_stats st;
        nops_ingest_parse(c->buf + c->off[m], c->off[m + 1] - c->off[m], 0, fn, ud, &st);
        if (after)
            after(ud);
    }
    return thread_seconds() - t0;
}

typedef struct ident_ctx {
    uint64_t points;                /* points resolved (the count, as count_point) */
    nops_detector *det;             /* a detector as a worker's */
    nops_ingest_series_cache *sc;   /* and its cache */
    uint64_t sum;                   /* of slots: keeps the work from being optimised away */
    nops_ingest_series_ref ref[256];/* the message's points, hashed (two-pass) */
    size_t n_ref;                   /* how many */
    uint64_t misses;                /* two-pass points not found (none once warm) */
} ident_ctx;

static bool ident_point(void *ud, const nops_point *p)
{
    ident_ctx *x = ud;
    uint32_t slot = 0;
    const char *detail;
    if (nops_ingest_series_resolve(x->sc, x->det, p, 1, NULL, NULL, &slot, &detail) ==
        NOPS_REJECT_NONE)
        x->sum += slot;
    x->points++;
    return true;
}

/* Two passes, as the pipeline's worker: hash in the parse callback ... */
static bool hash_point(void *ud, const nops_point *p)
{
    ident_ctx *x = ud;
    if (x->n_ref < sizeof x->ref / sizeof x->ref[0] && p->series_len)
        nops_ingest_series_hash(x->sc, p, &x->ref[x->n_ref++]);
    else
        x->misses++;
    x->points++;
    return true;
}

/* ... and find every point after the message's parse. */
static void find_points(void *ud)
{
    ident_ctx *x = ud;
    for (size_t i = 0; i < x->n_ref; i++) {
        uint32_t slot = 0;
        if (nops_ingest_series_find(x->sc, x->det, &x->ref[i], 1, &slot))
            x->sum += slot;
        else
            x->misses++;
    }
    x->n_ref = 0;
}

/*
 * Parse alone beside parse + the series identity the pipeline does per point, on the same
 * messages, with every series already known (the steady state); returns parse-alone points/s.
 */
static double bench_identity(const char *figure, int kind, size_t messages)
{
    corpus c = make_corpus(kind, messages);
    char err[256];
    nops_detect_params dp;
    nops_detect_params_default(&dp);
    ident_ctx x = {.det = nops_detect_new(&dp, 1024, err, sizeof err),
                   .sc = nops_ingest_series_cache_new()};
    for (size_t m = 0; m < c.n; m++) { /* register every series (and fill the cache) */
        nops_parse_stats st;
        nops_ingest_parse(c.buf + c.off[m], c.off[m + 1] - c.off[m], 0, ident_point, &x, &st);
    }
    const uint64_t warm = nops_detect_series_count(x.det);
    /* interleaved, best of five each: a load that comes and goes hits all three alike */
    double parse_s = 1e30, one_s = 1e30, ident_s = 1e30;
    uint64_t got = 0;
    x.misses = 0;
    for (int r = 0; r < 5; r++) {
        got = 0;
        double t = time_parse(&c, count_point, NULL, &got);
        parse_s = t < parse_s ? t : parse_s;
        t = time_parse(&c, ident_point, NULL, &x);
        one_s = t < one_s ? t : one_s;
        t = time_parse(&c, hash_point, find_points, &x);
        ident_s = t < ident_s ? t : ident_s;
    }
    char extra[256];
    snprintf(extra, sizeof extra, "\"points\":%llu,\"series\":%llu,\"parse_alone_points_per_s\":"
             "%.4g,\"one_pass_points_per_s\":%.4g,\"misses\":%llu", (unsigned long long)got,
             (unsigned long long)warm, (double)got / parse_s, (double)got / one_s,
             (unsigned long long)x.misses);
    bench_emit("ingest", figure, (double)got / ident_s, "points/s", "parse_alone_points_per_s",
               (double)got / parse_s, extra);
    nops_ingest_series_cache_destroy(x.sc);
    nops_detect_destroy(x.det);
    free(c.buf);
    free(c.off);
    return (double)got / parse_s;
}

/* Parse alone of the end-to-end topics' messages (corpus kind 3), best of five: measured
 * again beside a pipeline run, as this VM's speed drifts by tens of percent within a minute. */
static double parse_alone_e2e(size_t messages)
{
    corpus c = make_corpus(3, messages);
    double best = 1e30;
    uint64_t got = 0;
    for (int r = 0; r < 5; r++) {
        got = 0;
        double t = time_parse(&c, count_point, NULL, &got);
        best = t < best ? t : best;
    }
    free(c.buf);
    free(c.off);
    return (double)got / best;
}

static void bench_parse(const char *figure, int kind, size_t messages)
{
    corpus c = make_corpus(kind, messages);
    uint64_t got = 0;
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        got = 0;
        double t0 = bench_seconds();
        for (size_t m = 0; m < c.n; m++) {
            nops_parse_stats st;
            nops_ingest_parse(c.buf + c.off[m], c.off[m + 1] - c.off[m], 0, count_point, &got,
                              &st);
        }
        double el = bench_seconds() - t0;
        best = el < best ? el : best;
    }
    /* peer: memchr for every newline of the same bytes */
    double best_scan = 1e30;
    size_t lines = 0;
    for (int r = 0; r < 3; r++) {
        lines = 0;
        double t0 = bench_seconds();
        const char *p = c.buf, *end = c.buf + c.off[c.n];
        while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
            lines++;
            p++;
        }
        double el = bench_seconds() - t0;
        best_scan = el < best_scan ? el : best_scan;
    }
    const double mb = (double)c.off[c.n] / 1e6;
    char extra[160];
    snprintf(extra, sizeof extra, "\"points\":%llu,\"bytes\":%zu,\"points_per_s\":%.4g",
             (unsigned long long)got, c.off[c.n], (double)got / best);
    bench_emit("ingest", figure, mb / best, "MB/s", "memchr_newline_scan", mb / best_scan, extra);
    (void)lines;
    free(c.buf);
    free(c.off);
}

/* ---- end to end on the mock cluster -------------------------------------------------------- */

static rd_kafka_t *g_host;
static char g_boot[512];

static bool start_cluster(void)
{
    char err[256];
    const nops_kafka_prop props[] = {{"linger.ms", "5"},
                                     {"batch.num.messages", "10000"},
                                     {"compression.codec", "lz4"},
                                     {"queue.buffering.max.messages", "2000000"},
                                     {"log_level", "3"}};
    const nops_kafka_topic topics[] = {{"bench1", 32}, {"bench100", 32}, {"bench100w", 32},
                                       {"benchlat", 32},
                                       {"benchlat2", 32}, {"benchlat3", 32},
                                       {"benchlat4", 32}, {"dlq", 32}};
    g_host = nops_kafka_mock_new(3, topics, sizeof topics / sizeof topics[0], props,
                                 sizeof props / sizeof props[0], NULL, g_boot, sizeof g_boot,
                                 err, sizeof err);
    if (!g_host)
        fprintf(stderr, "bench ingest: %s\n", err);
    return g_host != NULL;
}

static void produce(const char *topic, const char *msg, size_t len, const char *key, size_t kl)
{
    while (rd_kafka_producev(g_host, RD_KAFKA_V_TOPIC(topic),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_VALUE((void *)msg, len), RD_KAFKA_V_KEY(key, kl),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(g_host, 5);
}

/* Fill `topic` with `messages` messages of `lines` points each over `series` series. */
static void prefill(const char *topic, size_t messages, int lines, uint32_t series)
{
    char msg[16384], key[16];
    for (size_t m = 0; m < messages; m++) {
        size_t len = e2e_message(msg, sizeof msg, m, lines, series);
        size_t s0 = (m * (size_t)lines) % series;
        int kl = snprintf(key, sizeof key, "%zu", s0 / 64);
        produce(topic, msg, len, key, (size_t)kl);
    }
    rd_kafka_flush(g_host, 60000);
}

/* CPU seconds of the whole process (every thread: the mock brokers, librdkafka's threads,
 * the pipeline's), to tell what a run costs beside how long it took on 2 shared vCPUs. */
static double process_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Minor page faults of the whole process so far: each first touch of a page (about 16 µs on
 * this VM, RESULTS.md), the cost that buffers growing fresh instead of reused show up as. */
static long process_minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* CPU seconds of the waited-for children (the producer process of the latency runs). */
static double children_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* A consumer that only counts messages: the limit the pipeline is measured against.
 * *cpu_per_msg: process CPU seconds per message while it ran. */
static double bare_consume(const char *topic, size_t messages, double *cpu_per_msg)
{
    char err[256], group[64];
    snprintf(group, sizeof group, "bare-%s", topic);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    const char *props[][2] = {{"bootstrap.servers", g_boot}, {"group.id", group},
                              {"auto.offset.reset", "earliest"}, {"enable.auto.commit", "false"},
                              {"queued.min.messages", "1000000"}, {"fetch.wait.max.ms", "10"},
                              {"max.partition.fetch.bytes", "8388608"}, {"log_level", "3"}};
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        rd_kafka_conf_set(c, props[i][0], props[i][1], err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    size_t n = 0;
    double t0 = 0, c0 = 0;
    double deadline = bench_seconds() + 120;
    while (n < messages && bench_seconds() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            if (n++ == 0) {
                t0 = bench_seconds(); /* time from the first message: group join excluded */
                c0 = process_cpu_seconds();
            }
        }
        rd_kafka_message_destroy(m);
    }
    double el = bench_seconds() - t0;
    *cpu_per_msg = n > 1 ? (process_cpu_seconds() - c0) / (double)(n - 1) : 0;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n > 1 ? (double)(n - 1) / el : 0.0;
}

typedef struct pipe_run {
    nops_sinks *sinks;
    nops_pipeline *p;
    char dir[64];
} pipe_run;

static bool pipe_start(pipe_run *r, const char *topic, const char *group, int workers)
{
    nops_kafka_params kp = {0};
    snprintf(kp.brokers, sizeof kp.brokers, "%s", g_boot);
    snprintf(kp.topic, sizeof kp.topic, "%s", topic);
    snprintf(kp.group, sizeof kp.group, "%s", group);
    snprintf(kp.dlq_topic, sizeof kp.dlq_topic, "dlq");
    kp.session_timeout_ms = 6000;
    nops_pipeline_params pp = {workers, 65536, 2048, 500, 10000000, 60000, 0, 0, 0,
                               512};
    nops_detect_params dp;
    nops_detect_params_default(&dp);
    nops_correlate_params cp;
    nops_correlate_defaults(&cp);
    nops_storage_params sp;
    snprintf(r->dir, sizeof r->dir, "/tmp/nops-bench-XXXXXX");
    if (!mkdtemp(r->dir))
        return false;
    snprintf(sp.data_dir, sizeof sp.data_dir, "%s", r->dir);
    char err[512];
    r->sinks = nops_sinks_new();
    if (nops_sinks_add_jsonl(r->sinks, r->dir, 0, err, sizeof err) != NOPS_OK)
        return false;
    r->p = nops_pipeline_new(&kp, &pp, &dp, &cp, &sp, r->sinks, err, sizeof err);
    if (!r->p || nops_pipeline_start(r->p, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "bench ingest: %s\n", err);
        return false;
    }
    return true;
}

static void pipe_stop(pipe_run *r)
{
    nops_pipeline_stop(r->p, 15000);
    nops_pipeline_destroy(r->p);
    nops_sinks_destroy(r->sinks);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", r->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench ingest: could not remove %s\n", r->dir);
}

/* What one run of the pipeline over a pre-filled topic measured, from its first point. */
typedef struct pipe_result {
    double points_per_s;
    double cpu_per_point;        /* process CPU seconds per point (every thread) */
    double worker_cpu_per_point; /* the worker threads' own (nops_pipeline_stats.worker_cpu_ns,
                                    as of each worker's last turn: a few turns either side) */
    double faults_per_kpoint;    /* minor page faults of the process per 1000 points */
    double bytes_per_series;     /* what the engine holds through the allocator per series */
    uint64_t series;
    uint64_t queued_peak;        /* the most message bytes one worker's queue held */
} pipe_result;

static pipe_result pipe_consume(const char *topic, int workers, uint64_t points)
{
    pipe_result res = {0};
    pipe_run r;
    char group[64];
    snprintf(group, sizeof group, "pipe-%s-%d", topic, workers);
    if (!pipe_start(&r, topic, group, workers))
        return res;
    nops_pipeline_stats st;
    double t0 = 0, c0 = 0, deadline = bench_seconds() + 300;
    uint64_t p0 = 0, w0 = 0;
    long f0 = 0;
    for (;;) {
        usleep(2000);
        nops_pipeline_get_stats(r.p, &st);
        if (!t0 && st.points) {
            t0 = bench_seconds();
            c0 = process_cpu_seconds();
            f0 = process_minor_faults();
            p0 = st.points;
            w0 = st.worker_cpu_ns;
        }
        if (st.points >= points || bench_seconds() > deadline)
            break;
    }
    const double el = bench_seconds() - t0, n = (double)(st.points - p0);
    if (st.points > p0) {
        res.cpu_per_point = (process_cpu_seconds() - c0) / n;
        res.worker_cpu_per_point = (double)(st.worker_cpu_ns - w0) * 1e-9 / n;
        res.faults_per_kpoint = (double)(process_minor_faults() - f0) * 1000.0 / n;
        res.points_per_s = el > 0 ? n / el : 0;
    }
    res.series = st.series;
    res.queued_peak = st.queued_bytes_peak;
    /* everything the engine holds through the allocator (detectors, registries, queues, sink
     * buffers, correlator) per active series */
    res.bytes_per_series = st.series ? (double)nops_alloc_bytes_in_use() / (double)st.series : 0;
    pipe_stop(&r);
    return res;
}

/* The in-process producer: `rate` points/s (100 per message) with spikes for `seconds`. */
static void produce_inproc(const char *topic, double rate, double seconds, uint32_t series)
{
    char msg[16384], key[16];
    double t0 = bench_seconds();
    uint64_t sent = 0;
    for (uint64_t m = 0; bench_seconds() - t0 < seconds; m++) {
        int64_t now = nops_wall_ns();
        size_t len = 0;
        for (int i = 0; i < 100; i++) {
            size_t s = (m * 100 + (size_t)i) % series;
            double v = 30.0 + (double)((m + (size_t)i) % 7);
            if ((m * 100 + (size_t)i) % 20011 == 0 && m * 100 > 40 * series)
                v += 500; /* a spike, once windows are warm */
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%scpu,host=h%06zu usage=%.2f %lld",
                                    i ? "\n" : "", s, v, (long long)now);
        }
        int kl = snprintf(key, sizeof key, "%zu", (m * 100 % series) / 64);
        produce(topic, msg, len, key, (size_t)kl);
        rd_kafka_poll(g_host, 0);
        sent += 100;
        double due = (double)sent / rate;
        double el = bench_seconds() - t0;
        if (due > el)
            usleep((useconds_t)((due - el) * 1e6));
    }
    rd_kafka_flush(g_host, 10000);
}

/* Produce at `rate` points/s (100 per message) with spikes, from this process or (`separate`)
 * from a producer process of its own (bench_ingest_prod.c); report signal latency. */
static void latency_run(const char *topic, const char *label, double rate, double seconds,
                        bool separate)
{
    pipe_run r;
    char group[64];
    snprintf(group, sizeof group, "pipe-%s", topic);
    if (!pipe_start(&r, topic, group, E2E_WORKERS))
        return;
    usleep(4000000); /* let the group settle before measuring */
    const uint32_t series = 10000; /* windows warm after 40 points each: 400k points */
    double achieved = 0, behind_ms = 0;
    const double cpu0 = process_cpu_seconds(), kids0 = children_cpu_seconds();
    nops_pipeline_stats st0;
    nops_pipeline_get_stats(r.p, &st0);
    if (!separate)
        produce_inproc(topic, rate, seconds, series);
    else if (bench_ingest_spawn(g_boot, topic, rate, seconds, series, &achieved, &behind_ms))
        fprintf(stderr, "bench ingest: the producer process failed\n");
    usleep(2000000);
    nops_pipeline_stats st;
    nops_pipeline_get_stats(r.p, &st);
    /* CPU per point: this process (mock brokers, the pipeline, and an in-process producer)
     * and the producer process */
    const double pts = st.points > st0.points ? (double)(st.points - st0.points) : 1;
    const double cpu_ns = (process_cpu_seconds() - cpu0) / pts * 1e9;
    const double kid_ns = (children_cpu_seconds() - kids0) / pts * 1e9;
    char hist[400] = "", extra[800];
    for (int b = 0, o = 0; b < 32 && o < (int)sizeof hist - 24; b++)
        if (st.latency_us_log2[b]) /* bucket b: below 2^b us */
            o += snprintf(hist + o, sizeof hist - (size_t)o, "%s%d:%llu", o ? "," : "", b,
                          (unsigned long long)st.latency_us_log2[b]);
    if (separate)
        snprintf(extra, sizeof extra,
                 "\"rate_points_per_s\":%.4g,\"sent_points_per_s\":%.4g,\"producer_behind_ms\":"
                 "%.1f,\"points\":%.0f,\"signals\":%llu,\"log2_us_buckets\":\"%s\",\"cpu_ns_per_point\":%.0f,"
                 "\"producer_cpu_ns_per_point\":%.0f,\"note\":\"log2 histogram bucket upper "
                 "bounds; producer in a separate process\"", rate, achieved, behind_ms,
                 st.points > st0.points ? pts : 0, (unsigned long long)st.signals, hist, cpu_ns, kid_ns);
    else
        snprintf(extra, sizeof extra,
                 "\"rate_points_per_s\":%.4g,\"signals\":%llu,\"log2_us_buckets\":\"%s\","
                 "\"cpu_ns_per_point\":%.0f,\"note\":\"log2 histogram bucket upper bounds; "
                 "producer in the same process\"", rate, (unsigned long long)st.signals, hist,
                 cpu_ns);
    char fig[96];
    snprintf(fig, sizeof fig, "latency_p50_%s", label);
    bench_emit("ingest", fig, nops_pipeline_latency_quantile(&st, 0.5) / 1000.0, "ms",
               "target_p99", 100.0, extra);
    snprintf(fig, sizeof fig, "latency_p99_%s", label);
    bench_emit("ingest", fig, nops_pipeline_latency_quantile(&st, 0.99) / 1000.0, "ms",
               "target_p99", 100.0, extra);
    pipe_stop(&r);
}

/* The latency runs at ½ (`half`), ¼ and 1/10 of the maximum rate, `secs` s each (1/10: 2×). */
static void latency_runs(double half, double secs)
{
    /* the producer in a process of its own, as in production (the target's figure) ... */
    fprintf(stderr, "bench ingest: latency at %.0f points/s, producer process...\n", half);
    latency_run("benchlat", "half_max_rate", half, secs, true);
    fprintf(stderr, "bench ingest: latency at %.0f points/s, producer process...\n", half / 2);
    latency_run("benchlat4", "quarter_max_rate", half / 2, secs, true);
    /* longer: windows warm after 400k points, and only then are spikes injected */
    fprintf(stderr, "bench ingest: latency at %.0f points/s, producer process...\n", half / 5);
    latency_run("benchlat2", "tenth_max_rate", half / 5, secs * 2, true);
    /* ... and in this process, formatting with snprintf on the cores the pipeline uses */
    fprintf(stderr, "bench ingest: latency at %.0f points/s, producer in-process...\n", half);
    latency_run("benchlat3", "half_max_rate_inproc_producer", half, secs, false);
}

/* The one-point-per-message topic: the pipeline beside a bare consumer. */
static void e2e_one_point(size_t m1, uint32_t series)
{
    char extra[400];
    double bare_cpu = 0;
    fprintf(stderr, "bench ingest: pre-filling bench1 with %zu one-point messages...\n", m1);
    prefill("bench1", m1, 1, series);
    fprintf(stderr, "bench ingest: bare consumer and pipeline, one point per message...\n");
    double bare1 = bare_consume("bench1", m1, &bare_cpu);
    pipe_result r = pipe_consume("bench1", E2E_WORKERS, m1);
    snprintf(extra, sizeof extra, "\"messages\":%zu,\"series\":%llu,"
             "\"points_per_message\":1,\"faults_per_1k_points\":%.2f", m1,
             (unsigned long long)r.series, r.faults_per_kpoint);
    bench_emit("ingest", "e2e_points_per_s_1pt_msgs", r.points_per_s, "points/s",
               "bare_consumer_msgs_per_s", bare1, extra);
}

/* The 100-line topic `topic` with one worker, beside parse alone × 1: this machine's other
 * vCPU left to the in-process brokers and librdkafka's threads (35-40 % of both vCPUs in the
 * two-worker run: RESULTS.md), as a deployment sizes workers to the cores Kafka's threads
 * leave. `suffix` names the figures of a topic other than bench100. */
static void e2e_one_worker(const char *topic, const char *suffix, size_t m100, double parse_e2e)
{
    char extra[400], fig[128];
    fprintf(stderr, "bench ingest: pipeline over %s, one worker...\n", topic);
    pipe_result r = pipe_consume(topic, 1, m100 * 100);
    /* the ceiling: the faster of parse alone at the start and right after this run */
    const double again = parse_alone_e2e(5000);
    parse_e2e = again > parse_e2e ? again : parse_e2e;
    const double wcpu1 = r.worker_cpu_per_point;
    snprintf(extra, sizeof extra, "\"workers\":1,\"series\":%llu,\"parse_alone_points_per_s\":"
             "%.4g,\"pipeline_cpu_ns_per_point\":%.1f,\"worker_cpu_ns_per_point\":%.1f,"
             "\"faults_per_1k_points\":%.2f", (unsigned long long)r.series, parse_e2e,
             r.cpu_per_point * 1e9, wcpu1 * 1e9, r.faults_per_kpoint);
    snprintf(fig, sizeof fig, "e2e_points_per_s_100pt_msgs_vs_ceiling_1_worker%s", suffix);
    bench_emit("ingest", fig, r.points_per_s, "points/s", "ceiling_parse_alone_x_workers",
               parse_e2e, extra);
    /* the same run by the worker's own CPU: what a point costs the worker against parse alone,
     * whatever share of the machine the brokers and librdkafka's threads left it */
    snprintf(fig, sizeof fig, "e2e_worker_points_per_cpu_s_1_worker%s", suffix);
    if (wcpu1 > 0 && parse_e2e > 0)
        bench_emit("ingest", fig, 1.0 / wcpu1, "points/cpu-s", "parse_alone_points_per_s",
                   parse_e2e, extra);
}

/* The same messages over 10k series instead of 100k: 300 points a series instead of 30, so a
 * point of a series seen before is the rule, as in a pipeline that has run for a while; the
 * bench100 runs register a new series every 30th point. */
static void e2e_steady(size_t m100, double parse_e2e)
{
    fprintf(stderr, "bench ingest: pre-filling bench100w (10k series)...\n");
    prefill("bench100w", m100, 100, 10000);
    e2e_one_worker("bench100w", "_10k_series", m100, parse_e2e);
}

/* The two-worker run `r` over bench100 against its ceiling (parse alone × workers) and the
 * machine's bound, then the one-worker runs. bare_cpu: the bare consumer's CPU seconds per
 * 100-point message; parse_start: parse alone measured before the runs. */
static void e2e_against_ceiling(const pipe_result *r, double bare_cpu, double parse_start,
                                size_t m100)
{
    char extra[600];
    /* the ceiling: the faster of parse alone before the runs and right after this one (the
     * VM's speed drifts; one run had measured parse alone at a slow minute and read 0.53) */
    const double again = parse_alone_e2e(5000);
    const double parse_e2e = again > parse_start ? again : parse_start;
    /* the machine's bound: its CPUs spent on nothing but what a bare consumer pays per point
     * (the in-process brokers, fetch, lz4) and parse alone: no detection at all */
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const double per_point = bare_cpu / 100 + (parse_e2e > 0 ? 1.0 / parse_e2e : 0);
    snprintf(extra, sizeof extra, "\"workers\":%d,\"parse_alone_points_per_s\":%.4g,"
             "\"worker_cpu_ns_per_point\":%.1f,\"cpus\":%ld,"
             "\"machine_bound_points_per_s\":%.4g", E2E_WORKERS, parse_e2e,
             r->worker_cpu_per_point * 1e9, cpus, per_point > 0 ? (double)cpus / per_point : 0);
    bench_emit("ingest", "e2e_points_per_s_100pt_msgs_vs_ceiling", r->points_per_s, "points/s",
               "ceiling_parse_alone_x_workers", parse_e2e * E2E_WORKERS, extra);
    e2e_one_worker("bench100", "", m100, parse_e2e);
    e2e_steady(m100, parse_e2e);
    snprintf(extra, sizeof extra, "\"series\":%llu", (unsigned long long)r->series);
    bench_emit("ingest", "bytes_per_active_series", r->bytes_per_series, "bytes", "target",
               1024.0, extra);
}

int bench_ingest(const bench_opts *o)
{
    const size_t scale = o->quick ? 20 : 1;
    const bool only_ident = o->variant && strcmp(o->variant, "identity") == 0;
    const bool only_e2e = o->variant && strcmp(o->variant, "e2e") == 0;
    const bool only_parse = o->variant && strcmp(o->variant, "parse") == 0;
    const bool only_lat = o->variant && strcmp(o->variant, "latency") == 0;
    if (o->variant && !only_ident && !only_e2e && !only_parse && !only_lat) {
        fprintf(stderr, "bench ingest: --variant is parse, identity, e2e or latency\n");
        return 1;
    }
    if (!o->variant || only_parse) {
        fprintf(stderr, "bench ingest: parsers...\n");
        bench_parse("parse_lineproto", 0, 20000 / scale);
        bench_parse("parse_json_adapter", 1, 500000 / scale);
        bench_parse("parse_json_telegraf", 2, 10000 / scale);
        if (only_parse)
            return 0;
    }
    if (!only_e2e && !only_lat) {
        fprintf(stderr, "bench ingest: parse + series identity...\n");
        bench_identity("identity_lineproto_5tags", 4, 5000 / scale);
    }
    /* the ceiling of the 100-line end-to-end run: parse alone of its messages × workers */
    const double parse_start =
        only_lat ? 0 : bench_identity("identity_lineproto_e2e_msgs", 3, 5000 / scale);
    if (only_ident)
        return 0;
    if (!start_cluster()) {
        fprintf(stderr, "bench ingest: cannot start the mock cluster\n");
        return 1;
    }
    const uint32_t series = o->series ? (uint32_t)o->series : 100000;
    const size_t m1 = 1000000 / scale, m100 = 30000 / scale;
    fprintf(stderr, "bench ingest: pre-filling bench100 with %zu 100-line messages...\n", m100);
    prefill("bench100", m100, 100, series);
    char extra[600];
    double bare_cpu = 0;
    if (!only_lat)
        e2e_one_point(m1, series);
    fprintf(stderr, "bench ingest: bare consumer and pipeline, 100 lines per message...\n");
    double bare100 = only_lat ? 0 : bare_consume("bench100", m100, &bare_cpu);
    pipe_result r = pipe_consume("bench100", E2E_WORKERS, m100 * 100);
    const double pipe100 = r.points_per_s;
    /* CPU per point: the bare consumer's (mock brokers and librdkafka: what any consumer of
     * this topic pays here) and the pipeline run's, all threads of the process */
    snprintf(extra, sizeof extra, "\"messages\":%zu,\"series\":%llu,\"points_per_message\":100,"
             "\"bare_cpu_ns_per_point\":%.1f,\"pipeline_cpu_ns_per_point\":%.1f,"
             "\"faults_per_1k_points\":%.2f,\"queued_bytes_peak\":%llu", m100,
             (unsigned long long)r.series, bare_cpu / 100 * 1e9, r.cpu_per_point * 1e9,
             r.faults_per_kpoint, (unsigned long long)r.queued_peak);
    bench_emit("ingest", "e2e_points_per_s_100pt_msgs", pipe100, "points/s",
               "bare_consumer_points_per_s", bare100 * 100, extra);
    if (!only_lat)
        e2e_against_ceiling(&r, bare_cpu, parse_start, m100);
    if (only_e2e) {
        rd_kafka_destroy(g_host);
        return 0;
    }
    const double half = pipe100 > 0 ? pipe100 / 2 : 100000;
    latency_runs(half, o->quick ? 3 : 10);
    rd_kafka_destroy(g_host);
    return 0;
}
