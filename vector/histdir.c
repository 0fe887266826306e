/*
 * histdir.c — the index directory of vector.h: generations written aside, DIR/current swapped
 * with rename(2), manifest checked on open.
 */
#include "vector/vector.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define META_MAGIC "NOPSRUN1"

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

nops_err nops_vector_prepare_run(const nops_redactor *r, json_t *run,
                                 float vec[NOPS_EMBED_DIM], nops_run_meta *meta,
                                 nops_redact_stats *st, char *why, size_t why_size)
{
    const char *id = json_string_value(json_object_get(run, "id"));
    const char *pb = json_string_value(json_object_get(run, "playbook_id"));
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
    if (nops_run_status_parse(json_string_value(json_object_get(run, "status")), &status) !=
        NOPS_OK) {
        nops_errf(why, why_size, "\"status\" must be success, failure or aborted");
        return NOPS_PARSE;
    }
    if (nops_redact_json(r, run, st) != NOPS_OK) { /* id and playbook_id are not touched */
        nops_errf(why, why_size, "out of memory");
        return NOPS_NOMEM;
    }
    if (nops_embed_json(run, vec) != NOPS_OK) {
        nops_errf(why, why_size, "nothing to embed (no metrics, labels, signals or summary)");
        return NOPS_PARSE;
    }
    char safe[NOPS_REDACT_CAP(48)];
    nops_redact(r, id, strlen(id), safe, sizeof safe, NULL);
    snprintf(meta->run_id, sizeof meta->run_id, "%.47s", safe);
    nops_redact(r, pb, strlen(pb), safe, sizeof safe, NULL);
    snprintf(meta->playbook_id, sizeof meta->playbook_id, "%.47s", safe);
    meta->status = (uint8_t)status;
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
    size_t seen_cap;         /* power of two, kept ≥ 2·n */
};

