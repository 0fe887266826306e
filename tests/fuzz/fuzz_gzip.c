/*
 * fuzz_gzip.c — libFuzzer target for gzip request bodies: the decompressor under a small cap
 * (so bombs are cheap to find), then the result through the ingest parser as /ingest and
 * /api/v2/write do. Contract: never past the cap, a reason on every refusal, and the output
 * NUL-terminated.
 */
#include "parse/parse.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool count_point(void *ud, const nops_point *pt)
{
    (void)pt;
    (*(size_t *)ud)++;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t cap = 1 << 16;
    nops_buf out = {0};
    const char *why = NULL;
    nops_err e = nops_ingest_gunzip(data, size, cap, &out, &why);
    if (e == NOPS_PARSE && !why)
        abort();
    if (e == NOPS_OK) {
        if (out.len > cap || (out.b && out.b[out.len] != '\0'))
            abort();
        size_t n = 0;
        nops_parse_stats st;
        nops_ingest_parse_prec(out.b ? out.b : "", out.len, 0, NOPS_TS_MS, count_point, &n, &st);
        if (st.points != n)
            abort();
    }
    nops_free(out.b);
    return 0;
}
