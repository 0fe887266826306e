/*
 * orchestrator.c — the suggest → dry-run → approve → execute state machine of orchestrate.h.
 * Records are JSON files in the state directory, written aside and renamed, read back on every
 * call, so a restart (or a second process) continues from what is on disk.
 */
#include "orchestrate/runner.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OFF(f) offsetof(nops_orch_params, f)
static const nops_cfg_entry orch_entries[] = {
    {"registry_dir", NOPS_CFG_STRING, OFF(registry_dir), 0,
     sizeof(((nops_orch_params *)0)->registry_dir), "", NULL, NULL, 0,
     "Directory of signed playbook manifests (docs/policies/safety.md); empty = orchestration "
     "off."},
    {"pubkeys", NOPS_CFG_STRING, OFF(pubkeys), 0, sizeof(((nops_orch_params *)0)->pubkeys), "",
     NULL, NULL, 0, "PEM public keys that may sign playbooks, comma-separated."},
    {"policy_file", NOPS_CFG_STRING, OFF(policy_file), 0,
     sizeof(((nops_orch_params *)0)->policy_file), "", NULL, NULL, 0,
     "JSON policy rules (docs/policies/safety.md); empty = every run needs an approval."},
};
#undef OFF

const nops_cfg_section nops_orch_cfg_section = {
    "orchestrate",
    "Playbooks, the policy gate and approvals (docs/policies/). State and the audit trail live "
    "in storage.data_dir (orchestrations/, audit.jsonl) and, with sinks.postgres_dsn, in "
    "PostgreSQL audit_logs.",
    orch_entries, sizeof orch_entries / sizeof orch_entries[0], NULL};

struct nops_orchestrator {
    char dir[512];
    char history[512];
    const nops_registry *reg;
    const nops_policy *pol;
    nops_audit *audit;
    pthread_mutex_t mu;
};

nops_orchestrator *nops_orch_new(const char *state_dir, const char *history_jsonl,
                                 const nops_registry *reg, const nops_policy *pol,
                                 nops_audit *audit, char *errstr, size_t errstr_size)
{
    if (mkdir(state_dir, 0750) != 0 && errno != EEXIST) {
        nops_errf(errstr, errstr_size, "orchestrations: cannot create %s: %s", state_dir,
                  strerror(errno));
        return NULL;
    }
    nops_orchestrator *o = nops_calloc(1, sizeof *o);
    if (!o) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    snprintf(o->dir, sizeof o->dir, "%s", state_dir);
    snprintf(o->history, sizeof o->history, "%s", history_jsonl ? history_jsonl : "");
    o->reg = reg;
    o->pol = pol;
    o->audit = audit;
    pthread_mutex_init(&o->mu, NULL);
    return o;
}

void nops_orch_destroy(nops_orchestrator *o)
{
    if (!o)
        return;
    pthread_mutex_destroy(&o->mu);
    nops_free(o);
}

/* ---- records ------------------------------------------------------------------------------ */

static bool valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return false;
    return true;
}

static json_t *load(nops_orchestrator *o, const char *id)
{
    if (!valid_id(id))
        return NULL;
    char path[700];
    snprintf(path, sizeof path, "%s/%s.json", o->dir, id);
    return json_load_file(path, 0, NULL);
}

