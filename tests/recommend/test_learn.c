/*
 * test_learn.c — the learning loop (recommend.h nops_learner) with real pieces: an index built
 * by the vectorize pipeline from a generated history (synth/history.c), the orchestrator
 * running signed playbooks and writing its workflow_runs rows to a history JSONL, the learner
 * appending them, and the recommender following the index directory.
 *
 * The loop: for disk_pressure incidents rotate-logs ranks first (true success 0.92); it is then
 * executed for such incidents as a playbook whose step is /bin/false, every run fails, the
 * learner appends the runs, the recommender swaps the new generation in, and rotate-logs no
 * longer ranks first and scores lower. Also: the first index is built only once enough runs
 * exist (and the cycle says why not before), known runs make no new generation, a torn last
 * line waits for its newline, and the thread runs cycles by itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "orchestrate/orchestrate.h"
#include "recommend/recommend.h"
#include "synth/history.h"
#include "tests/support/orchutil.h"
#include "tests/support/pgutil.h"
#include "tests/support/recoutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KIND 4 /* disk_pressure: rotate-logs (best) or expand-volume */

static const char *const ACTOR_KEY = "learn-test-key";

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

/* `n` generated runs (seed) as JSON lines appended to `path`, their ids made unique across
 * seeds ("s<seed>-run-…": every generator counts from 1). */
static void write_history(const char *path, size_t n, uint64_t seed)
{
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    history_gen g;
    history_init(&g, seed);
    for (size_t i = 0; i < n; i++) {
        json_t *run = history_run(&g);
        char id[80];
        snprintf(id, sizeof id, "s%llu-%s", (unsigned long long)seed,
                 json_string_value(json_object_get(run, "id")));
        json_object_set_new(run, "id", json_string(id));
        assert_int_equal(json_dumpf(run, f, JSON_COMPACT), 0);
        fputc('\n', f);
        json_decref(run);
    }
    assert_int_equal(fclose(f), 0);
}

/* A first generation of `dir` from `path` through the pipeline `neuralops vectorize` runs. */
static void vectorize(const char *path, const char *dir)
{
    char err[512];
    nops_vectorize_opts o = {.actor_key = ACTOR_KEY, .dir = dir, .type = NOPS_INDEX_AUTO};
    nops_vectorize *v = nops_vectorize_begin(&o, err, sizeof err);
    if (!v)
        fail_msg("vectorize: %s", err);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(nops_vectorize_jsonl(v, f), NOPS_OK);
    fclose(f);
    if (nops_vectorize_commit(v, err, sizeof err) != NOPS_OK)
        fail_msg("commit: %s", err);
    nops_vectorize_destroy(v);
}

static nops_learner *learner(const char *dir, const char *hist, int64_t interval_s,
                             int64_t min_runs)
{
    nops_learn_params p = {.interval_s = interval_s, .min_runs = min_runs};
    snprintf(p.index_dir, sizeof p.index_dir, "%s", dir);
    snprintf(p.history_jsonl, sizeof p.history_jsonl, "%s", hist);
    snprintf(p.actor_key, sizeof p.actor_key, "%s", ACTOR_KEY);
    char err[512];
    nops_learner *l = nops_learner_new(&p, err, sizeof err);
    if (!l)
        fail_msg("learner: %s", err);
    return l;
}

/* Poll (generously: the machine is shared) until the recommender has a generation other than
 * `old`; that generation. */
static uint64_t wait_generation(nops_recommender *r, uint64_t old)
{
    size_t runs;
    uint64_t gen = old;
    for (int i = 0; i < 1200 && gen == old; i++) {
        sleep_ms(100);
        nops_recommender_info(r, &runs, &gen);
    }
    assert_int_not_equal(gen, old);
    return gen;
}

/* The rank (0 = first) and score of playbook `pb` in a recommendation; rank -1 when absent. */
static int rank_of(json_t *recs, const char *pb, double *score)
{
    size_t i;
    json_t *x;
    json_array_foreach(recs, i, x) {
        const char *id = json_string_value(json_object_get(x, "playbook_id"));
        if (id && strcmp(id, pb) == 0) {
            *score = json_real_value(json_object_get(x, "score"));
            return (int)i;
        }
    }
    *score = 0;
    return -1;
}

