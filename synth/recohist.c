/*
 * recohist.c — the generated history and probes of recoeval.h.
 *
 * Each kind is one row of `kinds`: metric, label shape, direction, two summaries the history
 * uses (`seen`), one the fresh-words probes use (`fresh`, in words no history summary holds —
 * nops_synth_reco_fresh_words_unseen checks it), and its playbooks (frequency of use, true
 * success rate). Every summary takes (service, host, value) in that order. The unseen kinds
 * come last and have no playbooks: nothing in the history says what fixes them.
 */
#include "synth/recoeval.h"

#include "core/core.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define ALL_KINDS (NOPS_SYNTH_RECO_KINDS + NOPS_SYNTH_RECO_UNSEEN)
#define NOISE_SUCCESS 0.3 /* an unrelated playbook still "works" this often */

typedef struct rplaybook {
    const char *id; /* playbook id (NULL: no more) */
    double freq;    /* share of the kind's runs using it */
    double success; /* true success rate */
} rplaybook;

typedef struct rkind {
    const char *name;
    const char *metric;
    bool service_wide;   /* several hosts of a service */
    bool above;          /* the excursion goes up */
    double base;         /* the metric's usual value (for hints and summaries) */
    const char *seen[2]; /* summaries the history uses */
    const char *fresh;   /* the same incident in words the history never uses */
    rplaybook pb[3];
} rkind;

