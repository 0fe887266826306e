/*
 * notifier.c — the notifier's life: start (secret, spool re-queued, active set loaded), the
 * bounded queue, the one delivery thread, stop.
 *
 * The queue is one FIFO per destination. The thread tries the head of each destination when it
 * is due; a failure keeps it at the head with a later due time (backoff doubling from backoff_ms
 * to backoff_max_ms), so a destination's messages arrive in the order they were made — an
 * Alertmanager that was told "resolved" is never told "firing" afterwards by a late retry — and
 * a destination that is down holds back only its own messages. Every message was spooled before
 * it was queued; its file goes when it is delivered or given up. Network calls are made with
 * `mu` released; the thread is the only one that takes a message off a queue, so the head it
 * works on stays put while callers append behind it.
 */
#include "notify/notify_int.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MOD "notify"

void nt_new_id(nops_notifier *n, char *out)
{
    unsigned char r[4] = {0};
    char hex[9];
    if (RAND_bytes(r, sizeof r) != 1) /* the sequence keeps ids apart anyway */
        memset(r, 0, sizeof r);
    nops_hex(r, sizeof r, hex);
    uint64_t s = atomic_fetch_add(&n->seq, 1);
    snprintf(out, NT_ID_MAX, "%020lld-%06llu-%s", (long long)nops_wall_ns(),
             (unsigned long long)(s % 1000000), hex);
}

static void spool_path(const nops_notifier *n, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.msg", n->dir, id);
}

/* Append m to its target's queue (mu held). */
static void push(nops_notifier *n, nt_msg *m)
{
    nt_target *t = &n->t[m->target];
    m->next = NULL;
    if (t->tail)
        t->tail->next = m;
    else
        t->head = m;
    t->tail = m;
    n->queued_n++;
    atomic_fetch_add(&n->queued, 1);
    pthread_cond_signal(&n->cv);
}

/* The spooled form of a message: {"v","id","kind","url","event","body"} (nops_malloc'd). */
static char *envelope(const nops_notifier *n, const nt_msg *m, size_t *len)
{
    const nt_target *t = &n->t[m->target];
    json_t *body = json_stringn(m->body, m->body_len);
    json_t *j = body ? json_pack("{s:i, s:s, s:s, s:s, s:s, s:o}", "v", 1, "id", m->id, "kind",
                                 t->kind == NT_ALERTMANAGER ? "alertmanager" : "webhook", "url",
                                 t->url, "event", m->event, "body", body)
                     : NULL;
    char *s = j ? nt_dump(j, len) : NULL;
    json_decref(j);
    return s;
}

nops_err nt_submit(nops_notifier *n, int ti, const char *event, const char *id, char *body,
                   size_t len)
{
    pthread_mutex_lock(&n->mu);
    if (n->queued_n + n->reserved >= (size_t)n->p.queue_size) {
        atomic_fetch_add(&n->dropped, 1);
        uint64_t missed;
        if (nops_ratelimit_due(&n->rl_drop, (int64_t)nops_now_ns(), &missed))
            NOPS_WARN(MOD,
                      "notification queue full (%lld messages): %s refused (%llu more "
                      "refused since the last line); the destination is down or slow",
                      (long long)n->p.queue_size, event, (unsigned long long)missed);
        pthread_mutex_unlock(&n->mu);
        nops_free(body);
        return NOPS_FULL;
    }
    n->reserved++;
    pthread_mutex_unlock(&n->mu);

    nops_err e = NOPS_NOMEM;
    nt_msg *m = nops_calloc(1, sizeof *m);
    size_t el = 0;
    char *env = NULL, name[NT_ID_MAX + 8];
    if (m) {
        if (id)
            snprintf(m->id, sizeof m->id, "%s", id);
        else
            nt_new_id(n, m->id);
        m->target = ti;
        snprintf(m->event, sizeof m->event, "%s", event);
        m->body = body;
        m->body_len = len;
        body = NULL;
        env = envelope(n, m, &el);
    }
    if (env) {
        snprintf(name, sizeof name, "%s.msg", m->id);
        e = nt_spool_write(n->key, n->dir, name, env, el) == 0 ? NOPS_OK : NOPS_IO;
        if (e != NOPS_OK)
            NOPS_ERROR(MOD, "cannot spool a notification in %s: %s; %s not sent", n->dir,
                       strerror(errno), event);
    }
    nops_free(env);
    nops_free(body);
    pthread_mutex_lock(&n->mu);
    n->reserved--;
    if (e == NOPS_OK) {
        atomic_fetch_add(&n->spooled, 1);
        m->due_ns = nops_now_ns();
        push(n, m);
    } else {
        atomic_fetch_add(&n->failed, 1);
        nt_msg_free(m);
    }
    pthread_mutex_unlock(&n->mu);
    return e;
}

