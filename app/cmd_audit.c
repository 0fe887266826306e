/*
 * cmd_audit.c — `neuralops audit verify [--input FILE | --from-postgres DSN]`: recompute the
 * audit hash chain and name the first entry that does not match; exit status 4 on tampering.
 */
#include "app/cli.h"
#include "orchestrate/orchestrate.h"

#include <string.h>

enum { EXIT_TAMPERED = 4 };

typedef struct audit_cli {
    const char *input, *dsn;
} audit_cli;

static const cli_opt audit_opts[] = {
    {"input", 'i', true, "FILE", "the JSONL audit log (default storage.data_dir/audit.jsonl)"},
    {"from-postgres", 0, true, "DSN", "verify table audit_logs through this libpq DSN"},
};
#define N_AUDIT (sizeof audit_opts / sizeof audit_opts[0])

static bool on_opt(void *ud, const cli_opt *opt, const char *v)
{
    audit_cli *c = ud;
    if (strcmp(opt->name, "input") == 0)
        c->input = v;
    else
        c->dsn = v;
    return true;
}

static int verify(app_ctx *ctx, const audit_cli *c)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/audit.jsonl", ctx->storage.data_dir);
    const char *what = c->dsn ? "PostgreSQL audit_logs" : c->input ? c->input : path;
    nops_audit_report r;
    nops_err e = c->dsn ? nops_audit_verify_pg(c->dsn, &r, err, sizeof err)
                        : nops_audit_verify_file(c->input ? c->input : path, &r);
    if (e == NOPS_OK) {
        printf("%s: %llu entries, chain intact\n", what, (unsigned long long)r.entries);
        return NOPS_EXIT_OK;
    }
    if (e == NOPS_PARSE) {
        printf("%s: TAMPERED at entry %llu: %s\n", what, (unsigned long long)r.first_bad, r.why);
        return EXIT_TAMPERED;
    }
    fprintf(stderr, "neuralops audit: %s\n", err[0] ? err : r.why);
    return NOPS_EXIT_FAIL;
}

int nops_cmd_audit(int argc, char **argv)
{
    app_ctx ctx;
    if (!app_ctx_init(&ctx))
        return NOPS_EXIT_FAIL;
    const char *what = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    audit_cli c = {0};
    bool help = false;
    int status = NOPS_EXIT_USAGE;
    if (!cli_parse(&ctx, "audit", what ? argc - 1 : argc, what ? argv + 1 : argv, audit_opts,
                   N_AUDIT, on_opt, &c, &help))
        goto out;
    if (help || !what) {
        printf("Usage: neuralops audit verify [--input FILE | --from-postgres DSN]\n\n"
               "Recompute the audit trail's hash chain (hash = SHA-256(prev_hash || canonical\n"
               "JSON)) and name the first entry that was changed, removed, added or moved.\n"
               "Exit status: 0 intact, 4 tampered, 1 unreadable, 2 usage.\n\n");
        cli_print_opts(&ctx, audit_opts, N_AUDIT, stdout);
        status = help ? NOPS_EXIT_OK : NOPS_EXIT_USAGE;
    } else if (strcmp(what, "verify") != 0) {
        fprintf(stderr, "neuralops audit: unknown action \"%s\" (verify)\n", what);
    } else if (c.input && c.dsn) {
        fprintf(stderr, "neuralops audit: give --input or --from-postgres, not both\n");
    } else {
        status = verify(&ctx, &c);
    }
out:
    app_ctx_fini(&ctx);
    return status;
}
