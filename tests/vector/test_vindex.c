/*
 * test_vindex.c — the FAISS index layer: type names, exact search is exact, the ANN types reach
 * recall@10 ≥ 0.95 against it on clustered unit vectors of the embedding dimension (and AUTO on
 * history embeddings), save/load round-trips with the type recovered, bad files and bad
 * arguments are refused with a sentence, and concurrent searches agree with serial ones. The
 * index directory's writer knows the runs it holds with one string comparison per known run
 * (an append over the whole history again — the learning loop's restart — is not quadratic).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "synth/history.h"
#include "vector/histdir_int.h" /* nops__histdir_compares */
#include "vector/vector.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIM 256 /* = NOPS_EMBED_DIM */

static uint64_t g_rng = 88172645463325252ull;

static double urand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

static double nrand(void)
{
    double u = urand(), v = urand();
    return sqrt(-2 * log(u > 1e-12 ? u : 1e-12)) * cos(6.283185307179586 * v);
}

/* n unit vectors around `clusters` random centres. */
static float *clustered(size_t n, int dim, int clusters)
{
    float *c = malloc((size_t)clusters * dim * sizeof *c), *x = malloc(n * dim * sizeof *x);
    for (int i = 0; i < clusters * dim; i++)
        c[i] = (float)nrand();
    for (size_t i = 0; i < n; i++) {
        int k = (int)(urand() * clusters) % clusters;
        double norm = 0;
        for (int d = 0; d < dim; d++) {
            x[i * dim + d] = c[k * dim + d] + (float)(0.6 * nrand());
            norm += (double)x[i * dim + d] * x[i * dim + d];
        }
        for (int d = 0; d < dim; d++)
            x[i * dim + d] /= (float)sqrt(norm);
    }
    free(c);
    return x;
}

static nops_vindex *build(nops_index_type t, const float *x, size_t n, int dim)
{
    char err[256];
    nops_vindex *ix = nops_vindex_new(dim, t, n, err, sizeof err);
    if (!ix)
        fail_msg("new: %s", err);
    if (nops_vindex_train(ix, x, n, err, sizeof err) != NOPS_OK ||
        nops_vindex_add(ix, x, n, err, sizeof err) != NOPS_OK)
        fail_msg("build: %s", err);
    return ix;
}

static void test_type_names(void **state)
{
    const char *names[] = {"auto", "flat", "ivf", "hnsw"};
    for (int i = 0; i < 4; i++) {
        nops_index_type t = NOPS_INDEX_HNSW;
        assert_string_equal(nops_index_type_name((nops_index_type)i), names[i]);
        assert_int_equal(nops_index_type_parse(names[i], &t), NOPS_OK);
        assert_int_equal(t, (nops_index_type)i);
    }
    nops_index_type t;
    assert_int_equal(nops_index_type_parse("HNSW", &t), NOPS_INVAL);
    assert_int_equal(nops_index_type_parse("", &t), NOPS_INVAL);
    assert_int_equal(nops_index_type_parse(NULL, &t), NOPS_INVAL);
    assert_string_equal(nops_index_type_name((nops_index_type)9), "unknown");
}

static void test_bad_arguments(void **state)
{
    char err[256] = "";
    assert_null(nops_vindex_new(0, NOPS_INDEX_FLAT, 10, err, sizeof err));
    assert_true(strlen(err) > 0);
    assert_null(nops_vindex_new(DIM, (nops_index_type)7, 10, err, sizeof err));
    /* an IVF index wants training vectors, at least one per list, before any add */
    float *x = clustered(100, DIM, 3);
    nops_vindex *ix = nops_vindex_new(DIM, NOPS_INDEX_IVF, 100000, err, sizeof err);
    assert_non_null(ix);
    assert_int_equal(nops_vindex_train(ix, x, 100, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "training vectors"));
    err[0] = '\0';
    assert_int_equal(nops_vindex_add(ix, x, 100, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "must be trained"));
    nops_vindex_destroy(ix);
    /* k must be positive */
    ix = nops_vindex_new(DIM, NOPS_INDEX_FLAT, 100, err, sizeof err);
    assert_int_equal(nops_vindex_add(ix, x, 100, err, sizeof err), NOPS_OK);
    float s[1];
    int64_t id[1];
    assert_int_equal(nops_vindex_search(ix, x, 1, 0, s, id, err, sizeof err), NOPS_INVAL);
    assert_int_equal(nops_vindex_dim(ix), DIM);
    nops_vindex_destroy(ix);
    free(x);
}

