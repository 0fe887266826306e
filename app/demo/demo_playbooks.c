/*
 * demo_playbooks.c — the demo's remediation side: signed example playbooks for the incident
 * kinds the demo injects (a key pair made at the first run, never shipped), a policy, and the
 * approve-and-run of one recommended playbook from the terminal or over the API.
 */
#include "app/demo/demo.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern const char nops__demo_playbooks[], nops__demo_policy[], nops__demo_fleet[];

/* The demo's actors: the engine asks on its own; when it had nothing confident enough to
 * suggest, the demo's operator asks for the top recommendation (as POST /orchestrate would);
 * the terminal user (or an admin key) approves. */
static const nops_actor REQUESTER = {"key:demo-operator", "operator"};
static const nops_actor APPROVER = {"key:demo-admin", "org-admin"};

/* Write a file of the demo's (0640, or `mode` when narrower or an executable 0750). */
static bool write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = nops_file_fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0;
    ok = f ? fclose(f) == 0 && ok : false;
    return ok && chmod(path, mode) == 0;
}

/* json_dump_file with a private, close-on-exec file. */
static bool dump_json(json_t *v, const char *path)
{
    FILE *f = nops_file_fopen(path, "w");
    bool ok = f && json_dumpf(v, f, JSON_INDENT(2) | JSON_SORT_KEYS) == 0;
    return f ? fclose(f) == 0 && ok : false;
}

/* Replace the placeholders in every string of `v` (arrays and objects walked). */
static void render(json_t *v, const char *fleet, const char *log)
{
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            const char *s = json_string_value(x);
            if (s && strcmp(s, "@FLEET@") == 0)
                json_array_set_new(v, i, json_string(fleet));
            else if (s && strcmp(s, "@LOG@") == 0)
                json_array_set_new(v, i, json_string(log));
            else
                render(x, fleet, log);
        }
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, x) render(x, fleet, log);
    }
}

bool demo_playbooks(app_ctx *ctx)
{
    if (ctx->orchestrate.registry_dir[0])
        return true; /* the user's own registry, from the configuration */
    char dir[600], reg[700], key[700], pub[700], fleet[700], log[700], pol[700], err[512];
    snprintf(dir, sizeof dir, "%.500s/playbooks", ctx->storage.data_dir);
    snprintf(reg, sizeof reg, "%s/registry", dir);
    snprintf(key, sizeof key, "%s/demo-signing.key", dir);
    snprintf(pub, sizeof pub, "%s/demo-signing.pub", dir);
    snprintf(fleet, sizeof fleet, "%s/nops-demo-fleet", dir);
    snprintf(log, sizeof log, "%s/fleet.log", dir);
    snprintf(pol, sizeof pol, "%s/policy.json", dir);
    char *abs = realpath(ctx->storage.data_dir, NULL); /* exec steps need absolute paths */
    if (abs) {
        snprintf(fleet, sizeof fleet, "%.500s/playbooks/nops-demo-fleet", abs);
        snprintf(log, sizeof log, "%.500s/playbooks/fleet.log", abs);
        free(abs);
    }
    if (nops_dir_make(dir) != 0 || nops_dir_make(reg) != 0) {
        fprintf(stderr, "neuralops demo: cannot create %s: %s\n", reg, strerror(errno));
        return false;
    }
    bool fresh = access(key, F_OK) != 0;
    if (fresh)
        unlink(pub); /* the demo's own, useless without its private key; keygen replaces none */
    if (fresh && nops_playbook_keygen(key, pub, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "neuralops demo: %s\n", err);
        return false;
    }
    if (!write_file(fleet, nops__demo_fleet, 0750) || !write_file(pol, nops__demo_policy, 0640)) {
        fprintf(stderr, "neuralops demo: cannot write %s: %s\n", dir, strerror(errno));
        return false;
    }
    json_t *all = json_loads(nops__demo_playbooks, 0, NULL), *m;
    size_t i, n = 0;
    json_array_foreach(all, i, m) {
        render(m, fleet, log);
        char path[800];
        snprintf(path, sizeof path, "%s/%s.json", reg,
                 json_string_value(json_object_get(m, "id")));
        if (!dump_json(m, path) ||
            nops_playbook_sign(path, key, err, sizeof err) != NOPS_OK) {
            fprintf(stderr, "neuralops demo: playbook %s: %s\n", path, err);
            json_decref(all);
            return false;
        }
        n++;
    }
    json_decref(all);
    snprintf(ctx->orchestrate.registry_dir, sizeof ctx->orchestrate.registry_dir, "%.500s", reg);
    snprintf(ctx->orchestrate.pubkeys, sizeof ctx->orchestrate.pubkeys, "%s", pub);
    if (!ctx->orchestrate.policy_file[0])
        snprintf(ctx->orchestrate.policy_file, sizeof ctx->orchestrate.policy_file, "%.500s", pol);
    printf("Playbooks: %zu example playbooks in %s, signed with %s (%s)\n", n, reg, key,
           fresh ? "a key pair made now, on the first run" : "the key pair of the first run");
    return true;
}