static json_t *recommend(nops_recommender *r, const json_t *inc)
{
    char err[512];
    json_t *out = NULL;
    if (nops_recommend(r, inc, 5, &out, err, sizeof err) != NOPS_OK)
        fail_msg("recommend: %s", err);
    return out;
}

/* Suggest `pb` for `inc` (TU_OPS), dry-run, approve (TU_ADMIN), execute; the final state. */
static char *run_playbook(nops_orchestrator *o, const char *pb, const json_t *inc)
{
    static char state[32];
    char err[512], id[64];
    json_t *rec = NULL;
    if (nops_orch_suggest(o, inc, pb, &TU_OPS, &rec, err, sizeof err) != NOPS_OK)
        fail_msg("suggest: %s", err);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    if (nops_orch_dry_run(o, id, &TU_OPS, &rec, err, sizeof err) != NOPS_OK)
        fail_msg("dry-run: %s", err);
    json_decref(rec);
    if (nops_orch_approve(o, id, &TU_ADMIN, &rec, err, sizeof err) != NOPS_OK)
        fail_msg("approve: %s", err);
    json_decref(rec);
    nops_err e = nops_orch_execute(o, id, &TU_ADMIN, &rec, err, sizeof err);
    snprintf(state, sizeof state, "%s",
             e == NOPS_OK ? json_string_value(json_object_get(rec, "state")) : "error");
    json_decref(rec);
    return state;
}

/* One cycle of `l` appends the `fails` new runs and makes a generation of `idx` past `gen0`; a
 * second cycle finds nothing new and makes none. The generation made. */
static uint64_t learn_runs_once(nops_learner *l, const char *idx, size_t fails, uint64_t gen0)
{
    char err[512];
    size_t appended = 0;
    if (nops_learner_run_once(l, &appended, err, sizeof err) != NOPS_OK)
        fail_msg("learn: %s", err);
    assert_int_equal(appended, fails);
    nops_learn_stats ls;
    nops_learner_get_stats(l, &ls);
    assert_int_equal(ls.appended, fails);
    assert_int_equal(ls.cycles, 1);
    assert_true(ls.generation > gen0);
    /* nothing new: no generation, the runs stay appended once */
    assert_int_equal(nops_learner_run_once(l, &appended, err, sizeof err), NOPS_OK);
    assert_int_equal(appended, 0);
    assert_int_equal(nops_histdir_current(idx), ls.generation);
    return ls.generation;
}

/* Whether the evidence shown for recommendation `rank` of `recs` holds a failed run. */
static bool shows_failure(json_t *recs, int rank)
{
    json_t *ev = json_object_get(json_array_get(recs, (size_t)rank), "evidence");
    bool saw_failure = false;
    size_t i;
    json_t *x;
    json_array_foreach(ev, i, x) saw_failure =
        saw_failure || strcmp(json_string_value(json_object_get(x, "status")), "failure") == 0;
    return saw_failure;
}

