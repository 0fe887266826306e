/*
 * vectorize.c — the vectorize pipeline: workflow runs (JSON lines or a PostgreSQL table) →
 * checks and redaction → embeddings → a new generation of the index directory.
 *
 * One job (nops_vectorize) is what `neuralops vectorize`, the demo and `neuralops-bench
 * vectorize` all run, so the benchmark measures the command's code. Every text field is
 * redacted before anything is embedded or written; a row that cannot be used is counted and
 * reported through the caller's skip callback with a redacted reason. The source bytes are
 * hashed (SHA-256) as they stream by: the generation records which input it came from.
 * PostgreSQL rows stream through COPY (CSV of row_to_json), so the table is never held in
 * memory twice.
 */
#include "vector/vector.h"

#include "parse/parse.h"

#include <errno.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct nops_vectorize {
    nops_vectorize_opts o;        /* callbacks and their userdata */
    nops_redactor *red;           /* owned */
    nops_histdir_writer *w;       /* owned until commit/abort */
    EVP_MD_CTX *sha;              /* owned: hash of the source rows */
    nops_redact_stats rs;         /* what the redactor found */
    size_t rows, skipped, known;  /* rows read, rows skipped, runs indexed already */
    int64_t last_finished_ns;     /* latest finished_at of a usable row (0 = none) */
    uint64_t t0, last_progress;   /* start and last progress report, monotonic ns */
};

nops_vectorize *nops_vectorize_begin(const nops_vectorize_opts *o, char *errstr,
                                     size_t errstr_size)
{
    nops_vectorize *v = nops_calloc(1, sizeof *v);
    if (!v) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    v->o = *o;
    v->t0 = nops_now_ns(); /* last_progress 0: the first report comes with the first row */
    v->red = nops_redactor_new(o->actor_key, errstr, errstr_size);
    v->w = !v->red      ? NULL
           : o->append ? nops_histdir_append(o->dir, errstr, errstr_size)
                       : nops_histdir_begin(o->dir, o->type, errstr, errstr_size);
    v->sha = EVP_MD_CTX_new();
    if (!v->red || !v->w || !v->sha || !EVP_DigestInit_ex(v->sha, EVP_sha256(), NULL)) {
        if (v->red && v->w)
            snprintf(errstr, errstr_size, "cannot start SHA-256");
        nops_vectorize_destroy(v);
        return NULL;
    }
    return v;
}

void nops_vectorize_destroy(nops_vectorize *v)
{
    if (!v)
        return;
    nops_histdir_abort(v->w);
    nops_redactor_destroy(v->red);
    EVP_MD_CTX_free(v->sha);
    nops_free(v);
}

static void skip(nops_vectorize *v, const char *where, const char *why)
{
    /* a parse error quotes the row ("near '…'"): the reason is redacted like the row */
    char safe[NOPS_REDACT_CAP(200)];
    nops_redact(v->red, why, strnlen(why, 200), safe, sizeof safe, NULL);
    v->skipped++;
    if (v->o.on_skip)
        v->o.on_skip(v->o.ud, where, safe);
}

void nops_vectorize_row(nops_vectorize *v, const char *text, size_t len, const char *where)
{
    EVP_DigestUpdate(v->sha, text, len);
    EVP_DigestUpdate(v->sha, "\n", 1);
    v->rows++;
    json_error_t je;
    json_t *run = json_loadb(text, len, 0, &je);
    const char *id = json_string_value(json_object_get(run, "id"));
    char ref[600], why[200], safe[NOPS_REDACT_CAP(100)] = "";
    if (id) /* the message names the row, not what may hide in its id */
        nops_redact(v->red, id, strnlen(id, 100), safe, sizeof safe, NULL);
    snprintf(ref, sizeof ref, "%s%s%s", where, id ? " id " : "", safe);
    float vec[NOPS_EMBED_DIM];
    nops_run_meta m;
    if (!run) {
        skip(v, ref, je.text);
    } else if (nops_vector_prepare_run(v->red, run, vec, &m, &v->rs, why, sizeof why) !=
               NOPS_OK) {
        skip(v, ref, why);
    } else {
        if (m.finished_ns > v->last_finished_ns)
            v->last_finished_ns = m.finished_ns;
        nops_err e = nops_histdir_add(v->w, vec, &m);
        if (e == NOPS_EXISTS)
            v->known++; /* indexed already (append) or repeated in the input */
        else if (e != NOPS_OK)
            skip(v, ref, e == NOPS_INVAL ? "its embedding is not a finite unit vector"
                                         : "out of memory");
    }
    json_decref(run);
    uint64_t now = nops_now_ns();
    if (v->o.on_progress && now - v->last_progress > 1000000000ull) {
        nops_vectorize_stats st;
        nops_vectorize_get_stats(v, &st);
        v->o.on_progress(v->o.ud, &st);
        v->last_progress = now;
    }
}

