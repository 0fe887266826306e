/*
 * bench_vector.c — `neuralops-bench vectorize` and `neuralops-bench recommend`.
 *
 * vectorize: runs/s of the vectorize path (nops_vectorize_*, the code `neuralops vectorize`
 * runs: read line, parse, check, redact, embed, buffer; index training timed apart) from a generated JSONL history, beside reading and parsing the same
 * lines alone; and, when a PostgreSQL DSN is given (--dsn or NEURALOPS_TEST_PG_DSN), the same
 * path from a workflow_runs table beside the raw `COPY … TO STDOUT` row rate.
 * recommend: at 100k and 1M runs, single-query latency p50/p99 of the whole recommend path
 * (embed + search + rank) and of POST /recommend over loopback HTTP, beside the raw FAISS search
 * of the same index and the exact (flat) search, with recall@10 of the index against exact.
 */
#include "bench/bench.h"

#include "synth/history.h"
#include "vector/vector.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A generated history of n runs as JSON lines in `path`. */
static void write_history(const char *path, size_t n, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    history_write_jsonl(f, n, seed, NULL);
    fclose(f);
}

/* The vectorize job's own reader (nops_vectorize_jsonl) when `v` is given, else the peer: read
 * and parse only. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs/s over the file (wall clock); *cpu_rate (may be NULL): runs per CPU-second of the
 * calling thread — on a shared machine the per-core cost, whatever the other load (only
 * meaningful when the pass runs on the calling thread alone). */
static double jsonl_pass(const char *path, nops_vectorize *v, size_t *tree_rows,
                         double *cpu_rate)
{
    FILE *f = fopen(path, "r");
    double t0 = bench_seconds(), c0 = thread_cpu_s();
    size_t n = 0;
    if (v) {
        nops_vectorize_jsonl(v, f);
        nops_vectorize_stats st;
        nops_vectorize_get_stats(v, &st);
        n = st.rows;
        *tree_rows = st.tree_rows;
    } else {
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
            json_t *o = json_loadb(line, strlen(line), 0, NULL);
            json_decref(o);
            n++;
        }
        free(line);
    }
    double dt = bench_seconds() - t0;
    if (cpu_rate)
        *cpu_rate = (double)n / (thread_cpu_s() - c0);
    fclose(f);
    return (double)n / dt;
}

/* The JSONL file into table bench_raw through COPY FROM STDIN (text format: backslashes doubled). */
static bool copy_in(PGconn *c, const char *path)
{
    PGresult *r = PQexec(c, "COPY bench_raw FROM STDIN");
    bool ok = PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    FILE *f = fopen(path, "r");
    char *line = NULL, *esc = NULL;
    size_t cap = 0, ecap = 0;
    ssize_t n;
    while (ok && f && (n = getline(&line, &cap, f)) > 0) {
        if ((size_t)n * 2 + 1 > ecap)
            esc = realloc(esc, ecap = (size_t)n * 2 + 1);
        size_t o = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (line[i] == '\\')
                esc[o++] = '\\';
            esc[o++] = line[i];
        }
        ok = PQputCopyData(c, esc, (int)o) == 1;
    }
    ok = PQputCopyEnd(c, ok ? NULL : "aborted") == 1 && ok;
    r = PQgetResult(c);
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    free(line);
    free(esc);
    if (f)
        fclose(f);
    return ok;
}