/* ---- start: what an earlier process left in the spool -------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The target a spooled envelope names, or -1 (no longer configured). */
static int target_of(const nops_notifier *n, const json_t *env)
{
    const char *kind = json_string_value(json_object_get(env, "kind"));
    const char *url = json_string_value(json_object_get(env, "url"));
    for (int i = 0; kind && url && i < n->nt; i++)
        if (strcmp(url, n->t[i].url) == 0 &&
            strcmp(kind, n->t[i].kind == NT_ALERTMANAGER ? "alertmanager" : "webhook") == 0)
            return i;
    return -1;
}

/* Re-queue one spooled file; false when the queue is full (the file stays). */
static bool requeue(nops_notifier *n, const char *name)
{
    char why[200];
    size_t len;
    bool tampered;
    char *data = nt_spool_read(n->key, n->dir, name, &len, &tampered, why, sizeof why);
    json_t *env = data ? json_loadb(data, len, 0, NULL) : NULL;
    nops_free(data);
    const char *id = json_string_value(json_object_get(env, "id"));
    const char *event = json_string_value(json_object_get(env, "event"));
    const char *body = json_string_value(json_object_get(env, "body"));
    char path[1100];
    if (!data && !tampered) { /* unreadable now: left for the next start */
        NOPS_ERROR(MOD, "spooled notification %s/%s: %s; left in place", n->dir, name, why);
        return true;
    }
    if (!env || !id || !event || !body || strlen(id) + 4 != strlen(name) ||
        strncmp(id, name, strlen(id)) != 0) {
        NOPS_ERROR(MOD, "spooled notification %s/%s refused, never sent, moved to rejected/: %s",
                   n->dir, name, data ? "not a notification envelope" : why);
        atomic_fetch_add(&n->rejected, 1);
        nt_spool_reject(n->dir, name);
        json_decref(env);
        return true;
    }
    int ti = target_of(n, env);
    snprintf(path, sizeof path, "%s/%s", n->dir, name);
    if (ti < 0) {
        NOPS_WARN(MOD,
                  "spooled notification %s (%s) is for a destination no longer "
                  "configured: given up",
                  id, event);
        atomic_fetch_add(&n->failed, 1);
        unlink(path);
        json_decref(env);
        return true;
    }
    nt_msg *m = nops_calloc(1, sizeof *m);
    size_t bl = json_string_length(json_object_get(env, "body"));
    char *b = m ? nops_malloc(bl + 1) : NULL;
    bool ok = b != NULL;
    pthread_mutex_lock(&n->mu);
    ok = ok && n->queued_n < (size_t)n->p.queue_size;
    if (ok) {
        snprintf(m->id, sizeof m->id, "%s", id);
        snprintf(m->event, sizeof m->event, "%s", event);
        memcpy(b, body, bl + 1);
        m->body = b;
        m->body_len = bl;
        m->target = ti;
        m->due_ns = nops_now_ns();
        push(n, m);
    }
    pthread_mutex_unlock(&n->mu);
    if (!ok) {
        nops_free(b);
        nops_free(m);
    }
    json_decref(env);
    return ok;
}

