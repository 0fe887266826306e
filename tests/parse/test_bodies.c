/*
 * test_bodies.c — the decoders of encoded request bodies: Prometheus remote write (snappy +
 * protobuf: valid, truncated, not snappy, not protobuf, staleness markers, series that cannot
 * be keyed, the decompressed-size cap) and gzip (one and several members, corrupt, truncated,
 * a zip bomb stopped at the cap). Bodies are built with the real encoders: protobuf-c's pack
 * of the same generated code, libsnappy's compress and zlib's deflate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/support/gzutil.h"

#include "parse/parse.h"

#include "remote.pb-c.h"

#include <math.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct got {
    char series[32][256]; /* "name|k=v,k=v" in message order */
    double value[32];
    int64_t ts[32];
    int n;
} got;

static bool collect(void *ud, const nops_point *p)
{
    got *g = ud;
    if (g->n == 32)
        return false;
    int o = snprintf(g->series[g->n], 256, "%.*s|", (int)p->measurement_len, p->measurement);
    for (size_t i = 0; i < p->n_tags; i++)
        o += snprintf(g->series[g->n] + o, (size_t)(256 - o), "%s%.*s=%.*s", i ? "," : "",
                      (int)p->tags[i].key_len, p->tags[i].key, (int)p->tags[i].value_len,
                      p->tags[i].value);
    assert_int_equal(p->field_len, 0);
    g->value[g->n] = p->value;
    g->ts[g->n] = p->ts_ns;
    g->n++;
    return true;
}

/* ---- building WriteRequests -------------------------------------------------------------- */

typedef struct wr_build {
    NopsPrompb__WriteRequest wr;
    NopsPrompb__TimeSeries ts[8], *tsp[8];
    NopsPrompb__Label lab[8][8], *labp[8][8];
    NopsPrompb__Sample smp[8][8], *smpp[8][8];
} wr_build;

static void wr_init(wr_build *b)
{
    memset(b, 0, sizeof *b);
    nops_prompb__write_request__init(&b->wr);
    b->wr.timeseries = b->tsp;
}

/* A series of labels "k", "v", ... (NULL-terminated) and n samples (values, ms). */
static void wr_series(wr_build *b, const char *const *labels, size_t n, const double *values,
                      const int64_t *ms)
{
    size_t s = b->wr.n_timeseries++;
    NopsPrompb__TimeSeries *ts = &b->ts[s];
    nops_prompb__time_series__init(ts);
    b->tsp[s] = ts;
    ts->labels = b->labp[s];
    ts->samples = b->smpp[s];
    for (size_t i = 0; labels[2 * i]; i++) {
        NopsPrompb__Label *l = &b->lab[s][i];
        nops_prompb__label__init(l);
        l->name = (ProtobufCBinaryData){strlen(labels[2 * i]), (uint8_t *)labels[2 * i]};
        l->value = (ProtobufCBinaryData){strlen(labels[2 * i + 1]), (uint8_t *)labels[2 * i + 1]};
        b->labp[s][ts->n_labels++] = l;
    }
    for (size_t i = 0; i < n; i++) {
        NopsPrompb__Sample *x = &b->smp[s][i];
        nops_prompb__sample__init(x);
        x->value = values[i];
        x->timestamp = ms[i];
        b->smpp[s][ts->n_samples++] = x;
    }
}

/* The request packed and snappy-compressed; *len its length; free() it. */
static char *wr_body(wr_build *b, size_t *len)
{
    size_t n = nops_prompb__write_request__get_packed_size(&b->wr);
    uint8_t *raw = malloc(n + 1);
    assert_int_equal(nops_prompb__write_request__pack(&b->wr, raw), n);
    size_t cap = snappy_max_compressed_length(n);
    char *out = malloc(cap);
    *len = cap;
    assert_int_equal(snappy_compress((const char *)raw, n, out, len), SNAPPY_OK);
    free(raw);
    return out;
}

