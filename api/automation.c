/*
 * automation.c — the kill switch over HTTP: GET /automation (whether automatic executions may
 * run, who paused them, the budget used per service in the last hour), POST /automation/pause
 * and POST /automation/resume (org-admin; the route table checks the role, the orchestrator
 * checks it again and audits). The pause is kept in the record store, so every instance on the
 * same database follows it.
 */
#include "api/api_int.h"

#include <string.h>

void nops__api_automation(nops_api *api, route_id route, request *rq, response *res)
{
    if (!api->d.orchestrator) {
        nops__api_error(res, 503, "orchestration is off: %.400s",
                        api->orch_off[0] ? api->orch_off
                                         : "not configured (orchestrate.registry_dir)");
        return;
    }
    if (route != ROUTE_AUTOMATION) {
        const nops_actor who = {rq->who.id, nops__role_name(rq->who.role)};
        char err[512];
        nops_err e = nops_orch_set_paused(api->d.orchestrator, route == ROUTE_AUTOMATION_PAUSE,
                                          &who, err, sizeof err);
        if (e != NOPS_OK) {
            nops__api_error(res, e == NOPS_INVAL ? 403 : 500, "%s", err);
            return;
        }
    }
    json_t *state = NULL;
    if (nops_orch_automation(api->d.orchestrator, &state) != NOPS_OK)
        nops__api_error(res, 500, "the automation state could not be read");
    else
        nops__api_json(res, 200, state);
}
