/*
 * orchestrate.h — acting on incidents safely (docs/security.md, README.md "Playbooks").
 *
 * Names: one prefix per part of the module, in the order the header declares them —
 * nops_audit_ (the audit trail), nops_playbook_ / nops_registry_ (signed playbooks and the
 * registry of them), nops_policy_ (the gate), nops_orch_ (the orchestrator: records, the state
 * machine, the runner). They predate the one-prefix rule; callers in api/, app/ and the tests
 * use them, so they stay until a rename can take every caller at once.
 *
 * This header starts with the audit trail: an append-only, keyed hash chain of entries
 *   {seq, ts, actor, action, subject, decision, details, prev_hash, hash}
 * where hash = hex HMAC-SHA256 under the engine key's subkey "audit" (nops_secret_mac_hex) of
 * prev_hash ‖ canonical JSON of the entry without "hash", canonical JSON being jansson's compact
 * dump with sorted keys and ASCII escapes. The first entry's prev_hash is 64 zeros. Entries go to
 * a JSONL file (written and fsync'ed per entry) and, when a DSN is given, to PostgreSQL table
 * audit_logs, whose trigger refuses UPDATE and DELETE. Without the key nobody can make an entry
 * that verifies, so an edited entry cannot be covered up by recomputing the hashes after it.
 *
 * The chain's end (seq and hash, MAC'ed) is also kept in a head record outside the data dir
 * (nops_audit_head_dir_for: beside the engine key), rewritten after every append, and — with
 * PostgreSQL — the table's end must match the file's. A start that finds the file cut short,
 * rolled back or rewritten, or the table behind or different, refuses to continue the chain.
 *
 * A trail of an earlier version (plain SHA-256 hashes) is sealed when first opened: a keyed
 * entry (action "audit.keyed", details {"legacy_entries","legacy_head"}) is appended after it;
 * unkeyed entries are accepted only as such a sealed prefix. docs/security-audit.md says what
 * is and is not detected.
 *
 * Ownership: the caller owns a nops_audit and closes it; the key is borrowed and must outlive
 * it; `details` passed in is only read. Thread-safety: appends are serialised inside.
 */
#ifndef NOPS_ORCHESTRATE_H
#define NOPS_ORCHESTRATE_H

#include "core/core.h"

#include <jansson.h>

typedef struct nops_audit nops_audit;

/**
 * Open (creating, mode 0640, close-on-exec; a symbolic link is refused) the chain in `path`,
 * continuing after its last entry, keyed with `key` (required; borrowed). With `pg_dsn` (may be
 * NULL or "") also in PostgreSQL (schema and trigger created idempotently). With `head_dir`
 * (created 0750; must lie outside the file's directory) the head record is checked and kept
 * there; NULL or "" keeps none (tests: a file-only trail cut short then goes unnoticed).
 *
 * Refused (NULL and a sentence saying what was found; nops_audit_integrity_failures counts it)
 * when the last entry does not verify under the key, the file is shorter than the head record
 * or differs from it, or PostgreSQL and the file disagree about the end. A table that lacks
 * only the file's last entry (a crash between the two writes) or that is new to this chain
 * (empty, or the last start ran without it) is given the entries it lacks.
 */
nops_audit *nops_audit_open(const char *path, const char *pg_dsn, const nops_secret *key,
                            const char *head_dir, char *errstr, size_t errstr_size);
void nops_audit_close(nops_audit *a);

/** Append one entry (details may be NULL); its seq in *seq (may be NULL). NOPS_IO when the file
 *  or the database refused it (then nothing of it counts: the chain is not advanced). A head
 *  record that cannot be rewritten does not fail the append; it is logged and counted. */
nops_err nops_audit_append(nops_audit *a, const char *actor, const char *action,
                           const char *subject, const char *decision, const json_t *details,
                           uint64_t *seq, char *errstr, size_t errstr_size);

/**
 * Whether the trail records the start of an execution of `subject` (action "execute", decision
 * "started"), and its seq (the first, when there are several). A start withdrawn by a later
 * "not-recorded" entry whose details name its seq ("withdraws": the claim was not stored) does
 * not count. Answered from entries verified under the key when the trail was opened (every
 * entry is checked then) and from those appended since, never from unverified text.
 * Thread-safe.
 */
