/*
 * remotewrite.c — Prometheus remote write 1.0: a snappy block-compressed protobuf WriteRequest
 * (a list of series, each its labels and samples) into points.
 *
 * The body is decompressed with Debian's libsnappy (its claimed length checked against the
 * caller's cap before anything is allocated: a small body cannot make us allocate much), then
 * unpacked by the protobuf-c code generated from parse/remote.proto, through an allocator that
 * goes to nops_malloc so allocation failures are counted and testable. Unlike the text parsers
 * this one allocates — the uncompressed copy and the unpacked message, both freed before it
 * returns; the points handed out point into the unpacked message and live only during the
 * callback, as everywhere.
 *
 * Each sample becomes one point: the metric name is the `__name__` label, the other labels are
 * its tags (empty values dropped: in Prometheus an empty label is an absent one), the field is
 * empty and the time is the sample's milliseconds. NaN samples — the staleness marker
 * 0x7ff0000000000002 that Prometheus sends when a series disappears, and any other NaN — carry
 * no value and are skipped, counted in st->stale. A series the engine cannot key (no name,
 * bad UTF-8, a NUL, too many labels, a name that would break a key) has its samples rejected
 * and counted; the other series go on.
 */
#include "parse/parse.h"

#include "remote.pb-c.h"

#include <math.h>
#include <snappy-c.h>
#include <string.h>

static void *pb_alloc(void *ud, size_t size)
{
    (void)ud;
    return nops_malloc(size ? size : 1);
}

static void pb_free(void *ud, void *p)
{
    (void)ud;
    nops_free(p);
}

static void reject(nops_parse_stats *st, nops_reject r, uint32_t series, const char *detail,
                   size_t samples)
{
    if (!samples)
        return;
    if (st->rejected == 0) {
        st->reason = r;
        st->first_bad = series;
        st->detail = detail;
    }
    st->rejected += (uint32_t)samples;
}

/* One series' labels into tags (name apart); NOPS_REJECT_NONE or why not. */
static nops_reject series_labels(const NopsPrompb__TimeSeries *ts, nops_point *pt,
                                 nops_label *tags, const char **detail)
{
    pt->measurement = NULL;
    pt->measurement_len = 0;
    pt->n_tags = 0;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const ProtobufCBinaryData *k = &ts->labels[i]->name, *v = &ts->labels[i]->value;
        const char *ks = (const char *)k->data, *vs = (const char *)v->data;
        if ((k->len && memchr(ks, '\0', k->len)) || (v->len && memchr(vs, '\0', v->len))) {
            *detail = "a label name or value contains a NUL byte";
            return NOPS_REJECT_SYNTAX;
        }
        if (!nops_utf8_valid(ks, k->len) || !nops_utf8_valid(vs, v->len)) {
            *detail = "a label name or value is not valid UTF-8";
            return NOPS_REJECT_UTF8;
        }
        if (k->len == 8 && memcmp(ks, "__name__", 8) == 0) {
            pt->measurement = vs;
            pt->measurement_len = v->len;
            continue;
        }
        if (v->len == 0) /* an empty label is an absent one */
            continue;
        if (pt->n_tags == NOPS_INGEST_MAX_TAGS) {
            *detail = "more than 64 labels";
            return NOPS_REJECT_TOO_LARGE;
        }
        tags[pt->n_tags++] = (nops_label){ks, k->len, vs, v->len};
    }
    if (!pt->measurement_len) {
        *detail = "series has no __name__ label";
        return NOPS_REJECT_SYNTAX;
    }
    pt->tags = tags;
    return nops_ingest_check_names(pt, detail);
}

/* The samples of one series to fn; false when fn asked to stop. */
static bool series_points(const NopsPrompb__TimeSeries *ts, uint32_t no, nops_point *pt,
                          nops_point_fn fn, void *ud, nops_parse_stats *st)
{
    for (size_t i = 0; i < ts->n_samples; i++) {
        const NopsPrompb__Sample *s = ts->samples[i];
        if (isnan(s->value)) { /* staleness marker (or another NaN): no value */
            st->stale++;
            continue;
        }
        if (!isfinite(s->value)) {
            reject(st, NOPS_REJECT_VALUE, no, "sample value is infinite", 1);
            continue;
        }
        if (s->timestamp > INT64_MAX / 1000000 || s->timestamp < INT64_MIN / 1000000) {
            reject(st, NOPS_REJECT_TIMESTAMP, no, "sample timestamp does not fit int64 ns", 1);
            continue;
        }
        pt->value = s->value;
        pt->ts_ns = s->timestamp * 1000000;
        st->points++;
        if (!fn(ud, pt))
            return false;
    }
    return true;
}

nops_err nops_ingest_parse_remote_write(const void *body, size_t len, size_t max,
                                        nops_point_fn fn, void *ud, nops_parse_stats *st)
{
    memset(st, 0, sizeof *st);
    size_t raw_len = 0;
    if (!body || snappy_uncompressed_length(body, len, &raw_len) != SNAPPY_OK) {
        st->rejected = 1;
        st->first_bad = 1;
        st->reason = NOPS_REJECT_SYNTAX;
        st->detail = "body is not snappy (block format) compressed";
        return NOPS_PARSE;
    }
    if (raw_len > max) {
        st->rejected = 1;
        st->reason = NOPS_REJECT_TOO_LARGE;
        st->detail = "body decompresses past the body limit";
        return NOPS_RANGE;
    }
    char *raw = nops_malloc(raw_len ? raw_len : 1);
    if (!raw)
        return NOPS_NOMEM;
    size_t got = raw_len;
    if (snappy_uncompress(body, len, raw, &got) != SNAPPY_OK || got != raw_len) {
        nops_free(raw);
        st->rejected = 1;
        st->first_bad = 1;
        st->reason = NOPS_REJECT_SYNTAX;
        st->detail = "body is not snappy (block format) compressed";
        return NOPS_PARSE;
    }
    ProtobufCAllocator alloc = {pb_alloc, pb_free, NULL};
    NopsPrompb__WriteRequest *wr =
        nops_prompb__write_request__unpack(&alloc, raw_len, (const uint8_t *)raw);
    nops_free(raw);
    if (!wr) { /* protobuf-c does not say whether memory or the bytes failed: say the bytes */
        st->rejected = 1;
        st->first_bad = 1;
        st->reason = NOPS_REJECT_SYNTAX;
        st->detail = "body is not a protobuf WriteRequest";
        return NOPS_PARSE;
    }
    nops_label tags[NOPS_INGEST_MAX_TAGS];
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        const NopsPrompb__TimeSeries *ts = wr->timeseries[i];
        nops_point pt = {0};
        pt.field = "";
        const char *detail = NULL;
        nops_reject r = series_labels(ts, &pt, tags, &detail);
        if (r != NOPS_REJECT_NONE) {
            reject(st, r, (uint32_t)(i + 1), detail, ts->n_samples);
            continue;
        }
        if (!series_points(ts, (uint32_t)(i + 1), &pt, fn, ud, st))
            break;
    }
    nops_prompb__write_request__free_unpacked(wr, &alloc);
    return NOPS_OK;
}