static void test_flat_is_exact(void **state)
{
    const size_t n = 500;
    float *x = clustered(n, DIM, 5);
    nops_vindex *ix = build(NOPS_INDEX_FLAT, x, n, DIM);
    assert_int_equal(nops_vindex_count(ix), n);
    assert_int_equal(nops_vindex_type(ix), NOPS_INDEX_FLAT);
    char err[128];
    for (size_t q = 0; q < 20; q++) {
        float sims[5];
        int64_t ids[5];
        assert_int_equal(nops_vindex_search(ix, x + q * DIM, 1, 5, sims, ids, err, sizeof err),
                         NOPS_OK);
        assert_int_equal(ids[0], (int64_t)q); /* itself, similarity 1 */
        assert_true(fabsf(sims[0] - 1.0f) < 1e-5f);
        /* the brute-force best other neighbour agrees */
        double best = -2;
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (int d = 0; d < DIM; d++)
                s += (double)x[q * DIM + d] * x[j * DIM + d];
            if (j != q && s > best)
                best = s;
        }
        assert_true(fabs(sims[1] - best) < 1e-4);
    }
    /* fewer vectors than k: the rest are -1 */
    float sims[600];
    int64_t ids[600];
    assert_int_equal(nops_vindex_search(ix, x, 1, 600, sims, ids, err, sizeof err), NOPS_OK);
    assert_int_equal(ids[599], -1);
    nops_vindex_destroy(ix);
    free(x);
}

static double recall_at_10(const nops_vindex *ann, const nops_vindex *exact, const float *q,
                           size_t nq, int dim)
{
    char err[128];
    float s1[10], s2[10];
    int64_t a[10], e[10];
    size_t hit = 0;
    for (size_t i = 0; i < nq; i++) {
        assert_int_equal(nops_vindex_search(ann, q + i * dim, 1, 10, s1, a, err, sizeof err),
                         NOPS_OK);
        assert_int_equal(nops_vindex_search(exact, q + i * dim, 1, 10, s2, e, err, sizeof err),
                         NOPS_OK);
        for (int j = 0; j < 10; j++)
            for (int k = 0; k < 10; k++)
                hit += a[j] == e[k];
    }
    return (double)hit / (double)(nq * 10);
}

static void test_ann_recall(void **state)
{
    /* queries from the same clusters as the data, not in the index */
    const size_t n = 20000, nq = 200;
    float *x = clustered(n + nq, DIM, 50), *q = x + n * DIM;
    nops_vindex *exact = build(NOPS_INDEX_FLAT, x, n, DIM);
    const nops_index_type types[] = {NOPS_INDEX_IVF, NOPS_INDEX_HNSW};
    for (int t = 0; t < 2; t++) {
        nops_vindex *ann = build(types[t], x, n, DIM);
        assert_int_equal(nops_vindex_type(ann), types[t]);
        double r = recall_at_10(ann, exact, q, nq, DIM);
        print_message("%s recall@10 = %.3f\n", nops_index_type_name(types[t]), r);
        assert_true(r >= 0.95);
        nops_vindex_destroy(ann);
    }
    /* AUTO: exact below the threshold, IVF from it on */
    char err[128];
    nops_vindex *a = nops_vindex_new(DIM, NOPS_INDEX_AUTO, 1000, err, sizeof err);
    assert_int_equal(nops_vindex_type(a), NOPS_INDEX_FLAT);
    nops_vindex_destroy(a);
    a = nops_vindex_new(DIM, NOPS_INDEX_AUTO, NOPS_INDEX_AUTO_FLAT_MAX - 1, err, sizeof err);
    assert_int_equal(nops_vindex_type(a), NOPS_INDEX_FLAT);
    nops_vindex_destroy(a);
    a = nops_vindex_new(DIM, NOPS_INDEX_AUTO, NOPS_INDEX_AUTO_FLAT_MAX, err, sizeof err);
    assert_int_equal(nops_vindex_type(a), NOPS_INDEX_IVF);
    nops_vindex_destroy(a);
    nops_vindex_destroy(exact);
    free(x);
}