static nops_err save(nops_orchestrator *o, json_t *rec, char *errstr, size_t errstr_size)
{
    char path[700], tmp[720];
    const char *id = json_string_value(json_object_get(rec, "id"));
    snprintf(path, sizeof path, "%s/%s.json", o->dir, id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(rec, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 ||
        rename(tmp, path) != 0) {
        nops_errf(errstr, errstr_size, "orchestrations: cannot write %s", path);
        return NOPS_IO;
    }
    return NOPS_OK;
}

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

static void audit(nops_orchestrator *o, const nops_actor *who, const char *action,
                  const char *id, const char *decision, json_t *details)
{
    char err[256];
    if (o->audit && nops_audit_append(o->audit, who->id, action, id, decision, details, NULL,
                                      err, sizeof err) != NOPS_OK)
        NOPS_ERROR("orchestrate", "audit entry lost: %s", err);
    json_decref(details);
}

/* hex SHA-256 of the plan (playbook id, manifest sha256, steps): what an approval binds to. */
static void plan_hash(json_t *rec, char out[65])
{
    json_t *plan = json_pack("{s:O, s:O, s:O}", "playbook_id", json_object_get(rec, "playbook_id"),
                             "manifest_sha256", json_object_get(rec, "manifest_sha256"), "steps",
                             json_object_get(rec, "steps"));
    char *s = json_dumps(plan, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    free(s);
    json_decref(plan);
}

/* ---- suggest ------------------------------------------------------------------------------- */

static json_t *policy_context(const nops_playbook *pb, const json_t *incident,
                              const nops_actor *who)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    json_t *safety = json_object_get(pb->manifest, "safety");
    json_t *roles = json_object_get(safety, "allowed_roles");
    json_t *sev = json_object_get(incident, "severity"), *labels = json_object_get(incident,
                                                                                 "labels");
    return json_pack("{s:{s:s, s:s, s:s, s:o}, s:{s:o, s:o}, s:{s:s, s:s}, s:{s:i, s:i}}",
                     "playbook", "id", pb->id, "version", pb->version, "mode",
                     pb->auto_mode ? "auto" : "manual", "allowed_roles",
                     roles ? json_incref(roles) : json_array(), "incident", "severity",
                     sev ? json_incref(sev) : json_null(), "labels",
                     labels ? json_incref(labels) : json_object(),
                     "actor", "id", who->id, "role", who->role, "time", "hour", tm.tm_hour,
                     "weekday", tm.tm_wday);
}

nops_err nops_orch_suggest(nops_orchestrator *o, const json_t *incident, const char *playbook_id,
                           const nops_actor *who, json_t **out, char *errstr,
                           size_t errstr_size)
{
    *out = NULL;
    const nops_playbook *pb = nops_registry_get(o->reg, playbook_id);
    if (!pb) {
        nops_errf(errstr, errstr_size, "no signed playbook %s in the registry", playbook_id);
        return NOPS_NOTFOUND;
    }
    json_t *ctx = policy_context(pb, incident, who);
    nops_policy_decision d;
    nops_policy_decide(o->pol, ctx, &d);
    json_decref(ctx);
    char id[48], ts[40];
    unsigned char rnd[8];
    FILE *ur = fopen("/dev/urandom", "rb");
    size_t got = ur ? fread(rnd, 1, sizeof rnd, ur) : 0;
    if (ur)
        fclose(ur);
    snprintf(id, sizeof id, "orch-%016llx", got == 8 ? *(unsigned long long *)rnd
                                                      : (unsigned long long)nops_wall_ns());
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    json_t *rec = json_pack(
        "{s:s, s:s, s:s, s:s, s:O, s:o, s:s, s:s, s:{s:s, s:s, s:s, s:b}, s:s}", "id", id,
        "playbook_id", pb->id, "playbook_version", pb->version, "manifest_sha256", pb->sha256,
        "steps", json_object_get(pb->manifest, "steps"), "incident",
        incident ? json_incref((json_t *)incident) : json_object(), "requested_by", who->id,
        "created_at", ts,
        "policy", "action", nops_policy_action_name(d.action), "escalation",
        nops_escalation_name(d.escalation), "rule", d.rule, "auto_execute", d.auto_execute,
        "logged_rules", d.logged);
    set_state(rec, d.action == NOPS_POLICY_DENY ? "denied" : "suggested");
    pthread_mutex_lock(&o->mu);
    nops_err e = save(o, rec, errstr, errstr_size);
    pthread_mutex_unlock(&o->mu);
    audit(o, who, "suggest", id, nops_policy_action_name(d.action),
          json_pack("{s:s, s:s, s:s}", "playbook", pb->id, "rule", d.rule, "escalation",
                    nops_escalation_name(d.escalation)));
    if (e != NOPS_OK) {
        json_decref(rec);
        return e;
    }
    *out = rec;
    return NOPS_OK;
}

/* ---- dry-run, approve, execute ------------------------------------------------------------- */

/* Run every step (dry-run or for real); results into rec["<kind>"]; true when all succeeded. */
static bool run_steps(nops_orchestrator *o, json_t *rec, const nops_playbook *pb, bool dry,
                      char *why, size_t why_size)
{
    json_t *results = json_array();
    const int64_t deadline = (int64_t)nops_now_ns() + pb->timeout_s * 1000000000ll;
    bool ok = true;
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(rec, "steps"), i, st) {
        const char *name = json_string_value(json_object_get(st, "name"));
        json_t *exec = json_object_get(st, "exec");
        nops_step_result r = {0};
        if (!exec) {
            snprintf(why, why_size, "step %s: kafka steps are not supported in this build", name);
            ok = false;
        } else if (dry && !json_is_true(json_object_get(st, "dry_run"))) {
            /* no dry-run mode in the command: check that it exists and is executable */
            const char *cmd = json_string_value(json_array_get(exec, 0));
            if (!cmd || cmd[0] != '/' || access(cmd, X_OK) != 0) {
                snprintf(why, why_size, "step %s: %s is not an executable absolute path", name,
                         cmd ? cmd : "(none)");
                ok = false;
            }
            snprintf(r.output, sizeof r.output, "checked, not run (no dry-run mode)");
        } else if (nops__run_step(exec, dry, dry, deadline, &r) != NOPS_OK || r.exit_code != 0) {
            snprintf(why, why_size, "step %.60s %s%.300s", name,
                     r.timed_out ? "timed out after the playbook's timeout_s" : "failed: ",
                     r.timed_out ? "" : r.output);
            ok = false;
        }
        json_array_append_new(results, json_pack("{s:s, s:i, s:b, s:s}", "step", name, "exit",
                                                 r.exit_code, "timed_out", r.timed_out, "output",
                                                 r.output));
        if (!ok)
            break;
    }
    json_object_set_new(rec, dry ? "dry_run" : "execution", results);
    return ok;
}

