/*
 * test_recommend.c — ranking against a generated history whose right answers are known
 * (synth/history.c: per incident kind, playbooks with known true success rates; for some kinds
 * the most used playbook is a poor one), through the real index directory and recommender:
 * the rarer better playbook ranks first, an unrelated incident gets "no similar history",
 * held-out top-1 accuracy ≥ 0.9, a rebuilt index is picked up while queries run, broken or
 * corrupted index directories are refused with a sentence (flipped bytes fail the manifest's
 * checksums; a running recommender keeps the generation it has), and whatever the distances —
 * from a hostile index with valid checksums, or fed straight to the ranking — every score,
 * confidence and similarity stays in its range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "synth/history.h"
#include "tests/support/recoutil.h"
#include "recommend/recommend.h"
#include "recommend/reco_int.h"
#include "parse/parse.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-reco-XXXXXX";

static void build(const char *dir, size_t n, uint64_t seed)
{
    tu_history_index(dir, n, seed);
}

static nops_recommender *open_reco(const char *dir)
{
    return tu_reco_open(dir, 1);
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
        /* each past run says when it ran (the generated runs all have finished_at) */
        const char *when = json_string_value(
            json_object_get(json_array_get(json_object_get(first, "evidence"), 0), "finished_at"));
        int64_t when_ns = 0;
        assert_non_null(when);
        assert_int_equal(nops_ingest_parse_timestamp(when, strlen(when), &when_ns, NULL), NOPS_OK);
        assert_true(when_ns > 0);
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

/* Flip `n` bytes spread over the middle of a file (past any header), as a bad disk would. */
static void flip_bytes(const char *path, int n)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 64);
    for (int i = 0; i < n; i++) {
        long at = size / 4 + (long)i * (size / 2) / n;
        assert_int_equal(fseek(f, at, SEEK_SET), 0);
        int c = fgetc(f);
        assert_int_equal(fseek(f, at, SEEK_SET), 0);
        fputc(c ^ 0x5a, f);
    }
    assert_int_equal(fclose(f), 0);
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
        {"sed -i 's/nops-embed-2/nops-embed-0/' %s/current/manifest.json", "embedder version"},
        {"truncate -s 1000 %s/current/runs.faiss", "runs.faiss"},
        {"truncate -s 100 %s/current/runs.meta", "runs.meta"},
        {"rm %s/current/manifest.json", "not an index directory"},
        {"FLIP 2000 %s/current/runs.faiss", "runs.faiss does not match its SHA-256"},
        {"FLIP 1 %s/current/runs.meta", "runs.meta does not match its SHA-256"},
        {"sed -i 's/\"sha256\": \"[0-9a-f]*\"/\"sha256\": \"x\"/' %s/current/manifest.json",
         "no valid checksums"},
        {"cp $(ls -d %s/gen-* | sort -V | tail -n 2 | head -n 1)/runs.faiss %s/current/",
         "runs.faiss does not match its SHA-256"}, /* the older generation's (other runs) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        build(dir, 300, i == 8 ? 6 : 5); /* a fresh good generation, then break it */
        if (strncmp(cases[i].edit, "FLIP ", 5) == 0) {
            char path[256];
            snprintf(path, sizeof path, strchr(cases[i].edit + 5, ' ') + 1, dir);
            flip_bytes(path, atoi(cases[i].edit + 5));
        } else {
            snprintf(cmd, sizeof cmd, cases[i].edit, dir, dir);
            assert_int_equal(system(cmd), 0);
        }
        err[0] = '\0';
        assert_null(nops_histdir_open(dir, err, sizeof err));
        if (!strstr(err, cases[i].needle))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].needle);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Log lines, for a test that waits for the reload thread's warning. */
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log[8192];

static void log_sink(void *ud, nops_log_level level, const char *line)
{
    (void)ud;
    pthread_mutex_lock(&g_log_mu);
    if (level >= NOPS_LOG_WARN && strlen(g_log) + strlen(line) + 2 < sizeof g_log) {
        strcat(g_log, line);
        strcat(g_log, "\n");
    }
    pthread_mutex_unlock(&g_log_mu);
}

static bool log_has(const char *a, const char *b)
{
    pthread_mutex_lock(&g_log_mu);
    const char *p = strstr(g_log, a);
    bool yes = p && strstr(p, b);
    pthread_mutex_unlock(&g_log_mu);
    return yes;
}

/* A running recommender meets a corrupted new generation: it says so, keeps answering from the
 * generation it has, and takes the next good one. At start, a corrupted current generation is
 * refused with a sentence. */
