/*
 * orchestrate.c — the orchestration endpoints: POST /orchestrate {"playbook_id", "incident_id" |
 * "incident"} (suggest), POST /orchestrations/{id}/dry-run|approve|execute, GET
 * /orchestrations/{id}, GET /playbooks. The caller (API key id or token subject, and role) is the
 * actor the orchestrator checks and audits.
 */
#include "api/api_int.h"

#include <string.h>

/* NOPS_NOTFOUND → 404; a refusal about who may act → 403; any other refusal → 409. */
static void fail(response *res, nops_err e, const char *err)
{
    int st = e == NOPS_NOTFOUND ? 404
             : e == NOPS_INVAL  ? (strstr(err, "requester") || strstr(err, "org-admin") ? 403 : 409)
                                : 500;
    nops__api_error(res, st, "%s", err);
}

static json_t *incident_for(nops_api *api, json_t *body, response *res)
{
    const char *iid = json_string_value(json_object_get(body, "incident_id"));
    json_t *inline_inc = json_object_get(body, "incident");
    if (!!iid == !!inline_inc) {
        nops__api_error(res, 400, "give incident_id or incident");
        return NULL;
    }
    if (inline_inc) {
        if (!json_is_object(inline_inc)) {
            nops__api_error(res, 400, "incident must be an object");
            return NULL;
        }
        return json_incref(inline_inc);
    }
    nops_buf b = {0};
    json_t *inc = nops_store_incident(api->d.store, iid, &b) == NOPS_OK
                      ? json_loadb(b.b, b.len, 0, NULL)
                      : NULL;
    nops_free(b.b);
    if (!inc)
        nops__api_error(res, 404, "no incident %.40s", iid);
    return inc;
}

static void suggest(nops_api *api, request *rq, const nops_actor *who, response *res)
{
    static const char *const known[] = {"playbook_id", "incident_id", "incident"};
    json_t *body = nops__api_body_object(rq, res);
    if (!body || !nops__api_known_fields(body, known, 3, res)) {
        json_decref(body);
        return;
    }
    const char *pb = json_string_value(json_object_get(body, "playbook_id"));
    json_t *inc = pb ? incident_for(api, body, res) : NULL;
    if (!pb)
        nops__api_error(res, 400, "playbook_id must be a string");
    if (inc) {
        char err[512];
        json_t *rec = NULL;
        nops_err e = nops_orch_suggest(api->d.orchestrator, inc, pb, who, &rec, err, sizeof err);
        if (e == NOPS_OK)
            nops__api_json(res, 201, rec);
        else
            fail(res, e, err);
        json_decref(inc);
    }
    json_decref(body);
}

void nops__api_orchestrate(nops_api *api, route_id route, const char *id, request *rq,
                           response *res)
{
    if (!api->d.orchestrator) {
        nops__api_error(res, 503, "orchestration is not configured (playbook registry)");
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
    switch (route) {
    case ROUTE_ORCH_DRY_RUN:
        e = nops_orch_dry_run(api->d.orchestrator, id, &who, &rec, err, sizeof err);
        break;
    case ROUTE_ORCH_APPROVE:
        e = nops_orch_approve(api->d.orchestrator, id, &who, &rec, err, sizeof err);
        break;
    case ROUTE_ORCH_EXECUTE:
        e = nops_orch_execute(api->d.orchestrator, id, &who, &rec, err, sizeof err);
        break;
    default:
        e = nops_orch_get(api->d.orchestrator, id, &rec);
        snprintf(err, sizeof err, "no orchestration %.40s", id);
        break;
    }
    if (e == NOPS_OK)
        nops__api_json(res, 200, rec);
    else
        fail(res, e, err);
}

void nops__api_playbooks(nops_api *api, response *res)
{
    if (!api->d.registry) {
        nops__api_error(res, 503, "no playbook registry is configured");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < nops_registry_count(api->d.registry); i++) {
        const nops_playbook *pb = nops_registry_at(api->d.registry, i);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "id", pb->id,
                                             "name", pb->name, "version", pb->version,
                                             "description", pb->description, "mode",
                                             pb->auto_mode ? "auto" : "manual", "timeout_s",
                                             (json_int_t)pb->timeout_s, "sha256", pb->sha256));
    }
    nops__api_json(res, 200, json_pack("{s:o, s:I}", "playbooks", arr, "refused",
                                       (json_int_t)nops_registry_refused(api->d.registry)));
}
