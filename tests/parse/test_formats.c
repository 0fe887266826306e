/*
 * test_formats.c — Influx line protocol and the two JSON metric shapes: every accepted form,
 * escapes, skipped field types, and each kind of malformed input rejected with its reason while
 * the good lines beside it still arrive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parse/parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct got {
    char series[16][256]; /* "name|field|k=v,k=v" */
    double value[16];
    int64_t ts[16];
    int n;
} got;

static bool collect(void *ud, const nops_point *p)
{
    got *g = ud;
    if (g->n == 16)
        return false;
    int o = snprintf(g->series[g->n], 256, "%.*s|%.*s|", (int)p->measurement_len, p->measurement,
                     (int)p->field_len, p->field);
    for (size_t i = 0; i < p->n_tags; i++)
        o += snprintf(g->series[g->n] + o, (size_t)(256 - o), "%s%.*s=%.*s", i ? "," : "",
                      (int)p->tags[i].key_len, p->tags[i].key, (int)p->tags[i].value_len,
                      p->tags[i].value);
    g->value[g->n] = p->value;
    g->ts[g->n] = p->ts_ns;
    g->n++;
    return true;
}

static got parse(const char *msg, nops_err want, nops_parse_stats *st)
{
    got g = {0};
    nops_parse_stats local;
    nops_err e = nops_ingest_parse(msg, strlen(msg), 42, collect, &g, st ? st : &local);
    if (e != want)
        fail_msg("\"%s\": %s, want %s", msg, nops_err_name(e), nops_err_name(want));
    return g;
}

static void test_lineproto_basic(void **state)
{
    got g = parse("cpu,host=web-1,region=eu usage_user=12.5,usage_system=3 1700000000000000000",
                  NOPS_OK, NULL);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.series[0], "cpu|usage_user|host=web-1,region=eu");
    assert_float_equal(g.value[0], 12.5, 0);
    assert_string_equal(g.series[1], "cpu|usage_system|host=web-1,region=eu");
    assert_true(g.ts[0] == 1700000000000000000ll);
    /* field `value` names the series after the measurement; no timestamp → now */
    g = parse("latency value=0.25", NOPS_OK, NULL);
    assert_string_equal(g.series[0], "latency||");
    assert_true(g.ts[0] == 42);
    /* integers, unsigned, exponents, negative; strings and booleans skipped */
    g = parse("m a=12i,b=7u,c=-1.5e3,d=\"text, with = signs\",e=true,f=F,g=+4 -5", NOPS_OK, NULL);
    assert_int_equal(g.n, 4);
    assert_float_equal(g.value[0], 12, 0);
    assert_float_equal(g.value[1], 7, 0);
    assert_float_equal(g.value[2], -1500, 0);
    assert_float_equal(g.value[3], 4, 0);
    assert_true(g.ts[0] == -5);
    /* a message of many lines, comments, blank lines and CRLF */
    g = parse("# header\ncpu v=1 1\r\n\n  \nmem v=2 2\n", NOPS_OK, NULL);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.series[1], "mem|v|");
}

static void test_lineproto_escapes_and_numbers(void **state)
{
    /* (an escaped = or comma in a tag key is refused: see test_names_that_break_a_key) */
    got g = parse("disk\\ io,path=/var\\,log,na\\ me=a\\ b\\=c bytes\\ read=1 10", NOPS_OK, NULL);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.series[0], "disk io|bytes read|path=/var,log,na me=a b=c");
    /* correctly rounded numbers, fast path and fallback alike */
    const char *nums[] = {"0.1", "123456789012345678901234567890", "1e-300", "2.2250738585072014e-308",
                          "0.000001", "9007199254740993", "1.7976931348623157e308"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "m v=%s", nums[i]);
        g = parse(line, NOPS_OK, NULL);
        assert_int_equal(g.n, 1);
        assert_true(g.value[0] == strtod(nums[i], NULL));
    }
}

typedef struct bad {
    const char *msg;
    nops_reject reason;
} bad;

