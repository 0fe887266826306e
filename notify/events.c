/*
 * events.c — what nops_notify_incident and nops_notify_approval send, and the active set.
 *
 * Alertmanager identifies an alert by its label set. The active set remembers, per incident or
 * approval, the alert last fired (its labels and startsAt, the wall time it was first fired), so
 * that (1) the delivery thread can post every firing alert again each resend_s, (2) a firing
 * update whose labels changed (severity up, a common label gone) also resolves the alert with the
 * old labels in the same request, and (3) a resolution carries the same labels and startsAt as the
 * alert it ends. The set is persisted (active/<key>.json, MAC'ed like the spool) before the
 * message is queued, so a restart keeps re-posting what fires.
 */
#include "notify/notify_int.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define MOD "notify"

void nt_active_free(nops_notifier *n)
{
    for (size_t i = 0; i < n->n_act; i++) {
        nops_free(n->act[i].labels);
        nops_free(n->act[i].alert);
    }
    nops_free(n->act);
    n->act = NULL;
    n->n_act = n->cap_act = 0;
}

static nt_active *find(nops_notifier *n, const char *key)
{
    for (size_t i = 0; i < n->n_act; i++)
        if (strcmp(n->act[i].key, key) == 0) return &n->act[i];
    return NULL;
}

/* Set key's entry to alert (mu held); takes labels and alert. */
static nops_err put(nops_notifier *n, const char *key, char *labels, char *alert)
{
    nt_active *a = find(n, key);
    if (!a) {
        if (n->n_act == n->cap_act) {
            size_t nc = n->cap_act ? 2 * n->cap_act : 16;
            nt_active *g = nops_realloc(n->act, nc * sizeof *g);
            if (!g) {
                nops_free(labels);
                nops_free(alert);
                return NOPS_NOMEM;
            }
            n->act = g;
            n->cap_act = nc;
        }
        a = &n->act[n->n_act++];
        snprintf(a->key, sizeof a->key, "%s", key);
    } else {
        nops_free(a->labels);
        nops_free(a->alert);
    }
    a->labels = labels;
    a->alert = alert;
    return NOPS_OK;
}

static void drop(nops_notifier *n, const char *key)
{
    nt_active *a = find(n, key);
    if (!a) return;
    nops_free(a->labels);
    nops_free(a->alert);
    *a = n->act[--n->n_act];
}

/* The file of an active alert is {"key","alert"} under active/<key>.json. */
static int save_active(nops_notifier *n, const char *key, const char *alert)
{
    char name[NT_KEY_MAX + 8];
    snprintf(name, sizeof name, "%s.json", key);
    json_t *a = json_loads(alert, 0, NULL);
    json_t *j = a ? json_pack("{s:s, s:o}", "key", key, "alert", a) : NULL;
    size_t len;
    char *s = j ? nt_dump(j, &len) : NULL;
    json_decref(j);
    int rc = -1;
    if (s)
        rc = nt_spool_write(n->key, n->active_dir, name, s, len);
    else
        errno = ENOMEM;
    nops_free(s);
    return rc;
}

static void remove_active(nops_notifier *n, const char *key)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s.json", n->active_dir, key);
    if (unlink(path) != 0 && errno != ENOENT)
        NOPS_ERROR(MOD,
                   "cannot remove %s: %s (the resolved alert would be re-posted after a "
                   "restart)",
                   path, strerror(errno));
}

