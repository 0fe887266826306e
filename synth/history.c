/*
 * history.c — the synthetic remediation history of history.h.
 */
#include "synth/history.h"

#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct playbook {
    const char *id;
    double freq;    /* share of the kind's runs using it */
    double success; /* true success rate */
} playbook;

typedef struct kind {
    const char *name;
    const char *metric;
    bool service_wide; /* several hosts of a service */
    bool above;        /* the excursion goes up */
    const char *summary; /* printf: service, host, value */
    playbook pb[3];
} kind;

static const kind kinds[HISTORY_KINDS] = {
    {"latency_spike", "http_latency_p50_ms", false, true,
     "p50 latency on %s/%s jumped to %.0f ms after a cache node restarted",
     {{"restart-pod", 0.55, 0.30}, {"clear-cache", 0.30, 0.55}, {"scale-out", 0.15, 0.92}}},
    {"deploy_regression", "http_latency_p50_ms", true, true,
     "latency regression on every %s host (%s first) after a deploy: %.0f ms",
     {{"restart-pod", 0.45, 0.20}, {"scale-out", 0.30, 0.35}, {"rollback-deploy", 0.25, 0.95}}},
    {"cpu_saturation", "cpu_usage_user", false, true,
     "cpu saturation on %s/%s: usage_user at %.0f%% with run queue growing",
     {{"scale-out", 0.50, 0.85}, {"restart-pod", 0.35, 0.40}, {"throttle-batch-jobs", 0.15, 0.6}}},
    {"error_burst", "http_error_rate", true, true,
     "error burst across %s (%s worst): %.1f%% of requests failing upstream",
     {{"restart-pod", 0.50, 0.25}, {"rollback-deploy", 0.30, 0.60},
      {"failover-dependency", 0.20, 0.90}}},
    {"disk_pressure", "disk_used_percent", false, true,
     "disk filling on %s/%s: %.0f%% used, log volume growing",
     {{"expand-volume", 0.55, 0.65}, {"rotate-logs", 0.45, 0.92}, {NULL, 0, 0}}},
    {"traffic_drop", "http_requests_rate", true, false,
     "traffic to %s dropped (%s first): %.0f req/s, ingress health checks flapping",
     {{"restart-ingress", 0.60, 0.30}, {"failover-region", 0.40, 0.88}, {NULL, 0, 0}}},
};

static const char *services[] = {"checkout", "search", "auth", "payments", "catalog", "ledger"};
static const char *regions[] = {"eu-west-1", "us-east-1"};
static const char *people[] = {"alice.smith", "bob.jones", "carol.wu", "dmitri.k", "erin.o"};

static double urand(history_gen *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (double)(g->rng >> 11) * (1.0 / 9007199254740992.0);
}

static int pick(history_gen *g, int n)
{
    return (int)(urand(g) * n) % n;
}

void history_init(history_gen *g, uint64_t seed)
{
    g->rng = seed ? seed : 0x2545F4914F6CDD1Dull;
    g->next_id = 1;
}

const char *history_kind(int k)
{
    return kinds[k].name;
}

const char *history_best_playbook(int k)
{
    const playbook *best = &kinds[k].pb[0];
    for (int i = 1; i < 3; i++)
        if (kinds[k].pb[i].id && kinds[k].pb[i].success > best->success)
            best = &kinds[k].pb[i];
    return best->id;
}

/* The signals of an incident of kind k on service s, hosts around h. */
static json_t *signals_of(history_gen *g, const kind *kd, const char *svc, int host,
                          const char *region, double *value)
{
    json_t *arr = json_array();
    int n = kd->service_wide ? 2 + pick(g, 4) : 1 + pick(g, 2);
    double base = strcmp(kd->metric, "cpu_usage_user") == 0 ? 30 : 120;
    for (int i = 0; i < n; i++) {
        char h[48], hint[300];
        snprintf(h, sizeof h, "%s-%03d", svc, kd->service_wide ? (host + i * 7) % 500 : host);
        double z = 5 + urand(g) * 10, v = base * (kd->above ? 1 + z / 10 : 1 - z / 30);
        *value = v;
        const bool ewma = urand(g) < 0.3;
        snprintf(hint, sizeof hint, "%s{host=\"%s\",region=\"%s\",service=\"%s\"} is %.1fσ %s "
                 "its %s (%.4g)", kd->metric, h, region, svc, z, kd->above ? "above" : "below",
                 ewma ? "moving average" : "rolling mean", base);
        json_array_append_new(
            arr, json_pack("{s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:f, s:f}", "metric", kd->metric,
                           "labels", "host", h, "region", region, "service", svc, "method",
                           ewma ? "ewma" : "zscore", "hint", hint, "score",
                           1 - pow(2, -(z / 4) * (z / 4)), "value", v));
    }
    return arr;
}

