/*
 * automation.c — the closed loop's half of the orchestrator: one engine suggestion per incident
 * and playbook, automatic execution within guard rails, the kill switch, and escalation.
 *
 * Nothing here widens what may run: an automatic execution still needs the policy decision
 * sealed at suggest (allow + mode auto + org-admin in allowed_roles) and a sealed passed
 * dry-run (claim_execute checks them, as for a person). The guard rails only hold runs back:
 *   - the kill switch: orchestrate.automation, and the pause, a MAC'ed state value in the store
 *     (records_auto.c) that every instance on the store reads — one that cannot be read or does
 *     not verify counts as paused;
 *   - the budget: a MAC'ed ledger of automatic starts (id, service, time) kept to the last hour,
 *     taken in one read-modify-write across instances before the claim and given back when the
 *     claim fails; a ledger that does not verify holds every automatic run until an org-admin
 *     resumes automation (which starts a new ledger);
 *   - failed before: the newest ended run of the playbook on the same service and host labels
 *     must not be failed or interrupted (its outcome unknown), whoever ran it.
 * Escalation levels live outside the seals in "escalation" {"level","since","since_ns"}; they
 * can only be raised above the policy level sealed in the record, and records whose seal does
 * not hold are not escalated, so an edit can at worst cause or delay a notification.
 */
#include "orchestrate/orch_int.h"

#include <stdlib.h>
#include <string.h>

const nops_actor NOPS_ORCH_ENGINE = {"engine", "operator"};

/* The orchestrator's parts (a compound literal per use: cheap, and never stale). */
static nops_orch_parts parts_of(nops_orchestrator *o)
{
    nops_orch_parts p;
    nops__orch_parts(o, &p);
    return p;
}
#define P(o) parts_of(o)

#define HOUR_NS (3600ll * 1000000000ll)
#define KEY_PAUSE "automation"
#define KEY_LEDGER "auto_starts"

void nops__auto_init(nops_orch_auto *au, const nops_orch_deps *d)
{
    au->off = d->automation_off;
    au->budget = d->auto_budget_per_hour > 0 ? d->auto_budget_per_hour : 3;
    au->escalate_after_ns =
        (d->escalate_after_s > 0 ? d->escalate_after_s : 900) * (int64_t)1000000000;
}

void nops__role_refusal(const nops_playbook *pb, const char *role, const char *act, char *why,
                        size_t why_size)
{
    static const char *const roles[] = {"viewer", "operator", "org-admin"};
    why[0] = '\0';
    for (unsigned i = 0; i < 3; i++)
        if (role && strcmp(role, roles[i]) == 0 && (pb->allowed_roles & (1u << (i + 1))))
            return;
    char list[64] = "";
    for (unsigned i = 0; i < 3; i++)
        if (pb->allowed_roles & (1u << (i + 1)))
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                     roles[i]);
    snprintf(why, why_size, "role %s may not %s playbook %s: its safety.allowed_roles are [%s]",
             role ? role : "?", act, pb->id, list);
}

void nops__auto_stats(nops_orch_auto *au, nops_orch_stats *st)
{
    st->auto_started = atomic_load(&au->started);
    st->auto_held_paused = atomic_load(&au->held_paused);
    st->auto_held_budget = atomic_load(&au->held_budget);
    st->auto_held_failed_before = atomic_load(&au->held_failed);
    st->escalations = atomic_load(&au->escalations);
    st->automation_tampered = atomic_load(&au->tampered);
}

/* A state value that did not verify: counted and logged (at most once a minute). */
static void tampered(nops_orchestrator *o, const char *why)
{
    static _Atomic uint64_t last_min;
    atomic_fetch_add(&P(o).au->tampered, 1);
    const uint64_t now = nops_now_ns() / 60000000000ull;
    if (atomic_exchange(&last_min, now) != now)
        NOPS_ERROR("orchestrate", "automatic executions are held: %s", why);
}

/* ---- one suggestion per incident and playbook ----------------------------------------------- */

/* "orch-" and 32 hex digits of the HMAC of (incident id, playbook id) under the engine key. */
static void derive_id(nops_orchestrator *o, const char *incident_id, const char *playbook_id,
                      char out[48])
{
    char mac[2 * NOPS_MAC_LEN + 1];
    size_t a = strlen(incident_id), b = strlen(playbook_id);
    char *text = malloc(a + 1 + b + 1);
    if (!text) {
        out[0] = '\0';
        return;
    }
    memcpy(text, incident_id, a + 1); /* the NUL separates them: ("a","bc") != ("ab","c") */
    memcpy(text + a + 1, playbook_id, b + 1);
    nops_secret_mac_hex(P(o).secret, "orchestration-id", text, a + 1 + b, mac);
    free(text);
    snprintf(out, 48, "orch-%.32s", mac);
}

