/*
 * steps.c — running a playbook's steps (exec or kafka, dry-run or for real) for a record, the
 * state probe around an execution, and the workflow_runs row an execution leaves in the history.
 * The steps and the probe are the signed manifest's; from the record only its id and its sealed
 * incident context are used (see seal.c).
 */
#include "orchestrate/orch_int.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "NEURALOPS_<name>=<value>" with the value cut to 128 characters of [A-Za-z0-9._:/@-], so a
 * label cannot smuggle anything odd into a child's environment. */
static void env_var(char *out, size_t cap, const char *name, const char *value)
{
    int n = snprintf(out, cap, "NEURALOPS_%s=", name);
    size_t at = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; value && value[i] && i < 128 && at + 1 < cap; i++) {
        char c = value[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("._:/@-", c);
        out[at++] = ok ? c : '_';
    }
    out[at < cap ? at : cap - 1] = '\0';
}

typedef struct step_env {
    char vars[5][200];
    char *ptrs[6];
} step_env;

/* The length of s cut to at most max bytes on a character boundary (for "%.*s"). */
static int cut(const char *s, size_t max)
{
    return s ? (int)nops_utf8_cut(s, strlen(s), max) : 0;
}

static void make_env(step_env *e, json_t *rec, const nops_playbook *pb)
{
    json_t *ctx = json_object_get(rec, "context");
    json_t *labels = json_object_get(ctx, "labels");
    env_var(e->vars[0], sizeof e->vars[0], "ORCHESTRATION_ID",
            json_string_value(json_object_get(rec, "id")));
    env_var(e->vars[1], sizeof e->vars[1], "PLAYBOOK_ID", pb->id);
    env_var(e->vars[2], sizeof e->vars[2], "INCIDENT_ID",
            json_string_value(json_object_get(ctx, "incident_id")));
    env_var(e->vars[3], sizeof e->vars[3], "SERVICE",
            json_string_value(json_object_get(labels, "service")));
    env_var(e->vars[4], sizeof e->vars[4], "HOST",
            json_string_value(json_object_get(labels, "host")));
    for (int i = 0; i < 5; i++)
        e->ptrs[i] = e->vars[i];
    e->ptrs[5] = NULL;
}

/* One kafka step. */
static bool kafka_step(nops_kstep *k, json_t *rec, const nops_playbook *pb, json_t *st,
                       bool dry, int64_t deadline, nops_step_result *r)
{
    json_t *kf = json_object_get(st, "kafka");
    const char *topic = json_string_value(json_object_get(kf, "topic"));
    const char *id = json_string_value(json_object_get(rec, "id"));
    if (!k) {
        snprintf(r->output, sizeof r->output, "no Kafka brokers are configured for kafka steps");
        return false;
    }
    if (dry && !json_is_true(json_object_get(st, "dry_run"))) {
        if (nops__kstep_check(k, topic, deadline, r->output, sizeof r->output) != NOPS_OK)
            return false;
        snprintf(r->output, sizeof r->output, "topic %s exists; not published (dry-run)", topic);
        return true;
    }
    json_t *ctx = json_object_get(rec, "context");
    json_t *iid = json_object_get(ctx, "incident_id"), *labels = json_object_get(ctx, "labels");
    json_t *msg = json_pack("{s:s, s:s, s:o, s:O, s:b, s:o, s:O}", "orchestration_id", id,
                            "playbook_id", pb->id, "incident_id",
                            iid ? json_incref(iid) : json_null(), "step",
                            json_object_get(st, "name"), "dry_run", dry, "labels",
                            labels ? json_incref(labels) : json_object(), "payload",
                            json_object_get(kf, "payload"));
    bool ok = msg && nops__kstep_publish(k, topic, id, msg, deadline, r->output,
                                         sizeof r->output) == NOPS_OK;
    json_decref(msg);
    if (ok)
        snprintf(r->output, sizeof r->output, "published to %s%s", topic,
                 dry ? " (dry_run: true)" : "");
    return ok;
}

bool nops__command_allowed(const char *cmd, const char *patterns)
{
    if (!patterns || !*patterns)
        return true;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", patterns);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ')
            p++;
        if (*p && fnmatch(p, cmd, FNM_PATHNAME) == 0)
            return true;
    }
    return false;
}

