/*
 * quality.h — runs a detector over the labelled corpus and fleet of corpus.h and scores it
 * with score.h (synth/, for `neuralops-bench quality` and tests/synth/test_quality.c).
 *
 * Detectors: the engine (detect/detect.h's detector at the [detect] config table's defaults
 * unless other settings are given, its signals grouped by correlate/correlate.h at the
 * [correlate] defaults) and two reference baselines run the same way:
 *   - rolling z: z = (x − mean)/std over the previous W points (population std, verdicts once
 *     the window is full), |z| ≥ threshold; the plain detector the engine started from;
 *   - windowed Gaussian: the same over a long window (NAB's "windowedGaussian" keeps the last
 *     1,000 points, updated every point); verdicts from 60 points on.
 * A baseline signals at the first point of each run of points at or above its threshold (one
 * excursion, one signal, like the engine's FIRED), and the run's end clears the series for the
 * correlator. The same correlator groups the baselines' signals, so incident figures compare.
 *
 * Only public APIs of detect/ and correlate/ are used, so the runner measures whatever those
 * modules become. Each call creates and destroys its own detector and correlator; calls share
 * nothing and may run in different threads.
 */
#ifndef NOPS_SYNTH_QUALITY_H
#define NOPS_SYNTH_QUALITY_H

#include "correlate/correlate.h"
#include "detect/detect.h"
#include "synth/corpus.h"

/** What to run. */
typedef enum nops_synth_detector {
    NOPS_SYNTH_ENGINE = 0,    /**< detect.h + correlate.h */
    NOPS_SYNTH_ROLLING_Z = 1, /**< plain rolling z-score baseline */
    NOPS_SYNTH_WGAUSS = 2,    /**< windowed Gaussian baseline */
} nops_synth_detector;

/** Settings of a run. */
typedef struct nops_synth_run_opts {
    nops_synth_detector det;         /**< detector */
    double threshold;                /**< baselines: |z| at or above this signals */
    uint32_t window;                 /**< baselines: W points */
    const nops_detect_params *dp;    /**< engine settings; NULL: the config table's defaults.
                                          Every corpus series gets the seasonal baseline of
                                          nops_detect_season_for_step(dp, its step) */
    const nops_correlate_params *cp; /**< correlator settings; NULL: the defaults */
} nops_synth_run_opts;

/** Figures of a run over the corpus. */
typedef struct nops_synth_corpus_figures {
    nops_synth_nab_tally tally[NOPS_SYNTH_NAB_PROFILES]; /**< per profile, standard first */
    double score[NOPS_SYNTH_NAB_PROFILES];               /**< normalised NAB scores */
    nops_synth_nab_tally kind[NOPS_SYNTH_KINDS];         /**< standard profile, per series kind */
    uint64_t detections;                                 /**< signals in all */
} nops_synth_corpus_figures;

#define NOPS_SYNTH_MAX_OUTCOMES 64 /**< events whose outcome a fleet run reports */

/** Figures of a run over the fleet. */
typedef struct nops_synth_fleet_figures {
    nops_synth_event_figures ev; /**< recall, precision, false signals, grouping */
    uint64_t points;             /**< points fed */
    uint64_t correlate_refused;  /**< signals the correlator did not place (NOPS_FULL ...) */
    uint64_t false_by_metric[NOPS_SYNTH_METRICS]; /**< false signals per metric */
    uint64_t false_early; /**< false signals in the first 100 steps (warm-up) */
    nops_synth_event_outcome outcome[NOPS_SYNTH_MAX_OUTCOMES]; /**< per event, fleet order */
} nops_synth_fleet_figures;

/** The [detect] and [correlate] defaults from the modules' config tables. */
nops_err nops_synth_engine_defaults(nops_detect_params *dp, nops_correlate_params *cp, char *errstr,
                                    size_t errstr_size);

/** Run a detector over every series of the corpus and score it (all three NAB profiles). */
nops_err nops_synth_run_corpus(const nops_synth_corpus *c, const nops_synth_run_opts *o,
                               nops_synth_corpus_figures *fig, char *errstr, size_t errstr_size);

/** Run a detector and the correlator over the fleet, step by step, and score them. */
nops_err nops_synth_run_fleet(const nops_synth_fleet *f, const nops_synth_run_opts *o,
                              nops_synth_fleet_figures *fig, char *errstr, size_t errstr_size);

#endif