bool nops_audit_started(nops_audit *a, const char *subject, uint64_t *seq);

/** Which entries nops_audit_page returns. */
typedef struct nops_audit_query {
    uint64_t after;      /**< entries with seq > after (the `next` of the previous page) */
    size_t limit;        /**< at most this many (clamped to 1..1000) */
    const char *actor;   /**< only this actor (NULL = any); likewise action and subject */
    const char *action;
    const char *subject;
} nops_audit_query;

/**
 * A page of the chain, oldest first: {"entries":[..],"next":seq|null,"total":n}, where next is
 * the `after` of the following page (null at the end; with filters a page may hold fewer than
 * `limit` entries before the end). NOPS_IO/NOPS_PARSE when the file cannot be read.
 */
nops_err nops_audit_page(nops_audit *a, const nops_audit_query *q, json_t **out, char *errstr,
                         size_t errstr_size);

/** The head record directory for the engine key at `key_path`: DIR_OF_KEY/audit-heads. */
void nops_audit_head_dir_for(const char *key_path, char *out, size_t cap);

/** Integrity problems found in this process: opens refused (cut short, rolled back, rewritten,
 *  diverged), verifications that found tampering, head records that could not be rewritten. */
uint64_t nops_audit_integrity_failures(void);

/** What a verification found. */
typedef struct nops_audit_report {
    uint64_t entries;    /**< entries read from the file (from the table when only it is read) */
    uint64_t pg_entries; /**< rows read from PostgreSQL audit_logs */
    uint64_t legacy;     /**< of the entries, unkeyed ones of an earlier version (sealed) */
    uint64_t first_bad;  /**< 1-based position of the first bad or missing entry; 0 = none
                              (intact, or only the head record is wrong: see the return) */
    char why[700];       /**< what is wrong */
    char note[1400];     /**< about an intact chain, what could not be checked ("" = nothing) */
} nops_audit_report;

/** What nops_audit_verify reads (each may be NULL/""). */
typedef struct nops_audit_sources {
    const char *path;     /**< the JSONL file */
    const char *pg_dsn;   /**< PostgreSQL table audit_logs */
    const char *head_dir; /**< the head records (checked against `path`) */
} nops_audit_sources;

/**
 * Verify every entry of the file and/or the table under `key`, then their ends against each
 * other and against the head record: NOPS_OK intact, NOPS_PARSE tampered (first_bad and why say
 * where and what), NOPS_IO unreadable (errstr), NOPS_INVAL without a key. Reads only.
 */
nops_err nops_audit_verify(const nops_audit_sources *src, const nops_secret *key,
                           nops_audit_report *r, char *errstr, size_t errstr_size);
/** The JSONL chain in `path` alone (the same; an unreadable file: NOPS_IO, why says so). */
nops_err nops_audit_verify_file(const char *path, const nops_secret *key, nops_audit_report *r);
/** PostgreSQL table audit_logs alone, in seq order. */
nops_err nops_audit_verify_pg(const char *dsn, const nops_secret *key, nops_audit_report *r,
                              char *errstr, size_t errstr_size);

/* ---- playbooks (WPKs): signed JSON manifests in a registry directory --------------------- */
/*
 * A manifest {"id","name","version","description","safety":{"mode":"manual|auto",
 * "allowed_roles":[...]},"steps":[{"name","exec":["cmd","arg",...]} |
 * {"name","kafka":{"topic","payload"}}],"timeout_s","state_probe":["cmd","arg",...]} (the
 * probe, optional, runs before and after an execution: its output is the pre/post state
 * recorded) in DIR/<anything>.json, with a detached
 * signature DIR/<same>.json.sig in the format of `cosign sign-blob`: base64 of the DER ECDSA
 * P-256 signature over SHA-256 of the file's bytes. Verified with OpenSSL against the configured
 * PEM public keys (any one may match).
 */

#define NOPS_PLAYBOOK_MAX_STEPS 32

typedef struct nops_playbook {
    char id[64];
    char name[128];
    char version[32];
    char description[512];
    bool auto_mode;          /**< safety.mode == "auto" (default manual) */
    unsigned allowed_roles;  /**< bit (1 << role) for viewer 1, operator 2, org-admin 3 */
    int64_t timeout_s;       /**< whole-run timeout (default 300) */
    json_t *manifest;        /**< the parsed manifest (owned by the registry) */
    char sha256[65];         /**< hex SHA-256 of the signed file: approvals bind to it */
    char path[512];          /**< the manifest file */
} nops_playbook;

