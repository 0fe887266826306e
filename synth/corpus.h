/*
 * corpus.h — labelled synthetic series with the properties of real ops metrics, and a labelled
 * synthetic fleet (synth/, linked by bench and tests: the yardstick of docs/quality.md).
 *
 * The corpus: series of nine kinds, each with what real metrics have — daily and weekly
 * seasonality at the series' own step, persistent level shifts (a new normal), slow drifts,
 * quantised counters, long flat stretches then spikes, heavy-tailed (Student-t) noise,
 * autocorrelated noise, irregular sampling with gaps — and labelled anomaly windows (point
 * indices) for the NAB-style scorer of score.h.
 *
 * The fleet: hosts × 5 Telegraf-like metrics over services and two regions, one row of values
 * per time step (all series at once, the layout of a scrape), noise, a daily wave, a
 * random-walk disk metric, a quantised error counter, and injected events with their ground
 * truth: multi-metric level shifts on one host, single-point spikes, a variance burst and
 * service-wide shifts (several hosts of one service together).
 *
 * Both are deterministic functions of their seed. Ownership: *_new returns an object the
 * caller frees with the matching *_destroy (NULL is fine); everything inside belongs to it and
 * is read-only for the caller. No globals; objects are not shared between threads by this
 * module (read-only use from several threads is fine).
 */
#ifndef NOPS_SYNTH_CORPUS_H
#define NOPS_SYNTH_CORPUS_H

#include "synth/score.h"

#include <stdint.h>

/* ---- labelled series --------------------------------------------------------------------- */

#define NOPS_SYNTH_MAX_WINDOWS 4 /**< labelled windows per series */

/** One labelled series. */
typedef struct nops_synth_series {
    char name[48];    /**< "<kind>_<k>" */
    const char *kind; /**< kind name (static storage) */
    uint32_t kind_id; /**< its index, 0..NOPS_SYNTH_KINDS−1 */
    uint32_t n;       /**< points */
    int64_t *ts_ns;   /**< n timestamps, ascending (irregular for some kinds) */
    float *v;         /**< n values */
    int64_t step_s;   /**< nominal step, seconds */
    nops_synth_window win[NOPS_SYNTH_MAX_WINDOWS]; /**< labelled windows, sorted, disjoint */
    uint32_t n_win;                                /**< windows used */
    uint32_t probation;                            /**< leading points not scored (NAB's rule) */
} nops_synth_series;

/** A corpus: series of every kind. */
typedef struct nops_synth_corpus {
    nops_synth_series *s; /**< the series */
    uint32_t n;           /**< how many */
    uint64_t points;      /**< points in all */
} nops_synth_corpus;

#define NOPS_SYNTH_KINDS 9 /**< series kinds */

/** Name of kind k (0..NOPS_SYNTH_KINDS−1). */
const char *nops_synth_kind_name(int k);

/**
 * A corpus of `per_kind` series of each kind (9·per_kind series of 4,032 points each)
 * from `seed`. NOPS_INVAL for per_kind 0 or above 64, NOPS_NOMEM when memory is refused.
 */
nops_err nops_synth_corpus_new(uint64_t seed, uint32_t per_kind, nops_synth_corpus **out);
void nops_synth_corpus_destroy(nops_synth_corpus *c);

/* ---- fleet ------------------------------------------------------------------------------- */

#define NOPS_SYNTH_METRICS 5     /**< metrics per host */
#define NOPS_SYNTH_EVENT_HOSTS 8 /**< hosts listed per event */

/** Fleet settings; nops_synth_fleet_opts_default gives the issue-14 fleet. */
typedef struct nops_synth_fleet_opts {
    uint32_t hosts;          /**< hosts (each with NOPS_SYNTH_METRICS series) */
    uint32_t ticks;          /**< time steps */
    uint32_t step_s;         /**< seconds per step */
    int64_t start_ns;        /**< data time of the first step */
    uint32_t host_shifts;    /**< multi-metric level shifts on one host */
    uint32_t spikes;         /**< single-point spikes */
    uint32_t bursts;         /**< variance bursts */
    uint32_t service_shifts; /**< shifts on several hosts of one service */
    uint32_t quiet_ticks;    /**< no event starts before this step */
} nops_synth_fleet_opts;

/** One injected event. */
typedef struct nops_synth_event {
    char kind[24];                          /**< host_shift|spike|variance_burst|service_shift */
    nops_synth_event_class cls;             /**< grouping class for the scorer */
    uint32_t service;                       /**< service index */
    uint32_t hosts[NOPS_SYNTH_EVENT_HOSTS]; /**< hosts hit */
    uint32_t n_hosts;                       /**< entries of hosts[] */
    uint32_t metrics;                       /**< bit m: metric m hit on every listed host */
    uint32_t start;                         /**< first anomalous step */
    uint32_t end;                           /**< last anomalous step (the shift may persist) */
    uint32_t win_last;                      /**< last step of the labelled window */
} nops_synth_event;

/** A generated fleet. Series s is metric s % NOPS_SYNTH_METRICS of host s / NOPS_SYNTH_METRICS. */
typedef struct nops_synth_fleet {
    nops_synth_fleet_opts o; /**< the settings it was made with */
    uint32_t n_series;       /**< hosts · NOPS_SYNTH_METRICS */
    float *v;                /**< ticks × n_series values, one row per step */
    uint32_t *host_service;  /**< service index of each host */
    uint32_t *host_region;   /**< region index of each host */
    uint32_t *series_host;   /**< host of each series */
    nops_synth_event *ev;    /**< injected events, by start */
    uint32_t n_ev;           /**< how many */
} nops_synth_fleet;

void nops_synth_fleet_opts_default(nops_synth_fleet_opts *o);
/** Generate a fleet; NOPS_INVAL for impossible settings (too few hosts for the events, too
 *  few ticks after quiet_ticks), NOPS_NOMEM when memory is refused. `o` is copied. */
nops_err nops_synth_fleet_new(const nops_synth_fleet_opts *o, uint64_t seed,
                              nops_synth_fleet **out);
void nops_synth_fleet_destroy(nops_synth_fleet *f);
/** Telegraf-like series name of metric m ("cpu_usage_user", ...). */
const char *nops_synth_metric_name(uint32_t m);
const char *nops_synth_service_name(uint32_t s);
const char *nops_synth_region_name(uint32_t r);
/** Host name of host h ("checkout-007"): written to buf (cap bytes). */
void nops_synth_host_name(const nops_synth_fleet *f, uint32_t h, char *buf, size_t cap);
/** The events as scorer truth: `out` holds n_ev entries. */
void nops_synth_fleet_truth(const nops_synth_fleet *f, nops_synth_event_truth *out);

#endif
