/*
 * store.c — recent signals and incidents in memory, for GET /signals and GET /incidents.
 *
 * Signals sit in a ring of encoded JSON lines (newest overwrites oldest), each with a sequence
 * number, its time and its labels in a compact form "\x01k=v\x01k=v\x01" so that a filter pair
 * is one memmem. Incidents keep only their latest record, found by id through a small open-
 * addressing table; when over the bound the least recently updated one goes. A page is newest
 * first; its cursor is the sequence number below which the next page starts, so pages stay
 * stable while new records arrive.
 *
 * Live records come from the sink set as structures (sink_write_record: id, times, status and label
 * pairs read from the nops_signal / nops_incident, the JSON line kept as it was encoded), so
 * nothing is parsed on the live path. A line is parsed only where a line is all there is: the
 * JSONL tails read at start (nops_store_load_jsonl), a record the set kept after a refusal and
 * gives again as its line, and nops_store_add's callers.
 */
#include "api/api.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

typedef struct rec {
    uint64_t seq;     /* 0 = empty */
    int64_t t0, t1;   /* signal: ts, ts; incident: opened_at, updated_at */
    bool open;        /* incident status */
    char id[NOPS_ID_LEN + 8];
    char *labels;     /* "\x01k=v\x01...\x01" */
    char *json;       /* the record */
    size_t len;
} rec;

struct nops_store {
    pthread_mutex_t mu;
    uint64_t seq;            /* last sequence number given */
    rec *sig;                /* ring */
    size_t sig_cap, sig_head, sig_n;
    rec *inc;                /* dense array of incidents */
    size_t inc_cap, inc_n;
    uint32_t *inc_index;     /* open addressing: 1 + index into inc, 0 = empty */
    size_t index_cap;        /* power of two, >= 2 * inc_cap */
};

nops_store *nops_store_new(size_t max_signals, size_t max_incidents)
{
    nops_store *st = nops_calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->sig_cap = max_signals ? max_signals : 1;
    st->inc_cap = max_incidents ? max_incidents : 1;
    st->index_cap = 16;
    while (st->index_cap < 2 * st->inc_cap)
        st->index_cap *= 2;
    st->sig = nops_calloc(st->sig_cap, sizeof *st->sig);
    st->inc = nops_calloc(st->inc_cap, sizeof *st->inc);
    st->inc_index = nops_calloc(st->index_cap, sizeof *st->inc_index);
    if (!st->sig || !st->inc || !st->inc_index) {
        nops_store_destroy(st);
        return NULL;
    }
    pthread_mutex_init(&st->mu, NULL);
    return st;
}

static void rec_clear(rec *r)
{
    nops_free(r->labels);
    nops_free(r->json);
    memset(r, 0, sizeof *r);
}

void nops_store_destroy(nops_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; st->sig && i < st->sig_cap; i++)
        rec_clear(&st->sig[i]);
    for (size_t i = 0; st->inc && i < st->inc_n; i++)
        rec_clear(&st->inc[i]);
    if (st->sig && st->inc && st->inc_index)
        pthread_mutex_destroy(&st->mu);
    nops_free(st->sig);
    nops_free(st->inc);
    nops_free(st->inc_index);
    nops_free(st);
}

/* ---- parsing a record --------------------------------------------------------------------- */

static bool get_ts(json_t *o, const char *key, int64_t *ns)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && nops_ingest_parse_timestamp(s, strlen(s), ns, NULL) == NOPS_OK;
}

/* Append "k=v\x01" to the compact labels in b (started with "\x01"). */
static bool compact_put(nops_buf *b, const char *k, size_t kl, const char *v, size_t vl)
{
    if (nops_buf_reserve(b, kl + vl + 3) != NOPS_OK)
        return false;
    memcpy(b->b + b->len, k, kl);
    b->b[b->len + kl] = '=';
    memcpy(b->b + b->len + kl + 1, v, vl);
    b->len += kl + vl + 1;
    b->b[b->len++] = '\x01';
    b->b[b->len] = '\0';
    return true;
}