static void test_save_load_and_bad_files(void **state)
{
    const size_t n = 5000;
    float *x = clustered(n, DIM, 20);
    char dir[] = "/tmp/nops-vix-XXXXXX", path[128], err[512];
    assert_non_null(mkdtemp(dir));
    const nops_index_type types[] = {NOPS_INDEX_FLAT, NOPS_INDEX_IVF, NOPS_INDEX_HNSW};
    for (int t = 0; t < 3; t++) {
        nops_vindex *ix = build(types[t], x, n, DIM);
        snprintf(path, sizeof path, "%s/ix-%d.faiss", dir, t);
        assert_int_equal(nops_vindex_save(ix, path, err, sizeof err), NOPS_OK);
        nops_vindex *back = nops_vindex_load(path, DIM, err, sizeof err);
        if (!back)
            fail_msg("load: %s", err);
        assert_int_equal(nops_vindex_type(back), types[t]);
        assert_int_equal(nops_vindex_count(back), n);
        float s1[10], s2[10];
        int64_t i1[10], i2[10];
        for (int q = 0; q < 10; q++) {
            nops_vindex_search(ix, x + q * DIM, 1, 10, s1, i1, err, sizeof err);
            nops_vindex_search(back, x + q * DIM, 1, 10, s2, i2, err, sizeof err);
            assert_memory_equal(i1, i2, sizeof i1);
        }
        nops_vindex_destroy(back);
        nops_vindex_destroy(ix);
    }
    /* wrong dimension, missing, truncated, not an index */
    snprintf(path, sizeof path, "%s/ix-0.faiss", dir);
    assert_null(nops_vindex_load(path, DIM * 2, err, sizeof err));
    assert_non_null(strstr(err, "dimension"));
    snprintf(path, sizeof path, "%s/none.faiss", dir);
    assert_null(nops_vindex_load(path, DIM, err, sizeof err));
    assert_non_null(strstr(err, "not a readable FAISS index"));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "head -c 300 %s/ix-1.faiss > %s/cut.faiss && "
             "echo 'hello world' > %s/text.faiss", dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/cut.faiss", dir);
    assert_null(nops_vindex_load(path, DIM, err, sizeof err));
    assert_non_null(strstr(err, "not a readable FAISS index"));
    snprintf(path, sizeof path, "%s/text.faiss", dir);
    assert_null(nops_vindex_load(path, DIM, err, sizeof err));
    assert_non_null(strstr(err, "not a readable FAISS index"));
    /* a directory where the index should be; an unwritable path */
    assert_null(nops_vindex_load(dir, DIM, err, sizeof err));
    assert_non_null(strstr(err, "not a readable FAISS index"));
    nops_vindex *ix = build(NOPS_INDEX_FLAT, x, 10, DIM);
    snprintf(path, sizeof path, "%s/no/such/dir/ix.faiss", dir);
    assert_int_equal(nops_vindex_save(ix, path, err, sizeof err), NOPS_IO);
    assert_non_null(strstr(err, "cannot write"));
    nops_vindex_destroy(ix);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(x);
}

/* The default index settings on what they are tuned for: embeddings of a generated history
 * (redacted and embedded as vectorize does), queried with held-out incidents. */
