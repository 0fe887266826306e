/*
 * runner.h — running one exec step (internal to orchestrate/; not a public header).
 */
#ifndef NOPS_ORCHESTRATE_RUNNER_H
#define NOPS_ORCHESTRATE_RUNNER_H

#include "orchestrate/orchestrate.h"

typedef struct nops_step_result {
    int exit_code;      /* 0 success; 128+signal when killed; 127 when it could not start */
    bool timed_out;     /* killed at the deadline */
    bool truncated;     /* output longer than the buffer */
    char output[8192];  /* stdout and stderr, interleaved as written */
} nops_step_result;

/* Run argv `exec` (absolute path first) until done or deadline_ns (monotonic). NOPS_INVAL for
 * a relative command, NOPS_IO when it could not be started at all. */
nops_err nops__run_step(const json_t *exec, bool dry_run, bool dry_run_arg, int64_t deadline_ns,
                        nops_step_result *res);

#endif
