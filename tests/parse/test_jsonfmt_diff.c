/*
 * test_jsonfmt_diff.c — the JSON metric tokenizer (parse/jsonfmt.c) against the jansson tree
 * parser it replaced (kept verbatim, for this test only, in jsonfmt_ref.c): for every file of
 * the fuzz_metrics corpus, mutations of them, hand-picked edge cases and a few thousand
 * generated messages of both shapes (escapes, unicode, odd whitespace, unknown nested fields,
 * duplicate keys, string and special values, malformed and truncated text), both deliver the
 * same points (name, field, tags, value bit for bit, timestamp) and the same statistics
 * (points, rejections, first reason, first bad object, detail, stale count, result), also when
 * the consumer stops early. The generated clean messages must mostly take the tokenizer's fast
 * path (not the jansson slow path it shares with the reference), or the comparison proves little.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parse/jsonfmt_int.h"
#include "parse/parse.h"
#include "jsonfmt_ref.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec {
    char *b;
    size_t n, cap;
    int stop_after; /* consumer returns false after this many points (0: never) */
    int seen;
} rec;

static void rec_add(rec *r, const char *s, size_t n)
{
    if (r->n + n + 1 > r->cap) {
        r->cap = (r->n + n + 1) * 2;
        r->b = realloc(r->b, r->cap);
        assert_non_null(r->b);
    }
    memcpy(r->b + r->n, s, n);
    r->n += n;
    r->b[r->n] = '\0';
}

