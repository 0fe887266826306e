/*
 * cmd_demo.c — `neuralops demo`: the embedded default, end to end, on one machine.
 *
 * A librdkafka mock cluster (a real Kafka-protocol broker on loopback, three brokers) is
 * started in-process; a loadgen thread produces a fleet with injected incidents to it; the
 * streaming pipeline consumes, detects, correlates and writes ./neuralops-data; a status line
 * shows progress; at the end the signals found are matched against what was injected.
 */
#include "app/cli.h"
#include "app/demo/demo.h"
#include "kafka/kafka.h"
#include "synth/loadgen.h"

#include <errno.h>
#include <poll.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct demo_cli {
    double seconds;
    double rate;
    uint32_t series;
    bool approve;
    bool stay;
} demo_cli;

static const cli_opt demo_opts[] = {
    {"seconds", 0, true, "N", "how long the fleet produces (default 30)"},
    {"series", 0, true, "N", "series in the fleet, 4 per host (default 2000)"},
    {"rate", 0, true, "POINTS/S", "points per second produced (default 100000)"},
    {"approve", 0, false, NULL,
     "approve and run the first suggestion that waits for an approval without asking (as "
     "demo-admin)"},
    {"stay", 0, false, NULL,
     "after the report, keep serving the API and the console until Ctrl-C or SIGTERM (the "
     "default when stdin is a terminal, where Enter also ends it)"},
};
#define N_DEMO (sizeof demo_opts / sizeof demo_opts[0])

/* The demo's API keys (unless api.keys is configured): one per role, printed at start. */
static void demo_keys(app_ctx *ctx)
{
    static const char *keys[][3] = {{"demo-viewer", "viewer", "demo-viewer-key"},
                                    {"demo-operator", "operator", "demo-operator-key"},
                                    {"demo-admin", "org-admin", "demo-admin-key"}};
    size_t at = 0;
    for (size_t i = 0; i < 3; i++) {
        char hex[65];
        if (nops_api_hash_key(keys[i][2], hex) != NOPS_OK)
            return;
        at += (size_t)snprintf(ctx->api.keys + at, sizeof ctx->api.keys - at, "%s%s:%s:%s",
                               i ? "," : "", keys[i][0], keys[i][1], hex);
    }
}

static bool on_opt(void *ud, const cli_opt *opt, const char *v)
{
    demo_cli *d = ud;
    if (strcmp(opt->name, "approve") == 0 || strcmp(opt->name, "stay") == 0) {
        *(opt->name[0] == 'a' ? &d->approve : &d->stay) = true;
        return true;
    }
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x > 0) || x > 1e9) {
        fprintf(stderr, "neuralops demo: --%s expects a positive number, got \"%s\"\n", opt->name,
                v);
        return false;
    }
    if (strcmp(opt->name, "seconds") == 0)
        d->seconds = x;
    else if (strcmp(opt->name, "rate") == 0)
        d->rate = x;
    else
        d->series = x < 4 ? 4 : (uint32_t)x;
    return true;
}

typedef struct lg_thread {
    loadgen *lg;
    atomic_bool *stop;
    atomic_bool done;
} lg_thread;

static void *lg_main(void *arg)
{
    lg_thread *t = arg;
    loadgen_run(t->lg, t->stop);
    atomic_store(&t->done, true);
    return NULL;
}

/* Keep the previous run's files as *.prev so the summary counts this run only. */
static void rotate(const char *dir)
{
    const char *names[] = {"signals.jsonl", "incidents.jsonl", "truth.jsonl"};
    for (size_t i = 0; i < 3; i++) {
        char a[1024], b[1100];
        snprintf(a, sizeof a, "%s/%s", dir, names[i]);
        snprintf(b, sizeof b, "%s.prev", a);
        if (rename(a, b) != 0 && errno != ENOENT)
            fprintf(stderr, "neuralops demo: cannot move %s aside: %s\n", a, strerror(errno));
    }
}

static rd_kafka_t *start_cluster(char *bootstraps, size_t cap, char *err, size_t errsz)
{
    const nops_kafka_prop props[] = {{"linger.ms", "5"},
                                     {"batch.num.messages", "10000"},
                                     {"compression.codec", "lz4"},
                                     {"queue.buffering.max.messages", "1000000"},
                                     {"log_level", "3"}};
    const nops_kafka_topic topics[] = {{"neuralops.metrics", 32},
                                       {"neuralops.metrics.dlq", 4},
                                       {"neuralops.signals", 4},
                                       {"neuralops.actions", 1}}; /* kafka playbook steps */
    return nops_kafka_mock_new(3, topics, sizeof topics / sizeof topics[0], props,
                               sizeof props / sizeof props[0], NULL, bootstraps, cap, err, errsz);
}