typedef struct nops_registry nops_registry;

/**
 * Load every *.json of `dir`, keeping only manifests that are well-formed and signed by one of
 * `pubkeys` (comma-separated PEM files). Refused manifests are logged with their reason and
 * counted; a bad public key or an unreadable directory fails the load (NULL + sentence).
 */
nops_registry *nops_registry_load(const char *dir, const char *pubkeys, char *errstr,
                                  size_t errstr_size);
void nops_registry_destroy(nops_registry *r);
size_t nops_registry_count(const nops_registry *r);
const nops_playbook *nops_registry_at(const nops_registry *r, size_t i);
const nops_playbook *nops_registry_get(const nops_registry *r, const char *id);
/** Manifests refused at load, and the reason of the i-th ("file: reason"). */
size_t nops_registry_refused(const nops_registry *r);
const char *nops_registry_refusal(const nops_registry *r, size_t i);
/**
 * Check a playbook again right before it runs: its file must still hash to `sha256` (what was
 * approved) and carry a valid signature. NOPS_INVAL with the reason otherwise.
 */
nops_err nops_registry_recheck(const nops_registry *r, const nops_playbook *pb,
                               const char *sha256, char *why, size_t why_size);

/**
 * Parse and check one manifest's bytes (no signature check) into *pb; NOPS_PARSE with the reason
 * in `why`. On success pb->manifest is a reference the caller drops with nops_playbook_release.
 */
nops_err nops_playbook_parse(const void *data, size_t n, nops_playbook *pb, char *why,
                             size_t why_size);
void nops_playbook_release(nops_playbook *pb);

/** Generate an EC P-256 key pair: the private key into `key_pem` (created 0600; an existing file
 *  is never replaced: NOPS_IO), the public key into `pub_pem` (PEM SubjectPublicKeyInfo). */
nops_err nops_playbook_keygen(const char *key_pem, const char *pub_pem, char *errstr,
                              size_t errstr_size);

/** Sign `file` with the PEM EC private key `key_pem`, writing `file`.sig (cosign format). */
nops_err nops_playbook_sign(const char *file, const char *key_pem, char *errstr,
                            size_t errstr_size);

/* ---- the policy gate ------------------------------------------------------------------------ */
/*
 * Rules (docs/policies/safety.md): a JSON array of {"name","priority","when","action",
 * "escalation","reason"} ("reason" optional: what a decision by it records) where `when` is a condition over the decision context
 *   {"playbook":{"id","version","mode","allowed_roles":[..]},
 *    "incident":{"severity","labels":{..}}, "actor":{"id","role"},
 *    "time":{"hour","weekday"}}
 * written as   path op value   joined by `and`, `or`, `not` and parentheses; ops are
 * == != < <= > >= (numbers or strings), ~ (shell glob, fnmatch) and `in [v, ...]`; a path that is
 * absent compares as null (only `!= x` holds). Conditions are parsed once at load into an
 * expression tree. Rules are tried highest priority first; `log` rules record and go on; the
 * first other matching rule decides. No match: require_approval (manual).
 */

typedef enum nops_policy_action {
    NOPS_POLICY_ALLOW = 0,
    NOPS_POLICY_DENY,
    NOPS_POLICY_REQUIRE_APPROVAL,
    NOPS_POLICY_ESCALATE,
    NOPS_POLICY_LOG,
} nops_policy_action;

typedef enum nops_escalation {
    NOPS_ESC_NONE = 0,
    NOPS_ESC_INFO,
    NOPS_ESC_WARNING,
    NOPS_ESC_CRITICAL,
    NOPS_ESC_EMERGENCY,
} nops_escalation;

const char *nops_policy_action_name(nops_policy_action a);
const char *nops_escalation_name(nops_escalation e);

typedef struct nops_policy nops_policy;

/** Parse rules (a JSON array text); NULL with a sentence naming the rule and the position of a
 *  syntax error. */
