/*
 * fuzz_policy.c — libFuzzer target for the policy rule parser: any text either parses into
 * rules that decide without crashing on a fixed context (the decision is never LOG and
 * auto-execution implies ALLOW), or is refused with a sentence.
 */
#include "orchestrate/orchestrate.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *ctx;
    if (!ctx)
        ctx = json_pack("{s:{s:s, s:s, s:[s]}, s:{s:s, s:{s:s}}, s:{s:s}, s:{s:i}}", "playbook",
                        "id", "restart-pod", "mode", "auto", "allowed_roles", "org-admin",
                        "incident", "severity", "sev2", "labels", "service", "checkout", "actor",
                        "role", "operator", "time", "hour", 3);
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char err[256] = "";
    nops_policy *p = nops_policy_parse(text, err, sizeof err);
    if (!p && !err[0])
        abort();
    if (p) {
        nops_policy_decision d;
        nops_policy_decide(p, ctx, &d);
        if (d.action == NOPS_POLICY_LOG || (d.auto_execute && d.action != NOPS_POLICY_ALLOW))
            abort();
        nops_policy_destroy(p);
    }
    free(text);
    return 0;
}
