/*
 * reload.c — SIGHUP for `neuralops serve`: the configuration read again and what can change
 * at run time applied to the running engine, in one step that either applies or refuses.
 *
 * What is live: the log level and format, the API's keys and JWT settings (nops_api_set_auth:
 * requests after the swap are checked against the new set), the detector thresholds
 * (false_alarm_points, the z/EWMA/CUSUM thresholds, hysteresis, clear_points:
 * nops_pipeline_set_thresholds, each worker takes them before its next batch; the API's
 * /analyze keeps the ones of the start), the signed playbooks and the policy (the registry
 * directory and the policy file read again, whether or not their names changed:
 * nops_orch_set_registry, nops_api_set_registry, nops_orch_set_policy) and the notification
 * routes (which severities go to Alertmanager and to the webhooks: nops_notifier_set_routes).
 * A part that does not run (no API, no orchestration, no notifier) takes nothing live.
 * Everything else is wired into threads and connections at the start (Kafka clients, the
 * detectors' state layout — window, alpha, method —, the sinks, orchestration turned on or
 * off, the notifier's receivers and spool): a change there is named in the log line as needing
 * a restart, and the running value stays — so the next reload names it again until the
 * process is restarted.
 *
 * Order: everything that can be refused (the file, the environment, the flags, the cross-field
 * checks, the registry and the policy, the new thresholds, memory for keeping the replaced
 * registry and policy, the key list) comes before anything is applied, and the key swap —
 * itself all or nothing — is the last of those.
 */
#include "app/engine.h"

#include <string.h>

/* Settings a reload applies (when the part they belong to runs); every other changed one
 * needs a restart. */
typedef enum part { P_LOG, P_API, P_DETECT, P_POLICY, P_ROUTES, P_N } part;
static const struct {
    const char *name;
    part part;
} live_settings[] = {
    {"log.level", P_LOG},
    {"log.format", P_LOG},
    {"api.keys", P_API},
    {"api.jwt_secret", P_API},
    {"api.jwt_issuer", P_API},
    {"detect.false_alarm_points", P_DETECT},
    {"detect.z_threshold", P_DETECT},
    {"detect.ewma_threshold", P_DETECT},
    {"detect.cusum_threshold", P_DETECT},
    {"detect.hysteresis", P_DETECT},
    {"detect.clear_points", P_DETECT},
    {"orchestrate.policy_file", P_POLICY},
    {"orchestrate.registry_dir", P_POLICY},
    {"orchestrate.pubkeys", P_POLICY},
    {"notify.alertmanager_severities", P_ROUTES},
    {"notify.webhook_severities", P_ROUTES},
};

typedef struct changes {
    const app_engine *a; /* which parts run */
    char live[1024];     /* "a.b, c.d": changed and applied */
    char restart[2048];  /* changed, not applied: after a restart */
    bool part[P_N];      /* a setting of that part changed (and it runs) */
    bool orch_live;      /* the registry and policy were read again (orchestration runs and
                          * the file still configures it) */
} changes;

static bool part_runs(const app_engine *a, part p)
{
    switch (p) {
    case P_API: return a->api != NULL;
    case P_DETECT: return a->pipeline != NULL;
    case P_POLICY: return a->orch != NULL; /* and orch_live: see on_change */
    case P_ROUTES: return a->notify != NULL;
    case P_LOG:
    default: return true;
    }
}

static void append(char *buf, size_t cap, const char *name)
{
    size_t n = strlen(buf);
    if (n + strlen(name) + 8 >= cap) {
        if (n + 5 < cap && !strstr(buf, ", ..."))
            snprintf(buf + n, cap - n, ", ...");
        return;
    }
    snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", name);
}

