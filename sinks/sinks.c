/*
 * sinks.c — the sink set (fan-out, locking, counters) and the JSON shapes of the records.
 *
 * Records are encoded once with jansson and the same line goes to every sink. One mutex guards
 * the set: signals and incidents are rare next to points, so a lock here costs nothing on the
 * hot path, which never touches the sinks.
 *
 * Nothing the set takes is lost without the flushes saying so (the essay). A record a sink
 * refuses (its buffer is at its bound, it is out of memory, it is broken) is kept by the set,
 * per sink and in order, and handed to that sink again at the next flush, after the sink's own
 * flush has made room; the flush fails until every kept record is in and durable, and since the
 * pipeline commits Kafka offsets only after a successful flush, no offset moves past a record
 * that is not written. While a sink holds kept records, newer records queue behind them, so a
 * sink never sees an incident's later state before its earlier one. Kept bytes are bounded
 * (NOPS__HELD_MAX per sink); a record that cannot be kept either (past that bound, or no
 * memory) is lost: it is counted, logged, and every later flush fails, so the offsets stay
 * where they were and a restart replays the record. Encoding is sized to the record (no fixed
 * buffer) and never fails on text: a string that is not valid UTF-8 is written with U+FFFD in
 * place of its bad bytes (parsers refuse such input, so this is a last line of defence).
 */
#include "sinks/sinks.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#define NOPS__MAX_SINKS 8
#define NOPS__HELD_MAX (64u << 20) /* bytes of refused records kept per sink */

struct nops_sinks {
    pthread_mutex_t flush_mu;             /* one flush at a time (taken before lock) */
    pthread_mutex_t lock;                 /* guards everything below */
    const nops_sink_ops *ops[NOPS__MAX_SINKS]; /* sink tables */
    void *self[NOPS__MAX_SINKS];          /* sink instances */
    nops_sink_record_fn rec_fn[NOPS__MAX_SINKS]; /* takes live records as structures, or NULL */
    size_t n;                             /* sinks added */
    nops_buf held[NOPS__MAX_SINKS];       /* records sink i refused: {u8 kind, u32 len, json} */
    size_t n_held[NOPS__MAX_SINKS];       /* records in held[i] */
    nops_sinks_stats st;                  /* counters */
    nops_ratelimit refusal_log;           /* "sink refused a record" lines */
    nops_ratelimit lost_log;              /* "record lost" lines */
};

nops_sinks *nops_sinks_new(void)
{
    nops_sinks *set = nops_calloc(1, sizeof *set);
    if (set) {
        pthread_mutex_init(&set->flush_mu, NULL);
        pthread_mutex_init(&set->lock, NULL);
    }
    return set;
}

void nops_sinks_destroy(nops_sinks *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++) {
        set->ops[i]->destroy(set->self[i]);
        nops_free(set->held[i].b);
    }
    pthread_mutex_destroy(&set->lock);
    pthread_mutex_destroy(&set->flush_mu);
    nops_free(set);
}

nops_err nops_sinks_add(nops_sinks *set, const nops_sink_ops *ops, void *self)
{
    return nops_sinks_add_indexed(set, ops, NULL, self);
}

nops_err nops_sinks_add_indexed(nops_sinks *set, const nops_sink_ops *ops,
                                nops_sink_record_fn write_record, void *self)
{
    pthread_mutex_lock(&set->lock);
    nops_err e = NOPS_FULL;
    if (set->n < NOPS__MAX_SINKS) {
        set->ops[set->n] = ops;
        set->rec_fn[set->n] = write_record;
        set->self[set->n++] = self;
        e = NOPS_OK;
    }
    pthread_mutex_unlock(&set->lock);
    return e;
}

/* ---- encoding ----------------------------------------------------------------------------- */

/* A JSON string of s[0..n); bytes that are not UTF-8 (and NULs) become U+FFFD. */
static json_t *jstr(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j || !s)
        return j;
    size_t cap = 3 * n + 1; /* each bad byte becomes three */
    char small[1024];
    char *buf = cap <= sizeof small ? small : nops_malloc(cap);
    if (!buf)
        return NULL;
    size_t len = nops_utf8_sanitize(s, n, buf, cap, NULL);
    j = json_stringn(buf, len);
    if (buf != small)
        nops_free(buf);
    return j;
}

