/*
 * test_runtok.c — the tokenizer path of a workflow run (nops_vector_prepare_text) against the
 * jansson tree path it replaced (json_loadb + nops_vector_prepare_run): the same result,
 * vector bit for bit, metadata, redaction counts and reason, on the generated history and on
 * tricky rows (escapes, \u sequences and surrogate pairs, PII behind escapes, nested objects,
 * unknown fields, duplicate keys, invalid UTF-8, huge fields, wrong types). Then the vectorize
 * pipeline: one thread, two threads and the tree path by hand write the same index files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "synth/history.h"
#include "vector/vector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static nops_redactor *g_r;

static int setup(void **state)
{
    (void)state;
    char err[128];
    g_r = nops_redactor_new("test-actor-key", err, sizeof err);
    return g_r ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nops_redactor_destroy(g_r);
    return 0;
}

/* Both paths on one text; returns the tokenizer's result (NOPS_UNSUPPORTED: it declined). */
static nops_err both(const char *text, size_t len)
{
    static char scratch[1 << 22];
    float v1[NOPS_EMBED_DIM], v2[NOPS_EMBED_DIM];
    nops_run_meta m1, m2;
    nops_redact_stats s1 = {{0}}, s2 = {{0}};
    char w1[200] = "", w2[200] = "";
    assert_true(NOPS_RUN_SCRATCH(len) <= sizeof scratch);
    nops_err e2 = nops_vector_prepare_text(g_r, text, len, scratch, NOPS_RUN_SCRATCH(len), v2,
                                           &m2, &s2, w2, sizeof w2);
    json_t *run = json_loadb(text, len, 0, NULL);
    if (e2 == NOPS_UNSUPPORTED)
        goto out; /* the caller takes the tree path: nothing to compare */
    assert_non_null(run); /* vouched for: jansson parses it too */
    nops_err e1 = nops_vector_prepare_run(g_r, run, v1, &m1, &s1, w1, sizeof w1);
    assert_int_equal(e1, e2);
    assert_memory_equal(&s1, &s2, sizeof s1);
    if (e1 == NOPS_OK) {
        assert_memory_equal(v1, v2, sizeof v1);
        assert_memory_equal(&m1, &m2, sizeof m1);
    } else {
        assert_string_equal(w1, w2);
    }
out:
    json_decref(run);
    return e2;
}

static nops_err both_s(const char *text)
{
    return both(text, strlen(text));
}

static void test_generated_history(void **state)
{
    (void)state;
    history_gen g;
    history_init(&g, 7);
    for (int i = 0; i < 3000; i++) {
        json_t *run = history_run(&g);
        char *flat = json_dumps(run, JSON_COMPACT);
        char *pretty = json_dumps(run, JSON_INDENT(2) | JSON_ENSURE_ASCII); /* \u escapes */
        assert_int_equal(both_s(flat), NOPS_OK);
        assert_int_equal(both_s(pretty), NOPS_OK);
        free(flat);
        free(pretty);
        json_decref(run);
    }
}

#define BASE "\"id\":\"r1\",\"playbook_id\":\"pb.restart\",\"status\":\"success\""