nops_err nops_orch_suggest_once(nops_orchestrator *o, const json_t *incident,
                                const char *playbook_id, const nops_actor *who, json_t **out,
                                bool *created, char *errstr, size_t errstr_size)
{
    *out = NULL;
    *created = false;
    const char *iid = json_string_value(json_object_get(incident, "id"));
    if (!iid || !*iid || !playbook_id) {
        nops_errf(errstr, errstr_size, "a suggestion made once per incident needs the "
                  "incident's \"id\" (a string) and a playbook id");
        return NOPS_INVAL;
    }
    char id[48];
    derive_id(o, iid, playbook_id, id);
    if (!id[0]) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    if ((*out = nops__records_load(P(o).rs, id)))
        return NOPS_OK; /* made before (here, before a restart, or by another instance) */
    nops_err e = nops__orch_suggest(o, incident, playbook_id, who, id, out, errstr, errstr_size);
    if (e == NOPS_OK) {
        *created = true;
    } else if (e == NOPS_EXISTS) { /* another instance made it between the look and the insert */
        *out = nops__records_load(P(o).rs, id);
        e = *out ? NOPS_OK : NOPS_IO;
        if (e != NOPS_OK)
            nops_errf(errstr, errstr_size, "orchestration %s exists but cannot be read", id);
    }
    return e;
}

/* ---- the budget ledger ----------------------------------------------------------------------- */

typedef struct ledger_op {
    const char *id, *service;
    char token[64];  /* this take's entry (a give-back removes only it, not another's take) */
    int64_t now_ns, budget;
    bool take;       /* take a slot for id (else give id's back) */
    bool took;       /* the slot was taken */
    bool bad;        /* the stored ledger does not verify */
    int64_t used;    /* the service's starts in the last hour (before taking) */
} ledger_op;

/* The ledger's starts of the last hour (new array), without the one of `drop` (a token; may
 * be NULL). */
static json_t *recent(const json_t *cur, int64_t now_ns, const char *drop)
{
    json_t *keep = json_array(), *x;
    size_t i;
    json_array_foreach(json_object_get(cur, "starts"), i, x) {
        const char *tok = json_string_value(json_object_get(x, "token"));
        json_int_t at = json_integer_value(json_object_get(x, "at_ns"));
        if (at > now_ns - HOUR_NS && !(drop && tok && strcmp(tok, drop) == 0))
            json_array_append(keep, x);
    }
    return keep;
}

static json_t *ledger_step(void *ctx, const json_t *cur, nops_err found)
{
    ledger_op *op = ctx;
    if (found == NOPS_PARSE) {
        op->bad = true;
        return NULL;
    }
    json_t *starts = recent(cur, op->now_ns, op->take ? NULL : op->token), *x;
    size_t i;
    json_array_foreach(starts, i, x) {
        const char *svc = json_string_value(json_object_get(x, "service"));
        op->used += svc && strcmp(svc, op->service) == 0;
    }
    if (op->take && op->used < op->budget) {
        json_array_append_new(starts, json_pack("{s:s, s:s, s:s, s:I}", "id", op->id, "token",
                                                op->token, "service", op->service, "at_ns",
                                                (json_int_t)op->now_ns));
        op->took = true;
    }
    return json_pack("{s:o}", "starts", starts);
}

/* ---- automatic execution --------------------------------------------------------------------- */

static const char *label(json_t *rec, const char *name)
{
    const char *v = json_string_value(
        json_object_get(json_object_get(json_object_get(rec, "context"), "labels"), name));
    return v ? v : "";
}

/* A run held by guard rail `guard`: counted, audited, said; NOPS_INVAL. */
static nops_err hold(nops_orchestrator *o, const char *id, const char *guard,
                     atomic_uint_fast64_t *counter, const char *why, char *errstr,
                     size_t errstr_size)
{
    atomic_fetch_add(counter, 1);
    nops__orch_audit(o, NOPS_ORCH_ENGINE.id, "auto_execute", id, "held",
                     json_pack("{s:s, s:s}", "reason", why, "guard", guard));
    nops_errf(errstr, errstr_size, "held: %s", why);
    return NOPS_INVAL;
}