void nt_active_load(nops_notifier *n)
{
    DIR *d = opendir(n->active_dir);
    struct dirent *de;
    char why[200];
    while (d && (de = readdir(d))) {
        const char *s = de->d_name;
        size_t l = strlen(s), len;
        bool tampered;
        if (l < 6 || strcmp(s + l - 5, ".json") != 0 || strstr(s, ".tmp.")) continue;
        char *data = nt_spool_read(n->key, n->active_dir, s, &len, &tampered, why, sizeof why);
        json_t *j = data ? json_loadb(data, len, 0, NULL) : NULL;
        nops_free(data);
        const char *key = json_string_value(json_object_get(j, "key"));
        json_t *alert = json_object_get(j, "alert");
        if (!key || !json_is_object(alert) || strlen(key) + 5 != l ||
            strncmp(s, key, strlen(key)) != 0) {
            if (data || tampered) {
                NOPS_ERROR(MOD,
                           "active alert %s/%s refused, never re-posted, moved to "
                           "rejected/: %s",
                           n->active_dir, s, data ? "not an active alert" : why);
                atomic_fetch_add(&n->rejected, 1);
                nt_spool_reject(n->active_dir, s);
            }
            json_decref(j);
            continue;
        }
        char *labels = nt_dump(json_object_get(alert, "labels"), NULL);
        char *a = nt_dump(alert, NULL);
        pthread_mutex_lock(&n->mu);
        if (labels && a)
            put(n, key, labels, a);
        else {
            nops_free(labels);
            nops_free(a);
        }
        pthread_mutex_unlock(&n->mu);
        json_decref(j);
    }
    if (d) closedir(d);
}

/* The stored alert with endsAt = now (a new JSON object; NULL when out of memory). */
static json_t *ended(const char *alert_text, const char *now)
{
    json_t *a = json_loads(alert_text, 0, NULL);
    if (a) json_object_set_new(a, "endsAt", json_string(now));
    return a;
}

/*
 * The Alertmanager side of one event: `fresh` is the firing alert (NULL = resolve), its startsAt
 * set to now by the caller and replaced here by the stored one when the alert already fires, so
 * it keeps its start. Takes fresh. Called with call_mu held.
 */
static nops_err am_event(nops_notifier *n, const char *key, json_t *fresh, const char *event)
{
    char now[40];
    nops_format_ts(nops_wall_ns(), now, sizeof now);
    pthread_mutex_lock(&n->mu);
    nt_active *a = find(n, key);
    char *old_alert = a ? nops_strdup(a->alert) : NULL;
    char *old_labels = a ? nops_strdup(a->labels) : NULL;
    pthread_mutex_unlock(&n->mu);
    nops_err e = NOPS_NOMEM;
    json_t *batch = json_array();
    char *labels = NULL, *alert = NULL;
    if (!batch || (a && (!old_alert || !old_labels))) goto out;
    if (fresh) {
        if (old_alert) { /* keep the first startsAt */
            json_t *o = json_loads(old_alert, 0, NULL);
            json_t *st = json_object_get(o, "startsAt");
            if (st) json_object_set(fresh, "startsAt", st);
            json_decref(o);
        }
        labels = nt_dump(json_object_get(fresh, "labels"), NULL);
        alert = nt_dump(fresh, NULL);
        if (!labels || !alert) goto out;
        if (old_labels && strcmp(old_labels, labels) != 0) /* a new identity: end the old one */
            json_array_append_new(batch, ended(old_alert, now));
        json_array_append(batch, fresh);
        if (save_active(n, key, alert) != 0) {
            NOPS_ERROR(MOD, "cannot keep active alert %s in %s: %s", key, n->active_dir,
                       strerror(errno));
            e = NOPS_IO;
            goto out;
        }
        pthread_mutex_lock(&n->mu);
        e = put(n, key, labels, alert);
        pthread_mutex_unlock(&n->mu);
        labels = alert = NULL;
        if (e != NOPS_OK) goto out;
    } else {
        e = NOPS_OK;
        if (!old_alert) /* never fired (not routed, or before this spool): nothing to end */
            goto out;
        json_array_append_new(batch, ended(old_alert, now));
        /* Stop re-posting first: a crash before the resolution is spooled then lets the alert
         * expire at Alertmanager's resolve_timeout, where the other order could leave a
         * restart re-posting a resolved alert for ever. */
        remove_active(n, key);
        pthread_mutex_lock(&n->mu);
        drop(n, key);
        pthread_mutex_unlock(&n->mu);
    }
    size_t len;
    char *body = nt_dump(batch, &len);
    e = body ? nt_submit(n, n->am, event, NULL, body, len) : NOPS_NOMEM;
out:
    json_decref(fresh);
    json_decref(batch);
    nops_free(labels);
    nops_free(alert);
    nops_free(old_alert);
    nops_free(old_labels);
    return e;
}

/* The first failure of two results (NOPS_OK only when both are). */
static nops_err worse(nops_err a, nops_err b)
{
    return a != NOPS_OK ? a : b;
}