static bool label_is(json_t *labels, const char *k, const char *v)
{
    json_t *x = json_object_get(labels, k);
    return x && json_is_string(x) && strcmp(json_string_value(x), v) == 0;
}

/* Match injected incidents against signals.jsonl; prints the table, returns how many found. */
static size_t summarise(const char *dir, const loadgen_injected *t, size_t n, double tick_s)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/signals.jsonl", dir);
    FILE *f = nops_file_fopen(path, "r");
    json_t **sigs = NULL;
    size_t ns = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (f && getline(&line, &lcap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o)
            continue;
        if (ns == cap) {
            cap = cap ? cap * 2 : 256;
            json_t **nsigs = realloc(sigs, cap * sizeof *sigs);
            if (!nsigs) {
                json_decref(o);
                break;
            }
            sigs = nsigs;
        }
        sigs[ns++] = o;
    }
    free(line);
    if (f)
        fclose(f);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        char start[40];
        nops_format_ts(t[i].start_ns, start, sizeof start);
        double delay = -1;
        for (size_t s = 0; s < ns; s++) {
            json_t *labels = json_object_get(sigs[s], "labels");
            const char *metric = json_string_value(json_object_get(sigs[s], "metric"));
            const char *ts = json_string_value(json_object_get(sigs[s], "ts"));
            int64_t tns;
            if (!metric || !ts || strcmp(metric, t[i].metric) != 0 ||
                !label_is(labels, "service", t[i].service) ||
                (strcmp(t[i].host, "*") != 0 && !label_is(labels, "host", t[i].host)) ||
                nops_ingest_parse_timestamp(ts, strlen(ts), &tns, NULL) != NOPS_OK)
                continue;
            /* signal times are written with millisecond precision: half a tick of slack */
            const int64_t slack = (int64_t)(tick_s * 0.5e9);
            if (tns < t[i].start_ns - slack || tns > t[i].end_ns + (int64_t)(3 * tick_s * 1e9))
                continue;
            double d = (double)(tns - t[i].start_ns) / 1e9;
            d = d < 0 ? 0 : d;
            if (delay < 0 || d < delay)
                delay = d;
        }
        if (delay >= 0)
            found++;
        printf("  %-18s %-9s %-14s %-20s at %s  %s", t[i].kind, t[i].service, t[i].host,
               t[i].metric, start, delay >= 0 ? "FOUND" : "missed");
        if (delay >= 0)
            printf(" after %.0f s of data time", delay);
        printf("\n");
    }
    for (size_t s = 0; s < ns; s++)
        json_decref(sigs[s]);
    free(sigs);
    printf("  %zu of %zu injected incidents found; %zu signals in all\n", found, n, ns);
    return found;
}

static void status_line(nops_pipeline *p, loadgen *lg, double el, uint64_t *last_pts,
                        double *last_el, bool tty)
{
    nops_pipeline_stats st;
    nops_pipeline_get_stats(p, &st);
    double rate = el > *last_el ? (double)(st.points - *last_pts) / (el - *last_el) : 0;
    *last_pts = st.points;
    *last_el = el;
    fprintf(stderr,
            "%s[%4.0fs] produced %llu | consumed %.0f points/s | %llu series | %llu signals | "
            "%llu incidents (%llu open) | lag %lld%s%s",
            tty ? "\r" : "", el, (unsigned long long)loadgen_points(lg), rate,
            (unsigned long long)st.series, (unsigned long long)st.signals,
            (unsigned long long)st.incidents_opened, (unsigned long long)st.incidents_open,
            (long long)st.lag, st.paused ? " PAUSED" : "", tty ? "   " : "\n");
}

/* The status line until everything produced was consumed (or Ctrl-C, or 30 s past the end);
 * whether it all was consumed. */
static bool watch(nops_pipeline *p, lg_thread *lt, atomic_bool *stop, double seconds,
                  uint64_t t0, uint64_t *last_pts, double *last_el)
{
    const bool tty = isatty(STDERR_FILENO);
    double next_status = 1;
    for (;;) {
        nanosleep(&(struct timespec){0, 100000000}, NULL);
        double el = (double)(nops_now_ns() - t0) / 1e9;
        if (el >= next_status) {
            status_line(p, lt->lg, el, last_pts, last_el, tty);
            next_status += tty ? 1 : 5;
        }
        if (atomic_load(stop))
            return false;
        if (atomic_load(&lt->done)) { /* produced everything: wait for the pipeline to catch up */
            nops_pipeline_stats st;
            nops_pipeline_get_stats(p, &st);
            if ((st.points >= loadgen_points(lt->lg) && st.lag == 0) || el > seconds + 30)
                return st.points >= loadgen_points(lt->lg);
        }
    }
}