/* Load a record in one of the `want` states ("a|b"); NULL with an error otherwise. */
static json_t *load_in(nops_orchestrator *o, const char *id, const char *want,
                       const nops_playbook **pb, nops_err *e, char *errstr, size_t errstr_size)
{
    json_t *rec = load(o, id);
    if (!rec) {
        nops_errf(errstr, errstr_size, "no orchestration %s", id);
        *e = NOPS_NOTFOUND;
        return NULL;
    }
    char w[64];
    snprintf(w, sizeof w, "|%s|", want);
    char s[64];
    snprintf(s, sizeof s, "|%s|", state_of(rec));
    *pb = nops_registry_get(o->reg, json_string_value(json_object_get(rec, "playbook_id")));
    if (!strstr(w, s) || !*pb) {
        nops_errf(errstr, errstr_size, !*pb ? "its playbook is no longer in the registry"
                                            : "orchestration %s is %s (needs %s)",
                  id, state_of(rec), want);
        *e = !*pb ? NOPS_NOTFOUND : NOPS_INVAL;
        json_decref(rec);
        return NULL;
    }
    return rec;
}

/* Save the record, audit the step (details stolen), hand the record out — or drop it when it
 * could not be saved. */
static nops_err commit_step(nops_orchestrator *o, json_t *rec, const nops_actor *who,
                            const char *action, const char *decision, json_t *details,
                            json_t **out, char *errstr, size_t errstr_size)
{
    pthread_mutex_lock(&o->mu);
    nops_err e = save(o, rec, errstr, errstr_size);
    pthread_mutex_unlock(&o->mu);
    audit(o, who, action, json_string_value(json_object_get(rec, "id")), decision, details);
    if (e == NOPS_OK)
        *out = rec;
    else
        json_decref(rec);
    return e;
}

nops_err nops_orch_dry_run(nops_orchestrator *o, const char *id, const nops_actor *who,
                           json_t **out, char *errstr, size_t errstr_size)
{
    const nops_playbook *pb;
    nops_err e = NOPS_OK;
    *out = NULL;
    json_t *rec = load_in(o, id, "suggested|dry_run_failed", &pb, &e, errstr, errstr_size);
    if (!rec)
        return e;
    char why[512] = "";
    bool ok = run_steps(o, rec, pb, true, why, sizeof why);
    set_state(rec, ok ? "dry_run_ok" : "dry_run_failed");
    if (!ok)
        json_object_set_new(rec, "error", json_string(why));
    return commit_step(o, rec, who, "dry-run", ok ? "ok" : "failed",
                       json_pack("{s:s}", "error", why), out, errstr, errstr_size);
}

