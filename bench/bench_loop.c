/*
 * bench_loop.c — `neuralops-bench loop`: what attaching recommendations costs the pipeline
 * (issue 15, "Done when" 3). The same pre-filled topic is consumed by the same pipeline twice
 * per round, in the same run: once with the incident hook calling nops_recommend_incident on a
 * real history index (the synthetic remediation history, embedded as `neuralops vectorize`
 * does; AUTO index type) for every incident that opens, gains a series or rises in severity,
 * and once without a hook — the peer. Figures:
 *   - incidents per second handled (opened, recommended, written to the JSONL sink), from the
 *     first point to the last message processed, beside the run without the hook;
 *   - the hook's own time per recommendation (mean and p99) beside the plain pipeline's wall
 *     time per incident.
 *
 * The stream is incident-dense on purpose, so the incident path — not detection — is what is
 * measured: H hosts (120; 100 with --quick) with one series each (a metric of the history's
 * kinds, labels host, region and a service of its own, so hosts never join into one
 * service-wide incident), 640 points 10 s apart sent tick by tick, a spike every 80 points per
 * host: 8 incidents per host, each opened by its spike and resolved 30 s of data later
 * (correlate.resolve_s 30, reopen_s 0, checkpoints every 20 ms), ~80 points per incident. The
 * detector window is 16 points (warm-up 32). A run opens at most 960 incidents: the pipeline
 * opens them faster than its checkpoints resolve them, and the correlator holds 1024 unresolved;
 * so each run is short (tens of milliseconds without the hook) and the figure is the median of
 * seven alternating rounds, with their range.
 * Each message holds one tick of 50 hosts, keyed by that group of hosts.
 */
#include "bench/bench.h"

#include "ingest/ingest.h"
#include "kafka/kafka.h"
#include "recommend/recommend.h"
#include "synth/history.h"

#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICKS 640         /* points per host */
#define SPIKES 8          /* incidents per host: a spike every 80 ticks */
#define HOSTS_PER_MSG 50  /* lines per message: one tick of a group of hosts */
#define MAX_SAMPLES 65536 /* hook timings kept for the p99 */

static const char *const metrics[] = {"http_latency_p50_ms", "cpu_usage_user", "http_error_rate",
                                      "disk_used_percent", "http_requests_rate"};

/* ---- the hook ------------------------------------------------------------------------------ */

typedef struct loop_ctx {
    nops_recommender *r;
    atomic_uint_fast64_t calls;      /* records seen */
    atomic_uint_fast64_t asked;      /* recommendations computed */
    atomic_uint_fast64_t attached;   /* of which at least one playbook came back */
    atomic_uint_fast64_t failed;     /* errors from nops_recommend_incident */
    double samples[MAX_SAMPLES];     /* seconds per recommendation (hook calls are serialised
                                        by the pipeline's incident mutex) */
    size_t n_samples;
} loop_ctx;

static void loop_hook(void *ctxp, nops_incident *inc, unsigned events)
{
    loop_ctx *ctx = ctxp;
    atomic_fetch_add(&ctx->calls, 1);
    if (!(events & (NOPS_INC_OPENED | NOPS_INC_NEW_SERIES | NOPS_INC_SEVERITY_UP)))
        return;
    const double t0 = bench_seconds();
    nops_incident_reco out[NOPS_INCIDENT_MAX_RECOS];
    size_t n = 0;
    char err[256];
    nops_err e = nops_recommend_incident(ctx->r, inc, NOPS_INCIDENT_MAX_RECOS, out,
                                         NOPS_INCIDENT_MAX_RECOS, &n, err, sizeof err);
    if (e == NOPS_OK) {
        memcpy(inc->recos, out, n * sizeof out[0]);
        inc->n_recos = (uint8_t)n;
        inc->recommended_ns = nops_wall_ns();
        atomic_fetch_add(&ctx->attached, n > 0);
    } else {
        atomic_fetch_add(&ctx->failed, 1);
    }
    atomic_fetch_add(&ctx->asked, 1);
    if (ctx->n_samples < MAX_SAMPLES)
        ctx->samples[ctx->n_samples++] = bench_seconds() - t0;
}

/* ---- the stream ---------------------------------------------------------------------------- */

static rd_kafka_t *g_host;
static char g_boot[512];