static void reload_spool(nops_notifier *n)
{
    DIR *d = opendir(n->dir);
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *s = de->d_name;
        size_t l = strlen(s);
        if (strstr(s, ".tmp.")) { /* a write that never completed: its call never returned OK */
            char p[1100];
            snprintf(p, sizeof p, "%s/%s", n->dir, s);
            unlink(p);
            continue;
        }
        if (l < 5 || strcmp(s + l - 4, ".msg") != 0) continue;
        if (nn == cap) {
            size_t nc = cap ? 2 * cap : 64;
            char **g = nops_realloc(names, nc * sizeof *names);
            if (!g) break;
            names = g;
            cap = nc;
        }
        if (!(names[nn] = nops_strdup(s))) break;
        nn++;
    }
    if (d) closedir(d);
    if (nn) qsort(names, nn, sizeof *names, cmp_names); /* ids start with the time: oldest first */
    size_t left = 0;
    for (size_t i = 0; i < nn; i++) {
        if (!left && !requeue(n, names[i])) left = nn - i;
        nops_free(names[i]);
    }
    nops_free(names);
    if (nn)
        NOPS_INFO(MOD, "%zu spooled notifications found in %s%s", nn, n->dir,
                  left ? "; the queue is full, the rest wait for the next start" : "");
}

/* ---- the delivery thread -------------------------------------------------------------------- */

static uint64_t backoff_ns(const nops_notifier *n, uint32_t attempts)
{
    int64_t ms = n->p.backoff_ms;
    for (uint32_t i = 1; i < attempts && ms < n->p.backoff_max_ms; i++)
        ms *= 2;
    if (ms > n->p.backoff_max_ms) ms = n->p.backoff_max_ms;
    return (uint64_t)ms * 1000000u;
}

static void target_name(const nt_target *t, char *out, size_t cap)
{
    if (t->kind == NT_ALERTMANAGER)
        snprintf(out, cap, "Alertmanager %.500s", t->url);
    else
        snprintf(out, cap, "webhook %d", t->number);
}

/* Take the head of target ti off its queue, remove its spool file, free it (mu held). */
static void pop(nops_notifier *n, int ti)
{
    nt_target *t = &n->t[ti];
    nt_msg *m = t->head;
    char path[1100];
    t->head = m->next;
    if (!t->head) t->tail = NULL;
    n->queued_n--;
    spool_path(n, m->id, path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT)
        NOPS_ERROR(MOD,
                   "cannot remove spooled notification %s: %s (it will be sent again "
                   "after a restart)",
                   path, strerror(errno));
    nt_msg_free(m);
}

/* Record the outcome of trying the head of ti (mu held). */
static void settle(nops_notifier *n, int ti, nt_outcome o, const char *why)
{
    nt_msg *m = n->t[ti].head;
    char tn[540];
    uint64_t missed;
    target_name(&n->t[ti], tn, sizeof tn);
    m->attempts++;
    if (o == NT_OK) {
        atomic_fetch_add(&n->delivered, 1);
        pop(n, ti);
    } else if (o == NT_RETRY && m->attempts <= (uint32_t)n->p.max_retries) {
        atomic_fetch_add(&n->retried, 1);
        uint64_t wait = backoff_ns(n, m->attempts);
        m->due_ns = nops_now_ns() + wait;
        if (nops_ratelimit_due(&n->rl_retry, (int64_t)nops_now_ns(), &missed))
            NOPS_WARN(MOD,
                      "%s: %s failed (%s), attempt %u, again in %llu ms (%llu other "
                      "failed attempts since the last line)",
                      tn, m->event, why, m->attempts, (unsigned long long)(wait / 1000000),
                      (unsigned long long)missed);
    } else {
        atomic_fetch_add(&n->failed, 1);
        if (nops_ratelimit_due(&n->rl_fail, (int64_t)nops_now_ns(), &missed))
            NOPS_ERROR(MOD,
                       "%s: %s %s given up after %u attempts (%s); %llu more given up "
                       "since the last line",
                       tn, m->event, m->id, m->attempts, why, (unsigned long long)missed);
        pop(n, ti);
    }
}

/* The active alerts as one JSON array text (mu held); NULL when none or out of memory. */
static char *active_batch(nops_notifier *n, size_t *len, size_t *count)
{
    size_t total = 2;
    for (size_t i = 0; i < n->n_act; i++)
        total += strlen(n->act[i].alert) + 1;
    if (!n->n_act) return NULL;
    char *b = nops_malloc(total + 1);
    size_t w = 0;
    if (!b) return NULL;
    b[w++] = '[';
    for (size_t i = 0; i < n->n_act; i++) {
        if (i) b[w++] = ',';
        size_t l = strlen(n->act[i].alert);
        memcpy(b + w, n->act[i].alert, l);
        w += l;
    }
    b[w++] = ']';
    b[w] = '\0';
    *len = w;
    *count = n->n_act;
    return b;
}

