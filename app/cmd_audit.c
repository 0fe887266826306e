/*
 * cmd_audit.c — `neuralops audit verify [--input FILE] [--from-postgres DSN] [--key FILE]`:
 * check every entry of the keyed audit chain under the engine key, the file's end against its
 * head record, and the file against PostgreSQL audit_logs; name the first entry that does not
 * match; exit status 4 on tampering.
 */
#include "app/cli.h"
#include "orchestrate/orchestrate.h"

#include <string.h>

enum { EXIT_TAMPERED = 4 };

typedef struct audit_cli {
    const char *input, *dsn, *key;
} audit_cli;

static const cli_opt audit_opts[] = {
    {"input", 'i', true, "FILE",
     "the JSONL audit log (default storage.data_dir/audit.jsonl; alone: only the file)"},
    {"from-postgres", 0, true, "DSN",
     "table audit_logs through this libpq DSN (default sinks.postgres_dsn; alone: only the "
     "table)"},
    {"key", 0, true, "FILE", "the engine key the trail was written with (default "
     "security.key_file)"},
};
#define N_AUDIT (sizeof audit_opts / sizeof audit_opts[0])

static bool on_opt(void *ud, const cli_opt *opt, const char *v)
{
    audit_cli *c = ud;
    if (strcmp(opt->name, "input") == 0)
        c->input = v;
    else if (strcmp(opt->name, "key") == 0)
        c->key = v;
    else
        c->dsn = v;
    return true;
}

static int verify(app_ctx *ctx, const audit_cli *c)
{
    char path[1024], key_path[600], heads[700], err[1024] = "";
    snprintf(path, sizeof path, "%s/audit.jsonl", ctx->storage.data_dir);
    if (c->key)
        snprintf(key_path, sizeof key_path, "%s", c->key);
    else
        nops_security_key_path(&ctx->security, key_path, sizeof key_path);
    nops_secret *key = nops_secret_load(key_path, false, err, sizeof err);
    if (!key) {
        fprintf(stderr, "neuralops audit: %s\nThe audit chain is keyed with the engine key: "
                "give the one the engine ran with (--key FILE or security.key_file).\n", err);
        return NOPS_EXIT_FAIL;
    }
    nops_audit_head_dir_for(key_path, heads, sizeof heads);
    /* neither option: the configured file and table; one of them: only that one */
    nops_audit_sources src = {.head_dir = heads};
    if (c->input || !c->dsn)
        src.path = c->input ? c->input : path;
    if (c->dsn || !c->input)
        src.pg_dsn = c->dsn ? c->dsn : ctx->sinks.postgres_dsn;
    char what[1200];
    snprintf(what, sizeof what, "%s%s%s", src.path ? src.path : "",
             src.path && src.pg_dsn && src.pg_dsn[0] ? " + " : "",
             src.pg_dsn && src.pg_dsn[0] ? "PostgreSQL audit_logs" : "");
    nops_audit_report r;
    nops_err e = nops_audit_verify(&src, key, &r, err, sizeof err);
    nops_secret_destroy(key);
    if (e == NOPS_OK) {
        printf("%s: %llu entries", what, (unsigned long long)r.entries);
        if (src.path && src.pg_dsn && src.pg_dsn[0])
            printf(" (%llu rows in PostgreSQL)", (unsigned long long)r.pg_entries);
        if (r.legacy)
            printf(", the first %llu unkeyed from an earlier version (sealed)",
                   (unsigned long long)r.legacy);
        printf(", chain intact\n");
        if (r.note[0])
            printf("note: %s\n", r.note);
        return NOPS_EXIT_OK;
    }
    if (e == NOPS_PARSE) {
        if (r.first_bad)
            printf("%s: TAMPERED at entry %llu: %s\n", what, (unsigned long long)r.first_bad,
                   r.why);
        else
            printf("%s: TAMPERED: %s\n", what, r.why);
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
        printf("Usage: neuralops audit verify [--input FILE] [--from-postgres DSN] [--key FILE]\n"
               "\n"
               "Check the audit trail under the engine key: every entry's keyed hash\n"
               "(HMAC-SHA256(prev_hash || canonical JSON)), the file's end against the head\n"
               "record kept beside the key (entries cut off the end, an older copy), and the\n"
               "file against PostgreSQL audit_logs. Names the first entry that was changed,\n"
               "removed, added or moved. Without options: storage.data_dir/audit.jsonl and,\n"
               "when sinks.postgres_dsn is set, the table. Reads only.\n"
               "Exit status: 0 intact, 4 tampered, 1 unreadable or no key, 2 usage.\n\n");
        cli_print_opts(&ctx, audit_opts, N_AUDIT, stdout);
        status = help ? NOPS_EXIT_OK : NOPS_EXIT_USAGE;
    } else if (strcmp(what, "verify") != 0) {
        fprintf(stderr, "neuralops audit: unknown action \"%s\" (verify)\n", what);
    } else {
        status = verify(&ctx, &c);
    }
out:
    app_ctx_fini(&ctx);
    return status;
}
