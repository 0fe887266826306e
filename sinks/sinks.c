/*
 * sinks.c — the sink set (fan-out, locking, counters) and the JSON shapes of the records.
 *
 * Records are encoded once with jansson and the same line goes to every sink. One mutex guards
 * the set: signals and incidents are rare next to points, so a lock here costs nothing on the
 * hot path, which never touches the sinks.
 */
#include "sinks/sinks.h"
#include "detect/detect.h"

#include <jansson.h>
#include <pthread.h>
#include <string.h>

#define NOPS__MAX_SINKS 8

struct nops_sinks {
    pthread_mutex_t lock;                 /* guards everything below */
    const nops_sink_ops *ops[NOPS__MAX_SINKS]; /* sink tables */
    void *self[NOPS__MAX_SINKS];          /* sink instances */
    size_t n;                             /* sinks added */
    nops_sinks_stats st;                  /* counters */
};

nops_sinks *nops_sinks_new(void)
{
    nops_sinks *set = nops_calloc(1, sizeof *set);
    if (set)
        pthread_mutex_init(&set->lock, NULL);
    return set;
}

void nops_sinks_destroy(nops_sinks *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        set->ops[i]->destroy(set->self[i]);
    pthread_mutex_destroy(&set->lock);
    nops_free(set);
}

nops_err nops_sinks_add(nops_sinks *set, const nops_sink_ops *ops, void *self)
{
    pthread_mutex_lock(&set->lock);
    nops_err e = NOPS_FULL;
    if (set->n < NOPS__MAX_SINKS) {
        set->ops[set->n] = ops;
        set->self[set->n++] = self;
        e = NOPS_OK;
    }
    pthread_mutex_unlock(&set->lock);
    return e;
}

/* Labels of a canonical key into a JSON object (keys need a NUL: copy them). */
static void add_label(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    char key[256];
    if (kl >= sizeof key)
        return;
    memcpy(key, k, kl);
    key[kl] = '\0';
    json_object_set_new((json_t *)ud, key, json_stringn(v, vl));
}

static size_t dump(json_t *o, char *buf, size_t cap)
{
    size_t n = o ? json_dumpb(o, buf, cap, JSON_COMPACT | JSON_REAL_PRECISION(9)) : 0;
    json_decref(o);
    if (n == 0 || n >= cap)
        return 0;
    buf[n] = '\0';
    return n;
}

size_t nops_signal_json(const nops_signal *sig, char *buf, size_t cap)
{
    size_t name_len;
    json_t *labels = json_object();
    if (nops_detect_key_split(sig->series, &name_len, add_label, labels) != NOPS_OK)
        name_len = strlen(sig->series);
    char ts[40];
    nops_format_ts(sig->ts_ns, ts, sizeof ts);
    json_t *o = json_pack("{s:s, s:s, s:s%, s:o, s:s, s:f, s:s, s:f, s:f, s:f, s:s}", "id",
                          sig->id, "series", sig->series, "metric", sig->series, name_len,
                          "labels", labels, "ts", ts, "value", sig->value, "method",
                          sig->method == NOPS_FIRED_EWMA ? "ewma" : "zscore", "zscore",
                          (double)sig->zscore, "ewma", (double)sig->ewma, "score", sig->score,
                          "hint", sig->hint);
    return dump(o, buf, cap);
}

size_t nops_incident_json(const nops_incident *inc, char *buf, size_t cap)
{
    json_t *labels = json_object();
    char wrapped[600];
    snprintf(wrapped, sizeof wrapped, "x{%s}", inc->labels);
    size_t name_len;
    if (inc->labels[0])
        nops_detect_key_split(wrapped, &name_len, add_label, labels);
    json_t *sigs = json_array();
    uint32_t n = inc->n_signals < NOPS_INCIDENT_MAX_SIGNALS ? inc->n_signals
                                                            : NOPS_INCIDENT_MAX_SIGNALS;
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(sigs, json_string(inc->signals[i]));
    char opened[40], updated[40];
    nops_format_ts(inc->opened_ns, opened, sizeof opened);
    nops_format_ts(inc->updated_ns, updated, sizeof updated);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:o, s:s, s:s}", "id", inc->id,
                          "status", inc->status == NOPS_INCIDENT_OPEN ? "open" : "resolved",
                          "opened_at", opened, "updated_at", updated, "signals", sigs,
                          "signal_count", (json_int_t)inc->n_signals, "labels", labels,
                          "summary", inc->summary, "root_cause_hint", inc->root_cause_hint);
    return dump(o, buf, cap);
}

static nops_err fan_out(nops_sinks *set, int kind, const char *json, size_t len)
{
    nops_err first = NOPS_OK;
    pthread_mutex_lock(&set->lock);
    for (size_t i = 0; i < set->n; i++) {
        nops_err e = set->ops[i]->write(set->self[i], kind, json, len);
        if (e == NOPS_FULL) {
            set->st.dropped++;
            NOPS_WARN("sinks", "%s sink is full: a record was dropped (see flush errors)",
                      set->ops[i]->name);
        }
        if (e != NOPS_OK && first == NOPS_OK)
            first = e;
    }
    if (kind == NOPS_SINK_SIGNAL)
        set->st.signals++;
    else
        set->st.incidents++;
    pthread_mutex_unlock(&set->lock);
    return first;
}

nops_err nops_sinks_signal(nops_sinks *set, const nops_signal *sig)
{
    char buf[4096];
    size_t n = nops_signal_json(sig, buf, sizeof buf);
    return n ? fan_out(set, NOPS_SINK_SIGNAL, buf, n) : NOPS_RANGE;
}

nops_err nops_sinks_incident(nops_sinks *set, const nops_incident *inc)
{
    char buf[8192];
    size_t n = nops_incident_json(inc, buf, sizeof buf);
    return n ? fan_out(set, NOPS_SINK_INCIDENT, buf, n) : NOPS_RANGE;
}

nops_err nops_sinks_flush(nops_sinks *set, char *errstr, size_t errstr_size)
{
    nops_err first = NOPS_OK;
    pthread_mutex_lock(&set->lock);
    for (size_t i = 0; i < set->n; i++) {
        char err[256] = "";
        nops_err e = set->ops[i]->flush(set->self[i], err, sizeof err);
        if (e != NOPS_OK && first == NOPS_OK) {
            first = e;
            nops_errf(errstr, errstr_size, "%s sink: %s", set->ops[i]->name, err);
        }
    }
    if (first == NOPS_OK)
        set->st.flushes++;
    else
        set->st.flush_failures++;
    pthread_mutex_unlock(&set->lock);
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
