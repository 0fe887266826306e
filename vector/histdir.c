/*
 * histdir.c — the index directory of vector.h: generations written aside, DIR/current swapped
 * with rename(2), each generation's files checksummed in its manifest and checked on open.
 *
 * Integrity: commit writes runs.faiss and runs.meta (0640, fsynced), then records the size and
 * SHA-256 of each in manifest.json ("files"), written by a durable replace, and only then swaps
 * the link (and fsyncs the directory). Open hashes each file before it is parsed — runs.faiss
 * through the same open stream FAISS then reads — and refuses the generation on any mismatch,
 * so a flipped byte, a torn write or a file swapped from another generation is an error with a
 * sentence, never a loaded index. The checksums detect accidents, not attackers: whoever can
 * write the directory can also rewrite the manifest (docs/security.md).
 *
 * Run metadata holds identifiers only: a playbook id must have the registry's shape and hold
 * nothing the redactor finds (else the run is refused); a run id that is not plain ASCII or
 * holds something the redactor finds is stored as a keyed hash ("run:" + 16 hex digits).
 */
#include "vector/histdir_int.h"
#include "vector/run_int.h"
#include "parse/parse.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>


static nops_err vector_finalize(void *base, char *errstr, size_t errstr_size)
{
    nops_vector_params *p = base;
    if (!p->actor_key[0]) {
        nops_errf(errstr, errstr_size, "vector.actor_key must not be empty");
        return NOPS_CONFIG;
    }
    return NOPS_OK;
}

static const nops_cfg_entry vector_entries[] = {
    {"actor_key", NOPS_CFG_STRING, offsetof(nops_vector_params, actor_key), 0,
     sizeof(((nops_vector_params *)0)->actor_key), "neuralops-change-me", NULL, NULL,
     NOPS_CFG_SECRET,
     "Secret of the keyed hash (HMAC-SHA256) that replaces executed_by before anything is "
     "written; change it (NEURALOPS_VECTOR_ACTOR_KEY) so hashes cannot be recomputed from names: "
     "serve and vectorize refuse to start with the default (only the demo uses it)."},
};

const nops_cfg_section nops_vector_cfg_section = {
    "vector", "History vectorization (`neuralops vectorize`; docs/policies/data_redaction.md).",
    vector_entries, 1, vector_finalize};

static const char *status_names[] = {"success", "failure", "aborted"};

const char *nops_run_status_name(nops_run_status s)
{
    return (unsigned)s < 3 ? status_names[s] : "unknown";
}

nops_err nops_run_status_parse(const char *s, nops_run_status *out)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, status_names[i]) == 0) {
            *out = (nops_run_status)i;
            return NOPS_OK;
        }
    return NOPS_INVAL;
}

/* ---- one run ---------------------------------------------------------------------------- */

static bool usable_id(const char *s)
{
    return s && *s && strlen(s) < sizeof(((nops_run_meta *)0)->run_id);
}

/* The playbook registry's id grammar: [a-z0-9._-]. */
static bool playbook_shaped(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("._-", *s)))
            return false;
    return true;
}

/* Printable ASCII without space, quotes, backslash or angle brackets. */
static bool plain_ascii(const char *s)
{
    for (; *s; s++)
        if (*s <= ' ' || *s > '~' || strchr("\"'`\\<>", *s))
            return false;
    return true;
}

/* What the redactor would replace in id, or in any part of it after a separator ("run-",
 * "pb_"), where a rule that only looks at token starts would not look (-1: nothing). */
static int redactable(const nops_redactor *r, const char *id)
{
    char out[NOPS_REDACT_CAP(48)];
    const size_t len = strlen(id);
    for (size_t i = 0; i < len; i++) {
        if (i && !strchr("-_.:/+", id[i - 1]))
            continue;
        nops_redact_stats st = {{0}};
        nops_redact(r, id + i, len - i, out, sizeof out, &st);
        for (int c = 0; c < NOPS_REDACT_N; c++)
            if (st.found[c])
                return c;
    }
    return -1;
}

