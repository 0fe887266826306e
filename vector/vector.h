/*
 * vector.h — history → vectors (docs/recommendation.md "Embedding"): the redactor that runs
 * before anything is embedded or written, the embedder shared by past runs and live incidents,
 * the ANN index on the official FAISS C API, and the index directory (runs.faiss, run metadata,
 * manifest.json) with atomic rebuilds.
 *
 * Ownership: every _new/_load result is owned by the caller and freed with its _destroy; inputs
 * are copied or only read during the call. Thread-safety: a redactor, an embedder call and
 * nops_vindex_search on one index may run concurrently from many threads; building (train,
 * add) is single-threaded.
 */
#ifndef NOPS_VECTOR_H
#define NOPS_VECTOR_H

#include "core/core.h"

#include <jansson.h>
#include <stdio.h>

/** [vector] settings. */
typedef struct nops_vector_params {
    char actor_key[256]; /**< secret of the keyed hash that replaces executed_by */
} nops_vector_params;

extern const nops_cfg_section nops_vector_cfg_section;

/* ---- redaction ------------------------------------------------------------------------- */

/** What the redactor finds, each replaced by its placeholder. */
#define NOPS_REDACT_CLASSES(X)                                                                 \
    X(EMAIL, "<EMAIL>")                                                                        \
    X(JWT, "<JWT>")                                                                            \
    X(BEARER, "<TOKEN>")                                                                       \
    X(AWS_KEY, "<AWS_KEY>")                                                                    \
    X(SECRET, "<SECRET>")  /* the value of password=, secret=, api_key=, token=, ... */        \
    X(IP, "<IP>")          /* IPv4 and IPv6 */                                                 \
    X(CARD, "<CARD>")      /* payment card numbers (Luhn-checked) */                           \
    X(PHONE, "<PHONE>")                                                                        \
    X(API_KEY, "<API_KEY>")         /* vendor tokens: GitHub, GitLab, Slack, Stripe, Google, ... */ \
    X(PRIVATE_KEY, "<PRIVATE_KEY>") /* PEM private-key blocks */                               \
    X(IBAN, "<IBAN>")               /* bank account numbers (mod-97 checked) */

typedef enum nops_redact_class {
#define NOPS__REDACT_ENUM(name, ph) NOPS_REDACT_##name,
    NOPS_REDACT_CLASSES(NOPS__REDACT_ENUM)
#undef NOPS__REDACT_ENUM
    NOPS_REDACT_N
} nops_redact_class;

/** Placeholder of a class ("<EMAIL>"), static storage. */
const char *nops_redact_placeholder(nops_redact_class c);

typedef struct nops_redact_stats {
    uint64_t found[NOPS_REDACT_N]; /**< replacements made, by class (added to) */
} nops_redact_stats;

typedef struct nops_redactor nops_redactor;

/** `actor_key`: the secret of the keyed hash that replaces executed_by (must be non-empty). */
nops_redactor *nops_redactor_new(const char *actor_key, char *errstr, size_t errstr_size);
void nops_redactor_destroy(nops_redactor *r);
/**
 * Redact `len` bytes of text into `out` (NUL-terminated). `cap` must be at least
 * NOPS_REDACT_CAP(len). Returns the output length. Counts what it replaced into `st` (may be
 * NULL). Ordinary operations text (hostnames, metric names, versions, durations, timestamps,
 * percentages) passes unchanged.
 */
#define NOPS_REDACT_CAP(len) (3 * (len) + 16)
size_t nops_redact(const nops_redactor *r, const char *in, size_t len, char *out, size_t cap,
                   nops_redact_stats *st);
/**
 * Redact a workflow run (or incident) JSON object in place: the free-text fields
 * (incident_summary, summary, notes, root_cause_hint), signal hints, every label value, and
 * executed_by → its keyed hash. NOPS_NOMEM leaves the object partly redacted (do not use it).
 */
nops_err nops_redact_json(const nops_redactor *r, json_t *obj, nops_redact_stats *st);
/** executed_by → "actor:" + 16 hex digits of HMAC-SHA256(actor_key, who); out holds 24 bytes. */
void nops_redact_actor(const nops_redactor *r, const char *who, char out[24]);
/**
 * A stable stand-in for an identifier that cannot be stored as it is: `prefix` + ":" + 16 hex
 * digits of HMAC-SHA256(HMAC-SHA256(actor_key, prefix), id). Writes at most `cap` bytes
 * (NUL-terminated; strlen(prefix) + 18 are enough).
 */
