/*
 * test_policy.c — the policy matrix: every action and escalation, priority order, log rules
 * that record and go on, the default (manual), auto-execution only when every condition holds,
 * each operator of the condition language, and bad rules refused at load with their position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "orchestrate/orchestrate.h"

#include <stdlib.h>
#include <string.h>

static const char *rules =
    "["
    "{\"name\":\"audit-prod\",\"priority\":1000,\"when\":\"incident.labels.env == \\\"prod\\\"\","
    " \"action\":\"log\"},"
    "{\"name\":\"no-deletes\",\"priority\":900,\"when\":\"playbook.id ~ \\\"delete-*\\\"\","
    " \"action\":\"deny\"},"
    "{\"name\":\"sev1-escalates\",\"priority\":800,\"when\":\"incident.severity == \\\"sev1\\\" "
    "and not (actor.role == \\\"org-admin\\\")\", \"action\":\"escalate\","
    " \"escalation\":\"critical\"},"
    "{\"name\":\"night\",\"priority\":700,\"when\":\"time.hour < 6 or time.hour >= 22\","
    " \"action\":\"escalate\", \"escalation\":\"warning\"},"
    "{\"name\":\"safe-restarts\",\"priority\":500,\"when\":\"playbook.id in [\\\"restart-pod\\\","
    " \\\"clear-cache\\\"] and incident.labels.service != \\\"payments\\\"\","
    " \"action\":\"allow\"},"
    "{\"name\":\"payments-approval\",\"priority\":400,\"when\":\"incident.labels.service == "
    "\\\"payments\\\"\", \"action\":\"require_approval\"}"
    "]";

static json_t *ctx(const char *pb, const char *mode, const char *roles_json, const char *svc,
                   const char *sev, const char *role, int hour)
{
    json_t *roles = json_loads(roles_json, 0, NULL);
    json_t *c = json_pack("{s:{s:s, s:s, s:s, s:o}, s:{s:s, s:{s:s, s:s}}, s:{s:s, s:s}, "
                          "s:{s:i, s:i}}",
                          "playbook", "id", pb, "version", "1.0.0", "mode", mode,
                          "allowed_roles", roles, "incident", "severity", sev, "labels",
                          "service", svc, "env", "prod", "actor", "id", "key:x", "role", role,
                          "time", "hour", hour, "weekday", 2);
    return c;
}

static void expect(const nops_policy *p, json_t *c, nops_policy_action a, nops_escalation e,
                   const char *rule, bool auto_exec)
{
    nops_policy_decision d;
    nops_policy_decide(p, c, &d);
    if (d.action != a || d.escalation != e || strcmp(d.rule, rule) != 0 ||
        d.auto_execute != auto_exec)
        fail_msg("got %s/%s by \"%s\" auto %d; expected %s/%s by \"%s\" auto %d",
                 nops_policy_action_name(d.action), nops_escalation_name(d.escalation), d.rule,
                 d.auto_execute, nops_policy_action_name(a), nops_escalation_name(e), rule,
                 auto_exec);
    assert_string_equal(d.logged, "audit-prod"); /* the log rule always matched (env=prod) */
    json_decref(c);
}

static void test_matrix(void **state)
{
    char err[256];
    nops_policy *p = nops_policy_parse(rules, err, sizeof err);
    if (!p)
        fail_msg("%s", err);
    assert_int_equal(nops_policy_count(p), 6);
    const char *admin_auto = "[\"org-admin\"]";
    /* allow, and auto only with mode auto + org-admin allowed */
    expect(p, ctx("restart-pod", "auto", admin_auto, "checkout", "sev3", "operator", 12),
           NOPS_POLICY_ALLOW, NOPS_ESC_NONE, "safe-restarts", true);
    expect(p, ctx("restart-pod", "manual", admin_auto, "checkout", "sev3", "operator", 12),
           NOPS_POLICY_ALLOW, NOPS_ESC_NONE, "safe-restarts", false);
    expect(p, ctx("restart-pod", "auto", "[\"operator\"]", "checkout", "sev3", "operator", 12),
           NOPS_POLICY_ALLOW, NOPS_ESC_NONE, "safe-restarts", false);
    /* deny beats allow by priority */
    expect(p, ctx("delete-pvc", "auto", admin_auto, "checkout", "sev3", "org-admin", 12),
           NOPS_POLICY_DENY, NOPS_ESC_NONE, "no-deletes", false);
    /* escalations, by level, before lower rules */
    expect(p, ctx("restart-pod", "auto", admin_auto, "checkout", "sev1", "operator", 12),
           NOPS_POLICY_ESCALATE, NOPS_ESC_CRITICAL, "sev1-escalates", false);
    expect(p, ctx("restart-pod", "auto", admin_auto, "checkout", "sev1", "org-admin", 12),
           NOPS_POLICY_ALLOW, NOPS_ESC_NONE, "safe-restarts", true); /* not: admin is exempt */
    expect(p, ctx("restart-pod", "auto", admin_auto, "checkout", "sev3", "operator", 23),
           NOPS_POLICY_ESCALATE, NOPS_ESC_WARNING, "night", false);
    expect(p, ctx("restart-pod", "auto", admin_auto, "checkout", "sev3", "operator", 3),
           NOPS_POLICY_ESCALATE, NOPS_ESC_WARNING, "night", false);
    /* require approval */
    expect(p, ctx("restart-pod", "auto", admin_auto, "payments", "sev3", "operator", 12),
           NOPS_POLICY_REQUIRE_APPROVAL, NOPS_ESC_NONE, "payments-approval", false);
    /* nothing matches: the default is manual */
    expect(p, ctx("scale-out", "auto", admin_auto, "checkout", "sev3", "operator", 12),
           NOPS_POLICY_REQUIRE_APPROVAL, NOPS_ESC_NONE, "", false);
    nops_policy_destroy(p);
    /* no rules at all: manual */
    nops_policy_decision d;
    json_t *c = ctx("x", "auto", admin_auto, "a", "sev3", "org-admin", 12);
    nops_policy_decide(NULL, c, &d);
    assert_int_equal(d.action, NOPS_POLICY_REQUIRE_APPROVAL);
    assert_false(d.auto_execute);
    json_decref(c);
}