nops_err nops__run_check(const nops_redactor *r, const char *id, const char *pb,
                         const char *status_s, const char *fin, nops_run_meta *meta, char *why,
                         size_t why_size)
{
    nops_run_status status;
    memset(meta, 0, sizeof *meta);
    if (!usable_id(id)) {
        nops_errf(why, why_size, "no usable \"id\" (a string of 1-47 characters)");
        return NOPS_PARSE;
    }
    if (!usable_id(pb)) {
        nops_errf(why, why_size, "no usable \"playbook_id\" (a string of 1-47 characters)");
        return NOPS_PARSE;
    }
    if (nops_run_status_parse(status_s, &status) != NOPS_OK) {
        nops_errf(why, why_size, "\"status\" must be success, failure or aborted");
        return NOPS_PARSE;
    }
    if (!playbook_shaped(pb)) {
        nops_errf(why, why_size, "\"playbook_id\" is not a playbook id (1-47 of [a-z0-9._-])");
        return NOPS_PARSE;
    }
    if (!fin || nops_ingest_parse_timestamp(fin, strlen(fin), &meta->finished_ns, NULL) != NOPS_OK ||
        meta->finished_ns < 0)
        meta->finished_ns = 0; /* when it ran is shown where known; a run without it is used */
    const int found = redactable(r, pb);
    if (found >= 0) { /* a playbook id never holds a secret: this row is not what it claims */
        nops_errf(why, why_size, "\"playbook_id\" holds what looks like %s; not indexed",
                  nops_redact_placeholder((nops_redact_class)found));
        return NOPS_PARSE;
    }
    return NOPS_OK;
}

void nops__run_finish(const nops_redactor *r, const char *id, const char *pb,
                      const char *status_s, nops_run_meta *meta, nops_redact_stats *st)
{
    nops_run_status status = NOPS_RUN_SUCCESS;
    nops_run_status_parse(status_s, &status); /* checked by nops__run_check */
    const int in_id = redactable(r, id);
    if (in_id < 0 && plain_ascii(id)) {
        snprintf(meta->run_id, sizeof meta->run_id, "%s", id);
    } else { /* stored as a keyed hash: stable for --append, reveals nothing */
        nops_redact_id(r, "run", id, meta->run_id, sizeof meta->run_id);
        if (st && in_id >= 0)
            st->found[in_id]++;
    }
    snprintf(meta->playbook_id, sizeof meta->playbook_id, "%s", pb);
    meta->status = (uint8_t)status;
}

nops_err nops_vector_prepare_run(const nops_redactor *r, json_t *run,
                                 float vec[NOPS_EMBED_DIM], nops_run_meta *meta,
                                 nops_redact_stats *st, char *why, size_t why_size)
{
    const char *id = json_string_value(json_object_get(run, "id"));
    const char *pb = json_string_value(json_object_get(run, "playbook_id"));
    const char *status = json_string_value(json_object_get(run, "status"));
    nops_err e = nops__run_check(r, id, pb, status,
                                 json_string_value(json_object_get(run, "finished_at")), meta,
                                 why, why_size);
    if (e != NOPS_OK)
        return e;
    if (nops_redact_json(r, run, st) != NOPS_OK) {
        nops_errf(why, why_size, "out of memory");
        return NOPS_NOMEM;
    }
    /* the id and playbook id strings survive redaction (neither field is rewritten) */
    if (nops_embed_json(run, vec) != NOPS_OK) {
        nops_errf(why, why_size, "nothing to embed (no metrics, labels, signals or summary)");
        return NOPS_PARSE;
    }
    nops__run_finish(r, id, pb, status, meta, st);
    return NOPS_OK;
}

/* ---- writing ---------------------------------------------------------------------------- */

struct nops_histdir_writer {
    char dir[512];
    nops_index_type type;
    float *vecs;             /* pending vectors */
    nops_run_meta *meta;     /* base runs (when appending) then pending runs */
    size_t n_base, n, cap;   /* n counts base + pending; vecs holds n − n_base */
    nops_vindex *base;       /* the current generation's index when appending, else NULL */
    uint64_t *seen;          /* open addressing over XXH3(run_id) | 1; 0 = empty */
    size_t *seen_at;         /* the run (index into meta) of each used slot of seen */
    size_t seen_cap;         /* power of two, kept ≥ 2·n */
    uint64_t compares;       /* run ids compared as strings (nops__histdir_compares) */
};

/*
 * The slot of run id `id` (hash h) in the seen table: the one holding it (*dup true), or the
 * empty one where it goes. A slot with the same hash is compared with its own run only, so a
 * run id costs one string comparison whatever the number of runs (a restart of the learning
 * loop reads the whole history again: every row is a known run).
 */
static size_t seen_find(nops_histdir_writer *w, const char *id, uint64_t h, bool *dup)
{
    const size_t mask = w->seen_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (w->seen[i] == 0) {
            *dup = false;
            return i;
        }
        if (w->seen[i] == h) { /* the same hash: the same id, unless a 64-bit collision */
            w->compares++;
            if (strcmp(w->meta[w->seen_at[i]].run_id, id) == 0) {
                *dup = true;
                return i;
            }
        }
    }
}