void nops_redact_id(const nops_redactor *r, const char *prefix, const char *id, char *out,
                    size_t cap);

/** One row of the redactor's rule table (docs/policies/data_redaction.md describes each). */
typedef struct nops_redact_rule_info {
    const char *name;      /**< stable rule name ("github_token"), static storage */
    nops_redact_class cls; /**< what a match counts as and is replaced by */
    const char *doc;       /**< what it matches, one line, static storage */
} nops_redact_rule_info;

/** Row i of the rule table, in the order the rules are tried; false past the last row. */
bool nops_redact_rule(size_t i, nops_redact_rule_info *out);

/* ---- embedding ------------------------------------------------------------------------- */

#define NOPS_EMBED_DIM 256                 /**< vector dimension */
#define NOPS_EMBED_VERSION "nops-embed-2"  /**< changes whenever vectors would change */

/**
 * Embed a workflow run or an incident (JSON objects; the Incident schema of api/openapi.json, a workflow_runs row: fields
 * metrics, labels, signals, incident_summary/summary, root_cause_hint are read when present)
 * into `out`, L2-normalised, so inner product = cosine. NOPS_PARSE when the object holds
 * nothing to embed (no metrics, labels, signals or summary).
 */
nops_err nops_embed_json(const json_t *obj, float out[NOPS_EMBED_DIM]);

/* ---- the ANN index ---------------------------------------------------------------------- */

typedef enum nops_index_type {
    NOPS_INDEX_AUTO = 0, /**< FLAT below NOPS_INDEX_AUTO_FLAT_MAX vectors, else the ANN type */
    NOPS_INDEX_FLAT,     /**< exact inner-product search */
    NOPS_INDEX_IVF,      /**< inverted lists over a coarse quantizer (trained) */
    NOPS_INDEX_HNSW,     /**< graph index */
} nops_index_type;

#define NOPS_INDEX_AUTO_FLAT_MAX 50000

/** "auto" | "flat" | "ivf" | "hnsw"; parse returns NOPS_INVAL for anything else. */
const char *nops_index_type_name(nops_index_type t);
nops_err nops_index_type_parse(const char *s, nops_index_type *t);

typedef struct nops_vindex nops_vindex;

/**
 * An empty inner-product index of dimension `dim` for about `expected_n` vectors; AUTO resolves
 * here from expected_n. NULL with a sentence on failure (FAISS's message included).
 */
nops_vindex *nops_vindex_new(int dim, nops_index_type type, size_t expected_n, char *errstr,
                             size_t errstr_size);
void nops_vindex_destroy(nops_vindex *ix);
/** Train on a sample (IVF needs it before add; a no-op for the others). */
nops_err nops_vindex_train(nops_vindex *ix, const float *x, size_t n, char *errstr,
                           size_t errstr_size);
/** Append n vectors; they get ids count..count+n−1. */
nops_err nops_vindex_add(nops_vindex *ix, const float *x, size_t n, char *errstr,
                         size_t errstr_size);
/**
 * k nearest (largest inner product) of each of nq queries: sims[nq*k] and ids[nq*k] (−1 where
 * fewer than k exist). One thread per call (OpenMP held to 1), safe to call concurrently.
 */
nops_err nops_vindex_search(const nops_vindex *ix, const float *q, size_t nq, int k,
                            float *sims, int64_t *ids, char *errstr, size_t errstr_size);
/**
 * Copy the n stored vectors with ids i0..i0+n−1 into out[n × dim] (IVF scans its lists once per
 * call: ask for a block, not one vector at a time). NOPS_INVAL when the range is not in the
 * index. Read-only: safe beside concurrent searches.
 */
nops_err nops_vindex_reconstruct_n(const nops_vindex *ix, int64_t i0, size_t n, float *out,
                                   char *errstr, size_t errstr_size);
/** Lists probed per IVF search (no-op for the other types). Not thread-safe: call before the
 *  index is shared (benchmarks sweep it; the default is NOPS_INDEX_IVF_NPROBE). */
