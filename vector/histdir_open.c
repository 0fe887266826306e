/*
 * histdir_open.c — reading a generation of the index directory (vector.h, histdir.c): the
 * manifest first, then each file it checksums, hashed before it is parsed. runs.faiss is
 * hashed through the same open stream FAISS then reads from; runs.meta is hashed as it is read
 * into memory. A file whose size or SHA-256 differs from the manifest refuses the generation.
 */
#include "vector/histdir_int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The manifest's record of one file: "files": {name: {"size": N, "sha256": "<64 hex>"}}. */
static bool manifest_sum(const json_t *files, const char *name, nops__file_sum *out)
{
    const json_t *f = json_object_get(files, name);
    const json_t *size = json_object_get(f, "size");
    const char *hex = json_string_value(json_object_get(f, "sha256"));
    if (!json_is_integer(size) || json_integer_value(size) < 0 || !hex || strlen(hex) != 64 ||
        strspn(hex, "0123456789abcdef") != 64)
        return false;
    out->size = (uint64_t)json_integer_value(size);
    memcpy(out->sha256, hex, 65);
    return true;
}

static nops_err read_manifest(const char *path, size_t *count, uint64_t *gen,
                              nops__file_sum sums[2], char *errstr, size_t errstr_size)
{
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        nops_errf(errstr, errstr_size, "%s: %s", path, je.text);
        return NOPS_PARSE;
    }
    const char *ver = json_string_value(json_object_get(o, "embedder_version"));
    json_int_t dim = json_integer_value(json_object_get(o, "dimension"));
    json_t *cnt = json_object_get(o, "count"), *files = json_object_get(o, "files");
    nops_err e = NOPS_OK;
    if (dim != NOPS_EMBED_DIM) {
        nops_errf(errstr, errstr_size, "%s: dimension %lld, this build embeds in %d", path,
                  (long long)dim, NOPS_EMBED_DIM);
        e = NOPS_CONFIG;
    } else if (!ver || strcmp(ver, NOPS_EMBED_VERSION) != 0) {
        nops_errf(errstr, errstr_size,
                  "%s: embedder version \"%s\", this build is \"%s\": run "
                  "neuralops vectorize again",
                  path, ver ? ver : "(none)", NOPS_EMBED_VERSION);
        e = NOPS_CONFIG;
    } else if (!json_is_integer(cnt) || json_integer_value(cnt) < 0) {
        nops_errf(errstr, errstr_size, "%s: no count", path);
        e = NOPS_PARSE;
    } else if (!manifest_sum(files, NOPS__INDEX_FILE, &sums[0]) ||
               !manifest_sum(files, NOPS__META_FILE, &sums[1])) {
        nops_errf(errstr, errstr_size,
                  "%s holds no valid checksums of runs.faiss and "
                  "runs.meta (an older NeuralOps wrote it, or it was edited): run neuralops "
                  "vectorize again",
                  path);
        e = NOPS_PARSE;
    } else {
        *count = (size_t)json_integer_value(cnt);
        *gen = (uint64_t)json_integer_value(json_object_get(o, "generation"));
    }
    json_decref(o);
    return e;
}

static nops_err mismatch(const char *path, const nops__file_sum *want, const nops__file_sum *got,
                         char *errstr, size_t errstr_size)
{
    if (got->size != want->size)
        nops_errf(errstr, errstr_size,
                  "%s has %llu bytes, its manifest says %llu: the file is "
                  "corrupt or was changed after it was written; the generation is refused "
                  "(rebuild it with neuralops vectorize)",
                  path, (unsigned long long)got->size, (unsigned long long)want->size);
    else
        nops_errf(errstr, errstr_size,
                  "%s does not match its SHA-256 in the manifest: the "
                  "file is corrupt or was changed after it was written; the generation is "
                  "refused (rebuild it with neuralops vectorize)",
                  path);
    return NOPS_PARSE;
}

static bool same_sum(const nops__file_sum *a, const nops__file_sum *b)
{
    return a->size == b->size && strcmp(a->sha256, b->sha256) == 0;
}