/* Whether rec is a run only automation may start now (dry_run_ok with the auto decision). */
static bool auto_candidate(json_t *rec)
{
    const char *st = json_string_value(json_object_get(rec, "state"));
    return st && strcmp(st, "dry_run_ok") == 0 &&
           json_is_true(json_object_get(json_object_get(rec, "policy"), "auto_execute"));
}

nops_err nops_orch_auto_execute(nops_orchestrator *o, const char *id, json_t **out,
                                char *errstr, size_t errstr_size)
{
    nops_orch_auto *au = P(o).au;
    *out = NULL;
    json_t *rec = nops__records_load(P(o).rs, id);
    if (!rec) {
        nops_errf(errstr, errstr_size, "no orchestration %.48s", id);
        return NOPS_NOTFOUND;
    }
    if (!auto_candidate(rec)) { /* the claim refuses it, with the reason, audited */
        json_decref(rec);
        return nops__orch_start(o, NOPS_ORCH_EXECUTE, id, &NOPS_ORCH_ENGINE, true, out, errstr,
                                errstr_size);
    }
    char pb[64], service[160], host[160], last[24];
    const char *pbid = json_string_value(json_object_get(rec, "playbook_id"));
    snprintf(service, sizeof service, "%s", label(rec, "service"));
    snprintf(host, sizeof host, "%s", label(rec, "host"));
    snprintf(pb, sizeof pb, "%s", pbid ? pbid : "");
    json_decref(rec);
    if (nops_orch_paused(o))
        return hold(o, id, "paused", &au->held_paused,
                    au->off ? "automatic executions are off (orchestrate.automation = false)"
                            : "automatic executions are paused (POST /automation/resume)",
                    errstr, errstr_size);
    if (nops__records_last_run(P(o).rs, pb, service, host, last, sizeof last) != NOPS_OK)
        return hold(o, id, "failed_before", &au->held_failed, "the earlier runs of the playbook "
                    "could not be read", errstr, errstr_size);
    if (strcmp(last, "failed") == 0 || strcmp(last, "interrupted") == 0) {
        char msg[800];
        snprintf(msg, sizeof msg, "the last run of playbook %s on service=%s host=%s %s; it "
                 "runs automatically again after a run there succeeded (approve this one)", pb,
                 service, host, strcmp(last, "failed") == 0 ? "failed"
                                                            : "was interrupted (outcome unknown)");
        return hold(o, id, "failed_before", &au->held_failed, msg, errstr, errstr_size);
    }
    static atomic_uint_fast64_t takes;
    ledger_op op = {.id = id, .service = service, .now_ns = nops_wall_ns(),
                    .budget = au->budget, .take = true};
    snprintf(op.token, sizeof op.token, "%s/%llu/%lld", P(o).owner,
             (unsigned long long)atomic_fetch_add(&takes, 1), (long long)op.now_ns);
    char err[512];
    nops_err e = nops__state_update(P(o).rs, P(o).secret, KEY_LEDGER, ledger_step, &op, err,
                                    sizeof err);
    if (op.bad)
        tampered(o, "the ledger of automatic starts does not verify under the engine key "
                    "(resume automation to start a new one)");
    if (e != NOPS_OK || op.bad || !op.took) {
        char msg[800];
        if (e != NOPS_OK || op.bad)
            snprintf(msg, sizeof msg, "the ledger of automatic starts %s",
                     op.bad ? "does not verify under the engine key (an org-admin resumes "
                              "automation to start a new one)" : err);
        else
            snprintf(msg, sizeof msg, "service %s had %lld automatic executions in the last "
                     "hour, the most orchestrate.auto_budget_per_hour allows", service,
                     (long long)op.used);
        return hold(o, id, "budget", &au->held_budget, msg, errstr, errstr_size);
    }
    e = nops__orch_start(o, NOPS_ORCH_EXECUTE, id, &NOPS_ORCH_ENGINE, true, out, errstr,
                         errstr_size);
    if (e == NOPS_OK) {
        atomic_fetch_add(&au->started, 1);
        return e;
    }
    ledger_op back = {.id = id, .service = service, .now_ns = nops_wall_ns()};
    memcpy(back.token, op.token, sizeof back.token);
    if (nops__state_update(P(o).rs, P(o).secret, KEY_LEDGER, ledger_step, &back, err,
                           sizeof err) != NOPS_OK)
        NOPS_WARN("orchestrate", "the budget slot of %s (not started) is kept: %s", id, err);
    return e;
}

/* ---- the kill switch ------------------------------------------------------------------------ */

