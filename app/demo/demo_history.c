/*
 * demo_history.c — the demo's remediation history: a generated workflow_runs history written
 * to the data dir, vectorized at start like `neuralops vectorize` would, and a recommendation
 * printed for each of the larger incidents the demo found.
 */
#include "app/demo/demo.h"
#include "synth/history.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool demo_history(app_ctx *ctx, size_t runs)
{
    char path[1024];
    if (!app_data_dir(ctx, "demo")) /* a fresh checkout */
        return false;
    snprintf(path, sizeof path, "%s/history.jsonl", ctx->storage.data_dir);
    struct stat sb;
    if (stat(path, &sb) == 0 && sb.st_size > 0) { /* kept: it holds the runs the demo added */
        const uint64_t t0 = nops_now_ns();
        if (app_vectorize_jsonl(ctx, path, ctx->recommend.index_dir, true) != NOPS_EXIT_OK)
            return false;
        printf("History: %s (from an earlier run, with the runs executed since; delete it for a "
               "fresh one) redacted and vectorized into %s in %.1f s\n",
               path, ctx->recommend.index_dir, (double)(nops_now_ns() - t0) / 1e9);
        return true;
    }
    FILE *f = nops_file_fopen(path, "w");
    if (!f) {
        fprintf(stderr, "neuralops demo: cannot write %s: %s\n", path, strerror(errno));
        return false;
    }
    const bool failed = history_write_jsonl(f, runs, 2024, NULL) != 0;
    if (fclose(f) != 0 || failed) {
        fprintf(stderr, "neuralops demo: cannot write %s: %s\n", path, strerror(errno));
        return false;
    }
    const uint64_t t0 = nops_now_ns();
    if (app_vectorize_jsonl(ctx, path, ctx->recommend.index_dir, true) != NOPS_EXIT_OK)
        return false;
    printf("History: %zu past remediation runs (%s) redacted and vectorized into %s in %.1f s\n",
           runs, path, ctx->recommend.index_dir, (double)(nops_now_ns() - t0) / 1e9);
    return true;
}

/* The last record of each incident and every signal, from the data dir's JSONL files. */
static json_t *load_latest(const char *path, bool by_id_latest)
{
    json_t *all = json_object();
    FILE *f = nops_file_fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    while (f && getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(o, "id"));
        if (id && (by_id_latest || !json_object_get(all, id)))
            json_object_set(all, id, o);
        json_decref(o);
    }
    free(line);
    if (f)
        fclose(f);
    return all;
}

json_t *demo_recommend(app_ctx *ctx, nops_recommender *r, size_t max, char *pb_out,
                       size_t pb_cap)
{
    json_t *first = NULL;
    pb_out[0] = '\0';
    char path[1024];
    snprintf(path, sizeof path, "%s/incidents.jsonl", ctx->storage.data_dir);
    json_t *incs = load_latest(path, true);
    snprintf(path, sizeof path, "%s/signals.jsonl", ctx->storage.data_dir);
    json_t *sigs = load_latest(path, false);
    /* the incidents with the most signals first */
    const char *id;
    json_t *inc, *order = json_array();
    json_object_foreach(incs, id, inc) json_array_append(order, inc);
    size_t n = json_array_size(order);
    printf("\nRecommendations for the largest incidents found (POST /recommend does the same):\n");
    for (size_t shown = 0; shown < max && shown < n; shown++) {
        size_t best = 0;
        json_int_t most = -1;
        for (size_t i = 0; i < json_array_size(order); i++) {
            json_int_t c = json_integer_value(json_object_get(json_array_get(order, i),
                                                              "signal_count"));
            if (c > most) {
                most = c;
                best = i;
            }
        }
        json_t *x = json_deep_copy(json_array_get(order, best));
        json_array_remove(order, best);
        json_t *full = json_array();
        size_t i;
        json_t *sid;
        json_array_foreach(json_object_get(x, "signals"), i, sid) {
            json_t *s = json_object_get(sigs, json_string_value(sid));
            if (s)
                json_array_append(full, s);
        }
        json_object_set_new(x, "signals", full);
        json_t *out = NULL;
        char err[256];
        const char *summary = json_string_value(json_object_get(x, "summary"));
        printf("  %s: %.90s\n", json_string_value(json_object_get(x, "id")),
               summary ? summary : "");
        if (nops_recommend(r, x, 2, &out, err, sizeof err) != NOPS_OK) {
            printf("      no recommendation: %s\n", err);
        } else {
            const char *top = json_string_value(json_object_get(json_array_get(out, 0),
                                                                "playbook_id"));
            if (!first && top) {
                first = json_incref(x);
                snprintf(pb_out, pb_cap, "%s", top);
            }
            json_array_foreach(out, i, sid) {
                const char *pb = json_string_value(json_object_get(sid, "playbook_id"));
                printf("      %s %-20s score %.2f, confidence %.2f\n", i ? "then" : "->  ",
                       pb ? pb : "(none)", json_real_value(json_object_get(sid, "score")),
                       json_real_value(json_object_get(sid, "confidence")));
            }
        }
        json_decref(out);
        json_decref(x);
    }
    json_decref(order);
    json_decref(incs);
    json_decref(sigs);
    return first;
}