/* Set o[key] to a string (see jstr); false when that failed (no memory). */
static bool set_str(json_t *o, const char *key, const char *s, size_t n)
{
    return json_object_set_new(o, key, jstr(s, n)) == 0;
}

/* Label pairs into a JSON object (keys need a NUL: copy them); NULL without memory or for a
   key that is not text. */
static json_t *labels_obj(const nops_labels *ls)
{
    json_t *obj = json_object();
    for (uint32_t i = 0; obj && i < ls->n; i++) {
        nops_label l = nops_labels_at(ls, i);
        char key[NOPS_KEY_MAX]; /* a label key is shorter than its whole series key */
        json_t *jk = jstr(l.key, l.key_len); /* the object key must be valid UTF-8 too */
        const char *ks = jk ? json_string_value(jk) : NULL;
        size_t ksl = jk ? json_string_length(jk) : 0;
        bool ok = ks && ksl < sizeof key && !memchr(ks, '\0', ksl);
        if (ok) {
            memcpy(key, ks, ksl);
            key[ksl] = '\0';
            ok = json_object_set_new(obj, key, jstr(l.value, l.value_len)) == 0;
        }
        json_decref(jk);
        if (!ok) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

static json_t *signal_obj(const nops_signal *sig)
{
    json_t *o = json_object(), *labels = labels_obj(&sig->labels);
    const size_t slen = strnlen(sig->series, sizeof sig->series);
    /* the metric is the key's name part; a record without one (not from nops_signal_set_series)
       names the whole series, as a key that cannot be split always did */
    const size_t name_len = sig->metric_len && sig->metric_len < slen ? sig->metric_len : slen;
    char ts[40];
    nops_format_ts(sig->ts_ns, ts, sizeof ts);
    const char *method = sig->method == NOPS_FIRED_CUSUM    ? "cusum"
                         : sig->method == NOPS_FIRED_SEASON ? "season"
                         : sig->method == NOPS_FIRED_EWMA   ? "ewma"
                                                            : "zscore";
    bool ok = o && labels && set_str(o, "id", sig->id, strnlen(sig->id, sizeof sig->id)) &&
              set_str(o, "series", sig->series, slen) &&
              set_str(o, "metric", sig->series, name_len) &&
              json_object_set(o, "labels", labels) == 0 && set_str(o, "ts", ts, strlen(ts)) &&
              json_object_set_new(o, "value", json_real(sig->value)) == 0 &&
              set_str(o, "method", method, strlen(method)) &&
              json_object_set_new(o, "zscore", json_real((double)sig->zscore)) == 0 &&
              json_object_set_new(o, "ewma", json_real((double)sig->ewma)) == 0 &&
              json_object_set_new(o, "score", json_real(sig->score)) == 0 &&
              set_str(o, "hint", sig->hint, strnlen(sig->hint, sizeof sig->hint));
    json_decref(labels);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A float in [0, 1] kept to 4 decimals, so 0.1f is written 0.1, not 0.100000001. */
static json_t *jratio(float x)
{
    return json_real(isfinite(x) ? round((double)x * 1e4) / 1e4 : 0.0);
}

/* The recommendations attached to an incident: [{playbook_id, score, confidence, evidence}],
 * best first; [] when none. NULL without memory. */
static json_t *recos_arr(const nops_incident *inc)
{
    json_t *arr = json_array();
    const unsigned n = inc->n_recos < NOPS_INCIDENT_MAX_RECOS ? inc->n_recos
                                                               : NOPS_INCIDENT_MAX_RECOS;
    for (unsigned i = 0; arr && i < n; i++) {
        const nops_incident_reco *r = &inc->recos[i];
        json_t *o = json_object();
        bool ok = o && set_str(o, "playbook_id", r->playbook_id,
                               strnlen(r->playbook_id, sizeof r->playbook_id)) &&
                  json_object_set_new(o, "score", jratio(r->score)) == 0 &&
                  json_object_set_new(o, "confidence", jratio(r->confidence)) == 0 &&
                  json_object_set_new(o, "evidence", json_integer((json_int_t)r->evidence)) == 0;
        if (!ok || json_array_append_new(arr, o) != 0) {
            if (!ok)
                json_decref(o);
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static json_t *incident_obj(const nops_incident *inc)
{
    json_t *o = json_object(), *labels = labels_obj(&inc->common), *sigs = json_array();
    uint32_t n = inc->n_signals < NOPS_INCIDENT_MAX_SIGNALS ? inc->n_signals
                                                            : NOPS_INCIDENT_MAX_SIGNALS;
    bool ok = o && sigs && labels;
    for (uint32_t i = 0; ok && i < n; i++)
        ok = json_array_append_new(sigs, jstr(inc->signals[i],
                                              strnlen(inc->signals[i], NOPS_ID_LEN))) == 0;
    char opened[40], updated[40];
    nops_format_ts(inc->opened_ns, opened, sizeof opened);
    nops_format_ts(inc->updated_ns, updated, sizeof updated);
    const char *status = inc->status == NOPS_INCIDENT_OPEN ? "open" : "resolved";
    ok = ok && set_str(o, "id", inc->id, strnlen(inc->id, sizeof inc->id)) &&
         set_str(o, "status", status, strlen(status)) &&
         set_str(o, "severity", nops_severity_name(inc->severity),
                 strlen(nops_severity_name(inc->severity))) &&
         set_str(o, "opened_at", opened, strlen(opened)) &&
         set_str(o, "updated_at", updated, strlen(updated)) &&
         json_object_set(o, "signals", sigs) == 0 &&
         json_object_set_new(o, "signal_count", json_integer((json_int_t)inc->n_signals)) == 0 &&
         json_object_set_new(o, "series_count", json_integer((json_int_t)inc->n_series)) == 0 &&
         json_object_set_new(o, "host_count", json_integer((json_int_t)inc->n_hosts)) == 0 &&
         json_object_set(o, "labels", labels) == 0 &&
         set_str(o, "summary", inc->summary, strnlen(inc->summary, sizeof inc->summary)) &&
         set_str(o, "root_cause_hint", inc->root_cause_hint,
                 strnlen(inc->root_cause_hint, sizeof inc->root_cause_hint)) &&
         json_object_set_new(o, "recommendations", recos_arr(inc)) == 0;
    json_decref(labels);
    json_decref(sigs);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

#define NOPS__JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

/* Dump into buf (cap bytes, NUL-terminated); the length, or 0 if it does not fit. */
static size_t dump(json_t *o, char *buf, size_t cap)
{
    size_t n = o ? json_dumpb(o, buf, cap, NOPS__JSON_FLAGS) : 0;
    json_decref(o);
    if (n == 0 || n >= cap)
        return 0;
    buf[n] = '\0';
    return n;
}

size_t nops_signal_json(const nops_signal *sig, char *buf, size_t cap)
{
    return dump(signal_obj(sig), buf, cap);
}

size_t nops_incident_json(const nops_incident *inc, char *buf, size_t cap)
{
    return dump(incident_obj(inc), buf, cap);
}

/*
 * Encode o (consumed) into `stack` when it fits, else into a buffer allocated to its size;
 * returns the text (stack or heap: free it when it is not `stack`), NULL without memory.
 */
static char *encode(json_t *o, char *stack, size_t cap, size_t *len)
{
    if (!o)
        return NULL;
    size_t n = json_dumpb(o, stack, cap, NOPS__JSON_FLAGS);
    char *out = stack;
    if (n >= cap) { /* json_dumpb said how much it needs */
        out = nops_malloc(n + 1);
        if (out && json_dumpb(o, out, n + 1, NOPS__JSON_FLAGS) != n) {
            nops_free(out);
            out = NULL;
        }
    }
    json_decref(o);
    if (!out || n == 0) {
        if (out != stack)
            nops_free(out);
        return NULL;
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* ---- fan-out, refused records, flush ----------------------------------------------------- */

/* A record sink i refused (kept for the next flush), or that was lost (`lost`: neither written
 * nor kept, or not even encoded when i is n): logged at most once per 10 s per kind, under the
 * lock. These lines are the only ones about it: callers get the error and need not log it. */
static void log_failure(nops_sinks *set, size_t i, int kind, nops_err e, bool lost)
{
    uint64_t missed;
    if (!nops_ratelimit_due(lost ? &set->lost_log : &set->refusal_log, nops_wall_ns(), &missed))
        return;
    const char *what = kind == NOPS_SINK_SIGNAL ? " signal" : "n incident";
    if (!lost)
        NOPS_WARN("sinks", "%s sink refused a%s record (%s): kept and written again at the next "
                  "flush; offsets wait until it is in (%llu more refusal(s) not logged in the "
                  "last 10 s)", set->ops[i]->name, what, nops_strerror(e),
                  (unsigned long long)missed);
    else
        NOPS_ERROR("sinks", "%s%sa%s record could %s (%s): flushes fail from now on so that no "
                   "offset past it is committed; restart to replay it (%llu more lost record(s) "
                   "not logged in the last 10 s)", i < set->n ? set->ops[i]->name : "",
                   i < set->n ? " sink: " : "", what,
                   i < set->n ? "be neither written nor kept" : "not be encoded",
                   nops_strerror(e), (unsigned long long)missed);
}

/* Keep a record for sink i (under the lock); false when it cannot be kept (lost). */
static bool hold(nops_sinks *set, size_t i, int kind, const char *json, size_t len)
{
    nops_buf *b = &set->held[i];
    const size_t need = 1 + sizeof(uint32_t) + len;
    if (len > UINT32_MAX || b->len + need > NOPS__HELD_MAX || nops_buf_reserve(b, need) != NOPS_OK)
        return false;
    const uint32_t l32 = (uint32_t)len;
    b->b[b->len] = (char)kind;
    memcpy(b->b + b->len + 1, &l32, sizeof l32);
    memcpy(b->b + b->len + 1 + sizeof l32, json, len);
    b->len += need;
    set->n_held[i]++;
    set->st.held++;
    return true;
}

static nops_err fan_out(nops_sinks *set, int kind, const void *rec, const char *json,
                        size_t len)
{
    nops_err first = NOPS_OK;
    pthread_mutex_lock(&set->lock);
    for (size_t i = 0; i < set->n; i++) {
        const nops_sink_ops *ops = set->ops[i];
        /* behind kept records, a record waits its turn: the sink sees records in order */
        nops_err e = set->n_held[i] ? NOPS_FULL
                     : set->rec_fn[i] ? set->rec_fn[i](set->self[i], kind, rec, json, len)
                                      : ops->write(set->self[i], kind, json, len);
        if (e == NOPS_OK)
            continue;
        if (!set->n_held[i]) {
            set->st.refused++;
            log_failure(set, i, kind, e, false);
        }
        if (!hold(set, i, kind, json, len)) {
            set->st.dropped++;
            log_failure(set, i, kind, e, true);
            if (first == NOPS_OK)
                first = NOPS_FULL;
        }
    }
    if (first == NOPS_OK) {
        if (kind == NOPS_SINK_SIGNAL)
            set->st.signals++;
        else
            set->st.incidents++;
    }
    pthread_mutex_unlock(&set->lock);
    return first;
}

/* The set could not even encode a record: it is lost (see the essay). */
static nops_err lost(nops_sinks *set, int kind)
{
    pthread_mutex_lock(&set->lock);
    set->st.dropped++;
    log_failure(set, set->n, kind, NOPS_NOMEM, true);
    pthread_mutex_unlock(&set->lock);
    return NOPS_NOMEM;
}

/* Encode `obj` (taken) once and hand it to every sink; a record that cannot even be encoded is
 * lost() — counted, logged, and every later flush fails. */
static nops_err publish(nops_sinks *set, int kind, const void *rec, json_t *obj)
{
    char buf[8192];
    size_t n = 0;
    char *json = encode(obj, buf, sizeof buf, &n);
    if (!json)
        return lost(set, kind);
    nops_err e = fan_out(set, kind, rec, json, n);
    if (json != buf)
        nops_free(json);
    return e;
}

nops_err nops_sinks_signal(nops_sinks *set, const nops_signal *sig)
{
    return publish(set, NOPS_SINK_SIGNAL, sig, signal_obj(sig));
}

nops_err nops_sinks_incident(nops_sinks *set, const nops_incident *inc)
{
    return publish(set, NOPS_SINK_INCIDENT, inc, incident_obj(inc));
}

/* Hand sink i its kept records in order until it refuses one; how many it took. */
static size_t replay_held(nops_sinks *set, size_t i, nops_err *refusal)
{
    nops_buf *b = &set->held[i];
    size_t off = 0, taken = 0;
    while (off < b->len) {
        uint32_t len;
        memcpy(&len, b->b + off + 1, sizeof len);
        const int kind = (unsigned char)b->b[off];
        nops_err e = set->ops[i]->write(set->self[i], kind, b->b + off + 1 + sizeof len, len);
        if (e != NOPS_OK) {
            *refusal = e;
            break;
        }
        off += 1 + sizeof len + len;
        taken++;
    }
    memmove(b->b, b->b + off, b->len - off);
    b->len -= off;
    set->n_held[i] -= taken;
    set->st.held -= taken;
    return taken;
}

/* Flush sink i, then give it its kept records (flushing to make room) until all are in. Called
 * with set->lock held, except for a flush_concurrent sink: then its flushes run unlocked and
 * the lock is taken only to hand it the kept records (writes, in order behind them). */
static nops_err flush_one(nops_sinks *set, size_t i, char *err, size_t err_size)
{
    const bool unlocked = set->ops[i]->flush_concurrent;
    nops_err e = set->ops[i]->flush(set->self[i], err, err_size);
    while (e == NOPS_OK) {
        if (unlocked)
            pthread_mutex_lock(&set->lock);
        const size_t held = set->n_held[i];
        nops_err refusal = NOPS_OK;
        const size_t taken = held ? replay_held(set, i, &refusal) : 0;
        if (unlocked)
            pthread_mutex_unlock(&set->lock);
        if (!held)
            break;
        if (taken == 0) {
            nops_errf(err, err_size, "%zu refused record(s) wait for the sink (it refuses them: "
                      "%s)", held, nops_strerror(refusal));
            return NOPS_IO;
        }
        e = set->ops[i]->flush(set->self[i], err, err_size);
    }
    return e;
}

nops_err nops_sinks_flush(nops_sinks *set, char *errstr, size_t errstr_size)
{
    nops_err first = NOPS_OK;
    pthread_mutex_lock(&set->flush_mu);
    pthread_mutex_lock(&set->lock);
    for (size_t i = 0; i < set->n; i++) {
        char err[256] = "";
        const bool unlocked = set->ops[i]->flush_concurrent;
        if (unlocked) /* the workers go on writing meanwhile */
            pthread_mutex_unlock(&set->lock);
        nops_err e = flush_one(set, i, err, sizeof err);
        if (unlocked)
            pthread_mutex_lock(&set->lock);
        if (e != NOPS_OK && first == NOPS_OK) {
            first = e;
            nops_errf(errstr, errstr_size, "%s sink: %s", set->ops[i]->name, err);
        }
    }
    if (first == NOPS_OK && set->st.dropped) {
        first = NOPS_IO;
        nops_errf(errstr, errstr_size, "%llu record(s) could be neither written nor kept: "
                  "offsets are no longer committed; restart to replay them",
                  (unsigned long long)set->st.dropped);
    }
    if (first == NOPS_OK)
        set->st.flushes++;
    else
        set->st.flush_failures++;
    pthread_mutex_unlock(&set->lock);
    pthread_mutex_unlock(&set->flush_mu);
    return first;
}

void nops_sinks_get_stats(nops_sinks *set, nops_sinks_stats *st)
{
    pthread_mutex_lock(&set->lock);
    *st = set->st;
    pthread_mutex_unlock(&set->lock);
}

#define S(f) offsetof(nops_sinks_params, f)
static const nops_cfg_entry sinks_entries[] = {
    {"jsonl", NOPS_CFG_BOOL, S(jsonl), 0, 0, "true", NULL, NULL, 0,
     "Write signals.jsonl and incidents.jsonl in storage.data_dir."},
    {"kafka_topic", NOPS_CFG_STRING, S(kafka_topic), 0, 256, "", NULL, NULL, 0,
     "Also publish signals and incidents on this Kafka topic (e.g. neuralops.signals)."},
    {"postgres_dsn", NOPS_CFG_STRING, S(postgres_dsn), 0, 512, "", NULL, "postgres", NOPS_CFG_SECRET,
     "Also write to PostgreSQL (libpq connection string); the schema is created at start."},
};
#undef S
const nops_cfg_section nops_sinks_cfg_section = {
    "sinks", "Where signals and incidents are written; every configured sink gets everything.",
    sinks_entries, sizeof sinks_entries / sizeof sinks_entries[0], NULL,
};
