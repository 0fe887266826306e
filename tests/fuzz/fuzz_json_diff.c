/*
 * fuzz_json_diff.c — libFuzzer target holding the JSON metric tokenizer (parse/jsonfmt.c) equal
 * to the jansson tree parser it replaced (tests/parse/jsonfmt_ref.c): on any input both deliver
 * the same points (name, field, tags, value bit for bit, timestamp) and the same statistics,
 * with the consumer taking every point or stopping after the first. A difference aborts.
 */
#include "parse/parse.h"
#include "jsonfmt_ref.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct rec {
    char b[1 << 16];
    size_t n;
    bool stop_first;
} rec;

static void add(rec *r, const char *s, size_t n)
{
    if (r->n + n < sizeof r->b) {
        memcpy(r->b + r->n, s, n);
        r->n += n;
    } else {
        r->n = sizeof r->b; /* full: both records fill the same way */
    }
}

static void addf(rec *r, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    add(r, tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static bool on_point(void *ud, const nops_point *p)
{
    rec *r = ud;
    add(r, p->measurement, p->measurement_len);
    add(r, "|", 1);
    add(r, p->field, p->field_len);
    for (size_t i = 0; i < p->n_tags; i++) {
        add(r, "|", 1);
        add(r, p->tags[i].key, p->tags[i].key_len);
        add(r, "=", 1);
        add(r, p->tags[i].value, p->tags[i].value_len);
    }
    addf(r, "|%a|%lld\n", p->value, (long long)p->ts_ns);
    return !r->stop_first;
}

static void run(nops_err (*parse)(const char *, size_t, int64_t, nops_point_fn, void *,
                                  nops_parse_stats *),
                const char *msg, size_t len, bool stop_first, rec *r)
{
    r->n = 0;
    r->stop_first = stop_first;
    nops_parse_stats st;
    nops_err e = parse(msg, len, 7, on_point, r, &st);
    addf(r, "%d %u %u %d %u %u %s", (int)e, st.points, st.rejected, (int)st.reason, st.first_bad,
         st.stale, st.detail ? st.detail : "-");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rec a, b;
    for (int stop = 0; stop < 2; stop++) {
        run(ref_parse_json, (const char *)data, size, stop, &a);
        run(nops_ingest_parse_json, (const char *)data, size, stop, &b);
        if (a.n != b.n || memcmp(a.b, b.b, a.n) != 0) {
            fprintf(stderr, "fuzz_json_diff: jansson\n%.*s\ntokenizer\n%.*s\n", (int)a.n, a.b,
                    (int)b.n, b.b);
            abort();
        }
    }
    return 0;
}
