/*
 * cmd_recommend.c — `neuralops recommend`: the CLI twin of POST /recommend. Reads an incident
 * (a stored one with full signal objects, or labels/summary/metrics alone) from a JSON file and
 * prints the ranked playbooks as the API would.
 */
#include "app/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct reco_cli {
    const char *index, *incident;
    int top_n;
} reco_cli;

static const cli_opt reco_opts[] = {
    {"incident", 0, true, "FILE.json", "the incident to recommend for (\"-\" = stdin)"},
    {"top-n", 'n', true, "N", "playbooks to list (default 3)"},
};
#define N_RECO (sizeof reco_opts / sizeof reco_opts[0])

static bool on_opt(void *ud, const cli_opt *opt, const char *v)
{
    reco_cli *c = ud;
    if (strcmp(opt->name, "incident") == 0) {
        c->incident = v;
        return true;
    }
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < 1 || n > 100) {
        fprintf(stderr, "neuralops recommend: --top-n expects 1..100, got \"%s\"\n", v);
        return false;
    }
    c->top_n = (int)n;
    return true;
}

static int run(app_ctx *ctx, const reco_cli *c)
{
    if (!c->incident) {
        fprintf(stderr, "neuralops recommend: give --incident FILE.json\n");
        return NOPS_EXIT_USAGE;
    }
    json_error_t je;
    FILE *f = strcmp(c->incident, "-") == 0 ? stdin : nops_file_fopen(c->incident, "r");
    json_t *inc = f ? json_loadf(f, 0, &je) : NULL;
    if (!f)
        snprintf(je.text, sizeof je.text, "cannot open: %s", strerror(errno));
    if (f && f != stdin)
        fclose(f);
    if (!inc) {
        fprintf(stderr, "neuralops recommend: %s: line %d: %s\n", c->incident, je.line, je.text);
        return NOPS_EXIT_USAGE;
    }
    char err[512];
    nops_reco_params p = ctx->recommend;
    nops_recommender *r = nops_recommender_new(&p, err, sizeof err);
    json_t *out = NULL;
    int status = NOPS_EXIT_FAIL;
    nops_err e = r ? nops_recommend(r, inc, c->top_n ? c->top_n : 3, &out, err, sizeof err)
                   : NOPS_IO;
    if (e == NOPS_OK) {
        json_dumpf(out, stdout, JSON_INDENT(2));
        printf("\n");
        status = NOPS_EXIT_OK;
    } else {
        fprintf(stderr, "neuralops recommend: %s\n", err);
        status = e == NOPS_PARSE ? NOPS_EXIT_USAGE : NOPS_EXIT_FAIL;
    }
    json_decref(out);
    json_decref(inc);
    nops_recommender_destroy(r);
    return status;
}

int nops_cmd_recommend(int argc, char **argv)
{
    app_ctx ctx;
    if (!app_ctx_init(&ctx))
        return NOPS_EXIT_FAIL;
    reco_cli c = {0};
    bool help;
    int status = NOPS_EXIT_USAGE;
    if (cli_parse(&ctx, "recommend", argc, argv, reco_opts, N_RECO, on_opt, &c, &help)) {
        if (help) {
            printf("Usage: neuralops recommend --index DIR --incident FILE.json [--top-n N]\n\n"
                   "Rank the playbooks that fixed similar past incidents (the index written by\n"
                   "neuralops vectorize; formula in docs/recommendation.md) and print them as\n"
                   "POST /recommend answers.\n\n");
            cli_print_opts(&ctx, reco_opts, N_RECO, stdout);
            status = NOPS_EXIT_OK;
        } else {
            status = run(&ctx, &c);
        }
    }
    app_ctx_fini(&ctx);
    return status;
}