/* COPY the history into workflow_runs; then the raw COPY-out rate and the full path. */
static void postgres_figures(const char *dsn, const char *path, size_t n, const char *dir)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench vectorize: PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return;
    }
    PGresult *r;
    PQclear(PQexec(c, "DROP TABLE IF EXISTS workflow_runs; DROP TABLE IF EXISTS bench_raw"));
    PQclear(PQexec(c, "CREATE TABLE workflow_runs (id text PRIMARY KEY, playbook_id text, "
                      "incident_summary text, metrics text[], labels jsonb, signals jsonb, "
                      "started_at timestamptz, finished_at timestamptz, status text, "
                      "executed_by text, notes text); CREATE TABLE bench_raw (j json)"));
    bool ok = copy_in(c, path);
    if (ok) {
        r = PQexec(c, "INSERT INTO workflow_runs SELECT (json_populate_record(NULL::workflow_runs,"
                      " j)).* FROM bench_raw");
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (!ok) {
        fprintf(stderr, "bench vectorize: loading the table failed: %s", PQerrorMessage(c));
        PQfinish(c);
        return;
    }
    char err[256];
    /* the raw COPY-out row rate */
    double t0 = bench_seconds();
    PQclear(PQexec(c, "COPY (SELECT row_to_json(w)::text FROM workflow_runs w ORDER BY id) "
                      "TO STDOUT WITH (FORMAT csv)"));
    char *row;
    size_t rows = 0;
    while (PQgetCopyData(c, &row, 0) > 0) {
        rows++;
        PQfreemem(row);
    }
    PQclear(PQgetResult(c));
    const double raw = (double)rows / (bench_seconds() - t0);
    /* the vectorize path from the same table: the command's own code */
    nops_vectorize_opts vo = {.actor_key = "bench", .dir = dir, .type = NOPS_INDEX_FLAT};
    nops_vectorize *v = nops_vectorize_begin(&vo, err, sizeof err);
    if (v) {
        t0 = bench_seconds();
        if (nops_vectorize_postgres(v, dsn, err, sizeof err) != NOPS_OK)
            fprintf(stderr, "bench vectorize: %s", err);
        const double dt = bench_seconds() - t0;
        nops_vectorize_stats st;
        nops_vectorize_get_stats(v, &st);
        char extra[96];
        snprintf(extra, sizeof extra, "\"runs\":%zu,\"embedded\":%zu", n, st.pending);
        bench_emit("vectorize", "postgres_runs_per_s", (double)st.rows / dt, "runs/s",
                   "raw_copy_rows_per_s", raw, extra);
        nops_vectorize_destroy(v);
    } else {
        fprintf(stderr, "bench vectorize: %s\n", err);
    }
    PQclear(PQexec(c, "DROP TABLE bench_raw"));
    PQfinish(c);
}

int bench_vectorize(const bench_opts *o)
{
    const size_t n = o->series ? o->series : o->quick ? 20000 : 200000;
    char dir[] = "/tmp/nops-bench-vec-XXXXXX", path[128], err[256];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/runs.jsonl", dir);
    fprintf(stderr, "bench vectorize: generating %zu runs\n", n);
    write_history(path, n, 3);
    size_t tree_rows = 0;
    double peer_cpu = 0, cpu1 = 0;
    double peer = jsonl_pass(path, NULL, NULL, &peer_cpu);
    nops_vectorize_opts vo = {.actor_key = "bench", .dir = dir, .type = NOPS_INDEX_AUTO};
    nops_vectorize *v = nops_vectorize_begin(&vo, err, sizeof err);
    if (!v) {
        fprintf(stderr, "bench vectorize: %s\n", err);
        return 1;
    }
    /* the same path on the calling thread alone (opts.threads = 1), into a scratch dir */
    char dir1[] = "/tmp/nops-bench-vec1-XXXXXX";
    nops_vectorize_opts vo1 = {.actor_key = "bench", .dir = mkdtemp(dir1), .threads = 1};
    nops_vectorize *v1 = vo1.dir ? nops_vectorize_begin(&vo1, err, sizeof err) : NULL;
    double rate1 = v1 ? jsonl_pass(path, v1, &tree_rows, &cpu1) : 0;
    nops_vectorize_destroy(v1);
    rmdir(dir1);
    double rate = jsonl_pass(path, v, &tree_rows, NULL);
    char extra[200];
    snprintf(extra, sizeof extra, "\"runs\":%zu,\"tree_rows\":%zu,\"target\":100000,\"note\":"
             "\"index training excluded\"", n, tree_rows);
    bench_emit("vectorize", "jsonl_runs_per_s", rate, "runs/s", "read_and_parse_runs_per_s", peer,
               extra);
    bench_emit("vectorize", "jsonl_runs_per_s_one_thread", rate1, "runs/s",
               "read_and_parse_runs_per_s", peer, extra);
    bench_emit("vectorize", "jsonl_runs_per_cpu_s_one_thread", cpu1, "runs/cpu-s",
               "read_and_parse_runs_per_cpu_s", peer_cpu, extra);
    double t0 = bench_seconds();
    nops_vectorize_commit(v, err, sizeof err);
    snprintf(extra, sizeof extra, "\"runs\":%zu,\"index\":\"%s\"", n,
             n < NOPS_INDEX_AUTO_FLAT_MAX ? "flat" : "ivf");
    bench_emit("vectorize", "index_build_s", bench_seconds() - t0, "s", "none", 0, extra);
    nops_vectorize_destroy(v);
    const char *dsn = o->dsn ? o->dsn : getenv("NEURALOPS_TEST_PG_DSN");
    if (dsn)
        postgres_figures(dsn, path, n, dir);
    else
        fprintf(stderr, "bench vectorize: no PostgreSQL DSN (--dsn or NEURALOPS_TEST_PG_DSN): "
                        "the PostgreSQL figures are skipped\n");
    snprintf(path, sizeof path, "rm -rf %s", dir);
    return system(path) == 0 ? 0 : 1;
}
