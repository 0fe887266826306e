/*
 * main.c — the `neuralops` binary: dispatch to a subcommand.
 *
 * SIGXFSZ is ignored before any command runs: past the file size limit (ulimit -f) a write
 * then fails with EFBIG, which every writer reports, instead of the kernel killing the process
 * without a word. What a command printed to stdout is checked once more at the end, so output
 * cut short by a full disk or that limit is an error, not a silent success.
 */
#include "app/cli.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

int nops_cmd_analyze(int argc, char **argv);
int nops_cmd_config(int argc, char **argv);
int nops_cmd_vectorize(int argc, char **argv);
int nops_cmd_recommend(int argc, char **argv);
int nops_cmd_audit(int argc, char **argv);
int nops_cmd_playbook(int argc, char **argv);
int nops_cmd_serve(int argc, char **argv);
int nops_cmd_loadgen(int argc, char **argv);
int nops_cmd_demo(int argc, char **argv);

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"demo", nops_cmd_demo, "the embedded default: in-process Kafka, a synthetic fleet, the pipeline"},
    {"serve", nops_cmd_serve, "consume metrics from Kafka, detect, correlate, write the sinks"},
    {"loadgen", nops_cmd_loadgen, "produce a synthetic fleet with injected incidents to Kafka"},
    {"analyze", nops_cmd_analyze, "detect anomalies in a timestamp,value CSV (stdin or -i FILE)"},
    {"vectorize", nops_cmd_vectorize, "build the history index: runs → redaction → vectors"},
    {"recommend", nops_cmd_recommend, "rank the playbooks that fixed similar incidents"},
    {"audit", nops_cmd_audit, "verify the tamper-evident audit trail"},
    {"playbook", nops_cmd_playbook, "key pairs, signatures and registries of remediation playbooks"},
    {"config", nops_cmd_config, "show the effective settings or print the config reference"},
};

static void usage(FILE *out)
{
    fprintf(out, "NeuralOps %s — streaming telemetry anomaly detection\n\n"
                 "Usage: neuralops <command> [options]   (neuralops <command> --help)\n\n"
                 "Commands:\n",
            NOPS_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "version", "print the version and the detector kernel in use");
    fprintf(out, "\nDocumentation: README.md, docs/configuration.md\n");
}

/* The exit status once stdout is flushed: a failure when any of it could not be written. */
static int stdout_written(int status, const char *cmd)
{
    errno = 0;
    const bool flushed = fflush(stdout) == 0;
    if (flushed && !ferror(stdout))
        return status;
    fprintf(stderr, "neuralops %s: standard output is incomplete: %s\n", cmd,
            !flushed && errno ? strerror(errno) : "a write failed");
    return status == NOPS_EXIT_OK ? NOPS_EXIT_FAIL : status;
}

int main(int argc, char **argv)
{
    signal(SIGXFSZ, SIG_IGN); /* EFBIG from write(2), reported, rather than death unlogged */
    (void)nops_alloc_tune_process(); /* before any thread; false: the environment's own */
    if (argc < 2) {
        usage(stderr);
        return NOPS_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return NOPS_EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("neuralops %s (detector kernel: %s)\n", NOPS_VERSION,
               nops_detect_variant_name(nops_detect_variant_best()));
        return stdout_written(NOPS_EXIT_OK, cmd);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return stdout_written(commands[i].run(argc - 1, argv + 1), cmd);
    fprintf(stderr, "neuralops: unknown command \"%s\" (see neuralops --help)\n", cmd);
    return NOPS_EXIT_USAGE;
}
