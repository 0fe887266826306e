/*
 * loop.h — the closed loop: what the engine does with an incident once the pipeline has found
 * it, with nobody calling the API (docs/policies/approval_workflow.md says it for operators).
 *
 *   pipeline thread ──hook──▶ nops_loop_incident: on open, a new series or a severity rise,
 *                             recommendations are attached to the incident (so every sink
 *                             record carries them); then a copy is queued for the loop thread.
 *   loop thread ────────────▶ the automatic recommendation is audited; the incident is notified
 *                             (Alertmanager, webhooks); when its severity is routed to
 *                             suggestions and its top recommendation names a signed playbook
 *                             with enough confidence, one suggestion is made per incident and
 *                             playbook (nops_orch_suggest_once, requested by "engine") and
 *                             dry-run. Every tick it looks at the records it started: a passed
 *                             dry-run the policy allows to run alone is executed
 *                             (nops_orch_auto_execute: the kill switch, the budget and the
 *                             failed-before rule are checked there), one that waits for a human
 *                             is notified as a pending approval, escalations that are due are
 *                             raised and notified, finished runs close the approval alert.
 *
 * Nothing here blocks a pipeline thread beyond one recommendation (a FAISS search over the
 * history index): auditing, notifying and every orchestration step happen on the loop thread.
 * A full queue drops the incident's follow-up (never the incident: it has already gone to the
 * sinks with its recommendations), counted and logged.
 *
 * After a restart the records the engine requested and that are not finished are watched
 * again (taken from the record store), and suggest_once makes the same suggestion at most once
 * whatever the replay sends again.
 *
 * Ownership: the loop borrows every dependency (each may be NULL: that part is off) and must
 * be destroyed before them. Thread-safety: nops_loop_incident may be called from any number of
 * threads at once; the rest from one thread.
 */
#ifndef NOPS_LOOP_H
#define NOPS_LOOP_H

#include "core/core.h"
#include "notify/notify.h"
#include "orchestrate/orchestrate.h"
#include "recommend/recommend.h"

/** [loop] settings. */
typedef struct nops_loop_params {
    bool enabled;              /**< recommendations, suggestions and notifications on their own */
    int64_t recommendations;   /**< attached per incident (1..NOPS_INCIDENT_MAX_RECOS) */
    double suggest_confidence; /**< a recommendation below this is never suggested */
    char suggest_severities[64]; /**< incident severities that get a suggestion ("warning,..") */
    int64_t tick_ms;           /**< how often the records it started are looked at */
    int64_t queue;             /**< incidents waiting for the loop thread at most */
} nops_loop_params;

extern const nops_cfg_section nops_loop_cfg_section;

/** What the loop works with (all borrowed, all may be NULL). */
typedef struct nops_loop_deps {
    nops_recommender *reco;    /**< NULL: no recommendations (and so no suggestions) */
    nops_orchestrator *orch;   /**< NULL: no suggestions */
    nops_notifier *notify;     /**< NULL: nobody is notified */
    nops_audit *audit;         /**< NULL: automatic recommendations are not audited (tests) */
} nops_loop_deps;

typedef struct nops_loop nops_loop;

/** Start the loop thread (and watch again what the engine left unfinished); NULL + sentence. */
nops_loop *nops_loop_new(const nops_loop_params *p, const nops_loop_deps *d, char *errstr,
                         size_t errstr_size);
/** Finish the queued incidents (bounded by their own steps), stop the thread, free. */
void nops_loop_destroy(nops_loop *l);

/**
 * The pipeline's incident hook (nops_pipeline_set_incident_hook, ctx = the loop): attaches
 * recommendations to `inc` on NOPS_INC_OPENED, NOPS_INC_NEW_SERIES and NOPS_INC_SEVERITY_UP
 * (or when none are attached yet) and queues a copy for the loop thread. Thread-safe.
 */
void nops_loop_incident(void *loop, nops_incident *inc, unsigned events);

/** Wait until every incident queued so far has been handled (tests, the demo's summary). */
void nops_loop_flush(nops_loop *l);

/* Time to remediation: seconds from an incident's open (as the loop saw it) to each stage. */
typedef enum nops_loop_stage {
    NOPS_LOOP_RECOMMENDED = 0, /**< first recommendation attached */
    NOPS_LOOP_SUGGESTED,       /**< suggestion recorded */
    NOPS_LOOP_APPROVED,        /**< approval seen (or the automatic start) */
    NOPS_LOOP_FINISHED,        /**< execution finished (executed or failed) */
    NOPS_LOOP_STAGES
} nops_loop_stage;

#define NOPS_LOOP_BUCKETS 12
/** Upper bounds (seconds) of the histogram buckets, shared by every stage; +Inf is implied. */
extern const double nops_loop_bucket_le[NOPS_LOOP_BUCKETS];

typedef struct nops_loop_hist {
    uint64_t le[NOPS_LOOP_BUCKETS]; /**< cumulative counts, Prometheus style */
    uint64_t count;
    double sum;
} nops_loop_hist;

typedef struct nops_loop_stats {
    uint64_t recommended;     /**< incidents that got recommendations attached */
    uint64_t no_recommendation; /**< incidents the index had nothing for */
    uint64_t reco_errors;     /**< recommendations that failed (no index, nothing to embed) */
    uint64_t suggested;       /**< suggestions made (not counting ones that existed) */
    uint64_t suggest_errors;  /**< suggestions or dry-runs refused (logged) */
    uint64_t auto_started;    /**< executions started without a human */
    uint64_t auto_held;       /**< automatic executions a guard rail held back */
    uint64_t approvals_pending; /**< pending-approval notifications sent */
    uint64_t escalations;     /**< escalations raised and notified */
    uint64_t dropped;         /**< incidents dropped on a full queue (counted, logged) */
    uint64_t audit_failures;  /**< automatic recommendations the audit trail refused */
    uint64_t watching;        /**< records being followed now (gauge) */
    nops_loop_hist stage[NOPS_LOOP_STAGES];
} nops_loop_stats;

void nops_loop_get_stats(nops_loop *l, nops_loop_stats *st);

/** The stage's metric suffix: "recommendation", "suggestion", "approval", "execution". */
const char *nops_loop_stage_name(nops_loop_stage s);

#endif /* NOPS_LOOP_H */
