/*
 * orch_config.c — the [orchestrate] settings table (core/config.h drives flags, environment
 * and docs from it), beside the module it configures; kept out of orchestrator.c, which is
 * the state machine.
 */
#include "orchestrate/orch_int.h"

#include <stddef.h>

#define OFF(f) offsetof(nops_orch_params, f)
static const nops_cfg_entry orch_entries[] = {
    {"registry_dir", NOPS_CFG_STRING, OFF(registry_dir), 0,
     sizeof(((nops_orch_params *)0)->registry_dir), "", NULL, NULL, 0,
     "Directory of signed playbook manifests (docs/policies/safety.md); empty = orchestration "
     "off."},
    {"pubkeys", NOPS_CFG_STRING, OFF(pubkeys), 0, sizeof(((nops_orch_params *)0)->pubkeys), "",
     NULL, NULL, 0, "PEM public keys that may sign playbooks, comma-separated."},
    {"policy_file", NOPS_CFG_STRING, OFF(policy_file), 0,
     sizeof(((nops_orch_params *)0)->policy_file), "", NULL, NULL, 0,
     "JSON policy rules (docs/policies/safety.md); empty = every run needs an approval."},
    {"workers", NOPS_CFG_INT, OFF(workers), 1, NOPS_ORCH_MAX_WORKERS, "4", NULL, NULL, 0,
     "Threads that run dry-runs and executions started over the API: that many playbooks run "
     "at once, the rest wait their turn."},
    {"max_open", NOPS_CFG_INT, OFF(max_open), 1, 1000000, "1000", NULL, NULL, 0,
     "Orchestrations not yet in an end state (suggested, dry-run, approved, executing) that may "
     "exist at once; a suggestion past it is refused (HTTP 429) until some of them end "
     "(executed, failed, interrupted)."},
    {"allowed_commands", NOPS_CFG_STRING, OFF(allowed_commands), 0,
     sizeof(((nops_orch_params *)0)->allowed_commands), "", NULL, NULL, 0,
     "Commands exec steps may run: fnmatch patterns, comma-separated (e.g. "
     "/usr/local/bin/kubectl,/opt/runbooks/*); anything else fails the dry-run and the "
     "execution. Empty = any absolute path."},
    {"automation", NOPS_CFG_BOOL, OFF(automation), 0, 0, "true", NULL, NULL, 0,
     "Automatic executions (policy allow + playbook mode auto) may run at all; false holds "
     "every one of them (the kill switch's config half; POST /automation/pause is the run-time "
     "half, shared by the instances on one database)."},
    {"auto_budget_per_hour", NOPS_CFG_INT, OFF(auto_budget_per_hour), 1, 1000000, "3", NULL,
     NULL, 0,
     "Automatic executions per service (the incident's service label) in the last hour, at "
     "most; more are held (audited) until the hour has room. Counted in the record store, so "
     "across instances on PostgreSQL. (orchestrate.automation = false: none)."},
    {"escalate_after_s", NOPS_CFG_INT, OFF(escalate_after_s), 1, 31536000, "900", NULL, NULL, 0,
     "An orchestration the policy escalated that waited this long for an approval at its level "
     "goes up a level (info, warning, critical, emergency) and is notified again."},
};
#undef OFF

const nops_cfg_section nops_orch_cfg_section = {
    "orchestrate",
    "Playbooks, the policy gate and approvals (docs/policies/). Records, runs and the audit "
    "trail live in storage.data_dir (orchestrations/, history.jsonl, audit.jsonl); with "
    "sinks.postgres_dsn the records are PostgreSQL table orchestrations and runs and audit "
    "entries also go to workflow_runs and audit_logs. kafka steps publish through "
    "kafka.brokers.",
    orch_entries, sizeof orch_entries / sizeof orch_entries[0], NULL};
