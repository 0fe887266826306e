/*
 * bench_vector.c — `neuralops-bench vectorize` and `neuralops-bench recommend`.
 *
 * vectorize: runs/s of the vectorize path (read line, parse, nops_vector_prepare_run — the
 * checks, redaction and embedding the command runs — and buffer; index
 * training timed apart) from a generated JSONL history, beside reading and parsing the same
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
#include <unistd.h>

/* A generated history of n runs as JSON lines in `path`. */
static void write_history(const char *path, size_t n, uint64_t seed)
{
    FILE *f = fopen(path, "w");
    history_gen g;
    history_init(&g, seed);
    for (size_t i = 0; i < n; i++) {
        json_t *run = history_run(&g);
        json_dumpf(run, f, JSON_COMPACT);
        fputc('\n', f);
        json_decref(run);
    }
    fclose(f);
}

typedef struct vjob {
    nops_redactor *red;
    nops_histdir_writer *w;
    size_t ok;
} vjob;

/* The vectorize path for one row (as cmd_vectorize.c does it). */
static void vec_row(vjob *j, const char *text, size_t len)
{
    json_t *run = json_loadb(text, len, 0, NULL);
    nops_run_meta m;
    float v[NOPS_EMBED_DIM];
    char why[160];
    if (run && nops_vector_prepare_run(j->red, run, v, &m, NULL, why, sizeof why) == NOPS_OK &&
        nops_histdir_add(j->w, v, &m) == NOPS_OK)
        j->ok++;
    json_decref(run);
}

static double jsonl_pass(const char *path, vjob *j)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t got;
    double t0 = bench_seconds();
    while ((got = getline(&line, &cap, f)) > 0) {
        if (j) {
            vec_row(j, line, (size_t)got);
        } else { /* the peer: read and parse only */
            json_t *o = json_loadb(line, (size_t)got, 0, NULL);
            json_decref(o);
        }
        n++;
    }
    double dt = bench_seconds() - t0;
    free(line);
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
    for (int pass = 0; pass < 2; pass++) { /* 0: raw COPY rows, 1: the vectorize path */
        vjob j = {0};
        if (pass) {
            j.red = nops_redactor_new("bench", err, sizeof err);
            j.w = nops_histdir_begin(dir, NOPS_INDEX_FLAT, err, sizeof err);
        }
        double t0 = bench_seconds();
        PQclear(PQexec(c, "COPY (SELECT row_to_json(w)::text FROM workflow_runs w ORDER BY id) "
                          "TO STDOUT WITH (FORMAT csv)"));
        char *row;
        int len;
        size_t rows = 0;
        while ((len = PQgetCopyData(c, &row, 0)) > 0) {
            if (pass) { /* unquote the CSV field in place, as vectorize does */
                size_t o = 0;
                for (int i = 1; i < len - 2; i++) {
                    row[o++] = row[i];
                    if (row[i] == '"' && row[i + 1] == '"')
                        i++;
                }
                vec_row(&j, row, o);
            }
            rows++;
            PQfreemem(row);
        }
        PQclear(PQgetResult(c));
        static double raw;
        double rate = (double)rows / (bench_seconds() - t0);
        if (!pass) {
            raw = rate;
        } else {
            char extra[96];
            snprintf(extra, sizeof extra, "\"runs\":%zu,\"embedded\":%zu", n, j.ok);
            bench_emit("vectorize", "postgres_runs_per_s", rate, "runs/s",
                       "raw_copy_rows_per_s", raw, extra);
            nops_histdir_abort(j.w);
            nops_redactor_destroy(j.red);
        }
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
    double peer = jsonl_pass(path, NULL);
    vjob j = {.red = nops_redactor_new("bench", err, sizeof err),
              .w = nops_histdir_begin(dir, NOPS_INDEX_AUTO, err, sizeof err)};
    double rate = jsonl_pass(path, &j);
    char extra[160];
    snprintf(extra, sizeof extra, "\"runs\":%zu,\"target\":100000,\"note\":\"index training "
             "excluded\"", n);
    bench_emit("vectorize", "jsonl_runs_per_s", rate, "runs/s", "read_and_parse_runs_per_s", peer,
               extra);
    double t0 = bench_seconds();
    nops_histdir_commit(j.w, "bench", 0, err, sizeof err);
    snprintf(extra, sizeof extra, "\"runs\":%zu,\"index\":\"%s\"", n,
             n < NOPS_INDEX_AUTO_FLAT_MAX ? "flat" : "ivf");
    bench_emit("vectorize", "index_build_s", bench_seconds() - t0, "s", "none", 0, extra);
    nops_redactor_destroy(j.red);
    const char *dsn = o->dsn ? o->dsn : getenv("NEURALOPS_TEST_PG_DSN");
    if (dsn)
        postgres_figures(dsn, path, n, dir);
    else
        fprintf(stderr, "bench vectorize: no PostgreSQL DSN (--dsn or NEURALOPS_TEST_PG_DSN): "
                        "the PostgreSQL figures are skipped\n");
    snprintf(path, sizeof path, "rm -rf %s", dir);
    return system(path) == 0 ? 0 : 1;
}