static void test_history_recall(void **state)
{
    const size_t n = 60000, nq = 300;
    char err[256];
    nops_redactor *red = nops_redactor_new("k", err, sizeof err);
    float *x = malloc(n * NOPS_EMBED_DIM * sizeof *x), *q = malloc(nq * NOPS_EMBED_DIM * sizeof *q);
    history_gen g;
    history_init(&g, 5);
    for (size_t i = 0; i < n; i++) {
        json_t *run = history_run(&g);
        nops_redact_json(red, run, NULL);
        assert_int_equal(nops_embed_json(run, x + i * NOPS_EMBED_DIM), NOPS_OK);
        json_decref(run);
    }
    for (size_t i = 0; i < nq; i++) {
        json_t *inc = history_incident(&g, (int)(i % HISTORY_KINDS));
        assert_int_equal(nops_embed_json(inc, q + i * NOPS_EMBED_DIM), NOPS_OK);
        json_decref(inc);
    }
    nops_vindex *exact = build(NOPS_INDEX_FLAT, x, n, NOPS_EMBED_DIM);
    nops_vindex *ann = build(NOPS_INDEX_AUTO, x, n, NOPS_EMBED_DIM);
    assert_int_equal(nops_vindex_type(ann), NOPS_INDEX_IVF);
    double r = recall_at_10(ann, exact, q, nq, NOPS_EMBED_DIM);
    print_message("history embeddings, default IVF: recall@10 = %.4f\n", r);
    assert_true(r >= 0.95);
    nops_vindex_destroy(ann);
    nops_vindex_destroy(exact);
    nops_redactor_destroy(red);
    free(x);
    free(q);
}

/* ix written to a file and read back (the file removed). */
static nops_vindex *saved_and_loaded(const nops_vindex *ix)
{
    char err[256] = "", dir[] = "/tmp/nops-test-vindex-XXXXXX", file[128];
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/ix.faiss", dir);
    assert_int_equal(nops_vindex_save(ix, file, err, sizeof err), NOPS_OK);
    nops_vindex *back = nops_vindex_load(file, DIM, err, sizeof err);
    if (!back)
        fail_msg("load: %s", err);
    unlink(file);
    rmdir(dir);
    return back;
}

/* What an IVF search scans: the probed lists' sizes, stopped at the cap of
 * NOPS_INDEX_IVF_SCAN_CAP × nprobe × the mean list (FAISS's max_codes, not stored in its files:
 * set again on load and after an add; 0 turns it off); exact search has no lists. */
