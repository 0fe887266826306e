/*
 * fuzz_metrics.c — libFuzzer target for Kafka metric messages (line protocol and JSON).
 * Contract checked: every point delivered is finite with non-empty name and spans inside the
 * message or the parser's scratch, every name and tag valid UTF-8; counters add up; a rejection
 * always has a reason; the canonical key of every point delivered splits back into its name
 * and labels (the parsers refuse names a key could not be split into).
 */
#include "parse/parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The point's key (built as ingest/series.c builds it) splits back into what it was made of. */
static void check_key_round_trip(const nops_point *p)
{
    char name[512];
    int nl = p->field_len ? snprintf(name, sizeof name, "%.*s_%.*s", (int)p->measurement_len,
                                     p->measurement, (int)p->field_len, p->field)
                          : snprintf(name, sizeof name, "%.*s", (int)p->measurement_len,
                                     p->measurement);
    if (nl < 0 || (size_t)nl >= sizeof name)
        return; /* refused later as too long */
    if (!nops_series_name_ok(name, (size_t)nl))
        abort();
    nops_label labels[NOPS_INGEST_MAX_TAGS];
    for (size_t t = 0; t < p->n_tags; t++) {
        if (!nops_label_key_ok(p->tags[t].key, p->tags[t].key_len))
            abort();
        labels[t] = p->tags[t];
    }
    char key[NOPS_KEY_MAX];
    size_t klen, got_nl;
    if (nops_series_key(name, (size_t)nl, labels, p->n_tags, key, sizeof key, &klen) != NOPS_OK)
        return; /* too long or a label given twice: refused later */
    static nops_labels out;
    if (nops_series_key_labels(key, &got_nl, &out) != NOPS_OK || got_nl != (size_t)nl ||
        memcmp(key, name, got_nl) != 0 || out.n != p->n_tags)
        abort();
    for (size_t t = 0; t < p->n_tags; t++)
        if (!nops_labels_has(&out, &labels[t]))
            abort();
}

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
    check_key_round_trip(p);
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
