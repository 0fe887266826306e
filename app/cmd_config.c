/*
 * cmd_config.c — `neuralops config show|docs`: the effective settings, or the Markdown
 * reference generated from the same tables (docs/configuration.md).
 */
#include "app/cli.h"

#include <string.h>

static bool no_opt(void *ud, const cli_opt *opt, const char *value)
{
    return true;
}

int nops_cmd_config(int argc, char **argv)
{
    app_ctx ctx;
    if (!app_ctx_init(&ctx))
        return NOPS_EXIT_FAIL;
    int status = NOPS_EXIT_USAGE;
    const char *what = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    bool help = false;
    if (!cli_parse(&ctx, "config", what ? argc - 1 : argc, what ? argv + 1 : argv, NULL, 0,
                   no_opt, NULL, &help))
        goto out;
    if (help || !what) {
        printf("Usage: neuralops config show|docs [options]\n\n"
               "  show   print the effective settings (defaults < file < env < flags) as INI,\n"
               "         secrets masked\n"
               "  docs   print the configuration reference in Markdown\n\n");
        cli_print_opts(&ctx, NULL, 0, stdout);
        status = help ? NOPS_EXIT_OK : NOPS_EXIT_USAGE;
        goto out;
    }
    if (strcmp(what, "show") == 0) {
        nops_cfg_print_values(ctx.cfg, stdout);
        status = NOPS_EXIT_OK;
    } else if (strcmp(what, "docs") == 0) {
        nops_cfg_print_markdown(ctx.cfg, stdout);
        status = NOPS_EXIT_OK;
    } else {
        fprintf(stderr, "neuralops config: unknown action \"%s\" (show or docs)\n", what);
    }
out:
    app_ctx_fini(&ctx);
    return status;
}