static void test_ivf_scan_is_capped(void **state)
{
    const size_t n = 20000, nq = 50;
    char err[256] = "";
    float *x = clustered(n + nq, DIM, 12); /* few clusters: uneven lists */
    nops_vindex *flat = build(NOPS_INDEX_FLAT, x, 100, DIM);
    nops_vindex_ivf_stats st;
    size_t scanned[50];
    assert_int_equal(nops_vindex_ivf_scan(flat, x, 1, &st, scanned, err, sizeof err), NOPS_INVAL);
    assert_non_null(strstr(err, "no inverted lists"));
    nops_vindex *ivf = build(NOPS_INDEX_IVF, x, n, DIM);
    const float *q = x + n * DIM;
    assert_int_equal(nops_vindex_ivf_scan(ivf, q, nq, &st, scanned, err, sizeof err), NOPS_OK);
    assert_int_equal(st.lists, 512); /* n/39 */
    assert_int_equal(st.nprobe, NOPS_INDEX_IVF_NPROBE);
    assert_true(st.mean_list > 39 && st.mean_list < 40);
    const size_t cap = st.max_codes;
    assert_true(cap > 0 &&
                cap == (size_t)(NOPS_INDEX_IVF_SCAN_CAP * NOPS_INDEX_IVF_NPROBE * st.mean_list));
    assert_true(st.largest_list > st.mean_list);
    for (size_t i = 0; i < nq; i++)
        assert_true(scanned[i] > 0 && scanned[i] < cap + st.largest_list);
    /* probing every list scans no more than the cap and the list that reached it */
    nops_vindex_set_nprobe(ivf, 512);
    assert_int_equal(nops_vindex_ivf_scan(ivf, q, nq, &st, scanned, err, sizeof err), NOPS_OK);
    assert_int_equal(st.max_codes, 32 * cap);
    for (size_t i = 0; i < nq; i++)
        assert_true(scanned[i] < 32 * cap + st.largest_list);
    nops_vindex_set_nprobe(ivf, NOPS_INDEX_IVF_NPROBE);
    /* no cap: every probed list in full, never less than with it */
    size_t capped[50];
    assert_int_equal(nops_vindex_ivf_scan(ivf, q, nq, &st, capped, err, sizeof err), NOPS_OK);
    nops_vindex_set_scan_cap(ivf, 0);
    assert_int_equal(nops_vindex_ivf_scan(ivf, q, nq, &st, scanned, err, sizeof err), NOPS_OK);
    assert_int_equal(st.max_codes, 0);
    for (size_t i = 0; i < nq; i++)
        assert_true(scanned[i] >= capped[i]);
    nops_vindex_set_scan_cap(ivf, NOPS_INDEX_IVF_SCAN_CAP);
    /* the cap follows the count, and comes back with a saved index */
    assert_int_equal(nops_vindex_add(ivf, x, n, err, sizeof err), NOPS_OK);
    assert_int_equal(nops_vindex_ivf_scan(ivf, q, 1, &st, scanned, err, sizeof err), NOPS_OK);
    assert_true(st.max_codes >= 2 * cap - 1 && st.max_codes <= 2 * cap + 1);
    nops_vindex *back = saved_and_loaded(ivf);
    nops_vindex_ivf_stats st2;
    assert_int_equal(nops_vindex_ivf_scan(back, q, 1, &st2, scanned, err, sizeof err), NOPS_OK);
    assert_int_equal(st2.max_codes, st.max_codes);
    assert_int_equal(st2.largest_list, st.largest_list);
    nops_vindex_destroy(back);
    nops_vindex_destroy(ivf);
    nops_vindex_destroy(flat);
    free(x);
}

/* Probing every list without a cap, the in-place search is the exact search: the same
 * similarities in order, the same vectors but for near-equal similarities. */
static void in_place_equals_exact(nops_vindex *ivf, const nops_vindex *flat, const float *q,
                                  size_t nq, size_t lists)
{
    char err[256] = "";
    nops_vindex_set_nprobe(ivf, (int)lists);
    nops_vindex_set_scan_cap(ivf, 0);
    for (size_t i = 0; i < nq; i++) {
        float se[20], sa[20];
        int64_t ie[20], ia[20];
        assert_int_equal(nops_vindex_search(flat, q + i * DIM, 1, 20, se, ie, err, sizeof err),
                         NOPS_OK);
        assert_int_equal(nops_vindex_search(ivf, q + i * DIM, 1, 20, sa, ia, err, sizeof err),
                         NOPS_OK);
        for (int j = 0; j < 20; j++) {
            assert_true(fabsf(se[j] - sa[j]) < 1e-5f); /* the same similarities, in order */
            assert_true(j == 0 || sa[j] <= sa[j - 1]);
            assert_true(ia[j] >= 0);
            const bool tied = (j > 0 && se[j - 1] - se[j] < 1e-5f) ||
                              (j < 19 && se[j] - se[j + 1] < 1e-5f);
            if (!tied) /* the same vector at each rank, but for near-equal similarities */
                assert_int_equal(ia[j], ie[j]);
        }
    }
}