/* "\x01k=v\x01k=v\x01" from a JSON object of string labels (ls NULL) or from pairs. */
static char *compact_labels(json_t *labels, const nops_labels *ls)
{
    nops_buf b = {0};
    if (nops_buf_reserve(&b, 2) != NOPS_OK)
        return NULL;
    b.b[b.len++] = '\x01';
    b.b[b.len] = '\0';
    bool ok = true;
    if (ls) {
        for (uint32_t i = 0; ok && i < ls->n; i++) {
            nops_label l = nops_labels_at(ls, i);
            ok = compact_put(&b, l.key, l.key_len, l.value, l.value_len);
        }
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(labels, k, v) {
            const char *s = json_is_string(v) ? json_string_value(v) : "";
            if (!(ok = compact_put(&b, k, strlen(k), s, strlen(s))))
                break;
        }
    }
    if (!ok) {
        nops_free(b.b);
        return NULL;
    }
    return b.b;
}

/* r's labels and its copy of the line; NOPS_NOMEM (r cleared) without memory. */
static nops_err rec_fill(rec *r, json_t *labels, const nops_labels *ls, const char *json,
                         size_t len)
{
    r->labels = compact_labels(labels, ls);
    r->json = nops_strndup(json, len);
    r->len = len;
    if (r->labels && r->json)
        return NOPS_OK;
    rec_clear(r);
    return NOPS_NOMEM;
}

static nops_err parse_rec(int kind, const char *json, size_t len, rec *r)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return NOPS_PARSE;
    }
    const char *id = json_string_value(json_object_get(o, "id"));
    bool ok = id && strlen(id) < sizeof r->id;
    if (ok && kind == NOPS_SINK_SIGNAL) {
        ok = get_ts(o, "ts", &r->t0);
        r->t1 = r->t0;
    } else if (ok) {
        const char *status = json_string_value(json_object_get(o, "status"));
        ok = get_ts(o, "opened_at", &r->t0) && get_ts(o, "updated_at", &r->t1) && status;
        r->open = ok && strcmp(status, "open") == 0;
    }
    if (ok) {
        snprintf(r->id, sizeof r->id, "%s", id);
        if (rec_fill(r, json_object_get(o, "labels"), NULL, json, len) != NOPS_OK) {
            json_decref(o);
            return NOPS_NOMEM;
        }
    }
    json_decref(o);
    return ok ? NOPS_OK : NOPS_PARSE;
}

/* ---- adding --------------------------------------------------------------------------------- */

static size_t index_slot(const nops_store *st, const char *id, bool *found)
{
    size_t mask = st->index_cap - 1;
    size_t h = (size_t)XXH3_64bits(id, strlen(id)) & mask;
    for (;; h = (h + 1) & mask) {
        uint32_t e = st->inc_index[h];
        if (e == 0 || strcmp(st->inc[e - 1].id, id) == 0) {
            *found = e != 0;
            return h;
        }
    }
}

static void reindex(nops_store *st)
{
    memset(st->inc_index, 0, st->index_cap * sizeof *st->inc_index);
    for (size_t i = 0; i < st->inc_n; i++) {
        bool found;
        st->inc_index[index_slot(st, st->inc[i].id, &found)] = (uint32_t)(i + 1);
    }
}

static void add_incident(nops_store *st, rec *r)
{
    bool found;
    size_t h = index_slot(st, r->id, &found);
    if (found) {
        rec *old = &st->inc[st->inc_index[h] - 1];
        rec_clear(old);
        *old = *r;
        return;
    }
    if (st->inc_n == st->inc_cap) { /* full: the least recently updated goes */
        size_t oldest = 0;
        for (size_t i = 1; i < st->inc_n; i++)
            if (st->inc[i].seq < st->inc[oldest].seq)
                oldest = i;
        rec_clear(&st->inc[oldest]);
        st->inc[oldest] = st->inc[--st->inc_n];
        memset(&st->inc[st->inc_n], 0, sizeof(rec));
        st->inc[st->inc_n++] = *r;
        reindex(st);
        return;
    }
    st->inc[st->inc_n] = *r;
    st->inc_index[h] = (uint32_t)++st->inc_n;
}

