/*
 * cmd_vectorize.c — `neuralops vectorize`: workflow runs (JSONL file or PostgreSQL table) →
 * redaction → embeddings → a new generation of the index directory.
 *
 * Every text field is redacted before anything is embedded or written; executed_by becomes a
 * keyed hash. A row that cannot be used is reported (line or id) and skipped; the count is
 * printed and makes the exit status 3. PostgreSQL rows stream through COPY (CSV of
 * row_to_json), so the table is never held in memory twice.
 */
#include "app/cli.h"
#include "vector/vector.h"

#include <errno.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
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

typedef struct job {
    nops_redactor *red;
    nops_histdir_writer *w;
    EVP_MD_CTX *sha;
    nops_redact_stats rs;
    size_t rows, skipped, known;
    uint64_t t0, last_progress;
    bool quiet;
} job;

static void skip(job *j, const char *where, const char *why)
{
    /* a parse error quotes the row ("near '…'"): the reason is redacted like the row */
    char safe[NOPS_REDACT_CAP(200)];
    nops_redact(j->red, why, strnlen(why, 200), safe, sizeof safe, NULL);
    j->skipped++;
    fprintf(stderr, "neuralops vectorize: skipped %s: %s\n", where, safe);
}

/* One source row (JSON text): redact, embed, buffer. */
static void take_row(job *j, const char *text, size_t len, const char *where)
{
    EVP_DigestUpdate(j->sha, text, len);
    EVP_DigestUpdate(j->sha, "\n", 1);
    j->rows++;
    json_error_t je;
    json_t *run = json_loadb(text, len, 0, &je);
    const char *id = json_string_value(json_object_get(run, "id"));
    char ref[600], why[200], safe[NOPS_REDACT_CAP(100)] = "";
    if (id) /* the message names the row, not what may hide in its id */
        nops_redact(j->red, id, strnlen(id, 100), safe, sizeof safe, NULL);
    snprintf(ref, sizeof ref, "%s%s%s", where, id ? " id " : "", safe);
    float v[NOPS_EMBED_DIM];
    nops_run_meta m;
    if (!run) {
        skip(j, ref, je.text);
    } else if (nops_vector_prepare_run(j->red, run, v, &m, &j->rs, why, sizeof why) != NOPS_OK) {
        skip(j, ref, why);
    } else {
        const char *fin = json_string_value(json_object_get(run, "finished_at"));
        if (!fin || nops_ingest_parse_timestamp(fin, strlen(fin), &m.finished_ns, NULL))
            m.finished_ns = 0;
        nops_err e = nops_histdir_add(j->w, v, &m);
        if (e == NOPS_EXISTS)
            j->known++; /* indexed already (append) or repeated in the input */
        else if (e != NOPS_OK)
            skip(j, ref, "out of memory");
    }
    json_decref(run);
    uint64_t now = nops_now_ns();
    if (now - j->last_progress > 1000000000ull && !j->quiet) {
        fprintf(stderr, "vectorize: %zu runs read, %zu skipped (%.0f runs/s)\n", j->rows,
                j->skipped, (double)j->rows * 1e9 / (double)(now - j->t0));
        j->last_progress = now;
    }
}

static bool read_jsonl(job *j, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : nops_file_fopen(path, "r");
    if (!f) {
        fprintf(stderr, "neuralops vectorize: cannot read %s: %s\n", path, strerror(errno));
        return false;
    }
    char *line = NULL, where[64];
    size_t cap = 0, lineno = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        snprintf(where, sizeof where, "line %zu", lineno);
        take_row(j, line, (size_t)n, where);
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return true;
}

/* One CSV field (row_to_json text), unquoted in place. */
static size_t csv_field(char *s, size_t n)
{
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    if (n < 2 || s[0] != '"')
        return n;
    size_t o = 0;
    for (size_t i = 1; i < n - 1; i++) {
        s[o++] = s[i];
        if (s[i] == '"' && s[i + 1] == '"')
            i++;
    }
    return o;
}

static bool read_postgres(job *j, const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "neuralops vectorize: PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return false;
    }
    PGresult *r = PQexec(c, "COPY (SELECT row_to_json(w)::text FROM workflow_runs w ORDER BY id)"
                            " TO STDOUT WITH (FORMAT csv)");
    bool ok = PQresultStatus(r) == PGRES_COPY_OUT;
    if (!ok)
        fprintf(stderr, "neuralops vectorize: PostgreSQL: %s", PQerrorMessage(c));
    PQclear(r);
    char *row, where[32];
    int n;
    size_t k = 0;
    while (ok && (n = PQgetCopyData(c, &row, 0)) > 0) {
        snprintf(where, sizeof where, "row %zu", ++k);
        take_row(j, row, csv_field(row, (size_t)n), where);
        PQfreemem(row);
    }
    if (ok && (n == -2 || PQresultStatus(r = PQgetResult(c)) != PGRES_COMMAND_OK)) {
        fprintf(stderr, "neuralops vectorize: PostgreSQL: %s", PQerrorMessage(c));
        ok = false;
    }
    if (ok)
        PQclear(r);
    PQfinish(c);
    return ok;
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
    job j = {.t0 = nops_now_ns(), .quiet = quiet};
    j.red = nops_redactor_new(ctx->vector.actor_key, err, sizeof err);
    j.w = !j.red        ? NULL
          : c->append ? nops_histdir_append(out, err, sizeof err)
                      : nops_histdir_begin(out, type, err, sizeof err);
    j.sha = EVP_MD_CTX_new();
    if (!j.red || !j.w || !j.sha || !EVP_DigestInit_ex(j.sha, EVP_sha256(), NULL)) {
        fprintf(stderr, "neuralops vectorize: %s\n", err);
        nops_redactor_destroy(j.red);
        nops_histdir_abort(j.w);
        EVP_MD_CTX_free(j.sha);
        return NOPS_EXIT_FAIL;
    }
    bool ok = c->input ? read_jsonl(&j, c->input) : read_postgres(&j, c->dsn);
    unsigned char md[32];
    unsigned int ml = 0;
    char hex[65] = "";
    EVP_DigestFinal_ex(j.sha, md, &ml);
    for (unsigned i = 0; i < ml; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    size_t n = nops_histdir_pending(j.w);
    int status = NOPS_EXIT_FAIL;
    if (ok) {
        if (!quiet)
            fprintf(stderr, "vectorize: %zu runs embedded in %.1f s; building the index\n", n,
                    (double)(nops_now_ns() - j.t0) / 1e9);
        if (nops_histdir_commit(j.w, hex, j.skipped, err, sizeof err) == NOPS_OK) {
            uint64_t redacted = 0;
            for (int k = 0; k < NOPS_REDACT_N; k++)
                redacted += j.rs.found[k];
            if (!quiet)
                printf("%zu vectors written to %s (%llu values redacted, %zu rows skipped, "
                       "%zu already indexed)\n",
                       n, out, (unsigned long long)redacted, j.skipped, j.known);
            status = j.skipped ? EXIT_SKIPPED : NOPS_EXIT_OK;
        } else {
            fprintf(stderr, "neuralops vectorize: %s\n", err);
        }
    } else {
        nops_histdir_abort(j.w);
    }
    nops_redactor_destroy(j.red);
    EVP_MD_CTX_free(j.sha);
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