nops_policy *nops_policy_parse(const char *json_text, char *errstr, size_t errstr_size);
/** Load rules from a file (see nops_policy_parse). */
nops_policy *nops_policy_load(const char *path, char *errstr, size_t errstr_size);
void nops_policy_destroy(nops_policy *p);
size_t nops_policy_count(const nops_policy *p);

typedef struct nops_policy_decision {
    nops_policy_action action;     /**< never LOG */
    nops_escalation escalation;    /**< for ESCALATE (and any rule that names one) */
    char rule[64];                 /**< the deciding rule, "" for the default */
    char reason[256];              /**< why: the deciding rule's "reason", else "rule NAME
                                        matched: WHEN", or the default's */
    char logged[256];              /**< names of `log` rules that matched, comma-separated */
    bool auto_execute;             /**< allowed to run without an approval (see below) */
} nops_policy_decision;

/**
 * Decide for `ctx` (the context object above). auto_execute holds only when the decision is
 * ALLOW, the playbook's mode is "auto" and its allowed_roles include "org-admin".
 */
void nops_policy_decide(const nops_policy *p, const json_t *ctx, nops_policy_decision *d);

/* ---- the orchestrator: suggest → dry-run → approve → execute ---------------------------- */
/*
 * One record per proposed run, kept in a record store — JSON files in the state directory, or
 * PostgreSQL table `orchestrations` when a DSN is given — so a restart (or another instance on
 * the same database) continues any flow where it stopped. States:
 *   suggested → dry_running → dry_run_ok | dry_run_failed (→ dry_running again)
 *   dry_run_ok → approved → executing → executed | failed
 *   denied (policy deny at suggest), interrupted (the process died during an execution: the
 *   outcome is unknown and the run is not repeated by itself)
 * Every transition is a compare-and-set on the stored state, so one step cannot be taken twice.
 * Approval needs role org-admin, org-admin in the playbook's safety.allowed_roles and an
 * approver other than the requester; an execution by a person needs a role in allowed_roles.
 *
 * What runs is never read from a record: dry-runs and executions take the steps (and the state
 * probe) from the registry's signed manifest of the record's playbook, and the incident context
 * steps receive ({"incident_id", "labels"}, string labels only) from the record's "context",
 * which is sealed. A record carries HMACs under the engine's secret (nops_secret, purpose
 * "orchestration") over a canonical plan — orchestration id, playbook id and version, the
 * manifest's sha256, the context, the requester, the creation time and the policy decision
 * ("mac", made at suggest, which also binds an auto-execute decision), the passed dry-run
 * ("dry_run_seal") and the approval with its approver and time ("approval"). Every step checks
 * the seals it relies on against the manifest loaded now; a record edited in the store (files
 * or database) by someone without the key, or a manifest that changed, is refused, audited and
 * counted. Execution also rechecks the manifest file's hash and signature, and one process
 * never starts the same orchestration twice. `exec` steps run as
 * argument vectors (never a shell) with an environment of PATH and NEURALOPS_* only
 * (NEURALOPS_ORCHESTRATION_ID, _PLAYBOOK_ID, _INCIDENT_ID, _SERVICE, _HOST, _DRY_RUN), within the
 * playbook's timeout, output captured (bounded); a command outside `allowed_commands` (when
 * set) fails the dry-run and the execution; in dry-run they get NEURALOPS_DRY_RUN=1 and,
 * when the step says "dry_run": true, a --dry-run argument (otherwise they are only checked).
 * `kafka` steps publish {"orchestration_id","playbook_id","incident_id","step","dry_run",
 * "labels","payload"} keyed by the orchestration id and wait for the broker's acknowledgement;
 * in a dry-run they check that the topic exists (and publish with "dry_run": true when the step
 * says "dry_run": true). Every step is audited; an execution writes a workflow_runs row to the
 * history JSONL and, with a DSN, to PostgreSQL table workflow_runs.
 */

#define NOPS_ORCH_MAX_WORKERS 64