static void test_failed_runs_lower_the_rank(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-learn-XXXXXX", idx[200], seed_hist[200], hist[200];
    tu_orch_dirs d;
    assert_int_equal(tu_orch_dirs_make(dir, &d), 0);
    snprintf(idx, sizeof idx, "%s/index", dir);
    snprintf(seed_hist, sizeof seed_hist, "%s/seed.jsonl", dir);
    snprintf(hist, sizeof hist, "%s/history.jsonl", dir);
    write_history(seed_hist, 900, 11);
    vectorize(seed_hist, idx);

    nops_recommender *r = tu_reco_open(idx, 1);
    char err[512];
    size_t runs0;
    uint64_t gen0;
    nops_recommender_info(r, &runs0, &gen0);
    assert_int_equal(runs0, 900);

    history_gen g;
    history_init(&g, 99);
    json_t *probe = history_incident(&g, KIND);
    const char *best = history_best_playbook(KIND);
    assert_string_equal(best, "rotate-logs");
    json_t *before = recommend(r, probe);
    double score0, score1;
    assert_int_equal(rank_of(before, best, &score0), 0);

    /* the signed rotate-logs of this test fails: its step is /bin/false */
    tu_orch_playbook(d.reg, d.key, best, "[{\"name\":\"rotate\",\"exec\":[\"/bin/false\"]}]",
                     "manual", 30, "");
    nops_registry *reg = nops_registry_load(d.reg, d.pub, err, sizeof err);
    assert_non_null(reg);
    nops_secret *key = nops_secret_from_bytes("learn test key", 14);
    nops_orch_deps od = {.state_dir = d.state, .history_jsonl = hist, .secret = key, .reg = reg};
    nops_orchestrator *o = nops_orch_new(&od, err, sizeof err);
    if (!o)
        fail_msg("orchestrator: %s", err);
    enum { FAILS = 60 };
    for (int i = 0; i < FAILS; i++) {
        json_t *inc = history_incident(&g, KIND);
        assert_string_equal(run_playbook(o, best, inc), "failed");
        json_decref(inc);
    }

    nops_learner *l = learner(idx, hist, 0, 20);
    const uint64_t learnt = learn_runs_once(l, idx, FAILS, gen0);

    const uint64_t gen1 = wait_generation(r, gen0);
    assert_int_equal(gen1, learnt);
    size_t runs1;
    nops_recommender_info(r, &runs1, &(uint64_t){0});
    assert_int_equal(runs1, 900 + FAILS);
    json_t *after = recommend(r, probe);
    const int rank1 = rank_of(after, best, &score1);
    assert_true(rank1 != 0); /* another playbook now ranks first (or rotate-logs is gone) */
    assert_true(score1 < score0);
    /* and the evidence shown for it holds the failed runs */
    const bool saw_failure = shows_failure(after, rank1 < 0 ? 0 : rank1);
    assert_true(rank1 < 0 || saw_failure);

    json_decref(before);
    json_decref(after);
    json_decref(probe);
    nops_learner_destroy(l);
    nops_orch_destroy(o);
    nops_registry_destroy(reg);
    nops_secret_destroy(key);
    nops_recommender_destroy(r);
    assert_int_equal(tu_orch_dirs_remove(dir), 0);
}