static void on_change(void *ud, const char *section, const char *key)
{
    changes *c = ud;
    char name[160];
    snprintf(name, sizeof name, "%s.%s", section, key);
    for (size_t i = 0; i < sizeof live_settings / sizeof live_settings[0]; i++)
        if (strcmp(live_settings[i].name, name) == 0 && part_runs(c->a, live_settings[i].part) &&
            (live_settings[i].part != P_POLICY || c->orch_live)) {
            append(c->live, sizeof c->live, name);
            c->part[live_settings[i].part] = true;
            return;
        }
    append(c->restart, sizeof c->restart, name);
}

/* The policy and the registry the fresh settings name, read again (the files may have changed
 * though their names did not): false with err when either is refused. Nothing to read when
 * orchestration does not run, or is turned off in the file (that takes a restart). */
static bool load_orchestration(const app_ctx *fresh, const app_engine *a, nops_policy **pol,
                               nops_registry **reg, char *err, size_t err_size)
{
    *pol = NULL;
    *reg = NULL;
    if (!a->orch || !fresh->orchestrate.registry_dir[0])
        return true;
    if (!(*reg = nops_registry_load(fresh->orchestrate.registry_dir,
                                    fresh->orchestrate.pubkeys, err, err_size)))
        return false;
    if (fresh->orchestrate.policy_file[0] &&
        !(*pol = nops_policy_load(fresh->orchestrate.policy_file, err, err_size))) {
        nops_registry_destroy(*reg);
        *reg = NULL;
        return false;
    }
    return true;
}

/* Room to keep the running policy and registry until the stop (a suggestion or a run in
 * flight may still read them); reserved before anything is applied, so applying cannot fail
 * half-way. */
static bool reserve_slots(app_engine *a)
{
    nops_policy **v = nops_realloc(a->old_policies, (a->n_old_policies + 1) * sizeof *v);
    if (v)
        a->old_policies = v;
    nops_registry **r = nops_realloc(a->old_registries, (a->n_old_registries + 1) * sizeof *r);
    if (r)
        a->old_registries = r;
    return v && r;
}

/* The policy and registry read again take over; the old ones wait for the stop. */
static void swap_orchestration(app_engine *a, nops_policy *pol, nops_registry *reg)
{
    a->old_policies[a->n_old_policies++] = a->policy; /* NULL is fine: destroy(NULL) */
    a->policy = pol;
    nops_orch_set_policy(a->orch, pol);
    a->old_registries[a->n_old_registries++] = a->registry;
    a->registry = reg;
    nops_orch_set_registry(a->orch, reg);
    if (a->api)
        nops_api_set_registry(a->api, reg);
}

/* The running ctx takes the values applied, so the next reload compares with what runs; the
 * ones of parts that do not run stay, to be named again. */
static void take_live(app_ctx *ctx, const app_ctx *fresh, const changes *c)
{
    ctx->log = fresh->log;
    if (c->part[P_API]) {
        memcpy(ctx->api.keys, fresh->api.keys, sizeof ctx->api.keys);
        memcpy(ctx->api.jwt_secret, fresh->api.jwt_secret, sizeof ctx->api.jwt_secret);
        memcpy(ctx->api.jwt_issuer, fresh->api.jwt_issuer, sizeof ctx->api.jwt_issuer);
    }
    if (c->part[P_POLICY]) {
        memcpy(ctx->orchestrate.policy_file, fresh->orchestrate.policy_file,
               sizeof ctx->orchestrate.policy_file);
        memcpy(ctx->orchestrate.registry_dir, fresh->orchestrate.registry_dir,
               sizeof ctx->orchestrate.registry_dir);
        memcpy(ctx->orchestrate.pubkeys, fresh->orchestrate.pubkeys,
               sizeof ctx->orchestrate.pubkeys);
    }
    if (c->part[P_ROUTES]) {
        memcpy(ctx->notify.alertmanager_severities, fresh->notify.alertmanager_severities,
               sizeof ctx->notify.alertmanager_severities);
        memcpy(ctx->notify.webhook_severities, fresh->notify.webhook_severities,
               sizeof ctx->notify.webhook_severities);
    }
}

