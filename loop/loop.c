/*
 * loop.c — the closed loop (loop.h): recommendations attached in the pipeline's thread, then a
 * queue to one loop thread that audits, notifies, suggests, dry-runs, executes what the policy
 * lets run alone and follows the records it started until they finish.
 *
 * The queue is a ring of incident copies (nops_incident is inline storage, a few KiB) guarded
 * by one mutex; a pipeline thread holds it only to copy one incident in. The records followed
 * are a small array scanned every tick: they are few (one per suggested incident, bounded by
 * orchestrate.max_open) and each look is one record read.
 */
#include "loop/loop.h"

#include "sinks/sinks.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define LOG_SRC "loop"
#define MAX_WATCH 4096   /* records followed at once (orchestrate.max_open is at most this) */
#define OPENED_SLOTS 4096 /* incidents whose first sight is remembered, for the histograms */

/* ---- config ------------------------------------------------------------------------------ */

#define OFF(f) offsetof(nops_loop_params, f)
static const nops_cfg_entry loop_entries[] = {
    {"enabled", NOPS_CFG_BOOL, OFF(enabled), 0, 0, "true", NULL, NULL, 0,
     "Attach recommendations to incidents, notify, and suggest and dry-run the top playbook on "
     "their own (the policy gate still decides what runs)."},
    {"recommendations", NOPS_CFG_INT, OFF(recommendations), 1, NOPS_INCIDENT_MAX_RECOS, "3",
     NULL, NULL, 0, "Recommendations attached to each incident (top-N)."},
    {"suggest_confidence", NOPS_CFG_DOUBLE, OFF(suggest_confidence), 0, 1, "0.15", NULL, NULL, 0,
     "A top recommendation below this confidence is attached but never suggested. Confidence "
     "is calibrated on the history index (docs/recommendation.md): incidents of kinds absent "
     "from the history stay about 0.05-0.15, known kinds with a few consistent runs reach "
     "0.2-0.9."},
    {"suggest_severities", NOPS_CFG_STRING, OFF(suggest_severities), 0,
     sizeof(((nops_loop_params *)0)->suggest_severities), "warning,critical", NULL, NULL, 0,
     "Incident severities (info, warning, critical; comma-separated) that get a suggestion; "
     "the others get recommendations only. \"\" = no suggestions."},
    {"tick_ms", NOPS_CFG_INT, OFF(tick_ms), 50, 60000, "500", NULL, NULL, 0,
     "How often the records the engine started are looked at (dry-run done, approval, "
     "escalation due, execution finished)."},
    {"queue", NOPS_CFG_INT, OFF(queue), 16, 65536, "1024", NULL, NULL, 0,
     "Incidents waiting for the loop thread at most; more are dropped from the loop (counted "
     "in neuralops_loop_dropped_total) — they still reach the sinks."},
};
#undef OFF

const nops_cfg_section nops_loop_cfg_section = {
    "loop", "The closed loop: recommendations, suggestions, automatic runs and notifications "
    "downstream of the incident stream (docs/policies/approval_workflow.md).",
    loop_entries, sizeof loop_entries / sizeof loop_entries[0], NULL};

const double nops_loop_bucket_le[NOPS_LOOP_BUCKETS] = {0.1, 0.5, 1, 2, 5, 10, 30, 60, 300,
                                                       900, 3600, 14400};

const char *nops_loop_stage_name(nops_loop_stage s)
{
    static const char *const names[NOPS_LOOP_STAGES] = {"recommendation", "suggestion",
                                                        "approval", "execution"};
    return (unsigned)s < NOPS_LOOP_STAGES ? names[s] : "?";
}

/* ---- state ------------------------------------------------------------------------------- */

typedef struct job {
    nops_incident inc;
    unsigned events;
} job;

/* A record the engine started, followed until it ends. */
typedef struct watch {
    char id[80];             /* orchestration id */
    char incident[NOPS_ID_LEN];
    int64_t opened_wall;     /* when the loop first saw the incident (0 = unknown: restart) */
    bool pending_sent;       /* pending-approval notification sent */
    bool approved_seen;
    bool auto_tried;
} watch;