static const rkind kinds[ALL_KINDS] = {
    {"latency_spike", "http_latency_p50_ms", false, true, 120,
     {"p50 latency on %s/%s jumped to %.0f ms after a cache node restarted",
      "slow responses from %s on %s: median latency at %.0f ms"},
     "sluggish replies at %s via %s, typical turnaround %.0f msec",
     {{"restart-pod", 0.50, 0.30}, {"clear-cache", 0.20, 0.55}, {"scale-out", 0.30, 0.92}}},
    {"deploy_regression", "http_latency_p50_ms", true, true, 120,
     {"latency regression on every %s host (%s first) after a deploy: %.0f ms",
      "release of %s made requests slower fleet-wide, %s worst at %.0f ms"},
     "newest build shipped to %s degraded everything; %s leads at %.0f msec",
     {{"restart-pod", 0.45, 0.20}, {"rollback-deploy", 0.35, 0.95}, {"scale-out", 0.20, 0.35}}},
    {"cpu_saturation", "cpu_usage_user", false, true, 30,
     {"cpu saturation on %s/%s: usage_user at %.0f%% with run queue growing",
      "processor pegged on %s host %s, %.0f%% busy"},
     "compute drained at %s box %s: %.0f percent utilisation",
     {{"scale-out", 0.55, 0.85}, {"restart-pod", 0.30, 0.40}, {"throttle-batch-jobs", 0.15, 0.60}}},
    {"error_burst", "http_error_rate", true, true, 2,
     {"error burst across %s (%s worst): %.1f%% of requests failing upstream",
      "%s returning 5xx errors, %s hit hardest at %.1f%%"},
     "many calls to %s blow up; %s tops faults: %.1f percent",
     {{"restart-pod", 0.50, 0.25}, {"failover-dependency", 0.30, 0.90},
      {"rollback-deploy", 0.20, 0.60}}},
    {"disk_pressure", "disk_used_percent", false, true, 70,
     {"disk filling on %s/%s: %.0f%% used, log volume growing",
      "storage almost full for %s on %s at %.0f%%"},
     "%s machine %s nearly out of room, %.0f percent occupied",
     {{"rotate-logs", 0.60, 0.92}, {"expand-volume", 0.40, 0.65}, {NULL, 0, 0}}},
    {"traffic_drop", "http_requests_rate", true, false, 900,
     {"traffic to %s dropped (%s first): %.0f req/s, ingress health checks flapping",
      "request volume for %s fell sharply, %s lowest at %.0f req/s"},
     "hardly anybody reaching %s anymore; %s quietest, %.0f hits per second",
     {{"restart-ingress", 0.60, 0.30}, {"failover-region", 0.40, 0.88}, {NULL, 0, 0}}},
    {"memory_leak", "process_resident_memory_bytes", false, true, 800,
     {"memory of %s on %s keeps climbing to %.0f MB without release",
      "resident set of %s/%s grows steadily, %.0f MB now"},
     "footprint swelling unbounded: %s at %s, %.0f megabytes",
     {{"restart-pod", 0.60, 0.90}, {"scale-out", 0.25, 0.40}, {"capture-heap-dump", 0.15, 0.70}}},
    {"db_connections", "pg_stat_activity_count", true, true, 80,
     {"database connections from %s exhausted (%s worst): %.0f active sessions",
      "connection pool of %s saturated, %s holds %.0f sessions open"},
     "postgres refuses newcomers: %s; %s hogging %.0f backends",
     {{"restart-pod", 0.50, 0.25}, {"kill-idle-sessions", 0.30, 0.90}, {"scale-out", 0.20, 0.40}}},
    {"queue_backlog", "queue_depth_messages", true, true, 500,
     {"queue backlog for %s growing (%s slowest consumer): %.0f messages waiting",
      "consumers of %s falling behind, %s at %.0f pending messages"},
     "unprocessed work piling up: %s; %s lagging by %.0f items",
     {{"scale-consumers", 0.55, 0.88}, {"restart-pod", 0.45, 0.45}, {NULL, 0, 0}}},
    {"cert_expiry", "tls_cert_expiry_days", false, false, 60,
     {"tls certificate of %s on %s expires in %.0f days",
      "certificate for %s/%s close to expiry: %.0f days left"},
     "handshake credential guarding %s at %s lapses within %.0f dawns",
     {{"renew-certificate", 0.70, 0.95}, {"restart-ingress", 0.30, 0.30}, {NULL, 0, 0}}},
    {"dns_failures", "dns_lookup_errors_rate", true, true, 1,
     {"dns lookups failing for %s (%s worst): %.1f%% resolution errors",
      "name resolution errors across %s, %s at %.1f%%"},
     "hostnames unresolvable in %s; %s cannot find peers, %.1f percent",
     {{"restart-pod", 0.55, 0.20}, {"flush-dns-cache", 0.15, 0.55},
      {"failover-resolver", 0.30, 0.93}}},
    {"gc_pause", "jvm_gc_pause_ms", false, true, 40,
     {"long garbage collection pauses on %s/%s: %.0f ms stop the world",
      "jvm of %s on %s spends %.0f ms in gc pauses"},
     "heap sweeping freezes %s at %s: %.0f msec each cycle",
     {{"tune-heap", 0.50, 0.85}, {"restart-pod", 0.50, 0.50}, {NULL, 0, 0}}},
    {"packet_loss", "net_packet_loss_percent", false, true, 0.5,
     {"packet loss on %s/%s at %.1f%%, retransmits rising",
      "network drops packets for %s host %s: %.1f%% lost"},
     "flaky link beneath %s near %s, %.1f percent datagrams vanish",
     {{"restart-pod", 0.55, 0.25}, {"drain-node", 0.45, 0.90}, {NULL, 0, 0}}},
    {"cache_miss", "cache_hit_ratio", true, false, 0.9,
     {"cache hit ratio of %s collapsed (%s worst): %.2f",
      "cache misses surge for %s, %s hit ratio down to %.2f"},
     "lookaside tier barely helps %s; %s answers %.2f via memo",
     {{"warm-cache", 0.60, 0.88}, {"clear-cache", 0.40, 0.35}, {NULL, 0, 0}}},
    /* the kinds the history does not hold */
    {"replication_lag", "db_replication_lag_seconds", false, true, 2,
     {"replica %s/%s trails its primary by %.0f seconds", NULL},
     "replica %s/%s trails its primary by %.0f seconds",
     {{NULL, 0, 0}}},
    {"thread_pool_exhaustion", "http_server_threads_busy", true, true, 50,
     {"worker threads of %s all busy (%s worst): %.0f threads blocked", NULL},
     "worker threads of %s all busy (%s worst): %.0f threads blocked",
     {{NULL, 0, 0}}},
    {"batch_overrun", "job_duration_seconds", false, true, 3600,
     {"nightly batch on %s/%s overran its window by %.0f minutes", NULL},
     "nightly batch on %s/%s overran its window by %.0f minutes",
     {{NULL, 0, 0}}},
    {"login_failures", "auth_failed_logins_rate", true, true, 5,
     {"failed sign-ins against %s surging (%s first): %.0f attempts a minute", NULL},
     "failed sign-ins against %s surging (%s first): %.0f attempts a minute",
     {{NULL, 0, 0}}},
};

static const char *services[] = {"checkout", "search", "auth", "payments", "catalog", "ledger"};
static const char *regions[] = {"eu-west-1", "us-east-1"};
static const char *people[] = {"alice.smith", "bob.jones", "carol.wu", "dmitri.k", "erin.o"};

