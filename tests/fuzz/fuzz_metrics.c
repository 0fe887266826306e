/*
 * fuzz_metrics.c — libFuzzer target for Kafka metric messages (line protocol and JSON).
 * Contract checked: every point delivered is finite with non-empty name and spans inside the
 * message or the parser's scratch, every name and tag valid UTF-8; counters add up; a rejection
 * always has a reason.
 */
#include "parse/parse.h"

#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool check_point(void *ud, const nops_point *p)
{
    size_t *n = ud;
    if (!isfinite(p->value) || p->measurement_len == 0 || p->n_tags > NOPS_INGEST_MAX_TAGS)
        abort();
    if (!nops_utf8_valid(p->measurement, p->measurement_len) ||
        !nops_utf8_valid(p->field, p->field_len))
        abort();
    for (size_t t = 0; t < p->n_tags; t++)
        if (!nops_utf8_valid(p->tags[t].key, p->tags[t].key_len) ||
            !nops_utf8_valid(p->tags[t].value, p->tags[t].value_len))
            abort();
    volatile char sink = 0;
    for (size_t i = 0; i < p->measurement_len; i++)
        sink ^= p->measurement[i];
    for (size_t i = 0; i < p->field_len; i++)
        sink ^= p->field[i];
    for (size_t t = 0; t < p->n_tags; t++) {
        for (size_t i = 0; i < p->tags[t].key_len; i++)
            sink ^= p->tags[t].key[i];
        for (size_t i = 0; i < p->tags[t].value_len; i++)
            sink ^= p->tags[t].value[i];
    }
    (*n)++;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    nops_parse_stats st;
    nops_err e = nops_ingest_parse((const char *)data, size, 0, check_point, &n, &st);
    if (n != st.points)
        abort();
    if (e != NOPS_OK && (st.reason == NOPS_REJECT_NONE || !st.detail))
        abort();
    return 0;
}
