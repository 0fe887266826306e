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
 *
 * Rows are read without a tree (nops_vector_prepare_text, runtok.c); a row it does not vouch
 * for, or one it would skip, is read again through jansson (nops_vector_prepare_run) so that
 * every decision and skip reason is the tree path's (counted in stats.tree_rows). The readers
 * (JSONL, COPY) use both cores: rows are gathered in batches of BATCH; the reading thread
 * hashes the batch while a worker thread prepares rows, then both prepare what is left, taking
 * chunks of CHUNK rows from a shared counter; each row's result goes to its own slot, and the
 * reading thread then takes the slots in input order (skips, the writer, counts), so the output
 * is the single-threaded output byte for byte (tests/vector/test_runtok.c compares them).
 */
#include "vector/vector.h"

#include "parse/parse.h"

#include <errno.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 256 /* rows gathered before they are prepared on both cores */
#define CHUNK 8   /* rows a thread takes from the batch at a time */

/* One row of a batch and what preparing it gave. */
typedef struct slot {
    size_t off, len;            /* its text in batch.text */
    char where[32];             /* "line 3", "row 7" */
    nops_err e;                 /* nops_vector_prepare_text's result (not OK: the tree path) */
    nops_run_meta m;            /* metadata (e == NOPS_OK) */
    nops_redact_stats rs;       /* what the redactor found in this row */
    float vec[NOPS_EMBED_DIM];  /* embedding (e == NOPS_OK) */
} slot;

/* The worker thread and what it shares with the reading thread. */
typedef struct pool {
    pthread_t th;               /* the worker */
    bool started;               /* th runs */
    pthread_mutex_t mu;         /* guards gen, done_gen, quit */
    pthread_cond_t work, done;  /* a batch is ready / the worker is through with it */
    uint64_t gen, done_gen;     /* batch published / batch the worker finished */
    bool quit;                  /* destroy: the worker returns */
    atomic_size_t next;         /* next row of the batch to take */
} pool;

struct nops_vectorize {
    nops_vectorize_opts o;        /* callbacks and their userdata */
    nops_redactor *red;           /* owned */
    nops_histdir_writer *w;       /* owned until commit/abort */
    EVP_MD_CTX *sha;              /* owned: hash of the source rows */
    nops_redact_stats rs;         /* what the redactor found */
    size_t rows, skipped, known;  /* rows read, rows skipped, runs indexed already */
    int64_t last_finished_ns;     /* latest finished_at of a usable row (0 = none) */
    uint64_t t0, last_progress;   /* start and last progress report, monotonic ns */
    size_t tree_rows;             /* rows read through the jansson tree */
    int threads;                  /* 1 or 2: threads preparing rows */
    slot *slots;                  /* the batch: BATCH slots */
    size_t n;                     /* rows in the batch */
    char *text;                   /* their text, back to back */
    size_t text_used, text_cap;   /* bytes of text used and allocated */
    char *scratch[2];             /* nops_vector_prepare_text's scratch of each thread */
    size_t scratch_cap[2];        /* their sizes */
    pool p;                       /* the worker (threads == 2) */
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
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    v->threads = o->threads == 1 || (o->threads == 0 && cpus < 2) ? 1 : 2;
    pthread_mutex_init(&v->p.mu, NULL);
    pthread_cond_init(&v->p.work, NULL);
    pthread_cond_init(&v->p.done, NULL);
    v->slots = nops_malloc(BATCH * sizeof *v->slots);
    v->red = nops_redactor_new(o->actor_key, errstr, errstr_size);
    v->w = !v->red      ? NULL
           : o->append ? nops_histdir_append(o->dir, errstr, errstr_size)
                       : nops_histdir_begin(o->dir, o->type, errstr, errstr_size);
    v->sha = EVP_MD_CTX_new();
    if (!v->red || !v->w || !v->sha || !EVP_DigestInit_ex(v->sha, EVP_sha256(), NULL) ||
        !v->slots) {
        if (v->red && v->w)
            snprintf(errstr, errstr_size, v->slots ? "cannot start SHA-256" : "out of memory");
        nops_vectorize_destroy(v);
        return NULL;
    }
    return v;
}

