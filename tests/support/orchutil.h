/*
 * orchutil.h — the set-up the orchestration tests share (header-only, tests only; include after
 * cmocka.h): a playbook signing key pair made with openssl, signed playbooks, and the actors.
 */
#ifndef NOPS_TESTS_SUPPORT_ORCHUTIL_H
#define NOPS_TESTS_SUPPORT_ORCHUTIL_H

#include "orchestrate/orchestrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const nops_actor TU_OPS = {"key:ops", "operator"};      /* suggests */
static const nops_actor TU_ADMIN = {"key:admin", "org-admin"}; /* approves, executes */

/* Create the registry directory `reg` and an EC P-256 key pair: private key in `key`, public in
 * `pub`. 0, or -1 when mkdir or openssl failed. */
static inline int tu_orch_keys(const char *reg, const char *key, const char *pub)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir %s && openssl ecparam -name prime256v1 -genkey -noout -out "
             "%s 2>/dev/null && openssl ec -in %s -pubout -out %s 2>/dev/null",
             reg, key, key, pub);
    return system(cmd) == 0 ? 0 : -1;
}

/* The scratch directory of an orchestration test: the registry reg/ with a key pair (k.pem,
 * p.pem), and where the record store (orch/) and the audit trail (audit.jsonl) go. */
typedef struct tu_orch_dirs {
    char reg[160], key[160], pub[160], state[160], audit[160];
} tu_orch_dirs;

/* Make `tmpl` (a mkdtemp template, changed in place) and fill `d` for it; 0 or -1. */
static inline int tu_orch_dirs_make(char *tmpl, tu_orch_dirs *d)
{
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(d->reg, sizeof d->reg, "%s/reg", tmpl);
    snprintf(d->key, sizeof d->key, "%s/k.pem", tmpl);
    snprintf(d->pub, sizeof d->pub, "%s/p.pem", tmpl);
    snprintf(d->state, sizeof d->state, "%s/orch", tmpl);
    snprintf(d->audit, sizeof d->audit, "%s/audit.jsonl", tmpl);
    return tu_orch_keys(d->reg, d->key, d->pub);
}

/* Remove the scratch directory `dir` and everything in it; 0 or -1. */
static inline int tu_orch_dirs_remove(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The playbook `id` in `reg`, signed with `key`: `steps` a JSON array, `mode` manual or auto,
 * only org-admin may approve, `extra` more top-level members (",\"state_probe\":[...]" or ""). */
static inline void tu_orch_playbook(const char *reg, const char *key, const char *id,
                                    const char *steps, const char *mode, int timeout_s,
                                    const char *extra)
{
    char path[300], err[256];
    static char text[4096];
    snprintf(path, sizeof path, "%s/%s.json", reg, id);
    snprintf(text, sizeof text,
             "{\"id\":\"%s\",\"name\":\"%s\",\"version\":\"1\",\"safety\":{\"mode\":\"%s\","
             "\"allowed_roles\":[\"org-admin\"]},\"steps\":%s,\"timeout_s\":%d%s}",
             id, id, mode, steps, timeout_s, extra);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    if (nops_playbook_sign(path, key, err, sizeof err) != NOPS_OK)
        fail_msg("sign: %s", err);
}

/* Suggest playbook `pb` by TU_OPS for a small incident, dry-run it and approve it by TU_ADMIN;
 * the id in `id`. */
static inline void tu_orch_approved(nops_orchestrator *o, const char *pb, char *id, size_t cap)
{
    char err[256];
    json_t *inc = json_pack("{s:s, s:{s:s}}", "summary", "latency jumped", "labels", "service",
                            "checkout");
    json_t *rec = NULL;
    if (nops_orch_suggest(o, inc, pb, &TU_OPS, &rec, err, sizeof err) != NOPS_OK)
        fail_msg("suggest: %s", err);
    snprintf(id, cap, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    json_decref(inc);
    if (nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err) != NOPS_OK)
        fail_msg("dry-run: %s", err);
    json_decref(rec);
    if (nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err) != NOPS_OK)
        fail_msg("approve: %s", err);
    json_decref(rec);
}

#endif