static double noise(uint64_t s, uint64_t t)
{
    uint64_t x = s * 0x9E3779B97F4A7C15ull + t * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    return (double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* The topic: `hosts` hosts × TICKS ticks, SPIKES spikes per host (tick 40 + h % 40, then every
 * 80 ticks), tick by tick so the stream's time moves for every host alike; messages sent. */
static size_t prefill(const char *topic, size_t hosts, int64_t t0)
{
    static char msg[HOSTS_PER_MSG * 200];
    size_t sent = 0;
    for (int t = 0; t < TICKS; t++)
        for (size_t g = 0; g * HOSTS_PER_MSG < hosts; g++) {
            size_t len = 0;
            for (size_t h = g * HOSTS_PER_MSG; h < hosts && h < (g + 1) * HOSTS_PER_MSG; h++) {
                const int at = t - 40 - (int)(h % 40);
                const bool spike = at >= 0 && at % 80 == 0;
                const double v = 100.0 + noise(h, (uint64_t)t) + (spike ? 60.0 : 0.0);
                len += (size_t)snprintf(msg + len, sizeof msg - len,
                                        "%s,host=h%05zu,region=eu-west-1,service=svc%05zu "
                                        "value=%.4f %lld\n",
                                        metrics[h % 5], h, h, v,
                                        (long long)(t0 + (int64_t)t * 10000000000ll));
            }
            char key[16];
            int kl = snprintf(key, sizeof key, "g%zu", g);
            while (rd_kafka_producev(g_host, RD_KAFKA_V_TOPIC(topic),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_VALUE(msg, len), RD_KAFKA_V_KEY(key, (size_t)kl),
                                     RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(g_host, 5);
            sent++;
        }
    rd_kafka_flush(g_host, 60000);
    return sent;
}

/* A history index of `runs` runs in dir (as `neuralops vectorize` builds one). */
static bool build_index(const char *dir, size_t runs)
{
    char err[256];
    nops_redactor *red = nops_redactor_new("bench", err, sizeof err);
    nops_histdir_writer *w = red ? nops_histdir_begin(dir, NOPS_INDEX_AUTO, err, sizeof err)
                                 : NULL;
    if (!w) {
        fprintf(stderr, "bench loop: %s\n", err);
        nops_redactor_destroy(red);
        return false;
    }
    history_gen g;
    history_init(&g, 77);
    for (size_t i = 0; i < runs; i++) {
        json_t *run = history_run(&g);
        float v[NOPS_EMBED_DIM];
        nops_run_meta m;
        if (nops_vector_prepare_run(red, run, v, &m, NULL, err, sizeof err) != NOPS_OK ||
            nops_histdir_add(w, v, &m) != NOPS_OK)
            fprintf(stderr, "bench loop: run %zu: %s\n", i, err);
        json_decref(run);
    }
    nops_redactor_destroy(red);
    const bool ok = nops_histdir_commit(w, "bench", 0, err, sizeof err) == NOPS_OK;
    if (!ok)
        fprintf(stderr, "bench loop: %s\n", err);
    return ok;
}

/* ---- one run ------------------------------------------------------------------------------- */

typedef struct loop_result {
    double seconds;     /* first point → last message processed */
    uint64_t opened;    /* incidents opened */
    uint64_t uncorrelated; /* signals the correlator had no room for */
    bool complete;      /* every message processed before the deadline */
} loop_result;

static bool run_once(const char *topic, size_t messages, const char *group, loop_ctx *ctx,
                     loop_result *res)
{
    nops_kafka_params kp = {0};
    snprintf(kp.brokers, sizeof kp.brokers, "%s", g_boot);
    snprintf(kp.topic, sizeof kp.topic, "%s", topic);
    snprintf(kp.group, sizeof kp.group, "%s", group);
    snprintf(kp.dlq_topic, sizeof kp.dlq_topic, "loop.dlq");
    kp.session_timeout_ms = 6000;
    /* checkpoints (which resolve incidents) every 20 ms: the correlator holds at most 1024
     * incidents, and at this rate they would pile up between slower ones */
    nops_pipeline_params pp = {2, 65536, 2048, 20, 10000000, 60000, 0, 0, 0, 512};
    nops_detect_params dp;
    nops_detect_params_default(&dp);
    dp.window = 16; /* thresholds and warm-up (32 points) derived again for it */
    dp.warmup = 0;
    dp.z_threshold = dp.ewma_threshold = dp.cusum_threshold = 0;
    nops_detect_params_resolve(&dp);
    nops_correlate_params cp;
    nops_correlate_defaults(&cp);
    cp.window_s = 20;
    cp.resolve_s = 30;
    cp.reopen_s = 0; /* a host's next spike opens a new incident */
    nops_storage_params sp;
    char dir[] = "/tmp/nops-bench-loop-XXXXXX";
    if (!mkdtemp(dir))
        return false;
    snprintf(sp.data_dir, sizeof sp.data_dir, "%s", dir);
    char err[512];
    nops_sinks *sinks = nops_sinks_new();
    nops_pipeline *p = NULL;
    bool ok = sinks && nops_sinks_add_jsonl(sinks, dir, 0, err, sizeof err) == NOPS_OK &&
              (p = nops_pipeline_new(&kp, &pp, &dp, &cp, &sp, sinks, err, sizeof err));
    if (ok && ctx)
        nops_pipeline_set_incident_hook(p, loop_hook, ctx);
    ok = ok && nops_pipeline_start(p, err, sizeof err) == NOPS_OK;
    if (ok) {
        nops_pipeline_stats st;
        double t0 = 0, deadline = bench_seconds() + 600;
        for (;;) {
            usleep(2000);
            nops_pipeline_get_stats(p, &st);
            if (!t0 && st.points)
                t0 = bench_seconds();
            if (st.messages >= messages || bench_seconds() > deadline)
                break;
        }
        res->seconds = bench_seconds() - t0;
        res->opened = st.incidents_opened;
        res->uncorrelated = st.uncorrelated;
        res->complete = st.messages >= messages;
    } else {
        fprintf(stderr, "bench loop: %s\n", err);
    }
    if (p)
        nops_pipeline_stop(p, 15000);
    nops_pipeline_destroy(p);
    nops_sinks_destroy(sinks);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench loop: could not remove %s\n", dir);
    return ok;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints the medians of the rounds and the hook's time per incident; nonzero when no
 * incident got a recommendation. */
static int report(loop_ctx *ctx, double *rate_plain, double *rate_hook, int n_ok,
                  const loop_result *last_hook, size_t hosts, size_t runs)
{
    qsort(rate_plain, (size_t)n_ok, sizeof rate_plain[0], cmp_d);
    qsort(rate_hook, (size_t)n_ok, sizeof rate_hook[0], cmp_d);
    const double with = rate_hook[n_ok / 2], without = rate_plain[n_ok / 2];
    const uint64_t asked = atomic_load(&ctx->asked), attached = atomic_load(&ctx->attached);
    char extra[640];
    snprintf(extra, sizeof extra, "\"hosts\":%zu,\"runs\":%zu,\"incidents\":%llu,"
             "\"expected\":%zu,\"uncorrelated\":%llu,\"recommendations\":%llu,"
             "\"with_playbook\":%llu,\"errors\":%llu,\"rounds\":%d,"
             "\"min\":%.1f,\"max\":%.1f,\"peer_min\":%.1f,\"peer_max\":%.1f",
             hosts, runs, (unsigned long long)last_hook->opened, hosts * SPIKES,
             (unsigned long long)last_hook->uncorrelated, (unsigned long long)asked,
             (unsigned long long)attached, (unsigned long long)atomic_load(&ctx->failed),
             n_ok, rate_hook[0], rate_hook[n_ok - 1], rate_plain[0], rate_plain[n_ok - 1]);
    bench_emit("loop", "incidents/s with recommendations attached (median)", with,
               "incidents/s", "the same pipeline without the hook", without, extra);
    qsort(ctx->samples, ctx->n_samples, sizeof ctx->samples[0], cmp_d);
    double sum = 0;
    for (size_t i = 0; i < ctx->n_samples; i++)
        sum += ctx->samples[i];
    const double mean_us = ctx->n_samples ? sum / (double)ctx->n_samples * 1e6 : 0;
    const double p99_us =
        ctx->n_samples ? ctx->samples[(size_t)(0.99 * (double)(ctx->n_samples - 1))] * 1e6
                       : 0;
    snprintf(extra, sizeof extra, "\"p99_us\":%.1f,\"samples\":%zu,\"runs\":%zu", p99_us,
             ctx->n_samples, runs);
    bench_emit("loop", "recommendation per incident in the hook, mean", mean_us, "us",
               "plain pipeline wall time per incident", 1e6 / without, extra);
    if (attached == 0) {
        fprintf(stderr, "bench loop: no incident got a recommendation\n");
        return 1;
    }
    return 0;
}

int bench_loop(const bench_opts *o)
{
    nops_log_configure(NOPS_LOG_WARN, NOPS_LOG_TEXT);
    /* at most 8 × 120 = 960 incidents a run: the correlator holds 1024 unresolved, and the
     * pipeline opens them faster than its checkpoints resolve them */
    const size_t hosts = o->quick ? 100 : 120;
    const size_t runs = o->series ? o->series : o->quick ? 5000 : 100000;
    const int rounds = o->quick ? 1 : 7; /* ≤ 16 */
    char idx[] = "/tmp/nops-bench-loop-index-XXXXXX";
    if (!mkdtemp(idx) || !build_index(idx, runs))
        return 1;
    nops_reco_params rp;
    memset(&rp, 0, sizeof rp);
    nops_cfg *cfg = nops_cfg_new(); /* the [recommend] defaults, then this index */
    if (cfg)
        nops_cfg_add(cfg, &nops_reco_cfg_section, &rp, NULL, 0);
    nops_cfg_destroy(cfg);
    snprintf(rp.index_dir, sizeof rp.index_dir, "%s", idx);
    char err[512];
    loop_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx)
        ctx->r = nops_recommender_new(&rp, err, sizeof err);
    const nops_kafka_prop props[] = {{"linger.ms", "5"}, {"batch.num.messages", "10000"},
                                     {"compression.codec", "lz4"}, {"log_level", "3"}};
    const nops_kafka_topic topics[] = {{"loop", 32}, {"loop.dlq", 4}};
    g_host = ctx && ctx->r ? nops_kafka_mock_new(3, topics, 2, props, 4, NULL, g_boot,
                                                 sizeof g_boot, err, sizeof err)
                           : NULL;
    if (!g_host) {
        fprintf(stderr, "bench loop: %s\n", err);
        if (ctx)
            nops_recommender_destroy(ctx->r);
        free(ctx);
        return 1;
    }
    const size_t messages = prefill("loop", hosts, nops_wall_ns() - 7200ll * 1000000000ll);
    fprintf(stderr, "bench loop: %zu hosts, %zu messages, index of %zu runs; %d round(s)\n",
            hosts, messages, runs, rounds);
    /* alternate the two, the median of each (the machine is shared: single runs vary) */
    double rate_hook[16], rate_plain[16];
    loop_result last_hook = {0};
    int n_ok = 0, rc = 0;
    for (int r = 0; r < rounds && rc == 0; r++) {
        char group[64];
        loop_result a = {0}, b = {0};
        snprintf(group, sizeof group, "loop-plain-%d", r);
        if (!run_once("loop", messages, group, NULL, &a))
            rc = 1;
        snprintf(group, sizeof group, "loop-hook-%d", r);
        if (rc == 0 && !run_once("loop", messages, group, ctx, &b))
            rc = 1;
        fprintf(stderr, "bench loop: round %d: %.3f s without the hook, %.3f s with (%llu and "
                "%llu incidents)\n", r + 1, a.seconds, b.seconds,
                (unsigned long long)a.opened, (unsigned long long)b.opened);
        if (rc == 0 && a.complete && b.complete && a.seconds > 0 && b.seconds > 0) {
            rate_plain[n_ok] = (double)a.opened / a.seconds;
            rate_hook[n_ok++] = (double)b.opened / b.seconds;
            last_hook = b;
        }
    }
    if (rc == 0 && n_ok > 0) {
        rc = report(ctx, rate_plain, rate_hook, n_ok, &last_hook, hosts, runs);
    } else if (rc == 0) {
        fprintf(stderr, "bench loop: no complete run within the deadline\n");
        rc = 1;
    }
    rd_kafka_destroy(g_host);
    nops_recommender_destroy(ctx->r);
    free(ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", idx);
    if (system(cmd) != 0)
        fprintf(stderr, "bench loop: could not remove %s\n", idx);
    return rc;
}