static void test_tricky_rows_vouched(void **state)
{
    (void)state;
    /* each one is read without a tree and must equal the tree path */
    static const char *rows[] = {
        "{" BASE ",\"incident_summary\":\"mail alice@example.com about the \\\"outage\\\"\"}",
        "{" BASE ",\"summary\":\"caf\\u00e9 \\ud83d\\ude00 latency above baseline\\n\\ttab\"}",
        "{" BASE ",\"incident_summary\":\"key AKIA\\u0049OSFODNN7EXAMPLE leaked\"}",
        "{" BASE ",\"incident_summary\":\"x@y\\u002ecom and 10\\u002e0.0.1 and \\/path\"}",
        "{" BASE ",\"notes\":\"password=hunter2\",\"labels\":{\"service\":\"api\",\"ip\":"
        "\"10.1.2.3\",\"n\":5,\"__name__\":\"cpu\",\"o\":{\"a\":[1,2]}}}",
        "{" BASE ",\"unknown\":{\"deep\":[{\"a\":{\"b\":[null,true,false,-1.5e3]}}]},"
        "\"metrics\":[\"cpu_usage\",\"cpu_usage\",7,null,\"mem\\u005fused\"]}",
        "{" BASE ",\"signals\":[{\"metric\":\"http_errors\",\"score\":3.25,\"method\":\"ewma\","
        "\"hint\":\"value above band, call +1 415 555 0100\",\"labels\":{\"host\":\"h1\","
        "\"token\":\"Bearer abcdefghijklmnop1234\"}},7,\"x\",{\"score\":\"9\"},{}]}",
        "{" BASE ",\"signals\":[{\"metric\":\"a\",\"score\":-0},{\"metric\":\"b\",\"score\":"
        "12345678901234567},{\"metric\":\"c\",\"score\":1e-400},{\"score\":0.1}]}",
        "{" BASE ",\"incident_summary\":7,\"summary\":\"fallback summary text\"}",
        "{" BASE ",\"incident_summary\":\"\",\"labels\":{}}",
        "{" BASE ",\"labels\":[\"not\",\"an\",\"object\"],\"signals\":{\"not\":\"array\"}}",
        "  {" BASE ",\"root_cause_hint\":\"disk full on db-1\"}  \t\r\n",
        "{" BASE ",\"executed_by\":\"alice@example.com\",\"summary\":\"s\"}",
        "{\"id\":\"run-alice@example.com\",\"playbook_id\":\"pb\",\"status\":\"failure\","
        "\"summary\":\"restart\",\"finished_at\":\"2026-01-02T03:04:05Z\"}",
        "{\"id\":\"r\\u00e9\",\"playbook_id\":\"pb\",\"status\":\"aborted\",\"summary\":\"x\"}",
        /* skipped rows: the reason must be the tree path's */
        "{\"playbook_id\":\"pb\",\"status\":\"success\",\"summary\":\"s\"}",
        "{\"id\":\"r\",\"playbook_id\":\"PB Upper\",\"status\":\"success\",\"summary\":\"s\"}",
        "{\"id\":\"r\",\"playbook_id\":\"pb\",\"status\":\"maybe\",\"summary\":\"s\"}",
        "{\"id\":\"r\",\"playbook_id\":\"a@b.example.com\",\"status\":\"success\"}",
        "{" BASE "}",
        "{" BASE ",\"labels\":{\"k\":null}}",
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        nops_err e = both_s(rows[i]);
        if (e == NOPS_UNSUPPORTED)
            fail_msg("row %zu was not read without a tree: %s", i, rows[i]);
    }
    /* a huge field that is still within the tokenizer's bounds, with PII at both ends */
    char *big = malloc(8192), *p = big;
    p += sprintf(p, "{" BASE ",\"incident_summary\":\"bob@example.com ");
    for (int i = 0; i < 300; i++)
        p += sprintf(p, "word%02d ", i % 100);
    sprintf(p, " 4111 1111 1111 1111\"}");
    assert_true(strlen(big) > 2000);
    assert_int_equal(both_s(big), NOPS_OK);
    free(big);
}

