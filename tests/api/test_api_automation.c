/*
 * test_api_automation.c — the kill switch over real loopback HTTP, in front of the engine of
 * api_fixture.c: GET /automation for a viewer, POST /automation/pause and /resume for an
 * org-admin only, the state it reports, the audit entries, and /metrics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/api/api_fixture.h"

static json_t *automation(void)
{
    http_res r = http_do(g_port, "GET", "/automation", H_VIEWER, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *o = json_of(&r);
    http_free(&r);
    return o;
}

static void test_pause_and_resume(void **state)
{
    (void)state;
    json_t *o = automation();
    assert_true(json_is_true(json_object_get(o, "enabled")));
    assert_false(json_is_true(json_object_get(o, "paused")));
    assert_int_equal(json_integer_value(json_object_get(o, "budget_per_hour")), 3);
    json_decref(o);
    /* a viewer and an operator may not pause */
    assert_int_equal(status_of(http_do(g_port, "POST", "/automation/pause", H_VIEWER, "", 0)),
                     403);
    assert_int_equal(status_of(http_do(g_port, "POST", "/automation/pause", H_OPERATOR, "", 0)),
                     403);
    assert_int_equal(status_of(http_do(g_port, "GET", "/automation/pause", H_ADMIN, NULL, 0)),
                     405);
    assert_false(nops_orch_paused(g_orch));
    http_res r = http_do(g_port, "POST", "/automation/pause", H_ADMIN, "", 0);
    assert_int_equal(r.status, 200);
    o = json_of(&r);
    http_free(&r);
    assert_true(json_is_true(json_object_get(o, "paused")));
    assert_non_null(json_string_value(json_object_get(o, "paused_by")));
    json_decref(o);
    assert_true(nops_orch_paused(g_orch));
    o = automation();
    assert_true(json_is_true(json_object_get(o, "paused")));
    json_decref(o);
    assert_int_equal(status_of(http_do(g_port, "POST", "/automation/resume", H_ADMIN, "", 0)),
                     200);
    assert_false(nops_orch_paused(g_orch));
    /* both audited */
    r = http_do(g_port, "GET", "/audit?action=automation&limit=100", H_OPERATOR, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"decision\":\"paused\""));
    assert_non_null(strstr(r.body, "\"decision\":\"resumed\""));
    http_free(&r);
    r = http_do(g_port, "GET", "/metrics", NULL, NULL, 0);
    assert_non_null(
        strstr(r.body, "neuralops_automation_total{outcome=\"held\",guard=\"paused\"} "));
    http_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_and_resume),
    };
    return cmocka_run_group_tests(tests, tapi_setup, tapi_teardown);
}
