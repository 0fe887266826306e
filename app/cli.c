/*
 * cli.c — flag parsing and config set-up for the subcommands.
 *
 * Flags are collected first and applied after the config file and the environment, so the
 * documented precedence (defaults < file < env < flags) holds whatever the order on the line.
 */
#include "app/cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const nops_cfg_entry log_entries[] = {
    {"level", NOPS_CFG_ENUM, offsetof(app_log_cfg, level), 0, 0, "info",
     "debug|info|warn|error|off", "log-level", 0, "Least severe log level written to stderr."},
    {"format", NOPS_CFG_ENUM, offsetof(app_log_cfg, format), 0, 0, "text", "text|json",
     "log-format", 0, "Log lines as human text or as JSON objects."},
};

static const nops_cfg_section log_section = {
    "log", "Logging to stderr.", log_entries, sizeof log_entries / sizeof log_entries[0], NULL,
};

bool app_ctx_init(app_ctx *ctx)
{
    char err[512];
    memset(ctx, 0, sizeof *ctx);
    ctx->cfg = nops_cfg_new();
    if (!ctx->cfg || nops_cfg_add(ctx->cfg, &log_section, &ctx->log, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_detect_cfg_section, &ctx->detect, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_correlate_cfg_section, &ctx->correlate, err, sizeof err) ||
        nops_kafka_cfg_add(ctx->cfg, &ctx->kafka, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_pipeline_cfg_section, &ctx->pipeline, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_storage_cfg_section, &ctx->storage, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_sinks_cfg_section, &ctx->sinks, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_api_cfg_section, &ctx->api, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_vector_cfg_section, &ctx->vector, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_reco_cfg_section, &ctx->recommend, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_orch_cfg_section, &ctx->orchestrate, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_security_cfg_section, &ctx->security, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_notify_cfg_section, &ctx->notify, err, sizeof err) ||
        nops_cfg_add(ctx->cfg, &nops_loop_cfg_section, &ctx->loop, err, sizeof err)) {
        fprintf(stderr, "neuralops: cannot set up configuration\n");
        nops_cfg_destroy(ctx->cfg);
        return false;
    }
    return true;
}

void app_ctx_fini(app_ctx *ctx)
{
    nops_cfg_destroy(ctx->cfg);
    ctx->cfg = NULL;
}

typedef struct pending {
    char *name;  /* "section.key" */
    char *value; /* text */
    char *src;   /* the flag as written, for messages */
} pending;

static const cli_opt *find_opt(const cli_opt *opts, size_t n, const char *name, char short_name)
{
    for (size_t i = 0; i < n; i++)
        if ((name && strcmp(opts[i].name, name) == 0) ||
            (short_name && opts[i].short_name == short_name))
            return &opts[i];
    return NULL;
}

/* Collected state of one cli_parse() run. */
typedef struct parse_state {
    const char *cmd;         /* command name for messages */
    pending *pend;           /* config settings from flags, applied last */
    size_t n_pend;           /* how many */
    const char *config_file; /* -c FILE */
} parse_state;

/* Split "--name=value", "--name" or "-xVALUE" into a name or short letter and a value. */
static bool split_arg(const char *arg, char *namebuf, size_t cap, const char **name,
                      char *short_name, const char **value)
{
    *name = NULL;
    *value = NULL;
    *short_name = 0;
    if (arg[1] != '-') {
        *short_name = arg[1];
        *value = arg[2] ? arg + 2 : NULL;
        return true;
    }
    const char *eq = strchr(arg + 2, '=');
    size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (len >= cap)
        return false;
    memcpy(namebuf, arg + 2, len);
    namebuf[len] = '\0';
    *name = namebuf;
    *value = eq ? eq + 1 : NULL;
    return true;
}

/* Queue a config setting ("section.key" = value) given by a flag. */
static bool push_setting(parse_state *ps, const char *arg, const char *target, const char *value)
{
    const char *eq = target ? NULL : strchr(value, '=');
    if (!target && !eq) {
        fprintf(stderr, "neuralops %s: --set expects SECTION.KEY=VALUE, got \"%s\"\n", ps->cmd,
                value);
        return false;
    }
    pending *p = &ps->pend[ps->n_pend++];
    p->name = target ? strdup(target) : strndup(value, (size_t)(eq - value));
    p->value = strdup(target ? value : eq + 1);
    p->src = strdup(arg);
    if (!p->name || !p->value || !p->src) {
        fprintf(stderr, "neuralops %s: out of memory\n", ps->cmd);
        return false;
    }
    return true;
}

