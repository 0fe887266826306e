/*
 * history.h — a synthetic history of remediation runs (synth/, linked by app, bench and tests):
 * the workflow_runs that `neuralops vectorize` learns from, for the demo, the tests and the
 * benchmarks.
 *
 * Six incident kinds (the loadgen's four plus disk_pressure and traffic_drop), each with two or
 * three candidate playbooks used at different frequencies and succeeding at different true
 * rates — for some kinds the most used playbook is not the best one. Runs carry realistic
 * summaries, signals and notes with PII sprinkled in (e-mails, IPs, tokens, passwords, phone
 * numbers) for the redactor to remove.
 */
#ifndef NOPS_SYNTH_HISTORY_H
#define NOPS_SYNTH_HISTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define HISTORY_KINDS 6

typedef struct history_gen {
    uint64_t rng;
    uint64_t next_id;
} history_gen;

void history_init(history_gen *g, uint64_t seed);
/** Kind name of index k (0..HISTORY_KINDS−1). */
const char *history_kind(int k);
/** The playbook with the highest true success rate for kind k. */
const char *history_best_playbook(int k);
/** One run as a workflow_runs JSON object (new reference). */
json_t *history_run(history_gen *g);
/** `n` runs from a generator seeded with `seed`, one compact JSON object a line, to `f` (the
 *  caller keeps, flushes and closes `f`); `progress` (may be NULL) is called after every
 *  million runs. 0, or the errno of the first failure (ENOMEM when a run could not be made):
 *  the writing stops there. */
int history_write_jsonl(FILE *f, size_t n, uint64_t seed, void (*progress)(size_t done, size_t n));
/** One incident of kind k (the Incident shape of api/openapi.json with full signals; new reference). */
json_t *history_incident(history_gen *g, int k);

#endif
