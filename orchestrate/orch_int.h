/*
 * orch_int.h — the orchestrator's parts (internal to orchestrate/; not a public header):
 * running one exec step, publishing one kafka step, and the record store (files or PostgreSQL)
 * with the workflow_runs writer.
 */
#ifndef NOPS_ORCHESTRATE_INT_H
#define NOPS_ORCHESTRATE_INT_H

#include "orchestrate/orchestrate.h"

#include "pg/pg.h"

#include <libpq-fe.h>
#include <stdatomic.h>

/* ---- exec steps (runner.c) ---------------------------------------------------------------- */

typedef struct nops_step_result {
    int exit_code;      /* 0 success; 128+signal when killed; 127 when it could not start */
    bool timed_out;     /* killed at the deadline */
    bool truncated;     /* output longer than the buffer */
    char output[8192];  /* stdout and stderr, interleaved as written; valid UTF-8 (bytes that
                           are not become U+FFFD; cut on a character boundary) */
} nops_step_result;

/* Run argv `exec` (absolute path first) until done or deadline_ns (monotonic). `env` holds up to
 * 8 extra "NEURALOPS_X=value" strings (NULL-terminated; may be NULL). NOPS_INVAL for a relative
 * command, NOPS_IO when it could not be started at all. */
nops_err nops__run_step(const json_t *exec, bool dry_run, bool dry_run_arg,
                        char *const *env, int64_t deadline_ns, nops_step_result *res);

/* ---- kafka steps (kstep.c) ----------------------------------------------------------------- */

typedef struct nops_kstep nops_kstep;

/* A producer for kafka steps (acks=all, idempotent; `extra` "k=v,k=v" more properties, may be
 * NULL); NULL + sentence on a bad setting. */
struct nops_kafka_params; /* kafka/kafka.h */
nops_kstep *nops__kstep_new(const char *brokers, const struct nops_kafka_params *kp, char *errstr,
                            size_t errstr_size);
void nops__kstep_destroy(nops_kstep *k);
/* Publish `value` (compact JSON) keyed by `key` and wait for the broker's acknowledgement until
 * deadline_ns (monotonic). NOPS_OK once acknowledged; NOPS_IO + why otherwise. */
nops_err nops__kstep_publish(nops_kstep *k, const char *topic, const char *key,
                             const json_t *value, int64_t deadline_ns, char *why,
                             size_t why_size);
/* Check that `topic` exists on the cluster (metadata request) before deadline_ns. */
nops_err nops__kstep_check(nops_kstep *k, const char *topic, int64_t deadline_ns, char *why,
                           size_t why_size);

/* ---- seals: HMACs over a record's plan (seal.c) ------------------------------------------- */

/* The incident context steps get: {"incident_id": string|null, "labels": {name: string}}
 * (string labels only; new reference). */
json_t *nops__step_context(const json_t *incident);
/* The seal (hex HMAC) of `kind` ("suggest", "dry-run", "approval") over the plan of `rec`
 * against the playbook `pb` loaded now; `sub` holds "by" and "at" (NULL for "suggest"). False
 * when out of memory. */
bool nops__seal_make(const nops_secret *s, const char *kind, json_t *rec,
                     const nops_playbook *pb, json_t *sub, char out[2 * NOPS_MAC_LEN + 1]);
/* Whether `hex` is that seal (constant time). */
bool nops__seal_check(const nops_secret *s, const char *kind, json_t *rec,
                      const nops_playbook *pb, json_t *sub, const char *hex);
/* "" when the record's own seal ("mac", made at suggest) holds against the manifest `pb` loaded
 * now and its copy of the steps is the manifest's; otherwise why not, in `why`. */
void nops__origin_refusal(const nops_secret *secret, json_t *rec, const nops_playbook *pb,
                          char *why, size_t why_size);
/* Seal `kind` ("dry-run", "approval") into rec[key] = {"by" (when not NULL), "at",
 * "manifest_sha256", "mac"}; false when out of memory. */
bool nops__seal_into(const nops_secret *secret, json_t *rec, const nops_playbook *pb,
                     const char *kind, const char *key, const char *by);
/* Whether rec[key] is a seal of `kind` that holds against the manifest `pb` loaded now. */
bool nops__sealed(const nops_secret *secret, json_t *rec, const nops_playbook *pb,
                  const char *kind, const char *key);
/* The policy's decision context for a suggestion (orchestrate.h, the policy gate). */
json_t *nops__policy_context(const nops_playbook *pb, const json_t *incident,
                             const nops_actor *who);
/* A new record for a suggestion: `fixed_id`, or a random id when NULL, the playbook, the
 * incident and its step context, the requester, the decision `d` (with its rule and reason;
 * a deny also says why in "error"), state suggested (denied for a deny), sealed ("mac"); an
 * escalate decision starts its unsealed "escalation" {"level","since","since_ns"}. NULL when
 * out of memory or when OpenSSL has no random bytes for the id. */