static double urand(uint64_t *s)
{
    if (!*s)
        *s = 0x2545F4914F6CDD1Dull;
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) * (1.0 / 9007199254740992.0);
}

static int pick(uint64_t *s, int n)
{
    return (int)(urand(s) * n) % n;
}

const char *nops_synth_reco_kind(int k)
{
    return k >= 0 && k < ALL_KINDS ? kinds[k].name : NULL;
}

static const rplaybook *best_of(int k)
{
    if (k < 0 || k >= NOPS_SYNTH_RECO_KINDS)
        return NULL;
    const rplaybook *best = &kinds[k].pb[0];
    for (int i = 1; i < 3 && kinds[k].pb[i].id; i++)
        if (kinds[k].pb[i].success > best->success)
            best = &kinds[k].pb[i];
    return best;
}

const char *nops_synth_reco_best(int k)
{
    const rplaybook *b = best_of(k);
    return b ? b->id : NULL;
}

bool nops_synth_reco_trap(int k)
{
    const rplaybook *b = best_of(k);
    if (!b)
        return false;
    for (int i = 0; i < 3 && kinds[k].pb[i].id; i++)
        if (kinds[k].pb[i].freq > b->freq)
            return true;
    return false;
}

/* The signals of an incident of kind kd on service svc, hosts around host; *value: the last
 * signal's value (the summaries quote it). */
static json_t *signals_of(uint64_t *rng, const rkind *kd, const char *svc, int host,
                          const char *region, double *value)
{
    json_t *arr = json_array();
    const int n = kd->service_wide ? 2 + pick(rng, 4) : 1 + pick(rng, 2);
    for (int i = 0; arr && i < n; i++) {
        char h[48], hint[300];
        snprintf(h, sizeof h, "%s-%03d", svc, kd->service_wide ? (host + i * 7) % 500 : host);
        const double z = 5 + urand(rng) * 10;
        const double v = kd->base * (kd->above ? 1 + z / 10 : 1 - z / 30);
        *value = v;
        const bool ewma = urand(rng) < 0.3;
        snprintf(hint, sizeof hint, "%s{host=\"%s\",region=\"%s\",service=\"%s\"} is %.1fσ %s "
                 "its %s (%.4g)", kd->metric, h, region, svc, z, kd->above ? "above" : "below",
                 ewma ? "moving average" : "rolling mean", kd->base);
        json_array_append_new(
            arr, json_pack("{s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:f, s:f}", "metric", kd->metric,
                           "labels", "host", h, "region", region, "service", svc, "method",
                           ewma ? "ewma" : "zscore", "hint", hint, "score",
                           1 - pow(2, -(z / 4) * (z / 4)), "value", v));
    }
    return arr;
}

/* labels, summary (`tpl`), metrics, signals of an incident of kind k */
static json_t *incident_of(uint64_t *rng, int k, const char *tpl)
{
    const rkind *kd = &kinds[k];
    const char *svc = services[pick(rng, 6)], *region = regions[pick(rng, 2)];
    const int host = pick(rng, 500);
    double value = 0;
    json_t *sigs = signals_of(rng, kd, svc, host, region, &value);
    char h[48], summary[400];
    snprintf(h, sizeof h, "%s-%03d", svc, host);
    snprintf(summary, sizeof summary, tpl, svc, h, value);
    json_t *labels = kd->service_wide ? json_pack("{s:s, s:s}", "service", svc, "region", region)
                                      : json_pack("{s:s, s:s, s:s}", "service", svc, "host", h,
                                                  "region", region);
    if (!sigs || !labels) {
        json_decref(sigs);
        json_decref(labels);
        return NULL;
    }
    return json_pack("{s:o, s:s, s:[s], s:o}", "labels", labels, "summary", summary, "metrics",
                     kd->metric, "signals", sigs);
}

json_t *nops_synth_reco_incident(uint64_t *rng, int k, bool fresh)
{
    if (k < 0 || k >= ALL_KINDS)
        return NULL;
    const rkind *kd = &kinds[k];
    const char *tpl = fresh || !kd->seen[1] ? kd->fresh : kd->seen[pick(rng, 2)];
    return incident_of(rng, k, tpl);
}

