/*
 * engine.h — the streaming engine as one object (app/ only): everything `neuralops serve` and
 * `neuralops demo` run, started by one call and stopped by one call that owns the teardown
 * order (engine.c says which and why).
 */
#ifndef NOPS_APP_ENGINE_H
#define NOPS_APP_ENGINE_H

#include "app/cli.h"

typedef struct app_engine {
    nops_secret *secret;      /* the engine's key (security.key_file): snapshots, approvals,
                               * the audit chain */
    nops_registry *registry;  /* signed playbooks (orchestrate.registry_dir), or NULL */
    nops_policy *policy;      /* orchestrate.policy_file, or NULL */
    nops_audit *audit;        /* data_dir/audit.jsonl (+ PostgreSQL), or NULL */
    nops_orchestrator *orch;  /* the flow, or NULL */
    char orch_off[512];       /* why the flow is off although configured ("" = it is not off) */
    nops_recommender *reco;   /* follows recommend.index_dir, or NULL */
    nops_learner *learner;    /* appends new workflow runs to recommend.index_dir, or NULL */
    nops_notifier *notify;    /* [notify] Alertmanager and webhooks, or NULL when none is set */
    nops_loop *loop;          /* the closed loop ([loop]), the pipeline's incident hook, or
                               * NULL (loop.enabled false, or nothing to recommend or notify) */
    nops_store *store;        /* recent signals and incidents, fed by the sinks; NULL without
                               * the API */
    nops_sinks *sinks;        /* the configured sinks */
    nops_pipeline *pipeline;  /* Kafka → detect → correlate → sinks, running */
    nops_api *api;            /* NULL when api.listen is "" */
    nops_detect_params api_detect; /* the API's /analyze settings: [detect] as at the start
                                    * (a reload changes ctx->detect from the main thread) */
    nops_policy **old_policies; /* policies replaced by a reload, freed at the stop (a
                                 * suggestion in flight may still read one) */
    size_t n_old_policies;    /* how many */
    nops_registry **old_registries; /* registries replaced by a reload, freed at the stop (a
                                     * run in progress may still hold one of its playbooks) */
    size_t n_old_registries;  /* how many */
    bool drained;             /* the pipeline was stopped by app_engine_drain */
    nops_err drain_err;       /* what that stop returned */
} app_engine;

/*
 * Make the data dir and load the key, then start the orchestration pieces, the recommender, the
 * API store (seeded from the data dir's JSONL files), the sinks, the pipeline and the HTTP API,
 * from ctx. False with a message printed (prefixed "neuralops <cmd>: "); whatever was started
 * is stopped again. A missing audit trail or database only turns orchestration off (orch_off).
 */
bool app_engine_start(app_ctx *ctx, app_engine *e, const char *cmd);
/* Stop the pipeline (flush the sinks, commit offsets) while the HTTP API stays up; once. */
nops_err app_engine_drain(app_engine *e);
/* Stop and free everything, in order: API, pipeline, sinks, store, recommender, orchestrator,
 * audit trail, policy, registry, key. Returns what stopping the pipeline returned (its drain's
 * result when drained before). */
nops_err app_engine_stop(app_engine *e);

/*
 * SIGHUP: read the configuration again (cli_reparse: the same file, flags and the environment
 * as it is now) and apply what can change while the engine runs — log.level and log.format,
 * the API keys and JWT settings (api.keys, api.jwt_secret, api.jwt_issuer), the detector
 * thresholds (nops_pipeline_set_thresholds), the notification routes
 * (nops_notifier_set_routes), the signed playbooks and the policy (orchestrate.registry_dir
 * and policy_file, read again even when their names did not change) — then log one line
 * naming what was applied and which changed settings only take effect after a restart. A
 * configuration that does not load, or a key list, registry or policy that is refused, changes
 * nothing: one error line, and the running settings stay. True when the reload was applied.
 * Main thread only (the one that started the engine).
 */
bool app_engine_reload(app_ctx *ctx, app_engine *e);

/* Make storage.data_dir if it is missing (before anything writes there); false with a message
 * printed. */
bool app_data_dir(app_ctx *ctx, const char *cmd);
/* The engine's key (security.key_file, made at the first start, refused inside the data dir);
 * NULL with a message printed. */
nops_secret *app_secret(app_ctx *ctx, const char *cmd);

#endif