/* One argument (and its value, which may be the next argument). Returns false on error. */
static bool parse_arg(app_ctx *ctx, parse_state *ps, int argc, char **argv, int *i,
                      const cli_opt *opts, size_t n_opts, cli_opt_fn on_opt, void *ud, bool *help)
{
    const char *arg = argv[*i];
    char namebuf[128];
    const char *name, *value;
    char short_name;
    if (strcmp(arg, "--") == 0 || arg[0] != '-' || arg[1] == '\0') {
        fprintf(stderr, "neuralops %s: unexpected argument \"%s\" (see --help)\n", ps->cmd, arg);
        return false;
    }
    if (!split_arg(arg, namebuf, sizeof namebuf, &name, &short_name, &value)) {
        fprintf(stderr, "neuralops %s: unknown flag %s\n", ps->cmd, arg);
        return false;
    }
    if ((name && strcmp(name, "help") == 0) || short_name == 'h') {
        *help = true;
        return true;
    }
    const cli_opt *opt = find_opt(opts, n_opts, name, short_name);
    const bool is_config = (name && strcmp(name, "config") == 0) || short_name == 'c';
    const bool is_set = name && strcmp(name, "set") == 0;
    const char *target = (!opt && name && !is_set && !is_config)
                             ? nops_cfg_flag_target(ctx->cfg, name, NULL)
                             : NULL;
    if (!opt && !is_config && !is_set && !target) {
        fprintf(stderr, "neuralops %s: unknown flag %s (see --help)\n", ps->cmd, arg);
        return false;
    }
    const bool needs = is_config || is_set || target || opt->has_arg;
    if (needs && !value) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "neuralops %s: %s needs a value\n", ps->cmd, arg);
            return false;
        }
        value = argv[++*i];
    } else if (!needs && value) {
        fprintf(stderr, "neuralops %s: %s takes no value\n", ps->cmd, arg);
        return false;
    }
    if (is_config) {
        ps->config_file = value;
        return true;
    }
    if (is_set || target)
        return push_setting(ps, arg, target, value);
    return on_opt(ud, opt, value);
}

/* Paths left at their defaults follow storage.data_dir: recommend.index_dir is
 * `<data_dir>/index` unless it was set (an engine given a data dir elsewhere looked for, and
 * tried to make, ./neuralops-data/index beside it). */
static void follow_data_dir(app_ctx *ctx)
{
    const char *idx = nops_cfg_default(ctx->cfg, "recommend.index_dir");
    const char *data = nops_cfg_default(ctx->cfg, "storage.data_dir");
    if (idx && data && strcmp(ctx->recommend.index_dir, idx) == 0 &&
        strcmp(ctx->storage.data_dir, data) != 0)
        snprintf(ctx->recommend.index_dir, sizeof ctx->recommend.index_dir, "%.500s/index",
                 ctx->storage.data_dir);
}

/* File, environment, queued flags, then the cross-field checks; prints nothing. */
static nops_err load_sources(app_ctx *ctx, parse_state *ps, char *err, size_t err_size)
{
    nops_err e = NOPS_OK;
    if (ps->config_file)
        e = nops_cfg_load_file(ctx->cfg, ps->config_file, err, err_size);
    if (e == NOPS_OK)
        e = nops_cfg_apply_env(ctx->cfg, err, err_size);
    for (size_t i = 0; e == NOPS_OK && i < ps->n_pend; i++)
        e = nops_cfg_set(ctx->cfg, ps->pend[i].name, ps->pend[i].value, ps->pend[i].src, err,
                         err_size);
    if (e == NOPS_OK)
        e = nops_cfg_finalize(ctx->cfg, err, err_size);
    if (e == NOPS_OK)
        follow_data_dir(ctx);
    ctx->config_file = ps->config_file;
    return e;
}

/* Apply file, environment, queued flags, then the cross-field checks. */
static bool apply_sources(app_ctx *ctx, parse_state *ps)
{
    char err[1024];
    nops_err e = load_sources(ctx, ps, err, sizeof err);
    if (e != NOPS_OK) {
        fprintf(stderr, "neuralops %s: %s\n", ps->cmd, err);
        return false;
    }
    nops_log_configure((nops_log_level)ctx->log.level, (nops_log_format)ctx->log.format);
    nops_cfg_warn_unknown_env(ctx->cfg); /* a typo must not leave a default silently in force */
    if (ctx->kafka.extra[0]) /* its value is never logged: it may hold a password */
        NOPS_WARN("config", "kafka.extra is deprecated (a value cannot hold a comma there): give "
                  "each property on its own line in [kafka.librdkafka], which every Kafka client "
                  "gets");
    return true;
}