json_t *nops__record_new(const nops_secret *secret, const nops_playbook *pb,
                         const json_t *incident, const nops_actor *who,
                         const nops_policy_decision *d, const char *fixed_id);

/* ---- a record's steps (steps.c) --------------------------------------------------------- */

/* Run every step of the signed manifest pb (dry-run or for real) within its timeout, with the
 * orchestration id and the context of `rec` (never its other fields); per-step results into
 * rec["dry_run"] or rec["execution"]; false with the first failure in `why` (valid UTF-8). `k`
 * may be NULL (kafka steps then fail); `allowed` are the fnmatch patterns exec[0] must match
 * (comma-separated; "" = any). */
bool nops__run_steps(json_t *rec, const nops_playbook *pb, nops_kstep *k, const char *allowed,
                     bool dry, char *why, size_t why_size);
/* Whether `cmd` matches one of the comma-separated fnmatch `patterns` ("" matches all). */
bool nops__command_allowed(const char *cmd, const char *patterns);
/* The playbook's state_probe run now ({"exit","output"} or {"error"}, also when its command is
 * not `allowed`), NULL without a probe. */
json_t *nops__probe_state(json_t *rec, const nops_playbook *pb, const char *allowed);
/* The workflow_runs row of an executed record, with `status` success|failure|aborted (new
 * reference). */
json_t *nops__workflow_row(json_t *rec, const char *status, const char *executed_by);

/* ---- the record store (records.c; the file store in records_files.c) ----------------------- */

typedef struct nops_records nops_records;
typedef struct nops_rfiles nops_rfiles;

/* Records as DIR/<id>.json, or — with a DSN — rows of table `orchestrations` (schema created
 * idempotently, like `workflow_runs`). NULL + sentence when neither can be set up. */
nops_records *nops__records_open(const char *dir, const char *pg_dsn, char *errstr,
                                 size_t errstr_size);
void nops__records_close(nops_records *s);
/* The record `id` (new reference), a damaged placeholder {"id","state":"damaged","error","created_at"}
 * when what is stored is not a record of that id, or NULL (no such record, bad id, store
 * unreachable). */
json_t *nops__records_load(nops_records *s, const char *id);
/* Store `rec` (its "id" and "state"), durably. With `expect_state` non-NULL the stored record
 * must still be in that state (a compare-and-set across processes on PostgreSQL): NOPS_INVAL
 * otherwise. With `expect_state` "" it must not exist yet (create only, across processes:
 * INSERT ... ON CONFLICT DO NOTHING, or link(2) of a finished file): NOPS_EXISTS otherwise.
 * NOPS_IO when it could not be written. */
nops_err nops__records_save(nops_records *s, json_t *rec, const char *expect_state,
                            char *errstr, size_t errstr_size);
/* Up to `limit` records (whole), newest created first, only those in `state` when it is not
 * NULL ("damaged": the damaged placeholders); damaged ones appear as placeholders in an unfiltered listing.
 * New array reference; NULL when the store could not be read. Files: reads only the records
 * returned (an index in memory picks them). */
json_t *nops__records_list(nops_records *s, const char *state, size_t limit);
/* Records in a state that is not an end state (see nops__record_state_open); -1 on error. */
long long nops__records_count_open(nops_records *s);
/* Hold the store's lock and get its PostgreSQL connection or its file store (the other NULL),
 * for the automation state (records_auto.c); nops__records_unlock after. */
void nops__records_lock(nops_records *s, PGconn **pg, nops_rfiles **files);
void nops__records_unlock(nops_records *s);
/* Record files read since the store opened (0 on PostgreSQL); for tests. */
uint64_t nops__records_file_reads(nops_records *s);
/* An id the store accepts: 1-40 of [a-z0-9-]. */
bool nops__record_id_valid(const char *id);
/* suggested, dry_running, dry_run_ok, dry_run_failed, approved, executing. */
bool nops__record_state_open(const char *state);
/* NULL when `rec` is a record of `id` with a state; otherwise why it is damaged. */
const char *nops__record_damage(json_t *rec, const char *id);
/* A damaged placeholder (new reference). */
json_t *nops__record_damaged(const char *id, const char *why, const char *created_at);
/* Log a damaged record (at most 10 lines a minute; the rest are counted). */
void nops__record_warn_damaged(const char *id, const char *why);

/* The file store (records_files.c); every call under the nops_records lock. */
nops_rfiles *nops__rfiles_open(const char *dir, char *errstr, size_t errstr_size);
void nops__rfiles_close(nops_rfiles *f);
json_t *nops__rfiles_load(nops_rfiles *f, const char *id);
nops_err nops__rfiles_save(nops_rfiles *f, json_t *rec, const char *id, const char *expect,
                           char *errstr, size_t errstr_size);
