/*
 * jsonfmt_jansson.c — the slow path of the JSON metric parser: a document the tokenizer in
 * jsonfmt.c does not vouch for (malformed JSON, bad UTF-8, duplicate or escaped keys, deep
 * nesting, huge strings, a top-level array) is parsed here with jansson, as every document was
 * before the tokenizer, so its rejection reason (syntax, UTF-8, format) and its points are
 * exactly jansson's. Well-formed messages of the two shapes never come here.
 */
#include "parse/jsonfmt_int.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/* A JSON number, or a string holding one (the adapter sends values as strings). */
static bool json_value_number(json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return isfinite(*out);
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        double d = strtod(s, &end);
        if (end == s || *end || !isfinite(d))
            return false;
        *out = d;
        return true;
    }
    return false;
}

static bool json_timestamp(json_t *t, int64_t now_ns, int64_t *ns)
{
    if (!t || json_is_null(t)) {
        *ns = now_ns;
        return true;
    }
    if (json_is_string(t)) {
        const char *s = json_string_value(t);
        return nops_ingest_parse_timestamp(s, strlen(s), ns, NULL) == NOPS_OK;
    }
    if (json_is_integer(t)) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(t));
        return nops_ingest_parse_timestamp(buf, (size_t)n, ns, NULL) == NOPS_OK;
    }
    if (json_is_real(t)) {
        double d = json_real_value(t);
        if (!isfinite(d) || fabs(d) > 9e9)
            return false;
        *ns = (int64_t)(d * 1e9);
        return true;
    }
    return false;
}

/* Labels from a JSON object of strings; `__name__` is left out. */
static bool json_tags(json_t *obj, nops_label *tags, size_t *n)
{
    *n = 0;
    if (!obj)
        return true;
    if (!json_is_object(obj))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (strcmp(k, "__name__") == 0)
            continue;
        if (!json_is_string(v) || *n == NOPS_INGEST_MAX_TAGS)
            return false;
        tags[(*n)++] = (nops_label){k, strlen(k), json_string_value(v),
                                         json_string_length(v)};
    }
    return true;
}

static nops_point json_point(const char *name, const char *field, const nops_label *tags,
                             size_t n_tags, double value, int64_t ts)
{
    bool is_value = strcmp(field, "value") == 0;
    return (nops_point){name, strlen(name), is_value ? "" : field, is_value ? 0 : strlen(field),
                        tags, n_tags,       value, ts, NULL, 0}; /* no raw span: keyed each time */
}

/* The object's names (the metric name with each numeric field, the label keys) can make a
 * series key; otherwise the object is rejected (NOPS_REJECT_NAME) and false returned. */