/* The playbook of a run of kind k: one of its own by frequency, or (noise) another kind's. */
static const rplaybook *run_playbook(uint64_t *rng, int k, double noise, bool *unrelated)
{
    const rkind *kd = &kinds[k];
    *unrelated = urand(rng) < noise;
    if (*unrelated) {
        for (;;) { /* a playbook of another kind that is none of k's */
            const rkind *o = &kinds[pick(rng, NOPS_SYNTH_RECO_KINDS)];
            const rplaybook *pb = &o->pb[pick(rng, 3)];
            bool own = false;
            for (int i = 0; pb->id && i < 3 && kd->pb[i].id; i++)
                own = own || strcmp(kd->pb[i].id, pb->id) == 0;
            if (pb->id && !own)
                return pb;
        }
    }
    const double u = urand(rng);
    double acc = 0;
    for (int i = 0; i < 3 && kd->pb[i].id; i++) {
        acc += kd->pb[i].freq;
        if (u < acc)
            return &kd->pb[i];
    }
    return &kd->pb[0];
}

json_t *nops_synth_reco_run(uint64_t *rng, int k, double noise, uint64_t id)
{
    if (k < 0 || k >= NOPS_SYNTH_RECO_KINDS)
        return NULL;
    bool unrelated;
    const rplaybook *pb = run_playbook(rng, k, noise, &unrelated);
    const double p = unrelated ? NOISE_SUCCESS : pb->success;
    const char *status = urand(rng) < p ? "success" : urand(rng) < 0.9 ? "failure" : "aborted";
    json_t *run = incident_of(rng, k, kinds[k].seen[pick(rng, 2)]);
    if (!run)
        return NULL;
    const char *who = people[pick(rng, 5)];
    char text[512], notes[200], rid[32], t0[40], t1[40];
    snprintf(text, sizeof text, "%s; paged %s@corp.example.com",
             json_string_value(json_object_get(run, "summary")), who);
    snprintf(notes, sizeof notes, "ran %s from bastion 192.168.%d.%d", pb->id, pick(rng, 255),
             1 + pick(rng, 254));
    snprintf(rid, sizeof rid, "run-%07llu", (unsigned long long)id);
    const int64_t start = 1700000000000000000ll + (int64_t)(urand(rng) * 3e16);
    nops_format_ts(start, t0, sizeof t0);
    nops_format_ts(start + (int64_t)(60e9 + urand(rng) * 900e9), t1, sizeof t1);
    json_object_del(run, "summary");
    const bool ok = json_object_set_new(run, "incident_summary", json_string(text)) == 0 &&
                    json_object_set_new(run, "id", json_string(rid)) == 0 &&
                    json_object_set_new(run, "playbook_id", json_string(pb->id)) == 0 &&
                    json_object_set_new(run, "started_at", json_string(t0)) == 0 &&
                    json_object_set_new(run, "finished_at", json_string(t1)) == 0 &&
                    json_object_set_new(run, "status", json_string(status)) == 0 &&
                    json_object_set_new(run, "executed_by", json_string(who)) == 0 &&
                    json_object_set_new(run, "notes", json_string(notes)) == 0;
    if (!ok) {
        json_decref(run);
        return NULL;
    }
    return run;
}

/* Whether the word w (n letters, lowercase) is one of a template's words. */
static bool has_word(const char *tpl, const char *w, size_t n)
{
    for (const char *p = tpl; p && *p;) {
        if (!isalpha((unsigned char)*p) || (p > tpl && p[-1] == '%')) {
            p++;
            continue;
        }
        size_t m = 0;
        while (isalpha((unsigned char)p[m]))
            m++;
        if (m == n && strncasecmp(p, w, n) == 0)
            return true;
        p += m;
    }
    return false;
}

bool nops_synth_reco_fresh_words_unseen(char *word, size_t cap)
{
    for (int k = 0; k < NOPS_SYNTH_RECO_KINDS; k++) {
        const char *f = kinds[k].fresh;
        for (const char *p = f; *p;) {
            if (!isalpha((unsigned char)*p) || (p > f && p[-1] == '%')) { /* %s, %.0f */
                p++;
                continue;
            }
            size_t n = 0;
            while (isalpha((unsigned char)p[n]))
                n++;
            for (int j = 0; n >= 3 && j < NOPS_SYNTH_RECO_KINDS; j++)
                for (int t = 0; t < 2; t++)
                    if (has_word(kinds[j].seen[t], p, n) || has_word("paged", p, n)) {
                        snprintf(word, cap, "%.*s", (int)n, p);
                        return false;
                    }
            p += n;
        }
    }
    return true;
}