/* The running detector settings with the fresh thresholds: what the pipeline will take. */
static nops_detect_params new_thresholds(const app_ctx *ctx, const app_ctx *fresh)
{
    nops_detect_params dp = ctx->detect;
    dp.false_alarm_points = fresh->detect.false_alarm_points;
    dp.z_threshold = fresh->detect.z_threshold;
    dp.ewma_threshold = fresh->detect.ewma_threshold;
    dp.cusum_threshold = fresh->detect.cusum_threshold;
    dp.hysteresis = fresh->detect.hysteresis;
    dp.clear_points = fresh->detect.clear_points;
    return dp;
}

bool app_engine_reload(app_ctx *ctx, app_engine *a)
{
    char err[1024];
    const char *file = ctx->config_file ? ctx->config_file : "(no -c file)";
    app_ctx fresh;
    if (!app_ctx_init(&fresh)) {
        NOPS_ERROR(ctx->cmd, "reload refused (out of memory); the running settings stay");
        return false;
    }
    /* 1. everything that can be refused, before anything is applied */
    nops_policy *pol = NULL;
    nops_registry *reg = NULL;
    changes c = {.a = a};
    bool ok = cli_reparse(ctx, &fresh, err, sizeof err) &&
              load_orchestration(&fresh, a, &pol, &reg, err, sizeof err);
    c.orch_live = reg != NULL;
    if (ok)
        nops_cfg_diff(ctx->cfg, fresh.cfg, on_change, &c);
    nops_detect_params dp = new_thresholds(ctx, &fresh);
    if (ok && c.part[P_DETECT])
        ok = nops_detect_params_check(&dp, err, sizeof err) == NOPS_OK;
    if (ok && reg && !reserve_slots(a)) {
        snprintf(err, sizeof err, "out of memory");
        ok = false;
    }
    /* the last step that can fail, and all or nothing itself */
    if (ok && c.part[P_API])
        ok = nops_api_set_auth(a->api, fresh.api.keys, fresh.api.jwt_secret,
                               fresh.api.jwt_issuer, err, sizeof err) == NOPS_OK;
    if (!ok) {
        nops_policy_destroy(pol);
        nops_registry_destroy(reg);
        NOPS_ERROR(ctx->cmd, "reload of %s refused, the running settings stay: %s", file, err);
        app_ctx_fini(&fresh);
        return false;
    }
    /* 2. apply: checked above (the routes by the fresh configuration's [notify] check), so
     * neither of the next two can be refused now */
    if (c.part[P_DETECT] && nops_pipeline_set_thresholds(a->pipeline, &dp, err, sizeof err))
        NOPS_ERROR(ctx->cmd, "the new detector thresholds were refused: %s", err);
    if (c.part[P_ROUTES] &&
        nops_notifier_set_routes(a->notify, fresh.notify.alertmanager_severities,
                                 fresh.notify.webhook_severities, err, sizeof err) != NOPS_OK)
        NOPS_ERROR(ctx->cmd, "the new notification routes were refused: %s", err);
    ctx->detect = dp;
    if (reg)
        swap_orchestration(a, pol, reg);
    take_live(ctx, &fresh, &c);
    nops_log_configure((nops_log_level)ctx->log.level, (nops_log_format)ctx->log.format);
    char orch[200] = "";
    if (reg)
        snprintf(orch, sizeof orch, "; playbooks read again: %zu signed (%zu refused), policy %s",
                 nops_registry_count(reg), nops_registry_refused(reg),
                 pol ? "read again" : "none (every run needs an approval)");
    NOPS_INFO(ctx->cmd, "reloaded %s: changed and applied: %s%s; changed but needing a restart "
              "to take effect: %s", file, c.live[0] ? c.live : "none", orch,
              c.restart[0] ? c.restart : "none");
    app_ctx_fini(&fresh);
    return true;
}