/* ---- approve and run one -------------------------------------------------------------------- */

static void print_steps(json_t *results, const char *title)
{
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r) {
        const char *out = json_string_value(json_object_get(r, "output"));
        printf("    %s %-20s exit %lld  %.*s\n", title,
               json_string_value(json_object_get(r, "step")),
               (long long)json_integer_value(json_object_get(r, "exit")),
               out ? (int)strcspn(out, "\n") : 0, out ? out : "");
    }
}

static void print_state(json_t *st, const char *when)
{
    const char *out = json_string_value(json_object_get(st, "output"));
    if (out)
        printf("    state %s: %.*s\n", when, (int)strcspn(out, "\n"), out);
}

typedef enum { ANSWER_NONE, ANSWER_YES, ANSWER_NO } answer;

/* Wait for a y/n on the terminal or for the record to move on over the API. */
static answer wait_for_decision(nops_orchestrator *o, const char *id, atomic_bool *stop)
{
    char line[64];
    while (!atomic_load(stop)) {
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        if (poll(&p, 1, 500) > 0) {
            if (!fgets(line, sizeof line, stdin))
                return ANSWER_NO;
            return line[0] == 'y' || line[0] == 'Y' ? ANSWER_YES : ANSWER_NO;
        }
        json_t *rec = NULL;
        if (nops_orch_get(o, id, &rec) == NOPS_OK) {
            const char *st = json_string_value(json_object_get(rec, "state"));
            bool moved = st && strcmp(st, "dry_run_ok") != 0;
            json_decref(rec);
            if (moved)
                return ANSWER_NONE; /* approved (and maybe run) through the API */
        }
    }
    return ANSWER_NO;
}

