/*
 * payload.c — the bytes a notification carries (docs/notifications.md is their reference):
 * Alertmanager API v2 alerts for incidents and approvals, and the webhook bodies in the json and
 * slack formats. Text that came from the outside (labels, summaries) is made valid UTF-8 before
 * jansson sees it, and label names are made valid Prometheus label names.
 */
#include "notify/notify_int.h"

#include <string.h>

char *nt_dump(const json_t *j, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *out = nops_malloc(n + 1);
    if (out) {
        memcpy(out, s, n + 1);
        if (len) *len = n;
    }
    free(s);
    return out;
}

/* A JSON string of s[0..n) made valid UTF-8 (NULL only when out of memory). */
static json_t *jstrn(const char *s, size_t n)
{
    char stack[1024];
    char *buf = 3 * n + 1 <= sizeof stack ? stack : nops_malloc(3 * n + 1);
    if (!buf) return NULL;
    size_t w = nops_utf8_sanitize(s, n, buf, 3 * n + 1, NULL);
    json_t *j = json_stringn(buf, w);
    if (buf != stack) nops_free(buf);
    return j;
}

static json_t *jstr(const char *s)
{
    return jstrn(s, strnlen(s, 4096));
}

/* obj[key] = string; false when out of memory. */
static bool set_str(json_t *obj, const char *key, const char *s)
{
    json_t *v = jstr(s);
    return v && json_object_set_new(obj, key, v) == 0;
}

