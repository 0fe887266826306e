/*
 * demo.h — pieces of `neuralops demo` kept apart from its main loop (app/ only).
 */
#ifndef NOPS_APP_DEMO_DEMO_H
#define NOPS_APP_DEMO_DEMO_H

#include "app/cli.h"
#include "app/engine.h"

/* Write a generated history of `runs` runs to the data dir and vectorize it into
 * recommend.index_dir; false (message printed) on failure. */
bool demo_history(app_ctx *ctx, size_t runs);
/* Print recommendations for up to `max` of the incidents in the data dir, largest first; the
 * first incident that got one comes back (new reference, signals as objects, or NULL) with its
 * top playbook in pb_out. */
json_t *demo_recommend(app_ctx *ctx, nops_recommender *r, size_t max, char *pb_out,
                       size_t pb_cap);

/* Write the example playbooks (signed; the key pair made at the first run), the fleet script and
 * the policy under data_dir/playbooks and point [orchestrate] at them — unless
 * orchestrate.registry_dir is configured. False (message printed) on failure. */
bool demo_playbooks(app_ctx *ctx);
/* What the closed loop did (the engine's own suggestions, automatic runs, notifications, time to
 * remediation), then the first passed dry-run that waits for an approval is offered (when the
 * engine left none, the demo's operator suggests `top_pb` for `top`, the largest incident with
 * a recommendation; both may be NULL/""): approved
 * at once with `approve`, else by a y at the terminal or over the API (Ctrl-C gives up). */
void demo_loop_report(app_ctx *ctx, app_engine *api, unsigned long notifications, bool approve,
                      atomic_bool *stop, json_t *top, const char *top_pb);

/* The demo's notification receiver: an HTTP endpoint on 127.0.0.1 (any free port) that prints
 * one line per webhook notification it gets. Its URL goes into `url`; NULL + err on failure. */
typedef struct demo_receiver demo_receiver;
demo_receiver *demo_receiver_start(char *url, size_t cap, char *err, size_t errsz);
/* Notifications received so far. */
unsigned long demo_receiver_count(const demo_receiver *r);
void demo_receiver_stop(demo_receiver *r);

#endif
