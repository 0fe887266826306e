/*
 * recommend.c — POST /recommend: {"signal_id"} | {"incident_id"} | {"incident":{...}}, optional
 * "top_n", answered with the ranked playbooks of recommend.h (an array: api/openapi.json's
 * Recommendation).
 * Stored signals and incidents come from the API's store; an incident's signal ids are
 * resolved to the full signal objects the embedder reads.
 */
#include "api/api_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A stored record by id as JSON (new reference), or NULL. */
static json_t *stored(nops_api *api, bool incident, const char *id)
{
    nops_buf b = {0};
    nops_err e = incident ? nops_store_incident(api->d.store, id, &b)
                          : nops_store_signal(api->d.store, id, &b);
    json_t *o = e == NOPS_OK ? json_loadb(b.b, b.len, 0, NULL) : NULL;
    nops_free(b.b);
    return o;
}

/* Replace the incident's signal ids by the signal objects the store still has; the distinct
 * metric names of those into "metrics". */
static void resolve_signals(nops_api *api, json_t *inc)
{
    json_t *ids = json_object_get(inc, "signals"), *full = json_array(), *names = json_array();
    size_t i, k;
    json_t *x, *y;
    json_array_foreach(ids, i, x) {
        json_t *s = json_is_string(x) ? stored(api, false, json_string_value(x))
                                      : json_is_object(x) ? json_incref(x) : NULL;
        if (!s)
            continue;
        const char *m = json_string_value(json_object_get(s, "metric"));
        bool seen = !m;
        json_array_foreach(names, k, y) seen = seen || strcmp(json_string_value(y), m) == 0;
        if (!seen)
            json_array_append_new(names, json_string(m));
        json_array_append_new(full, s);
    }
    json_object_set_new(inc, "signals", full);
    if (json_array_size(names) || !json_is_array(json_object_get(inc, "metrics")))
        json_object_set_new(inc, "metrics", names);
    else
        json_decref(names);
}

/* Compact JSON size of o (SIZE_MAX when it cannot be dumped). */
static size_t json_size(const json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    size_t n = text ? strlen(text) : SIZE_MAX;
    free(text);
    return n;
}

json_t *nops__api_stored_incident(nops_api *api, const char *id, size_t max_bytes)
{
    json_t *inc = stored(api, true, id);
    if (!inc)
        return NULL;
    resolve_signals(api, inc);
    json_t *sigs = json_object_get(inc, "signals");
    while (max_bytes && json_array_size(sigs) && json_size(inc) > max_bytes) {
        /* drop a quarter at a time: a long list shrinks in a few dumps */
        size_t n = json_array_size(sigs), drop = n / 4 ? n / 4 : 1;
        for (size_t i = 0; i < drop; i++)
            json_array_remove(sigs, n - 1 - i);
    }
    return inc;
}

json_t *nops__api_incident_from(nops_api *api, json_t *o, size_t max_bytes,
                                const char **subject, response *res)
{
    static const char *const forms[] = {"signal_id", "incident_id", "incident"};
    int n = 0, form = -1;
    for (int i = 0; i < 3; i++)
        if (json_object_get(o, forms[i])) {
            n++;
            form = i;
        }
    if (n != 1) {
        nops__api_error(res, 400, "give exactly one of signal_id, incident_id, incident");
        return NULL;
    }
    json_t *v = json_object_get(o, forms[form]);
    if (form == 2) {
        if (!json_is_object(v)) {
            nops__api_error(res, 400, "incident must be an object");
            return NULL;
        }
        const size_t size = json_size(v);
        if (max_bytes && size > max_bytes) {
            nops__api_error(res, 413, "incident is %zu bytes of JSON, more than the %zu bytes "
                            "a suggestion takes inline", size, max_bytes);
            return NULL;
        }
        *subject = "inline";
        return json_incref(v);
    }
    const char *id = json_string_value(v);
    if (!id || !*id) {
        nops__api_error(res, 400, "%s must be a non-empty string", forms[form]);
        return NULL;
    }
    *subject = id;
    json_t *inc = form == 1 ? nops__api_stored_incident(api, id, max_bytes) : NULL;
    json_t *sig = form == 0 ? stored(api, false, id) : NULL;
    if (sig) { /* one signal: its labels and metric are the incident, its hint the summary */
        const char *hint = json_string_value(json_object_get(sig, "hint"));
        inc = json_pack("{s:O, s:[O], s:[O], s:s}", "labels", json_object_get(sig, "labels"),
                        "metrics", json_object_get(sig, "metric"), "signals", sig, "summary",
                        hint ? hint : "");
        json_decref(sig);
    }
    if (!inc)
        nops__api_error(res, 404, "no %s %.40s (or older than the API keeps)",
                        form == 0 ? "signal" : "incident", id);
    return inc;
}

