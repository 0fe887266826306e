/*
 * bench_quality.c — `neuralops-bench quality`: signal precision of the engine at its defaults
 * on the labelled corpus and fleet of synth/corpus.h, beside two baselines run in the same
 * process (synth/quality.h): a plain rolling z-score at 4σ over 60 points (what the engine's
 * detector started as) and a windowed Gaussian over 1,000 points (NAB's "windowedGaussian"),
 * whose threshold is swept over a grid and the best standard NAB score kept, as NAB does for
 * every detector it ranks. The engine gets no such tuning: it runs at its defaults.
 *
 * Output: one JSON line per figure (peer = the windowed Gaussian; the rolling z and the issue's
 * target in extra fields), and a table on stderr.
 */
#include "bench/bench.h"
#include "synth/quality.h"

#include <stdlib.h>
#include <string.h>

#define RZ_THRESHOLD 4.0
#define RZ_WINDOW 60
#define WG_WINDOW 1000

typedef struct result {
    const char *name;
    double threshold;
    nops_synth_corpus_figures c;
    nops_synth_fleet_figures f;
    double seconds;
} result;

static int run(const nops_synth_corpus *corpus, const nops_synth_fleet *fleet,
               const nops_synth_run_opts *o, result *r)
{
    char err[256] = "";
    const double t0 = bench_seconds();
    nops_err e = nops_synth_run_corpus(corpus, o, &r->c, err, sizeof err);
    if (e == NOPS_OK) e = nops_synth_run_fleet(fleet, o, &r->f, err, sizeof err);
    r->seconds = bench_seconds() - t0;
    if (e != NOPS_OK) {
        fprintf(stderr, "neuralops-bench quality: %s: %s (%s)\n", r->name, err, nops_strerror(e));
        return 1;
    }
    return 0;
}

/* The windowed Gaussian at the threshold of its best standard NAB score on the corpus. */
static int sweep_wgauss(const nops_synth_corpus *corpus, const nops_synth_fleet *fleet,
                        const nops_correlate_params *cp, result *r)
{
    static const double grid[] = {2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6, 7, 8, 10, 12};
    double best = -1e300, best_t = grid[0];
    for (size_t i = 0; i < sizeof grid / sizeof grid[0]; i++) {
        nops_synth_run_opts o = {
            .det = NOPS_SYNTH_WGAUSS, .threshold = grid[i], .window = WG_WINDOW};
        nops_synth_corpus_figures c;
        char err[256] = "";
        nops_err e = nops_synth_run_corpus(corpus, &o, &c, err, sizeof err);
        if (e != NOPS_OK) {
            fprintf(stderr, "neuralops-bench quality: windowed Gaussian: %s\n", err);
            return 1;
        }
        if (c.score[0] > best) {
            best = c.score[0];
            best_t = grid[i];
        }
    }
    r->threshold = best_t;
    nops_synth_run_opts o = {
        .det = NOPS_SYNTH_WGAUSS, .threshold = best_t, .window = WG_WINDOW, .cp = cp};
    return run(corpus, fleet, &o, r);
}

/* The engine's settings: the config tables' defaults, then each --set; 0 or 1 (reported). */
static int settings(const bench_opts *o, nops_detect_params *dp, nops_correlate_params *cp)
{
    char err[256] = "";
    nops_cfg *cfg = nops_cfg_new();
    nops_err e = cfg ? NOPS_OK : NOPS_NOMEM;
    if (e == NOPS_OK) e = nops_cfg_add(cfg, &nops_detect_cfg_section, dp, err, sizeof err);
    if (e == NOPS_OK) e = nops_cfg_add(cfg, &nops_correlate_cfg_section, cp, err, sizeof err);
    for (int i = 0; e == NOPS_OK && i < o->n_sets; i++) {
        char name[128];
        const char *eq = strchr(o->sets[i], '=');
        if (!eq || (size_t)(eq - o->sets[i]) >= sizeof name) {
            snprintf(err, sizeof err, "--set expects section.key=value, not \"%s\"", o->sets[i]);
            e = NOPS_INVAL;
            break;
        }
        memcpy(name, o->sets[i], (size_t)(eq - o->sets[i]));
        name[eq - o->sets[i]] = '\0';
        e = nops_cfg_set(cfg, name, eq + 1, "--set", err, sizeof err);
        if (e == NOPS_OK) fprintf(stderr, "quality: engine runs with %s\n", o->sets[i]);
    }
    if (e == NOPS_OK) e = nops_cfg_finalize(cfg, err, sizeof err);
    nops_cfg_destroy(cfg);
    if (e != NOPS_OK) {
        fprintf(stderr, "neuralops-bench quality: %s\n", *err ? err : nops_strerror(e));
        return 1;
    }
    return 0;
}

static void emit(const char *figure, double v, const char *unit, const result *wg, double wg_v,
                 const result *rz, double rz_v, const char *target)
{
    (void)wg;
    char extra[256];
    snprintf(extra, sizeof extra,
             "\"rolling_z\":%.6g,\"rolling_z_threshold\":%.1f,"
             "\"wgauss_threshold\":%.1f,\"target\":\"%s\"",
             rz_v, rz->threshold, wg->threshold, target);
    bench_emit("quality", figure, v, unit, "windowed_gaussian", wg_v, extra);
}

