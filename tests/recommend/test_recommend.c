/*
 * test_recommend.c — ranking against a generated history whose right answers are known
 * (app/history.c: per incident kind, playbooks with known true success rates; for some kinds
 * the most used playbook is a poor one), through the real index directory and recommender:
 * the rarer better playbook ranks first, an unrelated incident gets "no similar history",
 * held-out top-1 accuracy ≥ 0.9, a rebuilt index is picked up while queries run, and broken
 * index directories are refused with a sentence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "app/history.h"
#include "recommend/recommend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-reco-XXXXXX";

/* Write `n` generated runs (seed) as a new generation of dir. */
static void build(const char *dir, size_t n, uint64_t seed)
{
    char err[512];
    nops_histdir_writer *w = nops_histdir_begin(dir, NOPS_INDEX_AUTO, err, sizeof err);
    assert_non_null(w);
    history_gen g;
    history_init(&g, seed);
    nops_redactor *red = nops_redactor_new("test-key", err, sizeof err);
    for (size_t i = 0; i < n; i++) {
        json_t *run = history_run(&g);
        float v[NOPS_EMBED_DIM];
        nops_run_meta m;
        if (nops_vector_prepare_run(red, run, v, &m, NULL, err, sizeof err) != NOPS_OK)
            fail_msg("run %zu: %s", i, err); /* as vectorize takes it */
        assert_int_equal(nops_histdir_add(w, v, &m), NOPS_OK);
        json_decref(run);
    }
    nops_redactor_destroy(red);
    if (nops_histdir_commit(w, "test", 0, err, sizeof err) != NOPS_OK)
        fail_msg("commit: %s", err);
}

static nops_recommender *open_reco(const char *dir)
{
    nops_reco_params p = {.neighbours = 100, .min_similarity = 0.5, .prior_weight = 2,
                          .reload_s = 1};
    snprintf(p.index_dir, sizeof p.index_dir, "%s", dir);
    char err[512];
    nops_recommender *r = nops_recommender_new(&p, err, sizeof err);
    if (!r)
        fail_msg("recommender: %s", err);
    return r;
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(g_dir));
    build(g_dir, 6000, 7);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *top_playbook(nops_recommender *r, json_t *inc, json_t **keep)
{
    char err[256];
    json_t *out = NULL;
    if (nops_recommend(r, inc, 3, &out, err, sizeof err) != NOPS_OK)
        fail_msg("recommend: %s", err);
    *keep = out;
    return json_string_value(json_object_get(json_array_get(out, 0), "playbook_id"));
}

/* The most used playbook for latency spikes (restart-pod, 30 % success) must lose to the rarer
 * scale-out (92 %); for deploy regressions rollback-deploy must win. */
static void test_rarer_better_playbook_wins(void **state)
{
    (void)state;
    nops_recommender *r = open_reco(g_dir);
    history_gen g;
    history_init(&g, 999);
    for (int k = 0; k < HISTORY_KINDS; k++) {
        json_t *inc = history_incident(&g, k), *out;
        const char *top = top_playbook(r, inc, &out);
        if (!top || strcmp(top, history_best_playbook(k)) != 0)
            fail_msg("%s: top is %s, expected %s", history_kind(k), top ? top : "(none)",
                     history_best_playbook(k));
        json_t *first = json_array_get(out, 0);
        assert_true(json_real_value(json_object_get(first, "confidence")) > 0.5);
        assert_true(json_array_size(json_object_get(first, "evidence")) > 0);
        assert_non_null(strstr(json_string_value(json_object_get(first, "justification")),
                               "succeeded"));
        /* scores are ordered */
        for (size_t i = 1; i < json_array_size(out); i++)
            assert_true(json_real_value(json_object_get(json_array_get(out, i - 1), "score")) >=
                        json_real_value(json_object_get(json_array_get(out, i), "score")));
        json_decref(out);
        json_decref(inc);
    }
    nops_recommender_destroy(r);
}

static void test_no_similar_history(void **state)
{
    (void)state;
    nops_recommender *r = open_reco(g_dir);
    json_t *inc = json_pack("{s:{s:s}, s:s, s:[s]}", "labels", "team", "data-platform",
                            "summary", "kafka consumer lag keeps growing on the billing "
                            "export", "metrics", "kafka_consumergroup_lag");
    json_t *out;
    const char *top = top_playbook(r, inc, &out);
    assert_null(top);
    json_t *first = json_array_get(out, 0);
    assert_int_equal(json_array_size(out), 1);
    assert_true(json_real_value(json_object_get(first, "confidence")) == 0);
    assert_non_null(strstr(json_string_value(json_object_get(first, "justification")),
                           "No similar past runs"));
    json_decref(out);
    json_decref(inc);
    /* nothing to embed at all: refused */
    char err[256];
    json_t *empty = json_object();
    assert_int_equal(nops_recommend(r, empty, 3, &out, err, sizeof err), NOPS_PARSE);
    json_decref(empty);
    nops_recommender_destroy(r);
}