static void test_tricky_rows_declined(void **state)
{
    (void)state;
    /* what the tokenizer does not vouch for goes to the tree path, which decides */
    static const char *rows[] = {
        "{" BASE ",\"summary\":\"a\",\"summary\":\"alice@example.com\"}", /* duplicate key */
        "{" BASE ",\"summ\\u0061ry\":\"escaped key\"}",
        "{" BASE ",\"summary\":\"bad \xff utf-8\"}",
        "{" BASE ",\"summary\":\"overlong \xc0\xaf\"}",
        "{" BASE ",\"summary\":\"lone \\ud800 surrogate\"}",
        "{" BASE ",\"summary\":\"nul \\u0000 inside\"}",
        "{" BASE ",\"summary\":\"raw \x01 control\"}",
        "{" BASE ",\"summary\":\"unterminated}",
        "{" BASE ",\"n\":123456789012345678901234}",
        "{" BASE "} trailing",
        "[{" BASE "}]",
        "",
        "{" BASE ",\"summary\":\"s\",}",
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(both_s(rows[i]), NOPS_UNSUPPORTED);
    /* a field past the tokenizer's 4 KiB string bound, and nesting past 64 */
    char *big = malloc(20000), *p = big;
    p += sprintf(p, "{" BASE ",\"incident_summary\":\"");
    for (int i = 0; i < 1500; i++)
        p += sprintf(p, "x%d ", i);
    sprintf(p, "\"}");
    assert_int_equal(both_s(big), NOPS_UNSUPPORTED);
    p = big + sprintf(big, "{" BASE ",\"deep\":");
    for (int i = 0; i < 100; i++)
        *p++ = '[';
    for (int i = 0; i < 100; i++)
        *p++ = ']';
    strcpy(p, ",\"summary\":\"s\"}");
    assert_int_equal(both_s(big), NOPS_UNSUPPORTED);
    free(big);
    /* a scratch too small is a decline, never an overrun */
    char small[16];
    float v[NOPS_EMBED_DIM];
    nops_run_meta m;
    char why[200];
    const char *row = "{" BASE ",\"summary\":\"a long enough summary to overflow\"}";
    assert_int_equal(nops_vector_prepare_text(g_r, row, strlen(row), small, sizeof small, v, &m,
                                              NULL, why, sizeof why),
                     NOPS_UNSUPPORTED);
}

/* ---- the pipeline ---------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    char *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void same_file(const char *a, const char *b, const char *name)
{
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/current/%s", a, name);
    snprintf(pb, sizeof pb, "%s/current/%s", b, name);
    size_t na, nb;
    char *x = slurp(pa, &na), *y = slurp(pb, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    free(x);
    free(y);
}

typedef struct skips {
    char text[64][300];
    int n;
} skips;

static void on_skip(void *ud, const char *where, const char *why)
{
    skips *s = ud;
    if (s->n < 64)
        snprintf(s->text[s->n++], sizeof s->text[0], "%s: %s", where, why);
}

/* 2000 generated runs as JSON lines into `path`, a few bad and unusual rows among them: a
 * bad status, duplicate keys, a line that is not JSON, a repeated run. */
static void write_runs(const char *path)
{
    FILE *f = fopen(path, "w");
    history_gen g;
    history_init(&g, 11);
    for (int i = 0; i < 2000; i++) { /* a few bad and unusual rows among good ones */
        json_t *run = history_run(&g);
        char *t = json_dumps(run, JSON_COMPACT);
        fprintf(f, "%s\n", t);
        if (i % 397 == 5)
            fprintf(f, "{\"id\":\"bad-%d\",\"playbook_id\":\"pb\",\"status\":\"??\"}\n", i);
        if (i % 501 == 7)
            fprintf(f, "{\"id\":\"dup-%d\",\"playbook_id\":\"pb\",\"status\":\"success\","
                       "\"summary\":\"a\",\"summary\":\"mail bob@example.com\"}\n", i);
        if (i % 613 == 9)
            fprintf(f, "not json at all\n");
        if (i == 1000)
            fprintf(f, "%s\n", t); /* a repeated run */
        free(t);
        json_decref(run);
    }
    fclose(f);
}

/* The vectorize pipeline with `threads` threads from `path` into a flat index at `dir`; its
 * stats into `st`, the rows it skipped into `sk`. */
static void pipeline_run(const char *path, const char *dir, int threads,
                         nops_vectorize_stats *st, skips *sk)
{
    char err[256];
    nops_vectorize_opts o = {.actor_key = "k", .dir = dir, .type = NOPS_INDEX_FLAT,
                             .threads = threads, .on_skip = on_skip, .ud = sk};
    nops_vectorize *v = nops_vectorize_begin(&o, err, sizeof err);
    assert_non_null(v);
    FILE *f = fopen(path, "r");
    assert_int_equal(nops_vectorize_jsonl(v, f), NOPS_OK);
    fclose(f);
    nops_vectorize_get_stats(v, st);
    assert_int_equal(nops_vectorize_commit(v, err, sizeof err), NOPS_OK);
    nops_vectorize_destroy(v);
}

typedef struct tree_counts {
    size_t rows, skipped, known;
    uint64_t redacted; /* PII found, all kinds */
} tree_counts;

/* The tree path by hand (json_loadb + nops_vector_prepare_run + nops_histdir_add) from `path`
 * into a flat index at `dir`; what it counted. */
static tree_counts tree_run(const char *path, const char *dir)
{
    char err[256];
    nops_redactor *red = nops_redactor_new("k", err, sizeof err);
    nops_histdir_writer *w = nops_histdir_begin(dir, NOPS_INDEX_FLAT, err, sizeof err);
    assert_non_null(w);
    nops_redact_stats rs = {{0}};
    size_t skipped = 0, rows = 0, known = 0;
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        rows++;
        json_t *run = json_loadb(line, (size_t)n - 1, 0, NULL);
        float vec[NOPS_EMBED_DIM];
        nops_run_meta m;
        char why[200];
        if (!run || nops_vector_prepare_run(red, run, vec, &m, &rs, why, sizeof why) != NOPS_OK)
            skipped++;
        else if (nops_histdir_add(w, vec, &m) == NOPS_EXISTS)
            known++;
        json_decref(run);
    }
    free(line);
    fclose(f);
    assert_int_equal(nops_histdir_commit(w, "x", skipped, err, sizeof err), NOPS_OK);
    nops_redactor_destroy(red);
    uint64_t redacted = 0;
    for (int k = 0; k < NOPS_REDACT_N; k++)
        redacted += rs.found[k];
    return (tree_counts){.rows = rows, .skipped = skipped, .known = known, .redacted = redacted};
}