/** [orchestrate] settings. */
typedef struct nops_orch_params {
    char registry_dir[512]; /**< signed playbooks; "" = orchestration off */
    char pubkeys[1024];     /**< PEM public keys that may sign them, comma-separated */
    char policy_file[512];  /**< JSON policy rules; "" = every run needs an approval */
    char allowed_commands[1024]; /**< fnmatch patterns for exec[0], comma-separated; "" = any */
    int64_t workers;        /**< threads running started steps (1..NOPS_ORCH_MAX_WORKERS) */
    int64_t max_open;       /**< records not yet in an end state that may exist at once */
    bool automation;        /**< automatic executions allowed at all (the kill switch's config
                                 half; nops_orch_set_paused is the run-time half) */
    int64_t auto_budget_per_hour; /**< automatic starts per service in the last hour, at most */
    int64_t escalate_after_s;     /**< an escalated run unapproved this long goes up a level */
} nops_orch_params;

/** Largest incident (compact JSON bytes) a suggestion takes inline. */
#define NOPS_ORCH_MAX_INCIDENT 65536

extern const nops_cfg_section nops_orch_cfg_section;

typedef struct nops_actor {
    const char *id;   /* "key:ops", "jwt:alice" */
    const char *role; /* viewer | operator | org-admin */
} nops_actor;

/** What an orchestrator works with (all borrowed; strings copied). */
typedef struct nops_orch_deps {
    const char *state_dir;     /**< records as <id>.json (without pg_dsn) */
    const char *history_jsonl; /**< workflow_runs rows appended here (NULL/"" = not) */
    const char *pg_dsn;        /**< NULL/"": files; else `orchestrations` + `workflow_runs` */
    const char *brokers;       /**< Kafka for kafka steps (NULL/"": those steps fail) */
    const struct nops_kafka_params *kafka; /**< Kafka client settings (kafka/kafka.h: extra,
                                              [kafka.librdkafka]) for kafka steps; NULL: none */
    const char *allowed_commands; /**< exec[0] must match one of these fnmatch patterns
                                       (comma-separated); NULL/"" = any absolute path */
    int workers;               /**< threads for nops_orch_start (0 = 4) */
    int64_t max_open;          /**< open records at most (0 = 1000): more suggestions NOPS_FULL */
    const nops_secret *secret; /**< the engine's key: seals approvals (required) */
    const nops_registry *reg;
    const nops_policy *pol;    /**< may be NULL: everything needs an approval */
    nops_audit *audit;         /**< may be NULL (tests) */
    bool automation_off;       /**< orchestrate.automation = false: nops_orch_auto_execute holds
                                    every run (zero = automation on, the default) */
    int64_t auto_budget_per_hour; /**< 0 = 3 */
    int64_t escalate_after_s;  /**< 0 = 900 */
} nops_orch_deps;

typedef struct nops_orchestrator nops_orchestrator;

/** Open the record store, mark executions a dead process left behind as interrupted (and give
 *  dry-runs it left back), report damaged records, start the worker threads for
 *  nops_orch_start. Without deps->secret: NULL and a sentence. */
nops_orchestrator *nops_orch_new(const nops_orch_deps *deps, char *errstr, size_t errstr_size);
/** Finishes the runs already started or queued (their own timeouts bound the wait), then
 *  frees. */
void nops_orch_destroy(nops_orchestrator *o);
/** Decide new suggestions with `pol` (NULL: everything needs an approval) from now on, e.g. a
 *  policy file read again on SIGHUP; records already made keep the decision sealed in them.
 *  The caller keeps `pol` and the one it replaces alive until nops_orch_destroy (a suggestion
 *  in flight may still read the old one). Thread-safe. */
void nops_orch_set_policy(nops_orchestrator *o, const nops_policy *pol);
/** Take playbooks from `reg` (not NULL) from now on, e.g. the registry directory read again on
 *  SIGHUP: a suggestion, dry-run, approval or execution started after the call finds its
 *  playbook there (a record whose playbook is gone or changed is refused as before); one in
 *  progress finishes with the playbook it holds. The caller keeps `reg` and the one it
 *  replaces alive until nops_orch_destroy. Thread-safe. */
void nops_orch_set_registry(nops_orchestrator *o, const nops_registry *reg);

/**
 * Each call returns the record as it stands after the step (*out, a new reference) or an
 * error: NOPS_NOTFOUND (no such orchestration or playbook), NOPS_INVAL (not allowed now: wrong
 * state, role, approver, policy, a record or manifest that changed; errstr says which),
 * NOPS_IO (state could not be saved), NOPS_FULL (suggest: max_open records are open).
 * Dry-run and execute run the steps in the caller's thread. A record file or row that cannot be
 * read as a record comes back from nops_orch_get and nops_orch_list as {"id", "state":
 * "damaged", "error": why, "created_at"} and no step is taken on it.
 */