/* At the default probes and cap, the same answers as FAISS's own search of the index. */
static void in_place_equals_faiss(nops_vindex *ivf, const float *q, size_t nq)
{
    char err[256] = "";
    nops_vindex_set_nprobe(ivf, NOPS_INDEX_IVF_NPROBE);
    nops_vindex_set_scan_cap(ivf, NOPS_INDEX_IVF_SCAN_CAP);
    for (size_t i = 0; i < nq; i++) {
        float sf[10], sa[10];
        int64_t idf[10], ida[10];
        nops_vindex_set_in_place(ivf, false);
        assert_int_equal(nops_vindex_search(ivf, q + i * DIM, 1, 10, sf, idf, err, sizeof err),
                         NOPS_OK);
        nops_vindex_set_in_place(ivf, true);
        assert_int_equal(nops_vindex_search(ivf, q + i * DIM, 1, 10, sa, ida, err, sizeof err),
                         NOPS_OK);
        for (int j = 0; j < 10; j++) {
            assert_true(fabsf(sf[j] - sa[j]) < 1e-5f);
            const bool tied = (j > 0 && sf[j - 1] - sf[j] < 1e-5f) ||
                              (j < 9 && sf[j] - sf[j + 1] < 1e-5f);
            if (!tied)
                assert_int_equal(ida[j], idf[j]);
        }
    }
}

/* The in-place IVF search (vindex.c: FAISS's lists scanned with OpenBLAS) is FAISS's algorithm:
 * probing every list without a cap it is exact search, results highest first; with few probes
 * and a k larger than what they hold, the rest is −1; it is kept by save and load. */
static void test_ivf_in_place_is_exact_when_probing_all(void **state)
{
    const size_t n = 4000, nq = 40;
    char err[256] = "";
    float *x = clustered(n + nq, DIM, 20);
    const float *q = x + n * DIM;
    nops_vindex *flat = build(NOPS_INDEX_FLAT, x, n, DIM);
    nops_vindex *ivf = build(NOPS_INDEX_IVF, x, n, DIM);
    nops_vindex_ivf_stats st;
    size_t scanned[40];
    assert_int_equal(nops_vindex_ivf_scan(ivf, q, 1, &st, scanned, err, sizeof err), NOPS_OK);
    assert_true(st.in_place);
    const size_t lists = st.lists;
    in_place_equals_exact(ivf, flat, q, nq, lists);
    in_place_equals_faiss(ivf, q, nq);
    nops_vindex_set_in_place(ivf, false);
    assert_int_equal(nops_vindex_ivf_scan(ivf, q, 1, &st, scanned, err, sizeof err), NOPS_OK);
    assert_false(st.in_place);
    nops_vindex_set_in_place(ivf, true);
    /* one probe, k past what its list holds: the list's vectors, then −1 */
    nops_vindex_set_nprobe(ivf, 1);
    const int k = (int)st.largest_list + 10;
    float *s = malloc((size_t)k * sizeof *s);
    int64_t *id = malloc((size_t)k * sizeof *id);
    assert_int_equal(nops_vindex_search(ivf, q, 1, k, s, id, err, sizeof err), NOPS_OK);
    int found = 0;
    while (found < k && id[found] >= 0)
        found++;
    assert_true(found > 0 && found <= (int)st.largest_list);
    for (int j = found; j < k; j++)
        assert_true(id[j] == -1);
    for (int j = 1; j < found; j++)
        assert_true(s[j] <= s[j - 1]);
    free(s);
    free(id);
    nops_vindex_set_nprobe(ivf, NOPS_INDEX_IVF_NPROBE);
    nops_vindex_set_scan_cap(ivf, NOPS_INDEX_IVF_SCAN_CAP);
    nops_vindex *back = saved_and_loaded(ivf);
    assert_int_equal(nops_vindex_ivf_scan(back, q, 1, &st, scanned, err, sizeof err), NOPS_OK);
    assert_true(st.in_place);
    nops_vindex_destroy(back);
    nops_vindex_destroy(ivf);
    nops_vindex_destroy(flat);
    free(x);
}

typedef struct job {
    const nops_vindex *ix;
    const float *q;
    int64_t ids[100][10];
    int failed;
} job;