static void test_pipeline_threads_and_tree(void **state)
{
    (void)state;
    char root[] = "/tmp/nops-runtok-XXXXXX";
    assert_non_null(mkdtemp(root));
    char path[300], d1[300], d2[300], d3[300];
    snprintf(path, sizeof path, "%s/runs.jsonl", root);
    write_runs(path);
    snprintf(d1, sizeof d1, "%s/one", root);
    snprintf(d2, sizeof d2, "%s/two", root);
    snprintf(d3, sizeof d3, "%s/tree", root);
    nops_vectorize_stats st[2];
    skips sk[2] = {{.n = 0}};
    for (int t = 0; t < 2; t++)
        pipeline_run(path, t ? d2 : d1, t + 1, &st[t], &sk[t]);
    /* the tree path by hand, as vectorize ran it before the tokenizer */
    const tree_counts tc = tree_run(path, d3);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(st[t].rows, tc.rows);
        assert_int_equal(st[t].skipped, tc.skipped);
        assert_int_equal(st[t].known, tc.known);
        assert_int_equal(st[t].redacted, tc.redacted);
        /* the skipped rows and the duplicate-key rows: read by the tree */
        assert_int_equal(st[t].tree_rows, tc.skipped + 4);
        assert_int_equal(sk[t].n, (int)tc.skipped);
    }
    assert_true(tc.skipped >= 9 && tc.known == 1);
    for (int i = 0; i < sk[0].n; i++)
        assert_string_equal(sk[0].text[i], sk[1].text[i]);
    assert_non_null(strstr(sk[0].text[0], "\"status\" must be"));
    same_file(d1, d2, "runs.meta");
    same_file(d1, d2, "runs.faiss");
    same_file(d1, d3, "runs.meta");
    same_file(d1, d3, "runs.faiss");
    snprintf(path, sizeof path, "rm -rf %s", root);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_history),
        cmocka_unit_test(test_tricky_rows_vouched),
        cmocka_unit_test(test_tricky_rows_declined),
        cmocka_unit_test(test_pipeline_threads_and_tree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