/* Room for `need` run ids (2× slack), rehashing the known ones; false when out of memory. */
static bool seen_grow(nops_histdir_writer *w, size_t need)
{
    size_t cap = w->seen_cap ? w->seen_cap : 8192;
    while (cap < 2 * need)
        cap *= 2;
    if (cap == w->seen_cap)
        return true;
    uint64_t *t = nops_calloc(cap, sizeof *t);
    size_t *at = nops_calloc(cap, sizeof *at);
    if (!t || !at) {
        nops_free(t);
        nops_free(at);
        return false;
    }
    for (size_t k = 0; k < w->n; k++) { /* the runs are distinct: the first free slot */
        const uint64_t h = XXH3_64bits(w->meta[k].run_id, strlen(w->meta[k].run_id)) | 1;
        size_t i = (size_t)h & (cap - 1);
        while (t[i])
            i = (i + 1) & (cap - 1);
        t[i] = h;
        at[i] = k;
    }
    nops_free(w->seen);
    nops_free(w->seen_at);
    w->seen = t;
    w->seen_at = at;
    w->seen_cap = cap;
    return true;
}

uint64_t nops__histdir_compares(const nops_histdir_writer *w)
{
    return w->compares;
}

nops_histdir_writer *nops_histdir_begin(const char *dir, nops_index_type type, char *errstr,
                                        size_t errstr_size)
{
    if (nops_dir_make(dir) != 0) {
        nops_errf(errstr, errstr_size, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    nops_histdir_writer *w = nops_calloc(1, sizeof *w);
    if (!w) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    w->type = type;
    return w;
}

/*
 * Ask for transparent huge pages under the buffered vectors (1 KiB a run, written once, in
 * order): with 4 KiB pages the first touch of each page faulted, and on this machine's VM
 * those faults were 70 % of nops_histdir_add and the largest serial cost of vectorize. A hint
 * only: ignored where THP is off or the call is missing.
 */
static void huge_pages(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t two_mb = (uintptr_t)2 << 20;
    const uintptr_t a = ((uintptr_t)p + two_mb - 1) & ~(two_mb - 1);
    const uintptr_t b = ((uintptr_t)p + len) & ~(two_mb - 1);
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

nops_err nops_histdir_add(nops_histdir_writer *w, const float vec[NOPS_EMBED_DIM],
                          const nops_run_meta *meta)
{
    double norm = 0;
    for (int d = 0; d < NOPS_EMBED_DIM; d++)
        norm += (double)vec[d] * vec[d];
    if (!(fabs(norm - 1) < 1e-3)) /* not an embedding (NaN and inf fail here too) */
        return NOPS_INVAL;
    if (!seen_grow(w, w->n + 1))
        return NOPS_NOMEM;
    bool dup;
    const uint64_t h = XXH3_64bits(meta->run_id, strlen(meta->run_id)) | 1;
    const size_t slot = seen_find(w, meta->run_id, h, &dup);
    if (dup)
        return NOPS_EXISTS;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        float *v = nops_realloc(w->vecs, (cap - w->n_base) * NOPS_EMBED_DIM * sizeof *v);
        if (!v)
            return NOPS_NOMEM;
        w->vecs = v;
        huge_pages(v, (cap - w->n_base) * NOPS_EMBED_DIM * sizeof *v);
        nops_run_meta *m = nops_realloc(w->meta, cap * sizeof *m);
        if (!m)
            return NOPS_NOMEM;
        w->meta = m;
        w->cap = cap;
    }
    memcpy(w->vecs + (w->n - w->n_base) * NOPS_EMBED_DIM, vec, NOPS_EMBED_DIM * sizeof *vec);
    w->meta[w->n] = *meta;
    w->seen[slot] = h; /* remembered only once it is there */
    w->seen_at[slot] = w->n++;
    return NOPS_OK;
}

size_t nops_histdir_pending(const nops_histdir_writer *w)
{
    return w->n - w->n_base;
}

void nops_histdir_abort(nops_histdir_writer *w)
{
    if (!w)
        return;
    nops_vindex_destroy(w->base);
    nops_free(w->vecs);
    nops_free(w->meta);
    nops_free(w->seen);
    nops_free(w->seen_at);
    nops_free(w);
}

uint64_t nops_histdir_current(const char *dir)
{
    char link[600], target[600];
    snprintf(link, sizeof link, "%s/current", dir);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    unsigned long long g = 0;
    return sscanf(target, "gen-%llu", &g) == 1 ? g : 0;
}

bool nops__sum_stream(FILE *f, nops__file_sum *out)
{
    unsigned char buf[1 << 16], d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    size_t got;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    out->size = 0;
    while (ok && (got = fread(buf, 1, sizeof buf, f)) > 0) {
        ok = EVP_DigestUpdate(md, buf, got);
        out->size += got;
    }
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, d, &dl) && dl == 32;
    EVP_MD_CTX_free(md);
    if (ok)
        nops_hex(d, 32, out->sha256);
    return ok;
}

bool nops__sum_mem(const void *data, size_t len, nops__file_sum *out)
{
    out->size = len;
    return nops_sha256_hex(data, len, out->sha256);
}

/* Size and SHA-256 of the file as written (read back; fsynced again for good measure). */
static nops_err sum_file(const char *path, nops__file_sum *fs, char *errstr,
                         size_t errstr_size)
{
    FILE *f = nops_file_fopen(path, "r");
    bool ok = f && nops__sum_stream(f, fs) && fsync(fileno(f)) == 0;
    if (f)
        fclose(f);
    if (!ok)
        nops_errf(errstr, errstr_size, "cannot read back %s: %s", path, strerror(errno));
    return ok ? NOPS_OK : NOPS_IO;
}

static nops_err write_meta(const char *path, const nops_run_meta *m, size_t n, char *errstr,
                           size_t errstr_size)
{
    FILE *f = nops_file_fopen(path, "w");
    uint64_t count = n;
    bool ok = f && fwrite(NOPS__META_MAGIC, 8, 1, f) == 1 &&
              fwrite(&count, sizeof count, 1, f) == 1 &&
              (n == 0 || fwrite(m, sizeof *m, n, f) == n);
    ok = f && fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (f)
        ok = fclose(f) == 0 && ok;
    if (!ok)
        nops_errf(errstr, errstr_size, "cannot write %s: %s", path, strerror(errno));
    return ok ? NOPS_OK : NOPS_IO;
}

/* manifest.json, with the size and SHA-256 of runs.faiss (sums[0]) and runs.meta (sums[1]). */
static nops_err write_manifest(const char *path, const nops_vindex *ix, size_t n,
                               const char *checksum, size_t skipped, uint64_t gen,
                               const nops__file_sum sums[2], char *errstr, size_t errstr_size)
{
    char ts[40];
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    json_t *files = json_pack("{s:{s:I, s:s}, s:{s:I, s:s}}", NOPS__INDEX_FILE, "size",
                              (json_int_t)sums[0].size, "sha256", sums[0].sha256,
                              NOPS__META_FILE, "size", (json_int_t)sums[1].size, "sha256",
                              sums[1].sha256);
    json_t *o = files ? json_pack("{s:i, s:I, s:s, s:s, s:s, s:I, s:s, s:I, s:o}", "dimension",
                                  NOPS_EMBED_DIM, "count", (json_int_t)n, "embedder_version",
                                  NOPS_EMBED_VERSION, "index_type",
                                  nops_index_type_name(nops_vindex_type(ix)), "source_checksum",
                                  checksum ? checksum : "", "skipped", (json_int_t)skipped,
                                  "created_at", ts, "generation", (json_int_t)gen, "files",
                                  files)
                      : NULL;
    char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    int rc = text ? nops_file_replace(path, text, strlen(text)) : -1;
    free(text);
    json_decref(o);
    if (rc != 0) {
        nops_errf(errstr, errstr_size, "cannot write %s: %s", path,
                  text ? strerror(errno) : "out of memory");
        return NOPS_IO;
    }
    return NOPS_OK;
}

/* Remove gen-* directories older than `keep_from`. */
static void prune(const char *dir, uint64_t keep_from)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned long long g;
        if (sscanf(e->d_name, "gen-%llu", &g) != 1 || g >= keep_from)
            continue;
        char p[1200];
        const char *files[] = {NOPS__INDEX_FILE, NOPS__META_FILE, NOPS__MANIFEST_FILE};
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/%s/%s", dir, e->d_name, files[i]);
            unlink(p);
        }
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        rmdir(p);
    }
    if (d)
        closedir(d);
}

