/*
 * cmd_loadgen.c — `neuralops loadgen`: a synthetic fleet with injected incidents, to Kafka.
 */
#include "app/cli.h"
#include "synth/history.h"
#include "synth/loadgen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct lg_cli {
    loadgen_opts o;
    double history;      /* runs to generate instead of metrics (0 = metrics) */
    const char *out;     /* where the history goes */
    double seed;
} lg_cli;

static const cli_opt lg_opts[] = {
    {"series", 0, true, "N", "about N series, 4 per host (default 4000)"},
    {"rate", 0, true, "POINTS/S", "points per second, 0 = as fast as possible (default 100000)"},
    {"format", 0, true, "lp|json", "Influx line protocol or Telegraf JSON (default lp)"},
    {"seconds", 0, true, "S", "run time in seconds, 0 = until Ctrl-C (default 60)"},
    {"anomalies", 0, true, "K", "incidents to inject over the run (default 6)"},
    {"tick", 0, true, "SECONDS", "data time between two points of a series (default 10)"},
    {"truth", 0, true, "FILE", "write the injected incidents as JSON lines to FILE"},
    {"history", 0, true, "N", "instead of metrics, write N past remediation runs (JSONL)"},
    {"out", 'o', true, "FILE", "with --history: the output file (\"-\" = stdout)"},
    {"seed", 0, true, "N", "with --history: random seed (default 1)"},
};
#define N_LG (sizeof lg_opts / sizeof lg_opts[0])

static bool num(const char *v, double lo, double hi, double *out, const char *flag)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "neuralops loadgen: --%s expects a number in [%g, %g], got \"%s\"\n", flag,
                lo, hi, v);
        return false;
    }
    *out = d;
    return true;
}

static bool on_opt(void *ud, const cli_opt *opt, const char *v)
{
    lg_cli *c = ud;
    double d;
    if (strcmp(opt->name, "series") == 0) {
        if (!num(v, 4, 1e8, &d, opt->name))
            return false;
        c->o.series = (uint32_t)d;
    } else if (strcmp(opt->name, "rate") == 0) {
        if (!num(v, 0, 1e9, &c->o.rate, opt->name))
            return false;
    } else if (strcmp(opt->name, "format") == 0) {
        if (strcmp(v, "lp") && strcmp(v, "json")) {
            fprintf(stderr, "neuralops loadgen: --format must be lp or json\n");
            return false;
        }
        c->o.json = strcmp(v, "json") == 0;
    } else if (strcmp(opt->name, "seconds") == 0) {
        if (!num(v, 0, 1e7, &c->o.seconds, opt->name))
            return false;
    } else if (strcmp(opt->name, "anomalies") == 0) {
        if (!num(v, 0, 256, &d, opt->name))
            return false;
        c->o.incidents = (uint32_t)d;
    } else if (strcmp(opt->name, "tick") == 0) {
        if (!num(v, 0.001, 86400, &c->o.tick_s, opt->name))
            return false;
    } else if (strcmp(opt->name, "truth") == 0) {
        c->o.truth = v;
    } else if (strcmp(opt->name, "history") == 0) {
        if (!num(v, 1, 1e9, &c->history, opt->name))
            return false;
    } else if (strcmp(opt->name, "seed") == 0) {
        if (!num(v, 0, 1e18, &c->seed, opt->name))
            return false;
    } else if (strcmp(opt->name, "out") == 0) {
        c->out = v;
    }
    return true;
}

static void history_progress(size_t done, size_t n)
{
    fprintf(stderr, "loadgen: %zu of %zu runs\n", done, n);
}

/* --history N --out FILE: a synthetic workflow_runs history as JSON lines. */
static int write_history(const lg_cli *c)
{
    if (!c->out) {
        fprintf(stderr, "neuralops loadgen: --history needs --out FILE\n");
        return NOPS_EXIT_USAGE;
    }
    FILE *f = strcmp(c->out, "-") == 0 ? stdout : nops_file_fopen(c->out, "w");
    if (!f) {
        fprintf(stderr, "neuralops loadgen: cannot write %s: %s\n", c->out, strerror(errno));
        return NOPS_EXIT_FAIL;
    }
    const size_t n = (size_t)c->history;
    /* errno of the first failure (a full disk, EFBIG past ulimit -f) */
    int why = history_write_jsonl(f, n, c->seed > 0 ? (uint64_t)c->seed : 1,
                                  history_progress);
    bool ok = why == 0;
    errno = 0;
    if ((f == stdout ? fflush(f) : fclose(f)) != 0 && ok) {
        ok = false;
        why = errno;
    }
    if (!ok) {
        fprintf(stderr, "neuralops loadgen: writing %s failed: %s\n", c->out,
                strerror(why ? why : EIO));
        return NOPS_EXIT_FAIL;
    }
    fprintf(stderr, "neuralops loadgen: %zu runs written to %s\n", n, c->out);
    return NOPS_EXIT_OK;
}

int nops_cmd_loadgen(int argc, char **argv)
{
    app_ctx ctx;
    if (!app_ctx_init(&ctx))
        return NOPS_EXIT_FAIL;
    lg_cli c = {.o = {.series = 4000, .rate = 100000, .seconds = 60, .incidents = 6, .tick_s = 10}};
    bool help;
    int status = NOPS_EXIT_USAGE;
    if (!cli_parse(&ctx, "loadgen", argc, argv, lg_opts, N_LG, on_opt, &c, &help))
        goto out;
    if (help) {
        printf("Usage: neuralops loadgen --brokers HOST:PORT [options]\n\n"
               "Produce a synthetic fleet (hosts × services × regions; cpu and http metrics,\n"
               "4 series per host, one message per host per tick keyed by host) to the\n"
               "metrics topic, injecting incidents of four kinds after a warm-up of 120\n"
               "ticks: latency_spike, deploy_regression, cpu_saturation, error_burst.\n\n");
        printf("With --history N --out FILE it writes N past remediation runs instead\n"
               "(workflow_runs as JSON lines, for neuralops vectorize), no broker needed.\n\n");
        cli_print_opts(&ctx, lg_opts, N_LG, stdout);
        status = NOPS_EXIT_OK;
        goto out;
    }
    if (c.history > 0) {
        status = write_history(&c);
        goto out;
    }
    c.o.brokers = ctx.kafka.brokers;
    c.o.kafka = &ctx.kafka;
    c.o.topic = ctx.kafka.topic;
    char err[512];
    loadgen *lg = loadgen_new(&c.o, NULL, err, sizeof err);
    if (!lg) {
        fprintf(stderr, "neuralops loadgen: %s\n", err);
        status = NOPS_EXIT_FAIL;
        goto out;
    }
    atomic_bool *stop = app_stop_on_signals();
    NOPS_INFO("loadgen", "producing ~%u series at %.0f points/s to %s on %s", c.o.series,
              c.o.rate, c.o.topic, c.o.brokers);
    nops_err e = loadgen_run(lg, stop);
    size_t n;
    loadgen_truth(lg, &n);
    fprintf(stderr, "neuralops loadgen: %llu messages, %llu points, %zu incident(s) injected\n",
            (unsigned long long)loadgen_messages(lg), (unsigned long long)loadgen_points(lg), n);
    loadgen_destroy(lg);
    status = e == NOPS_OK ? NOPS_EXIT_OK : NOPS_EXIT_FAIL;
out:
    app_ctx_fini(&ctx);
    return status;
}
