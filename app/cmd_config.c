/*
 * cmd_config.c — `neuralops config show|docs|hash-key`: the effective settings, the Markdown
 * reference generated from the same tables (docs/configuration.md), or the SHA-256 form of an
 * API key for api.keys (the key is read from stdin, so it shows in no process list).
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
    if (what && strcmp(what, "hash-key") == 0 && argc > 2 && argv[2][0] != '-') {
        fprintf(stderr, "neuralops config hash-key: the key is read from stdin, not taken as an "
                        "argument (an argument shows in every process list), e.g. printf %%s "
                        "\"$KEY\" | neuralops config hash-key\n");
        goto out;
    }
    if (!cli_parse(&ctx, "config", what ? argc - 1 : argc, what ? argv + 1 : argv, NULL, 0,
                   no_opt, NULL, &help))
        goto out;
    if (help || !what) {
        printf("Usage: neuralops config show|docs|hash-key [options]\n\n"
               "  show      print the effective settings (defaults < file < env < flags) as\n"
               "            INI, secrets masked\n"
               "  docs      print the configuration reference in Markdown\n"
               "  hash-key  read an API key from stdin, print its SHA-256 hex for api.keys\n"
               "            (entry format id:role:hex)\n\n");
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
    } else if (strcmp(what, "hash-key") == 0) {
        char key[1024], hex[65];
        size_t n = fgets(key, sizeof key, stdin) ? strcspn(key, "\r\n") : 0;
        key[n] = '\0';
        if (n == 0 || nops_api_hash_key(key, hex) != NOPS_OK) {
            fprintf(stderr, "neuralops config hash-key: give the key on stdin, e.g. "
                            "printf %%s \"$KEY\" | neuralops config hash-key\n");
        } else {
            printf("%s\n", hex);
            status = NOPS_EXIT_OK;
        }
    } else {
        fprintf(stderr, "neuralops config: unknown action \"%s\" (show, docs or hash-key)\n",
                what);
    }
out:
    app_ctx_fini(&ctx);
    return status;
}