#define NOPS_INDEX_IVF_NPROBE 16
void nops_vindex_set_nprobe(nops_vindex *ix, int nprobe);
/** IVF searches scan at most factor × nprobe × the mean list's size (0: no cap; no-op for the
 *  other types). Same thread contract as set_nprobe; the default is NOPS_INDEX_IVF_SCAN_CAP. */
#define NOPS_INDEX_IVF_SCAN_CAP 2.0
void nops_vindex_set_scan_cap(nops_vindex *ix, double factor);
/** IVF: search with vindex.c's own scan of FAISS's lists where the index allows it (true, the
 *  default) or always with FAISS's search (false: benchmarks compare the two). Same thread
 *  contract as set_nprobe. */
void nops_vindex_set_in_place(nops_vindex *ix, bool on);
/** What an IVF index's searches scan (benchmarks report it; its cause is the list sizes). */
typedef struct nops_vindex_ivf_stats {
    size_t lists, nprobe, max_codes; /**< max_codes 0: no cap */
    size_t largest_list, empty_lists;
    double mean_list;
    bool in_place; /**< searched by vindex.c's own list scan (OpenBLAS inner products), not
                        FAISS's search: an inner-product IVF-Flat index in memory */
} nops_vindex_ivf_stats;
/**
 * IVF only (NOPS_INVAL for the other types): the lists' sizes into *st and, for each of the nq
 * queries q, how many stored vectors its search scans — the sizes of the nprobe nearest lists
 * in order, stopping at the first that reaches max_codes, as FAISS does — into scanned[nq].
 * Read-only; one thread.
 */
nops_err nops_vindex_ivf_scan(const nops_vindex *ix, const float *q, size_t nq,
                              nops_vindex_ivf_stats *st, size_t *scanned, char *errstr,
                              size_t errstr_size);
size_t nops_vindex_count(const nops_vindex *ix);
int nops_vindex_dim(const nops_vindex *ix);
nops_index_type nops_vindex_type(const nops_vindex *ix);
/** Write to `path` (FAISS's own format; a new file is 0640) and fsync it. */
nops_err nops_vindex_save(const nops_vindex *ix, const char *path, char *errstr,
                          size_t errstr_size);
/** Read from `path`; NULL with a sentence when unreadable, corrupt or not `dim`-dimensional. */
nops_vindex *nops_vindex_load(const char *path, int dim, char *errstr, size_t errstr_size);
/** The same from an open stream at its current position (`name` is for messages); the caller
 *  keeps and closes `f`. */
nops_vindex *nops_vindex_read(FILE *f, const char *name, int dim, char *errstr,
                              size_t errstr_size);

/* ---- the index directory ---------------------------------------------------------------- */
/*
 * DIR/current → gen-<N>/ (a symlink, replaced atomically by rename(2)); each generation holds
 * runs.faiss (vector i = run i), runs.meta (fixed binary records, run i's metadata) and
 * manifest.json {"dimension","count","embedder_version","index_type","source_checksum",
 * "skipped","created_at","generation","files":{"runs.faiss":{"size","sha256"},
 * "runs.meta":{"size","sha256"}}}. Readers open DIR/current; a rebuild writes gen-<N+1>
 * aside (files 0640, fsynced) and swaps the link, so readers see the old or the new
 * generation, never a mix. Opening hashes both files and refuses the generation when either
 * differs from the manifest (corruption, a torn write, a file from another generation). The
 * two newest generations are kept.
 */

typedef enum nops_run_status {
    NOPS_RUN_SUCCESS = 0,
    NOPS_RUN_FAILURE = 1,
    NOPS_RUN_ABORTED = 2,
} nops_run_status;

/** "success" | "failure" | "aborted"; parse returns NOPS_INVAL otherwise. */
const char *nops_run_status_name(nops_run_status s);
nops_err nops_run_status_parse(const char *s, nops_run_status *out);

typedef struct nops_run_meta {
    char run_id[48];
    char playbook_id[48];
    int64_t finished_ns;
    uint8_t status; /* nops_run_status */
    uint8_t pad[7];
} nops_run_meta;