static void test_corrupt_generation_is_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-reco-flip-XXXXXX", cmd[1024], err[512];
    assert_non_null(mkdtemp(dir));
    build(dir, 1200, 21);
    nops_recommender *r = open_reco(dir);
    nops_log_set_sink(log_sink, NULL);
    /* gen-2: a copy of gen-1 with 2,000 flipped bytes in runs.faiss, made current atomically */
    snprintf(cmd, sizeof cmd, "cp -r %s/gen-1 %s/gen-2 && sed -i 's/\"generation\": 1/"
             "\"generation\": 2/' %s/gen-2/manifest.json", dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/gen-2/runs.faiss", dir);
    flip_bytes(path, 2000);
    snprintf(cmd, sizeof cmd, "ln -s gen-2 %s/next && mv -T %s/next %s/current", dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    for (int i = 0; i < 600 && !log_has("keeping the loaded index", "runs.faiss"); i++)
        nanosleep(&(struct timespec){0, 50000000}, NULL); /* the thread checks every second */
    assert_true(log_has("keeping the loaded index", "does not match its SHA-256"));
    size_t runs;
    uint64_t gen;
    nops_recommender_info(r, &runs, &gen);
    assert_int_equal(gen, 1);
    assert_int_equal(runs, 1200);
    history_gen g;
    history_init(&g, 77);
    json_t *inc = history_incident(&g, 0), *out = NULL;
    assert_int_equal(nops_recommend(r, inc, 3, &out, err, sizeof err), NOPS_OK);
    json_decref(out);
    /* a new start on the corrupt generation is refused, naming the file */
    nops_reco_params p = {.neighbours = 100, .min_similarity = 0.5, .prior_weight = 2,
                          .reload_s = 1};
    snprintf(p.index_dir, sizeof p.index_dir, "%s", dir);
    err[0] = '\0';
    assert_null(nops_recommender_new(&p, err, sizeof err));
    assert_non_null(strstr(err, "runs.faiss does not match its SHA-256"));
    /* the next good generation is taken */
    build(dir, 1300, 22);
    for (int i = 0; i < 600 && gen != 3; i++) {
        nanosleep(&(struct timespec){0, 50000000}, NULL);
        nops_recommender_info(r, &runs, &gen);
    }
    assert_int_equal(gen, 3);
    assert_int_equal(runs, 1300);
    nops_log_set_sink(NULL, NULL);
    json_decref(inc);
    nops_recommender_destroy(r);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void check_ranges(const json_t *arr)
{
    assert_true(json_is_array(arr) && json_array_size(arr) > 0);
    size_t i, j;
    json_t *e, *ev;
    json_array_foreach(arr, i, e) {
        double score = json_real_value(json_object_get(e, "score"));
        double conf = json_real_value(json_object_get(e, "confidence"));
        if (!(score >= 0 && score <= 1 && conf >= 0 && conf <= 1))
            fail_msg("score %g, confidence %g out of [0, 1]", score, conf);
        json_array_foreach(json_object_get(e, "evidence"), j, ev) {
            double sim = json_real_value(json_object_get(ev, "similarity"));
            if (!(sim >= -1 && sim <= 1))
                fail_msg("similarity %g out of [-1, 1]", sim);
        }
    }
}

static uint64_t g_prng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    g_prng ^= g_prng << 13;
    g_prng ^= g_prng >> 7;
    g_prng ^= g_prng << 17;
    return g_prng;
}

/* Property: whatever distances the index hands back — NaN, infinities, 1e38, denormals,
 * negative, ids out of range — the ranking keeps every number in its range. */
static void test_ranking_ranges_hold_for_any_distance(void **state)
{
    (void)state;
    char err[512];
    nops_histdir *h = nops_histdir_open(g_dir, err, sizeof err);
    assert_non_null(h);
    const float extreme[] = {NAN, INFINITY, -INFINITY, 1e38f, -1e38f, 3.4e38f, 1e19f, 1.0001f,
                             1, 0.99f, 0.5f, 0, -0.0f, 1e-45f, -0.5f, -1, -2, 7};
    const double min_sims[] = {0.5, 0, -1, 1};
    const size_t count = nops_histdir_count(h);
    /* the index's own calibration, none, and calibrations no index should give */
    nops__reco_calib calib[5];
    assert_int_equal(nops__reco_calibrate(h, &calib[0], err, sizeof err), NOPS_OK);
    assert_true(calib[0].ok && calib[0].nn_median > calib[0].background);
    calib[1] = (nops__reco_calib){.ok = false};
    calib[2] = (nops__reco_calib){.ok = true, .nn_median = NAN, .nn_low = NAN, .background = NAN};
    calib[3] = (nops__reco_calib){.ok = true, .nn_median = 0.2, .nn_low = 1, .background = 0.9};
    calib[4] = (nops__reco_calib){.ok = true, .nn_median = 1, .nn_low = 1, .background = 1};
    for (int round = 0; round < 4000; round++) {
        nops_reco_params p = {.neighbours = 100, .min_similarity = min_sims[round % 4],
                              .prior_weight = (round / 4) % 3 == 0 ? 0 : 2, .reload_s = 1};
        int k = 1 + (int)(next_rand() % 100);
        float sims[100];
        int64_t ids[100];
        for (int i = 0; i < k; i++) {
            uint64_t x = next_rand();
            sims[i] = x % 3 == 0 ? extreme[(x >> 8) % (sizeof extreme / sizeof extreme[0])]
                                 : (float)((double)(x >> 11) / 9007199254740992.0 * 4 - 2);
            ids[i] = (x >> 20) % 7 == 0 ? -1
                     : (x >> 20) % 7 == 1 ? (int64_t)(count + (x >> 40))
                                          : (int64_t)((x >> 24) % count);
        }
        const nops__reco_calib *c = round % 6 == 5 ? NULL : &calib[round % 6];
        json_t *out = nops__reco_rank(&p, h, c, ids, sims, k, 1 + round % 5);
        check_ranges(out);
        json_decref(out);
    }
    nops_histdir_close(h);
}

static void sha256_file(const char *path, char hex[65], long *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    unsigned char buf[65536], d[32];
    size_t n;
    *size = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(md, buf, n);
        *size += (long)n;
    }
    EVP_DigestFinal_ex(md, d, NULL);
    EVP_MD_CTX_free(md);
    fclose(f);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* A corrupted-but-accepted index: vectors scaled by 1e19 (and some NaN) written by someone
 * who also fixed the manifest's checksums. It loads; recommendations stay in range. */
static void test_hostile_index_with_valid_checksums(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-reco-hostile-XXXXXX", err[512], path[256];
    assert_non_null(mkdtemp(dir));
    build(dir, 800, 31);
    /* the writer itself takes embeddings only */
    nops_histdir_writer *w = nops_histdir_begin(dir, NOPS_INDEX_FLAT, err, sizeof err);
    float v[NOPS_EMBED_DIM] = {0};
    nops_run_meta m = {.run_id = "r", .playbook_id = "p"};
    assert_int_equal(nops_histdir_add(w, v, &m), NOPS_INVAL);
    v[0] = NAN;
    assert_int_equal(nops_histdir_add(w, v, &m), NOPS_INVAL);
    nops_histdir_abort(w);
    /* rebuild runs.faiss of gen-1 from hostile vectors */
    history_gen g;
    history_init(&g, 31);
    float *x = malloc(800 * NOPS_EMBED_DIM * sizeof *x);
    for (int i = 0; i < 800; i++) {
        json_t *run = history_run(&g);
        assert_int_equal(nops_embed_json(run, x + i * NOPS_EMBED_DIM), NOPS_OK);
        json_decref(run);
        for (int d = 0; d < NOPS_EMBED_DIM; d++)
            x[i * NOPS_EMBED_DIM + d] *= i % 10 == 0 ? NAN : 1e19f;
    }
    nops_vindex *ix = nops_vindex_new(NOPS_EMBED_DIM, NOPS_INDEX_FLAT, 800, err, sizeof err);
    assert_int_equal(nops_vindex_add(ix, x, 800, err, sizeof err), NOPS_OK);
    snprintf(path, sizeof path, "%s/current/runs.faiss", dir);
    assert_int_equal(nops_vindex_save(ix, path, err, sizeof err), NOPS_OK);
    nops_vindex_destroy(ix);
    free(x);
    char hex[65], mpath[256];
    long size;
    sha256_file(path, hex, &size);
    snprintf(mpath, sizeof mpath, "%s/current/manifest.json", dir);
    json_t *man = json_load_file(mpath, 0, NULL);
    json_t *entry = json_object_get(json_object_get(man, "files"), "runs.faiss");
    json_object_set_new(entry, "sha256", json_string(hex));
    json_object_set_new(entry, "size", json_integer(size));
    assert_int_equal(json_dump_file(man, mpath, JSON_INDENT(2)), 0);
    json_decref(man);
    /* accepted (its checksums are right) — and harmless */
    nops_recommender *r = open_reco(dir);
    history_init(&g, 32);
    for (int i = 0; i < 60; i++) {
        json_t *inc = history_incident(&g, i % HISTORY_KINDS), *out = NULL;
        assert_int_equal(nops_recommend(r, inc, 3, &out, err, sizeof err), NOPS_OK);
        check_ranges(out);
        json_decref(out);
        json_decref(inc);
    }
    nops_recommender_destroy(r);
    char cmd[128];
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
        cmocka_unit_test(test_corrupt_generation_is_refused),
        cmocka_unit_test(test_ranking_ranges_hold_for_any_distance),
        cmocka_unit_test(test_hostile_index_with_valid_checksums),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