/* Wait until the API's execution of `id` ended; its record, or NULL (Ctrl-C, gone). */
static json_t *await_api_execution(nops_orchestrator *o, const char *id, atomic_bool *stop)
{
    printf("\n    approved over the API; waiting for POST .../execute\n");
    for (;;) {
        json_t *rec = NULL;
        if (nops_orch_get(o, id, &rec) != NOPS_OK || atomic_load(stop)) {
            json_decref(rec);
            return NULL;
        }
        const char *st = json_string_value(json_object_get(rec, "state"));
        if (st && (strcmp(st, "executed") == 0 || strcmp(st, "failed") == 0))
            return rec;
        json_decref(rec);
        nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
}

/* Offer `rec` (a passed dry-run that waits for an approval) for approval and run it. */
static void approve_and_run(app_ctx *ctx, app_engine *api, json_t *rec, bool approve,
                            atomic_bool *stop)
{
    nops_orchestrator *o = api->orch;
    char err[512], id[80];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    printf("\nRemediation: %s (%s for incident %s) %s\n", id,
           json_string_value(json_object_get(rec, "playbook_id")),
           json_string_value(json_object_get(json_object_get(rec, "context"), "incident_id")),
           json_is_true(json_object_get(json_object_get(rec, "policy"), "auto_execute"))
               ? "may run without an approval (policy allow, mode auto)"
               : "waits for an approval");
    print_steps(json_object_get(rec, "dry_run"), "dry-run");
    const bool auto_ok =
        json_is_true(json_object_get(json_object_get(rec, "policy"), "auto_execute"));
    answer a = ANSWER_YES;
    if (!approve && !auto_ok) {
        if (!isatty(STDIN_FILENO)) {
            printf("    it stays waiting: rerun with --approve (make demo DEMO_ARGS=--approve), "
                   "or in a terminal answer the prompt\n");
            return;
        }
        int port = api->api ? nops_api_port(api->api) : 0;
        printf("    Approve and run it as %s? [y/N] (or in the console, http://127.0.0.1:%d/ "
               "signed in with demo-admin-key: Approve, then Execute; or over the API: curl -X "
               "POST -H 'X-API-Key: demo-admin-key' "
               "http://127.0.0.1:%d/orchestrations/%s/approve, then .../execute) ",
               APPROVER.id, port, port, id);
        fflush(stdout);
        a = wait_for_decision(o, id, stop);
        if (a == ANSWER_NO) {
            printf("    not approved: %s stays dry_run_ok (GET /orchestrations/%s)\n", id, id);
            return;
        }
    }
    json_t *done = NULL;
    if (a == ANSWER_YES && !auto_ok &&
        nops_orch_approve(o, id, &APPROVER, &done, err, sizeof err) != NOPS_OK) {
        printf("    approval refused: %s\n", err);
        return;
    }
    json_decref(done);
    done = NULL;
    if (a == ANSWER_YES && nops_orch_execute(o, id, &APPROVER, &done, err, sizeof err) != NOPS_OK) {
        printf("    execution refused: %s\n", err);
        return;
    }
    if (a == ANSWER_NONE && !(done = await_api_execution(o, id, stop)))
        return;
    print_state(json_object_get(done, "pre_state"), "before");
    print_steps(json_object_get(done, "execution"), "ran    ");
    print_state(json_object_get(done, "post_state"), "after ");
    printf("    %s: %s by %s; a workflow_runs row went to %s/history.jsonl\n", id,
           json_string_value(json_object_get(done, "state")),
           json_string_value(json_object_get(done, "executed_by")), ctx->storage.data_dir);
    json_decref(done);
}

/* The engine's orchestrations, once none is half-way (dry-running, executing) or 30 s passed. */
static json_t *settled_records(nops_orchestrator *o, atomic_bool *stop)
{
    for (int i = 0; i < 150 && !atomic_load(stop); i++) {
        json_t *all = NULL;
        if (nops_orch_list(o, NULL, 1000, &all) != NOPS_OK)
            return NULL;
        bool busy = false;
        size_t k;
        json_t *rec;
        json_array_foreach(all, k, rec) {
            const char *st = json_string_value(json_object_get(rec, "state"));
            busy |= st && (strcmp(st, "suggested") == 0 || strcmp(st, "dry_running") == 0 ||
                           strcmp(st, "executing") == 0);
        }
        if (!busy)
            return all;
        json_decref(all);
        nanosleep(&(struct timespec){0, 200000000}, NULL);
    }
    json_t *all = NULL;
    return nops_orch_list(o, NULL, 1000, &all) == NOPS_OK ? all : NULL;
}

/* One line per orchestration the engine made on its own. */
static void print_record(const json_t *rec)
{
    const char *st = json_string_value(json_object_get(rec, "state"));
    const json_t *pol = json_object_get(rec, "policy");
    const char *action = json_string_value(json_object_get(pol, "action"));
    const char *how = !st ? "?"
                      : strcmp(st, "executed") == 0 || strcmp(st, "failed") == 0
                          ? (json_is_true(json_object_get(pol, "auto_execute"))
                                 ? "ran on its own (policy allow, playbook mode auto)"
                                 : "ran after an approval")
                      : strcmp(st, "dry_run_ok") == 0 ? "dry-run passed, waits for an approval"
                      : strcmp(st, "denied") == 0      ? "denied by the policy"
                                                       : st;
    const char *lvl = json_string_value(json_object_get(json_object_get(rec, "escalation"),
                                                        "level"));
    printf("  %-37s %-20s incident %.16s  policy %-16s %s%s%s%s%s\n",
           json_string_value(json_object_get(rec, "id")),
           json_string_value(json_object_get(rec, "playbook_id")),
           json_string_value(json_object_get(json_object_get(rec, "context"), "incident_id")),
           action ? action : "?", how, st && strcmp(st, "failed") == 0 ? " — it failed" : "",
           lvl ? " (escalation level " : "", lvl ? lvl : "", lvl ? ")" : "");
}

/* No engine suggestion waits (nothing was confident enough for loop.suggest_confidence): the
 * demo's operator suggests the top recommendation of the largest incident and dry-runs it; the
 * record (new reference) when its dry-run passed, else NULL (said why). */
static json_t *operator_suggestion(nops_orchestrator *o, json_t *incident, const char *pb)
{
    char err[512], id[80];
    json_t *rec = NULL;
    printf("\nThe engine suggested nothing that waits for an approval (no recommendation reached "
           "loop.suggest_confidence); %s suggests %s for %s, as POST /orchestrate would:\n",
           REQUESTER.id, pb, json_string_value(json_object_get(incident, "id")));
    if (nops_orch_suggest(o, incident, pb, &REQUESTER, &rec, err, sizeof err) != NOPS_OK) {
        printf("    not possible: %s\n", err);
        return NULL;
    }
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    rec = NULL;
    if (nops_orch_dry_run(o, id, &REQUESTER, &rec, err, sizeof err) != NOPS_OK) {
        printf("    dry-run not possible: %s\n", err);
        return NULL;
    }
    if (strcmp(json_string_value(json_object_get(rec, "state")), "dry_run_ok") != 0) {
        print_steps(json_object_get(rec, "dry_run"), "dry-run");
        printf("    the dry-run failed: nothing runs\n");
        json_decref(rec);
        return NULL;
    }
    return rec;
}

void demo_loop_report(app_ctx *ctx, app_engine *api, unsigned long notifications, bool approve,
                      atomic_bool *stop, json_t *top, const char *top_pb)
{
    if (!api->loop) {
        printf("\nClosed loop: off (loop.enabled, or no index and no notification receiver)\n");
        return;
    }
    nops_loop_flush(api->loop);
    nops_loop_stats ls;
    json_t *all = api->orch ? settled_records(api->orch, stop) : NULL;
    nops_loop_get_stats(api->loop, &ls);
    printf("\nClosed loop: %llu incidents got recommendations, %llu suggestions, %llu ran on their "
           "own, %llu wait(ed) for an approval, %lu notifications received\n",
           (unsigned long long)ls.recommended, (unsigned long long)ls.suggested,
           (unsigned long long)ls.auto_started, (unsigned long long)ls.approvals_pending,
           notifications);
    for (int s = 0; s < NOPS_LOOP_STAGES; s++)
        if (ls.stage[s].count)
            printf("  time to %-14s %llu incidents, mean %.2f s\n",
                   nops_loop_stage_name((nops_loop_stage)s),
                   (unsigned long long)ls.stage[s].count,
                   ls.stage[s].sum / (double)ls.stage[s].count);
    if (!api->orch && api->orch_off[0])
        printf("  orchestration is off: %s\n", api->orch_off);
    size_t k;
    json_t *rec, *waiting = NULL;
    json_array_foreach(all, k, rec) {
        const char *by = json_string_value(json_object_get(rec, "requested_by"));
        if (!by || strcmp(by, "engine") != 0)
            continue;
        print_record(rec);
        const char *st = json_string_value(json_object_get(rec, "state"));
        if (!waiting && st && strcmp(st, "dry_run_ok") == 0)
            waiting = rec;
    }
    json_t *mine = NULL;
    if (!waiting && api->orch && top && top_pb[0] && !atomic_load(stop))
        waiting = mine = operator_suggestion(api->orch, top, top_pb);
    if (waiting && !atomic_load(stop))
        approve_and_run(ctx, api, waiting, approve, stop);
    json_decref(mine);
    printf("    audit trail: %s/audit.jsonl (neuralops audit verify --input %s/audit.jsonl)\n",
           ctx->storage.data_dir, ctx->storage.data_dir);
    json_decref(all);
}