static double stale_nan(void)
{
    uint64_t bits = 0x7ff0000000000002ull;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* ---- remote write ------------------------------------------------------------------------- */

static void test_remote_write_valid(void **state)
{
    (void)state;
    wr_build b;
    wr_init(&b);
    const char *const l1[] = {"__name__", "up", "job", "node", "instance", "a:9100", NULL};
    const char *const l2[] = {"job", "api", "__name__", "http_requests_total", "code", "",
                              NULL}; /* name not first, an empty label (absent) */
    wr_series(&b, l1, 2, (double[]){1, 0}, (int64_t[]){1700000000000, 1700000015123});
    wr_series(&b, l2, 1, (double[]){12345.5}, (int64_t[]){-1000});
    size_t len;
    char *body = wr_body(&b, &len);
    got g = {0};
    nops_parse_stats st;
    assert_int_equal(nops_ingest_parse_remote_write(body, len, 1 << 20, collect, &g, &st),
                     NOPS_OK);
    assert_int_equal(g.n, 3);
    assert_int_equal(st.points, 3);
    assert_int_equal(st.rejected, 0);
    assert_string_equal(g.series[0], "up|job=node,instance=a:9100");
    assert_int_equal(g.ts[0], 1700000000000000000ll);
    assert_float_equal(g.value[0], 1, 0);
    assert_int_equal(g.ts[1], 1700000015123000000ll);
    assert_string_equal(g.series[2], "http_requests_total|job=api");
    assert_int_equal(g.ts[2], -1000000000ll);
    assert_float_equal(g.value[2], 12345.5, 0);
    /* an empty request is a valid one */
    wr_init(&b);
    free(body);
    body = wr_body(&b, &len);
    g.n = 0;
    assert_int_equal(nops_ingest_parse_remote_write(body, len, 1 << 20, collect, &g, &st),
                     NOPS_OK);
    assert_int_equal(g.n, 0);
    free(body);
}

/* Staleness markers are skipped and counted, never rejected; the samples beside them go on. */
static void test_remote_write_staleness(void **state)
{
    (void)state;
    wr_build b;
    wr_init(&b);
    const char *const l1[] = {"__name__", "up", "job", "node", NULL};
    wr_series(&b, l1, 3, (double[]){1, stale_nan(), NAN}, (int64_t[]){1000, 2000, 3000});
    size_t len;
    char *body = wr_body(&b, &len);
    got g = {0};
    nops_parse_stats st;
    assert_int_equal(nops_ingest_parse_remote_write(body, len, 1 << 20, collect, &g, &st),
                     NOPS_OK);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.ts[0], 1000000000ll);
    assert_int_equal(st.stale, 2);
    assert_int_equal(st.rejected, 0);
    free(body);
}

/* Truncated, not snappy, snappy of something that is not a WriteRequest: NOPS_PARSE, nothing. */
static void test_remote_write_malformed(void **state)
{
    (void)state;
    wr_build b;
    wr_init(&b);
    const char *const l1[] = {"__name__", "up", "job", "node", NULL};
    wr_series(&b, l1, 2, (double[]){1, 2}, (int64_t[]){1000, 2000});
    size_t len;
    char *body = wr_body(&b, &len);
    got g = {0};
    nops_parse_stats st;
    for (size_t cut = 0; cut < len; cut++) { /* every truncation */
        nops_err e = nops_ingest_parse_remote_write(body, cut, 1 << 20, collect, &g, &st);
        if (e != NOPS_PARSE || g.n || st.reason != NOPS_REJECT_SYNTAX || !st.detail)
            fail_msg("cut at %zu of %zu: %s, %d points", cut, len, nops_err_name(e), g.n);
    }
    /* not snappy: the raw protobuf, and text */
    size_t n = nops_prompb__write_request__get_packed_size(&b.wr);
    uint8_t raw[4096];
    nops_prompb__write_request__pack(&b.wr, raw);
    assert_int_equal(nops_ingest_parse_remote_write(raw, n, 1 << 20, collect, &g, &st),
                     NOPS_PARSE);
    assert_int_equal(nops_ingest_parse_remote_write("up 1", 4, 1 << 20, collect, &g, &st),
                     NOPS_PARSE);
    assert_non_null(strstr(st.detail, "snappy"));
    /* valid snappy around bytes that are not protobuf (a field of wire type 7) */
    const char junk[] = "\x0f\xff\xff\xff";
    char cj[64];
    size_t cjl = sizeof cj;
    assert_int_equal(snappy_compress(junk, 4, cj, &cjl), SNAPPY_OK);
    assert_int_equal(nops_ingest_parse_remote_write(cj, cjl, 1 << 20, collect, &g, &st),
                     NOPS_PARSE);
    assert_non_null(strstr(st.detail, "WriteRequest"));
    assert_int_equal(g.n, 0);
    /* decompressing past the cap: refused before the copy is made */
    assert_int_equal(nops_ingest_parse_remote_write(body, len, 8, collect, &g, &st), NOPS_RANGE);
    assert_int_equal(st.reason, NOPS_REJECT_TOO_LARGE);
    assert_int_equal(g.n, 0);
    free(body);
}