/**
 * One workflow run as vectorize takes it: checks id, playbook_id (1-47 characters; the playbook
 * id of the registry's shape, [a-z0-9._-], holding nothing the redactor finds) and status,
 * redacts the run in place (nops_redact_json), embeds it, and fills `meta`: the playbook id as
 * it is; the run id as it is when it is plain printable ASCII holding nothing the redactor
 * finds, else nops_redact_id(r, "run", id); finished_ns from "finished_at" (0 when absent or
 * not a timestamp). NOPS_PARSE
 * with the reason in `why` for a run that cannot be used (the reason never repeats what the
 * redactor found); NOPS_NOMEM.
 */
nops_err nops_vector_prepare_run(const nops_redactor *r, json_t *run,
                                 float vec[NOPS_EMBED_DIM], nops_run_meta *meta,
                                 nops_redact_stats *st, char *why, size_t why_size);

/**
 * nops_vector_prepare_run from the run's JSON text, without building a tree (vector/runtok.c):
 * for text that json_loadb(text, len, 0) parses, the same result, vector (bit for bit),
 * metadata, redaction counts and reason as json_loadb + nops_vector_prepare_run — except that
 * executed_by is not hashed (it reaches neither the vector nor the metadata). NOPS_UNSUPPORTED
 * when the tokenizer does not vouch for the text (malformed JSON, a duplicate or escaped key, a
 * string past 4 KiB, nesting past 64, …) or `scratch` is too small: the caller then takes the
 * tree path, which decides. `scratch` (scratch_size ≥ NOPS_RUN_SCRATCH(len) is always enough)
 * holds the decoded and redacted strings during the call. Counts go to `st` as they are found:
 * give it a per-row struct and drop it unless NOPS_OK when the row may be retried. Never
 * allocates; thread-safe with distinct scratch, vec, meta and st.
 */
#define NOPS_RUN_SCRATCH(len) (16 * (len) + 64)
nops_err nops_vector_prepare_text(const nops_redactor *r, const char *text, size_t len,
                                  char *scratch, size_t scratch_size,
                                  float vec[NOPS_EMBED_DIM], nops_run_meta *meta,
                                  nops_redact_stats *st, char *why, size_t why_size);

typedef struct nops_histdir_writer nops_histdir_writer;

/** Start a new generation under `dir` (created if missing). */
nops_histdir_writer *nops_histdir_begin(const char *dir, nops_index_type type, char *errstr,
                                        size_t errstr_size);
/**
 * Start a generation that extends DIR/current: its trained index takes the new runs (no
 * retraining), its runs stay. NULL with a sentence when there is no usable current generation.
 */
nops_histdir_writer *nops_histdir_append(const char *dir, char *errstr, size_t errstr_size);
/** Buffer one embedded run (vector copied); NOPS_EXISTS when its run_id is already there,
 *  NOPS_INVAL when `vec` is not an embedding (not finite, or not of unit length). */
nops_err nops_histdir_add(nops_histdir_writer *w, const float vec[NOPS_EMBED_DIM],
                          const nops_run_meta *meta);
/** Runs added since begin/append. */
size_t nops_histdir_pending(const nops_histdir_writer *w);
/**
 * Build the index (training when needed), write the generation, swap DIR/current, drop older
 * generations but one; `checksum` identifies the source (hex SHA-256). Frees the writer
 * whatever the result. On failure the current generation is untouched.
 */
nops_err nops_histdir_commit(nops_histdir_writer *w, const char *checksum, size_t skipped,
                             char *errstr, size_t errstr_size);
void nops_histdir_abort(nops_histdir_writer *w);

typedef struct nops_histdir nops_histdir;

/**
 * Open DIR/current (or DIR itself when it holds a generation's files). Refused with a
 * sentence when a file is missing, corrupt or differs from the size and SHA-256 the manifest
 * records for it, when the manifest records none (written by an older build), or when its
 * dimension, count or embedder version does not match this build.
 */
nops_histdir *nops_histdir_open(const char *dir, char *errstr, size_t errstr_size);
void nops_histdir_close(nops_histdir *h);
const nops_vindex *nops_histdir_index(const nops_histdir *h);
/** Metadata of run `id` (0..count−1), or NULL. */
const nops_run_meta *nops_histdir_meta(const nops_histdir *h, int64_t id);
size_t nops_histdir_count(const nops_histdir *h);
/** The generation number opened (increases with each rebuild). */
uint64_t nops_histdir_generation(const nops_histdir *h);
/** The generation DIR/current points at now (0 if none): cheap, for reload checks. */
uint64_t nops_histdir_current(const char *dir);