static void test_lineproto_rejects(void **state)
{
    static const bad cases[] = {
        {"cpu", NOPS_REJECT_SYNTAX},
        {"cpu,host=a", NOPS_REJECT_SYNTAX},
        {"cpu,host value=1", NOPS_REJECT_SYNTAX},
        {"cpu,host= value=1", NOPS_REJECT_SYNTAX},
        {",host=a value=1", NOPS_REJECT_SYNTAX},
        {"cpu value", NOPS_REJECT_SYNTAX},
        {"cpu =1", NOPS_REJECT_SYNTAX},
        {"cpu value=", NOPS_REJECT_VALUE},
        {"cpu value=abc", NOPS_REJECT_VALUE},
        {"cpu value=nan", NOPS_REJECT_VALUE},
        {"cpu value=inf", NOPS_REJECT_VALUE},
        {"cpu value=1e999", NOPS_REJECT_VALUE},
        {"cpu value=12x", NOPS_REJECT_VALUE},
        {"cpu value=-3u", NOPS_REJECT_VALUE},
        {"cpu value=\"open", NOPS_REJECT_SYNTAX},
        {"cpu value=1 abc", NOPS_REJECT_TIMESTAMP},
        {"cpu value=1 99999999999999999999", NOPS_REJECT_TIMESTAMP},
        {"cpu value=1 1 2", NOPS_REJECT_TIMESTAMP},
        {"", NOPS_REJECT_EMPTY},
        {"# only a comment\n", NOPS_REJECT_EMPTY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nops_parse_stats st;
        got g = parse(cases[i].msg, NOPS_PARSE, &st);
        assert_int_equal(g.n, 0);
        if (st.reason != cases[i].reason)
            fail_msg("\"%s\": reason %s, want %s", cases[i].msg, nops_ingest_reject_name(st.reason),
                     nops_ingest_reject_name(cases[i].reason));
        assert_non_null(st.detail);
    }
    /* too many tags */
    char big[4096] = "m";
    for (int i = 0; i < 70; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), ",t%d=v", i);
    strcat(big, " v=1");
    nops_parse_stats st;
    parse(big, NOPS_PARSE, &st);
    assert_int_equal(st.reason, NOPS_REJECT_TOO_LARGE);
    /* one bad line among good ones: the good ones arrive, the bad one is counted */
    got g = parse("a v=1\nb v=oops\nc v=3\n", NOPS_OK, &st);
    assert_int_equal(g.n, 2);
    assert_int_equal(st.points, 2);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.first_bad, 2);
    assert_int_equal(st.reason, NOPS_REJECT_VALUE);
}

static void test_json_shapes(void **state)
{
    got g = parse("{\"timestamp\":\"2024-01-01T00:00:00Z\",\"value\":\"0.53\",\"name\":\"cpu\","
                  "\"labels\":{\"__name__\":\"cpu\",\"host\":\"a\"}}",
                  NOPS_OK, NULL);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.series[0], "cpu||host=a");
    assert_float_equal(g.value[0], 0.53, 0);
    assert_true(g.ts[0] == 1704067200000000000ll);
    g = parse("{\"name\":\"cpu\",\"tags\":{\"host\":\"b\"},\"fields\":{\"usage\":1.5,\"value\":2,"
              "\"state\":\"ok\",\"up\":true},\"timestamp\":1700000000}",
              NOPS_OK, NULL);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.series[0], "cpu|usage|host=b");
    assert_string_equal(g.series[1], "cpu||host=b");
    assert_true(g.ts[0] == 1700000000000000000ll);
    g = parse("{\"metrics\":[{\"name\":\"a\",\"fields\":{\"x\":1},\"timestamp\":1700000000000},"
              "{\"name\":\"b\",\"fields\":{\"y\":2}}]}",
              NOPS_OK, NULL);
    assert_int_equal(g.n, 2);
    assert_true(g.ts[0] == 1700000000000000000ll);
    assert_true(g.ts[1] == 42);
    /* newline-separated objects, one of them broken: the others still arrive */
    nops_parse_stats st;
    g = parse("{\"name\":\"a\",\"value\":1}\n{\"name\":\"b\",\"value\":\n{\"name\":\"c\",\"value\":3}\n",
              NOPS_OK, &st);
    assert_int_equal(g.n, 2);
    assert_int_equal(st.rejected, 1);
}