void nt_label_name(const char *s, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    if (cap == 0) return;
    if (n && s[0] >= '0' && s[0] <= '9' && w + 1 < cap) out[w++] = '_';
    for (size_t i = 0; i < n && w + 1 < cap; i++) {
        char c = s[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        out[w++] = ok ? c : '_';
    }
    if (w == 0 && cap > 1) out[w++] = '_';
    out[w] = '\0';
}

/* Names our own labels use: an incident or context label of the same name is exported under
 * exported_<name>, as Prometheus does on a clash. */
static bool reserved(const char *name)
{
    static const char *const R[] = {"alertname", "incident_id", "severity", "orchestration_id",
                                    "playbook_id"};
    for (size_t i = 0; i < sizeof R / sizeof R[0]; i++)
        if (strcmp(R[i], name) == 0) return true;
    return false;
}

/* labels[sanitised key] = value (empty values are skipped: Alertmanager treats them as absent).
 * A sanitised name that is already taken keeps its first value. */
static bool add_label(json_t *labels, const char *key, size_t key_len, const char *value,
                      size_t value_len)
{
    char name[160], exp[180];
    if (value_len == 0) return true;
    nt_label_name(key, key_len, name, sizeof name);
    const char *use = name;
    if (reserved(name)) {
        snprintf(exp, sizeof exp, "exported_%s", name);
        use = exp;
    }
    if (json_object_get(labels, use)) return true;
    json_t *v = jstrn(value, value_len);
    return v && json_object_set_new(labels, use, v) == 0;
}

static void link(const nops_notify_params *p, const char *what, const char *id, char *out,
                 size_t cap)
{
    out[0] = '\0';
    if (p->external_url[0]) {
        size_t bl = strlen(p->external_url);
        while (bl && p->external_url[bl - 1] == '/')
            bl--;
        snprintf(out, cap, "%.*s/%s/%s", (int)bl, p->external_url, what, id);
    }
}

json_t *nt_am_incident(const nops_notify_params *p, const nops_incident *inc, const char *starts_at)
{
    json_t *a = json_object(), *labels = json_object(), *ann = json_object();
    char url[700], opened[40];
    bool ok = a && labels && ann && json_object_set(a, "labels", labels) == 0 &&
              json_object_set(a, "annotations", ann) == 0 &&
              set_str(labels, "alertname", "NeuralOpsIncident") &&
              set_str(labels, "incident_id", inc->id) &&
              set_str(labels, "severity", nops_severity_name(inc->severity));
    for (uint32_t i = 0; ok && i < inc->common.n && i < NOPS_LABELS_MAX; i++) {
        nops_label l = nops_labels_at(&inc->common, i);
        ok = add_label(labels, l.key, l.key_len, l.value, l.value_len);
    }
    nops_format_ts(inc->opened_ns, opened, sizeof opened);
    ok = ok && set_str(ann, "summary", inc->summary) &&
         set_str(ann, "root_cause_hint", inc->root_cause_hint) &&
         set_str(ann, "opened_at", opened) && set_str(a, "startsAt", starts_at);
    link(p, "incidents", inc->id, url, sizeof url);
    if (ok && url[0]) ok = set_str(a, "generatorURL", url);
    json_decref(labels);
    json_decref(ann);
    if (!ok) {
        json_decref(a);
        return NULL;
    }
    return a;
}

const char *nt_record_id(const json_t *rec)
{
    const char *id = json_string_value(json_object_get(rec, "id"));
    if (!id || !id[0] || strlen(id) > 64) return NULL;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return NULL;
    return id;
}

/* The pieces of an approval record the formats use; absent ones are "". */
typedef struct appr {
    const char *id, *state, *playbook, *incident, *action, *escalation;
    const json_t *labels; /* context.labels (object) or NULL */
} appr;

static const char *sval(const json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

static appr appr_of(const json_t *rec)
{
    const json_t *ctx = json_object_get(rec, "context"), *pol = json_object_get(rec, "policy");
    appr a = {.id = nt_record_id(rec),
              .state = sval(rec, "state"),
              .playbook = sval(rec, "playbook_id"),
              .incident = sval(ctx, "incident_id"),
              .action = sval(pol, "action"),
              .escalation = sval(pol, "escalation")};
    if (!a.id) a.id = "";
    if (!a.incident[0]) a.incident = sval(json_object_get(rec, "incident"), "id");
    if (!a.incident[0]) a.incident = sval(rec, "incident_id");
    a.labels = json_object_get(ctx, "labels");
    if (!json_is_object(a.labels)) a.labels = NULL;
    return a;
}

static void appr_summary(const appr *a, const char *level, char *out, size_t cap)
{
    snprintf(out, cap,
             "Playbook %.64s%s%.64s waits for an approval (orchestration %.64s, "
             "policy %.32s, level %.16s)",
             a->playbook[0] ? a->playbook : "?", a->incident[0] ? " for incident " : "",
             a->incident, a->id, a->action[0] ? a->action : "require_approval", level);
}

json_t *nt_am_approval(const nops_notify_params *p, const json_t *rec, const char *level,
                       const char *starts_at)
{
    appr ap = appr_of(rec);
    json_t *a = json_object(), *labels = json_object(), *ann = json_object();
    char url[700], summary[512];
    bool ok = a && labels && ann && json_object_set(a, "labels", labels) == 0 &&
              json_object_set(a, "annotations", ann) == 0 &&
              set_str(labels, "alertname", "NeuralOpsApprovalPending") &&
              set_str(labels, "orchestration_id", ap.id) && set_str(labels, "severity", level);
    if (ok && ap.playbook[0]) ok = set_str(labels, "playbook_id", ap.playbook);
    if (ok && ap.incident[0]) ok = set_str(labels, "incident_id", ap.incident);
    const char *k;
    json_t *v;
    if (ap.labels) json_object_foreach((json_t *)ap.labels, k, v)
        {
            const char *s = json_string_value(v);
            if (ok && s) ok = add_label(labels, k, strlen(k), s, strlen(s));
        }
    appr_summary(&ap, level, summary, sizeof summary);
    ok = ok && set_str(ann, "summary", summary) && set_str(ann, "state", ap.state) &&
         set_str(a, "startsAt", starts_at);
    link(p, "orchestrations", ap.id, url, sizeof url);
    if (ok && url[0]) ok = set_str(a, "generatorURL", url);
    json_decref(labels);
    json_decref(ann);
    if (!ok) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* ---- webhooks ------------------------------------------------------------------------------ */

/* Slack mrkdwn: &, < and > escaped. */
static void slack_escape(const char *s, char *out, size_t cap)
{
    size_t w = 0;
    for (; *s && w + 6 < cap; s++) {
        const char *r = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (r) {
            memcpy(out + w, r, strlen(r));
            w += strlen(r);
        } else {
            out[w++] = *s;
        }
    }
    out[w] = '\0';
}

/* {"text": title, "blocks": [section with title, lines and the link]} */
static json_t *slack(const char *title, const char *line1, const char *line2, const char *url)
{
    char t[600], l1[800], l2[800], md[2600];
    slack_escape(title, t, sizeof t);
    slack_escape(line1, l1, sizeof l1);
    slack_escape(line2, l2, sizeof l2);
    int w = snprintf(md, sizeof md, "*%s*", t);
    if (l1[0]) w += snprintf(md + w, sizeof md - (size_t)w, "\n%s", l1);
    if (l2[0] && w < (int)sizeof md) w += snprintf(md + w, sizeof md - (size_t)w, "\n%s", l2);
    if (url[0] && w < (int)sizeof md)
        snprintf(md + w, sizeof md - (size_t)w, "\n<%s|Open in NeuralOps>", url);
    json_t *text = jstr(title), *mtext = jstr(md);
    if (!text || !mtext) {
        json_decref(text);
        json_decref(mtext);
        return NULL;
    }
    return json_pack("{s:o, s:[{s:s, s:{s:s, s:o}}]}", "text", text, "blocks", "type", "section",
                     "text", "type", "mrkdwn", "text", mtext);
}

static void upper(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
    out[i] = '\0';
}

/* The json format's envelope {version, event, id, created_at, severity} plus `what`: obj. */
static json_t *envelope(const char *event, const char *msg_id, const char *severity,
                        const char *what, json_t *obj)
{
    char now[40];
    nops_format_ts(nops_wall_ns(), now, sizeof now);
    if (!obj) return NULL;
    return json_pack("{s:i, s:s, s:s, s:s, s:s, s:o}", "version", 1, "event", event, "id", msg_id,
                     "created_at", now, "severity", severity, what, obj);
}

static char *finish(json_t *j, size_t *len)
{
    char *s = j ? nt_dump(j, len) : NULL;
    json_decref(j);
    return s;
}

char *nt_hook_incident(const nops_notify_params *p, const nops_incident *inc, const char *event,
                       const char *msg_id, size_t *len)
{
    char url[700], opened[40], updated[40];
    const char *sev = nops_severity_name(inc->severity);
    link(p, "incidents", inc->id, url, sizeof url);
    const bool resolved = inc->status == NOPS_INCIDENT_RESOLVED;
    if (strcmp(p->webhook_format, "slack") == 0) {
        char title[512], up[16];
        upper(sev, up, sizeof up);
        snprintf(title, sizeof title, "[%s] Incident %s %s: %.380s", up, inc->id,
                 resolved ? "resolved" : "firing", inc->summary);
        return finish(slack(title, inc->root_cause_hint, inc->labels, url), len);
    }
    json_t *labels = json_object(), *o = json_object();
    bool ok = labels && o;
    for (uint32_t i = 0; ok && i < inc->common.n && i < NOPS_LABELS_MAX; i++) {
        nops_label l = nops_labels_at(&inc->common, i);
        char key[256];
        size_t kw = nops_utf8_sanitize(l.key, l.key_len, key, sizeof key, NULL);
        json_t *v = jstrn(l.value, l.value_len);
        ok = v && json_object_setn_new(labels, key, kw, v) == 0;
    }
    nops_format_ts(inc->opened_ns, opened, sizeof opened);
    nops_format_ts(inc->updated_ns, updated, sizeof updated);
    ok = ok && set_str(o, "id", inc->id) && set_str(o, "status", resolved ? "resolved" : "open") &&
         set_str(o, "severity", sev) && set_str(o, "opened_at", opened) &&
         set_str(o, "updated_at", updated) && set_str(o, "summary", inc->summary) &&
         set_str(o, "root_cause_hint", inc->root_cause_hint) &&
         json_object_set(o, "labels", labels) == 0 &&
         json_object_set_new(o, "n_signals", json_integer(inc->n_signals)) == 0 &&
         json_object_set_new(o, "n_series", json_integer(inc->n_series)) == 0 &&
         json_object_set_new(o, "n_hosts", json_integer(inc->n_hosts)) == 0 &&
         (!url[0] || set_str(o, "url", url));
    json_decref(labels);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return finish(envelope(event, msg_id, sev, "incident", o), len);
}

char *nt_hook_approval(const nops_notify_params *p, const json_t *rec, const char *event,
                       const char *level, const char *msg_id, size_t *len)
{
    appr ap = appr_of(rec);
    char url[700], summary[512];
    link(p, "orchestrations", ap.id, url, sizeof url);
    appr_summary(&ap, level, summary, sizeof summary);
    if (strcmp(p->webhook_format, "slack") == 0) {
        char title[600], up[16];
        upper(level, up, sizeof up);
        const char *what = strcmp(event, "approval.done") == 0        ? "no longer waits"
                           : strcmp(event, "approval.escalated") == 0 ? "escalated"
                                                                      : "waits for an approval";
        snprintf(title, sizeof title, "[%s] Orchestration %s %s", up, ap.id, what);
        return finish(slack(title, summary, ap.state, url), len);
    }
    json_t *o = json_object();
    bool ok = o && set_str(o, "id", ap.id) && set_str(o, "state", ap.state) &&
              set_str(o, "playbook_id", ap.playbook) && set_str(o, "incident_id", ap.incident) &&
              set_str(o, "action", ap.action) && set_str(o, "escalation", ap.escalation) &&
              set_str(o, "level", level) && set_str(o, "summary", summary) &&
              (!url[0] || set_str(o, "url", url));
    if (ok && ap.labels) ok = json_object_set_new(o, "labels", json_deep_copy(ap.labels)) == 0;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return finish(envelope(event, msg_id, level, "approval", o), len);
}