nops_err nops_orch_approve(nops_orchestrator *o, const char *id, const nops_actor *who,
                           json_t **out, char *errstr, size_t errstr_size)
{
    const nops_playbook *pb;
    nops_err e = NOPS_OK;
    *out = NULL;
    json_t *rec = load_in(o, id, "dry_run_ok", &pb, &e, errstr, errstr_size);
    if (!rec)
        return e;
    const char *refuse = NULL;
    if (strcmp(who->role, "org-admin") != 0)
        refuse = "approval needs role org-admin";
    else if (strcmp(who->id, json_string_value(json_object_get(rec, "requested_by"))) == 0)
        refuse = "the approver must not be the requester";
    if (refuse) {
        audit(o, who, "approve", id, "refused", json_pack("{s:s}", "reason", refuse));
        nops_errf(errstr, errstr_size, "%s", refuse);
        json_decref(rec);
        return NOPS_INVAL;
    }
    char ph[65], ts[40];
    plan_hash(rec, ph);
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    json_object_set_new(rec, "approval", json_pack("{s:s, s:s, s:s}", "by", who->id, "at", ts,
                                                   "plan_sha256", ph));
    set_state(rec, "approved");
    return commit_step(o, rec, who, "approve", "approved", json_pack("{s:s}", "plan_sha256", ph),
                       out, errstr, errstr_size);
}

/* Append the run to the history, as a workflow_runs row. */
static void record_run(nops_orchestrator *o, json_t *rec, bool ok, const nops_actor *who)
{
    if (!o->history[0])
        return;
    json_t *inc = json_object_get(rec, "incident");
    json_t *summary = json_object_get(inc, "summary"), *labels = json_object_get(inc, "labels");
    json_t *signals = json_object_get(inc, "signals");
    json_t *row = json_pack("{s:O, s:O, s:o, s:o, s:o, s:O, s:O, s:s, s:s, s:s}", "id",
                            json_object_get(rec, "id"), "playbook_id",
                            json_object_get(rec, "playbook_id"), "incident_summary",
                            summary ? json_incref(summary) : json_string(""), "labels",
                            labels ? json_incref(labels) : json_object(), "signals",
                            signals ? json_incref(signals) : json_array(), "started_at",
                            json_object_get(rec, "started_at"), "finished_at",
                            json_object_get(rec, "updated_at"), "status",
                            ok ? "success" : "failure", "executed_by", who->id, "notes", "");
    FILE *f = fopen(o->history, "a");
    if (!f || json_dumpf(row, f, JSON_COMPACT) != 0 || fputc('\n', f) == EOF)
        NOPS_ERROR("orchestrate", "cannot append the run to %s", o->history);
    if (f)
        fclose(f);
    json_decref(row);
}

nops_err nops_orch_execute(nops_orchestrator *o, const char *id, const nops_actor *who,
                           json_t **out, char *errstr, size_t errstr_size)
{
    const nops_playbook *pb;
    nops_err e = NOPS_OK;
    *out = NULL;
    json_t *rec = load_in(o, id, "approved|dry_run_ok", &pb, &e, errstr, errstr_size);
    if (!rec)
        return e;
    char why[512] = "", ph[65];
    const bool auto_ok = json_is_true(json_object_get(json_object_get(rec, "policy"),
                                                      "auto_execute"));
    const char *approved = json_string_value(
        json_object_get(json_object_get(rec, "approval"), "plan_sha256"));
    plan_hash(rec, ph);
    if (strcmp(state_of(rec), "dry_run_ok") == 0 && !auto_ok)
        snprintf(why, sizeof why, "this run needs an approval (policy: %s)",
                 json_string_value(json_object_get(json_object_get(rec, "policy"), "action")));
    else if (approved && strcmp(approved, ph) != 0)
        snprintf(why, sizeof why, "the plan changed since it was approved");
    else if (nops_registry_recheck(o->reg, pb,
                                   json_string_value(json_object_get(rec, "manifest_sha256")),
                                   why, sizeof why) != NOPS_OK) {
        /* why says it */
    }
    if (why[0]) {
        audit(o, who, "execute", id, "refused", json_pack("{s:s}", "reason", why));
        nops_errf(errstr, errstr_size, "%s", why);
        json_decref(rec);
        return NOPS_INVAL;
    }
    char ts[40];
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    json_object_set_new(rec, "started_at", json_string(ts));
    bool ok = run_steps(o, rec, pb, false, why, sizeof why);
    set_state(rec, ok ? "executed" : "failed");
    if (!ok)
        json_object_set_new(rec, "error", json_string(why));
    record_run(o, rec, ok, who);
    return commit_step(o, rec, who, "execute", ok ? "executed" : "failed",
                       json_pack("{s:s}", "error", why), out, errstr, errstr_size);
}

nops_err nops_orch_get(nops_orchestrator *o, const char *id, json_t **out)
{
    *out = load(o, id);
    return *out ? NOPS_OK : NOPS_NOTFOUND;
}
