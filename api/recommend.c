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

/* The incident to embed, from whichever form the request used; NULL with `res` set. */
static json_t *incident_of(nops_api *api, json_t *o, response *res)
{
    const char *sid = json_string_value(json_object_get(o, "signal_id"));
    const char *iid = json_string_value(json_object_get(o, "incident_id"));
    json_t *inline_inc = json_object_get(o, "incident");
    int forms = !!json_object_get(o, "signal_id") + !!json_object_get(o, "incident_id") +
                !!inline_inc;
    if (forms != 1) {
        nops__api_error(res, 400, "give exactly one of signal_id, incident_id, incident");
        return NULL;
    }
    if (json_object_get(o, "signal_id") || json_object_get(o, "incident_id")) {
        if (!(sid ? sid : iid) || !*(sid ? sid : iid)) {
            nops__api_error(res, 400, "%s must be a non-empty string",
                            sid || json_object_get(o, "signal_id") ? "signal_id" : "incident_id");
            return NULL;
        }
        json_t *rec = stored(api, !sid, sid ? sid : iid);
        if (!rec) {
            nops__api_error(res, 404, "no %s %.40s (or older than the API keeps)",
                            sid ? "signal" : "incident", sid ? sid : iid);
            return NULL;
        }
        if (sid) { /* one signal: its labels and metric are the incident */
            json_t *inc = json_pack("{s:O, s:[O], s:[O]}", "labels",
                                    json_object_get(rec, "labels"), "metrics",
                                    json_object_get(rec, "metric"), "signals", rec);
            json_decref(rec);
            return inc;
        }
        json_decref(rec);
        return nops__api_stored_incident(api, iid, 0);
    }
    if (!json_is_object(inline_inc)) {
        nops__api_error(res, 400, "incident must be an object");
        return NULL;
    }
    return json_incref(inline_inc);
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
    json_t *inc = incident_of(api, o, res);
    if (inc) {
        char err[512];
        json_t *out = NULL;
        nops_err e = nops_recommend(api->d.recommender, inc, tn ? (int)json_integer_value(tn) : 3,
                                    &out, err, sizeof err);
        if (e == NOPS_OK)
            nops__api_json(res, 200, out);
        else
            nops__api_error(res, e == NOPS_PARSE ? 400 : e == NOPS_NOTFOUND ? 503 : 500, "%s",
                            err);
        json_decref(inc);
    }
    json_decref(o);
}