/* The summary after the stream: injected vs found, recommendations, and the remediation. */
static void report(app_ctx *ctx, app_engine *api, nops_pipeline *p, loadgen *lg, double tick_s,
                   bool drained, const demo_cli *d, atomic_bool *stop, bool user_stopped,
                   const demo_receiver *rx)
{
    nops_pipeline_stats st;
    nops_pipeline_get_stats(p, &st);
    printf("\nInjected incidents vs signals found (%s/truth.jsonl, signals.jsonl):\n",
           ctx->storage.data_dir);
    size_t n;
    const loadgen_injected *t = loadgen_truth(lg, &n);
    summarise(ctx->storage.data_dir, t, n, tick_s);
    printf("  %llu points in %llu messages, %llu incidents opened, %llu resolved; %s\n",
           (unsigned long long)st.points, (unsigned long long)st.messages,
           (unsigned long long)st.incidents_opened, (unsigned long long)st.incidents_resolved,
           drained ? "everything produced was consumed" : "stopped before the lag reached 0");
    char top_pb[64] = "";
    json_t *top = api->reco ? demo_recommend(ctx, api->reco, 6, top_pb, sizeof top_pb) : NULL;
    if (!user_stopped) {
        atomic_store(stop, false); /* Ctrl-C now means: stop waiting for an approval */
        demo_loop_report(ctx, api, demo_receiver_count(rx), d->approve, stop, top, top_pb);
    }
    json_decref(top);
    printf("\nRecords: %s/signals.jsonl, %s/incidents.jsonl%s%s\n", ctx->storage.data_dir,
           ctx->storage.data_dir, ctx->sinks.kafka_topic[0] ? ", Kafka topic " : "",
           ctx->sinks.kafka_topic);
}

/* After the report: the API and the console stay up for a person at the page (stdin is a
 * terminal: until Enter or Ctrl-C) or for a test that asked with --stay (until SIGINT/SIGTERM).
 * Otherwise (a pipe, /dev/null, as in tests/app/test_demo) the demo ends at once, as before. */
