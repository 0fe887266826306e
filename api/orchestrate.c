/*
 * orchestrate.c — the orchestration endpoints: POST /orchestrate {["playbook_id"], "incident_id"
 * | "signal_id" | "incident"} (suggest; without playbook_id the best-ranked recommendation that
 * is a signed playbook here is taken, and the answer's "recommendation" names it), POST
 * /orchestrations/{id}/dry-run|approve|execute, GET /orchestrations/{id}, GET /playbooks. The
 * caller (API key id or token subject, and role) is the actor the orchestrator checks and
 * audits.
 */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

/* The 503 of an orchestration route when the flow is off, saying why. */
static void off(nops_api *api, response *res)
{
    nops__api_error(res, 503, "orchestration is off: %.400s",
                    api->orch_off[0] ? api->orch_off
                                     : "not configured (orchestrate.registry_dir)");
}

/* NOPS_NOTFOUND → 404; a refusal about who may act → 403; any other refusal (a state, a record
 * or manifest that changed, an approval that does not verify) → 409; too many open → 429; an
 * incident over the size a suggestion takes → 413. */
static void fail(response *res, nops_err e, const char *err)
{
    int st = e == NOPS_NOTFOUND ? 404
             : e == NOPS_INVAL  ? (strstr(err, "requester") || strstr(err, "org-admin") ? 403 : 409)
             : e == NOPS_FULL   ? 429
             : e == NOPS_RANGE  ? 413
                                : 500;
    nops__api_error(res, st, "%s", err);
}

/* Without a playbook_id: the best-ranked recommendation for `inc` that is a signed playbook
 * here (audited as a recommendation); its entry (new reference) or NULL with `res` set (422
 * when there is none, with why). */
static json_t *recommended(nops_api *api, const json_t *inc, const nops_actor *who,
                           const char *subject, response *res)
{
    char err[512];
    json_t *recs = NULL;
    nops_err e = nops__api_rank(api, inc, 5, who->id, subject, &recs, err, sizeof err);
    if (e != NOPS_OK) {
        nops__api_error(res, e == NOPS_IO || e == NOPS_NOMEM ? 500 : 422,
                        "no playbook_id given and no recommendation to take: %s", err);
        return NULL;
    }
    json_t *x, *pick = NULL;
    size_t i;
    json_array_foreach(recs, i, x) {
        const char *pb = json_string_value(json_object_get(x, "playbook_id"));
        const nops_registry *reg = api->registry;
        if (!pick && pb && reg && nops_registry_get(reg, pb))
            pick = json_pack("{s:s, s:O, s:O, s:I}", "playbook_id", pb, "score",
                             json_object_get(x, "score"), "confidence",
                             json_object_get(x, "confidence"), "rank", (json_int_t)i + 1);
    }
    if (!pick) {
        json_t *top = json_array_get(recs, 0);
        const char *pb = json_string_value(json_object_get(top, "playbook_id"));
        if (pb)
            nops__api_error(res, 422, "no playbook_id given and none of the %zu recommended "
                            "playbooks (first: %.64s) is a signed playbook here",
                            json_array_size(recs), pb);
        else
            nops__api_error(res, 422, "no playbook_id given and nothing to recommend: %.400s",
                            json_string_value(json_object_get(top, "justification")));
    }
    json_decref(recs);
    return pick;
}

static void suggest(nops_api *api, request *rq, const nops_actor *who, response *res)
{
    static const char *const known[] = {"playbook_id", "incident_id", "signal_id", "incident"};
    json_t *body = nops__api_body_object(rq, res);
    if (!body || !nops__api_known_fields(body, known, 4, res)) {
        json_decref(body);
        return;
    }
    json_t *pbv = json_object_get(body, "playbook_id");
    const char *pb = json_string_value(pbv), *subject = "inline";
    json_t *inc = NULL, *pick = NULL;
    if (pbv && (!pb || !*pb))
        nops__api_error(res, 400, "playbook_id must be a non-empty string");
    else
        inc = nops__api_incident_from(api, body, NOPS_ORCH_MAX_INCIDENT, &subject, res);
    if (inc && !pb && (pick = recommended(api, inc, who, subject, res)))
        pb = json_string_value(json_object_get(pick, "playbook_id"));
    if (inc && pb) {
        char err[512];
        json_t *rec = NULL;
        nops_err e = nops_orch_suggest(api->d.orchestrator, inc, pb, who, &rec, err, sizeof err);
        if (e == NOPS_OK && pick) /* the answer says which playbook was taken and why */
            json_object_set(rec, "recommendation", pick);
        if (e == NOPS_OK)
            nops__api_json(res, 201, rec);
        else
            fail(res, e, err);
    }
    json_decref(pick);
    json_decref(inc);
    json_decref(body);
}

