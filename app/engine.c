/*
 * engine.c — the engine's wiring, in one place: the data dir and the engine key, the
 * orchestration pieces ([orchestrate]: registry, policy, audit trail, orchestrator), the
 * recommender, the API store, the sinks, the Kafka pipeline and the HTTP API, started in that
 * order by app_engine_start and torn down in the reverse order by app_engine_stop. `neuralops
 * serve` and `neuralops demo` both run the engine through this pair.
 */
#include "app/engine.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The configured sinks and the pipeline, started; false with a message printed. */
static bool start_pipeline(app_ctx *ctx, app_engine *a, const char *cmd)
{
    char err[1024];
    nops_sinks *sinks = nops_sinks_new();
    nops_err e = sinks ? NOPS_OK : NOPS_NOMEM;
    snprintf(err, sizeof err, "out of memory");
    if (e == NOPS_OK && a->store) /* before anything flows, for the HTTP API */
        e = nops_store_attach(a->store, sinks, err, sizeof err);
    if (e == NOPS_OK && ctx->sinks.jsonl)
        e = nops_sinks_add_jsonl(sinks, ctx->storage.data_dir, 0, err, sizeof err);
    if (e == NOPS_OK && ctx->sinks.kafka_topic[0])
        e = nops_sinks_add_kafka(sinks, &ctx->kafka, ctx->sinks.kafka_topic, err,
                                 sizeof err);
    if (e == NOPS_OK && ctx->sinks.postgres_dsn[0])
        e = nops_sinks_add_postgres(sinks, ctx->sinks.postgres_dsn, 0, err, sizeof err);
    if (e != NOPS_OK) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        nops_sinks_destroy(sinks);
        return false;
    }
    nops_correlate_params cp = ctx->correlate; /* the service stage's topic by default: the
                                                  signals topic's, when there is one */
    if (!cp.service_topic[0] && ctx->sinks.kafka_topic[0]) {
        snprintf(cp.service_topic, sizeof cp.service_topic, "%.240s.service",
                 ctx->sinks.kafka_topic);
        cp.service_topic_derived = true;
    }
    nops_pipeline *p = nops_pipeline_new(&ctx->kafka, &ctx->pipeline, &ctx->detect, &cp,
                                         &ctx->storage, sinks, err, sizeof err);
    if (p)
        nops_pipeline_set_secret(p, a->secret);
    if (p && a->loop) /* before the start: every incident goes through it */
        nops_pipeline_set_incident_hook(p, nops_loop_incident, a->loop);
    if (!p || nops_pipeline_start(p, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        nops_pipeline_destroy(p);
        nops_sinks_destroy(sinks);
        return false;
    }
    a->sinks = sinks;
    a->pipeline = p;
    return true;
}

bool app_data_dir(app_ctx *ctx, const char *cmd)
{
    static bool warned; /* once per process (the demo comes here twice) */
    const char *dir = ctx->storage.data_dir;
    struct stat st;
    const bool existed = stat(dir, &st) == 0;
    if (nops_dir_make(dir) != 0) { /* a new one is 0750 whatever the umask */
        fprintf(stderr, "neuralops %s: cannot create %s: %s\n", cmd, dir, strerror(errno));
        return false;
    }
    if (existed && (st.st_mode & 027) && !warned) {
        warned = true;
        NOPS_WARN(cmd, "data directory %s is mode %04o, wider than 0750 (its files hold raw "
                  "personal data and the audit trail): run `chmod 0750 %s`", dir,
                  (unsigned)(st.st_mode & 07777), dir);
    }
    return true;
}

nops_secret *app_secret(app_ctx *ctx, const char *cmd)
{
    char path[600], err[1024];
    nops_security_key_path(&ctx->security, path, sizeof path);
    bool existed = access(path, F_OK) == 0;
    nops_secret *s = nops_secret_load(path, true, err, sizeof err);
    if (s && !nops_secret_outside(s, ctx->storage.data_dir, err, sizeof err)) {
        nops_secret_destroy(s);
        s = NULL;
    }
    if (!s) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        return NULL;
    }
    if (!existed)
        NOPS_WARN(cmd, "made a new engine key %s (mode 0600): approvals and the audit chain are "
                  "keyed with it; back it up and keep it out of the data dir", path);
    return s;
}

/*
 * The orchestration pieces from [orchestrate]. A bad setting (registry, keys, policy) stops the
 * command (false, message printed); a resource that is not there now — the audit file or the
 * database — only turns the flow off: detection runs on, the orchestration routes answer 503
 * with the reason, and a restart tries again.
 */