void nops_vectorize_destroy(nops_vectorize *v)
{
    if (!v)
        return;
    if (v->p.started) {
        pthread_mutex_lock(&v->p.mu);
        v->p.quit = true;
        pthread_cond_signal(&v->p.work);
        pthread_mutex_unlock(&v->p.mu);
        pthread_join(v->p.th, NULL);
    }
    pthread_mutex_destroy(&v->p.mu);
    pthread_cond_destroy(&v->p.work);
    pthread_cond_destroy(&v->p.done);
    nops_free(v->slots);
    nops_free(v->text);
    nops_free(v->scratch[0]);
    nops_free(v->scratch[1]);
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

/* How a skip names a row: where it is, and its id redacted (never what may hide in it). */
static void row_ref(nops_vectorize *v, const char *id, const char *where, char *ref, size_t cap)
{
    char safe[NOPS_REDACT_CAP(100)] = "";
    if (id)
        nops_redact(v->red, id, strnlen(id, 100), safe, sizeof safe, NULL);
    snprintf(ref, cap, "%s%s%s", where, id ? " id " : "", safe);
}

/* A prepared run into the writer, in input order; a run the writer refuses is skipped. `ref`
 * names the row, or is NULL: then it is made from `text` as the tree path makes it. */
static void take_run(nops_vectorize *v, const float *vec, const nops_run_meta *m,
                     const char *ref, const char *text, size_t len, const char *where)
{
    if (m->finished_ns > v->last_finished_ns)
        v->last_finished_ns = m->finished_ns;
    nops_err e = nops_histdir_add(v->w, vec, m);
    if (e == NOPS_EXISTS) {
        v->known++; /* indexed already (append) or repeated in the input */
        return;
    }
    if (e == NOPS_OK)
        return;
    char made[600];
    if (!ref) { /* rare: the row's id for the message, as the tree path reads it */
        json_t *run = json_loadb(text, len, 0, NULL);
        row_ref(v, json_string_value(json_object_get(run, "id")), where, made, sizeof made);
        json_decref(run);
        ref = made;
    }
    skip(v, ref, e == NOPS_INVAL ? "its embedding is not a finite unit vector" : "out of memory");
}

/* The tree path: the row parsed by jansson and prepared as before, its outcome taken. */
static void tree_row(nops_vectorize *v, const char *text, size_t len, const char *where)
{
    v->tree_rows++;
    json_error_t je;
    json_t *run = json_loadb(text, len, 0, &je);
    char ref[600], why[200];
    row_ref(v, json_string_value(json_object_get(run, "id")), where, ref, sizeof ref);
    float vec[NOPS_EMBED_DIM];
    nops_run_meta m;
    if (!run)
        skip(v, ref, je.text);
    else if (nops_vector_prepare_run(v->red, run, vec, &m, &v->rs, why, sizeof why) != NOPS_OK)
        skip(v, ref, why);
    else
        take_run(v, vec, &m, ref, text, len, where);
    json_decref(run);
}

static void progress(nops_vectorize *v)
{
    uint64_t now = nops_now_ns();
    if (v->o.on_progress && now - v->last_progress > 1000000000ull) {
        nops_vectorize_stats st;
        nops_vectorize_get_stats(v, &st);
        v->o.on_progress(v->o.ud, &st);
        v->last_progress = now;
    }
}

/* One row's outcome, in input order: a prepared run taken, else the row read again by the
 * tree path (it decides, and words any skip, as it always did). */
static void finish_row(nops_vectorize *v, const char *text, size_t len, const char *where,
                       const slot *r)
{
    v->rows++;
    if (r->e == NOPS_OK) {
        for (int k = 0; k < NOPS_REDACT_N; k++)
            v->rs.found[k] += r->rs.found[k];
        take_run(v, r->vec, &r->m, NULL, text, len, where);
    } else {
        tree_row(v, text, len, where);
    }
    progress(v);
}

/* Scratch `i` big enough for a row of `len` bytes; false (the row then takes the tree path)
 * when it cannot grow. Called by the reading thread only, never while the worker runs. */
static bool scratch_for(nops_vectorize *v, int i, size_t len)
{
    const size_t need = NOPS_RUN_SCRATCH(len);
    if (need <= v->scratch_cap[i])
        return true;
    char *b = nops_malloc(need);
    if (!b)
        return false;
    nops_free(v->scratch[i]);
    v->scratch[i] = b;
    v->scratch_cap[i] = need;
    return true;
}

static void prepare_slot(nops_vectorize *v, int thread, slot *r)
{
    char why[200];
    memset(&r->rs, 0, sizeof r->rs);
    r->e = nops_vector_prepare_text(v->red, v->text + r->off, r->len, v->scratch[thread],
                                    v->scratch_cap[thread], r->vec, &r->m, &r->rs, why,
                                    sizeof why);
}

/* Take chunks of the batch until none is left. */
static void prepare_chunks(nops_vectorize *v, int thread)
{
    size_t i;
    while ((i = atomic_fetch_add(&v->p.next, CHUNK)) < v->n)
        for (size_t k = i; k < i + CHUNK && k < v->n; k++)
            prepare_slot(v, thread, &v->slots[k]);
}

static void *worker_main(void *arg)
{
    nops_vectorize *v = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&v->p.mu);
    for (;;) {
        while (!v->p.quit && v->p.gen == seen)
            pthread_cond_wait(&v->p.work, &v->p.mu);
        if (v->p.quit)
            break;
        seen = v->p.gen;
        pthread_mutex_unlock(&v->p.mu);
        prepare_chunks(v, 1);
        pthread_mutex_lock(&v->p.mu);
        v->p.done_gen = seen;
        pthread_cond_signal(&v->p.done);
    }
    pthread_mutex_unlock(&v->p.mu);
    return NULL;
}