static void test_heldout_accuracy(void **state)
{
    (void)state;
    nops_recommender *r = open_reco(g_dir);
    history_gen g;
    history_init(&g, 12345);
    int right = 0, n = 600, miss[HISTORY_KINDS] = {0};
    for (int i = 0; i < n; i++) {
        int k = i % HISTORY_KINDS;
        json_t *inc = history_incident(&g, k), *out;
        const char *top = top_playbook(r, inc, &out);
        right += top && strcmp(top, history_best_playbook(k)) == 0;
        if (!(top && strcmp(top, history_best_playbook(k)) == 0))
            miss[k]++;
        json_decref(out);
        json_decref(inc);
    }
    double acc = (double)right / n;
    for (int k = 0; k < HISTORY_KINDS; k++)
        if (miss[k])
            print_message("  %s: %d of %d missed\n", history_kind(k), miss[k], n / HISTORY_KINDS);
    print_message("held-out top-1 accuracy: %.3f (%d of %d)\n", acc, right, n);
    assert_true(acc >= 0.9);
    nops_recommender_destroy(r);
}

typedef struct querier {
    nops_recommender *r;
    volatile bool stop;
    int done, failed;
} querier;

static void *query_loop(void *arg)
{
    querier *q = arg;
    history_gen g;
    history_init(&g, 4242);
    while (!q->stop) {
        json_t *inc = history_incident(&g, q->done % HISTORY_KINDS), *out = NULL;
        char err[256];
        if (nops_recommend(q->r, inc, 3, &out, err, sizeof err) != NOPS_OK ||
            !json_array_size(out))
            q->failed++;
        json_decref(out);
        json_decref(inc);
        q->done++;
    }
    return NULL;
}

/* A rebuild swaps the generation while queries run: none fails, the new one is picked up. */
static void test_swap_under_queries(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-reco-swap-XXXXXX";
    assert_non_null(mkdtemp(dir));
    build(dir, 1500, 1);
    nops_recommender *r = open_reco(dir);
    size_t runs;
    uint64_t gen;
    nops_recommender_info(r, &runs, &gen);
    assert_int_equal(runs, 1500);
    assert_int_equal(gen, 1);
    querier q[2] = {{.r = r}, {.r = r}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, query_loop, &q[i]), 0);
    build(dir, 2500, 2);
    build(dir, 3500, 3);
    for (int i = 0; i < 100; i++) { /* the reload thread checks every second */
        nops_recommender_info(r, &runs, &gen);
        if (gen == 3)
            break;
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    for (int i = 0; i < 2; i++) {
        q[i].stop = true;
        pthread_join(t[i], NULL);
        assert_int_equal(q[i].failed, 0);
        assert_true(q[i].done > 0);
    }
    assert_int_equal(gen, 3);
    assert_int_equal(runs, 3500);
    /* only the two newest generations stay on disk */
    char p[256];
    snprintf(p, sizeof p, "%s/gen-1", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/gen-2/runs.faiss", dir);
    assert_int_equal(access(p, F_OK), 0);
    nops_recommender_destroy(r);
    snprintf(p, sizeof p, "rm -rf %s", dir);
    assert_int_equal(system(p), 0);
}

/* Broken directories are refused with a sentence naming the problem. */
static void test_bad_directories(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-reco-bad-XXXXXX", cmd[512], err[512];
    assert_non_null(mkdtemp(dir));
    build(dir, 300, 5);
    nops_histdir *h = nops_histdir_open(dir, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(nops_histdir_count(h), 300);
    nops_histdir_close(h);
    struct { const char *edit, *needle; } cases[] = {
        {"sed -i 's/\"dimension\": 256/\"dimension\": 128/' %s/current/manifest.json",
         "dimension 128"},
        {"sed -i 's/nops-embed-1/nops-embed-0/' %s/current/manifest.json", "embedder version"},
        {"truncate -s 1000 %s/current/runs.faiss", "runs.faiss"},
        {"truncate -s 100 %s/current/runs.meta", "runs.meta"},
        {"rm %s/current/manifest.json", "not an index directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        build(dir, 300, 5); /* a fresh good generation, then break it */
        snprintf(cmd, sizeof cmd, cases[i].edit, dir);
        assert_int_equal(system(cmd), 0);
        err[0] = '\0';
        assert_null(nops_histdir_open(dir, err, sizeof err));
        if (!strstr(err, cases[i].needle))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].needle);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rarer_better_playbook_wins),
        cmocka_unit_test(test_no_similar_history),
        cmocka_unit_test(test_heldout_accuracy),
        cmocka_unit_test(test_swap_under_queries),
        cmocka_unit_test(test_bad_directories),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