/* runs.meta: header + count records, exactly the manifest's size, hashed as it is read. */
static nops_err read_meta(const char *path, nops_histdir *h, size_t count,
                          const nops__file_sum *want, char *errstr, size_t errstr_size)
{
    FILE *f = nops_file_fopen(path, "r");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb) != 0) {
        nops_errf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
        if (f) fclose(f);
        return NOPS_IO;
    }
    nops__file_sum got = {.size = (uint64_t)sb.st_size};
    const uint64_t expect = 16 + (uint64_t)count * sizeof *h->meta;
    if (got.size != want->size || count > (SIZE_MAX - 16) / sizeof *h->meta ||
        want->size != expect) {
        fclose(f);
        if (got.size != want->size) return mismatch(path, want, &got, errstr, errstr_size);
        nops_errf(errstr, errstr_size, "%s is corrupt or does not hold %zu runs", path, count);
        return NOPS_PARSE;
    }
    char *buf = nops_malloc((size_t)expect);
    bool ok = buf && fread(buf, 1, (size_t)expect, f) == expect;
    fclose(f);
    ok = ok && nops__sum_mem(buf, (size_t)expect, &got);
    uint64_t n = 0;
    if (ok && !same_sum(&got, want)) {
        nops_free(buf);
        return mismatch(path, want, &got, errstr, errstr_size);
    }
    if (ok) {
        memcpy(&n, buf + 8, sizeof n);
        ok = memcmp(buf, NOPS__META_MAGIC, 8) == 0 && n == count &&
             (n == 0 || (h->meta = nops_malloc((size_t)n * sizeof *h->meta)));
    }
    if (ok && n) memcpy(h->meta, buf + 16, (size_t)n * sizeof *h->meta);
    nops_free(buf);
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

/* runs.faiss: hashed, then read by FAISS from the same stream. */
static nops_err read_index(const char *path, nops_histdir *h, const nops__file_sum *want,
                           char *errstr, size_t errstr_size)
{
    FILE *f = nops_file_fopen(path, "r");
    nops__file_sum got;
    if (!f || !nops__sum_stream(f, &got)) {
        nops_errf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
        if (f) fclose(f);
        return NOPS_IO;
    }
    nops_err e = NOPS_OK;
    if (!same_sum(&got, want))
        e = mismatch(path, want, &got, errstr, errstr_size);
    else if (fseek(f, 0, SEEK_SET) != 0 ||
             !(h->ix = nops_vindex_read(f, path, NOPS_EMBED_DIM, errstr, errstr_size)))
        e = NOPS_PARSE;
    fclose(f);
    return e;
}

nops_histdir *nops_histdir_open(const char *dir, char *errstr, size_t errstr_size)
{
    char base[700], path[800];
    struct stat sb;
    snprintf(base, sizeof base, "%s/current", dir);
    if (stat(base, &sb) != 0) snprintf(base, sizeof base, "%s", dir);
    nops_histdir *h = nops_calloc(1, sizeof *h);
    if (!h) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    size_t count = 0;
    nops__file_sum sums[2];
    snprintf(path, sizeof path, "%s/" NOPS__MANIFEST_FILE, base);
    if (stat(path, &sb) != 0) {
        nops_errf(errstr, errstr_size,
                  "%s is not an index directory (no manifest.json; build "
                  "one with neuralops vectorize)",
                  dir);
        goto fail;
    }
    if (read_manifest(path, &count, &h->gen, sums, errstr, errstr_size) != NOPS_OK) goto fail;
    snprintf(path, sizeof path, "%s/" NOPS__META_FILE, base);
    if (read_meta(path, h, count, &sums[1], errstr, errstr_size) != NOPS_OK) goto fail;
    snprintf(path, sizeof path, "%s/" NOPS__INDEX_FILE, base);
    if (read_index(path, h, &sums[0], errstr, errstr_size) != NOPS_OK) goto fail;
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
    if (!h) return;
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