/* A series that cannot be keyed loses its samples alone, counted with the first reason. */
static void test_remote_write_bad_series(void **state)
{
    (void)state;
    wr_build b;
    wr_init(&b);
    const char *const noname[] = {"job", "node", NULL};
    const char *const badkey[] = {"__name__", "up", "a=b", "x", NULL};
    const char *const badutf[] = {"__name__", "up", "host", "web\xff", NULL};
    const char *const good[] = {"__name__", "up", "host", "web", NULL};
    wr_series(&b, noname, 2, (double[]){1, 2}, (int64_t[]){1, 2});
    wr_series(&b, badkey, 1, (double[]){1}, (int64_t[]){1});
    wr_series(&b, badutf, 1, (double[]){1}, (int64_t[]){1});
    wr_series(&b, good, 2, (double[]){INFINITY, 7}, (int64_t[]){1, 2});
    size_t len;
    char *body = wr_body(&b, &len);
    got g = {0};
    nops_parse_stats st;
    assert_int_equal(nops_ingest_parse_remote_write(body, len, 1 << 20, collect, &g, &st),
                     NOPS_OK);
    assert_int_equal(g.n, 1);
    assert_float_equal(g.value[0], 7, 0);
    assert_int_equal(st.rejected, 5);
    assert_int_equal(st.reason, NOPS_REJECT_SYNTAX);
    assert_int_equal(st.first_bad, 1);
    assert_non_null(strstr(st.detail, "__name__"));
    free(body);
}

/* ---- gzip ----------------------------------------------------------------------------------- */

static void test_gunzip(void **state)
{
    (void)state;
    static unsigned char zb[1 << 16];
    const char *text = "cpu,host=a value=1 1\ncpu,host=b value=2 2\n";
    size_t zl = tu_gzip(text, strlen(text), zb, sizeof zb);
    nops_buf out = {0};
    const char *why = NULL;
    assert_int_equal(nops_ingest_gunzip(zb, zl, 1 << 20, &out, &why), NOPS_OK);
    assert_int_equal(out.len, strlen(text));
    assert_string_equal(out.b, text);
    /* two members one after the other */
    size_t zl2 = tu_gzip("mem value=3 3\n", 14, zb + zl, sizeof zb - zl);
    assert_int_equal(nops_ingest_gunzip(zb, zl + zl2, 1 << 20, &out, &why), NOPS_OK);
    assert_int_equal(out.len, strlen(text) + 14);
    assert_non_null(strstr(out.b, "mem value=3 3\n"));
    /* exactly at the cap is fine, one byte under it is not */
    assert_int_equal(nops_ingest_gunzip(zb, zl, strlen(text), &out, &why), NOPS_OK);
    assert_int_equal(nops_ingest_gunzip(zb, zl, strlen(text) - 1, &out, &why), NOPS_RANGE);
    /* truncated, corrupt, not gzip */
    for (size_t cut = 0; cut < zl; cut++) {
        why = NULL;
        nops_err e = nops_ingest_gunzip(zb, cut, 1 << 20, &out, &why);
        if (e != NOPS_PARSE || !why)
            fail_msg("cut at %zu of %zu: %s", cut, zl, nops_err_name(e));
    }
    unsigned char bad[sizeof zb];
    memcpy(bad, zb, zl);
    bad[zl - 6] ^= 0x55; /* the CRC */
    assert_int_equal(nops_ingest_gunzip(bad, zl, 1 << 20, &out, &why), NOPS_PARSE);
    assert_int_equal(nops_ingest_gunzip(text, strlen(text), 1 << 20, &out, &why), NOPS_PARSE);
    assert_string_equal(why, "body is not gzip");
    nops_free(out.b);
}

/* 64 MiB of zeros gzip to ~64 KiB: stopped at the cap, memory bounded by the cap. */
static void test_gunzip_bomb(void **state)
{
    (void)state;
    const size_t big = 64u << 20;
    unsigned char *zeros = calloc(1, big);
    static unsigned char zb[1 << 18];
    size_t zl = tu_gzip(zeros, big, zb, sizeof zb);
    free(zeros);
    assert_true(zl < 200000);
    nops_buf out = {0};
    const char *why = NULL;
    assert_int_equal(nops_ingest_gunzip(zb, zl, 1 << 20, &out, &why), NOPS_RANGE);
    assert_non_null(strstr(why, "limit"));
    assert_true(out.cap <= (2u << 20)); /* the buffer doubles: at most twice the cap */
    nops_free(out.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remote_write_valid),
        cmocka_unit_test(test_remote_write_staleness),
        cmocka_unit_test(test_remote_write_malformed),
        cmocka_unit_test(test_remote_write_bad_series),
        cmocka_unit_test(test_gunzip),
        cmocka_unit_test(test_gunzip_bomb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