static void table(const result *r, size_t n, const nops_synth_corpus *c, const nops_synth_fleet *f)
{
    fprintf(stderr,
            "\ncorpus: %u series, %llu points, %u labelled windows; fleet: %u series x %u steps "
            "(%llu points), %u events\n",
            c->n, (unsigned long long)c->points, r[0].c.tally[0].windows, f->n_series, f->o.ticks,
            (unsigned long long)r[0].f.points, f->n_ev);
    fprintf(stderr, "%-40s", "");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%18s", r[i].name);
    fprintf(stderr, "%14s\n", "target");
#define ROW(label, fmt, expr, target)                                                              \
    do {                                                                                           \
        fprintf(stderr, "%-40s", label);                                                           \
        for (size_t i = 0; i < n; i++)                                                             \
            fprintf(stderr, "%18" fmt, expr);                                                      \
        fprintf(stderr, "%14s\n", target);                                                         \
    } while (0)
    ROW("threshold (|z|)", ".1f", r[i].threshold, "");
    ROW("NAB standard (corpus)", ".1f", r[i].c.score[0], ">=1.3x wg");
    ROW("NAB reward_low_FP (corpus)", ".1f", r[i].c.score[1], "");
    ROW("NAB reward_low_FN (corpus)", ".1f", r[i].c.score[2], "");
    ROW("windows detected (corpus)", "u", r[i].c.tally[0].hit, "");
    ROW("false detections (corpus)", "u", r[i].c.tally[0].fp, "");
    ROW("fleet recall", ".3f", r[i].f.ev.recall, ">=0.98");
    ROW("fleet precision (signals)", ".3f", r[i].f.ev.precision, "");
    ROW("fleet signals", "llu", (unsigned long long)r[i].f.ev.signals, "");
    ROW("fleet false signals", "llu", (unsigned long long)r[i].f.ev.false_signals, "");
    ROW("fleet false per 100k points", ".1f", r[i].f.ev.false_per_100k, "<=1");
    ROW("fleet mean delay (steps)", ".1f", r[i].f.ev.mean_delay, "");
    ROW("host events in one own incident", ".3f", r[i].f.ev.host_share, ">=0.95");
    ROW("service events grouped", "u", r[i].f.ev.service_one, "");
    ROW("incidents", "u", r[i].f.ev.incidents, "");
    ROW("incidents without a true signal", "u", r[i].f.ev.false_incidents, "");
    ROW("incidents per event", ".2f", r[i].f.ev.incidents_per_event, "");
    for (uint32_t m = 0; m < NOPS_SYNTH_METRICS; m++) {
        char label[64];
        snprintf(label, sizeof label, "  false: %s", nops_synth_metric_name(m));
        ROW(label, "llu", (unsigned long long)r[i].f.false_by_metric[m], "");
    }
    ROW("  false: in the first 100 steps", "llu", (unsigned long long)r[i].f.false_early, "");
    for (int k = 0; k < NOPS_SYNTH_KINDS; k++) {
        char label[64], cell[NOPS_SYNTH_KINDS][3][24];
        snprintf(label, sizeof label, "  corpus %s", nops_synth_kind_name(k));
        for (size_t i = 0; i < n && i < 3; i++)
            snprintf(cell[k][i], sizeof cell[k][i], "%u/%u fp %u", r[i].c.kind[k].hit,
                     r[i].c.kind[k].windows, r[i].c.kind[k].fp);
        ROW(label, "s", cell[k][i], "");
    }
    ROW("seconds", ".2f", r[i].seconds, "");
#undef ROW
}

/* Every fleet event and, per detector, signals/delay/incidents/other hosts in them. */
static void event_table(const result *r, size_t n, const nops_synth_fleet *f)
{
    fprintf(stderr, "\n%-3s %-15s %-9s %-24s %-7s %-9s", "#", "kind", "service", "hosts",
            "metrics", "window");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %22s", r[i].name);
    fprintf(stderr, "\n%72s", "");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %22s", "sig dly inc +hosts");
    fprintf(stderr, "\n");
    for (uint32_t k = 0; k < f->n_ev && k < NOPS_SYNTH_MAX_OUTCOMES; k++) {
        const nops_synth_event *e = &f->ev[k];
        char hosts[64] = "", metrics[8] = "", win[16];
        size_t len = 0;
        for (uint32_t j = 0; j < e->n_hosts && len < sizeof hosts - 8; j++)
            len += (size_t)snprintf(hosts + len, sizeof hosts - len, "%s%u", j ? "," : "",
                                    (unsigned)e->hosts[j]);
        for (uint32_t m = 0; m < NOPS_SYNTH_METRICS; m++)
            metrics[m] = (e->metrics & (1u << m)) ? "cmdle"[m] : '.';
        metrics[NOPS_SYNTH_METRICS] = '\0';
        snprintf(win, sizeof win, "%u-%u", (unsigned)e->start, (unsigned)e->win_last);
        fprintf(stderr, "%-3u %-15s %-9s %-24s %-7s %-9s", (unsigned)k, e->kind,
                nops_synth_service_name(e->service), hosts, metrics, win);
        for (size_t i = 0; i < n; i++) {
            const nops_synth_event_outcome *x = &r[i].f.outcome[k];
            fprintf(stderr, " %6u %3u %3u %6u", x->signals, x->delay, x->incidents,
                    x->other_hosts);
        }
        fprintf(stderr, "\n");
    }
    fprintf(stderr, "metrics: c cpu, m mem, d disk, l latency, e errors; dly in steps; +hosts: "
                    "hosts outside the event in its incidents\n");
}

