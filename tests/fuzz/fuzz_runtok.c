/*
 * fuzz_runtok.c — libFuzzer target for vectorize's run-row tokenizer (nops_vector_prepare_text,
 * on parse/'s JSON tokenizer) against the jansson tree path it replaced: for any bytes, either
 * the tokenizer declines (NOPS_UNSUPPORTED; vectorize then takes the tree path) or jansson
 * parses the same bytes and nops_vector_prepare_run gives the same result — the vector bit for
 * bit, the metadata, the redaction counts, and the reason of a skipped row. The input is taken
 * with the caller's scratch sized exactly NOPS_RUN_SCRATCH(size) (heap, so the sanitizer sees an
 * overrun), and once more with a scratch of a quarter of that (a decline or the same result).
 */
#include "vector/vector.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static nops_err prepare(const nops_redactor *r, const char *text, size_t size, size_t scap,
                        float *vec, nops_run_meta *m, nops_redact_stats *st, char *why)
{
    char *scratch = malloc(scap ? scap : 1);
    if (!scratch)
        abort();
    memset(m, 0, sizeof *m);
    nops_err e = nops_vector_prepare_text(r, text, size, scratch, scap, vec, m, st, why, 200);
    free(scratch);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static nops_redactor *r;
    if (!r && !(r = nops_redactor_new("fuzz", NULL, 0)))
        abort();
    char *text = malloc(size ? size : 1); /* exactly the input: no NUL after it */
    if (!text)
        abort();
    memcpy(text, data, size);
    float v1[NOPS_EMBED_DIM], v2[NOPS_EMBED_DIM];
    nops_run_meta m1, m2;
    nops_redact_stats s1 = {{0}}, s2 = {{0}}, s3 = {{0}};
    char w1[200] = "", w2[200] = "";
    nops_err e2 = prepare(r, text, size, NOPS_RUN_SCRATCH(size), v2, &m2, &s2, w2);
    if (e2 != NOPS_UNSUPPORTED) {
        json_t *run = json_loadb(text, size, 0, NULL);
        if (!run) /* vouched for, yet jansson refuses it */
            abort();
        nops_err e1 = nops_vector_prepare_run(r, run, v1, &m1, &s1, w1, sizeof w1);
        json_decref(run);
        if (e1 != e2 || memcmp(&s1, &s2, sizeof s1) != 0)
            abort();
        if (e1 == NOPS_OK && (memcmp(v1, v2, sizeof v1) != 0 || memcmp(&m1, &m2, sizeof m1) != 0))
            abort();
        if (e1 != NOPS_OK && strcmp(w1, w2) != 0)
            abort();
        /* a smaller scratch: a decline, or the same result */
        nops_err e3 = prepare(r, text, size, NOPS_RUN_SCRATCH(size) / 4, v1, &m1, &s3, w1);
        if (e3 != NOPS_UNSUPPORTED &&
            (e3 != e2 || (e3 == NOPS_OK && memcmp(v1, v2, sizeof v1) != 0)))
            abort();
    }
    free(text);
    return 0;
}
