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
#include "loop/loop.h"
#include "vector/vector.h"
#include "notify/notify.h"

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
    int argc;                       /* the command line cli_parse read (for cli_reparse) */
    char **argv;                    /* borrowed: main's argv, alive for the whole run */
    const char *cmd;                /* the command's name, for messages */
    const char *config_file;        /* -c FILE (in argv), or NULL */
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
    nops_loop_params loop;          /* [loop] */
    nops_security_params security;  /* [security] */
    nops_notify_params notify;      /* [notify] */
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
 * Read the configuration again as cli_parse read it for `running` (the same -c file, the
 * environment as it is now, the same flags, in the same order) into `fresh` (made by
 * app_ctx_init), for a reload. Prints nothing and changes no logging: false with the reason in
 * err. Only for commands without options of their own (serve).
 */
bool cli_reparse(const app_ctx *running, app_ctx *fresh, char *err, size_t err_size);
/*
 * False, with a message telling how to set one, when vector.actor_key is still the published
 * default: serve and vectorize refuse to start with it (only the demo may use it).
 */
bool app_actor_key_set(const app_ctx *ctx, const char *cmd);
/* Print the options of a command and the config aliases. */
void cli_print_opts(const app_ctx *ctx, const cli_opt *opts, size_t n_opts, FILE *out);

/* Vectorize a JSONL history into `out` (cmd_vectorize.c); prints like the command; returns
 * its exit status. */
int app_vectorize_jsonl(app_ctx *ctx, const char *path, const char *out, bool quiet);

/* SIGINT/SIGTERM set the returned flag (the first; a second one exits at once). */
atomic_bool *app_stop_on_signals(void);
/* SIGHUP sets the returned flag (instead of ending the process); the caller clears it. */
atomic_bool *app_reload_on_sighup(void);

/* Shortest text that reads back as exactly the same double / float. */
void fmt_double(char *buf, size_t cap, double v);
void fmt_float(char *buf, size_t cap, float v);

#endif
