/*
 * test_log_fields.c — nops_log_fields: structured fields as JSON members or text key=value,
 * escaped, the entry still one line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"

#include <string.h>

static char g_line[8192];
static nops_log_level g_level;

static void sink(void *ud, nops_log_level level, const char *line)
{
    (void)ud;
    g_level = level;
    snprintf(g_line, sizeof g_line, "%s", line);
}

static const nops_log_field fields[] = {
    {.key = "method", .type = NOPS_LOGF_STR, .str = "GET"},
    {.key = "path", .type = NOPS_LOGF_STR, .str = "/a \"b\"\n"},
    {.key = "status", .type = NOPS_LOGF_INT, .i = 404},
    {.key = "duration_ms", .type = NOPS_LOGF_NUM, .num = 1.23456},
    {.key = "caller", .type = NOPS_LOGF_STR, .str = NULL},
    {.key = "closed", .type = NOPS_LOGF_BOOL, .i = 1},
};

static void test_json_members(void **state)
{
    (void)state;
    nops_log_set_sink(sink, NULL);
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_JSON);
    nops_log_fields(NOPS_LOG_INFO, "http", fields, 6, "request %d", 1);
    assert_int_equal(g_level, NOPS_LOG_INFO);
    assert_non_null(strstr(g_line, "\"msg\":\"request 1\",\"method\":\"GET\","
                                   "\"path\":\"/a \\\"b\\\"\\n\",\"status\":404,"
                                   "\"duration_ms\":1.235,\"caller\":\"-\",\"closed\":true}"));
    assert_null(strchr(g_line, '\n'));
    nops_log_set_sink(NULL, NULL);
    nops_log_configure(NOPS_LOG_INFO, NOPS_LOG_TEXT);
}

static void test_text_pairs(void **state)
{
    (void)state;
    nops_log_set_sink(sink, NULL);
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_TEXT);
    nops_log_fields(NOPS_LOG_DEBUG, "http", fields, 6, "request");
    assert_int_equal(g_level, NOPS_LOG_DEBUG);
    assert_non_null(strstr(g_line, "http: request method=GET path=\"/a \\\"b\\\"\\n\" "
                                   "status=404 duration_ms=1.235 caller=- closed=true"));
    /* below the level: nothing */
    g_line[0] = '\0';
    nops_log_configure(NOPS_LOG_INFO, NOPS_LOG_TEXT);
    nops_log_fields(NOPS_LOG_DEBUG, "http", fields, 6, "request");
    assert_string_equal(g_line, "");
    nops_log_set_sink(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_members),
        cmocka_unit_test(test_text_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