typedef struct pause_op {
    bool paused;
    const char *by;
} pause_op;

static json_t *pause_step(void *ctx, const json_t *cur, nops_err found)
{
    (void)cur;
    (void)found;
    pause_op *op = ctx;
    char ts[40];
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    return json_pack("{s:b, s:s, s:s}", "paused", op->paused, "by", op->by, "at", ts);
}

/* A ledger that does not verify is replaced by an empty one (a resume by an org-admin). */
static json_t *ledger_reset(void *ctx, const json_t *cur, nops_err found)
{
    (void)cur;
    *(bool *)ctx = found == NOPS_PARSE;
    return found == NOPS_PARSE ? json_pack("{s:[]}", "starts") : NULL;
}

nops_err nops_orch_set_paused(nops_orchestrator *o, bool paused, const nops_actor *who,
                              char *errstr, size_t errstr_size)
{
    if (!who || !who->role || strcmp(who->role, "org-admin") != 0)
        return nops__orch_refuse(o, who && who->id ? who->id : "?", "automation", KEY_PAUSE,
                                 "pausing or resuming automation needs role org-admin", errstr,
                                 errstr_size);
    pause_op op = {paused, who->id};
    nops_records *rs = P(o).rs;
    nops_err e = nops__state_update(rs, P(o).secret, KEY_PAUSE, pause_step, &op, errstr,
                                    errstr_size);
    bool reset = false;
    char err[512];
    if (e == NOPS_OK && !paused &&
        nops__state_update(rs, P(o).secret, KEY_LEDGER, ledger_reset, &reset, err,
                           sizeof err) != NOPS_OK)
        NOPS_WARN("orchestrate", "the ledger of automatic starts was not checked: %s", err);
    if (e == NOPS_OK)
        nops__orch_audit(o, who->id, "automation", KEY_PAUSE, paused ? "paused" : "resumed",
                         json_pack("{s:b}", "ledger_reset", reset));
    return e;
}

bool nops_orch_paused(nops_orchestrator *o)
{
    if (P(o).au->off)
        return true;
    json_t *v = NULL;
    char err[512];
    nops_err e = nops__state_get(P(o).rs, P(o).secret, KEY_PAUSE, &v,
                                 err, sizeof err);
    bool paused = e == NOPS_OK ? json_is_true(json_object_get(v, "paused")) : e != NOPS_NOTFOUND;
    if (e == NOPS_PARSE)
        tampered(o, err);
    else if (e != NOPS_OK && e != NOPS_NOTFOUND)
        NOPS_WARN("orchestrate", "the automation pause cannot be read (held meanwhile): %s", err);
    json_decref(v);
    return paused;
}

nops_err nops_orch_automation(nops_orchestrator *o, json_t **out)
{
    nops_orch_auto *au = P(o).au;
    nops_records *rs = P(o).rs;
    json_t *v = NULL, *ledger = NULL;
    char err[512];
    nops_err e = nops__state_get(rs, P(o).secret, KEY_PAUSE, &v, err, sizeof err);
    nops_err le = nops__state_get(rs, P(o).secret, KEY_LEDGER, &ledger, err,
                                  sizeof err);
    if (e == NOPS_IO || le == NOPS_IO) {
        json_decref(v);
        json_decref(ledger);
        return NOPS_IO;
    }
    json_t *used = json_object(), *starts = recent(ledger, nops_wall_ns(), NULL), *x;
    size_t i;
    json_array_foreach(starts, i, x) {
        const char *svc = json_string_value(json_object_get(x, "service"));
        if (svc)
            json_object_set_new(used, svc, json_integer(json_integer_value(
                                               json_object_get(used, svc)) + 1));
    }
    json_decref(starts);
    const bool paused = au->off || (e == NOPS_OK ? json_is_true(json_object_get(v, "paused"))
                                                 : e != NOPS_NOTFOUND);
    *out = json_pack("{s:b, s:b, s:b, s:b, s:I, s:o, s:I}", "enabled", !au->off, "paused",
                     paused, "verified", e != NOPS_PARSE, "ledger_verified", le != NOPS_PARSE,
                     "budget_per_hour", (json_int_t)au->budget, "used_last_hour", used,
                     "escalate_after_s", (json_int_t)(au->escalate_after_ns / 1000000000));
    if (*out && e == NOPS_OK) {
        json_object_set(*out, "paused_by", json_object_get(v, "by"));
        json_object_set(*out, "paused_at", json_object_get(v, "at"));
    }
    json_decref(v);
    json_decref(ledger);
    return *out ? NOPS_OK : NOPS_NOMEM;
}