nops_err nops__api_rank(nops_api *api, const json_t *inc, int top_n, const char *actor,
                        const char *subject, json_t **out, char *errstr, size_t errstr_size)
{
    uint64_t gen = 0;
    *out = NULL;
    if (!api->d.recommender) {
        nops_errf(errstr, errstr_size, "recommendations are not configured (recommend.index_dir)");
        return NOPS_NOTFOUND;
    }
    nops_err e = nops_recommend_at(api->d.recommender, inc, top_n, out, &gen, errstr,
                                   errstr_size);
    if (e != NOPS_OK || !api->d.audit)
        return e;
    /* the answer is a decision input: audited before it is given (docs/security.md) */
    json_t *top = json_array(), *x;
    size_t i;
    bool any = false;
    json_array_foreach(*out, i, x) {
        json_t *pb = json_object_get(x, "playbook_id");
        any = any || json_is_string(pb);
        if (json_is_string(pb))
            json_array_append_new(top, json_pack("{s:O, s:O}", "playbook_id", pb, "score",
                                                 json_object_get(x, "score")));
    }
    json_t *details = json_pack("{s:o, s:I}", "top", top, "generation", (json_int_t)gen);
    char err[256] = "";
    e = nops_audit_append(api->d.audit, actor, "recommend", subject,
                          any ? "ranked" : "no-evidence", details, NULL, err, sizeof err);
    json_decref(details);
    if (e != NOPS_OK) {
        json_decref(*out);
        *out = NULL;
        nops_errf(errstr, errstr_size, "the audit trail refused the entry, so no "
                  "recommendation is given (%s)", err);
        return NOPS_IO;
    }
    return NOPS_OK;
}

void nops__api_recommend(nops_api *api, struct MHD_Connection *c, request *rq, response *res)
{
    if (!nops__api_content_type_is(c, "application/json")) {
        nops__api_error(res, 415, "send the body as application/json");
        return;
    }
    if (!api->d.recommender) {
        nops__api_error(res, 503, "recommendations are not configured (recommend.index_dir)");
        return;
    }
    static const char *const known[] = {"signal_id", "incident_id", "incident", "top_n"};
    json_t *o = nops__api_body_object(rq, res);
    if (!o || !nops__api_known_fields(o, known, 4, res)) {
        json_decref(o);
        return;
    }
    json_t *tn = json_object_get(o, "top_n");
    if (tn && (!json_is_integer(tn) || json_integer_value(tn) < 1 ||
               json_integer_value(tn) > 50)) {
        nops__api_error(res, 400, "top_n must be an integer in [1, 50]");
        json_decref(o);
        return;
    }
    const char *subject = "inline";
    json_t *inc = nops__api_incident_from(api, o, 0, &subject, res);
    if (inc) {
        char err[512];
        json_t *out = NULL;
        nops_err e = nops__api_rank(api, inc, tn ? (int)json_integer_value(tn) : 3, rq->who.id,
                                    subject, &out, err, sizeof err);
        if (e == NOPS_OK)
            nops__api_json(res, 200, out);
        else
            nops__api_error(res, e == NOPS_PARSE ? 400 : e == NOPS_NOTFOUND ? 503 : 500, "%s",
                            err);
        json_decref(inc);
    }
    json_decref(o);
}