static bool start_orchestration(app_ctx *ctx, app_engine *a, const char *cmd)
{
    if (!ctx->orchestrate.registry_dir[0])
        return true;
    char err[1024], path[1100], hist[1100];
    if (!(a->registry = nops_registry_load(ctx->orchestrate.registry_dir,
                                           ctx->orchestrate.pubkeys, err, sizeof err)) ||
        (ctx->orchestrate.policy_file[0] &&
         !(a->policy = nops_policy_load(ctx->orchestrate.policy_file, err, sizeof err)))) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        return false;
    }
    /* the chain is keyed with the engine key; its head is remembered beside the key, out of
     * reach of whoever can write the data dir or the database alone */
    char key_path[600], heads[700];
    nops_security_key_path(&ctx->security, key_path, sizeof key_path);
    nops_audit_head_dir_for(key_path, heads, sizeof heads);
    snprintf(path, sizeof path, "%s/audit.jsonl", ctx->storage.data_dir);
    if (!(a->audit = nops_audit_open(path, ctx->sinks.postgres_dsn, a->secret, heads, err,
                                     sizeof err))) {
        snprintf(a->orch_off, sizeof a->orch_off, "%.500s", err);
        NOPS_ERROR(cmd, "orchestration is off: %s", err);
        return true;
    }
    snprintf(path, sizeof path, "%s/orchestrations", ctx->storage.data_dir);
    snprintf(hist, sizeof hist, "%s/history.jsonl", ctx->storage.data_dir);
    nops_orch_deps deps = {.state_dir = path,
                           .history_jsonl = hist,
                           .pg_dsn = ctx->sinks.postgres_dsn,
                           .brokers = ctx->kafka.brokers,
                           .kafka = &ctx->kafka,
                           .allowed_commands = ctx->orchestrate.allowed_commands,
                           .workers = (int)ctx->orchestrate.workers,
                           .max_open = ctx->orchestrate.max_open,
                           .automation_off = !ctx->orchestrate.automation,
                           .auto_budget_per_hour = ctx->orchestrate.auto_budget_per_hour,
                           .escalate_after_s = ctx->orchestrate.escalate_after_s,
                           .secret = a->secret,
                           .reg = a->registry,
                           .pol = a->policy,
                           .audit = a->audit};
    if (!(a->orch = nops_orch_new(&deps, err, sizeof err))) {
        snprintf(a->orch_off, sizeof a->orch_off, "%.500s", err);
        NOPS_ERROR(cmd, "orchestration is off: %s", err);
        nops_audit_close(a->audit);
        a->audit = NULL;
        return true;
    }
    NOPS_INFO(cmd, "orchestration: %zu signed playbooks (%zu refused), %s",
              nops_registry_count(a->registry), nops_registry_refused(a->registry),
              a->policy ? "policy rules loaded" : "no policy: every run needs an approval");
    return true;
}

/*
 * The notifier (when [notify] names a receiver) and the closed loop over the recommender, the
 * orchestrator and the notifier (when loop.enabled and there is something to recommend or
 * notify); false with a message printed.
 */
static bool start_loop(app_ctx *ctx, app_engine *a, const char *cmd)
{
    char err[1024], spool[600];
    if (ctx->notify.alertmanager_url[0] || ctx->notify.webhook_urls[0]) {
        snprintf(spool, sizeof spool, "%s/notify", ctx->storage.data_dir);
        if (!(a->notify = nops_notifier_new(&ctx->notify, a->secret, spool, err, sizeof err))) {
            fprintf(stderr, "neuralops %s: %s\n", cmd, err);
            return false;
        }
    }
    if (!ctx->loop.enabled || (!a->reco && !a->notify))
        return true;
    nops_loop_deps d = {.reco = a->reco, .orch = a->orch, .notify = a->notify,
                        .audit = a->audit};
    if (!(a->loop = nops_loop_new(&ctx->loop, &d, err, sizeof err))) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        return false;
    }
    NOPS_INFO(cmd, "closed loop: recommendations %s, suggestions %s, notifications %s",
              a->reco ? "on" : "off (no index)",
              a->orch && a->reco && ctx->loop.suggest_severities[0] ? "on" : "off",
              a->notify ? "on" : "off (no [notify] receiver)");
    return true;
}

/* The learning loop beside the recommender: the runs the orchestrator writes (history.jsonl,
 * and workflow_runs when PostgreSQL is configured) go into recommend.index_dir every
 * recommend.learn_interval_s. Not starting only turns learning off (logged). */
static void start_learner(app_ctx *ctx, app_engine *a, const char *cmd)
{
    if (!ctx->recommend.index_dir[0] || ctx->recommend.learn_interval_s == 0)
        return;
    nops_learn_params lp = {.interval_s = ctx->recommend.learn_interval_s,
                            .min_runs = ctx->recommend.learn_min_runs};
    snprintf(lp.index_dir, sizeof lp.index_dir, "%s", ctx->recommend.index_dir);
    snprintf(lp.history_jsonl, sizeof lp.history_jsonl, "%.490s/history.jsonl",
             ctx->storage.data_dir);
    snprintf(lp.pg_dsn, sizeof lp.pg_dsn, "%s", ctx->sinks.postgres_dsn);
    snprintf(lp.actor_key, sizeof lp.actor_key, "%s", ctx->vector.actor_key);
    char err[512];
    if (!(a->learner = nops_learner_new(&lp, err, sizeof err)))
        NOPS_WARN(cmd, "the index does not learn from new runs: %s", err);
}