/* The first due head (round robin from *rr), or -1; *wake gets the earliest due time. */
static int next_due(nops_notifier *n, uint64_t now, int *rr, uint64_t *wake)
{
    for (int k = 0; k < n->nt; k++) {
        int i = (*rr + k) % n->nt;
        nt_msg *m = n->t[i].head;
        if (!m) continue;
        if (m->due_ns <= now) {
            *rr = (i + 1) % n->nt;
            return i;
        }
        if (m->due_ns < *wake) *wake = m->due_ns;
    }
    return -1;
}

static void *worker(void *arg)
{
    nops_notifier *n = arg;
    CURL *h = curl_easy_init();
    int rr = 0;
    if (!h)
        NOPS_ERROR(MOD, "cannot start an HTTP client: notifications stay in %s until a restart",
                   n->dir);
    char why[300];
    pthread_mutex_lock(&n->mu);
    for (;;) {
        uint64_t now = nops_now_ns(), wake = now + 3600ull * 1000000000ull;
        int ti = h ? next_due(n, now, &rr, &wake) : -1;
        if (n->stop && (ti < 0 || now >= n->stop_deadline)) break;
        long tmo = (long)n->p.timeout_ms;
        if (n->stop && (n->stop_deadline - now) / 1000000 < (uint64_t)tmo)
            tmo = (long)((n->stop_deadline - now) / 1000000) + 1;
        if (ti >= 0) {
            nt_msg *m = n->t[ti].head; /* stays the head: only this thread pops */
            pthread_mutex_unlock(&n->mu);
            nt_outcome o = nt_post(h, n->t[ti].kind, n->t[ti].url, m->body, m->body_len, m->event,
                                   m->id, n->secret, n->secret_len, tmo, why, sizeof why);
            pthread_mutex_lock(&n->mu);
            settle(n, ti, o, why);
            continue;
        }
        if (h && !n->stop && n->am >= 0 && now >= n->next_resend_ns) {
            n->next_resend_ns = now + (uint64_t)n->p.resend_s * 1000000000ull;
            size_t len = 0, count = 0;
            /* while messages wait, they carry the state; re-posting would fail the same way */
            char *batch = n->t[n->am].head ? NULL : active_batch(n, &len, &count);
            if (batch) {
                pthread_mutex_unlock(&n->mu);
                nt_outcome o = nt_post(h, NT_ALERTMANAGER, n->t[n->am].url, batch, len, "resend",
                                       "", NULL, 0, tmo, why, sizeof why);
                nops_free(batch);
                pthread_mutex_lock(&n->mu);
                uint64_t missed;
                if (o == NT_OK) {
                    atomic_fetch_add(&n->resent, count);
                } else {
                    atomic_fetch_add(&n->resend_failed, 1);
                    if (nops_ratelimit_due(&n->rl_retry, (int64_t)nops_now_ns(), &missed))
                        NOPS_WARN(MOD,
                                  "re-posting %zu firing alerts to Alertmanager failed "
                                  "(%s); again in %llds",
                                  count, why, (long long)n->p.resend_s);
                }
            }
            continue;
        }
        if (n->am >= 0 && n->next_resend_ns < wake && !n->stop) wake = n->next_resend_ns;
        if (n->stop && n->stop_deadline < wake) wake = n->stop_deadline;
        struct timespec ts = {.tv_sec = (time_t)(wake / 1000000000ull),
                              .tv_nsec = (long)(wake % 1000000000ull)};
        pthread_cond_timedwait(&n->cv, &n->mu, &ts);
    }
    pthread_mutex_unlock(&n->mu);
    curl_easy_cleanup(h);
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

/* Read the webhook secret (trailing whitespace dropped); false with a sentence. */
static bool read_secret(nops_notifier *n, char *errstr, size_t errstr_size)
{
    const char *path = n->p.webhook_secret_file;
    FILE *f = fopen(path, "rbe");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        nops_errf(errstr, errstr_size, "notify.webhook_secret_file %s cannot be read: %s", path,
                  strerror(errno));
        if (f) fclose(f);
        return false;
    }
    if (st.st_mode & 0007) {
        fclose(f);
        nops_errf(errstr, errstr_size,
                  "notify.webhook_secret_file %s is readable by others: "
                  "chmod o-rwx it",
                  path);
        return false;
    }
    size_t l = fread(n->secret, 1, sizeof n->secret, f);
    bool too_long = l == sizeof n->secret && fgetc(f) != EOF;
    fclose(f);
    while (l && (n->secret[l - 1] == '\n' || n->secret[l - 1] == '\r' || n->secret[l - 1] == ' ' ||
                 n->secret[l - 1] == '\t'))
        l--;
    if (!l || too_long) {
        nops_errf(errstr, errstr_size, "notify.webhook_secret_file %s is %s", path,
                  l ? "longer than 1024 bytes" : "empty");
        return false;
    }
    n->secret_len = l;
    return true;
}