int bench_quality(const bench_opts *o)
{
    const uint64_t seed = o->seed ? o->seed : 14;
    nops_synth_corpus *corpus = NULL;
    nops_synth_fleet *fleet = NULL;
    nops_synth_fleet_opts fo;
    nops_synth_fleet_opts_default(&fo);
    nops_err e = nops_synth_corpus_new(seed, o->quick ? 1 : 4, &corpus);
    if (e == NOPS_OK) e = nops_synth_fleet_new(&fo, seed, &fleet);
    if (e != NOPS_OK) {
        fprintf(stderr, "neuralops-bench quality: generating the data: %s\n", nops_strerror(e));
        nops_synth_corpus_destroy(corpus);
        return 1;
    }
    fprintf(stderr, "quality: seed %llu, running the engine and two baselines...\n",
            (unsigned long long)seed);
    result r[3] = {{.name = "engine"},
                   {.name = "rolling_z", .threshold = RZ_THRESHOLD},
                   {.name = "windowed_gaussian"}};
    nops_synth_run_opts eo = {.det = NOPS_SYNTH_ENGINE};
    nops_synth_run_opts ro = {
        .det = NOPS_SYNTH_ROLLING_Z, .threshold = RZ_THRESHOLD, .window = RZ_WINDOW};
    nops_detect_params dp;
    nops_correlate_params cp;
    int rc = settings(o, &dp, &cp);
    eo.dp = &dp;
    eo.cp = &cp;
    ro.cp = &cp;
    r[0].threshold = dp.z_threshold; /* shown in the table: the engine's |z| threshold */
    if (!rc) rc = run(corpus, fleet, &eo, &r[0]);
    if (!rc) rc = run(corpus, fleet, &ro, &r[1]);
    if (!rc) rc = sweep_wgauss(corpus, fleet, &cp, &r[2]);
    /* the engine without its seasonal baseline, for the figure with and without it */
    nops_detect_params dp_ns = dp;
    dp_ns.season_s = 0;
    dp_ns.season_points = 0;
    nops_synth_run_opts no = eo;
    no.dp = &dp_ns;
    result ns = {.name = "engine_without_season"};
    if (!rc) rc = run(corpus, fleet, &no, &ns);
    if (!rc) {
        const result *E = &r[0], *RZ = &r[1], *WG = &r[2];
        emit("nab_standard", E->c.score[0], "score", WG, WG->c.score[0], RZ, RZ->c.score[0],
             ">= 1.3 x windowed_gaussian");
        emit("nab_standard_without_season", ns.c.score[0], "score", WG, WG->c.score[0], RZ,
             RZ->c.score[0], "");
        emit("nab_reward_low_fp", E->c.score[1], "score", WG, WG->c.score[1], RZ, RZ->c.score[1],
             "");
        emit("nab_reward_low_fn", E->c.score[2], "score", WG, WG->c.score[2], RZ, RZ->c.score[2],
             "");
        emit("fleet_recall", E->f.ev.recall, "ratio", WG, WG->f.ev.recall, RZ, RZ->f.ev.recall,
             ">= 0.98");
        emit("fleet_precision", E->f.ev.precision, "ratio", WG, WG->f.ev.precision, RZ,
             RZ->f.ev.precision, "");
        emit("fleet_false_per_100k", E->f.ev.false_per_100k, "signals", WG, WG->f.ev.false_per_100k,
             RZ, RZ->f.ev.false_per_100k, "<= 1");
        emit("fleet_host_events_one_incident", E->f.ev.host_share, "ratio", WG, WG->f.ev.host_share,
             RZ, RZ->f.ev.host_share, ">= 0.95");
        emit("fleet_incidents_per_event", E->f.ev.incidents_per_event, "incidents", WG,
             WG->f.ev.incidents_per_event, RZ, RZ->f.ev.incidents_per_event, "");
        table(r, 3, corpus, fleet);
        fprintf(stderr,
                "engine without the seasonal baseline (detect.season_s=0): NAB standard %.1f, "
                "windows %u/%u, false detections %u (corpus)\n",
                ns.c.score[0], ns.c.tally[0].hit, ns.c.tally[0].windows,
                ns.c.tally[0].fp);
        if (o->events)
            event_table(r, 3, fleet);
    }
    nops_synth_corpus_destroy(corpus);
    nops_synth_fleet_destroy(fleet);
    return rc;
}
