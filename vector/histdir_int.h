/*
 * histdir_int.h — what histdir.c (writing) and histdir_open.c (reading) of the index directory
 * share: the file names and format marks, and the size + SHA-256 of a generation's file as
 * recorded in manifest.json ("files": {"runs.faiss": {"size", "sha256"}, "runs.meta": {…}}).
 */
#ifndef NOPS_HISTDIR_INT_H
#define NOPS_HISTDIR_INT_H

#include "vector/vector.h"

#define NOPS__META_MAGIC "NOPSRUN1" /* first 8 bytes of runs.meta */
#define NOPS__INDEX_FILE "runs.faiss"
#define NOPS__META_FILE "runs.meta"
#define NOPS__MANIFEST_FILE "manifest.json"

/** Size and SHA-256 of one file of a generation. */
typedef struct nops__file_sum {
    uint64_t size;   /**< bytes */
    char sha256[65]; /**< lower-case hex, NUL-terminated */
} nops__file_sum;

/** An opened generation (histdir_open.c; histdir.c's append takes its parts over). */
struct nops_histdir {
    nops_vindex *ix;     /**< runs.faiss */
    nops_run_meta *meta; /**< runs.meta records */
    size_t n;            /**< runs */
    uint64_t gen;        /**< generation number from the manifest */
};

/** Run ids a writer compared as strings while checking for duplicates (for tests: one per
 *  known run, not one per run indexed). */
uint64_t nops__histdir_compares(const nops_histdir_writer *w);

/** Sum what remains of `f` from its current position; false on a read error. */
bool nops__sum_stream(FILE *f, nops__file_sum *out);
/** Sum `len` bytes in memory; false (out->sha256 "") when SHA-256 failed. */
bool nops__sum_mem(const void *data, size_t len, nops__file_sum *out);

#endif /* NOPS_HISTDIR_INT_H */