static bool make_targets(nops_notifier *n, char *errstr, size_t errstr_size)
{
    char urls[NT_MAX_WEBHOOKS][512];
    n->am = -1;
    if (n->p.alertmanager_url[0]) {
        size_t bl = strlen(n->p.alertmanager_url);
        while (bl && n->p.alertmanager_url[bl - 1] == '/')
            bl--;
        n->t[0].kind = NT_ALERTMANAGER;
        snprintf(n->t[0].url, sizeof n->t[0].url, "%.*s/api/v2/alerts", (int)bl,
                 n->p.alertmanager_url);
        n->am = 0;
        n->nt = 1;
    }
    int nw = nt_split_urls(n->p.webhook_urls, urls, NT_MAX_WEBHOOKS, errstr, errstr_size);
    if (nw < 0) return false;
    for (int i = 0; i < nw; i++) {
        n->t[n->nt].kind = NT_WEBHOOK;
        n->t[n->nt].number = i + 1;
        snprintf(n->t[n->nt].url, sizeof n->t[n->nt].url, "%.511s", urls[i]);
        n->nt++;
    }
    return true;
}

nops_notifier *nops_notifier_new(const nops_notify_params *p, const nops_secret *key,
                                 const char *spool_dir, char *errstr, size_t errstr_size)
{
    nops_notifier *n = nops_calloc(1, sizeof *n);
    if (!n) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    n->p = *p;
    n->off = !p->alertmanager_url[0] && !p->webhook_urls[0];
    if (n->off) return n;
    nops_err e = nops_notify_cfg_section.finalize(&n->p, errstr, errstr_size);
    if (e == NOPS_OK && (p->timeout_ms < 1 || p->max_retries < 0 || p->resend_s < 1 ||
                         p->backoff_ms < 1 || p->queue_size < 1 || p->shutdown_ms < 0)) {
        /* a struct not filled from the table (nops_notify_params_default gives its values) */
        nops_errf(errstr, errstr_size,
                  "notify settings out of range: timeout_ms, resend_s, "
                  "backoff_ms and queue_size must be at least 1");
        e = NOPS_CONFIG;
    }
    if (e != NOPS_OK || !make_targets(n, errstr, errstr_size)) {
        nops_free(n);
        return NULL;
    }
    if (!key || !spool_dir || !spool_dir[0]) {
        nops_errf(errstr, errstr_size,
                  "notifications need the engine key and a spool "
                  "directory");
        nops_free(n);
        return NULL;
    }
    n->key = key;
    if (snprintf(n->dir, sizeof n->dir, "%s", spool_dir) >= (int)sizeof n->dir) {
        nops_errf(errstr, errstr_size, "the notification spool path is too long");
        nops_free(n);
        return NULL;
    }
    snprintf(n->active_dir, sizeof n->active_dir, "%s/active", n->dir);
    if (nops_dir_make(n->dir) != 0 || nops_dir_make(n->active_dir) != 0) {
        nops_errf(errstr, errstr_size, "cannot create the notification spool %s: %s", n->dir,
                  strerror(errno));
        nops_free(n);
        return NULL;
    }
    if (n->p.webhook_secret_file[0] && !read_secret(n, errstr, errstr_size)) {
        nops_free(n);
        return NULL;
    }
    if (n->nt > (n->am >= 0) && !n->secret_len)
        NOPS_WARN(MOD, "webhooks are sent unsigned: notify.webhook_secret_file is not set");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* nops_now_ns */
    pthread_mutex_init(&n->mu, NULL);
    pthread_mutex_init(&n->call_mu, NULL);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    reload_spool(n);
    if (n->am >= 0) nt_active_load(n);
    n->next_resend_ns = nops_now_ns() + (n->n_act ? 0 : (uint64_t)n->p.resend_s * 1000000000ull);
    if (pthread_create(&n->thr, NULL, worker, n) != 0) {
        nops_errf(errstr, errstr_size, "cannot start the notification thread");
        n->thr_started = false;
        nops_notifier_destroy(n);
        return NULL;
    }
    n->thr_started = true;
    return n;
}