json_t *nops__rfiles_list(nops_rfiles *f, const char *state, size_t limit);
long long nops__rfiles_count_open(nops_rfiles *f);
uint64_t nops__rfiles_reads(nops_rfiles *f);
const char *nops__rfiles_dir(const nops_rfiles *f);

/* ---- automation's state in the store (records_auto.c) ------------------------------------ */

/* Given the verified value of a state key (NULL when absent or when it does not verify) and
 * how it was found (NOPS_OK, NOPS_NOTFOUND, NOPS_PARSE: it does not verify), the new value
 * to store (new reference) or NULL to leave it as it is. */
typedef json_t *(*nops__state_fn)(void *ctx, const json_t *cur, nops_err found);
/* The value of state `key` ([a-z_]+) verified under the engine key `k` (new reference in *val):
 * NOPS_OK, NOPS_NOTFOUND (never stored), NOPS_PARSE (stored but does not verify; errstr says
 * where), NOPS_IO. PostgreSQL table orchestrate_state or STATE_DIR/_<key>.json. */
nops_err nops__state_get(nops_records *s, const nops_secret *k, const char *key, json_t **val,
                         char *errstr, size_t errstr_size);
/* Read, change with fn, and store (MAC'ed) state `key` as one step across processes on
 * PostgreSQL (a transaction under an advisory lock on the key) and in this process for files.
 * NOPS_IO when it could not be read or stored. */
nops_err nops__state_update(nops_records *s, const nops_secret *k, const char *key,
                            nops__state_fn fn, void *ctx, char *errstr, size_t errstr_size);
/* The state (executed, failed or interrupted; "" when none) of the newest ended run of
 * `playbook` whose context labels service and host are these ("" = absent). NOPS_IO when the
 * store could not be read. Files: reads every ended record (not for a hot path). */
nops_err nops__records_last_run(nops_records *s, const char *playbook, const char *service,
                                const char *host, char *state, size_t cap);

/* Write a workflow_runs row: appended to `history_jsonl` (when not "") and inserted into
 * PostgreSQL table workflow_runs (when the store has a DSN). NOPS_IO + sentence if either
 * failed. */
nops_err nops__records_add_run(nops_records *s, const char *history_jsonl, const json_t *row,
                               char *errstr, size_t errstr_size);

/* ---- the orchestrator's parts automation.c uses (orchestrator.c) --------------------------- */

/* Automation's settings and counters, inside the orchestrator (automation.c fills them). */
typedef struct nops_orch_auto {
    bool off;                   /* orchestrate.automation = false */
    int64_t budget;             /* automatic starts per service and hour */
    int64_t escalate_after_ns;  /* orchestrate.escalate_after_s */
    atomic_uint_fast64_t started, held_paused, held_budget, held_failed, escalations, tampered;
} nops_orch_auto;

void nops__auto_init(nops_orch_auto *au, const nops_orch_deps *d);
void nops__auto_stats(nops_orch_auto *au, nops_orch_stats *st);
/* What automation.c works with (all borrowed from the orchestrator, alive as long as it). */
typedef struct nops_orch_parts {
    nops_records *rs;
    const nops_secret *secret;
    const nops_registry *reg;
    const char *owner;  /* "host:pid", what this process's claims record */
    nops_orch_auto *au;
} nops_orch_parts;
void nops__orch_parts(nops_orchestrator *o, nops_orch_parts *p);
/* Why `role` may not `act` ("approve", "execute") on playbook pb by its safety.allowed_roles;
 * "" when it may (automation.c). */
void nops__role_refusal(const nops_playbook *pb, const char *role, const char *act, char *why,
                        size_t why_size);
/* An audit entry for an act already done (details stolen; a lost entry is logged). */
void nops__orch_audit(nops_orchestrator *o, const char *actor, const char *action,
                      const char *id, const char *decision, json_t *details);
/* A refusal: counted, audited, said in errstr; NOPS_INVAL. */
nops_err nops__orch_refuse(nops_orchestrator *o, const char *actor, const char *action,
                           const char *id, const char *why, char *errstr, size_t errstr_size);
/* nops_orch_suggest with the id `fixed_id` (created only if it does not exist: NOPS_EXISTS),
 * or a random one when NULL. */
nops_err nops__orch_suggest(nops_orchestrator *o, const json_t *incident,
                            const char *playbook_id, const nops_actor *who, const char *fixed_id,
                            json_t **out, char *errstr, size_t errstr_size);
/* nops_orch_start; `automatic`: the claim of nops_orch_auto_execute (see claim_execute). */
nops_err nops__orch_start(nops_orchestrator *o, nops_orch_step step, const char *id,
                          const nops_actor *who, bool automatic, json_t **out, char *errstr,
                          size_t errstr_size);

#endif