static bool id_ok(const char *id)
{
    if (!id[0]) return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

nops_err nops_notify_incident(nops_notifier *n, const nops_incident *inc)
{
    if (!n || !inc || strnlen(inc->id, NOPS_ID_LEN) == NOPS_ID_LEN || !id_ok(inc->id))
        return NOPS_INVAL;
    if (n->off) return NOPS_OK;
    const bool resolved = inc->status == NOPS_INCIDENT_RESOLVED;
    const char *sev = nops_severity_name(inc->severity);
    const char *event = resolved ? "incident.resolved" : "incident.firing";
    char key[NT_KEY_MAX], now[40], id[NT_ID_MAX];
    snprintf(key, sizeof key, "incident-%s", inc->id);
    nops_format_ts(nops_wall_ns(), now, sizeof now);
    nops_err e = NOPS_OK;
    pthread_mutex_lock(&n->call_mu);
    if (n->am >= 0) {
        pthread_mutex_lock(&n->mu);
        bool firing = find(n, key) != NULL;
        pthread_mutex_unlock(&n->mu);
        if (resolved) {
            e = am_event(n, key, NULL, event);
        } else if (firing || nt_route(n->p.alertmanager_severities, sev)) {
            json_t *a = nt_am_incident(&n->p, inc, now);
            e = a ? am_event(n, key, a, event) : NOPS_NOMEM;
        }
    }
    if (nt_route(n->p.webhook_severities, sev))
        for (int i = 0; i < n->nt; i++) {
            if (n->t[i].kind != NT_WEBHOOK) continue;
            size_t len;
            nt_new_id(n, id); /* the body's "id" is X-NeuralOps-Delivery */
            char *body = nt_hook_incident(&n->p, inc, event, id, &len);
            e = worse(e, body ? nt_submit(n, i, event, id, body, len) : NOPS_NOMEM);
        }
    pthread_mutex_unlock(&n->call_mu);
    return e;
}

nops_err nops_notify_approval(nops_notifier *n, const json_t *record, const char *event,
                              const char *level)
{
    static const char *const LV[] = {"info", "warning", "critical", "emergency"};
    if (!n || !json_is_object(record) || !event) return NOPS_INVAL;
    const bool done = strcmp(event, "done") == 0;
    if (!done && strcmp(event, "pending") != 0 && strcmp(event, "escalated") != 0)
        return NOPS_INVAL;
    if (!level || !level[0] || strcmp(level, "none") == 0) level = "warning";
    bool known = false;
    for (size_t i = 0; i < sizeof LV / sizeof LV[0]; i++)
        known = known || strcmp(LV[i], level) == 0;
    const char *rid = nt_record_id(record);
    if (!known || !rid) return NOPS_INVAL;
    if (n->off) return NOPS_OK;
    char key[NT_KEY_MAX], now[40], ev[40], id[NT_ID_MAX];
    snprintf(key, sizeof key, "approval-%s", rid);
    snprintf(ev, sizeof ev, "approval.%s", event);
    nops_format_ts(nops_wall_ns(), now, sizeof now);
    nops_err e = NOPS_OK;
    pthread_mutex_lock(&n->call_mu);
    if (n->am >= 0) {
        pthread_mutex_lock(&n->mu);
        bool firing = find(n, key) != NULL;
        pthread_mutex_unlock(&n->mu);
        if (done) {
            e = am_event(n, key, NULL, ev);
        } else if (firing || nt_route(n->p.alertmanager_severities, level)) {
            json_t *a = nt_am_approval(&n->p, record, level, now);
            e = a ? am_event(n, key, a, ev) : NOPS_NOMEM;
        }
    }
    if (nt_route(n->p.webhook_severities, level))
        for (int i = 0; i < n->nt; i++) {
            if (n->t[i].kind != NT_WEBHOOK) continue;
            size_t len;
            nt_new_id(n, id);
            char *body = nt_hook_approval(&n->p, record, ev, level, id, &len);
            e = worse(e, body ? nt_submit(n, i, ev, id, body, len) : NOPS_NOMEM);
        }
    pthread_mutex_unlock(&n->call_mu);
    return e;
}
