/*
 * fuzz_remote_write.c — libFuzzer target for the Prometheus remote-write decoder (snappy +
 * protobuf WriteRequest). The input is the HTTP body as it comes; the checks below are the
 * decoder's contract: every point is a finite value with a valid, keyable name and at most 64
 * tags, a failure carries a reason, and nothing is delivered when the body is refused.
 */
#include "parse/parse.h"

#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool check_point(void *ud, const nops_point *pt)
{
    size_t *n = ud;
    (*n)++;
    if (!isfinite(pt->value) || pt->n_tags > NOPS_INGEST_MAX_TAGS || pt->field_len)
        abort();
    if (nops_ingest_check_names(pt, NULL) != NOPS_REJECT_NONE)
        abort();
    if (!nops_utf8_valid(pt->measurement, pt->measurement_len))
        abort();
    for (size_t i = 0; i < pt->n_tags; i++)
        if (!pt->tags[i].value_len || !nops_utf8_valid(pt->tags[i].value, pt->tags[i].value_len))
            abort();
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    nops_parse_stats st;
    nops_err e = nops_ingest_parse_remote_write(data, size, 1 << 20, check_point, &n, &st);
    if (e == NOPS_PARSE && (n || !st.detail || st.reason != NOPS_REJECT_SYNTAX))
        abort();
    if (e == NOPS_OK && (st.points != n || (st.rejected && !st.detail)))
        abort();
    return 0;
}