/* ---- escalation ------------------------------------------------------------------------------ */

static nops_escalation level_of(const char *name)
{
    for (int l = NOPS_ESC_INFO; name && l <= NOPS_ESC_EMERGENCY; l++)
        if (strcmp(name, nops_escalation_name((nops_escalation)l)) == 0)
            return (nops_escalation)l;
    return NOPS_ESC_NONE;
}

/* Raise rec (an escalated record waiting in `state`) when its time at its level is up; true
 * when it was raised (stored and audited). The record is changed in place. */
static bool raise_one(nops_orchestrator *o, json_t *rec, const char *state, int64_t now_ns,
                      nops_escalation *to)
{
    nops_orch_auto *au = P(o).au;
    json_t *pol = json_object_get(rec, "policy"), *esc = json_object_get(rec, "escalation");
    const nops_escalation sealed =
        level_of(json_string_value(json_object_get(pol, "escalation")));
    nops_escalation at = level_of(json_string_value(json_object_get(esc, "level")));
    json_t *since_v = json_object_get(esc, "since_ns");
    int64_t since = (int64_t)json_integer_value(since_v);
    char ts[40], err[512];
    if (at < sealed) /* never below what the policy decided (the sealed level) */
        at = sealed;
    if (at == NOPS_ESC_NONE || at >= NOPS_ESC_EMERGENCY)
        return false;
    if (!json_is_integer(since_v) || since < 0 || since > now_ns) {
        /* no time, or one to come (which would hold it back for ever): its clock starts now */
        nops_format_ts(now_ns, ts, sizeof ts);
        json_object_set_new(rec, "escalation", json_pack("{s:s, s:s, s:I}", "level",
                                                         nops_escalation_name(at), "since", ts,
                                                         "since_ns", (json_int_t)now_ns));
        if (nops__records_save(P(o).rs, rec, state, err, sizeof err) != NOPS_OK)
            NOPS_WARN("orchestrate", "escalation of %s: %s",
                      json_string_value(json_object_get(rec, "id")), err);
        return false;
    }
    if (now_ns - since < au->escalate_after_ns)
        return false;
    *to = (nops_escalation)(at + 1);
    nops_format_ts(now_ns, ts, sizeof ts);
    json_object_set_new(rec, "escalation", json_pack("{s:s, s:s, s:I}", "level",
                                                     nops_escalation_name(*to), "since", ts,
                                                     "since_ns", (json_int_t)now_ns));
    if (nops__records_save(P(o).rs, rec, state, err, sizeof err) != NOPS_OK)
        return false; /* it moved on meanwhile (approved, dry-run again): not waiting there */
    atomic_fetch_add(&au->escalations, 1);
    nops__orch_audit(o, "neuralops", "escalate", json_string_value(json_object_get(rec, "id")),
                     nops_escalation_name(*to),
                     json_pack("{s:s, s:I}", "from", nops_escalation_name(at), "waited_s",
                               (json_int_t)((now_ns - since) / 1000000000)));
    return true;
}

size_t nops_orch_escalate_due(nops_orchestrator *o, int64_t now_ns,
                              void (*fn)(void *ctx, const json_t *record, const char *level),
                              void *ctx)
{
    static const char *const waiting[] = {"suggested", "dry_run_ok"};
    size_t raised = 0;
    for (size_t s = 0; s < 2; s++) {
        json_t *recs = nops__records_list(P(o).rs, waiting[s], SIZE_MAX), *rec;
        size_t i;
        json_array_foreach(recs, i, rec) {
            const char *action = json_string_value(
                json_object_get(json_object_get(rec, "policy"), "action"));
            const char *pbid = json_string_value(json_object_get(rec, "playbook_id"));
            const nops_playbook *pb = pbid ? nops_registry_get(P(o).reg, pbid) : NULL;
            char why[512] = "unknown playbook";
            if (!action || strcmp(action, "escalate") != 0)
                continue;
            if (pb)
                nops__origin_refusal(P(o).secret, rec, pb, why, sizeof why);
            if (why[0]) /* not a record the engine made as it is: nobody is notified of it */
                continue;
            nops_escalation to;
            if (!raise_one(o, rec, waiting[s], now_ns, &to))
                continue;
            raised++;
            if (fn)
                fn(ctx, rec, nops_escalation_name(to));
        }
        json_decref(recs);
    }
    return raised;
}