void nops__api_orchestrate(nops_api *api, route_id route, const char *id, request *rq,
                           response *res)
{
    if (!api->d.orchestrator) {
        off(api, res);
        return;
    }
    const nops_actor who = {rq->who.id, nops__role_name(rq->who.role)};
    if (route == ROUTE_ORCHESTRATE) {
        suggest(api, rq, &who, res);
        return;
    }
    char err[512] = "";
    json_t *rec = NULL;
    nops_err e;
    int ok_status = 200;
    switch (route) {
    case ROUTE_ORCH_DRY_RUN: /* steps run on the orchestrator's worker: 202, poll the record */
        e = nops_orch_start(api->d.orchestrator, NOPS_ORCH_DRY_RUN, id, &who, &rec, err,
                            sizeof err);
        ok_status = 202;
        break;
    case ROUTE_ORCH_APPROVE:
        e = nops_orch_approve(api->d.orchestrator, id, &who, &rec, err, sizeof err);
        break;
    case ROUTE_ORCH_EXECUTE:
        e = nops_orch_start(api->d.orchestrator, NOPS_ORCH_EXECUTE, id, &who, &rec, err,
                            sizeof err);
        ok_status = 202;
        break;
    default:
        e = nops_orch_get(api->d.orchestrator, id, &rec);
        snprintf(err, sizeof err, "no orchestration %.40s", id);
        break;
    }
    if (e == NOPS_OK)
        nops__api_json(res, ok_status, rec);
    else
        fail(res, e, err);
}

void nops__api_playbooks(nops_api *api, response *res)
{
    const nops_registry *reg = api->registry; /* one registry for the whole answer */
    if (!reg) {
        off(api, res);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < nops_registry_count(reg); i++) {
        const nops_playbook *pb = nops_registry_at(reg, i);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "id", pb->id,
                                             "name", pb->name, "version", pb->version,
                                             "description", pb->description, "mode",
                                             pb->auto_mode ? "auto" : "manual", "timeout_s",
                                             (json_int_t)pb->timeout_s, "sha256", pb->sha256));
    }
    nops__api_json(res, 200, json_pack("{s:o, s:I}", "playbooks", arr, "refused",
                                       (json_int_t)nops_registry_refused(reg)));
}

typedef struct list_args {
    const char *state;
    size_t limit;
    response *res;
    bool bad;
} list_args;

static enum MHD_Result list_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *v)
{
    (void)kind;
    list_args *a = cls;
    static const char *const states[] = {"suggested", "denied", "dry_running", "dry_run_ok",
                                         "dry_run_failed", "approved", "executing", "executed",
                                         "failed", "interrupted", "damaged"};
    if (!v)
        v = "";
    if (strcmp(key, "state") == 0) {
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
            if (strcmp(v, states[i]) == 0)
                a->state = states[i];
        if (!a->state) {
            nops__api_error(a->res, 400, "state must be one of suggested, denied, dry_running, "
                            "dry_run_ok, dry_run_failed, approved, executing, executed, "
                            "failed, interrupted, damaged");
            a->bad = true;
            return MHD_NO;
        }
    } else if (strcmp(key, "limit") == 0) {
        unsigned long long n;
        if (!nops__api_count_arg(key, v, 1, 1000, &n, a->res)) {
            a->bad = true;
            return MHD_NO;
        }
        a->limit = (size_t)n;
    } else {
        nops__api_error(a->res, 400, "unknown query parameter \"%.60s\"", key);
        a->bad = true;
        return MHD_NO;
    }
    return MHD_YES;
}

void nops__api_orchestrations(nops_api *api, struct MHD_Connection *c, response *res)
{
    if (!api->d.orchestrator) {
        off(api, res);
        return;
    }
    list_args a = {.limit = 100, .res = res};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, list_arg, &a);
    if (a.bad)
        return;
    json_t *list = NULL;
    if (nops_orch_list(api->d.orchestrator, a.state, a.limit, &list) != NOPS_OK)
        nops__api_error(res, 500, "the orchestration records could not be read");
    else
        nops__api_json(res, 200, json_pack("{s:o}", "orchestrations", list));
}

typedef struct audit_args {
    nops_audit_query q;
    response *res;
    bool bad;
} audit_args;

static enum MHD_Result audit_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *v)
{
    (void)kind;
    audit_args *a = cls;
    if (!v)
        v = "";
    if (strcmp(key, "after") == 0 || strcmp(key, "limit") == 0) {
        unsigned long long n;
        const bool after = key[0] == 'a';
        if (!nops__api_count_arg(key, v, after ? 0 : 1, after ? UINT64_MAX : 1000, &n, a->res)) {
            a->bad = true;
            return MHD_NO;
        }
        if (after)
            a->q.after = n;
        else
            a->q.limit = (size_t)n;
    } else if (strcmp(key, "actor") == 0) {
        a->q.actor = v;
    } else if (strcmp(key, "action") == 0) {
        a->q.action = v;
    } else if (strcmp(key, "subject") == 0) {
        a->q.subject = v;
    } else {
        nops__api_error(a->res, 400, "unknown query parameter \"%.60s\"", key);
        a->bad = true;
        return MHD_NO;
    }
    return MHD_YES;
}

void nops__api_audit(nops_api *api, struct MHD_Connection *c, response *res)
{
    if (!api->d.audit) {
        off(api, res);
        return;
    }
    audit_args a = {.q = {.limit = 100}, .res = res};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, audit_arg, &a);
    if (a.bad)
        return;
    char err[256];
    json_t *page = NULL;
    if (nops_audit_page(api->d.audit, &a.q, &page, err, sizeof err) != NOPS_OK)
        nops__api_error(res, 500, "%s", err);
    else
        nops__api_json(res, 200, page);
}