typedef struct opened_at {
    char id[NOPS_ID_LEN];
    int64_t wall;
} opened_at;

struct nops_loop {
    nops_loop_params p;
    nops_loop_deps d;
    pthread_mutex_t mu;
    pthread_cond_t cv, idle;
    job *ring;
    job *cur;             /* the loop thread's copy of the incident it handles */
    size_t cap, head, len;
    bool busy, stop;
    pthread_t th;
    /* loop thread only */
    watch *w;
    size_t nw;
    /* stats (histograms under hmu; counters atomic) */
    pthread_mutex_t hmu;
    nops_loop_hist h[NOPS_LOOP_STAGES];
    opened_at seen[OPENED_SLOTS];
    nops_ratelimit rl[6];
    _Atomic size_t watching;
    _Atomic uint64_t recommended, no_reco, reco_err, suggested, suggest_err, auto_started,
        auto_held, pending, escalations, dropped, audit_fail;
};


enum { RL_RECO, RL_QUEUE, RL_AUDIT, RL_SUGGEST, RL_NOTIFY, RL_WATCH, RL_KINDS };

/* A log line of kind `k`, at most one per NOPS_RATELIMIT_NS (the ones in between counted). */
static void say(nops_loop *l, int k, nops_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(nops_loop *l, int k, nops_log_level lvl, const char *fmt, ...)
{
    uint64_t missed = 0;
    pthread_mutex_lock(&l->hmu);
    bool due = nops_ratelimit_due(&l->rl[k], (int64_t)nops_now_ns(), &missed);
    pthread_mutex_unlock(&l->hmu);
    if (!due)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (missed)
        nops_log(lvl, LOG_SRC, "%s (and %llu more like it)", line, (unsigned long long)missed);
    else
        nops_log(lvl, LOG_SRC, "%s", line);
}

static size_t slot_of(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return (size_t)(h % OPENED_SLOTS);
}

/* The wall time the loop first saw incident `id` (remembered on first call). */
static int64_t first_seen(nops_loop *l, const char *id, int64_t now)
{
    pthread_mutex_lock(&l->hmu);
    opened_at *o = &l->seen[slot_of(id)];
    if (strcmp(o->id, id) != 0) {
        snprintf(o->id, sizeof o->id, "%s", id);
        o->wall = now;
    }
    int64_t t = o->wall;
    pthread_mutex_unlock(&l->hmu);
    return t;
}

static void observe(nops_loop *l, nops_loop_stage s, int64_t from_wall, int64_t to_wall)
{
    if (from_wall <= 0 || to_wall < from_wall)
        return;
    double v = (double)(to_wall - from_wall) / 1e9;
    pthread_mutex_lock(&l->hmu);
    nops_loop_hist *h = &l->h[s];
    for (int b = 0; b < NOPS_LOOP_BUCKETS; b++)
        if (v <= nops_loop_bucket_le[b])
            h->le[b]++;
    h->count++;
    h->sum += v;
    pthread_mutex_unlock(&l->hmu);
}

/* ---- the pipeline's side ------------------------------------------------------------------ */

static void attach(nops_loop *l, nops_incident *inc, unsigned events)
{
    const unsigned why = NOPS_INC_OPENED | NOPS_INC_NEW_SERIES | NOPS_INC_SEVERITY_UP;
    if (!l->d.reco || inc->status == NOPS_INCIDENT_RESOLVED ||
        (!(events & why) && inc->recommended_ns))
        return;
    nops_incident_reco out[NOPS_INCIDENT_MAX_RECOS];
    size_t n = 0;
    char err[256];
    nops_err e = nops_recommend_incident(l->d.reco, inc, (int)l->p.recommendations, out,
                                         NOPS_INCIDENT_MAX_RECOS, &n, err, sizeof err);
    if (e == NOPS_NOTFOUND) { /* no index yet: the learner or vectorize makes one */
        atomic_fetch_add(&l->no_reco, 1);
        return;
    }
    if (e != NOPS_OK) {
        atomic_fetch_add(&l->reco_err, 1);
        say(l, RL_RECO, NOPS_LOG_WARN, "incident %s got no recommendations: %s",
                       inc->id, err);
        return;
    }
    const bool first = inc->recommended_ns == 0;
    memcpy(inc->recos, out, n * sizeof out[0]);
    inc->n_recos = (uint8_t)n;
    inc->recommended_ns = nops_wall_ns();
    if (first) /* incidents, not records: updates re-rank without counting again */
        atomic_fetch_add(n ? &l->recommended : &l->no_reco, 1);
    if (first && n)
        observe(l, NOPS_LOOP_RECOMMENDED, first_seen(l, inc->id, inc->recommended_ns),
                inc->recommended_ns);
}

void nops_loop_incident(void *loop, nops_incident *inc, unsigned events)
{
    nops_loop *l = loop;
    if (!l || !l->p.enabled)
        return;
    if (events & NOPS_INC_OPENED)
        (void)first_seen(l, inc->id, nops_wall_ns());
    attach(l, inc, events);
    pthread_mutex_lock(&l->mu);
    if (l->len == l->cap) {
        pthread_mutex_unlock(&l->mu);
        atomic_fetch_add(&l->dropped, 1);
        say(l, RL_QUEUE, NOPS_LOG_WARN, "the loop's queue is full (%zu incidents): "
                       "incident %s is not notified or suggested (it went to the sinks; raise "
                       "loop.queue)", l->cap, inc->id);
        return;
    }
    job *j = &l->ring[(l->head + l->len) % l->cap];
    memcpy(&j->inc, inc, sizeof *inc);
    j->events = events;
    l->len++;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* ---- the loop thread: one incident -------------------------------------------------------- */

static void audit_reco(nops_loop *l, const nops_incident *inc)
{
    if (!l->d.audit || !inc->n_recos)
        return;
    json_t *top = json_array();
    for (unsigned i = 0; i < inc->n_recos; i++)
        json_array_append_new(top, json_pack("{s:s, s:f, s:f, s:i}", "playbook_id",
                                             inc->recos[i].playbook_id, "score",
                                             (double)inc->recos[i].score, "confidence",
                                             (double)inc->recos[i].confidence, "evidence",
                                             (int)inc->recos[i].evidence));
    json_t *det = json_pack("{s:o, s:s}", "top", top, "source", "automatic");
    char err[256];
    if (nops_audit_append(l->d.audit, NOPS_ORCH_ENGINE.id, "recommend", inc->id, "ranked", det, NULL, err,
                          sizeof err) != NOPS_OK) {
        atomic_fetch_add(&l->audit_fail, 1);
        say(l, RL_AUDIT, NOPS_LOG_ERROR, "automatic recommendation for %s not "
                       "audited: %s", inc->id, err);
    }
    json_decref(det);
}

static bool severity_routed(const nops_loop *l, nops_severity s)
{
    return nops_list_has(l->p.suggest_severities, nops_severity_name(s));
}

static watch *watch_add(nops_loop *l, const char *id, const char *incident, int64_t opened)
{
    for (size_t i = 0; i < l->nw; i++)
        if (strcmp(l->w[i].id, id) == 0)
            return &l->w[i];
    if (l->nw == MAX_WATCH) {
        say(l, RL_WATCH, NOPS_LOG_WARN, "already following %d orchestrations: %s "
                       "is not followed (it waits in GET /orchestrations)", MAX_WATCH, id);
        return NULL;
    }
    watch *w = &l->w[l->nw++];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    snprintf(w->incident, sizeof w->incident, "%s", incident);
    w->opened_wall = opened;
    return w;
}

/* Suggest the top recommendation of `inc` once, and start its dry-run. */
static void suggest(nops_loop *l, const nops_incident *inc)
{
    if (!l->d.orch || !inc->n_recos || inc->status == NOPS_INCIDENT_RESOLVED ||
        !severity_routed(l, inc->severity) ||
        inc->recos[0].confidence < (float)l->p.suggest_confidence)
        return;
    char buf[NOPS_ORCH_MAX_INCIDENT];
    size_t n = nops_incident_json(inc, buf, sizeof buf);
    json_t *incident = n ? json_loadb(buf, n, 0, NULL) : NULL;
    json_t *rec = NULL;
    bool created = false;
    char err[512] = "the incident could not be encoded";
    nops_err e = incident ? nops_orch_suggest_once(l->d.orch, incident, inc->recos[0].playbook_id,
                                                   &NOPS_ORCH_ENGINE, &rec, &created, err, sizeof err)
                          : NOPS_NOMEM;
    json_decref(incident);
    if (e != NOPS_OK) {
        atomic_fetch_add(&l->suggest_err, 1);
        say(l, RL_SUGGEST, NOPS_LOG_WARN, "no suggestion for incident %s (%s): %s",
                       inc->id, inc->recos[0].playbook_id, err);
        return;
    }
    const char *id = json_string_value(json_object_get(rec, "id"));
    int64_t now = nops_wall_ns(), opened = first_seen(l, inc->id, now);
    if (created) {
        atomic_fetch_add(&l->suggested, 1);
        observe(l, NOPS_LOOP_SUGGESTED, opened, now);
        NOPS_INFO(LOG_SRC, "incident %s: suggested %s (confidence %.2f) as orchestration %s",
                  inc->id, inc->recos[0].playbook_id, (double)inc->recos[0].confidence, id);
    }
    if (id)
        (void)watch_add(l, id, inc->id, opened);
    json_decref(rec);
}

static void handle(nops_loop *l, const job *j)
{
    const unsigned significant = NOPS_INC_OPENED | NOPS_INC_SEVERITY_UP | NOPS_INC_RESOLVED;
    if (j->events & (NOPS_INC_OPENED | NOPS_INC_NEW_SERIES | NOPS_INC_SEVERITY_UP))
        audit_reco(l, &j->inc);
    if (l->d.notify && (j->events & significant)) {
        nops_err e = nops_notify_incident(l->d.notify, &j->inc);
        if (e != NOPS_OK)
            say(l, RL_NOTIFY, NOPS_LOG_WARN, "incident %s not notified: %s",
                           j->inc.id, nops_strerror(e));
    }
    if (j->events & (NOPS_INC_OPENED | NOPS_INC_NEW_SERIES | NOPS_INC_SEVERITY_UP))
        suggest(l, &j->inc);
}

/* ---- the loop thread: following records --------------------------------------------------- */

static void notify_approval(nops_loop *l, const json_t *rec, const char *event, const char *lvl)
{
    if (!l->d.notify)
        return;
    nops_err e = nops_notify_approval(l->d.notify, rec, event, lvl);
    if (e != NOPS_OK)
        say(l, RL_NOTIFY, NOPS_LOG_WARN, "approval notification (%s) not queued: %s",
                       event, nops_strerror(e));
}

/* The escalation level a waiting record is notified at. */
static const char *level_of(const json_t *rec)
{
    const char *lvl = json_string_value(json_object_get(json_object_get(rec, "escalation"),
                                                        "level"));
    if (!lvl)
        lvl = json_string_value(json_object_get(json_object_get(rec, "policy"), "escalation"));
    return lvl && strcmp(lvl, "none") != 0 ? lvl : "warning";
}

/* A passed dry-run: run it when the policy lets it run alone, else say an approval waits. */
static void on_dry_run_ok(nops_loop *l, watch *w, const json_t *rec)
{
    const bool auto_ok = json_is_true(json_object_get(json_object_get(rec, "policy"),
                                                      "auto_execute"));
    if (auto_ok && !w->auto_tried) {
        w->auto_tried = true;
        json_t *out = NULL;
        char err[512];
        if (nops_orch_auto_execute(l->d.orch, w->id, &out, err, sizeof err) == NOPS_OK) {
            atomic_fetch_add(&l->auto_started, 1);
            observe(l, NOPS_LOOP_APPROVED, w->opened_wall, nops_wall_ns());
            w->approved_seen = true;
            NOPS_INFO(LOG_SRC, "orchestration %s runs automatically (policy allow, mode auto)",
                      w->id);
            json_decref(out);
            return;
        }
        atomic_fetch_add(&l->auto_held, 1);
        NOPS_WARN(LOG_SRC, "orchestration %s was not run automatically: %s; it waits for an "
                  "approval", w->id, err);
    }
    if (!w->pending_sent) {
        w->pending_sent = true;
        atomic_fetch_add(&l->pending, 1);
        notify_approval(l, rec, "pending", level_of(rec));
    }
}

/* Look at one followed record; false when it is finished (stop following it). */
static bool follow(nops_loop *l, watch *w)
{
    json_t *rec = NULL;
    if (nops_orch_get(l->d.orch, w->id, &rec) != NOPS_OK)
        return false;
    const char *st = json_string_value(json_object_get(rec, "state"));
    bool more = true;
    char err[512];
    if (!st || strcmp(st, "damaged") == 0 || strcmp(st, "denied") == 0 ||
        strcmp(st, "interrupted") == 0 || strcmp(st, "dry_run_failed") == 0) {
        more = false;
    } else if (strcmp(st, "suggested") == 0) {
        json_t *out = NULL;
        if (nops_orch_start(l->d.orch, NOPS_ORCH_DRY_RUN, w->id, &NOPS_ORCH_ENGINE, &out, err,
                            sizeof err) != NOPS_OK) {
            atomic_fetch_add(&l->suggest_err, 1);
            NOPS_WARN(LOG_SRC, "orchestration %s: the dry-run did not start: %s", w->id, err);
            more = false;
        }
        json_decref(out);
    } else if (strcmp(st, "dry_run_ok") == 0) {
        on_dry_run_ok(l, w, rec);
    } else if (strcmp(st, "approved") == 0 || strcmp(st, "executing") == 0) {
        if (!w->approved_seen) {
            w->approved_seen = true;
            observe(l, NOPS_LOOP_APPROVED, w->opened_wall, nops_wall_ns());
        }
    } else if (strcmp(st, "executed") == 0 || strcmp(st, "failed") == 0) {
        observe(l, NOPS_LOOP_FINISHED, w->opened_wall, nops_wall_ns());
        more = false;
    }
    if (!more && w->pending_sent)
        notify_approval(l, rec, "done", level_of(rec));
    json_decref(rec);
    return more;
}

static void on_escalated(void *ctx, const json_t *rec, const char *level)
{
    nops_loop *l = ctx;
    atomic_fetch_add(&l->escalations, 1);
    notify_approval(l, rec, "escalated", level);
}

static void tick(nops_loop *l)
{
    if (!l->d.orch)
        return;
    for (size_t i = 0; i < l->nw;) {
        if (follow(l, &l->w[i]))
            i++;
        else
            l->w[i] = l->w[--l->nw];
    }
    atomic_store(&l->watching, l->nw);
    (void)nops_orch_escalate_due(l->d.orch, nops_wall_ns(), on_escalated, l);
}

/* After a restart: follow again what the engine requested and that has not ended. */
static void rewatch(nops_loop *l)
{
    json_t *all = NULL;
    if (!l->d.orch || nops_orch_list(l->d.orch, NULL, MAX_WATCH, &all) != NOPS_OK)
        return;
    size_t i;
    json_t *rec;
    json_array_foreach(all, i, rec) {
        const char *by = json_string_value(json_object_get(rec, "requested_by"));
        const char *st = json_string_value(json_object_get(rec, "state"));
        const char *id = json_string_value(json_object_get(rec, "id"));
        const char *inc = json_string_value(
            json_object_get(json_object_get(rec, "context"), "incident_id"));
        if (!by || !st || !id || strcmp(by, NOPS_ORCH_ENGINE.id) != 0 ||
            !nops_list_has("suggested,dry_running,dry_run_ok,approved,executing", st))
            continue;
        (void)watch_add(l, id, inc ? inc : "", 0);
    }
    json_decref(all);
    if (l->nw)
        NOPS_INFO(LOG_SRC, "following %zu orchestrations the engine started before", l->nw);
}

static void *run(void *arg)
{
    nops_loop *l = arg;
    rewatch(l);
    pthread_mutex_lock(&l->mu);
    while (!l->stop || l->len) {
        if (!l->len) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = ts.tv_nsec + l->p.tick_ms * 1000000;
            ts.tv_sec += ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        }
        const bool got = l->len > 0; /* one at a time, into the thread's own copy */
        if (got) {
            *l->cur = l->ring[l->head];
            l->head = (l->head + 1) % l->cap;
            l->len--;
        }
        l->busy = true;
        pthread_mutex_unlock(&l->mu);
        if (got)
            handle(l, l->cur);
        tick(l);
        pthread_mutex_lock(&l->mu);
        l->busy = false;
        pthread_cond_broadcast(&l->idle);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- life cycle --------------------------------------------------------------------------- */

nops_loop *nops_loop_new(const nops_loop_params *p, const nops_loop_deps *d, char *errstr,
                         size_t errstr_size)
{
    nops_loop *l = calloc(1, sizeof *l);
    if (l) {
        l->p = *p;
        l->d = *d;
        l->cap = (size_t)p->queue;
        l->ring = calloc(l->cap, sizeof *l->ring);
        l->cur = calloc(1, sizeof *l->cur);
        l->w = calloc(MAX_WATCH, sizeof *l->w);
    }
    if (!l || !l->ring || !l->cur || !l->w) {
        nops_errf(errstr, errstr_size, "out of memory for the loop's queue");
        if (l) {
            free(l->ring);
            free(l->cur);
            free(l->w);
        }
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->hmu, NULL);
    pthread_cond_init(&l->cv, NULL);
    pthread_cond_init(&l->idle, NULL);
    if (pthread_create(&l->th, NULL, run, l) != 0) {
        nops_errf(errstr, errstr_size, "cannot start the loop thread");
        nops_loop_destroy(l);
        return NULL;
    }
    return l;
}

void nops_loop_flush(nops_loop *l)
{
    pthread_mutex_lock(&l->mu);
    while (l->len || l->busy)
        pthread_cond_wait(&l->idle, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

void nops_loop_destroy(nops_loop *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    const bool started = l->th != 0;
    l->stop = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (started)
        pthread_join(l->th, NULL);
    pthread_cond_destroy(&l->idle);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->hmu);
    pthread_mutex_destroy(&l->mu);
    free(l->w);
    free(l->ring);
    free(l->cur);
    free(l);
}

void nops_loop_get_stats(nops_loop *l, nops_loop_stats *st)
{
    memset(st, 0, sizeof *st);
    st->recommended = atomic_load(&l->recommended);
    st->no_recommendation = atomic_load(&l->no_reco);
    st->reco_errors = atomic_load(&l->reco_err);
    st->suggested = atomic_load(&l->suggested);
    st->suggest_errors = atomic_load(&l->suggest_err);
    st->auto_started = atomic_load(&l->auto_started);
    st->auto_held = atomic_load(&l->auto_held);
    st->approvals_pending = atomic_load(&l->pending);
    st->escalations = atomic_load(&l->escalations);
    st->dropped = atomic_load(&l->dropped);
    st->audit_failures = atomic_load(&l->audit_fail);
    pthread_mutex_lock(&l->hmu);
    memcpy(st->stage, l->h, sizeof st->stage);
    pthread_mutex_unlock(&l->hmu);
    st->watching = atomic_load(&l->watching);
}
