/*
 * score.h — scoring anomaly detections against labelled truth (synth/, linked by bench and
 * tests): the early-detection window score of the Numenta Anomaly Benchmark for labelled series,
 * and event scoring for a fleet (recall and precision per event, false signals per 100k points,
 * how signals were grouped into incidents).
 *
 * Everything here is pure computation over caller-owned arrays: no allocation except the
 * per-call scratch of nops_synth_event_score (freed before it returns), no I/O, no globals
 * beyond the constant profile table. Any thread may call any function; calls share nothing.
 *
 * NAB window score (per labelled window, in point indices; see score.c for the published
 * definition this follows):
 *   - a window earns once: tp·S(pos)/S(−1) for its earliest detection, where
 *     pos = −(last − i + 1)/width and S(y) = 2/(1+e^{5y}) − 1 (the scaled sigmoid), so the first
 *     point of a window earns the full tp weight and the reward falls towards its right edge;
 *     later detections inside the same window are neither rewarded nor charged;
 *   - a window without a detection costs −fn;
 *   - each detection outside every window costs fp·S(p), p = distance past the end of the
 *     previous window in widths of that window (S(p) is −1 before any window and beyond three
 *     widths, close to 0 just after a window);
 *   - detections in the probationary stretch at the start of a series are ignored;
 *   - the normalised score is 100·(raw − null)/(perfect − null) over a whole corpus, with
 *     null = −fn·windows (no detection at all) and perfect = tp·windows.
 */
#ifndef NOPS_SYNTH_SCORE_H
#define NOPS_SYNTH_SCORE_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

/** Weights of one NAB application profile. */
typedef struct nops_synth_nab_profile {
    const char *name; /**< "standard", "reward_low_FP_rate", "reward_low_FN_rate" */
    double tp;        /**< weight of a detected window */
    double fp;        /**< weight of a detection outside every window */
    double fn;        /**< weight of a missed window */
} nops_synth_nab_profile;

#define NOPS_SYNTH_NAB_PROFILES 3
/** The three published profiles, standard first. */
extern const nops_synth_nab_profile nops_synth_nab_profiles[NOPS_SYNTH_NAB_PROFILES];

/** A labelled window: point indices first..last, both included. */
typedef struct nops_synth_window {
    uint32_t first; /**< first point of the window */
    uint32_t last;  /**< last point of the window (>= first) */
} nops_synth_window;

/** Running totals over the series of a corpus (zero it before the first series). */
typedef struct nops_synth_nab_tally {
    double raw;       /**< sum of window rewards, misses and false-positive costs */
    double fp_cost;   /**< the false-positive part of raw (<= 0) */
    uint32_t windows; /**< labelled windows scored */
    uint32_t hit;     /**< windows with a detection */
    uint32_t fp;      /**< detections outside every window (probation excluded) */
    uint64_t points;  /**< points scored (probation excluded) */
} nops_synth_nab_tally;

/** The scaled sigmoid S(y) = 2/(1+e^{5y}) − 1 for y < 3, −1 from 3 on. */
double nops_synth_nab_sigmoid(double y);

/**
 * Score one series of `n` points: windows `w[0..nw)` sorted and disjoint, detections
 * `det[0..nd)` as point indices in ascending order (repeats allowed); detections below
 * `probation` are ignored. Adds the series to `*t`.
 * @retval NOPS_INVAL a window out of range or out of order, or detections out of order.
 */
nops_err nops_synth_nab_score(const nops_synth_nab_profile *p, uint32_t n,
                              const nops_synth_window *w, size_t nw, const uint32_t *det, size_t nd,
                              uint32_t probation, nops_synth_nab_tally *t);

/** 100·(raw − null)/(perfect − null) of a tally: 100 perfect, 0 no better than silence. */
double nops_synth_nab_normalised(const nops_synth_nab_profile *p, const nops_synth_nab_tally *t);

/* ---- fleet events ------------------------------------------------------------------------ */

#define NOPS_SYNTH_EVENT_SERIES 32 /**< affected series listed per event */

/** Kinds of fleet events the grouping figures tell apart. */
typedef enum nops_synth_event_class {
    NOPS_SYNTH_EV_SINGLE = 0,  /**< one series of one host (spike, variance burst) */
    NOPS_SYNTH_EV_HOST = 1,    /**< several metrics of one host together */
    NOPS_SYNTH_EV_SERVICE = 2, /**< several hosts of one service together */
} nops_synth_event_class;