/* The same record from its structure (a nops_signal or nops_incident per kind): no parsing. */
static nops_err struct_rec(int kind, const void *src, const char *json, size_t len, rec *r)
{
    if (kind == NOPS_SINK_SIGNAL) {
        const nops_signal *sig = src;
        snprintf(r->id, sizeof r->id, "%.*s", (int)strnlen(sig->id, sizeof sig->id), sig->id);
        r->t0 = r->t1 = sig->ts_ns;
        return rec_fill(r, NULL, &sig->labels, json, len);
    }
    const nops_incident *inc = src;
    snprintf(r->id, sizeof r->id, "%.*s", (int)strnlen(inc->id, sizeof inc->id), inc->id);
    r->t0 = inc->opened_ns;
    r->t1 = inc->updated_ns;
    r->open = inc->status == NOPS_INCIDENT_OPEN;
    return rec_fill(r, NULL, &inc->common, json, len);
}

/* Add r (taken) under the lock. */
static void put_rec(nops_store *st, int kind, rec r)
{
    pthread_mutex_lock(&st->mu);
    r.seq = ++st->seq;
    if (kind == NOPS_SINK_SIGNAL) {
        size_t at = (st->sig_head + st->sig_n) % st->sig_cap;
        if (st->sig_n == st->sig_cap) {
            at = st->sig_head;
            st->sig_head = (st->sig_head + 1) % st->sig_cap;
            rec_clear(&st->sig[at]);
        } else {
            st->sig_n++;
        }
        st->sig[at] = r;
    } else {
        add_incident(st, &r);
    }
    pthread_mutex_unlock(&st->mu);
}

nops_err nops_store_add(nops_store *st, int kind, const char *json, size_t len)
{
    rec r = {0};
    nops_err e = parse_rec(kind, json, len, &r);
    if (e == NOPS_OK)
        put_rec(st, kind, r);
    return e;
}

/* ---- the sink that feeds it -------------------------------------------------------------- */

static nops_err sink_write(void *self, int kind, const char *json, size_t len)
{
    nops_err e = nops_store_add(self, kind, json, len);
    return e == NOPS_NOMEM ? NOPS_NOMEM : NOPS_OK; /* a record it cannot index is not an outage */
}

static nops_err sink_write_record(void *self, int kind, const void *src, const char *json,
                                  size_t len)
{
    rec r = {0};
    if (!src)
        return sink_write(self, kind, json, len);
    nops_err e = struct_rec(kind, src, json, len, &r);
    if (e == NOPS_OK)
        put_rec(self, kind, r);
    return e; /* NOPS_OK or NOPS_NOMEM: the set keeps the record and gives it again */
}

static nops_err sink_flush(void *self, char *errstr, size_t errstr_size)
{
    return NOPS_OK; /* memory only: nothing to make durable */
}

static void sink_destroy(void *self)
{
    /* the store belongs to its creator */
}

static const nops_sink_ops store_ops = {"memory", sink_write, sink_flush, sink_destroy, false};

nops_err nops_store_attach(nops_store *st, nops_sinks *set, char *errstr, size_t errstr_size)
{
    nops_err e = nops_sinks_add_indexed(set, &store_ops, sink_write_record, st);
    if (e != NOPS_OK)
        nops_errf(errstr, errstr_size, "cannot attach the API store to the sinks: %s",
                  nops_strerror(e));
    return e;
}

/* ---- seeding from the JSONL files -------------------------------------------------------- */