static void test_json_rejects(void **state)
{
    static const bad cases[] = {
        {"{", NOPS_REJECT_SYNTAX},
        {"{\"value\":1}", NOPS_REJECT_FORMAT},
        {"{\"name\":\"\",\"value\":1}", NOPS_REJECT_SYNTAX},
        {"{\"name\":7,\"value\":1}", NOPS_REJECT_SYNTAX},
        {"{\"name\":\"a\",\"value\":\"Inf\"}", NOPS_REJECT_VALUE},
        {"{\"name\":\"a\",\"value\":\"12abc\"}", NOPS_REJECT_VALUE},
        {"{\"name\":\"a\",\"value\":[1]}", NOPS_REJECT_VALUE},
        {"{\"name\":\"a\",\"value\":1,\"labels\":{\"h\":1}}", NOPS_REJECT_SYNTAX},
        {"{\"name\":\"a\",\"value\":1,\"timestamp\":\"soon\"}", NOPS_REJECT_TIMESTAMP},
        {"{\"name\":\"a\",\"fields\":[1]}", NOPS_REJECT_SYNTAX},
        {"{\"name\":\"a\",\"fields\":{\"x\":{}}}", NOPS_REJECT_VALUE},
        {"{\"name\":\"a\",\"value\":1,\"name\":\"b\"}", NOPS_REJECT_SYNTAX},
        {"   \n", NOPS_REJECT_EMPTY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nops_parse_stats st;
        got g = {0};
        nops_err e = nops_ingest_parse(cases[i].msg, strlen(cases[i].msg), 42, collect, &g, &st);
        if (e != NOPS_PARSE || g.n != 0 || st.reason != cases[i].reason)
            fail_msg("\"%s\": %s, %d points, reason %s, want %s", cases[i].msg, nops_err_name(e),
                     g.n, nops_ingest_reject_name(st.reason),
                     nops_ingest_reject_name(cases[i].reason));
    }
}

/* Names, tags and text that are not UTF-8 are refused at parse time with reason utf8 (they
 * would make the signal's JSON fail later); the good lines beside them still arrive. */
static void test_utf8_rejected(void **state)
{
    static const char *const lp[] = {
        "cpu,host=web\xff value=1",                 /* a stray byte in a tag value */
        "cpu,ho\xc3st=web value=1",                 /* a cut character in a tag key */
        "c\xe2\x82u value=1",                       /* in the measurement */
        "cpu v\x80=1",                              /* in a field key */
        "cpu,host=a\xc0\xaf value=1",               /* an overlong '/' */
        "cpu,host=\xed\xa0\x80 value=1",            /* a surrogate */
        "cpu,host=\xf4\x90\x80\x80 value=1",        /* past U+10FFFF */
        "cpu,host=a value=1,s=\"text \xfe\"",         /* inside a string field, too */
        "cpu,host=a\xe2\x82 value=1",               /* cut at the end of the tag */
    };
    for (size_t i = 0; i < sizeof lp / sizeof lp[0]; i++) {
        char msg[256];
        snprintf(msg, sizeof msg, "ok,host=a value=1 5\n%s\nok,host=b value=2 6\n", lp[i]);
        nops_parse_stats st;
        got g = parse(msg, NOPS_OK, &st);
        if (g.n != 2 || st.rejected != 1 || st.reason != NOPS_REJECT_UTF8 || st.first_bad != 2 ||
            !strstr(st.detail, "UTF-8"))
            fail_msg("line %zu: %d points, %u rejected, reason %s", i, g.n, st.rejected,
                     nops_ingest_reject_name(st.reason));
    }
    static const char *const js[] = {
        "{\"name\":\"cpu\",\"value\":1,\"labels\":{\"host\":\"web\xff\"}}",
        "{\"name\":\"cpu\",\"value\":1,\"labels\":{\"h\xc3\":\"web\"}}",
        "{\"name\":\"c\xed\xa0\x80\",\"value\":1}",
        "{\"name\":\"cpu\",\"tags\":{\"host\":\"\xc0\xaf\"},\"fields\":{\"v\":1}}",
    };
    for (size_t i = 0; i < sizeof js / sizeof js[0]; i++) {
        char msg[256];
        snprintf(msg, sizeof msg, "{\"name\":\"ok\",\"value\":1}\n%s\n{\"name\":\"ok\","
                                  "\"value\":2}\n", js[i]);
        nops_parse_stats st;
        got g = parse(msg, NOPS_OK, &st);
        if (g.n != 2 || st.rejected != 1 || st.reason != NOPS_REJECT_UTF8 || st.first_bad != 2)
            fail_msg("object %zu: %d points, %u rejected, reason %s", i, g.n, st.rejected,
                     nops_ingest_reject_name(st.reason));
    }
    /* valid UTF-8 of every length passes, verbatim */
    got g = parse("cpu,city=K\xc3\xb6ln,sym=\xe2\x82\xac,e=\xf0\x9f\x98\x80 value=1", NOPS_OK,
                  NULL);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.series[0], "cpu||city=K\xc3\xb6ln,sym=\xe2\x82\xac,e=\xf0\x9f\x98\x80");
    g = parse("{\"name\":\"cpu\",\"value\":1,\"labels\":{\"city\":\"K\\u00f6ln\"}}", NOPS_OK,
              NULL);
    assert_string_equal(g.series[0], "cpu||city=K\xc3\xb6ln");
    assert_string_equal(nops_ingest_reject_name(NOPS_REJECT_UTF8), "utf8");
    assert_string_equal(nops_ingest_reject_name(NOPS_REJECT_SERIES_LIMIT), "series_limit");
}