static void stay(const app_engine *api, const demo_cli *d, atomic_bool *stop)
{
    const bool tty = isatty(STDIN_FILENO);
    if (!api->api || !(tty || d->stay))
        return;
    atomic_store(stop, false); /* a Ctrl-C that gave up an approval prompt: serve on */
    printf("\nThe console stays at http://127.0.0.1:%d/ (sign in with demo-operator-key or "
           "demo-admin-key); %s to stop.\n",
           nops_api_port(api->api), tty ? "Enter or Ctrl-C" : "Ctrl-C or SIGTERM");
    while (!atomic_load(stop)) {
        struct pollfd pf = {STDIN_FILENO, POLLIN, 0};
        if (tty && poll(&pf, 1, 500) > 0) {
            char line[64];
            (void)!fgets(line, sizeof line, stdin);
            break;
        }
        if (!tty)
            nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
}

/* Everything after the command line: the exit status. */
static int demo_run(app_ctx *ctx, const demo_cli *d)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* the API address and keys show at once, even in a pipe */
    atomic_bool *stop = app_stop_on_signals();
    char err[512], boot[512], truth[1024];
    rd_kafka_t *cluster = start_cluster(boot, sizeof boot, err, sizeof err);
    if (!cluster) {
        fprintf(stderr, "neuralops demo: %s\n", err);
        return NOPS_EXIT_FAIL;
    }
    snprintf(ctx->kafka.brokers, sizeof ctx->kafka.brokers, "%s", boot);
    ctx->kafka.session_timeout_ms = 6000;
    rotate(ctx->storage.data_dir);
    int status = NOPS_EXIT_FAIL;
    loadgen *lg = NULL;
    app_engine api;
    memset(&api, 0, sizeof api);
    demo_receiver *rx = NULL;
    if (!ctx->notify.alertmanager_url[0] && !ctx->notify.webhook_urls[0]) {
        /* nobody to tell: a local receiver prints what the engine would send to a team */
        if (!(rx = demo_receiver_start(ctx->notify.webhook_urls, sizeof ctx->notify.webhook_urls,
                                       err, sizeof err)))
            NOPS_WARN("demo", "%s: notifications are off", err);
        else
            snprintf(ctx->notify.webhook_severities, sizeof ctx->notify.webhook_severities,
                     "info,warning,critical");
    }
    if (!demo_history(ctx, 20000) || !demo_playbooks(ctx) ||
        !app_engine_start(ctx, &api, "demo"))
        goto done;
    nops_pipeline *p = api.pipeline;
    snprintf(truth, sizeof truth, "%s/truth.jsonl", ctx->storage.data_dir);
    loadgen_opts lo = {.topic = ctx->kafka.topic, .series = d->series, .rate = d->rate,
                       .seconds = d->seconds, .incidents = (uint32_t)(d->seconds / 5 + 1),
                       .tick_s = 10, .warmup_ticks = (uint32_t)ctx->detect.window * 2,
                       .truth = truth};
    lg = loadgen_new(&lo, cluster, err, sizeof err);
    lg_thread lt = {lg, stop, false};
    pthread_t thr;
    if (!lg || pthread_create(&thr, NULL, lg_main, &lt) != 0) {
        fprintf(stderr, "neuralops demo: %s\n", lg ? "cannot start the load generator" : err);
        goto done;
    }
    printf("NeuralOps demo: mock Kafka at %s, %u series, %.0f points/s for %.0f s, "
           "records in %s\n",
           boot, d->series, d->rate, d->seconds, ctx->storage.data_dir);
    if (api.api)
        printf("HTTP API on http://127.0.0.1:%d (GET /openapi.json); console at "
               "http://127.0.0.1:%d/ — sign in with an API key; demo-only keys (printed because "
               "this is the demo, never use them elsewhere): org-admin demo-admin-key, operator "
               "demo-operator-key, viewer demo-viewer-key\n",
               nops_api_port(api.api), nops_api_port(api.api));
    const uint64_t t0 = nops_now_ns();
    uint64_t last_pts = 0;
    double last_el = 0;
    const bool drained = watch(p, &lt, stop, d->seconds, t0, &last_pts, &last_el);
    const bool user_stopped = atomic_load(stop);
    atomic_store(stop, true);
    pthread_join(thr, NULL);
    nops_err e = app_engine_drain(&api); /* the API stays up for the approval */
    status_line(p, lg, (double)(nops_now_ns() - t0) / 1e9, &last_pts, &last_el,
                isatty(STDERR_FILENO));
    fprintf(stderr, "\n");
    report(ctx, &api, p, lg, lo.tick_s, drained, d, stop, user_stopped, rx);
    if (!user_stopped)
        stay(&api, d, stop);
    status = e == NOPS_OK ? NOPS_EXIT_OK : NOPS_EXIT_FAIL;
done:
    app_engine_stop(&api); /* API, then the pipeline (drained already), then the rest */
    demo_receiver_stop(rx); /* after the notifier: it delivers what it still holds */
    loadgen_destroy(lg);
    rd_kafka_destroy(cluster);
    return status;
}

int nops_cmd_demo(int argc, char **argv)
{
    app_ctx ctx;
    if (!app_ctx_init(&ctx))
        return NOPS_EXIT_FAIL;
    demo_cli d = {30, 100000, 2000, false, false};
    /* the demo runs at the library defaults: calibrated thresholds (about one false signal
     * per 10⁶ points of a stationary series, docs/detection.md), no preset of its own */
    snprintf(ctx.sinks.kafka_topic, sizeof ctx.sinks.kafka_topic, "neuralops.signals");
    demo_keys(&ctx);
    bool help;
    int status = NOPS_EXIT_USAGE;
    if (!cli_parse(&ctx, "demo", argc, argv, demo_opts, N_DEMO, on_opt, &d, &help)) {
        /* status stays: usage */
    } else if (help) {
        printf("Usage: neuralops demo [--seconds N] [--series N] [--rate POINTS/S] [--approve] [--stay]\n\n"
               "The embedded default, end to end: an in-process Kafka (librdkafka mock\n"
               "cluster, 3 brokers, 32 partitions), a synthetic fleet with injected incidents,\n"
               "the streaming pipeline, and records in %s. The closed loop runs live:\n"
               "incidents get recommendations from a generated history, the engine suggests\n"
               "and dry-runs the top playbook, runs the low-risk one the demo policy allows\n"
               "(scale-out) on its own, and notifies a local receiver (printed lines) of\n"
               "incidents and pending approvals. At the end the first run that waits for an\n"
               "approval is offered: approve it at the prompt, over the API or with\n"
               "--approve. Then, at a terminal (or with --stay), the API and the console\n"
               "stay up until Enter or Ctrl-C. Ctrl-C stops cleanly.\n\n",
               ctx.storage.data_dir);
        cli_print_opts(&ctx, demo_opts, N_DEMO, stdout);
        status = NOPS_EXIT_OK;
    } else {
        status = demo_run(&ctx, &d);
    }
    app_ctx_fini(&ctx);
    return status;
}