bool app_actor_key_set(const app_ctx *ctx, const char *cmd)
{
    const char *def = nops_cfg_default(ctx->cfg, "vector.actor_key");
    if (!def || strcmp(ctx->vector.actor_key, def) != 0)
        return true;
    fprintf(stderr,
            "neuralops %s: vector.actor_key is still the published default \"%s\", so anyone "
            "could recompute who ran each playbook from the hashes in the index. Set a secret of "
            "your own, e.g. `export NEURALOPS_VECTOR_ACTOR_KEY=$(openssl rand -hex 32)` or "
            "`actor_key = ...` under [vector] in the config file (keep it: the same key maps the "
            "same person to the same id). Only `neuralops demo` runs with the default.\n",
            cmd, def);
    return false;
}

static void pend_free(parse_state *ps)
{
    for (size_t i = 0; ps->pend && i < ps->n_pend; i++) {
        free(ps->pend[i].name);
        free(ps->pend[i].value);
        free(ps->pend[i].src);
    }
    free(ps->pend);
}

bool cli_parse(app_ctx *ctx, const char *cmd, int argc, char **argv, const cli_opt *opts,
               size_t n_opts, cli_opt_fn on_opt, void *ud, bool *help)
{
    parse_state ps = {cmd, calloc((size_t)argc + 1, sizeof(pending)), 0, NULL};
    bool ok = ps.pend != NULL;
    *help = false;
    ctx->argc = argc;
    ctx->argv = argv;
    ctx->cmd = cmd;
    if (!ok)
        fprintf(stderr, "neuralops %s: out of memory\n", cmd);
    for (int i = 1; ok && !*help && i < argc; i++)
        ok = parse_arg(ctx, &ps, argc, argv, &i, opts, n_opts, on_opt, ud, help);
    if (ok && !*help)
        ok = apply_sources(ctx, &ps);
    pend_free(&ps);
    return ok;
}

bool cli_reparse(const app_ctx *running, app_ctx *fresh, char *err, size_t err_size)
{
    parse_state ps = {running->cmd, calloc((size_t)running->argc + 1, sizeof(pending)), 0, NULL};
    bool ok = ps.pend != NULL, help = false;
    snprintf(err, err_size, "out of memory");
    fresh->argc = running->argc;
    fresh->argv = running->argv;
    fresh->cmd = running->cmd;
    /* the flags were accepted at the start, so parse_arg has nothing to print now */
    for (int i = 1; ok && i < running->argc; i++)
        ok = parse_arg(fresh, &ps, running->argc, running->argv, &i, NULL, 0, NULL, NULL,
                       &help);
    if (ok)
        ok = load_sources(fresh, &ps, err, err_size) == NOPS_OK;
    pend_free(&ps);
    return ok;
}

void cli_print_opts(const app_ctx *ctx, const cli_opt *opts, size_t n_opts, FILE *out)
{
    fprintf(out, "Options:\n");
    for (size_t i = 0; i < n_opts; i++) {
        char left[64];
        if (opts[i].short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", opts[i].short_name, opts[i].name,
                     opts[i].has_arg ? " " : "", opts[i].has_arg ? opts[i].metavar : "");
        else
            snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].has_arg ? " " : "",
                     opts[i].has_arg ? opts[i].metavar : "");
        fprintf(out, "  %-34s %s\n", left, opts[i].help);
    }
    fprintf(out, "  %-34s %s\n", "-c, --config FILE", "config file (INI; docs/configuration.md)");
    fprintf(out, "  %-34s %s\n", "-h, --help", "this help");
    fprintf(out, "\nSettings (also NEURALOPS_<SECTION>_<KEY> in the environment):\n");
    nops_cfg_print_flags(ctx->cfg, out);
}

void fmt_double(char *buf, size_t cap, double v)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

void fmt_float(char *buf, size_t cap, float v)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}

static atomic_bool g_stop;

static void on_signal(int sig)
{
    if (atomic_exchange(&g_stop, true)) { /* second signal: the user means it */
        static const char msg[] = "\nneuralops: second signal, exiting now\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(130);
    }
    (void)sig;
}

static atomic_bool g_reload;

static void on_sighup(int sig)
{
    (void)sig;
    atomic_store(&g_reload, true);
}

atomic_bool *app_reload_on_sighup(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sighup;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    return &g_reload;
}

atomic_bool *app_stop_on_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return &g_stop;
}