/* The wall-clock tolerance of the pipeline: far-off times out, 0 turns a bound off, and the
 * extremes of int64 compare without overflow. */
static void test_check_time(void **state)
{
    const int64_t now = 1800000000000000000ll, s = 1000000000ll;
    const char *why = NULL;
    assert_int_equal(nops_ingest_check_time(9000000000000000000ll, now, 0, 86400, &why),
                     NOPS_REJECT_TIMESTAMP);
    assert_non_null(strstr(why, "max_future_s"));
    assert_int_equal(nops_ingest_check_time(now + 86400 * s, now, 0, 86400, NULL),
                     NOPS_REJECT_NONE);
    assert_int_equal(nops_ingest_check_time(now + 86400 * s + 1, now, 0, 86400, NULL),
                     NOPS_REJECT_TIMESTAMP);
    assert_int_equal(nops_ingest_check_time(now - 7 * 86400 * s - 1, now, 7 * 86400, 86400, &why),
                     NOPS_REJECT_TIMESTAMP);
    assert_non_null(strstr(why, "max_past_s"));
    assert_int_equal(nops_ingest_check_time(now - 7 * 86400 * s, now, 7 * 86400, 86400, NULL),
                     NOPS_REJECT_NONE);
    assert_int_equal(nops_ingest_check_time(0, now, 0, 86400, NULL), NOPS_REJECT_NONE);
    assert_int_equal(nops_ingest_check_time(INT64_MAX, now, 0, 0, NULL), NOPS_REJECT_NONE);
    assert_int_equal(nops_ingest_check_time(INT64_MIN, now, 1, 1, NULL), NOPS_REJECT_TIMESTAMP);
    assert_int_equal(nops_ingest_check_time(INT64_MAX, INT64_MIN, 1, 1, NULL),
                     NOPS_REJECT_TIMESTAMP);
    assert_int_equal(nops_ingest_check_time(INT64_MIN, INT64_MAX, 0, 3155760000ll, NULL),
                     NOPS_REJECT_NONE);
}

/* Names a canonical key could not be split back into are refused (reason `name`) in every
 * format, the line or object alone: its neighbours still go through. */
static void test_names_that_break_a_key(void **state)
{
    (void)state;
    static const char *names[] = {
        "cpu,a\\=b=1,host=web-1 v=1",             /* tag key with an escaped = */
        "cpu,a\\,b=1 v=1",                        /* tag key with an escaped comma */
        "cpu,a\"b=1 v=1",                          /* tag key with a quote */
        "cpu,a{b=1 v=1",                            /* tag key with a brace */
        "cpu{x,dc=1 v=1",                           /* measurement with { */
        "cpu}x v=1",                                /* measurement with } */
        "cpu\"x value=1",                          /* measurement with a quote */
        "cpu a{b=1",                                /* field (part of the name) with { */
        "cpu ok=1,a\"b=2",                         /* one bad field: the whole line */
        "{\"name\":\"cpu{x\",\"value\":1}",
        "{\"name\":\"cpu\",\"value\":1,\"labels\":{\"a=b\":\"1\"}}",
        "{\"name\":\"cpu\",\"value\":1,\"labels\":{\"a\\tb\":\"1\"}}",
        "{\"name\":\"cpu\",\"value\":1,\"labels\":{\"\":\"1\"}}",
        "{\"name\":\"cpu\",\"fields\":{\"a}b\":1},\"tags\":{}}",
        "{\"name\":\"cpu\",\"fields\":{\"u\":1},\"tags\":{\"h,x\":\"a\"}}",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        nops_parse_stats st;
        got g = parse(names[i], NOPS_PARSE, &st);
        assert_int_equal(g.n, 0);
        if (st.reason != NOPS_REJECT_NAME)
            fail_msg("\"%s\": reason %s, want name", names[i], nops_ingest_reject_name(st.reason));
        assert_non_null(st.detail);
    }
    /* the neighbours of a refused line still go through; values may hold anything */
    nops_parse_stats st;
    got g = parse("cpu,a\\=b=1 v=1\ncpu,host=a\\=b{\"} v=2", NOPS_OK, &st);
    assert_int_equal(g.n, 1);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.reason, NOPS_REJECT_NAME);
    assert_string_equal(nops_ingest_reject_name(NOPS_REJECT_NAME), "name");
}