/* An incident object of kind k: labels, summary, metrics, signals. */
static json_t *incident_of(history_gen *g, int k, const char **svc_out)
{
    const kind *kd = &kinds[k];
    const char *svc = services[pick(g, 6)], *region = regions[pick(g, 2)];
    int host = pick(g, 500);
    double value = 0;
    json_t *sigs = signals_of(g, kd, svc, host, region, &value);
    char h[48], summary[400];
    snprintf(h, sizeof h, "%s-%03d", svc, host);
    snprintf(summary, sizeof summary, kd->summary, svc, h, value);
    json_t *labels = kd->service_wide ? json_pack("{s:s, s:s}", "service", svc, "region", region)
                                      : json_pack("{s:s, s:s, s:s}", "service", svc, "host", h,
                                                  "region", region);
    *svc_out = svc;
    return json_pack("{s:o, s:s, s:[s], s:o}", "labels", labels, "summary", summary, "metrics",
                     kd->metric, "signals", sigs);
}

json_t *history_incident(history_gen *g, int k)
{
    const char *svc;
    json_t *inc = incident_of(g, k, &svc);
    char id[32];
    snprintf(id, sizeof id, "inc-%06llu", (unsigned long long)g->next_id++);
    json_object_set_new(inc, "id", json_string(id));
    json_object_set_new(inc, "status", json_string("open"));
    return inc;
}

/* Notes with PII in them, as people write them. */
static void notes_of(history_gen *g, const char *who, char *out, size_t cap)
{
    static const char *tpl[] = {
        "paged %s@corp.example.com; db primary at 10.%d.%d.%d refused connections",
        "ran the playbook from bastion 192.168.%d.%d as %s, ticket OPS-%d",
        "%s used token=tok_%08x%08x to call the admin API; see +1 415-555-%04d",
        "curl -H 'Authorization: Bearer abc%08x.def%08x' by %s; password=Hunter%d!",
        "%s: AWS key AKIAIOSFODNN7EX%05d rotated after the incident; host fe80::%x:%x",
    };
    int t = pick(g, 5);
    unsigned a = (unsigned)(urand(g) * 4e9), b = (unsigned)(urand(g) * 4e9);
    switch (t) {
    case 0: snprintf(out, cap, tpl[0], who, pick(g, 255), pick(g, 255), 1 + pick(g, 254)); break;
    case 1: snprintf(out, cap, tpl[1], pick(g, 255), 1 + pick(g, 254), who, pick(g, 9999)); break;
    case 2: snprintf(out, cap, tpl[2], who, a, b, pick(g, 10000)); break;
    case 3: snprintf(out, cap, tpl[3], a, b, who, pick(g, 100)); break;
    default: snprintf(out, cap, tpl[4], who, pick(g, 100000), a & 0xffff, b & 0xffff); break;
    }
}

json_t *history_run(history_gen *g)
{
    int k = pick(g, HISTORY_KINDS);
    const kind *kd = &kinds[k];
    double u = urand(g), acc = 0;
    const playbook *pb = &kd->pb[0];
    for (int i = 0; i < 3 && kd->pb[i].id; i++) {
        acc += kd->pb[i].freq;
        if (u < acc) {
            pb = &kd->pb[i];
            break;
        }
    }
    const char *status = urand(g) < pb->success ? "success"
                         : urand(g) < 0.9       ? "failure"
                                                : "aborted";
    const char *svc;
    json_t *run = incident_of(g, k, &svc);
    json_t *summary = json_object_get(run, "summary");
    char text[512], who[64], notes[400], id[32], t0[40], t1[40];
    snprintf(who, sizeof who, "%s", people[pick(g, 5)]);
    snprintf(text, sizeof text, "%s; paged %s@corp.example.com", json_string_value(summary), who);
    json_object_set_new(run, "incident_summary", json_string(text));
    json_object_del(run, "summary");
    notes_of(g, who, notes, sizeof notes);
    snprintf(id, sizeof id, "run-%07llu", (unsigned long long)g->next_id++);
    int64_t start = 1700000000000000000ll + (int64_t)(urand(g) * 3e16);
    nops_format_ts(start, t0, sizeof t0);
    nops_format_ts(start + (int64_t)(60e9 + urand(g) * 900e9), t1, sizeof t1);
    json_object_set_new(run, "id", json_string(id));
    json_object_set_new(run, "playbook_id", json_string(pb->id));
    json_object_set_new(run, "started_at", json_string(t0));
    json_object_set_new(run, "finished_at", json_string(t1));
    json_object_set_new(run, "status", json_string(status));
    json_object_set_new(run, "executed_by", json_string(who));
    json_object_set_new(run, "notes", json_string(notes));
    return run;
}

int history_write_jsonl(FILE *f, size_t n, uint64_t seed, void (*progress)(size_t done, size_t n))
{
    history_gen g;
    history_init(&g, seed);
    for (size_t i = 0; i < n; i++) {
        json_t *run = history_run(&g);
        errno = 0;
        const bool ok = run && json_dumpf(run, f, JSON_COMPACT) == 0 && fputc('\n', f) != EOF;
        const int why = ok ? 0 : run ? (errno ? errno : EIO) : ENOMEM;
        json_decref(run);
        if (!ok)
            return why;
        if (progress && (i + 1) % 1000000 == 0)
            progress(i + 1, n);
    }
    return 0;
}