static void seen_put(uint64_t *t, size_t cap, uint64_t h)
{
    for (size_t i = (size_t)h & (cap - 1); t[i] != h; i = (i + 1) & (cap - 1))
        if (t[i] == 0) {
            t[i] = h;
            return;
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
    if (!t)
        return false;
    for (size_t i = 0; i < w->n; i++)
        seen_put(t, cap, XXH3_64bits(w->meta[i].run_id, strlen(w->meta[i].run_id)) | 1);
    nops_free(w->seen);
    w->seen = t;
    w->seen_cap = cap;
    return true;
}

/* Remember run_id; false when it was there already (a duplicate). */
static bool remember(nops_histdir_writer *w, const char *id)
{
    if (!seen_grow(w, w->n + 1))
        return true; /* cannot track: accept */
    uint64_t h = XXH3_64bits(id, strlen(id)) | 1;
    size_t mask = w->seen_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (w->seen[i] == 0) {
            w->seen[i] = h;
            return true;
        }
        if (w->seen[i] == h) { /* the same hash: a duplicate, unless a 64-bit collision */
            for (size_t k = 0; k < w->n; k++)
                if (strcmp(w->meta[k].run_id, id) == 0)
                    return false;
            return true;
        }
    }
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

nops_err nops_histdir_add(nops_histdir_writer *w, const float vec[NOPS_EMBED_DIM],
                          const nops_run_meta *meta)
{
    if (!remember(w, meta->run_id))
        return NOPS_EXISTS;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        float *v = nops_realloc(w->vecs, (cap - w->n_base) * NOPS_EMBED_DIM * sizeof *v);
        if (!v)
            return NOPS_NOMEM;
        w->vecs = v;
        nops_run_meta *m = nops_realloc(w->meta, cap * sizeof *m);
        if (!m)
            return NOPS_NOMEM;
        w->meta = m;
        w->cap = cap;
    }
    memcpy(w->vecs + (w->n - w->n_base) * NOPS_EMBED_DIM, vec, NOPS_EMBED_DIM * sizeof *vec);
    w->meta[w->n++] = *meta;
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

static nops_err write_meta(const char *path, const nops_run_meta *m, size_t n, char *errstr,
                           size_t errstr_size)
{
    FILE *f = nops_file_fopen(path, "w");
    uint64_t count = n;
    bool ok = f && fwrite(META_MAGIC, 8, 1, f) == 1 && fwrite(&count, sizeof count, 1, f) == 1 &&
              (n == 0 || fwrite(m, sizeof *m, n, f) == n);
    ok = f && fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (f)
        ok = fclose(f) == 0 && ok;
    if (!ok)
        nops_errf(errstr, errstr_size, "cannot write %s: %s", path, strerror(errno));
    return ok ? NOPS_OK : NOPS_IO;
}

static nops_err write_manifest(const char *path, const nops_vindex *ix, size_t n,
                               const char *checksum, size_t skipped, uint64_t gen,
                               char *errstr, size_t errstr_size)
{
    char ts[40];
    nops_format_ts(nops_wall_ns(), ts, sizeof ts);
    json_t *o = json_pack("{s:i, s:I, s:s, s:s, s:s, s:I, s:s, s:I}", "dimension",
                          NOPS_EMBED_DIM, "count", (json_int_t)n, "embedder_version",
                          NOPS_EMBED_VERSION, "index_type",
                          nops_index_type_name(nops_vindex_type(ix)), "source_checksum",
                          checksum ? checksum : "", "skipped", (json_int_t)skipped, "created_at",
                          ts, "generation", (json_int_t)gen);
    FILE *f = o ? nops_file_fopen(path, "w") : NULL;
    int rc = f ? json_dumpf(o, f, JSON_INDENT(2)) : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    json_decref(o);
    if (rc != 0) {
        nops_errf(errstr, errstr_size, "cannot write %s: %s", path, strerror(errno));
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
        const char *files[] = {"runs.faiss", "runs.meta", "manifest.json"};
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
    snprintf(path, sizeof path, "%s/runs.faiss", gdir);
    if ((e = nops_vindex_save(ix, path, errstr, errstr_size)) != NOPS_OK)
        goto out;
    snprintf(path, sizeof path, "%s/runs.meta", gdir);
    if ((e = write_meta(path, w->meta, w->n, errstr, errstr_size)) != NOPS_OK)
        goto out;
    snprintf(path, sizeof path, "%s/manifest.json", gdir);
    if ((e = write_manifest(path, ix, w->n, checksum, skipped, gen, errstr, errstr_size)) !=
        NOPS_OK)
        goto out;
    /* the swap: a new link beside the old one, renamed over it */
    snprintf(tmp_link, sizeof tmp_link, "%s/.current.tmp", w->dir);
    snprintf(link, sizeof link, "%s/current", w->dir);
    snprintf(path, sizeof path, "gen-%llu", (unsigned long long)gen);
    unlink(tmp_link);
    if (symlink(path, tmp_link) != 0 || rename(tmp_link, link) != 0) {
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

/* ---- reading ---------------------------------------------------------------------------- */

struct nops_histdir {
    nops_vindex *ix;
    nops_run_meta *meta;
    size_t n;
    uint64_t gen;
};

static nops_err read_manifest(const char *path, size_t *count, uint64_t *gen, char *errstr,
                              size_t errstr_size)
{
    json_error_t je;
    FILE *f = nops_file_fopen(path, "r");
    json_t *o = f ? json_loadf(f, 0, &je) : NULL;
    if (!f)
        snprintf(je.text, sizeof je.text, "%s", strerror(errno));
    else
        fclose(f);
    if (!o) {
        nops_errf(errstr, errstr_size, "%s: %s", path, je.text);
        return NOPS_PARSE;
    }
    const char *ver = json_string_value(json_object_get(o, "embedder_version"));
    json_int_t dim = json_integer_value(json_object_get(o, "dimension"));
    json_t *cnt = json_object_get(o, "count");
    nops_err e = NOPS_OK;
    if (dim != NOPS_EMBED_DIM) {
        nops_errf(errstr, errstr_size, "%s: dimension %lld, this build embeds in %d", path,
                  (long long)dim, NOPS_EMBED_DIM);
        e = NOPS_CONFIG;
    } else if (!ver || strcmp(ver, NOPS_EMBED_VERSION) != 0) {
        nops_errf(errstr, errstr_size, "%s: embedder version \"%s\", this build is \"%s\": run "
                  "neuralops vectorize again", path, ver ? ver : "(none)", NOPS_EMBED_VERSION);
        e = NOPS_CONFIG;
    } else if (!json_is_integer(cnt) || json_integer_value(cnt) < 0) {
        nops_errf(errstr, errstr_size, "%s: no count", path);
        e = NOPS_PARSE;
    } else {
        *count = (size_t)json_integer_value(cnt);
        *gen = (uint64_t)json_integer_value(json_object_get(o, "generation"));
    }
    json_decref(o);
    return e;
}

static nops_err read_meta(const char *path, nops_histdir *h, size_t count, char *errstr,
                          size_t errstr_size)
{
    FILE *f = nops_file_fopen(path, "r");
    char magic[8];
    uint64_t n = 0;
    bool ok = f && fread(magic, 8, 1, f) == 1 && memcmp(magic, META_MAGIC, 8) == 0 &&
              fread(&n, sizeof n, 1, f) == 1 && n == count;
    if (ok && n) {
        h->meta = nops_malloc((size_t)n * sizeof *h->meta);
        ok = h->meta && fread(h->meta, sizeof *h->meta, (size_t)n, f) == n;
    }
    if (f)
        fclose(f);
    if (!ok) {
        nops_errf(errstr, errstr_size, "%s is missing, corrupt or does not hold %zu runs", path,
                  count);
        return NOPS_PARSE;
    }
    for (size_t i = 0; i < n; i++) { /* strings stay terminated whatever the file says */
        h->meta[i].run_id[sizeof h->meta[i].run_id - 1] = '\0';
        h->meta[i].playbook_id[sizeof h->meta[i].playbook_id - 1] = '\0';
    }
    h->n = (size_t)n;
    return NOPS_OK;
}

nops_histdir *nops_histdir_open(const char *dir, char *errstr, size_t errstr_size)
{
    char base[700], path[800];
    struct stat sb;
    snprintf(base, sizeof base, "%s/current", dir);
    if (stat(base, &sb) != 0)
        snprintf(base, sizeof base, "%s", dir);
    nops_histdir *h = nops_calloc(1, sizeof *h);
    if (!h) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    size_t count = 0;
    snprintf(path, sizeof path, "%s/manifest.json", base);
    if (stat(path, &sb) != 0) {
        nops_errf(errstr, errstr_size, "%s is not an index directory (no manifest.json; build "
                  "one with neuralops vectorize)", dir);
        goto fail;
    }
    if (read_manifest(path, &count, &h->gen, errstr, errstr_size) != NOPS_OK)
        goto fail;
    snprintf(path, sizeof path, "%s/runs.meta", base);
    if (read_meta(path, h, count, errstr, errstr_size) != NOPS_OK)
        goto fail;
    snprintf(path, sizeof path, "%s/runs.faiss", base);
    if (!(h->ix = nops_vindex_load(path, NOPS_EMBED_DIM, errstr, errstr_size)))
        goto fail;
    if (nops_vindex_count(h->ix) != count) {
        nops_errf(errstr, errstr_size, "%s holds %zu vectors, the manifest says %zu", path,
                  nops_vindex_count(h->ix), count);
        goto fail;
    }
    return h;
fail:
    nops_histdir_close(h);
    return NULL;
}

void nops_histdir_close(nops_histdir *h)
{
    if (!h)
        return;
    nops_vindex_destroy(h->ix);
    nops_free(h->meta);
    nops_free(h);
}

const nops_vindex *nops_histdir_index(const nops_histdir *h)
{
    return h->ix;
}

const nops_run_meta *nops_histdir_meta(const nops_histdir *h, int64_t id)
{
    return id >= 0 && (size_t)id < h->n ? &h->meta[id] : NULL;
}

size_t nops_histdir_count(const nops_histdir *h)
{
    return h->n;
}

uint64_t nops_histdir_generation(const nops_histdir *h)
{
    return h->gen;
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
