/*
 * test_csv.c — timestamps and CSV rows: every accepted form, every kind of malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parse/parse.h"

#include <string.h>

typedef struct ts_case {
    const char *text;
    int64_t ns; /* expected, when ok */
    bool ok;
} ts_case;

static void test_timestamps(void **state)
{
    static const ts_case cases[] = {
        {"2024-01-01T00:00:00Z", 1704067200000000000ll, true},
        {"2024-01-01 00:00:00", 1704067200000000000ll, true},
        {"2024-01-01t00:00:00z", 1704067200000000000ll, true},
        {"2024-01-01", 1704067200000000000ll, true},
        {"2024-01-01T00:00", 1704067200000000000ll, true},
        {"2024-01-01T01:30:00+01:30", 1704067200000000000ll, true},
        {"2023-12-31T19:00:00-0500", 1704067200000000000ll, true},
        {"2024-01-01T00:00:00.5Z", 1704067200500000000ll, true},
        {"2024-01-01T00:00:00.123456789Z", 1704067200123456789ll, true},
        {"2024-02-29T12:00:00Z", 1709208000000000000ll, true},
        {"1970-01-01T00:00:00Z", 0, true},
        {"1960-01-01T00:00:00Z", -315619200000000000ll, true},
        {"1700000000", 1700000000000000000ll, true},
        {"1700000000000", 1700000000000000000ll, true},
        {"1700000000000000", 1700000000000000000ll, true},
        {"1700000000000000000", 1700000000000000000ll, true},
        {"1700000000.25", 1700000000250000000ll, true},
        {"0", 0, true},
        {"", 0, false},
        {"2023-02-29T00:00:00Z", 0, false},
        {"2024-13-01T00:00:00Z", 0, false},
        {"2024-01-32", 0, false},
        {"2024-01-01T24:00:00Z", 0, false},
        {"2024-01-01T00:60:00Z", 0, false},
        {"2024-01-01T00:00:00+25:00", 0, false},
        {"2024-01-01T00:00:00.Z", 0, false},
        {"2024-01-01X00:00:00", 0, false},
        {"2024-01-01T00:00:00Zjunk", 0, false},
        {"9999-01-01T00:00:00Z", 0, false},
        {"24-01-01", 0, false},
        {"yesterday", 0, false},
        {"12abc", 0, false},
        {"1.", 0, false},
        {"99999999999999999999999", 0, false},
        {"18446744073709551615", 0, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ns = -1;
        const char *reason = NULL;
        nops_err e =
            nops_ingest_parse_timestamp(cases[i].text, strlen(cases[i].text), &ns, &reason);
        if (cases[i].ok) {
            if (e != NOPS_OK || ns != cases[i].ns)
                fail_msg("\"%s\": got %s %lld (%s), want %lld", cases[i].text, nops_err_name(e),
                         (long long)ns, reason ? reason : "", (long long)cases[i].ns);
        } else {
            if (e != NOPS_PARSE || !reason)
                fail_msg("\"%s\": accepted as %lld", cases[i].text, (long long)ns);
        }
    }
}

static void test_csv_rows(void **state)
{
    nops_csv_row row;
    nops_csv_kind kind;
    const char *reason;
    const char *line = "2024-01-01T00:00:00Z,12.5";
    assert_int_equal(nops_ingest_csv_line(line, strlen(line), true, &row, &kind, &reason), NOPS_OK);
    assert_int_equal(kind, NOPS_CSV_ROW);
    assert_int_equal(row.ts_len, 20);
    assert_memory_equal(row.ts, "2024-01-01T00:00:00Z", 20);
    assert_float_equal(row.value, 12.5, 0);
    /* blanks, quotes and a CR are tolerated; the timestamp is passed through without them */
    line = "  \"1700000000\" ,  \"-3.25e2\"  \r";
    assert_int_equal(nops_ingest_csv_line(line, strlen(line), false, &row, &kind, &reason),
                     NOPS_OK);
    assert_int_equal(row.ts_len, 10);
    assert_memory_equal(row.ts, "1700000000", 10);
    assert_float_equal(row.value, -325.0, 0);
    /* header only on the first line */
    line = "timestamp,value";
    assert_int_equal(nops_ingest_csv_line(line, strlen(line), true, &row, &kind, &reason),
                     NOPS_OK);
    assert_int_equal(kind, NOPS_CSV_HEADER);
    assert_int_equal(nops_ingest_csv_line(line, strlen(line), false, &row, &kind, &reason),
                     NOPS_PARSE);
    line = "   \t ";
    assert_int_equal(nops_ingest_csv_line(line, strlen(line), false, &row, &kind, &reason),
                     NOPS_OK);
    assert_int_equal(kind, NOPS_CSV_BLANK);
}

typedef struct bad_case {
    const char *line;
    const char *reason_part;
} bad_case;

static void test_csv_bad_rows(void **state)
{
    static const bad_case cases[] = {
        {"2024-01-01T00:00:00Z", "found one"},
        {"2024-01-01T00:00:00Z,1,2", "found more"},
        {"2024-01-01T00:00:00Z,", "empty"},
        {",5", "timestamp is empty"},
        {"2024-01-01T00:00:00Z,abc", "not a number"},
        {"2024-01-01T00:00:00Z,12abc", "not a number"},
        {"2024-01-01T00:00:00Z,nan", "NaN or infinite"},
        {"2024-01-01T00:00:00Z,-inf", "NaN or infinite"},
        {"2024-01-01T00:00:00Z,1e39", "float32"},
        {"2024-01-01T00:00:00Z,1e999", "NaN or infinite"},
        {"noon,5", "neither ISO-8601"},
        {"2024-02-30,5", "impossible date"},
        {"\"2024\"01,5", "quotes inside"},
        {"2024-01-01T00:00:00Z,1111111111111111111111111111111111111111111111111111111111111111"
         "11111111111111111111111111111111111111111111111111111111111111111111111111111",
         "too long"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nops_csv_row row;
        nops_csv_kind kind;
        const char *reason = NULL;
        nops_err e = nops_ingest_csv_line(cases[i].line, strlen(cases[i].line), false, &row,
                                          &kind, &reason);
        if (e != NOPS_PARSE || !reason || !strstr(reason, cases[i].reason_part))
            fail_msg("\"%s\": %s, reason \"%s\", want \"%s\"", cases[i].line, nops_err_name(e),
                     reason ? reason : "(none)", cases[i].reason_part);
    }
    /* a NUL byte inside the line */
    static const char nul[] = "2024-01-01,5\0";
    nops_csv_row row;
    nops_csv_kind kind;
    const char *reason = NULL;
    assert_int_equal(nops_ingest_csv_line(nul, sizeof nul - 1, false, &row, &kind, &reason),
                     NOPS_PARSE);
    const char *l;
    /* text that is not UTF-8 is refused with that reason, even where a header may stand */
    static const char *const not_utf8[] = {"2024-01-01T00:00:00Z,5\xff", "2024-01-01\xc3,5",
                                           "ts,lat\xe9ncy", "ts,\xed\xa0\x80",
                                           "ts,\xc0\xafvalue"};
    for (size_t i = 0; i < sizeof not_utf8 / sizeof not_utf8[0]; i++) {
        reason = NULL;
        nops_err e = nops_ingest_csv_line(not_utf8[i], strlen(not_utf8[i]), true, &row, &kind,
                                          &reason);
        if (e != NOPS_PARSE || !reason || !strstr(reason, "not valid UTF-8"))
            fail_msg("line %zu: %s, reason \"%s\"", i, nops_err_name(e),
                     reason ? reason : "(none)");
    }
    l = "Zeit,Latenz (\xc2\xb5s)"; /* a header in UTF-8 is still a header */
    assert_int_equal(nops_ingest_csv_line(l, strlen(l), true, &row, &kind, &reason), NOPS_OK);
    assert_int_equal(kind, NOPS_CSV_HEADER);
    /* a first line with a numeric-looking but broken value is an error, not a header */
    l = "2024-01-01,1.2.3";
    assert_int_equal(nops_ingest_csv_line(l, strlen(l), true, &row, &kind, &reason), NOPS_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_csv_rows),
        cmocka_unit_test(test_csv_bad_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
