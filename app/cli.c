/*
 * cli.c — flag parsing and config set-up for the subcommands.
 *
 * Flags are collected first and applied after the config file and the environment, so the
 * documented precedence (defaults < file < env < flags) holds whatever the order on the line.
 */
#include "app/cli.h"

#include <stdlib.h>
#include <string.h>

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
        nops_cfg_add(ctx->cfg, &nops_detect_cfg_section, &ctx->detect, err, sizeof err)) {
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

bool cli_parse(app_ctx *ctx, const char *cmd, int argc, char **argv, const cli_opt *opts,
               size_t n_opts, cli_opt_fn on_opt, void *ud, bool *help)
{
    char err[1024];
    pending *pend = calloc((size_t)argc + 1, sizeof *pend);
    size_t n_pend = 0;
    const char *config_file = NULL;
    bool ok = false;
    *help = false;
    if (!pend) {
        fprintf(stderr, "neuralops %s: out of memory\n", cmd);
        return false;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        char namebuf[128];
        const char *name = NULL, *value = NULL;
        char short_name = 0;
        if (strcmp(arg, "--") == 0 || arg[0] != '-' || arg[1] == '\0') {
            fprintf(stderr, "neuralops %s: unexpected argument \"%s\" (see --help)\n", cmd, arg);
            goto out;
        }
        if (arg[1] == '-') {
            const char *eq = strchr(arg + 2, '=');
            size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
            if (len >= sizeof namebuf) {
                fprintf(stderr, "neuralops %s: unknown flag %s\n", cmd, arg);
                goto out;
            }
            memcpy(namebuf, arg + 2, len);
            namebuf[len] = '\0';
            name = namebuf;
            value = eq ? eq + 1 : NULL;
        } else {
            short_name = arg[1];
            value = arg[2] ? arg + 2 : NULL;
        }
        if ((name && strcmp(name, "help") == 0) || short_name == 'h') {
            *help = true;
            ok = true;
            goto out;
        }
        const cli_opt *opt = find_opt(opts, n_opts, name, short_name);
        bool is_config = (name && strcmp(name, "config") == 0) || short_name == 'c';
        bool is_set = name && strcmp(name, "set") == 0;
        bool takes = false;
        const char *target = (!opt && name && !is_set && !is_config)
                                 ? nops_cfg_flag_target(ctx->cfg, name, &takes)
                                 : NULL;
        if (!opt && !is_config && !is_set && !target) {
            fprintf(stderr, "neuralops %s: unknown flag %s (see --help)\n", cmd, arg);
            goto out;
        }
        bool needs = is_config || is_set || target || opt->has_arg;
        if (needs && !value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "neuralops %s: %s needs a value\n", cmd, arg);
                goto out;
            }
            value = argv[++i];
        } else if (!needs && value) {
            fprintf(stderr, "neuralops %s: %s takes no value\n", cmd, arg);
            goto out;
        }
        if (is_config) {
            config_file = value;
        } else if (is_set || target) {
            const char *eq = is_set ? strchr(value, '=') : NULL;
            if (is_set && !eq) {
                fprintf(stderr, "neuralops %s: --set expects SECTION.KEY=VALUE, got \"%s\"\n",
                        cmd, value);
                goto out;
            }
            pend[n_pend].name = is_set ? strndup(value, (size_t)(eq - value)) : strdup(target);
            pend[n_pend].value = strdup(is_set ? eq + 1 : value);
            pend[n_pend].src = strdup(arg);
            n_pend++;
        } else if (!on_opt(ud, opt, value)) {
            goto out;
        }
    }
    if (config_file && nops_cfg_load_file(ctx->cfg, config_file, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        goto out;
    }
    if (nops_cfg_apply_env(ctx->cfg, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        goto out;
    }
    for (size_t i = 0; i < n_pend; i++) {
        if (!pend[i].name || !pend[i].value || !pend[i].src) {
            fprintf(stderr, "neuralops %s: out of memory\n", cmd);
            goto out;
        }
        if (nops_cfg_set(ctx->cfg, pend[i].name, pend[i].value, pend[i].src, err, sizeof err) !=
            NOPS_OK) {
            fprintf(stderr, "neuralops %s: %s\n", cmd, err);
            goto out;
        }
    }
    if (nops_cfg_finalize(ctx->cfg, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        goto out;
    }
    nops_log_configure((nops_log_level)ctx->log.level, (nops_log_format)ctx->log.format);
    ok = true;
out:
    for (size_t i = 0; i < n_pend; i++) {
        free(pend[i].name);
        free(pend[i].value);
        free(pend[i].src);
    }
    free(pend);
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
