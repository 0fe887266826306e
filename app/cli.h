/*
 * cli.h — command-line plumbing shared by the subcommands of `neuralops` (app/ only).
 */
#ifndef NOPS_APP_CLI_H
#define NOPS_APP_CLI_H

#include "core/core.h"
#include "detect/detect.h"
#include "ingest/ingest.h"
#include "api/api.h"
#include "recommend/recommend.h"
#include "orchestrate/orchestrate.h"
#include "vector/vector.h"

#include <stdatomic.h>

/* Exit statuses shared by every command. */
enum {
    NOPS_EXIT_OK = 0,
    NOPS_EXIT_FAIL = 1,    /* runtime failure (I/O, out of memory) */
    NOPS_EXIT_USAGE = 2,   /* bad flags, bad config, bad input rows */
};

/* One option a command accepts besides the config aliases. */
typedef struct cli_opt {
    const char *name;    /* long name without dashes */
    char short_name;     /* or 0 */
    bool has_arg;        /* takes a value */
    const char *metavar; /* for --help */
    const char *help;    /* one line */
} cli_opt;

/* The settings every command shares: a [log] section and the module sections. */
typedef struct app_log_cfg {
    int level;  /* index into debug|info|warn|error|off */
    int format; /* text|json */
} app_log_cfg;

typedef struct app_ctx {
    nops_cfg *cfg;                  /* tables below, registered */
    app_log_cfg log;                /* [log] */
    nops_detect_params detect;      /* [detect] */
    nops_correlate_params correlate;/* [correlate] */
    nops_kafka_params kafka;        /* [kafka] */
    nops_pipeline_params pipeline;  /* [pipeline] */
    nops_storage_params storage;    /* [storage] */
    nops_sinks_params sinks;        /* [sinks] */
    nops_api_params api;            /* [api] */
    nops_vector_params vector;      /* [vector] */
    nops_reco_params recommend;     /* [recommend] */
    nops_orch_params orchestrate;   /* [orchestrate] */
    nops_security_params security;  /* [security] */
} app_ctx;

/* Build the config with every section and its defaults; NULL (message printed) on failure. */
bool app_ctx_init(app_ctx *ctx);
void app_ctx_fini(app_ctx *ctx);

/*
 * Parse argv for a command: its own options (`opts`, reported through `on_opt`) and the config
 * aliases/`--set`/`-c FILE`, applied in the order defaults < file < env < flags. Positional
 * arguments are refused. Prints a clear message and returns false on any error; sets *help when
 * -h/--help was given.
 */
typedef bool (*cli_opt_fn)(void *ud, const cli_opt *opt, const char *value);
bool cli_parse(app_ctx *ctx, const char *cmd, int argc, char **argv, const cli_opt *opts,
               size_t n_opts, cli_opt_fn on_opt, void *ud, bool *help);
/*
 * False, with a message telling how to set one, when vector.actor_key is still the published
 * default: serve and vectorize refuse to start with it (only the demo may use it).
 */
bool app_actor_key_set(const app_ctx *ctx, const char *cmd);
/* Print the options of a command and the config aliases. */
void cli_print_opts(const app_ctx *ctx, const cli_opt *opts, size_t n_opts, FILE *out);

/*
 * Build the configured sinks and the pipeline from ctx and start it (cmd_serve.c); NULL with a
 * message printed on failure. The caller owns both and stops/destroys the pipeline first.
 * `store` (may be NULL) is attached to the sinks before anything flows, for the HTTP API;
 * `secret` (may be NULL; borrowed, must outlive the pipeline) keys the state snapshots.
 */
nops_pipeline *app_start_pipeline(app_ctx *ctx, nops_sinks **sinks_out, nops_store *store,
                                  const nops_secret *secret, const char *cmd);

/* The HTTP API of a running engine (cmd_serve.c). */
typedef struct app_api {
    nops_store *store;        /* recent signals and incidents, fed by the sinks */
    nops_recommender *reco;   /* follows recommend.index_dir */
    nops_registry *registry;  /* signed playbooks (orchestrate.registry_dir), or NULL */
    nops_policy *policy;      /* orchestrate.policy_file, or NULL */
    nops_audit *audit;        /* data_dir/audit.jsonl (+ PostgreSQL) */
    nops_orchestrator *orch;  /* the flow, or NULL */
    nops_secret *secret;      /* the engine's key (security.key_file); approvals, audit chain */
    char orch_off[512];       /* why the flow is off although configured ("" = it is not off) */
    nops_api *api;            /* NULL when api.listen is "" */
} app_api;

/* Make storage.data_dir if it is missing (before anything writes there); false with a message
 * printed. */
bool app_data_dir(app_ctx *ctx, const char *cmd);
/* The engine's key (security.key_file, made at the first start, refused inside the data dir);
 * NULL with a message printed. */
nops_secret *app_secret(app_ctx *ctx, const char *cmd);
/* Create the store (seeded from the data dir's JSONL files); false with a message printed. */
bool app_api_store(app_ctx *ctx, app_api *a, const char *cmd);
/* Start the server over the running pipeline; false with a message printed. */
bool app_api_start(app_ctx *ctx, app_api *a, nops_pipeline *p, nops_sinks *sinks,
                   const char *cmd);
/* Stop the server (before the pipeline stops). */
void app_api_stop(app_api *a);
/* Free the store (after the sinks that feed it are destroyed). */
void app_api_fini(app_api *a);

/* Vectorize a JSONL history into `out` (cmd_vectorize.c); prints like the command; returns
 * its exit status. */
int app_vectorize_jsonl(app_ctx *ctx, const char *path, const char *out, bool quiet);

/* SIGINT/SIGTERM set the returned flag (the first; a second one exits at once). */
atomic_bool *app_stop_on_signals(void);

/* Shortest text that reads back as exactly the same double / float. */
void fmt_double(char *buf, size_t cap, double v);
void fmt_float(char *buf, size_t cap, float v);

#endif