/* precision=ns|us|ms|s scales integer line-protocol timestamps; ns stays the default; a time
 * that overflows int64 nanoseconds once scaled is refused, never wrapped. */
static void test_precision(void **state)
{
    (void)state;
    static const struct { const char *name; nops_ts_precision p; const char *ts; } cases[] = {
        {"ns", NOPS_TS_NS, "1700000000123456789"},
        {"us", NOPS_TS_US, "1700000000123456"},
        {"ms", NOPS_TS_MS, "1700000000123"},
        {"s", NOPS_TS_S, "1700000000"},
    };
    static const int64_t want[] = {1700000000123456789ll, 1700000000123456000ll,
                                   1700000000123000000ll, 1700000000000000000ll};
    for (size_t i = 0; i < 4; i++) {
        nops_ts_precision p = NOPS_TS_PRECISION_COUNT;
        assert_true(nops_ingest_precision_parse(cases[i].name, strlen(cases[i].name), &p));
        assert_int_equal(p, cases[i].p);
        char msg[128];
        snprintf(msg, sizeof msg, "cpu,host=a value=1 %s\nmem value=2", cases[i].ts);
        got g = {0};
        nops_parse_stats st;
        assert_int_equal(nops_ingest_parse_prec(msg, strlen(msg), 42, p, collect, &g, &st),
                         NOPS_OK);
        assert_int_equal(g.n, 2);
        assert_int_equal(g.ts[0], want[i]);
        assert_int_equal(g.ts[1], 42); /* no timestamp: now, whatever the precision */
    }
    nops_ts_precision p = NOPS_TS_MS;
    assert_false(nops_ingest_precision_parse("h", 1, &p));
    assert_false(nops_ingest_precision_parse("nss", 3, &p));
    assert_false(nops_ingest_precision_parse("", 0, &p));
    assert_int_equal(p, NOPS_TS_MS);
    /* seconds that do not fit once scaled: refused with reason timestamp */
    got g = {0};
    nops_parse_stats st;
    const char *big = "cpu value=1 9300000000\ncpu value=2 -9300000000\ncpu value=3 9200000000";
    assert_int_equal(nops_ingest_parse_prec(big, strlen(big), 0, NOPS_TS_S, collect, &g, &st),
                     NOPS_OK);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.ts[0], 9200000000000000000ll);
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.reason, NOPS_REJECT_TIMESTAMP);
    /* JSON keeps its own magnitude rule whatever the line-protocol precision */
    const char *js = "{\"name\":\"a\",\"value\":1,\"timestamp\":1700000000}";
    g = (got){0};
    assert_int_equal(nops_ingest_parse_prec(js, strlen(js), 0, NOPS_TS_MS, collect, &g, &st),
                     NOPS_OK);
    assert_int_equal(g.ts[0], 1700000000000000000ll);
    /* the default entry point reads nanoseconds */
    g = parse("cpu value=1 1700000000", NOPS_OK, NULL);
    assert_int_equal(g.ts[0], 1700000000ll);
}

/* prometheus-kafka-adapter writes a staleness marker as "value":"NaN": skipped and counted,
 * never a rejection, so a message of markers alone is fine (no DLQ) and its neighbours go on. */
static void test_staleness_nan_skipped(void **state)
{
    (void)state;
    nops_parse_stats st;
    got g = parse("{\"name\":\"up\",\"value\":\"NaN\",\"labels\":{\"job\":\"a\"}}\n"
                  "{\"name\":\"up\",\"value\":\"1\",\"labels\":{\"job\":\"b\"}}\n"
                  "{\"name\":\"up\",\"value\":\"nan\",\"timestamp\":\"2024-01-01T00:00:00Z\"}\n",
                  NOPS_OK, &st);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.series[0], "up||job=b");
    assert_int_equal(st.stale, 2);
    assert_int_equal(st.rejected, 0);
    g = parse("{\"name\":\"up\",\"value\":\"NaN\"}", NOPS_OK, &st);
    assert_int_equal(g.n, 0);
    assert_int_equal(st.stale, 1);
    assert_int_equal(st.rejected, 0);
}