/** One labelled event, in series indices and time steps (ticks). */
typedef struct nops_synth_event_truth {
    nops_synth_event_class cls;               /**< what kind of grouping it calls for */
    uint32_t series[NOPS_SYNTH_EVENT_SERIES]; /**< affected series */
    uint32_t n_series;                        /**< entries of series[] */
    uint32_t first;                           /**< first tick of the window */
    uint32_t last;                            /**< last tick of the window (included) */
} nops_synth_event_truth;

/** One signal as scored: its series, its tick, and the incident it joined (−1: none). */
typedef struct nops_synth_detection {
    uint32_t series;  /**< series index */
    uint32_t tick;    /**< time step */
    int32_t incident; /**< incident index 0..n_incidents−1, or −1 */
} nops_synth_detection;

/** Figures of one run over a fleet. */
typedef struct nops_synth_event_figures {
    uint32_t events;            /**< labelled events */
    uint32_t found;             /**< events with at least one signal in their window */
    double recall;              /**< found / events */
    uint64_t signals;           /**< signals scored */
    uint64_t true_signals;      /**< signals on an event's series inside its window */
    uint64_t false_signals;     /**< the others */
    double precision;           /**< true_signals / signals (1 when there are none) */
    double false_per_100k;      /**< false_signals per 100,000 points */
    double mean_delay;          /**< ticks from window start to an event's first signal */
    uint32_t host_events;       /**< NOPS_SYNTH_EV_HOST events */
    uint32_t host_one;          /**< ... whose signals all joined one incident with no other host */
    double host_share;          /**< host_one / host_events (0 when none) */
    uint32_t service_events;    /**< NOPS_SYNTH_EV_SERVICE events */
    uint32_t service_one;       /**< ... found on ≥ 2 hosts, all in one incident with no host
                                     outside the event */
    uint32_t incidents;         /**< incidents that received a signal */
    uint32_t false_incidents;   /**< incidents holding no true signal */
    double incidents_per_event; /**< incidents / events */
} nops_synth_event_figures;

/** What became of one event: its signals and the incidents they joined. */
typedef struct nops_synth_event_outcome {
    uint32_t signals;     /**< true signals of the event */
    uint32_t delay;       /**< steps from the window's start to the first (when signals > 0) */
    uint32_t incidents;   /**< distinct incidents those signals joined (−1 ones not counted) */
    uint32_t unplaced;    /**< true signals the correlator placed in no incident */
    uint32_t hosts;       /**< distinct hosts of the event among its true signals */
    uint32_t other_hosts; /**< distinct hosts outside the event in those incidents */
} nops_synth_event_outcome;

/**
 * The outcome of event `e` of `ev[0..nev)` given detections `d[0..nd)` (see
 * nops_synth_event_score for the terms). Counts of distinct incidents and hosts stop at 64.
 * @retval NOPS_INVAL e or a series index out of range.
 */
nops_err nops_synth_event_outcome_of(const nops_synth_event_truth *ev, size_t nev, size_t e,
                                     const uint32_t *series_host, uint32_t n_series,
                                     const nops_synth_detection *d, size_t nd,
                                     nops_synth_event_outcome *out);

/** Index of the event whose window holds detection `d` on one of its series, or −1. */
int nops_synth_event_match(const nops_synth_event_truth *ev, size_t nev,
                           const nops_synth_detection *d);

/**
 * Score detections `d[0..nd)` (any order) against events `ev[0..nev)` over a fleet of
 * `n_series` series whose hosts are `series_host[0..n_series)`, `points` points in all, with
 * incidents numbered 0..n_incidents−1. A signal is true when some event lists its series and
 * its tick lies in that event's window; an event is found when it has a true signal.
 * @retval NOPS_INVAL a series or incident index out of range; NOPS_NOMEM scratch refused.
 */
nops_err nops_synth_event_score(const nops_synth_event_truth *ev, size_t nev,
                                const uint32_t *series_host, uint32_t n_series, uint64_t points,
                                const nops_synth_detection *d, size_t nd, uint32_t n_incidents,
                                nops_synth_event_figures *f);

#endif