static void test_operators(void **state)
{
    json_t *c = ctx("restart-pod", "auto", "[\"operator\",\"org-admin\"]", "checkout", "sev2",
                    "operator", 14);
    const struct { const char *when; bool want; } cases[] = {
        {"time.hour >= 14 and time.hour <= 14", true},
        {"time.hour > 14", false},
        {"time.weekday != 3", true},
        {"playbook.id ~ \"restart-*\"", true},
        {"playbook.id ~ \"*cache\"", false},
        {"playbook.allowed_roles in [\"org-admin\"]", true},
        {"incident.labels.team == \"x\"", false},   /* absent: null */
        {"incident.labels.team != \"x\"", true},
        {"incident.labels.team == null", true},
        {"not (incident.severity in [\"sev1\", \"sev2\"])", false},
        {"(actor.role == \"viewer\" or actor.role == \"operator\") and time.hour < 18", true},
        {"playbook.version < \"2\"", true},
        {"playbook.id == 5", false},                 /* types differ */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *r = json_pack("[{s:s, s:i, s:s, s:s}]", "name", "r", "priority", 1, "when",
                              cases[i].when, "action", "allow");
        char *text = json_dumps(r, 0), err[256];
        nops_policy *p = nops_policy_parse(text, err, sizeof err);
        if (!p)
            fail_msg("%s: %s", cases[i].when, err);
        nops_policy_decision d;
        nops_policy_decide(p, c, &d);
        if ((d.action == NOPS_POLICY_ALLOW) != cases[i].want)
            fail_msg("\"%s\" evaluated to %d", cases[i].when, !cases[i].want);
        nops_policy_destroy(p);
        free(text);
        json_decref(r);
    }
    json_decref(c);
}

static void test_bad_rules(void **state)
{
    const struct { const char *json, *needle; } bad[] = {
        {"{}", "JSON array"},
        {"[{\"priority\":1,\"when\":\"time.hour > 1\",\"action\":\"allow\"}]", "name"},
        {"[{\"name\":\"a\",\"when\":\"time.hour > 1\",\"action\":\"allow\"}]", "priority"},
        {"[{\"name\":\"a\",\"priority\":1,\"when\":\"time.hour > 1\",\"action\":\"maybe\"}]",
         "action"},
        {"[{\"name\":\"a\",\"priority\":1,\"when\":\"time.hour > 1\",\"action\":\"escalate\"}]",
         "escalation level"},
        {"[{\"name\":\"a\",\"priority\":1,\"when\":\"time.hour > 1\",\"action\":\"escalate\","
         "\"escalation\":\"doom\"}]", "escalation"},
        {"[{\"name\":\"a\",\"priority\":1,\"action\":\"allow\"}]", "when"},
        {"[{\"name\":\"a\",\"priority\":1,\"when\":\"weather.rain == true\",\"action\":\"allow\"}]",
         "unknown field"},
        {"[{\"name\":\"a\",\"priority\":1,\"when\":\"time.hour >> 3\",\"action\":\"allow\"}]",
         "column"},
        {"[{\"name\":\"a\",\"priority\":1,\"when\":\"(time.hour > 3\",\"action\":\"allow\"}]",
         ") expected"},
        {"[{\"name\":\"a\",\"priority\":1,\"when\":\"time.hour > 3 junk\",\"action\":\"allow\"}]",
         "unexpected text"},
        {"[{\"name\":\"a\",\"priority\":1,\"when\":\"playbook.id == \\\"x\",\"action\":\"allow\"}]",
         "unterminated"},
        {"[{\"name\":\"a\",\"priority\":1,\"when\":\"time.hour > 1\",\"action\":\"allow\"},"
         "{\"name\":\"a\",\"priority\":2,\"when\":\"time.hour > 1\",\"action\":\"deny\"}]",
         "two rules"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        nops_policy *p = nops_policy_parse(bad[i].json, err, sizeof err);
        if (p || !strstr(err, bad[i].needle))
            fail_msg("case %zu: %s (\"%s\" lacks \"%s\")", i, p ? "accepted" : "refused", err,
                     bad[i].needle);
    }
    char err[128];
    assert_null(nops_policy_load("/nonexistent/policy.json", err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_bad_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