static nops_vindex *build_index(nops_histdir_writer *w, char *errstr, size_t errstr_size)
{
    const size_t pending = w->n - w->n_base;
    if (w->base) { /* appending: the trained index takes the new vectors */
        nops_vindex *ix = w->base;
        w->base = NULL;
        if (nops_vindex_add(ix, w->vecs, pending, errstr, errstr_size) != NOPS_OK) {
            nops_vindex_destroy(ix);
            return NULL;
        }
        return ix;
    }
    nops_vindex *ix = nops_vindex_new(NOPS_EMBED_DIM, w->type, w->n, errstr, errstr_size);
    if (!ix)
        return NULL;
    if (nops_vindex_train(ix, w->vecs, w->n, errstr, errstr_size) != NOPS_OK ||
        nops_vindex_add(ix, w->vecs, w->n, errstr, errstr_size) != NOPS_OK) {
        nops_vindex_destroy(ix);
        return NULL;
    }
    return ix;
}

/* The generation's files in gdir: index, metadata, then the manifest that checksums both. */
static nops_err write_generation(nops_histdir_writer *w, const nops_vindex *ix,
                                 const char *gdir, const char *checksum, size_t skipped,
                                 uint64_t gen, char *errstr, size_t errstr_size)
{
    char index[800], meta[800], manifest[800];
    snprintf(index, sizeof index, "%s/" NOPS__INDEX_FILE, gdir);
    snprintf(meta, sizeof meta, "%s/" NOPS__META_FILE, gdir);
    snprintf(manifest, sizeof manifest, "%s/" NOPS__MANIFEST_FILE, gdir);
    nops__file_sum sums[2];
    nops_err e;
    if ((e = nops_vindex_save(ix, index, errstr, errstr_size)) != NOPS_OK ||
        (e = write_meta(meta, w->meta, w->n, errstr, errstr_size)) != NOPS_OK ||
        (e = sum_file(index, &sums[0], errstr, errstr_size)) != NOPS_OK ||
        (e = sum_file(meta, &sums[1], errstr, errstr_size)) != NOPS_OK)
        return e;
    return write_manifest(manifest, ix, w->n, checksum, skipped, gen, sums, errstr,
                          errstr_size);
}