/* Shapes no parser takes are refused as a whole with reason unsupported_format (not a
 * misleading syntax or value error), and say what was expected. */
static void test_unsupported_format(void **state)
{
    (void)state;
    static const struct { const char *msg; size_t len; } cases[] = {
        {"\x1f\x8b\x08\x00\x00\x00\x00\x00", 8},        /* gzip */
        {"\x00\x00\x00\x00\x01\x02\x03", 7},            /* Confluent schema-registry framing */
        {"\n\x0a\x12\x08\x0a\x06\x6a\x6f\x62", 10},   /* protobuf */
        {"[{\"name\":\"a\",\"value\":1}]", 0},       /* a JSON array */
        {"{\"metric\":\"cpu\",\"points\":[[1,2]]}", 0}, /* some other JSON shape */
        {"{\"name\":\"cpu\",\"val\":1}", 0},          /* a name and neither value nor fields */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nops_parse_stats st;
        got g = {0};
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].msg);
        nops_err e = nops_ingest_parse(cases[i].msg, len, 0, collect, &g, &st);
        if (e != NOPS_PARSE || g.n || st.reason != NOPS_REJECT_FORMAT ||
            !strstr(st.detail, "unsupported format"))
            fail_msg("case %zu: %s, %d points, reason %s", i, nops_err_name(e), g.n,
                     nops_ingest_reject_name(st.reason));
    }
    assert_string_equal(nops_ingest_reject_name(NOPS_REJECT_FORMAT), "unsupported_format");
}

static void test_consumer_can_stop(void **state)
{
    got g = {0};
    g.n = 15; /* room for one more: collect() refuses the 17th */
    nops_parse_stats st;
    assert_int_equal(nops_ingest_parse("a v=1\nb v=2\nc v=3\n", 18, 0, collect, &g, &st), NOPS_OK);
    assert_int_equal(g.n, 16);
    assert_int_equal(st.points, 2); /* the second was refused, parsing stopped there */
}

/* nops_ingest_check_names (a byte table in parse/) refuses exactly the bytes core's
 * nops_series_name_ok and nops_label_key_ok refuse, in names, fields and label keys. */
static void test_check_names_matches_core(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        char b[3] = {'a', (char)c, 'z'};
        nops_label tag = {b, 3, "v", 1};
        nops_point pt = {b, 3, "", 0, NULL, 0, 1.0, 0, NULL, 0};
        bool name_ok = nops_series_name_ok(b, 3), key_ok = nops_label_key_ok(b, 3);
        assert_int_equal(nops_ingest_check_names(&pt, NULL) == NOPS_REJECT_NONE, name_ok);
        pt = (nops_point){"m", 1, b, 3, NULL, 0, 1.0, 0, NULL, 0};
        assert_int_equal(nops_ingest_check_names(&pt, NULL) == NOPS_REJECT_NONE, name_ok);
        pt = (nops_point){"m", 1, "", 0, &tag, 1, 1.0, 0, NULL, 0};
        assert_int_equal(nops_ingest_check_names(&pt, NULL) == NOPS_REJECT_NONE, key_ok);
    }
    nops_point empty = {"", 0, "", 0, NULL, 0, 1.0, 0, NULL, 0};
    assert_int_equal(nops_ingest_check_names(&empty, NULL), NOPS_REJECT_NAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_names_matches_core),
        cmocka_unit_test(test_lineproto_basic),
        cmocka_unit_test(test_lineproto_escapes_and_numbers),
        cmocka_unit_test(test_lineproto_rejects),
        cmocka_unit_test(test_json_shapes),
        cmocka_unit_test(test_json_rejects),
        cmocka_unit_test(test_utf8_rejected),
        cmocka_unit_test(test_check_time),
        cmocka_unit_test(test_names_that_break_a_key),
        cmocka_unit_test(test_consumer_can_stop),
        cmocka_unit_test(test_precision),
        cmocka_unit_test(test_staleness_nan_skipped),
        cmocka_unit_test(test_unsupported_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
