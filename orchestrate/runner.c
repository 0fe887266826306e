/*
 * runner.c — one `exec` step of a playbook: fork + execve of an argument vector (never a shell),
 * an environment of PATH and the NEURALOPS_* variables we set (nothing inherited), stdin from
 * /dev/null, stdout and stderr captured into one bounded buffer, killed (the whole process
 * group) when the deadline passes.
 */
#include "orchestrate/orch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64

static void child(char *const argv[], char *const envp[], int out_fd)
{
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    execve(argv[0], argv, envp);
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

nops_err nops__run_step(const json_t *exec, bool dry_run, bool dry_run_arg,
                        char *const *env, int64_t deadline_ns, nops_step_result *res)
{
    memset(res, 0, sizeof *res);
    char *argv[MAX_ARGS + 2];
    size_t n = 0, i;
    json_t *a;
    json_array_foreach((json_t *)exec, i, a) {
        if (n < MAX_ARGS)
            argv[n++] = (char *)json_string_value(a);
    }
    if (n == 0 || argv[0][0] != '/') {
        snprintf(res->output, sizeof res->output, "exec[0] must be an absolute path");
        return NOPS_INVAL;
    }
    if (dry_run && dry_run_arg)
        argv[n++] = "--dry-run";
    argv[n] = NULL;
    char *envp[12] = {"PATH=/usr/local/bin:/usr/bin:/bin"};
    size_t ne = 1;
    if (dry_run)
        envp[ne++] = "NEURALOPS_DRY_RUN=1";
    for (size_t k = 0; env && env[k] && k < 8; k++)
        if (strncmp(env[k], "NEURALOPS_", 10) == 0)
            envp[ne++] = env[k];
    envp[ne] = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(res->output, sizeof res->output, "pipe: %s", strerror(errno));
        return NOPS_IO;
    }
    pid_t pid = fork();
    if (pid == 0)
        child(argv, envp, fds[1]);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        snprintf(res->output, sizeof res->output, "fork: %s", strerror(errno));
        return NOPS_IO;
    }
    size_t got = 0;
    for (;;) {
        int64_t left_ms = (deadline_ns - (int64_t)nops_now_ns()) / 1000000;
        if (left_ms <= 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            res->timed_out = true;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        if (poll(&p, 1, left_ms > 200 ? 200 : (int)left_ms) <= 0)
            continue;
        char buf[4096];
        ssize_t r = read(fds[0], buf, sizeof buf);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            break; /* the child closed its output (or it cannot be read): wait below */
        size_t take = got + (size_t)r < sizeof res->output - 1 ? (size_t)r
                                                                : sizeof res->output - 1 - got;
        memcpy(res->output + got, buf, take);
        got += take;
        res->truncated = res->truncated || take < (size_t)r;
    }
    close(fds[0]);
    int status = 0;
    for (;;) { /* the deadline holds while waiting too */
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (!res->timed_out && (int64_t)nops_now_ns() >= deadline_ns) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            res->timed_out = true;
        }
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    res->output[got] = '\0';
    res->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return NOPS_OK;
}