/* Add the last lines of one file (about `keep` records' worth of bytes). */
static nops_err load_tail(nops_store *st, int kind, const char *path, size_t keep, size_t *n,
                          char *errstr, size_t errstr_size)
{
    FILE *f = nops_file_fopen(path, "r");
    if (!f)
        return NOPS_OK; /* nothing written yet */
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    long from = size > (long)(keep * 2048) ? size - (long)(keep * 2048) : 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    nops_err e = NOPS_OK;
    if (size < 0 || fseek(f, from, SEEK_SET) != 0) {
        nops_errf(errstr, errstr_size, "cannot read %s", path);
        fclose(f);
        return NOPS_IO;
    }
    if (from > 0 && getline(&line, &cap, f) < 0) { /* skip a partial first line */
        fclose(f);
        free(line);
        return NOPS_OK;
    }
    while ((got = getline(&line, &cap, f)) > 0) {
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        nops_err a = nops_store_add(st, kind, line, len);
        if (a == NOPS_NOMEM) {
            e = a;
            nops_errf(errstr, errstr_size, "out of memory loading %s", path);
            break;
        }
        *n += a == NOPS_OK;
    }
    free(line);
    fclose(f);
    return e;
}

nops_err nops_store_load_jsonl(nops_store *st, const char *dir, size_t *n_signals,
                               size_t *n_incidents, char *errstr, size_t errstr_size)
{
    char path[1200];
    size_t ns = 0, ni = 0;
    snprintf(path, sizeof path, "%s/signals.jsonl", dir);
    nops_err e = load_tail(st, NOPS_SINK_SIGNAL, path, st->sig_cap, &ns, errstr, errstr_size);
    if (e == NOPS_OK) {
        snprintf(path, sizeof path, "%s/incidents.jsonl", dir);
        /* each incident has several records (open, updates, resolve) */
        e = load_tail(st, NOPS_SINK_INCIDENT, path, st->inc_cap * 4, &ni, errstr, errstr_size);
    }
    if (n_signals)
        *n_signals = ns;
    if (n_incidents)
        *n_incidents = ni;
    return e;
}

/* ---- queries ------------------------------------------------------------------------------ */

/* Parse "k=v,k=v" into needles "\x01k=v\x01"; NOPS_INVAL on a pair without '='. */
static nops_err parse_filter(const char *spec, char ***needles, size_t *n, char *errstr,
                             size_t errstr_size)
{
    *needles = NULL;
    *n = 0;
    if (!spec || !*spec)
        return NOPS_OK;
    size_t max = 1;
    for (const char *p = spec; *p; p++)
        max += *p == ',';
    char **out = nops_calloc(max, sizeof *out);
    if (!out)
        return NOPS_NOMEM;
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p) {
            nops_errf(errstr, errstr_size, "labels: \"%.*s\" is not key=value", (int)len, p);
            for (size_t i = 0; i < *n; i++)
                nops_free(out[i]);
            nops_free(out);
            *n = 0;
            return NOPS_INVAL;
        }
        char *nd = nops_malloc(len + 3);
        if (!nd)
            break;
        nd[0] = '\x01';
        memcpy(nd + 1, p, len);
        nd[len + 1] = '\x01';
        nd[len + 2] = '\0';
        out[(*n)++] = nd;
        p += len + (end ? 1 : 0);
    }
    *needles = out;
    return NOPS_OK;
}