static void *searcher(void *arg)
{
    job *j = arg;
    float s[10];
    char err[64];
    for (int i = 0; i < 100; i++)
        j->failed += nops_vindex_search(j->ix, j->q + i * DIM, 1, 10, s, j->ids[i], err,
                                        sizeof err) != NOPS_OK;
    return NULL;
}

static void test_concurrent_search(void **state)
{
    const size_t n = 8000;
    float *x = clustered(n + 100, DIM, 30), *q = x + n * DIM;
    const nops_index_type types[] = {NOPS_INDEX_FLAT, NOPS_INDEX_IVF, NOPS_INDEX_HNSW};
    job *serial = calloc(1, sizeof *serial), *jobs = calloc(4, sizeof *jobs);
    for (int ty = 0; ty < 3; ty++) {
        nops_vindex *ix = build(types[ty], x, n, DIM);
        *serial = (job){.ix = ix, .q = q};
        searcher(serial);
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            jobs[i] = (job){.ix = ix, .q = q};
            assert_int_equal(pthread_create(&t[i], NULL, searcher, &jobs[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            assert_int_equal(jobs[i].failed, 0);
            assert_memory_equal(jobs[i].ids, serial->ids, sizeof serial->ids);
        }
        nops_vindex_destroy(ix);
    }
    free(serial);
    free(jobs);
    free(x);
}

/* Add runs r-<from>..r-<to-1> (vectors of `x`, cycled) to w; how many were known already. */
static size_t add_runs(nops_histdir_writer *w, const float *x, size_t nx, size_t from, size_t to)
{
    size_t known = 0;
    for (size_t i = from; i < to; i++) {
        nops_run_meta m = {.status = NOPS_RUN_SUCCESS};
        snprintf(m.run_id, sizeof m.run_id, "r-%zu", i);
        snprintf(m.playbook_id, sizeof m.playbook_id, "pb-%zu", i % 7);
        nops_err e = nops_histdir_add(w, x + (i % nx) * DIM, &m);
        assert_true(e == NOPS_OK || e == NOPS_EXISTS);
        known += e == NOPS_EXISTS;
    }
    return known;
}

static void test_known_runs_cost_one_compare(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-hd-XXXXXX", err[512];
    assert_non_null(mkdtemp(dir));
    enum { N = 20000 };
    float *x = clustered(1000, DIM, 8);
    nops_histdir_writer *w = nops_histdir_begin(dir, NOPS_INDEX_FLAT, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(add_runs(w, x, 1000, 0, N), 0);
    assert_int_equal(add_runs(w, x, 1000, 0, 100), 100); /* repeated in the input */
    assert_int_equal(nops_histdir_pending(w), N);
    assert_true(nops__histdir_compares(w) <= 100 + 10); /* a collision or so at most */
    assert_int_equal(nops_histdir_commit(w, "test", 0, err, sizeof err), NOPS_OK);
    /* the whole history again and 50 new runs: every known run found with about one compare */
    w = nops_histdir_append(dir, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(add_runs(w, x, 1000, 0, N + 50), N);
    assert_int_equal(nops_histdir_pending(w), 50);
    assert_true(nops__histdir_compares(w) <= N + 10);
    assert_int_equal(nops_histdir_commit(w, "test", 0, err, sizeof err), NOPS_OK);
    nops_histdir *h = nops_histdir_open(dir, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(nops_histdir_count(h), N + 50);
    assert_string_equal(nops_histdir_meta(h, N + 49)->run_id, "r-20049");
    nops_histdir_close(h);
    free(x);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_flat_is_exact),
        cmocka_unit_test(test_ann_recall),
        cmocka_unit_test(test_history_recall),
        cmocka_unit_test(test_ivf_scan_is_capped),
        cmocka_unit_test(test_ivf_in_place_is_exact_when_probing_all),
        cmocka_unit_test(test_save_load_and_bad_files),
        cmocka_unit_test(test_concurrent_search),
        cmocka_unit_test(test_known_runs_cost_one_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