static bool json_names_ok(json_ctx *c, const char *name, json_t *fields, const nops_label *tags,
                          size_t n_tags)
{
    const char *detail = NULL;
    nops_point pt = json_point(name, "", tags, n_tags, 0, 0);
    if (nops_ingest_check_names(&pt, &detail) != NOPS_REJECT_NONE) {
        nops_json_reject(c, NOPS_REJECT_NAME, detail);
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(fields, k, v)
    {
        if (json_is_string(v) || json_is_boolean(v) || json_is_null(v))
            continue;
        pt = json_point(name, k, tags, n_tags, 0, 0);
        if (nops_ingest_check_names(&pt, &detail) != NOPS_REJECT_NONE) {
            nops_json_reject(c, NOPS_REJECT_NAME, detail);
            return false;
        }
    }
    return true;
}

static void emit(json_ctx *c, const char *name, const char *field, const nops_label *tags,
                 size_t n_tags, double value, int64_t ts)
{
    nops_point pt = json_point(name, field, tags, n_tags, value, ts);
    c->st->points++;
    if (!c->fn(c->ud, &pt))
        c->stop = true;
}

static void json_object_points(json_ctx *c, json_t *o)
{
    c->objects++;
    nops_label tags[NOPS_INGEST_MAX_TAGS];
    size_t n_tags;
    json_t *name = json_object_get(o, "name");
    if (!json_is_object(o) || !name ||
        (!json_object_get(o, "fields") && !json_object_get(o, "value"))) {
        nops_json_reject(c, NOPS_REJECT_FORMAT, nops_json_unsupported);
        return;
    }
    if (!json_is_string(name) || json_string_length(name) == 0) {
        nops_json_reject(c, NOPS_REJECT_SYNTAX, "object has no \"name\" string");
        return;
    }
    int64_t ts;
    if (!json_timestamp(json_object_get(o, "timestamp"), c->now_ns, &ts)) {
        nops_json_reject(c, NOPS_REJECT_TIMESTAMP, "\"timestamp\" is not a timestamp");
        return;
    }
    json_t *fields = json_object_get(o, "fields");
    if (fields) { /* Telegraf */
        if (!json_is_object(fields) || !json_tags(json_object_get(o, "tags"), tags, &n_tags)) {
            nops_json_reject(c, NOPS_REJECT_SYNTAX,
                             "Telegraf \"fields\"/\"tags\" are not objects of values");
            return;
        }
        if (!json_names_ok(c, json_string_value(name), fields, tags, n_tags))
            return;
        const char *k;
        json_t *v;
        uint32_t before = c->st->points;
        bool bad = false;
        json_object_foreach(fields, k, v)
        {
            double d;
            if (json_is_string(v) || json_is_boolean(v) || json_is_null(v))
                continue; /* non-numeric fields carry no series value */
            if (!json_value_number(v, &d)) {
                bad = true;
                continue;
            }
            if (!c->stop)
                emit(c, json_string_value(name), k, tags, n_tags, d, ts);
        }
        if (bad && c->st->points == before)
            nops_json_reject(c, NOPS_REJECT_VALUE, "no Telegraf field is a finite number");
        return;
    }
    double d;
    json_t *value = json_object_get(o, "value");
    if (json_is_string(value) && strcasecmp(json_string_value(value), "nan") == 0) {
        c->st->stale++; /* a staleness marker (or another NaN): no value to take, no error */
        return;
    }
    if (!json_value_number(value, &d)) { /* prometheus-kafka-adapter */
        nops_json_reject(c, NOPS_REJECT_VALUE, "\"value\" is not a finite number");
        return;
    }
    if (!json_tags(json_object_get(o, "labels"), tags, &n_tags)) {
        nops_json_reject(c, NOPS_REJECT_SYNTAX, "\"labels\" is not an object of strings");
        return;
    }
    if (!json_names_ok(c, json_string_value(name), NULL, tags, n_tags))
        return;
    emit(c, json_string_value(name), "", tags, n_tags, d, ts);
}

static void json_document(json_ctx *c, json_t *doc)
{
    json_t *metrics = json_object_get(doc, "metrics");
    if (json_is_array(metrics)) {
        size_t i;
        json_t *m;
        json_array_foreach(metrics, i, m)
        {
            if (c->stop)
                break;
            json_object_points(c, m);
        }
        return;
    }
    json_object_points(c, doc);
}

const char *nops_json_doc_jansson(json_ctx *c, const char *p, const char *end)
{
    json_error_t jerr;
    /* JSON_DISABLE_EOF_CHECK: stop after one value, so objects may follow line by line */
    json_t *doc = json_loadb(p, (size_t)(end - p), JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
                             &jerr);
    if (!doc) {
        c->objects++;
        if (json_error_code(&jerr) == json_error_invalid_utf8)
            nops_json_reject(c, NOPS_REJECT_UTF8, "JSON text is not valid UTF-8");
        else
            nops_json_reject(c, NOPS_REJECT_SYNTAX, "malformed JSON");
        const char *nl = memchr(p, '\n', (size_t)(end - p)); /* resync at the next line */
        return nl ? nl + 1 : end;
    }
    json_document(c, doc);
    json_decref(doc);
    return p + jerr.position;
}
