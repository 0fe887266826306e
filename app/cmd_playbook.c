/*
 * cmd_playbook.c — `neuralops playbook keygen|sign|list`: make an EC P-256 key pair, sign
 * manifests in the format of `cosign sign-blob` (no cosign binary needed), and list a registry
 * directory as the engine loads it (accepted playbooks, refusals with their reasons).
 */
#include "app/cli.h"
#include "orchestrate/orchestrate.h"

#include <string.h>

typedef struct pb_cli {
    const char *key, *pub, *file, *dir, *pubkeys;
} pb_cli;

static const cli_opt pb_opts[] = {
    {"key", 0, true, "KEY.pem", "sign, keygen: the EC P-256 private key"},
    {"pub", 0, true, "PUB.pem", "keygen: where the public key goes"},
    {"file", 0, true, "MANIFEST.json", "sign: the manifest; writes MANIFEST.json.sig"},
    {"dir", 0, true, "DIR", "list: the registry directory"},
    {"pubkeys", 0, true, "PUB.pem[,PUB2.pem]", "list: public keys that may have signed"},
};
#define N_PB (sizeof pb_opts / sizeof pb_opts[0])

static bool on_opt(void *ud, const cli_opt *opt, const char *v)
{
    pb_cli *c = ud;
    const char **slot = strcmp(opt->name, "key") == 0    ? &c->key
                        : strcmp(opt->name, "pub") == 0  ? &c->pub
                        : strcmp(opt->name, "file") == 0 ? &c->file
                        : strcmp(opt->name, "dir") == 0  ? &c->dir
                                                         : &c->pubkeys;
    *slot = v;
    return true;
}

static int run(const char *what, const pb_cli *c)
{
    char err[512];
    if (strcmp(what, "keygen") == 0) {
        if (!c->key || !c->pub) {
            fprintf(stderr, "neuralops playbook keygen: give --key KEY.pem --pub PUB.pem\n");
            return NOPS_EXIT_USAGE;
        }
        if (nops_playbook_keygen(c->key, c->pub, err, sizeof err) != NOPS_OK) {
            fprintf(stderr, "neuralops playbook keygen: %s\n", err);
            return NOPS_EXIT_FAIL;
        }
        printf("private key %s (mode 0600: keep it secret), public key %s (configure it in "
               "orchestrate.pubkeys)\n", c->key, c->pub);
        return NOPS_EXIT_OK;
    }
    if (strcmp(what, "sign") == 0) {
        if (!c->key || !c->file) {
            fprintf(stderr, "neuralops playbook sign: give --key KEY.pem --file MANIFEST.json\n");
            return NOPS_EXIT_USAGE;
        }
        if (nops_playbook_sign(c->file, c->key, err, sizeof err) != NOPS_OK) {
            fprintf(stderr, "neuralops playbook sign: %s\n", err);
            return NOPS_EXIT_FAIL;
        }
        printf("signed %s -> %s.sig\n", c->file, c->file);
        return NOPS_EXIT_OK;
    }
    if (strcmp(what, "list") != 0) {
        fprintf(stderr, "neuralops playbook: unknown action \"%s\" (keygen, sign or list)\n", what);
        return NOPS_EXIT_USAGE;
    }
    if (!c->dir || !c->pubkeys) {
        fprintf(stderr, "neuralops playbook list: give --dir DIR --pubkeys PUB.pem\n");
        return NOPS_EXIT_USAGE;
    }
    nops_registry *r = nops_registry_load(c->dir, c->pubkeys, err, sizeof err);
    if (!r) {
        fprintf(stderr, "neuralops playbook list: %s\n", err);
        return NOPS_EXIT_FAIL;
    }
    for (size_t i = 0; i < nops_registry_count(r); i++) {
        const nops_playbook *pb = nops_registry_at(r, i);
        printf("ok       %-24s %-8s %s  sha256 %.16s\n", pb->id, pb->version,
               pb->auto_mode ? "auto  " : "manual", pb->sha256);
    }
    for (size_t i = 0; i < nops_registry_refused(r); i++)
        printf("REFUSED  %s\n", nops_registry_refusal(r, i));
    int status = nops_registry_refused(r) ? 3 : NOPS_EXIT_OK;
    nops_registry_destroy(r);
    return status;
}

int nops_cmd_playbook(int argc, char **argv)
{
    app_ctx ctx;
    if (!app_ctx_init(&ctx))
        return NOPS_EXIT_FAIL;
    const char *what = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    pb_cli c = {0};
    bool help = false;
    int status = NOPS_EXIT_USAGE;
    if (cli_parse(&ctx, "playbook", what ? argc - 1 : argc, what ? argv + 1 : argv, pb_opts,
                  N_PB, on_opt, &c, &help)) {
        if (help || !what) {
            printf("Usage: neuralops playbook keygen --key KEY.pem --pub PUB.pem\n"
                   "       neuralops playbook sign --key KEY.pem --file MANIFEST.json\n"
                   "       neuralops playbook list --dir DIR --pubkeys PUB.pem[,...]\n\n"
                   "keygen makes an EC P-256 key pair (the private key 0600, never replaced).\n"
                   "sign writes MANIFEST.json.sig in the format of `cosign sign-blob` (base64\n"
                   "DER ECDSA P-256 over SHA-256). openssl makes the same key pairs:\n"
                   "  openssl ecparam -name prime256v1 -genkey -noout -out key.pem\n"
                   "  openssl ec -in key.pem -pubout -out pub.pem\n"
                   "list loads DIR as the engine does; exit 3 when a manifest is refused.\n\n");
            cli_print_opts(&ctx, pb_opts, N_PB, stdout);
            status = help ? NOPS_EXIT_OK : NOPS_EXIT_USAGE;
        } else {
            status = run(what, &c);
        }
    }
    app_ctx_fini(&ctx);
    return status;
}