/* ---- the vectorize pipeline ------------------------------------------------------------- */
/*
 * Rows (workflow runs as JSON text) → nops_vector_prepare_run → nops_histdir_add, the source
 * hashed as it streams, then one commit: what `neuralops vectorize`, the demo and the
 * benchmark run. A job is used from one thread at a time; its readers (JSONL, PostgreSQL)
 * prepare rows on a worker thread too (opts.threads) and take the results in input order, so
 * the output does not depend on the number of threads. The job owns its redactor and writer.
 */

typedef struct nops_vectorize_stats {
    size_t rows;       /* rows read */
    size_t skipped;    /* rows that could not be used */
    size_t known;      /* runs indexed already (append) or repeated in the input */
    size_t pending;    /* runs buffered for the generation */
    uint64_t redacted; /* values the redactor replaced */
    double elapsed_s;  /* since begin */
    int64_t last_finished_ns; /* latest finished_at among the usable rows (0 = none) */
    size_t tree_rows;  /* rows read through the jansson tree (the tokenizer did not vouch for
                          them, or they were skipped: the tree path words the reason) */
} nops_vectorize_stats;

typedef struct nops_vectorize_opts {
    const char *actor_key;   /* key for executed_by and redacted ids (nops_redactor_new) */
    const char *dir;         /* index directory */
    nops_index_type type;    /* index kind of a new generation */
    bool append;             /* extend DIR/current instead of a new generation */
    /** A skipped row: `where` names it ("line 3 id …"), `why` is redacted. May be NULL. */
    void (*on_skip)(void *ud, const char *where, const char *why);
    /** Called at most once a second while rows stream. May be NULL. */
    void (*on_progress)(void *ud, const nops_vectorize_stats *st);
    void *ud;                /* passed to the callbacks */
    int threads;             /* threads preparing rows in the readers: 0 = 2 when the machine
                                has 2 or more cores, else 1; 1 = the calling thread only */
} nops_vectorize_opts;

typedef struct nops_vectorize nops_vectorize;

/** Start a job (options copied); NULL with a sentence when the redactor or the writer cannot
 *  start. Free with nops_vectorize_destroy. */
nops_vectorize *nops_vectorize_begin(const nops_vectorize_opts *o, char *errstr,
                                     size_t errstr_size);
/** Abort what is not committed and free (NULL is fine). */
void nops_vectorize_destroy(nops_vectorize *v);
/** One row of JSON text; `where` names it for the skip report. */
void nops_vectorize_row(nops_vectorize *v, const char *text, size_t len, const char *where);
/** Every non-empty line of `f` (the caller keeps `f`); NOPS_IO on a read error. */
nops_err nops_vectorize_jsonl(nops_vectorize *v, FILE *f);
/**
 * The complete lines of `f` from byte *offset on (the caller keeps `f`), for a file another
 * process appends to: a last line without its newline is left for the next call; *offset moves
 * past every line read. NOPS_IO on a seek or read error.
 */
nops_err nops_vectorize_jsonl_from(nops_vectorize *v, FILE *f, uint64_t *offset);
/** Every row of table workflow_runs through COPY; NOPS_IO with a sentence on failure. */
nops_err nops_vectorize_postgres(nops_vectorize *v, const char *dsn, char *errstr,
                                 size_t errstr_size);
/** The rows of workflow_runs that finished at or after `since_ns` (wall clock, ns since the
 *  epoch) or carry no finished_at; INT64_MIN = every row (nops_vectorize_postgres). */
nops_err nops_vectorize_postgres_since(nops_vectorize *v, const char *dsn, int64_t since_ns,
                                       char *errstr, size_t errstr_size);
void nops_vectorize_get_stats(const nops_vectorize *v, nops_vectorize_stats *st);
/** Build and swap in the generation (nops_histdir_commit); the job is then only for stats
 *  and destroy. */
nops_err nops_vectorize_commit(nops_vectorize *v, char *errstr, size_t errstr_size);

#endif /* NOPS_VECTOR_H */
