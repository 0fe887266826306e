/*
 * reload.c — SIGHUP for `neuralops serve`: the configuration read again and what can change
 * at run time applied to the running engine, in one step that either applies or refuses.
 *
 * What is live: the log level and format, the API's keys and JWT settings (nops_api_set_auth:
 * requests after the swap are checked against the new set), the detector thresholds
 * (false_alarm_points, the z/EWMA/CUSUM thresholds, hysteresis, clear_points:
 * nops_pipeline_set_thresholds, each worker takes them before its next batch; the API's
 * /analyze keeps the ones of the start) and the policy (read again from
 * orchestrate.policy_file, nops_orch_set_policy). Everything else is wired into threads and
 * connections at the start (Kafka clients, the detectors' state layout — window, alpha,
 * method —, the sinks, the registry the orchestrator holds playbook pointers into, the
 * notifier and its routes): a change there is named in the log line as needing a restart, and
 * the running value stays — so the next reload names it again until the process is
 * restarted.
 *
 * Order: everything that can be refused (the file, the environment, the flags, the cross-field
 * checks, the policy file, memory for keeping the old policy, the key list) comes before
 * anything is applied, and the key swap — itself all or nothing — is the last of those.
 */
#include "app/engine.h"

#include <string.h>

/* Settings a reload applies; every other changed one needs a restart. */
static const char *const live_settings[] = {
    "log.level",           "log.format",          "api.keys",
    "api.jwt_secret",      "api.jwt_issuer",      "orchestrate.policy_file",
    "detect.false_alarm_points", "detect.z_threshold", "detect.ewma_threshold",
    "detect.cusum_threshold", "detect.hysteresis",  "detect.clear_points",
};

static bool is_live(const char *name)
{
    for (size_t i = 0; i < sizeof live_settings / sizeof live_settings[0]; i++)
        if (strcmp(live_settings[i], name) == 0)
            return true;
    return false;
}

typedef struct changes {
    char live[1024];    /* "a.b, c.d": changed and applied */
    char restart[2048]; /* changed, not applied: after a restart */
    bool auth;          /* api.keys / jwt_* changed */
    bool thresholds;    /* detect.* thresholds changed */
} changes;

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
    if (is_live(name)) {
        append(c->live, sizeof c->live, name);
        c->auth |= strcmp(section, "api") == 0;
        c->thresholds |= strcmp(section, "detect") == 0;
    } else {
        append(c->restart, sizeof c->restart, name);
    }
}

/* The policy the fresh settings name, loaded (NULL when none is named); false with err. */
static bool load_policy(const app_ctx *fresh, const app_engine *a, nops_policy **out,
                        char *err, size_t err_size)
{
    *out = NULL;
    if (!a->orch || !fresh->orchestrate.policy_file[0])
        return true;
    return (*out = nops_policy_load(fresh->orchestrate.policy_file, err, err_size)) != NULL;
}

/* Room to keep the running policy until the stop (a suggestion in flight may still read it);
 * reserved before anything is applied, so applying cannot fail half-way. */
static bool reserve_policy_slot(app_engine *a)
{
    nops_policy **v = nops_realloc(a->old_policies, (a->n_old_policies + 1) * sizeof *v);
    if (!v)
        return false;
    a->old_policies = v;
    return true;
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
    bool ok = cli_reparse(ctx, &fresh, err, sizeof err);
    nops_policy *pol = NULL;
    if (ok && !load_policy(&fresh, a, &pol, err, sizeof err))
        ok = false;
    changes c = {{0}, {0}, false, false};
    if (ok)
        nops_cfg_diff(ctx->cfg, fresh.cfg, on_change, &c);
    /* the running detector settings with the new thresholds: what the pipeline will check */
    nops_detect_params dp = ctx->detect;
    dp.false_alarm_points = fresh.detect.false_alarm_points;
    dp.z_threshold = fresh.detect.z_threshold;
    dp.ewma_threshold = fresh.detect.ewma_threshold;
    dp.cusum_threshold = fresh.detect.cusum_threshold;
    dp.hysteresis = fresh.detect.hysteresis;
    dp.clear_points = fresh.detect.clear_points;
    if (ok && c.thresholds && nops_detect_params_check(&dp, err, sizeof err) != NOPS_OK)
        ok = false;
    if (ok && a->orch && !reserve_policy_slot(a)) {
        snprintf(err, sizeof err, "out of memory");
        ok = false;
    }
    if (ok && c.auth && a->api && /* the last step that can fail: nothing is applied before */
        nops_api_set_auth(a->api, fresh.api.keys, fresh.api.jwt_secret, fresh.api.jwt_issuer,
                          err, sizeof err) != NOPS_OK)
        ok = false;
    if (!ok) {
        nops_policy_destroy(pol);
        NOPS_ERROR(ctx->cmd, "reload of %s refused, the running settings stay: %s", file, err);
        app_ctx_fini(&fresh);
        return false;
    }
    /* the same check as above, so this cannot be refused now */
    if (c.thresholds && a->pipeline &&
        nops_pipeline_set_thresholds(a->pipeline, &dp, err, sizeof err) != NOPS_OK)
        NOPS_ERROR(ctx->cmd, "the new detector thresholds were refused: %s", err);
    ctx->detect = dp;
    if (a->orch) {
        a->old_policies[a->n_old_policies++] = a->policy; /* NULL is fine: destroy(NULL) */
        a->policy = pol;
        nops_orch_set_policy(a->orch, pol);
    }
    /* the running ctx takes the live values, so the next reload compares with what runs */
    ctx->log = fresh.log;
    memcpy(ctx->api.keys, fresh.api.keys, sizeof ctx->api.keys);
    memcpy(ctx->api.jwt_secret, fresh.api.jwt_secret, sizeof ctx->api.jwt_secret);
    memcpy(ctx->api.jwt_issuer, fresh.api.jwt_issuer, sizeof ctx->api.jwt_issuer);
    memcpy(ctx->orchestrate.policy_file, fresh.orchestrate.policy_file,
           sizeof ctx->orchestrate.policy_file);
    nops_log_configure((nops_log_level)ctx->log.level, (nops_log_format)ctx->log.format);
    char policy[160] = "";
    if (a->orch)
        snprintf(policy, sizeof policy, "; policy %s", pol ? "read again" : "none (every run "
                 "needs an approval)");
    NOPS_INFO(ctx->cmd, "reloaded %s: changed and applied: %s%s; changed but needing a restart "
              "to take effect: %s", file, c.live[0] ? c.live : "none", policy,
              c.restart[0] ? c.restart : "none");
    app_ctx_fini(&fresh);
    return true;
}
