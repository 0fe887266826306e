/*
 * seal.c — making an orchestration record (for a suggestion), and what makes a stored record
 * trustworthy again when it is read back.
 *
 * Records live where others can write (files in the data dir, a PostgreSQL table). The engine
 * therefore never runs anything a record names: steps come from the registry's signed manifest
 * of the record's playbook. What a record still decides — which playbook, the incident context
 * the steps receive, who asked, the policy's decision (auto-execution), that the dry-run passed
 * and who approved — is sealed with an HMAC under the engine's secret (purpose
 * "orchestration"), computed over a canonical plan text:
 *
 *   compact JSON, keys sorted, non-ASCII escaped, of
 *   {"kind", "orchestration_id", "playbook_id", "playbook_version", "manifest_sha256",
 *    "context", "requested_by", "created_at", "policy" (kind "suggest") | "origin" (the
 *    suggest seal, other kinds), "by", "at" (dry-run and approval), "dry_run" (the dry-run's
 *    per-step results, kind "dry-run")}
 *
 * where the playbook's id, version and sha256 are those of the manifest loaded now, never the
 * record's copies. A seal made for one manifest therefore fails against another, one made for
 * one record fails on any other (the id is in it), and nobody without the key file can make
 * one. The kinds: "suggest" (made at suggest; binds the policy decision, including
 * auto_execute), "dry-run" (made when a dry-run passed) and "approval" (made at approve; binds
 * the approver and the time).
 *
 * Every value sealed is a string, a boolean, an integer or an object or array of those, so the
 * text is the same after the record went through a file or jsonb and back. The record's copy of
 * the manifest's steps (for reading) is not sealed but must equal the manifest's (checked by the
 * orchestrator).
 */
#include "orchestrate/orch_int.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEAL_PURPOSE "orchestration"

json_t *nops__step_context(const json_t *incident)
{
    json_t *id = json_object_get(incident, "id"), *labels = json_object(), *v;
    const char *k;
    json_object_foreach((json_t *)json_object_get(incident, "labels"), k, v) {
        if (json_is_string(v))
            json_object_set(labels, k, v);
    }
    return json_pack("{s:o, s:o}", "incident_id", json_is_string(id) ? json_incref(id)
                                                                     : json_null(),
                     "labels", labels);
}

/* rec[key] (a new reference), or null when absent. */
static json_t *field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return v ? json_incref(v) : json_null();
}

/* The canonical plan text (free() it), NULL when out of memory. */
static char *plan_text(const char *kind, json_t *rec, const nops_playbook *pb, json_t *sub)
{
    const bool origin = strcmp(kind, "suggest") == 0;
    json_t *p = json_pack("{s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "kind", kind,
                          "orchestration_id", field(rec, "id"), "playbook_id", pb->id,
                          "playbook_version", pb->version, "manifest_sha256", pb->sha256,
                          "context", field(rec, "context"), "requested_by",
                          field(rec, "requested_by"), "created_at", field(rec, "created_at"),
                          origin ? "policy" : "origin", field(rec, origin ? "policy" : "mac"));
    if (p && sub) {
        json_object_set_new(p, "by", field(sub, "by"));
        json_object_set_new(p, "at", field(sub, "at"));
    }
    if (p && strcmp(kind, "dry-run") == 0) /* what the approver reads of it */
        json_object_set_new(p, "dry_run", field(rec, "dry_run"));
    char *text = p ? json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) : NULL;
    json_decref(p);
    return text;
}

bool nops__seal_make(const nops_secret *s, const char *kind, json_t *rec,
                     const nops_playbook *pb, json_t *sub, char out[2 * NOPS_MAC_LEN + 1])
{
    char *text = plan_text(kind, rec, pb, sub);
    if (!text) {
        out[0] = '\0';
        return false;
    }
    nops_secret_mac_hex(s, SEAL_PURPOSE, text, strlen(text), out);
    free(text);
    return true;
}

bool nops__seal_check(const nops_secret *s, const char *kind, json_t *rec,
                      const nops_playbook *pb, json_t *sub, const char *hex)
{
    if (!hex)
        return false;
    char *text = plan_text(kind, rec, pb, sub);
    bool ok = text && nops_secret_verify_hex(s, SEAL_PURPOSE, text, strlen(text), hex);
    free(text);
    return ok;
}

/* ---- checks the orchestrator makes ---------------------------------------------------------- */

static const char *rec_id(json_t *rec)
{
    const char *s = json_string_value(json_object_get(rec, "id"));
    return s ? s : "";
}

/* "" when the record's own seal (made at suggest) holds against the manifest loaded now;
 * otherwise why not. */