nops_err nops_orch_suggest(nops_orchestrator *o, const json_t *incident, const char *playbook_id,
                           const nops_actor *who, json_t **out, char *errstr,
                           size_t errstr_size);
nops_err nops_orch_dry_run(nops_orchestrator *o, const char *id, const nops_actor *who,
                           json_t **out, char *errstr, size_t errstr_size);
nops_err nops_orch_approve(nops_orchestrator *o, const char *id, const nops_actor *who,
                           json_t **out, char *errstr, size_t errstr_size);
nops_err nops_orch_execute(nops_orchestrator *o, const char *id, const nops_actor *who,
                           json_t **out, char *errstr, size_t errstr_size);
nops_err nops_orch_get(nops_orchestrator *o, const char *id, json_t **out);
/** Up to `limit` records, newest first, only in `state` when not NULL (e.g. "dry_run_ok": what
 *  waits for an approval); NOPS_IO when the store could not be read. */
nops_err nops_orch_list(nops_orchestrator *o, const char *state, size_t limit, json_t **out);

/** What an orchestrator did since it started (for /metrics). */
typedef struct nops_orch_stats {
    uint64_t suggested;      /**< suggestions recorded (policy did not deny) */
    uint64_t denied;         /**< suggestions a deny rule ended */
    uint64_t dry_run_ok;     /**< dry-runs that passed */
    uint64_t dry_run_failed; /**< dry-runs that failed */
    uint64_t approved;       /**< approvals */
    uint64_t refused;        /**< steps refused (role, requester, a changed record or manifest,
                                  an approval that does not verify) */
    uint64_t executed;       /**< executions that succeeded */
    uint64_t failed;         /**< executions that failed (a step, a timeout, the recheck) */
    uint64_t interrupted;    /**< executions found half-done after a crash */
    uint64_t audit_failures; /**< entries the audit trail refused (steps refused or entries lost) */
    uint64_t running;        /**< steps claimed and not yet finished (gauge) */
    uint64_t damaged;        /**< records found damaged at start (each is logged) */
    uint64_t auto_started;   /**< executions nops_orch_auto_execute started */
    uint64_t auto_held_paused;        /**< ... held: automation paused or off */
    uint64_t auto_held_budget;        /**< ... held: the service's hourly budget was used up */
    uint64_t auto_held_failed_before; /**< ... held: the last run of the playbook on that
                                           target failed */
    uint64_t escalations;    /**< escalation levels raised by nops_orch_escalate_due */
    uint64_t automation_tampered; /**< automation state (pause, budget) read back that did not
                                       verify under the engine key (treated as paused/used up) */
} nops_orch_stats;

void nops_orch_get_stats(nops_orchestrator *o, nops_orch_stats *st);

typedef enum nops_orch_step { NOPS_ORCH_DRY_RUN, NOPS_ORCH_EXECUTE } nops_orch_step;

/**
 * Take the step's checks and claim now (the record comes back dry_running or executing, or the
 * errors above) and run its steps on one of the orchestrator's workers (as many run at once as
 * there are workers; the rest queue); poll nops_orch_get for the outcome. For servers, whose
 * request threads must not wait for a playbook.
 */
nops_err nops_orch_start(nops_orchestrator *o, nops_orch_step step, const char *id,
                         const nops_actor *who, json_t **out, char *errstr, size_t errstr_size);

/* ---- the closed loop: engine suggestions, automatic execution, escalation --------------- */
/*
 * The engine suggests like anyone else, through the policy gate, as NOPS_ORCH_ENGINE (role
 * operator: it may suggest and dry-run, never approve; and since approval needs an approver other
 * than the requester, nobody can make the engine approve its own suggestion). What the policy
 * allowed for automatic execution (allow + playbook mode auto + org-admin in allowed_roles, sealed
 * at suggest) runs without a human only through nops_orch_auto_execute and its guard rails:
 * the kill switch (orchestrate.automation, and the pause below, shared by every instance on the
 * store), a budget of automatic starts per service and hour, and no automatic run of a playbook on
 * a target (service and host labels) whose last run there failed until a run succeeded.
 * docs/policies/approval_workflow.md describes the loop.
 */