static void test_first_index_needs_enough_runs(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-learn-XXXXXX", idx[200], hist[200], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(idx, sizeof idx, "%s/index", dir);
    snprintf(hist, sizeof hist, "%s/history.jsonl", dir);
    nops_learner *l = learner(idx, hist, 0, 50);
    size_t n = 1;
    /* no history file at all: nothing to do, no error */
    assert_int_equal(nops_learner_run_once(l, &n, err, sizeof err), NOPS_OK);
    assert_int_equal(n, 0);
    write_history(hist, 30, 5);
    assert_int_equal(nops_learner_run_once(l, &n, err, sizeof err), NOPS_OK);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "30 usable workflow runs"));
    assert_non_null(strstr(err, "learn_min_runs"));
    assert_int_equal(nops_histdir_current(idx), 0);
    nops_learn_stats st;
    nops_learner_get_stats(l, &st);
    assert_non_null(strstr(st.last_error, "learn_min_runs"));
    /* more runs, and a torn last line (no newline yet) that must wait */
    write_history(hist, 30, 6);
    FILE *f = fopen(hist, "a");
    assert_non_null(f);
    fputs("{\"id\":\"torn-1\",\"playbook_id\":\"rotate-logs\",", f);
    fclose(f);
    assert_int_equal(nops_learner_run_once(l, &n, err, sizeof err), NOPS_OK);
    assert_int_equal(n, 60);
    assert_string_equal(err, "");
    const uint64_t gen = nops_histdir_current(idx);
    assert_true(gen > 0);
    nops_histdir *h = nops_histdir_open(idx, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(nops_histdir_count(h), 60);
    nops_histdir_close(h);
    /* the rest of the torn line arrives: read whole, appended */
    f = fopen(hist, "a");
    assert_non_null(f);
    fputs("\"status\":\"failure\",\"incident_summary\":\"disk filling on search/x\","
          "\"metrics\":[\"disk_used_percent\"],\"labels\":{\"service\":\"search\"},"
          "\"signals\":[]}\n", f);
    fclose(f);
    if (nops_learner_run_once(l, &n, err, sizeof err) != NOPS_OK)
        fail_msg("learn: %s", err);
    assert_int_equal(n, 1);
    assert_true(nops_histdir_current(idx) > gen);
    nops_learner_get_stats(l, &st);
    assert_int_equal(st.appended, 61);
    assert_int_equal(st.skipped, 0);
    assert_int_equal(st.failed, 0);
    nops_learner_destroy(l);

    /* a new learner (a restart) reads the history again and finds every run known */
    l = learner(idx, hist, 0, 50);
    const uint64_t gen2 = nops_histdir_current(idx);
    assert_int_equal(nops_learner_run_once(l, &n, err, sizeof err), NOPS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(nops_histdir_current(idx), gen2);
    nops_learner_destroy(l);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* With an interval the thread runs cycles by itself: the first at once. */
static void test_thread_learns(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-learn-XXXXXX", idx[200], hist[200];
    assert_non_null(mkdtemp(dir));
    snprintf(idx, sizeof idx, "%s/index", dir);
    snprintf(hist, sizeof hist, "%s/history.jsonl", dir);
    write_history(hist, 40, 8);
    nops_learner *l = learner(idx, hist, 1, 10);
    nops_learn_stats st = {0};
    for (int i = 0; i < 1200 && st.generation == 0; i++) {
        sleep_ms(100);
        nops_learner_get_stats(l, &st);
    }
    assert_true(st.generation > 0);
    assert_int_equal(st.appended, 40);
    write_history(hist, 5, 9);
    for (int i = 0; i < 1200 && st.appended < 45; i++) {
        sleep_ms(100);
        nops_learner_get_stats(l, &st);
    }
    assert_int_equal(st.appended, 45);
    nops_learner_destroy(l); /* joins the thread */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The row of an execution whose incident came with full signals and "metrics": [] lists the
 * signals' metrics (what the index learns from). */
static void test_row_metrics_from_signals(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-learn-XXXXXX", hist[200], err[512];
    tu_orch_dirs d;
    assert_int_equal(tu_orch_dirs_make(dir, &d), 0);
    snprintf(hist, sizeof hist, "%s/history.jsonl", dir);
    tu_orch_playbook(d.reg, d.key, "rotate-logs", "[{\"name\":\"ok\",\"exec\":[\"/bin/true\"]}]",
                     "manual", 30, "");
    nops_registry *reg = nops_registry_load(d.reg, d.pub, err, sizeof err);
    assert_non_null(reg);
    nops_secret *key = nops_secret_from_bytes("learn test key", 14);
    nops_orch_deps od = {.state_dir = d.state, .history_jsonl = hist, .secret = key, .reg = reg};
    nops_orchestrator *o = nops_orch_new(&od, err, sizeof err);
    assert_non_null(o);
    history_gen g;
    history_init(&g, 3);
    json_t *inc = history_incident(&g, KIND);
    json_object_set_new(inc, "metrics", json_array());
    assert_string_equal(run_playbook(o, "rotate-logs", inc), "executed");
    json_decref(inc);
    nops_orch_destroy(o);
    FILE *f = fopen(hist, "r");
    assert_non_null(f);
    json_t *row = json_loadf(f, JSON_DISABLE_EOF_CHECK, NULL);
    fclose(f);
    assert_non_null(row);
    json_t *m = json_object_get(row, "metrics");
    assert_int_equal(json_array_size(m), 1);
    assert_string_equal(json_string_value(json_array_get(m, 0)), "disk_used_percent");
    assert_string_equal(json_string_value(json_object_get(row, "status")), "success");
    json_decref(row);
    nops_registry_destroy(reg);
    nops_secret_destroy(key);
    assert_int_equal(tu_orch_dirs_remove(dir), 0);
}

/* Insert `n` generated runs (seed) into workflow_runs through `c`. */
static void pg_insert_runs(PGconn *c, size_t n, uint64_t seed)
{
    history_gen g;
    history_init(&g, seed);
    for (size_t i = 0; i < n; i++) {
        json_t *run = history_run(&g);
        char id[80];
        snprintf(id, sizeof id, "pg%llu-%s", (unsigned long long)seed,
                 json_string_value(json_object_get(run, "id")));
        json_object_set_new(run, "id", json_string(id));
        char *text = json_dumps(run, JSON_COMPACT);
        const char *params[] = {text};
        PGresult *r = PQexecParams(c, "INSERT INTO learn_test.workflow_runs SELECT * FROM "
                                      "json_populate_record(NULL::learn_test.workflow_runs, "
                                      "$1::json)", 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("insert: %s", PQerrorMessage(c));
        PQclear(r);
        free(text);
        json_decref(run);
    }
}

/* PostgreSQL as the source: the rows the orchestrator writes to workflow_runs (and rows other
 * instances wrote) build the first index and are appended later; a restart finds them known. */
static void test_learns_from_postgres(void **state)
{
    (void)state;
    char dsn[512], err[512], dir[] = "/tmp/nops-learn-XXXXXX", idx[200];
    PGconn *c = tu_pg_schema("learn_test", dsn, sizeof dsn);
    tu_orch_dirs d;
    assert_int_equal(tu_orch_dirs_make(dir, &d), 0);
    snprintf(idx, sizeof idx, "%s/index", dir);
    tu_orch_playbook(d.reg, d.key, "rotate-logs", "[{\"name\":\"ok\",\"exec\":[\"/bin/true\"]}]",
                     "manual", 30, "");
    nops_registry *reg = nops_registry_load(d.reg, d.pub, err, sizeof err);
    assert_non_null(reg);
    nops_secret *key = nops_secret_from_bytes("learn test key", 14);
    /* the orchestrator creates the tables; its executions become rows */
    nops_orch_deps od = {.state_dir = d.state, .pg_dsn = dsn, .secret = key, .reg = reg};
    nops_orchestrator *o = nops_orch_new(&od, err, sizeof err);
    if (!o)
        fail_msg("orchestrator: %s", err);
    history_gen g;
    history_init(&g, 21);
    for (int i = 0; i < 3; i++) {
        json_t *inc = history_incident(&g, KIND);
        assert_string_equal(run_playbook(o, "rotate-logs", inc), "executed");
        json_decref(inc);
    }
    pg_insert_runs(c, 25, 31); /* runs of other instances, finished long ago */
    nops_learn_params p = {.min_runs = 20};
    snprintf(p.index_dir, sizeof p.index_dir, "%s", idx);
    snprintf(p.pg_dsn, sizeof p.pg_dsn, "%s", dsn);
    snprintf(p.actor_key, sizeof p.actor_key, "%s", ACTOR_KEY);
    nops_learner *l = nops_learner_new(&p, err, sizeof err);
    assert_non_null(l);
    size_t n = 0;
    if (nops_learner_run_once(l, &n, err, sizeof err) != NOPS_OK)
        fail_msg("learn: %s", err);
    assert_int_equal(n, 28);
    /* one more execution: appended alone */
    json_t *inc = history_incident(&g, KIND);
    assert_string_equal(run_playbook(o, "rotate-logs", inc), "executed");
    json_decref(inc);
    if (nops_learner_run_once(l, &n, err, sizeof err) != NOPS_OK)
        fail_msg("learn: %s", err);
    assert_int_equal(n, 1);
    nops_learn_stats st;
    nops_learner_get_stats(l, &st);
    assert_int_equal(st.appended, 29);
    nops_learner_destroy(l);
    /* a restart: the whole table read once, everything known */
    l = nops_learner_new(&p, err, sizeof err);
    const uint64_t gen = nops_histdir_current(idx);
    assert_int_equal(nops_learner_run_once(l, &n, err, sizeof err), NOPS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(nops_histdir_current(idx), gen);
    nops_learner_destroy(l);
    /* a database that cannot be reached: an error, counted, with the reason */
    snprintf(p.pg_dsn, sizeof p.pg_dsn, "host=127.0.0.1 port=1 connect_timeout=2");
    l = nops_learner_new(&p, err, sizeof err);
    assert_int_equal(nops_learner_run_once(l, &n, err, sizeof err), NOPS_IO);
    assert_non_null(strstr(err, "PostgreSQL"));
    nops_learner_get_stats(l, &st);
    assert_int_equal(st.failed, 1);
    assert_non_null(strstr(st.last_error, "PostgreSQL"));
    nops_learner_destroy(l);
    nops_orch_destroy(o);
    nops_registry_destroy(reg);
    nops_secret_destroy(key);
    tu_pg_drop_schema(c, "learn_test");
    assert_int_equal(tu_orch_dirs_remove(dir), 0);
}

static void test_bad_params(void **state)
{
    (void)state;
    nops_learn_params p = {.min_runs = 1};
    char err[256];
    assert_null(nops_learner_new(&p, err, sizeof err));
    assert_non_null(strstr(err, "index_dir"));
    nops_learner_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_row_metrics_from_signals),
        cmocka_unit_test(test_first_index_needs_enough_runs),
        cmocka_unit_test(test_thread_learns),
        cmocka_unit_test(test_failed_runs_lower_the_rank),
        cmocka_unit_test(test_learns_from_postgres),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