bool nops__run_steps(json_t *rec, const nops_playbook *pb, nops_kstep *k, const char *allowed,
                     bool dry, char *why, size_t why_size)
{
    json_t *results = json_array();
    const int64_t deadline = (int64_t)nops_now_ns() + pb->timeout_s * 1000000000ll;
    step_env env;
    make_env(&env, rec, pb);
    bool ok = true;
    size_t i;
    json_t *st;
    nops_step_result *r = malloc(sizeof *r);
    if (!r) {
        snprintf(why, why_size, "out of memory");
        json_decref(results);
        return false;
    }
    json_array_foreach(json_object_get(pb->manifest, "steps"), i, st) {
        const char *name = json_string_value(json_object_get(st, "name"));
        json_t *exec = json_object_get(st, "exec");
        memset(r, 0, sizeof *r);
        const char *cmd = json_string_value(json_array_get(exec, 0));
        if (!exec) {
            ok = kafka_step(k, rec, pb, st, dry, deadline, r);
            if (!ok)
                snprintf(why, why_size, "step %.*s: %.*s", cut(name, 60), name,
                         cut(r->output, 400), r->output);
        } else if (!cmd || !nops__command_allowed(cmd, allowed)) {
            cmd = cmd ? cmd : "(none)";
            snprintf(r->output, sizeof r->output, "%.*s is not in orchestrate.allowed_commands",
                     cut(cmd, 300), cmd);
            snprintf(why, why_size, "step %.*s: %.*s", cut(name, 60), name, cut(r->output, 400),
                     r->output);
            ok = false;
        } else if (dry && !json_is_true(json_object_get(st, "dry_run"))) {
            /* no dry-run mode in the command: check that it exists and is executable */
            if (cmd[0] != '/' || access(cmd, X_OK) != 0) {
                snprintf(why, why_size, "step %.*s: %.*s is not an executable absolute path",
                         cut(name, 60), name, cut(cmd, 300), cmd);
                ok = false;
            }
            snprintf(r->output, sizeof r->output, "checked, not run (no dry-run mode)");
        } else if (nops__run_step(exec, dry, dry, env.ptrs, deadline, r) != NOPS_OK ||
                   r->exit_code != 0) {
            const char *out = r->timed_out ? "" : r->output;
            snprintf(why, why_size, "step %.*s %s%.*s", cut(name, 60), name,
                     r->timed_out ? "timed out after the playbook's timeout_s" : "failed: ",
                     cut(out, 300), out);
            ok = false;
        }
        json_array_append_new(results, json_pack("{s:s, s:s, s:i, s:b, s:s}", "step", name,
                                                 "kind", exec ? "exec" : "kafka", "exit",
                                                 r->exit_code, "timed_out", r->timed_out,
                                                 "output", r->output));
        if (!ok)
            break;
    }
    free(r);
    json_object_set_new(rec, dry ? "dry_run" : "execution", results);
    return ok;
}

json_t *nops__probe_state(json_t *rec, const nops_playbook *pb, const char *allowed)
{
    json_t *probe = json_object_get(pb->manifest, "state_probe");
    if (!probe)
        return NULL;
    const char *cmd = json_string_value(json_array_get(probe, 0));
    if (!cmd || !nops__command_allowed(cmd, allowed))
        return json_pack("{s:s}", "error", "the probe's command is not in "
                                           "orchestrate.allowed_commands");
    nops_step_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    step_env env;
    make_env(&env, rec, pb);
    const int64_t deadline = (int64_t)nops_now_ns() + 30 * 1000000000ll; /* a probe is quick */
    json_t *out = nops__run_step(probe, false, false, env.ptrs, deadline, r) == NOPS_OK
                      ? json_pack("{s:i, s:s}", "exit", r->exit_code, "output", r->output)
                      : json_pack("{s:s}", "error", r->output);
    free(r);
    return out;
}

/* The metric names of an incident: its "metrics" when it lists any, else those of its signal
 * objects (an incident passed with full signals but no, or an empty, "metrics"). */
static json_t *metrics_of(json_t *inc)
{
    json_t *m = json_object_get(inc, "metrics");
    if (json_is_array(m) && json_array_size(m))
        return json_incref(m);
    json_t *out = json_array(), *s, *x;
    size_t i, k;
    json_array_foreach(json_object_get(inc, "signals"), i, s) {
        const char *name = json_string_value(json_object_get(s, "metric"));
        bool seen = !name;
        json_array_foreach(out, k, x) seen = seen || strcmp(json_string_value(x), name) == 0;
        if (!seen)
            json_array_append_new(out, json_string(name));
    }
    return out;
}

json_t *nops__workflow_row(json_t *rec, const char *status, const char *executed_by)
{
    json_t *inc = json_object_get(rec, "incident");
    json_t *summary = json_object_get(inc, "summary"), *labels = json_object_get(inc, "labels");
    json_t *signals = json_object_get(inc, "signals");
    const char *err = json_string_value(json_object_get(rec, "error"));
    return json_pack("{s:O, s:O, s:o, s:o, s:o, s:o, s:O, s:O, s:s, s:s, s:s}", "id",
                     json_object_get(rec, "id"), "playbook_id",
                     json_object_get(rec, "playbook_id"), "incident_summary",
                     json_is_string(summary) ? json_incref(summary) : json_string(""),
                     "metrics", metrics_of(inc), "labels",
                     json_is_object(labels) ? json_incref(labels) : json_object(), "signals",
                     json_is_array(signals) ? json_incref(signals) : json_array(), "started_at",
                     json_object_get(rec, "started_at"), "finished_at",
                     json_object_get(rec, "updated_at"), "status", status,
                     "executed_by", executed_by, "notes", err ? err : "");
}