static bool matches(const rec *r, int kind, const nops_store_query *q, char **needles, size_t n)
{
    if (q->until_ns && r->t0 > q->until_ns)
        return false;
    if (q->since_ns && r->t1 < q->since_ns)
        return false;
    if (kind == NOPS_SINK_INCIDENT && q->status &&
        r->open != (strcmp(q->status, "open") == 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strstr(r->labels, needles[i]))
            return false;
    return true;
}

static nops_err put(nops_buf *b, const char *s, size_t n)
{
    nops_err e = nops_buf_reserve(b, n + 1);
    if (e == NOPS_OK) {
        memcpy(b->b + b->len, s, n);
        b->len += n;
        b->b[b->len] = '\0';
    }
    return e;
}

static int by_seq_desc(const void *a, const void *b)
{
    uint64_t x = (*(rec *const *)a)->seq, y = (*(rec *const *)b)->seq;
    return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Matches newest first into `hits` (caller frees): at most `want` of them, and (when more exist)
 * one beyond, so the caller knows whether there is a next page. Signals are scanned newest first
 * and the scan stops there; incidents are few and sorted by last update.
 */
static size_t collect(nops_store *st, int kind, const nops_store_query *q, char **needles,
                      size_t nn, size_t want, rec ***hits)
{
    size_t total = kind == NOPS_SINK_SIGNAL ? st->sig_n : st->inc_n, n = 0;
    size_t room = kind == NOPS_SINK_SIGNAL && want + 1 < total ? want + 1 : total;
    *hits = nops_malloc((room ? room : 1) * sizeof **hits);
    if (!*hits)
        return 0;
    for (size_t i = 0; i < total; i++) {
        rec *r = kind == NOPS_SINK_SIGNAL
                     ? &st->sig[(st->sig_head + total - 1 - i) % st->sig_cap] /* newest first */
                     : &st->inc[i];
        if ((!q->cursor || r->seq < q->cursor) && matches(r, kind, q, needles, nn))
            (*hits)[n++] = r;
        if (kind == NOPS_SINK_SIGNAL && n > want)
            break;
    }
    if (kind == NOPS_SINK_INCIDENT)
        qsort(*hits, n, sizeof **hits, by_seq_desc);
    return n;
}

nops_err nops_store_page(nops_store *st, int kind, const nops_store_query *q, nops_buf *out,
                         char *errstr, size_t errstr_size)
{
    char **needles;
    size_t nn;
    nops_err e = parse_filter(q->labels, &needles, &nn, errstr, errstr_size);
    if (e != NOPS_OK)
        return e;
    size_t limit = q->limit ? q->limit : 100;
    pthread_mutex_lock(&st->mu);
    rec **hits;
    size_t n = collect(st, kind, q, needles, nn, limit, &hits);
    size_t shown = n < limit ? n : limit;
    char head[64];
    snprintf(head, sizeof head, "{\"%s\":[", kind == NOPS_SINK_SIGNAL ? "signals" : "incidents");
    e = hits ? put(out, head, strlen(head)) : NOPS_NOMEM;
    for (size_t i = 0; e == NOPS_OK && i < shown; i++) {
        if (i)
            e = put(out, ",", 1);
        if (e == NOPS_OK)
            e = put(out, hits[i]->json, hits[i]->len);
    }
    char tail[96];
    if (shown < n)
        snprintf(tail, sizeof tail, "],\"next_cursor\":\"%llu\"}",
                 (unsigned long long)hits[shown - 1]->seq);
    else
        snprintf(tail, sizeof tail, "],\"next_cursor\":null}");
    if (e == NOPS_OK)
        e = put(out, tail, strlen(tail));
    pthread_mutex_unlock(&st->mu);
    nops_free(hits);
    for (size_t i = 0; i < nn; i++)
        nops_free(needles[i]);
    nops_free(needles);
    return e;
}

nops_err nops_store_incident(nops_store *st, const char *id, nops_buf *out)
{
    if (strlen(id) >= NOPS_ID_LEN + 8)
        return NOPS_NOTFOUND;
    pthread_mutex_lock(&st->mu);
    bool found;
    size_t h = index_slot(st, id, &found);
    nops_err e = NOPS_NOTFOUND;
    if (found) {
        const rec *r = &st->inc[st->inc_index[h] - 1];
        e = put(out, r->json, r->len);
    }
    pthread_mutex_unlock(&st->mu);
    return e;
}

nops_err nops_store_signal(nops_store *st, const char *id, nops_buf *out)
{
    pthread_mutex_lock(&st->mu);
    nops_err e = NOPS_NOTFOUND;
    for (size_t i = 0; i < st->sig_n && e == NOPS_NOTFOUND; i++) { /* newest first */
        const rec *r = &st->sig[(st->sig_head + st->sig_n - 1 - i) % st->sig_cap];
        if (strcmp(r->id, id) == 0)
            e = put(out, r->json, r->len);
    }
    pthread_mutex_unlock(&st->mu);
    return e;
}

void nops_store_counts(nops_store *st, size_t *signals, size_t *incidents)
{
    pthread_mutex_lock(&st->mu);
    *signals = st->sig_n;
    *incidents = st->inc_n;
    pthread_mutex_unlock(&st->mu);
}