/* Lines of `f` from *offset on into the job; with `whole` false a last line without its
 * newline is left for later (a writer may be in the middle of it). *offset moves past what was
 * read. */
static nops_err jsonl_lines(nops_vectorize *v, FILE *f, uint64_t *offset, bool whole)
{
    if (*offset && fseeko(f, (off_t)*offset, SEEK_SET) != 0)
        return NOPS_IO;
    char *line = NULL, where[64];
    size_t cap = 0, lineno = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (!whole && line[n - 1] != '\n')
            break; /* a torn last line: read it whole next time */
        *offset += (uint64_t)n;
        lineno++;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        snprintf(where, sizeof where, "line %zu", lineno);
        nops_vectorize_row(v, line, (size_t)n, where);
    }
    const bool failed = ferror(f) != 0;
    free(line);
    return failed ? NOPS_IO : NOPS_OK;
}

nops_err nops_vectorize_jsonl(nops_vectorize *v, FILE *f)
{
    uint64_t off = 0;
    return jsonl_lines(v, f, &off, true);
}

nops_err nops_vectorize_jsonl_from(nops_vectorize *v, FILE *f, uint64_t *offset)
{
    return jsonl_lines(v, f, offset, false);
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

nops_err nops_vectorize_postgres(nops_vectorize *v, const char *dsn, char *errstr,
                                 size_t errstr_size)
{
    return nops_vectorize_postgres_since(v, dsn, INT64_MIN, errstr, errstr_size);
}

nops_err nops_vectorize_postgres_since(nops_vectorize *v, const char *dsn, int64_t since_ns,
                                       char *errstr, size_t errstr_size)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(errstr, errstr_size, "PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return NOPS_IO;
    }
    char sql[320]; /* COPY takes no parameters: the bound is a number printed here */
    if (since_ns == INT64_MIN)
        snprintf(sql, sizeof sql, "COPY (SELECT row_to_json(w)::text FROM workflow_runs w "
                                  "ORDER BY id) TO STDOUT WITH (FORMAT csv)");
    else
        snprintf(sql, sizeof sql, "COPY (SELECT row_to_json(w)::text FROM workflow_runs w WHERE "
                                  "w.finished_at IS NULL OR w.finished_at >= to_timestamp(%lld / "
                                  "1e6) ORDER BY id) TO STDOUT WITH (FORMAT csv)",
                 (long long)(since_ns / 1000));
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COPY_OUT;
    if (!ok)
        snprintf(errstr, errstr_size, "PostgreSQL: %s", PQerrorMessage(c));
    PQclear(r);
    char *row, where[32];
    int n;
    size_t k = 0;
    while (ok && (n = PQgetCopyData(c, &row, 0)) > 0) {
        snprintf(where, sizeof where, "row %zu", ++k);
        nops_vectorize_row(v, row, csv_field(row, (size_t)n), where);
        PQfreemem(row);
    }
    if (ok) { /* every result of the COPY, each cleared */
        ok = n != -2;
        while ((r = PQgetResult(c))) {
            ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
        }
        if (!ok)
            snprintf(errstr, errstr_size, "PostgreSQL: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok ? NOPS_OK : NOPS_IO;
}

void nops_vectorize_get_stats(const nops_vectorize *v, nops_vectorize_stats *st)
{
    st->rows = v->rows;
    st->skipped = v->skipped;
    st->known = v->known;
    st->last_finished_ns = v->last_finished_ns;
    st->pending = v->w ? nops_histdir_pending(v->w) : 0;
    st->redacted = 0;
    for (int k = 0; k < NOPS_REDACT_N; k++)
        st->redacted += v->rs.found[k];
    st->elapsed_s = (double)(nops_now_ns() - v->t0) / 1e9;
}

nops_err nops_vectorize_commit(nops_vectorize *v, char *errstr, size_t errstr_size)
{
    unsigned char md[32];
    unsigned int ml = 0;
    char hex[65] = "";
    nops_histdir_writer *w = v->w;
    v->w = NULL; /* commit frees the writer whatever the result */
    if (EVP_DigestFinal_ex(v->sha, md, &ml) != 1 || ml != sizeof md) {
        nops_histdir_abort(w);
        nops_errf(errstr, errstr_size, "SHA-256 of the source failed");
        return NOPS_INTERNAL;
    }
    nops_hex(md, ml, hex);
    return nops_histdir_commit(w, hex, v->skipped, errstr, errstr_size);
}