/** The engine's actor for the suggestions it makes (requested_by "engine"). */
extern const nops_actor NOPS_ORCH_ENGINE;

/**
 * Suggest `playbook_id` for `incident` once: the orchestration id is derived from the incident's
 * "id" and the playbook id (an HMAC under the engine key, so ids cannot be squatted by whoever
 * cannot read the key), and the record is created only if none with that id exists (PostgreSQL
 * INSERT ... ON CONFLICT DO NOTHING; files: link(2) of a finished file, which fails when one
 * exists) — one suggestion per incident and playbook across restarts and across instances on
 * one database. *created says whether this call made it; otherwise *out is the record that
 * exists (in whatever state it is now, also damaged). The incident must carry a string "id"
 * (NOPS_INVAL). Otherwise as nops_orch_suggest. Thread-safe.
 */
nops_err nops_orch_suggest_once(nops_orchestrator *o, const json_t *incident,
                                const char *playbook_id, const nops_actor *who, json_t **out,
                                bool *created, char *errstr, size_t errstr_size);

/**
 * Start the execution of `id` on a worker (as nops_orch_start EXECUTE by the engine) when the
 * record is dry_run_ok with the sealed automatic decision (refused otherwise, as execute
 * refuses) and the guard rails hold: automation on and not paused, fewer than
 * orchestrate.auto_budget_per_hour automatic starts of the record's service (its "service"
 * label, "" when it has none) in the last hour — counted in the store, so across instances on
 * PostgreSQL — and the last run of the same playbook on the same service and host did not
 * fail. A run held by a guard rail: NOPS_INVAL, the reason in errstr ("held: ..."), an audit
 * entry (action "auto_execute", decision "held", details {"reason","guard"}) and the counter
 * of its guard. *out (new reference) is the record as claimed (executing). Every hold is an
 * audit entry: call it when a run becomes ready (after its dry-run) and retry a held one
 * sparingly (e.g. after a resume or when the hour has room), not on every turn of a loop.
 * Thread-safe.
 */
nops_err nops_orch_auto_execute(nops_orchestrator *o, const char *id, json_t **out,
                                char *errstr, size_t errstr_size);

/**
 * Pause (true) or resume automatic executions for every instance on this store. Only role
 * org-admin (NOPS_INVAL otherwise, audited as refused). Stored MAC'ed under the engine key
 * (PostgreSQL table orchestrate_state, or STATE_DIR/_automation.json), audited (action
 * "automation", decision "paused"|"resumed"). NOPS_IO when it could not be stored.
 */
nops_err nops_orch_set_paused(nops_orchestrator *o, bool paused, const nops_actor *who,
                              char *errstr, size_t errstr_size);

/** Whether automatic executions are held now: orchestrate.automation off, paused, or the
 *  stored pause cannot be read or does not verify (then it fails safe: paused). */
bool nops_orch_paused(nops_orchestrator *o);

/**
 * The automation state for GET /automation (new reference):
 * {"enabled": config, "paused": bool, "paused_by", "paused_at" (when stored), "verified": bool,
 *  "budget_per_hour": n, "used_last_hour": {service: n}, "escalate_after_s": n}.
 */
nops_err nops_orch_automation(nops_orchestrator *o, json_t **out);

/**
 * Raise the escalation of every record whose policy decision is escalate and that still waits
 * (suggested or dry_run_ok) longer than orchestrate.escalate_after_s
 * at its level, as seen at `now_ns` (wall clock, ns since the epoch; tests pass a fake one):
 * info → warning → critical → emergency (it stays at emergency). The record's "escalation"
 * {"level","since","since_ns"} is outside its seals (a level below the sealed policy level is
 * put back to that level; the worst an edit does is cause or delay a notification); each raise
 * is stored (compare-and-set on the state), audited (action "escalate", decision the new level)
 * and reported to fn (may be NULL; called in the caller's thread, the record borrowed for the
 * call). Returns how many were raised. Thread-safe; not for the hot path (lists the store).
 */
size_t nops_orch_escalate_due(nops_orchestrator *o, int64_t now_ns,
                              void (*fn)(void *ctx, const json_t *record, const char *level),
                              void *ctx);

#endif /* NOPS_ORCHESTRATE_H */