/* The batch: hashed in order, prepared on both cores, then taken in input order. */
static void flush(nops_vectorize *v)
{
    if (!v->n)
        return;
    size_t longest = 0;
    for (size_t k = 0; k < v->n; k++)
        longest = v->slots[k].len > longest ? v->slots[k].len : longest;
    bool two = v->threads == 2 && scratch_for(v, 1, longest);
    scratch_for(v, 0, longest); /* if either cannot grow, long rows take the tree path */
    if (two && !v->p.started)
        v->p.started = two = pthread_create(&v->p.th, NULL, worker_main, v) == 0;
    atomic_store(&v->p.next, 0);
    if (two) {
        pthread_mutex_lock(&v->p.mu);
        v->p.gen++;
        pthread_cond_signal(&v->p.work);
        pthread_mutex_unlock(&v->p.mu);
    }
    for (size_t k = 0; k < v->n; k++) { /* while the worker starts on the rows */
        EVP_DigestUpdate(v->sha, v->text + v->slots[k].off, v->slots[k].len);
        EVP_DigestUpdate(v->sha, "\n", 1);
    }
    prepare_chunks(v, 0);
    if (two) {
        pthread_mutex_lock(&v->p.mu);
        while (v->p.done_gen != v->p.gen)
            pthread_cond_wait(&v->p.done, &v->p.mu);
        pthread_mutex_unlock(&v->p.mu);
    }
    for (size_t k = 0; k < v->n; k++) {
        const slot *r = &v->slots[k];
        finish_row(v, v->text + r->off, r->len, r->where, r);
    }
    v->n = 0;
    v->text_used = 0;
}

/* A row into the batch (its text copied); the batch is flushed when full. A row that cannot
 * be buffered (out of memory) is flushed alone. */
static void batch_row(nops_vectorize *v, const char *text, size_t len, const char *fmt,
                      size_t no)
{
    if (v->text_used + len > v->text_cap) {
        size_t cap = v->text_cap ? v->text_cap : 1 << 20;
        while (cap < v->text_used + len)
            cap *= 2;
        char *b = nops_realloc(v->text, cap);
        if (!b) {
            flush(v);
            char where[32];
            snprintf(where, sizeof where, fmt, no);
            nops_vectorize_row(v, text, len, where);
            return;
        }
        v->text = b;
        v->text_cap = cap;
    }
    slot *r = &v->slots[v->n++];
    r->off = v->text_used;
    r->len = len;
    snprintf(r->where, sizeof r->where, fmt, no);
    memcpy(v->text + v->text_used, text, len);
    v->text_used += len;
    if (v->n == BATCH)
        flush(v);
}

void nops_vectorize_row(nops_vectorize *v, const char *text, size_t len, const char *where)
{
    flush(v); /* rows batched before this one come first */
    EVP_DigestUpdate(v->sha, text, len);
    EVP_DigestUpdate(v->sha, "\n", 1);
    slot *r = &v->slots[0];
    char why[200];
    memset(&r->rs, 0, sizeof r->rs);
    r->e = scratch_for(v, 0, len)
               ? nops_vector_prepare_text(v->red, text, len, v->scratch[0], v->scratch_cap[0],
                                          r->vec, &r->m, &r->rs, why, sizeof why)
               : NOPS_NOMEM;
    finish_row(v, text, len, where, r);
}

/* Lines of `f` from *offset on into the job; with `whole` false a last line without its
 * newline is left for later (a writer may be in the middle of it). *offset moves past what was
 * read. */
static nops_err jsonl_lines(nops_vectorize *v, FILE *f, uint64_t *offset, bool whole)
{
    if (*offset && fseeko(f, (off_t)*offset, SEEK_SET) != 0)
        return NOPS_IO;
    char *line = NULL;
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
        batch_row(v, line, (size_t)n, "line %zu", lineno);
    }
    flush(v);
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
    char *row;
    int n = 0;
    size_t k = 0;
    while (ok && (n = PQgetCopyData(c, &row, 0)) > 0) {
        batch_row(v, row, csv_field(row, (size_t)n), "row %zu", ++k);
        PQfreemem(row);
    }
    flush(v);
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
    st->tree_rows = v->tree_rows;
}

nops_err nops_vectorize_commit(nops_vectorize *v, char *errstr, size_t errstr_size)
{
    flush(v); /* nothing is left batched by the readers; kept for safety */
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
