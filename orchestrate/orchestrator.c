/*
 * orchestrator.c — the suggest → dry-run → approve → execute state machine of orchestrate.h.
 * Records live in the record store (records.c) and are read back on every call, so a restart
 * (or another instance on the same PostgreSQL) continues from what is stored — but what is
 * stored is not trusted: each step checks the record's seals (seal.c) against the signed
 * manifest loaded now, and what runs comes from that manifest. A step that runs commands is
 * taken in two halves: the claim (checks, then a compare-and-set into dry_running or
 * executing) and the run (steps, outcome, audit) on the record as claimed, in the caller's
 * thread or on one of the workers (a pool, so one long playbook does not hold up the others).
 */
#include "orchestrate/orch_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct job {
    struct job *next;
    nops_orch_step step;
    json_t *rec;             /* the record as claimed (owned): never read back from the store */
    const nops_playbook *pb; /* its playbook in the registry */
    char id[48];
    char actor[160];
} job;

/* Executions this process remembers against a record set back to be run again — only without
 * an audit trail: with one, its "started" entries (nops_audit_started) cover every execution,
 * also those of earlier starts, and this ring is not kept. */
#define RAN_MAX 4096

struct nops_orchestrator {
    char history[512];
    char owner[160]; /* host:pid, recorded in every claim */
    char allowed[1024]; /* allowed_commands */
    int64_t max_open;   /* open records at most */
    const nops_secret *secret;
    const nops_registry *_Atomic reg; /* replaced whole by nops_orch_set_registry (SIGHUP) */
    const nops_policy *_Atomic pol; /* replaced whole by nops_orch_set_policy (SIGHUP) */
    nops_audit *audit;
    nops_records *rs;
    nops_orch_auto au;  /* automation's settings and counters (automation.c) */
    pthread_mutex_t ranmu;
    char (*ran)[48];    /* ids this process started executing (a ring of RAN_MAX); NULL with
                           an audit trail (see RAN_MAX) */
    size_t n_ran;       /* executions started (the ring's write position mod RAN_MAX) */
    nops_kstep *kafka;
    pthread_t workers[NOPS_ORCH_MAX_WORKERS];
    int n_workers;          /* started */
    /* counters (nops_orch_stats), updated without the record store's lock */
    atomic_uint_fast64_t n_suggested, n_denied, n_dry_ok, n_dry_failed, n_approved, n_refused,
        n_executed, n_failed, n_interrupted, n_audit_failures, n_damaged;
    atomic_int_fast64_t n_running;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    job *head, *tail;
    bool stop;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static void set_state(json_t *rec, const char *state)
{
    char ts[40];
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    json_object_set_new(rec, "state", json_string(state));
    json_object_set_new(rec, "updated_at", json_string(ts));
}

static const char *state_of(json_t *rec)
{
    const char *s = json_string_value(json_object_get(rec, "state"));
    return s ? s : "";
}

static const char *id_of(json_t *rec)
{
    const char *s = json_string_value(json_object_get(rec, "id"));
    return s ? s : "";
}

/* Append an audit entry (details stolen); false with the reason when the trail refused it. */
static bool audit_ok(nops_orchestrator *o, const char *actor, const char *action, const char *id,
                     const char *decision, json_t *details, uint64_t *seq, char *errstr,
                     size_t errstr_size)
{
    char err[256] = "";
    bool ok = !o->audit || nops_audit_append(o->audit, actor, action, id, decision, details,
                                             seq, err, sizeof err) == NOPS_OK;
    json_decref(details);
    if (!ok) {
        atomic_fetch_add(&o->n_audit_failures, 1);
        nops_errf(errstr, errstr_size, "the audit trail refused the entry, so nothing was done "
                  "(%s)", err);
    }
    return ok;
}

/* The same where the act is done already (an outcome, a refusal): a lost entry is logged. */
static void audit(nops_orchestrator *o, const char *actor, const char *action, const char *id,
                  const char *decision, json_t *details)
{
    char err[512];
    if (!audit_ok(o, actor, action, id, decision, details, NULL, err, sizeof err))
        NOPS_ERROR("orchestrate", "audit entry lost: %s %s %s: %s", action, id, decision, err);
}

/* A refusal: counted, audited, said in errstr; NOPS_INVAL. */
static nops_err refuse(nops_orchestrator *o, const char *actor, const char *action,
                       const char *id, const char *why, char *errstr, size_t errstr_size)
{
    atomic_fetch_add(&o->n_refused, 1);
    audit(o, actor, action, id, "refused", json_pack("{s:s}", "reason", why));
    nops_errf(errstr, errstr_size, "%s", why);
    return NOPS_INVAL;
}

void nops__orch_audit(nops_orchestrator *o, const char *actor, const char *action,
                      const char *id, const char *decision, json_t *details)
{
    audit(o, actor, action, id, decision, details);
}

nops_err nops__orch_refuse(nops_orchestrator *o, const char *actor, const char *action,
                           const char *id, const char *why, char *errstr, size_t errstr_size)
{
    return refuse(o, actor, action, id, why, errstr, errstr_size);
}

void nops__orch_parts(nops_orchestrator *o, nops_orch_parts *p)
{
    *p = (nops_orch_parts){o->rs, o->secret, o->reg, o->owner, &o->au};
}

/* Load a record in one of the `want` states ("a|b") whose playbook is still registered and whose
 * seal holds; NULL with an error otherwise (a record that does not verify is refused: counted
 * and audited as `action` by `actor`). */
static json_t *load_in(nops_orchestrator *o, const char *id, const char *want,
                       const char *actor, const char *action, const nops_playbook **pb,
                       nops_err *e, char *errstr, size_t errstr_size)
{
    json_t *rec = nops__records_load(o->rs, id);
    if (!rec) {
        nops_errf(errstr, errstr_size, "no orchestration %.48s", id);
        *e = NOPS_NOTFOUND;
        return NULL;
    }
    char w[96], s[64], why[512];
    snprintf(w, sizeof w, "|%s|", want);
    snprintf(s, sizeof s, "|%s|", state_of(rec));
    const char *pid = json_string_value(json_object_get(rec, "playbook_id"));
    *pb = strstr(w, s) && pid ? nops_registry_get(o->reg, pid) : NULL;
    if (!strstr(w, s)) {
        const char *err = json_string_value(json_object_get(rec, "error"));
        if (strcmp(state_of(rec), "damaged") == 0)
            nops_errf(errstr, errstr_size, "orchestration %s is damaged (%s): no step is taken "
                      "on it", id, err ? err : "?");
        else
            nops_errf(errstr, errstr_size, "orchestration %s is %s (needs %s)", id,
                      state_of(rec), want);
        *e = NOPS_INVAL;
    } else if (!*pb) {
        nops_errf(errstr, errstr_size, "its playbook is no longer in the registry");
        *e = NOPS_NOTFOUND;
    } else {
        nops__origin_refusal(o->secret, rec, *pb, why, sizeof why);
        if (!why[0])
            return rec;
        *e = refuse(o, actor, action, id, why, errstr, errstr_size);
    }
    json_decref(rec);
    return NULL;
}

/*
 * Record a step: a decision (`before` true: suggest, dry-run and approve outcomes, the claim of
 * an execution) is audited first and not stored when the trail refuses it — nothing is granted
 * without its entry; an outcome of work already done is stored first and then audited. The
 * store is a compare-and-set from `from` (when given). Details are stolen; the record is handed
 * out, or dropped when it was not stored.
 */
static nops_err commit_step(nops_orchestrator *o, json_t *rec, const char *from, bool before,
                            const char *actor, const char *action, const char *decision,
                            json_t *details, json_t **out, char *errstr, size_t errstr_size)
{
    const char *id = id_of(rec);
    uint64_t seq = 0;
    if (before && !audit_ok(o, actor, action, id, decision, details, &seq, errstr, errstr_size)) {
        json_decref(rec);
        return NOPS_IO;
    }
    nops_err e = nops__records_save(o->rs, rec, from, errstr, errstr_size);
    if (before && e != NOPS_OK) /* the entry above went in: say that it did not take effect, and
                                 * which one (a claimed start withdrawn: nops_audit_started) */
        audit(o, actor, action, id, "not-recorded",
              json_pack("{s:s, s:I}", "error", errstr, "withdraws", (json_int_t)seq));
    else if (!before)
        audit(o, actor, action, id, e == NOPS_OK ? decision : "not-recorded", details);
    if (e != NOPS_OK || !out)
        json_decref(rec);
    else
        *out = rec;
    return e;
}

/* ---- suggest ------------------------------------------------------------------------------- */

/* Whether another suggestion may be recorded now (max_open); NOPS_OK or the error. */
static nops_err room_for_one(nops_orchestrator *o, const json_t *incident, char *errstr,
                             size_t errstr_size)
{
    char *text = json_dumps(incident, JSON_COMPACT);
    size_t n = text ? strlen(text) : 0;
    free(text);
    if (n > NOPS_ORCH_MAX_INCIDENT) {
        nops_errf(errstr, errstr_size, "the incident is %zu bytes of JSON, more than the %d a "
                  "suggestion takes", n, NOPS_ORCH_MAX_INCIDENT);
        return NOPS_RANGE;
    }
    long long open = nops__records_count_open(o->rs);
    if (open < 0) {
        nops_errf(errstr, errstr_size, "the orchestration records could not be counted");
        return NOPS_IO;
    }
    if (open >= o->max_open) {
        nops_errf(errstr, errstr_size, "%lld orchestrations are open, the most "
                  "orchestrate.max_open allows: execute, or let fail, some of them first", open);
        return NOPS_FULL;
    }
    return NOPS_OK;
}

nops_err nops_orch_suggest(nops_orchestrator *o, const json_t *incident, const char *playbook_id,
                           const nops_actor *who, json_t **out, char *errstr,
                           size_t errstr_size)
{
    return nops__orch_suggest(o, incident, playbook_id, who, NULL, out, errstr, errstr_size);
}

nops_err nops__orch_suggest(nops_orchestrator *o, const json_t *incident,
                            const char *playbook_id, const nops_actor *who, const char *fixed_id,
                            json_t **out, char *errstr, size_t errstr_size)
{
    *out = NULL;
    const nops_playbook *pb = nops_registry_get(o->reg, playbook_id);
    if (!pb) {
        nops_errf(errstr, errstr_size, "no signed playbook %.64s in the registry", playbook_id);
        return NOPS_NOTFOUND;
    }
    if (!json_is_object(incident)) {
        nops_errf(errstr, errstr_size, "the incident is not a JSON object");
        return NOPS_INVAL;
    }
    nops_err e = room_for_one(o, incident, errstr, errstr_size);
    if (e != NOPS_OK)
        return e;
    json_t *ctx = nops__policy_context(pb, incident, who);
    nops_policy_decision d;
    nops_policy_decide(atomic_load(&o->pol), ctx, &d);
    json_decref(ctx);
    json_t *rec = nops__record_new(o->secret, pb, incident, who, &d, fixed_id);
    if (!rec) {
        nops_errf(errstr, errstr_size, "the incident could not be recorded (not a JSON object, "
                  "out of memory, or no random bytes for its id)");
        return NOPS_INVAL;
    }
    const bool denied = d.action == NOPS_POLICY_DENY;
    e = commit_step(o, rec, fixed_id ? "" : NULL, true, who->id, "suggest",
                    nops_policy_action_name(d.action),
                    json_pack("{s:s, s:s, s:s, s:s}", "playbook", pb->id, "rule", d.rule,
                              "reason", d.reason, "escalation",
                              nops_escalation_name(d.escalation)),
                    out, errstr, errstr_size);
    if (e == NOPS_OK)
        atomic_fetch_add(denied ? &o->n_denied : &o->n_suggested, 1);
    return e;
}

/* ---- dry-run ------------------------------------------------------------------------------- */

static json_t *claim_dry_run(nops_orchestrator *o, const char *id, const nops_actor *who,
                             const nops_playbook **pb, nops_err *e, char *errstr,
                             size_t errstr_size)
{
    json_t *rec = load_in(o, id, "suggested|dry_run_failed", who->id, "dry-run", pb, e, errstr,
                          errstr_size);
    if (!rec)
        return NULL;
    char from[32];
    snprintf(from, sizeof from, "%s", state_of(rec));
    set_state(rec, "dry_running");
    json_object_set_new(rec, "claimed_by", json_string(o->owner));
    if ((*e = nops__records_save(o->rs, rec, from, errstr, errstr_size)) != NOPS_OK) {
        json_decref(rec);
        return NULL;
    }
    atomic_fetch_add(&o->n_running, 1);
    return rec;
}

static nops_err finish_dry_run(nops_orchestrator *o, json_t *rec, const nops_playbook *pb,
                               const char *actor, json_t **out, char *errstr,
                               size_t errstr_size)
{
    char why[512] = "";
    bool ok = nops__run_steps(rec, pb, o->kafka, o->allowed, true, why, sizeof why);
    json_object_del(rec, "dry_run_seal");
    if (ok && !nops__seal_into(o->secret, rec, pb, "dry-run", "dry_run_seal", NULL)) {
        snprintf(why, sizeof why, "out of memory");
        ok = false;
    }
    set_state(rec, ok ? "dry_run_ok" : "dry_run_failed");
    atomic_fetch_add(ok ? &o->n_dry_ok : &o->n_dry_failed, 1);
    atomic_fetch_sub(&o->n_running, 1);
    json_object_del(rec, "error");
    if (!ok)
        json_object_set_new(rec, "error", json_string(why));
    return commit_step(o, rec, "dry_running", false, actor, "dry-run", ok ? "ok" : "failed",
                       json_pack("{s:s}", "error", why), out, errstr, errstr_size);
}

nops_err nops_orch_dry_run(nops_orchestrator *o, const char *id, const nops_actor *who,
                           json_t **out, char *errstr, size_t errstr_size)
{
    const nops_playbook *pb;
    nops_err e = NOPS_OK;
    *out = NULL;
    json_t *rec = claim_dry_run(o, id, who, &pb, &e, errstr, errstr_size);
    return rec ? finish_dry_run(o, rec, pb, who->id, out, errstr, errstr_size) : e;
}

/* ---- approve ------------------------------------------------------------------------------- */

nops_err nops_orch_approve(nops_orchestrator *o, const char *id, const nops_actor *who,
                           json_t **out, char *errstr, size_t errstr_size)
{
    const nops_playbook *pb;
    nops_err e = NOPS_OK;
    *out = NULL;
    json_t *rec = load_in(o, id, "dry_run_ok", who->id, "approve", &pb, &e, errstr, errstr_size);
    if (!rec)
        return e;
    char why[300] = "";
    if (strcmp(who->role, "org-admin") != 0)
        snprintf(why, sizeof why, "approval needs role org-admin");
    else
        nops__role_refusal(pb, who->role, "approve", why, sizeof why);
    const char *req = json_string_value(json_object_get(rec, "requested_by"));
    if (!why[0] && (!req || strcmp(who->id, req) == 0))
        snprintf(why, sizeof why, "the approver must not be the requester");
    else if (!why[0] && !nops__sealed(o->secret, rec, pb, "dry-run", "dry_run_seal"))
        snprintf(why, sizeof why, "the passed dry-run of orchestration %s does not verify (its "
                 "record was changed outside the engine): suggest it again", id);
    if (why[0]) {
        json_decref(rec);
        return refuse(o, who->id, "approve", id, why, errstr, errstr_size);
    }
    if (!nops__seal_into(o->secret, rec, pb, "approval", "approval", who->id)) {
        json_decref(rec);
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    set_state(rec, "approved");
    json_t *ap = json_object_get(rec, "approval");
    e = commit_step(o, rec, "dry_run_ok", true, who->id, "approve", "approved",
                    json_pack("{s:s, s:O, s:O}", "playbook", pb->id, "manifest_sha256",
                              json_object_get(ap, "manifest_sha256"), "mac",
                              json_object_get(ap, "mac")),
                    out, errstr, errstr_size);
    if (e == NOPS_OK)
        atomic_fetch_add(&o->n_approved, 1);
    return e;
}

/* ---- execute ------------------------------------------------------------------------------- */

/* Without an audit trail: whether this process started executing `id` already (then `add` does
 * nothing); with `add`, remember it. Always false with a trail (o->ran is NULL, see RAN_MAX). */
static bool ran_before(nops_orchestrator *o, const char *id, bool add)
{
    bool seen = false;
    if (!o->ran)
        return false;
    pthread_mutex_lock(&o->ranmu);
    const size_t n = o->n_ran < RAN_MAX ? o->n_ran : RAN_MAX;
    for (size_t i = 0; i < n && !seen; i++)
        seen = strcmp(o->ran[i], id) == 0;
    if (add && !seen)
        snprintf(o->ran[o->n_ran++ % RAN_MAX], sizeof o->ran[0], "%s", id);
    pthread_mutex_unlock(&o->ranmu);
    return seen;
}

/* Whether the audit trail records a started execution of `id` (from entries verified under
 * the key: nops_audit_started): a record set back to approved after a restart is not run
 * twice. */
static bool started_in_audit(nops_orchestrator *o, const char *id, uint64_t *seq)
{
    return o->audit && nops_audit_started(o->audit, id, seq);
}

/* Why `rec` may not run now ("" when it may): an approval (or the policy's auto-execution
 * decision, sealed at suggest, with a passed dry-run) that holds against the manifest loaded
 * now, a manifest file that still hashes to it and is signed, and no earlier start here. */
static void execute_refusal(nops_orchestrator *o, json_t *rec, const nops_playbook *pb,
                            char *why, size_t why_size)
{
    json_t *policy = json_object_get(rec, "policy");
    const char *id = id_of(rec);
    why[0] = '\0';
    if (strcmp(state_of(rec), "dry_run_ok") == 0) {
        if (!json_is_true(json_object_get(policy, "auto_execute")) || !pb->auto_mode)
            snprintf(why, why_size, "this run needs an approval (policy: %s)",
                     json_string_value(json_object_get(policy, "action")));
        else if (!nops__sealed(o->secret, rec, pb, "dry-run", "dry_run_seal"))
            snprintf(why, why_size, "the passed dry-run of orchestration %s does not verify "
                     "(its record was changed outside the engine): suggest it again", id);
    } else if (!nops__sealed(o->secret, rec, pb, "approval", "approval")) {
        const char *sha = json_string_value(
            json_object_get(json_object_get(rec, "approval"), "manifest_sha256"));
        if (sha && strcmp(sha, pb->sha256) != 0)
            snprintf(why, why_size, "the manifest changed since it was approved (sha256 "
                     "%.12s…, approved %.12s…)", pb->sha256, sha);
        else
            snprintf(why, why_size, "the approval of orchestration %s does not verify: the "
                     "record was changed outside the engine (or approved under another engine "
                     "key); suggest it again", id);
    }
    if (!why[0] && nops_registry_recheck(o->reg, pb, pb->sha256, why, why_size) == NOPS_OK &&
        ran_before(o, id, false))
        snprintf(why, why_size, "orchestration %s was executed by this process already (its "
                 "record was set back outside the engine)", id);
    uint64_t seq = 0;
    if (!why[0] && started_in_audit(o, id, &seq))
        snprintf(why, why_size, "orchestration %s was started before (audit entry %llu): its "
                 "record was set back outside the engine", id, (unsigned long long)seq);
}

/* `automatic`: nops_orch_auto_execute's claim — only the sealed automatic decision (dry_run_ok)
 * counts, and the actor's role is not checked against allowed_roles (the policy's decision
 * required org-admin there); a person's claim needs a role in the playbook's allowed_roles. */
static json_t *claim_execute(nops_orchestrator *o, const char *id, const nops_actor *who,
                             bool automatic, const nops_playbook **pb, nops_err *e,
                             char *errstr, size_t errstr_size)
{
    json_t *rec = load_in(o, id, automatic ? "dry_run_ok" : "approved|dry_run_ok", who->id,
                          "execute", pb, e, errstr, errstr_size);
    if (!rec)
        return NULL;
    char why[512], from[32], ts[40];
    why[0] = '\0';
    if (!automatic)
        nops__role_refusal(*pb, who->role, "execute", why, sizeof why);
    if (!why[0])
        execute_refusal(o, rec, *pb, why, sizeof why);
    if (why[0]) {
        json_decref(rec);
        *e = refuse(o, who->id, "execute", id, why, errstr, errstr_size);
        return NULL;
    }
    snprintf(from, sizeof from, "%s", state_of(rec));
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    set_state(rec, "executing");
    json_object_set_new(rec, "claimed_by", json_string(o->owner));
    json_object_set_new(rec, "executed_by", json_string(who->id));
    json_object_set_new(rec, "started_at", json_string(ts));
    json_object_del(rec, "escalation"); /* nothing waits any more */
    if (automatic)
        json_object_set_new(rec, "automatic", json_true());
    json_t *got = NULL;
    *e = commit_step(o, rec, from, true, who->id, "execute", "started",
                     json_pack("{s:s, s:s, s:s}", "from", from, "playbook", (*pb)->id,
                               "manifest_sha256", (*pb)->sha256),
                     &got, errstr, errstr_size);
    if (got) {
        ran_before(o, id, true);
        atomic_fetch_add(&o->n_running, 1);
    }
    return got;
}

static nops_err finish_execute(nops_orchestrator *o, json_t *rec, const nops_playbook *pb,
                               const char *actor, json_t **out, char *errstr,
                               size_t errstr_size)
{
    char why[512] = "";
    bool ok = nops_registry_recheck(o->reg, pb, pb->sha256, why, sizeof why) == NOPS_OK;
    if (ok) {
        json_t *pre = nops__probe_state(rec, pb, o->allowed);
        if (pre)
            json_object_set_new(rec, "pre_state", pre);
        ok = nops__run_steps(rec, pb, o->kafka, o->allowed, false, why, sizeof why);
        json_t *post = nops__probe_state(rec, pb, o->allowed);
        if (post)
            json_object_set_new(rec, "post_state", post);
    }
    set_state(rec, ok ? "executed" : "failed");
    atomic_fetch_add(ok ? &o->n_executed : &o->n_failed, 1);
    atomic_fetch_sub(&o->n_running, 1);
    if (!ok)
        json_object_set_new(rec, "error", json_string(why));
    json_t *row = nops__workflow_row(rec, ok ? "success" : "failure", actor);
    char rerr[512];
    if (nops__records_add_run(o->rs, o->history, row, rerr, sizeof rerr) != NOPS_OK)
        NOPS_ERROR("orchestrate", "the run of %s is not in the history: %s", id_of(rec), rerr);
    json_decref(row);
    return commit_step(o, rec, "executing", false, actor, "execute", ok ? "executed" : "failed",
                       json_pack("{s:s}", "error", why), out, errstr, errstr_size);
}

nops_err nops_orch_execute(nops_orchestrator *o, const char *id, const nops_actor *who,
                           json_t **out, char *errstr, size_t errstr_size)
{
    const nops_playbook *pb;
    nops_err e = NOPS_OK;
    *out = NULL;
    json_t *rec = claim_execute(o, id, who, false, &pb, &e, errstr, errstr_size);
    return rec ? finish_execute(o, rec, pb, who->id, out, errstr, errstr_size) : e;
}

nops_err nops_orch_get(nops_orchestrator *o, const char *id, json_t **out)
{
    *out = nops__records_load(o->rs, id);
    return *out ? NOPS_OK : NOPS_NOTFOUND;
}

void nops_orch_get_stats(nops_orchestrator *o, nops_orch_stats *st)
{
    st->suggested = atomic_load(&o->n_suggested);
    st->denied = atomic_load(&o->n_denied);
    st->dry_run_ok = atomic_load(&o->n_dry_ok);
    st->dry_run_failed = atomic_load(&o->n_dry_failed);
    st->approved = atomic_load(&o->n_approved);
    st->refused = atomic_load(&o->n_refused);
    st->executed = atomic_load(&o->n_executed);
    st->failed = atomic_load(&o->n_failed);
    st->interrupted = atomic_load(&o->n_interrupted);
    st->audit_failures = atomic_load(&o->n_audit_failures);
    st->damaged = atomic_load(&o->n_damaged);
    int64_t running = atomic_load(&o->n_running);
    st->running = running > 0 ? (uint64_t)running : 0;
    nops__auto_stats(&o->au, st);
}

nops_err nops_orch_list(nops_orchestrator *o, const char *state, size_t limit, json_t **out)
{
    *out = nops__records_list(o->rs, state, limit);
    return *out ? NOPS_OK : NOPS_IO;
}

/* ---- the worker: claimed steps run off the caller's thread -------------------------------- */

static void run_job(nops_orchestrator *o, job *j)
{
    char err[512];
    json_t *out = NULL;
    nops_err e = j->step == NOPS_ORCH_DRY_RUN
                     ? finish_dry_run(o, j->rec, j->pb, j->actor, &out, err, sizeof err)
                     : finish_execute(o, j->rec, j->pb, j->actor, &out, err, sizeof err);
    j->rec = NULL; /* finish_* took it */
    if (e != NOPS_OK)
        NOPS_ERROR("orchestrate", "%s of %s: %s",
                   j->step == NOPS_ORCH_DRY_RUN ? "dry-run" : "execution", j->id, err);
    json_decref(out);
}

static void *worker_main(void *arg)
{
    nops_orchestrator *o = arg;
    pthread_mutex_lock(&o->qmu);
    for (;;) {
        while (!o->head && !o->stop)
            pthread_cond_wait(&o->qcv, &o->qmu);
        job *j = o->head;
        if (!j)
            break; /* stopping with nothing left to run */
        o->head = j->next;
        if (!o->head)
            o->tail = NULL;
        pthread_mutex_unlock(&o->qmu);
        run_job(o, j);
        json_decref(j->rec);
        free(j);
        pthread_mutex_lock(&o->qmu);
    }
    pthread_mutex_unlock(&o->qmu);
    return NULL;
}

nops_err nops_orch_start(nops_orchestrator *o, nops_orch_step step, const char *id,
                         const nops_actor *who, json_t **out, char *errstr, size_t errstr_size)
{
    return nops__orch_start(o, step, id, who, false, out, errstr, errstr_size);
}

nops_err nops__orch_start(nops_orchestrator *o, nops_orch_step step, const char *id,
                          const nops_actor *who, bool automatic, json_t **out, char *errstr,
                          size_t errstr_size)
{
    const nops_playbook *pb;
    nops_err e = NOPS_OK;
    *out = NULL;
    job *j = calloc(1, sizeof *j);
    if (!j) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    json_t *rec = step == NOPS_ORCH_DRY_RUN
                      ? claim_dry_run(o, id, who, &pb, &e, errstr, errstr_size)
                      : claim_execute(o, id, who, automatic, &pb, &e, errstr, errstr_size);
    json_t *mine = rec ? json_deep_copy(rec) : NULL; /* the worker's own, never re-read */
    if (rec && !mine) { /* claimed but no copy for the worker: run it here */
        free(j);
        return step == NOPS_ORCH_DRY_RUN
                   ? finish_dry_run(o, rec, pb, who->id, out, errstr, errstr_size)
                   : finish_execute(o, rec, pb, who->id, out, errstr, errstr_size);
    }
    if (!rec) {
        free(j);
        return e;
    }
    j->step = step;
    j->rec = mine;
    j->pb = pb;
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->actor, sizeof j->actor, "%s", who->id);
    pthread_mutex_lock(&o->qmu);
    if (o->tail)
        o->tail->next = j;
    else
        o->head = j;
    o->tail = j;
    pthread_cond_signal(&o->qcv);
    pthread_mutex_unlock(&o->qmu);
    *out = rec;
    return NOPS_OK;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

/* Whether the claim "host:pid" was made by a process of this host that is gone. */
static bool claim_is_dead(const char *claim)
{
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    const char *colon = claim ? strrchr(claim, ':') : NULL;
    if (!colon || (size_t)(colon - claim) != strlen(host) ||
        strncmp(claim, host, strlen(host)) != 0)
        return false; /* another machine's: it may still be running there */
    long pid = strtol(colon + 1, NULL, 10);
    return pid <= 0 || pid == (long)getpid() || (kill((pid_t)pid, 0) != 0 && errno == ESRCH);
}

/* Records that cannot be read as records (each is logged when read): counted and said at
 * start, left as they are for whoever looks into them. */
static void report_damaged(nops_orchestrator *o)
{
    json_t *bad = nops__records_list(o->rs, "damaged", SIZE_MAX), *rec;
    size_t i, n = json_array_size(bad);
    char ids[400] = "";
    size_t at = 0;
    json_array_foreach(bad, i, rec) {
        int w = snprintf(ids + at, sizeof ids - at, "%s%s", i ? ", " : "", id_of(rec));
        if (w < 0 || (size_t)w >= sizeof ids - at) {
            snprintf(ids + at, sizeof ids - at, ", ...");
            break;
        }
        at += (size_t)w;
    }
    atomic_store(&o->n_damaged, n);
    if (n)
        NOPS_WARN("orchestrate", "%zu orchestration record%s damaged and left as they are (GET "
                  "/orchestrations?state=damaged lists them; no step is taken on them, and a run "
                  "that was executing in one has an unknown outcome): %s", n,
                  n == 1 ? " is" : "s are", ids);
    json_decref(bad);
}

/* Steps a dead process left half-way: dry-runs go back to suggested (they are harmless to
 * repeat); executions become interrupted (their outcome is unknown: not repeated by itself),
 * with an aborted workflow_runs row. Then the damaged records are reported. */
static void recover(nops_orchestrator *o)
{
    static const char *states[] = {"dry_running", "executing"};
    for (int s = 0; s < 2; s++) {
        json_t *recs = nops__records_list(o->rs, states[s], SIZE_MAX), *rec;
        size_t i;
        json_array_foreach(recs, i, rec) {
            char err[512];
            if (!claim_is_dead(json_string_value(json_object_get(rec, "claimed_by"))))
                continue;
            rec = json_deep_copy(rec); /* commit_step takes it */
            if (s == 0) {
                set_state(rec, "suggested");
            } else {
                set_state(rec, "interrupted");
                atomic_fetch_add(&o->n_interrupted, 1);
                json_object_set_new(rec, "error", json_string("the process running it stopped; "
                                                              "the outcome is unknown"));
                const char *by = json_string_value(json_object_get(rec, "executed_by"));
                json_t *row = nops__workflow_row(rec, "aborted", by ? by : "");
                if (nops__records_add_run(o->rs, o->history, row, err, sizeof err) != NOPS_OK)
                    NOPS_ERROR("orchestrate", "%s", err);
                json_decref(row);
            }
            NOPS_WARN("orchestrate", "%s was %s when its process stopped: now %s", id_of(rec),
                      states[s], state_of(rec));
            json_t *details = json_pack("{s:O}", "claimed_by", json_object_get(rec, "claimed_by"));
            if (commit_step(o, rec, states[s], false, "neuralops", s ? "execute" : "dry-run",
                            s ? "interrupted" : "reset", details, NULL, err, sizeof err) !=
                NOPS_OK)
                NOPS_ERROR("orchestrate", "%s", err);
        }
        json_decref(recs);
    }
    report_damaged(o);
}

nops_orchestrator *nops_orch_new(const nops_orch_deps *d, char *errstr, size_t errstr_size)
{
    nops_orchestrator *o = nops_calloc(1, sizeof *o);
    if (!o) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&o->qmu, NULL);
    pthread_cond_init(&o->qcv, NULL);
    pthread_mutex_init(&o->ranmu, NULL);
    if (!d->secret || (!d->audit && !(o->ran = nops_calloc(RAN_MAX, sizeof *o->ran)))) {
        nops_errf(errstr, errstr_size, d->secret ? "out of memory"
                  : "orchestration needs the engine's key (security.key_file): approvals are "
                    "sealed with it");
        nops_orch_destroy(o);
        return NULL;
    }
    o->secret = d->secret;
    o->max_open = d->max_open > 0 ? d->max_open : 1000;
    snprintf(o->history, sizeof o->history, "%s", d->history_jsonl ? d->history_jsonl : "");
    snprintf(o->allowed, sizeof o->allowed, "%s", d->allowed_commands ? d->allowed_commands : "");
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    snprintf(o->owner, sizeof o->owner, "%s:%ld", host, (long)getpid());
    o->reg = d->reg;
    o->pol = d->pol;
    o->audit = d->audit;
    nops__auto_init(&o->au, d);
    if (!(o->rs = nops__records_open(d->state_dir, d->pg_dsn, errstr, errstr_size)) ||
        (d->brokers && *d->brokers &&
         !(o->kafka = nops__kstep_new(d->brokers, d->kafka, errstr, errstr_size)))) {
        nops_orch_destroy(o);
        return NULL;
    }
    recover(o);
    const int want = d->workers < 1 ? 4 : d->workers > NOPS_ORCH_MAX_WORKERS
                                              ? NOPS_ORCH_MAX_WORKERS : d->workers;
    for (; o->n_workers < want; o->n_workers++)
        if (pthread_create(&o->workers[o->n_workers], NULL, worker_main, o) != 0) {
            nops_errf(errstr, errstr_size, "cannot start the orchestration workers");
            nops_orch_destroy(o);
            return NULL;
        }
    return o;
}

void nops_orch_set_policy(nops_orchestrator *o, const nops_policy *pol)
{
    atomic_store(&o->pol, pol);
}

void nops_orch_set_registry(nops_orchestrator *o, const nops_registry *reg)
{
    if (reg)
        atomic_store(&o->reg, reg);
}

void nops_orch_destroy(nops_orchestrator *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->qmu);
    o->stop = true;
    pthread_cond_broadcast(&o->qcv);
    pthread_mutex_unlock(&o->qmu);
    for (int i = 0; i < o->n_workers; i++)
        pthread_join(o->workers[i], NULL);
    nops__kstep_destroy(o->kafka);
    nops__records_close(o->rs);
    pthread_cond_destroy(&o->qcv);
    pthread_mutex_destroy(&o->qmu);
    pthread_mutex_destroy(&o->ranmu);
    nops_free(o->ran);
    nops_free(o);
}