/* The key, the orchestration pieces, the recommender and the API store; false with a message
 * printed (what was made stays in `a` for app_engine_stop). */
static bool start_state(app_ctx *ctx, app_engine *a, const char *cmd)
{
    /* the engine key keys the state snapshots always, and approvals and the audit chain when
     * orchestration is on; the data dir exists before the audit trail or any sink opens */
    if (!app_data_dir(ctx, cmd) || !(a->secret = app_secret(ctx, cmd)))
        return false;
    if (!start_orchestration(ctx, a, cmd))
        return false;
    char rerr[512];
    if (ctx->recommend.index_dir[0] &&
        !(a->reco = nops_recommender_new(&ctx->recommend, rerr, sizeof rerr)))
        NOPS_WARN(cmd, "recommendations are off: %s", rerr);
    start_learner(ctx, a, cmd);
    if (!start_loop(ctx, a, cmd))
        return false;
    if (!ctx->api.listen[0])
        return true;
    size_t hist = (size_t)ctx->api.history;
    if (!(a->store = nops_store_new(hist, hist / 10 ? hist / 10 : 1))) {
        fprintf(stderr, "neuralops %s: out of memory for the API store\n", cmd);
        return false;
    }
    char err[512];
    size_t ns = 0, ni = 0;
    if (nops_store_load_jsonl(a->store, ctx->storage.data_dir, &ns, &ni, err, sizeof err) !=
        NOPS_OK)
        NOPS_WARN(cmd, "the API starts without history: %s", err);
    else if (ns || ni)
        NOPS_INFO(cmd, "API history: %zu signals and %zu incident records from %s", ns, ni,
                  ctx->storage.data_dir);
    return true;
}

/* The HTTP server over the running pipeline; false with a message printed. */
static bool start_api(app_ctx *ctx, app_engine *a, const char *cmd)
{
    if (!ctx->api.listen[0])
        return true;
    char err[1024];
    a->api_detect = ctx->detect;
    nops_api_deps deps = {.pipeline = a->pipeline,
                          .sinks = a->sinks,
                          .store = a->store,
                          .detect = &a->api_detect,
                          .brokers = ctx->kafka.brokers,
                          .metrics_topic = ctx->kafka.topic,
                          .kafka = &ctx->kafka,
                          .ingest_max_past_s = ctx->pipeline.max_past_s,
                          .ingest_max_future_s = ctx->pipeline.max_future_s,
                          .recommender = a->reco,
                          .learner = a->learner,
                          .orchestrator = a->orch,
                          .registry = a->registry,
                          .audit = a->audit,
                          .loop = a->loop,
                          .orchestration_off = a->orch_off};
    a->api = nops_api_new(&ctx->api, &deps, err, sizeof err);
    if (!a->api || nops_api_start(a->api, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        nops_api_destroy(a->api);
        a->api = NULL;
        return false;
    }
    return true;
}

bool app_engine_start(app_ctx *ctx, app_engine *a, const char *cmd)
{
    memset(a, 0, sizeof *a);
    if (start_state(ctx, a, cmd) && start_pipeline(ctx, a, cmd) && start_api(ctx, a, cmd))
        return true;
    app_engine_stop(a);
    return false;
}

nops_err app_engine_drain(app_engine *a)
{
    if (!a->pipeline)
        return NOPS_OK;
    if (!a->drained) {
        a->drained = true;
        a->drain_err = nops_pipeline_stop(a->pipeline, 15000);
    }
    return a->drain_err;
}

/*
 * Teardown order: the HTTP server first (no request reaches a half-stopped engine); then the
 * pipeline stops (consumers leave, the sinks flush, offsets commit) and is destroyed; then the
 * closed loop (it finishes what it queued) and the notifier (it spools what it could not
 * send); then the sinks (which feed the store); then the store, the learner, the recommender,
 * the orchestrator (which uses the audit trail, the policy and the registry), those three, and
 * the key last (the snapshots, approvals and the audit chain are keyed with it).
 */
nops_err app_engine_stop(app_engine *a)
{
    nops_api_destroy(a->api);
    a->api = NULL;
    nops_err e = app_engine_drain(a); /* a no-op when drained already */
    nops_pipeline_destroy(a->pipeline);
    nops_loop_destroy(a->loop); /* after the pipeline: no hook call is left in flight */
    nops_notifier_destroy(a->notify);
    nops_sinks_destroy(a->sinks);
    nops_store_destroy(a->store);
    nops_learner_destroy(a->learner);
    nops_recommender_destroy(a->reco);
    nops_orch_destroy(a->orch);
    nops_audit_close(a->audit);
    nops_policy_destroy(a->policy);
    for (size_t i = 0; i < a->n_old_policies; i++)
        nops_policy_destroy(a->old_policies[i]);
    nops_free(a->old_policies);
    for (size_t i = 0; i < a->n_old_registries; i++)
        nops_registry_destroy(a->old_registries[i]);
    nops_free(a->old_registries);
    nops_registry_destroy(a->registry);
    nops_secret_destroy(a->secret);
    memset(a, 0, sizeof *a);
    return e;
}