static void rec_printf(rec *r, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    rec_add(r, tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static bool on_point(void *ud, const nops_point *p)
{
    rec *r = ud;
    rec_add(r, p->measurement, p->measurement_len);
    rec_add(r, "|", 1);
    rec_add(r, p->field, p->field_len);
    for (size_t i = 0; i < p->n_tags; i++) {
        rec_add(r, i ? "," : "|", 1);
        rec_add(r, p->tags[i].key, p->tags[i].key_len);
        rec_add(r, "=", 1);
        rec_add(r, p->tags[i].value, p->tags[i].value_len);
    }
    rec_printf(r, "|%a|%lld|%d\n", p->value, (long long)p->ts_ns, p->series != NULL);
    return !(r->stop_after && ++r->seen >= r->stop_after);
}

static void run(nops_err (*parse)(const char *, size_t, int64_t, nops_point_fn, void *,
                                  nops_parse_stats *),
                const char *msg, size_t len, int stop_after, rec *r)
{
    r->n = 0;
    r->seen = 0;
    r->stop_after = stop_after;
    rec_add(r, "", 0);
    nops_parse_stats st;
    nops_err e = parse(msg, len, 424242, on_point, r, &st);
    rec_printf(r, "=> %s points %u rejected %u reason %s first_bad %u stale %u detail %s\n",
               nops_err_name(e), st.points, st.rejected, nops_ingest_reject_name(st.reason),
               st.first_bad, st.stale, st.detail ? st.detail : "-");
}

static unsigned g_compared, g_fast;

/* Both parsers on msg (copied to a buffer of exactly its length, so reads past it show under
 * the sanitizers), with and without an early stop. */
static void same(const char *msg, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, msg, len);
    static rec a, b;
    for (int stop = 0; stop < 3; stop++) {
        run(ref_parse_json, copy, len, stop, &a);
        run(nops_ingest_parse_json, copy, len, stop, &b);
        if (strcmp(a.b, b.b) != 0) {
            fprintf(stderr, "message (%zu bytes) \"%.*s\"\n jansson (stop %d):\n%s tokenizer:\n%s",
                    len, (int)len, msg, stop, a.b, b.b);
            fail();
        }
    }
    g_compared++;
    free(copy);
}

static void same_s(const char *msg)
{
    same(msg, strlen(msg));
}

/* ---- generator ------------------------------------------------------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng % n);
}

typedef struct gbuf {
    char b[65536];
    size_t n;
} gbuf;

static void put(gbuf *g, const char *s)
{
    size_t n = strlen(s);
    if (g->n + n < sizeof g->b) {
        memcpy(g->b + g->n, s, n);
        g->n += n;
    }
}

static void gws(gbuf *g)
{
    static const char *w[] = {"", "", "", " ", "\n", "\t ", "\r\n  "};
    put(g, w[rnd(7)]);
}

static void gstr(gbuf *g, bool clean)
{
    static const char *plain[] = {"cpu", "host-01", "eu-west-1", "node_cpu_seconds_total",
                                  "a b", "x.y:z", "usage", "value", "__name__", "", "mode"};
    static const char *odd[] = {"caf\xc3\xa9", "\\u00e9t\\u00E9", "a\\\"b", "back\\\\slash",
                                "new\\nline", "tab\\t", "\\/slash", "\\ud83d\\ude00",
                                "\xf0\x9f\x98\x80", "sp ace", "\\u0041BC", "C:\\\\x",
                                "x{y}", "q\\\"", "\\b\\f\\r"};
    static const char *bad[] = {"\xff", "\xc3", "\\u0000", "\\ud800", "\\udc00x", "\\x",
                                "\x01", "\xed\xa0\x80", "\xc0\xaf", "\\u12G4", "\xf4\x90\x80\x80"};
    put(g, "\"");
    uint32_t k = rnd(20);
    if (k < 12)
        put(g, plain[rnd(11)]);
    else if (k < 19 || clean)
        put(g, odd[rnd(15)]);
    else
        put(g, bad[rnd(11)]);
    put(g, "\"");
}

static void gnum(gbuf *g, bool clean)
{
    static const char *nums[] = {"0", "1", "-1", "12.5", "-0", "-0.0", "1e3", "1E-3", "2.5e+2",
                                 "0.1", "123456789012345678", "9007199254740993", "1.7976931348623157e308",
                                 "4.9e-324", "1e-400", "3.141592653589793238", "100", "0.53",
                                 "1700000000", "1700000000123", "1700000000123456789",
                                 "1700000000.5", "-1700000000", "99999999999.9", "1e22", "1e23", "9223372036854775807", "-9223372036854775808",
                                 "8.589973e9"};
    static const char *bad[] = {"01", "1.", ".5", "-", "1e", "+1", "1e400", "9223372036854775808",
                                "NaN", "Infinity", "0x10", "1.5.2", "123456789012345678901234567890"};
    if (clean || rnd(12))
        put(g, nums[rnd(29)]);
    else
        put(g, bad[rnd(13)]);
}

static void gvalue(gbuf *g, int depth, bool clean);

static void gunknown(gbuf *g, int depth, bool clean)
{
    switch (rnd(depth > 3 ? 4 : 6)) {
    case 0: gstr(g, clean); break;
    case 1: gnum(g, clean); break;
    case 2: put(g, rnd(2) ? "true" : rnd(2) ? "false" : "null"); break;
    case 3: put(g, "\"\""); break;
    case 4:
        put(g, "[");
        for (uint32_t i = 0, n = rnd(4); i < n; i++) {
            if (i)
                put(g, ",");
            gws(g);
            gvalue(g, depth + 1, clean);
            gws(g);
        }
        put(g, "]");
        break;
    default: {
        put(g, "{");
        uint32_t n = rnd(4);
        for (uint32_t i = 0; i < n; i++) {
            char k[16];
            snprintf(k, sizeof k, "%s\"k%u\":", i ? "," : "", clean ? i : rnd(3));
            put(g, k);
            gws(g);
            gvalue(g, depth + 1, clean);
        }
        put(g, "}");
    }
    }
}

static void gvalue(gbuf *g, int depth, bool clean)
{
    gunknown(g, depth, clean);
}

static void gtags(gbuf *g, bool clean, bool name_key)
{
    put(g, "{");
    uint32_t n = rnd(30) == 0 ? 70 : rnd(5);
    bool first = true;
    if (name_key) {
        put(g, "\"__name__\":");
        if (rnd(4))
            gstr(g, clean);
        else
            gnum(g, clean);
        first = false;
    }
    for (uint32_t i = 0; i < n; i++) {
        char k[32];
        static const char *keys[] = {"host", "region", "dc", "mode", "instance", "a=b", "x{",
                                     "j\\u00e9", "cpu"};
        if (rnd(6))
            snprintf(k, sizeof k, "%s\"t%u\":", first ? "" : ",", i);
        else
            snprintf(k, sizeof k, "%s\"%s\":", first ? "" : ",", keys[rnd(9)]);
        first = false;
        put(g, k);
        gws(g);
        if (rnd(15))
            gstr(g, clean);
        else
            gunknown(g, 2, clean);
    }
    put(g, "}");
}

static void gts(gbuf *g, bool clean)
{
    static const char *ts[] = {"\"2024-01-01T00:00:00Z\"", "\"2024-01-01T00:00:00.123+02:00\"",
                               "\"2024-01-01 00:00:00\"", "\"2024-01-01\"", "\"1700000000\"",
                               "\"yesterday\"", "null", "true", "{}", "[]", "\"\""};
    if (rnd(2))
        gnum(g, clean);
    else
        put(g, ts[rnd(11)]);
}

/* The telegraf shape's "fields" member: one to three fields, mostly numbers. */
static void gfields_member(gbuf *g, bool clean)
{
    put(g, "\"fields\":{");
    for (uint32_t f = 0, n = 1 + rnd(3); f < n; f++) {
        static const char *fk[] = {"usage", "value", "idle", "up\\\"", "x}"};
        char k[32];
        snprintf(k, sizeof k, "%s\"%s%u\":", f ? "," : "", fk[rnd(20) ? rnd(3) : rnd(5)], f);
        put(g, k);
        gws(g);
        if (rnd(4))
            gnum(g, clean);
        else
            gunknown(g, 2, clean);
    }
    put(g, "}");
}

/* The other shape's "value" member: a number as a string (odd ones too), a number or anything. */
static void gvalue_member(gbuf *g, bool clean)
{
    put(g, "\"value\":");
    uint32_t k = rnd(8);
    static const char *sv[] = {"\"0.53\"", "\"NaN\"", "\"nan\"", "\"n\\u0061N\"",
                               "\"-Inf\"", "\" 1.5\"", "\"0x1p3\"", "\"1e5\"",
                               "\"abc\"", "\"\"", "\"-0\"", "\"1.5 \"", "null",
                               "\"12345678901234567890\"", "\"-nan\"", "\"1e999\""};
    if (k < 4)
        put(g, sv[rnd(16)]);
    else if (k < 7)
        gnum(g, clean);
    else
        gunknown(g, 2, clean);
}

/* Member m of an object (0 name, 1 fields or value, 2 tags or labels, 3 timestamp, 4 the other
 * shape's member or an unrelated one, 5-7 unknown ones), without its separator. */
static void gmember(gbuf *g, int m, bool telegraf, bool clean)
{
    switch (m) {
    case 0:
        put(g, "\"name\":");
        if (rnd(10))
            gstr(g, clean);
        else
            gunknown(g, 2, clean);
        break;
    case 1:
        if (telegraf)
            gfields_member(g, clean);
        else
            gvalue_member(g, clean);
        break;
    case 2:
        put(g, telegraf ? "\"tags\":" : "\"labels\":");
        if (rnd(12))
            gtags(g, clean, !telegraf && rnd(2));
        else
            gunknown(g, 2, clean);
        break;
    case 3:
        put(g, "\"timestamp\":");
        gts(g, clean);
        break;
    case 4:
        if (rnd(3) == 0)
            put(g, telegraf ? "\"value\":1" : "\"fields\":{\"f\":2}");
        else
            put(g, "\"other\":1");
        break;
    default: {
        char k[16];
        snprintf(k, sizeof k, "\"u%d\":", m);
        put(g, k);
        gunknown(g, 0, clean);
    }
    }
}

/* One object: member order shuffled, some members left out, unknown ones added. */
static void gobject(gbuf *g, bool clean)
{
    bool telegraf = rnd(2);
    int order[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int i = 7; i > 0; i--) {
        int j = (int)rnd((uint32_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    put(g, "{");
    gws(g);
    bool first = true;
    for (int i = 0; i < 8; i++) {
        int m = order[i];
        if (rnd(10) == 0 && m != 7)
            continue; /* left out */
        if (m >= 5 && rnd(2))
            continue; /* unknown members: sometimes */
        if (!first)
            put(g, ",");
        first = false;
        gws(g);
        gmember(g, m, telegraf, clean);
        gws(g);
    }
    put(g, "}");
}

static void gmessage(gbuf *g, bool clean)
{
    g->n = 0;
    uint32_t docs = 1 + rnd(3);
    for (uint32_t d = 0; d < docs; d++) {
        if (d)
            put(g, rnd(3) ? "\n" : " ");
        if (rnd(4) == 0) {
            put(g, "{\"metrics\":");
            gws(g);
            put(g, "[");
            for (uint32_t i = 0, n = rnd(5); i < n; i++) {
                if (i)
                    put(g, ",");
                gws(g);
                if (rnd(15))
                    gobject(g, clean);
                else
                    gunknown(g, 1, clean);
            }
            put(g, "]");
            if (rnd(3) == 0)
                put(g, ",\"name\":\"cpu\",\"value\":1");
            put(g, "}");
        } else {
            gobject(g, clean);
        }
    }
    gws(g);
}

static void mutate(gbuf *g)
{
    static const char bytes[] = "{}[]\",:\\ \n0e-.u\xff\xc3\x80";
    for (uint32_t i = 0, n = 1 + rnd(3); i < n && g->n; i++) {
        size_t at = rnd((uint32_t)g->n);
        switch (rnd(4)) {
        case 0: g->b[at] = bytes[rnd(sizeof bytes - 1)]; break;
        case 1:
            memmove(g->b + at, g->b + at + 1, g->n - at - 1);
            g->n--;
            break;
        case 2: g->n = at; break;
        default:
            if (g->n + 1 < sizeof g->b) {
                memmove(g->b + at + 1, g->b + at, g->n - at);
                g->b[at] = bytes[rnd(sizeof bytes - 1)];
                g->n++;
            }
        }
    }
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_edge_cases(void **state)
{
    (void)state;
    static const char *cases[] = {
        "{\"name\":\"cpu\",\"value\":\"0.53\",\"labels\":{\"__name__\":\"cpu\",\"host\":\"a\"}}",
        "{\"name\":\"cpu\",\"fields\":{\"usage\":1.5,\"s\":\"x\",\"b\":true,\"n\":null},"
        "\"tags\":{\"host\":\"a\"},\"timestamp\":1700000000}",
        "{\"metrics\":[{\"name\":\"a\",\"fields\":{\"v\":1}},{\"name\":\"b\",\"fields\":{\"v\":2}}]}",
        "{\"metrics\":[]}", "{\"metrics\":[1,\"x\",{}]}", "{\"metrics\":{}}", "{}", "{ }",
        "{\"name\":\"cpu\",\"value\":1}{\"name\":\"cpu\",\"value\":2}",
        "{\"name\":\"cpu\",\"value\":1} \n [1,2]\n{\"name\":\"m\",\"value\":3}",
        "{\"name\":\"cpu\",\"value\":1,\"value\":2}", "{\"a\":{\"b\":1,\"b\":2},\"name\":\"c\",\"value\":1}",
        "{\"a\":{\"b\":1},\"b\":2,\"name\":\"c\",\"value\":1}",
        "{\"name\":\"c\",\"value\":-0}", "{\"name\":\"c\",\"value\":\"-0\"}",
        "{\"name\":\"c\",\"value\":0.1}", "{\"name\":\"c\",\"value\":1e22}",
        "{\"name\":\"c\",\"value\":1e23}", "{\"name\":\"c\",\"value\":9007199254740993}",
        "{\"name\":\"c\",\"value\":123456789012345678}",
        "{\"name\":\"c\",\"value\":1234567890123456789}", "{\"name\":\"c\",\"value\":-9223372036854775808}", "{\"name\":\"c\",\"value\":9223372036854775808}", "{\"name\":\"c\",\"value\":-9223372036854775809}",
        "{\"name\":\"c\",\"value\":\"0x1p3\"}", "{\"name\":\"c\",\"value\":\" 2\"}",
        "{\"name\":\"c\",\"value\":\"NaN\"}", "{\"name\":\"c\",\"value\":\"n\\u0061n\"}",
        "{\"name\":\"c\",\"value\":\"inf\"}", "{\"name\":\"c\",\"value\":1e400}",
        "{\"name\":\"c\",\"value\":1e-400}", "{\"name\":\"c\",\"value\":1,\"timestamp\":-0}", "{\"name\":\"c\",\"value\":1,\"timestamp\":-1}",
        "{\"name\":\"c\",\"value\":1,\"timestamp\":1700000000.25}",
        "{\"name\":\"c\",\"value\":1,\"timestamp\":9e9}",
        "{\"name\":\"c\",\"value\":1,\"timestamp\":9.1e9}",
        "{\"name\":\"c\",\"value\":1,\"timestamp\":\"2024-01-01T00:00:00Z\"}",
        "{\"name\":\"c\\u00e9\",\"value\":1,\"labels\":{\"h\":\"\\ud83d\\ude00\\n\"}}",
        "{\"name\":\"c\",\"value\":1,\"labels\":{\"h\\u00e9\":\"x\"}}",
        "{\"name\":\"c\",\"value\":1,\"labels\":{\"h\":\"\\u0000\"}}",
        "{\"name\":\"c\",\"value\":1,\"labels\":{\"h\":\"\\ud800\"}}",
        "{\"name\":\"c\",\"value\":1,\"labels\":{\"h\":\"\xed\xa0\x80\"}}",
        "{\"name\":\"c\",\"value\":1,\"labels\":{\"h\":\"\xc3\"}}",
        "{\"name\":\"c\",\"value\":1,\"labels\":{\"h\":1}}",
        "{\"name\":\"c\",\"value\":1,\"labels\":{\"__name__\":1}}",
        "{\"name\":\"c{\",\"value\":1}", "{\"name\":\"\",\"value\":1}", "{\"name\":1,\"value\":1}",
        "{\"name\":\"c\",\"fields\":{\"a\":{}}}", "{\"name\":\"c\",\"fields\":{\"a\":{},\"b\":1}}",
        "{\"name\":\"c\",\"fields\":null}", "{\"name\":\"c\",\"fields\":{}}",
        "{\"name\":\"c\",\"fields\":{\"value\":3}}", "{\"name\":\"c\",\"fields\":{\"x\\\"\":3}}",
        "{\"name\":\"c\",\"fields\":{\"a\":1},\"tags\":[]}", "{\"name\":\"c\"}",
        "{\"name\":\"c\",\"value\":1}\xff", "{\"name\":\"c\",\"value\":1\xff}",
        "{\"name\":\"c\",\"value\":tru}", "{\"name\":\"c\",\"value\":truex}",
        "{\"name\":\"c\",\"value\":01}", "{\"name\":\"c\",\"value\":1.}",
        "{\"name\":\"c\",\"value\":1,}", "{\"name\":\"c\",\"value\":[1,]}",
        "{\"name\":\"c\",\"value\":1", "  \n\t", "", "{\"name\":\"c\",\"value\":\"1\"}   ",
        "{\"name\":\"c\",\"value\":\"1\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
        "[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
        "{\"name\":\"c\",\"value\":1}\n{bad\n{\"name\":\"d\",\"value\":2}",
        "{\"name\":\"c\",\"value\":1} x {\"name\":\"d\",\"value\":2}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        same_s(cases[i]);
    /* the fast path vouches for the plain shapes */
    assert_non_null(nops_json_validate(cases[0], cases[0] + strlen(cases[0])));
    assert_non_null(nops_json_validate(cases[1], cases[1] + strlen(cases[1])));
    assert_non_null(nops_json_validate(cases[33], cases[33] + strlen(cases[33])));
    assert_null(nops_json_validate(cases[10], cases[10] + strlen(cases[10]))); /* duplicate */
}

/* A document near the scratch bound with a long escaped number string as its value and long
 * escaped labels: each escaped string is decoded once (the value was once decoded twice, for
 * the NaN check and again for the number, which ran past the scratch under ASan). */
static void test_scratch_bound(void **state)
{
    (void)state;
    static gbuf g;
    g.n = 0;
    put(&g, "{\"name\":\"c\",\"value\":\"0.");
    for (int i = 0; i < 3990; i++)
        put(&g, "0");
    put(&g, "\\u0031\",\"labels\":{");
    for (int l = 0; l < 3; l++) {
        char k[16];
        snprintf(k, sizeof k, "%s\"l%d\":\"", l ? "," : "", l);
        put(&g, k);
        for (int i = 0; i < 4080; i++)
            put(&g, "a");
        put(&g, "\\n\"");
    }
    put(&g, "}}");
    assert_non_null(nops_json_validate(g.b, g.b + g.n)); /* the tokenizer's own path */
    same(g.b, g.n);
}

static void test_corpus(void **state)
{
    (void)state;
    const char *dir = NOPS_SOURCE_DIR "/tests/fuzz/corpus/fuzz_metrics";
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    unsigned files = 0;
    static gbuf g;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        g.n = fread(g.b, 1, sizeof g.b, f);
        fclose(f);
        same(g.b, g.n);
        files++;
        gbuf m = g;
        for (int i = 0; i < 200; i++) { /* and mutations of it */
            g = m;
            mutate(&g);
            same(g.b, g.n);
        }
        g = m;
    }
    closedir(d);
    assert_true(files >= 5);
}

static void test_generated(void **state)
{
    (void)state;
    static gbuf g;
    unsigned clean = 0;
    for (int i = 0; i < 6000; i++) {
        int kind = i % 3; /* clean, with rare bad pieces, mutated */
        gmessage(&g, kind == 0);
        if (kind == 2)
            mutate(&g);
        if (kind == 0) {
            clean++;
            size_t at = 0;
            while (at < g.n && (g.b[at] == ' ' || g.b[at] == '\n' || g.b[at] == '\t' ||
                                g.b[at] == '\r'))
                at++;
            if (nops_json_validate(g.b + at, g.b + g.n))
                g_fast++;
        }
        same(g.b, g.n);
    }
    print_message("compared %u messages; %u of %u clean ones on the fast path\n", g_compared,
                  g_fast, clean);
    assert_true(g_fast * 4 >= clean * 3); /* the rest: escaped keys, reals near DBL_MAX */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_scratch_bound),
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
