/*
 * demo.h — pieces of `neuralops demo` kept apart from its main loop (app/ only).
 */
#ifndef NOPS_APP_DEMO_H
#define NOPS_APP_DEMO_H

#include "app/cli.h"

/* Write a generated history of `runs` runs to the data dir and vectorize it into
 * recommend.index_dir; false (message printed) on failure. */
bool demo_history(app_ctx *ctx, size_t runs);
/* Print recommendations for up to `max` of the incidents in the data dir, largest first. */
void demo_recommend(app_ctx *ctx, nops_recommender *r, size_t max);

#endif