void nops__origin_refusal(const nops_secret *secret, json_t *rec, const nops_playbook *pb,
                          char *why, size_t why_size)
{
    why[0] = '\0';
    if (nops__seal_check(secret, "suggest", rec, pb, NULL,
                         json_string_value(json_object_get(rec, "mac")))) {
        if (!json_equal(json_object_get(rec, "steps"), json_object_get(pb->manifest, "steps")))
            snprintf(why, why_size, "the steps shown in orchestration %s are not its signed "
                     "manifest's: the record was changed outside the engine; nothing of it is "
                     "run", rec_id(rec));
        return;
    }
    const char *sha = json_string_value(json_object_get(rec, "manifest_sha256"));
    if (sha && strcmp(sha, pb->sha256) != 0)
        snprintf(why, why_size, "the manifest of playbook %s is not the one orchestration %s "
                 "was suggested with (sha256 %.12s…, the registry's %.12s…): the manifest "
                 "changed, or the record was edited; suggest it again", pb->id, rec_id(rec), sha,
                 pb->sha256);
    else
        snprintf(why, why_size, "the record of orchestration %s does not verify: it was changed "
                 "outside the engine (or made under another engine key); nothing of it is run",
                 rec_id(rec));
}

/* Seal `kind` ("dry-run", "approval") into rec[key] = {"by"?, "at", "manifest_sha256", "mac"}. */
bool nops__seal_into(const nops_secret *secret, json_t *rec, const nops_playbook *pb,
                     const char *kind, const char *key, const char *by)
{
    char ts[40], mac[2 * NOPS_MAC_LEN + 1];
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    json_t *sub = json_pack("{s:s, s:s}", "at", ts, "manifest_sha256", pb->sha256);
    if (sub && by)
        json_object_set_new(sub, "by", json_string(by));
    if (!sub || !nops__seal_make(secret, kind, rec, pb, sub, mac)) {
        json_decref(sub);
        return false;
    }
    json_object_set_new(sub, "mac", json_string(mac));
    return json_object_set_new(rec, key, sub) == 0;
}

/* Whether rec[key] is a seal of `kind` that holds against the manifest loaded now. */
bool nops__sealed(const nops_secret *secret, json_t *rec, const nops_playbook *pb,
                  const char *kind, const char *key)
{
    json_t *sub = json_object_get(rec, key);
    return json_is_object(sub) &&
           nops__seal_check(secret, kind, rec, pb, sub,
                            json_string_value(json_object_get(sub, "mac")));
}

/* ---- a new record ------------------------------------------------------------------------ */

json_t *nops__policy_context(const nops_playbook *pb, const json_t *incident,
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

json_t *nops__record_new(const nops_secret *secret, const nops_playbook *pb,
                         const json_t *incident, const nops_actor *who,
                         const nops_policy_decision *d, const char *fixed_id)
{
    char id[48], ts[40], mac[2 * NOPS_MAC_LEN + 1];
    if (fixed_id) {
        snprintf(id, sizeof id, "%s", fixed_id);
    } else {
        unsigned char rnd[8];
        if (RAND_bytes(rnd, sizeof rnd) != 1) /* no guessable stand-in: ids must not collide */
            return NULL;
        char hex[2 * sizeof rnd + 1];
        nops_hex(rnd, sizeof rnd, hex);
        snprintf(id, sizeof id, "orch-%s", hex);
    }
    const int64_t now = nops_wall_ns();
    nops_format_ts(now, ts, sizeof ts);
    json_t *rec = json_pack(
        "{s:s, s:s, s:s, s:s, s:O, s:O, s:o, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:b, s:s}}", "id",
        id, "playbook_id", pb->id, "playbook_version", pb->version, "manifest_sha256",
        pb->sha256, "steps", json_object_get(pb->manifest, "steps"), "incident", incident,
        "context", nops__step_context(incident), "requested_by", who->id, "created_at", ts,
        "policy", "action", nops_policy_action_name(d->action), "escalation",
        nops_escalation_name(d->escalation), "rule", d->rule, "reason", d->reason,
        "auto_execute", d->auto_execute, "logged_rules", d->logged);
    if (!rec)
        return NULL;
    const bool deny = d->action == NOPS_POLICY_DENY;
    json_object_set_new(rec, "state", json_string(deny ? "denied" : "suggested"));
    json_object_set_new(rec, "updated_at", json_string(ts));
    if (deny) {
        char why[400];
        snprintf(why, sizeof why, "denied by policy rule %s: %s", d->rule, d->reason);
        json_object_set_new(rec, "error", json_string(why));
    }
    if (d->action == NOPS_POLICY_ESCALATE) /* outside the seals: nops_orch_escalate_due raises it */
        json_object_set_new(rec, "escalation",
                            json_pack("{s:s, s:s, s:I}", "level",
                                      nops_escalation_name(d->escalation), "since", ts,
                                      "since_ns", (json_int_t)now));
    if (!nops__seal_make(secret, "suggest", rec, pb, NULL, mac)) {
        json_decref(rec);
        return NULL;
    }
    json_object_set_new(rec, "mac", json_string(mac));
    return rec;
}