nops_err nops_notifier_set_routes(nops_notifier *n, const char *alertmanager_severities,
                                  const char *webhook_severities, char *errstr,
                                  size_t errstr_size)
{
    nops_notify_params q = n->p; /* the routes are read under call_mu only (events.c) */
    if (strlen(alertmanager_severities) >= sizeof q.alertmanager_severities ||
        strlen(webhook_severities) >= sizeof q.webhook_severities) {
        nops_errf(errstr, errstr_size, "notify severities: list too long");
        return NOPS_CONFIG;
    }
    snprintf(q.alertmanager_severities, sizeof q.alertmanager_severities, "%s",
             alertmanager_severities);
    snprintf(q.webhook_severities, sizeof q.webhook_severities, "%s", webhook_severities);
    if (nops_notify_cfg_section.finalize(&q, errstr, errstr_size) != NOPS_OK)
        return NOPS_CONFIG;
    if (n->off) { /* no receiver, no thread, no lock: nothing reads them */
        n->p = q;
        return NOPS_OK;
    }
    pthread_mutex_lock(&n->call_mu);
    memcpy(n->p.alertmanager_severities, q.alertmanager_severities,
           sizeof n->p.alertmanager_severities);
    memcpy(n->p.webhook_severities, q.webhook_severities, sizeof n->p.webhook_severities);
    pthread_mutex_unlock(&n->call_mu);
    return NOPS_OK;
}

void nops_notifier_destroy(nops_notifier *n)
{
    if (!n) return;
    if (n->off) {
        nops_free(n);
        return;
    }
    pthread_mutex_lock(&n->mu);
    n->stop = true;
    n->stop_deadline = nops_now_ns() + (uint64_t)n->p.shutdown_ms * 1000000u;
    pthread_cond_signal(&n->cv);
    pthread_mutex_unlock(&n->mu);
    if (n->thr_started) pthread_join(n->thr, NULL);
    size_t left = 0;
    for (int i = 0; i < n->nt; i++)
        while (n->t[i].head) { /* its spool file stays: sent after the next start */
            nt_msg *m = n->t[i].head;
            n->t[i].head = m->next;
            nt_msg_free(m);
            left++;
        }
    if (left)
        NOPS_INFO(MOD, "%zu notifications not delivered yet stay in %s for the next start", left,
                  n->dir);
    nt_active_free(n);
    pthread_cond_destroy(&n->cv);
    pthread_mutex_destroy(&n->mu);
    pthread_mutex_destroy(&n->call_mu);
    curl_global_cleanup();
    nops_free(n);
}

void nops_notifier_get_stats(nops_notifier *n, nops_notify_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!n || n->off) return;
    pthread_mutex_lock(&n->mu);
    st->queued = atomic_load(&n->queued);
    st->delivered = atomic_load(&n->delivered);
    st->retried = atomic_load(&n->retried);
    st->failed = atomic_load(&n->failed);
    st->dropped = atomic_load(&n->dropped);
    st->spooled = atomic_load(&n->spooled);
    st->resent = atomic_load(&n->resent);
    st->resend_failed = atomic_load(&n->resend_failed);
    st->rejected = atomic_load(&n->rejected);
    st->pending = n->queued_n;
    st->active = n->n_act;
    pthread_mutex_unlock(&n->mu);
}
