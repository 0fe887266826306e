/*
 * runner.c — one `exec` step of a playbook: fork + execve of an argument vector (never a shell),
 * an environment of PATH and the NEURALOPS_* variables we set (nothing inherited), no descriptor
 * of the engine's but stdin from /dev/null and stdout/stderr into one bounded buffer (kept as
 * valid UTF-8 text), killed (the whole process group) when the deadline passes.
 */
#include "orchestrate/orch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64

/*
 * Close every descriptor above 2 in the child, so a step inherits nothing of the engine (the
 * audit file, sockets, librdkafka's pipes — libraries do not all set close-on-exec). Only
 * async-signal-safe calls: the parent has threads, so after fork there is no malloc. First
 * close_range(2); without it (old kernels) the entries of /proc/self/fd read with getdents64 into
 * a stack buffer; without /proc every number up to the descriptor limit.
 */
struct linux_dirent64 { /* what getdents64(2) returns (no glibc wrapper before 2.30) */
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static void close_inherited(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
        return;
#endif
#ifdef SYS_getdents64
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        for (bool again = true; again;) { /* closing while reading: read the list again */
            again = false;
            char buf[4096];
            lseek(dfd, 0, SEEK_SET);
            long n;
            while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
                for (long off = 0; off < n;) {
                    const struct linux_dirent64 *de = (const void *)(buf + off);
                    off += de->d_reclen;
                    int fd = 0;
                    const char *c = de->d_name;
                    for (; *c >= '0' && *c <= '9'; c++)
                        fd = fd * 10 + (*c - '0');
                    if (*c == '\0' && c != de->d_name && fd > 2 && fd != dfd) {
                        close(fd);
                        again = true;
                    }
                }
            }
        }
        close(dfd);
        return;
    }
#endif
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                      rl.rlim_cur < 1048576
                  ? (int)rl.rlim_cur
                  : 1048576;
    for (int fd = 3; fd < max; fd++)
        close(fd);
}

static void child(char *const argv[], char *const envp[], int out_fd)
{
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    close_inherited();
    execve(argv[0], argv, envp);
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* The captured bytes as text: cut on a character boundary when the output went on past the
 * buffer, bytes that are not UTF-8 (and NULs) replaced by U+FFFD, so the record, the audit entry
 * and the history can hold it. */
static void output_text(const char *raw, size_t got, bool more, nops_step_result *res)
{
    const size_t cap = sizeof res->output - 1;
    size_t n = more || got > cap ? nops_utf8_cut(raw, got, cap) : got;
    size_t replaced = 0;
    size_t w = nops_utf8_sanitize(raw, n, res->output, sizeof res->output, &replaced);
    if (more || got > n) /* cut */
        res->truncated = true;
    if (replaced && w < n) /* U+FFFD is longer than the byte it stands for: the end fell off */
        res->truncated = true;
}

/* Read the child's output from fd until it closes it or the deadline passes (then the process
 * group is killed): at most cap bytes into raw, *more when there were more. */
static void read_output(int fd, pid_t pid, int64_t deadline_ns, nops_step_result *res,
                        char *raw, size_t cap, size_t *got, bool *more)
{
    for (;;) {
        int64_t left_ms = (deadline_ns - (int64_t)nops_now_ns()) / 1000000;
        if (left_ms <= 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            res->timed_out = true;
            return;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left_ms > 200 ? 200 : (int)left_ms) <= 0)
            continue;
        char buf[4096];
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return; /* the child closed its output (or it cannot be read): wait below */
        const size_t room = cap - *got;
        size_t take = (size_t)r < room ? (size_t)r : room;
        if (take)
            memcpy(raw + *got, buf, take);
        *got += take;
        *more = *more || take < (size_t)r;
    }
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
    /* a few bytes past the buffer, to see whether its last character is whole */
    const size_t cap = sizeof res->output + 4;
    char *raw = malloc(cap);
    size_t got = 0;
    bool more = false;
    read_output(fds[0], pid, deadline_ns, res, raw, raw ? cap : 0, &got, &more);
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
    output_text(raw ? raw : "", got, more, res);
    free(raw);
    res->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return NOPS_OK;
}
