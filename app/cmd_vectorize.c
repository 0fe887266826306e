/*
 * cmd_vectorize.c — `neuralops vectorize`: workflow runs (JSONL file or PostgreSQL table) →
 * redaction → embeddings → a new generation of the index directory. The pipeline itself is
 * vector/vectorize.c (nops_vectorize_*), shared with the demo and the benchmark; this file is
 * the front end: options, the source, the messages.
 *
 * Every text field is redacted before anything is embedded or written; executed_by becomes a
 * keyed hash. A row that cannot be used is reported (line or id) and skipped; the count is
 * printed and makes the exit status 3. PostgreSQL rows stream through COPY (CSV of
 * row_to_json), so the table is never held in memory twice.
 */
#include "app/cli.h"
#include "vector/vector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_SKIPPED = 3 };

typedef struct vec_cli {
    const char *input, *dsn, *out, *type;
    bool append;
} vec_cli;

static const cli_opt vec_opts[] = {
    {"input", 'i', true, "FILE", "workflow runs as JSON lines (\"-\" = stdin)"},
    {"from-postgres", 0, true, "DSN", "read table workflow_runs through this libpq DSN"},
    {"out", 'o', true, "DIR", "index directory (default recommend.index_dir)"},
    {"index-type", 0, true, "auto|flat|ivf|hnsw", "index kind (default auto: by size)"},
    {"append", 0, false, NULL, "add new runs to the current index (no retraining; known ids "
                               "are left as they are)"},
};
#define N_VEC (sizeof vec_opts / sizeof vec_opts[0])

static bool on_opt(void *ud, const cli_opt *opt, const char *v)
{
    vec_cli *c = ud;
    if (strcmp(opt->name, "append") == 0)
        c->append = true;
    else if (strcmp(opt->name, "input") == 0)
        c->input = v;
    else if (strcmp(opt->name, "from-postgres") == 0)
        c->dsn = v;
    else if (strcmp(opt->name, "out") == 0)
        c->out = v;
    else
        c->type = v;
    return true;
}

static void on_skip(void *ud, const char *where, const char *why)
{
    fprintf(stderr, "neuralops vectorize: skipped %s: %s\n", where, why);
}

static void on_progress(void *ud, const nops_vectorize_stats *st)
{
    fprintf(stderr, "vectorize: %zu runs read, %zu skipped (%.0f runs/s)\n", st->rows,
            st->skipped, (double)st->rows / st->elapsed_s);
}

/* The source into the job: a JSONL file ("-" = stdin) or the workflow_runs table. */
static bool read_source(nops_vectorize *v, const vec_cli *c)
{
    char err[512];
    if (c->dsn) {
        if (nops_vectorize_postgres(v, c->dsn, err, sizeof err) == NOPS_OK)
            return true;
        fprintf(stderr, "neuralops vectorize: %s", err);
        return false;
    }
    FILE *f = strcmp(c->input, "-") == 0 ? stdin : nops_file_fopen(c->input, "r");
    if (!f) {
        fprintf(stderr, "neuralops vectorize: cannot read %s: %s\n", c->input, strerror(errno));
        return false;
    }
    nops_vectorize_jsonl(v, f);
    if (f != stdin)
        fclose(f);
    return true;
}

static int run(app_ctx *ctx, const vec_cli *c, bool quiet)
{
    nops_index_type type = NOPS_INDEX_AUTO;
    if (c->type && nops_index_type_parse(c->type, &type) != NOPS_OK) {
        fprintf(stderr, "neuralops vectorize: --index-type: \"%s\" is not auto, flat, ivf or "
                        "hnsw\n", c->type);
        return NOPS_EXIT_USAGE;
    }
    if (!!c->input == !!c->dsn) {
        fprintf(stderr, "neuralops vectorize: give --input FILE or --from-postgres DSN\n");
        return NOPS_EXIT_USAGE;
    }
    const char *out = c->out ? c->out : ctx->recommend.index_dir;
    char err[512];
    nops_vectorize_opts o = {.actor_key = ctx->vector.actor_key, .dir = out, .type = type,
                             .append = c->append, .on_skip = on_skip,
                             .on_progress = quiet ? NULL : on_progress};
    nops_vectorize *v = nops_vectorize_begin(&o, err, sizeof err);
    if (!v) {
        fprintf(stderr, "neuralops vectorize: %s\n", err);
        return NOPS_EXIT_FAIL;
    }
    int status = NOPS_EXIT_FAIL;
    nops_vectorize_stats st;
    if (read_source(v, c)) {
        nops_vectorize_get_stats(v, &st);
        if (!quiet)
            fprintf(stderr, "vectorize: %zu runs embedded in %.1f s; building the index\n",
                    st.pending, st.elapsed_s);
        if (nops_vectorize_commit(v, err, sizeof err) == NOPS_OK) {
            if (!quiet)
                printf("%zu vectors written to %s (%llu values redacted, %zu rows skipped, "
                       "%zu already indexed)\n",
                       st.pending, out, (unsigned long long)st.redacted, st.skipped, st.known);
            status = st.skipped ? EXIT_SKIPPED : NOPS_EXIT_OK;
        } else {
            fprintf(stderr, "neuralops vectorize: %s\n", err);
        }
    }
    nops_vectorize_destroy(v);
    return status;
}

int app_vectorize_jsonl(app_ctx *ctx, const char *path, const char *out, bool quiet)
{
    vec_cli c = {.input = path, .out = out};
    return run(ctx, &c, quiet);
}

int nops_cmd_vectorize(int argc, char **argv)
{
    app_ctx ctx;
    if (!app_ctx_init(&ctx))
        return NOPS_EXIT_FAIL;
    vec_cli c = {0};
    bool help;
    int status = NOPS_EXIT_USAGE;
    if (cli_parse(&ctx, "vectorize", argc, argv, vec_opts, N_VEC, on_opt, &c, &help)) {
        if (help) {
            printf("Usage: neuralops vectorize (--input FILE | --from-postgres DSN) [--out DIR]\n"
                   "                           [--index-type auto|flat|ivf|hnsw]\n\n"
                   "Read past workflow runs, redact them (docs/policies/data_redaction.md),\n"
                   "embed them and write a new generation of the index directory, swapped in\n"
                   "atomically. Ends with \"N vectors written\". Rows that cannot be used are\n"
                   "reported and skipped; any skipped row makes the exit status 3.\n\n");
            cli_print_opts(&ctx, vec_opts, N_VEC, stdout);
            status = NOPS_EXIT_OK;
        } else if (app_actor_key_set(&ctx, "vectorize")) {
            status = run(&ctx, &c, false);
        }
    }
    app_ctx_fini(&ctx);
    return status;
}