nops_err nops_histdir_commit(nops_histdir_writer *w, const char *checksum, size_t skipped,
                             char *errstr, size_t errstr_size)
{
    uint64_t gen = nops_histdir_current(w->dir) + 1;
    char gdir[700], path[800], tmp_link[700], link[700];
    snprintf(gdir, sizeof gdir, "%s/gen-%llu", w->dir, (unsigned long long)gen);
    nops_err e = NOPS_IO;
    nops_vindex *ix = build_index(w, errstr, errstr_size);
    if (!ix)
        goto out;
    if (nops_dir_make(gdir) != 0) {
        nops_errf(errstr, errstr_size, "cannot create %s: %s", gdir, strerror(errno));
        goto out;
    }
    if ((e = write_generation(w, ix, gdir, checksum, skipped, gen, errstr, errstr_size)) !=
        NOPS_OK)
        goto out;
    /* the swap: a new link beside the old one, renamed over it, made durable */
    snprintf(tmp_link, sizeof tmp_link, "%s/.current.tmp", w->dir);
    snprintf(link, sizeof link, "%s/current", w->dir);
    snprintf(path, sizeof path, "gen-%llu", (unsigned long long)gen);
    unlink(tmp_link);
    if (symlink(path, tmp_link) != 0 || rename(tmp_link, link) != 0 ||
        nops_fsync_dir_of(link) != 0) {
        nops_errf(errstr, errstr_size, "cannot switch %s to %s: %s", link, path,
                  strerror(errno));
        e = NOPS_IO;
        goto out;
    }
    prune(w->dir, gen > 1 ? gen - 1 : gen);
    e = NOPS_OK;
out:
    nops_vindex_destroy(ix);
    nops_histdir_abort(w);
    return e;
}

nops_histdir_writer *nops_histdir_append(const char *dir, char *errstr, size_t errstr_size)
{
    nops_histdir *h = nops_histdir_open(dir, errstr, errstr_size);
    if (!h)
        return NULL;
    nops_histdir_writer *w = nops_histdir_begin(dir, nops_vindex_type(h->ix), errstr,
                                                errstr_size);
    if (!w) {
        nops_histdir_close(h);
        return NULL;
    }
    w->base = h->ix; /* the writer takes the index and the metadata over */
    w->meta = h->meta;
    w->n = w->n_base = w->cap = h->n;
    h->ix = NULL;
    h->meta = NULL;
    nops_histdir_close(h);
    if (!seen_grow(w, w->n)) { /* index every base run */
        nops_errf(errstr, errstr_size, "out of memory");
        nops_histdir_abort(w);
        return NULL;
    }
    return w;
}
