/*
 * promutil.h — Debian's `prometheus` for the tests that need the real one: a free loopback
 * port, the server started on a config file with its TSDB and log under a scratch dir, and
 * stopped. Include after cmocka.h (it asserts).
 */
#ifndef NOPS_TESTS_PROMUTIL_H
#define NOPS_TESTS_PROMUTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A loopback TCP port nobody listens on now. */
static inline int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t l = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* `prometheus --config.file=cfg` on 127.0.0.1:port, TSDB in dir/tsdb, its log in
 * dir/prometheus.log; the child's pid. */
static inline pid_t tu_prometheus_start(const char *dir, const char *cfg, int port)
{
    char listen[64], tsdb[600], cfgflag[700], logpath[600];
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", port);
    snprintf(tsdb, sizeof tsdb, "--storage.tsdb.path=%s/tsdb", dir);
    snprintf(cfgflag, sizeof cfgflag, "--config.file=%s", cfg);
    snprintf(logpath, sizeof logpath, "%s/prometheus.log", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *lf = freopen(logpath, "w", stderr);
        (void)lf;
        execlp("prometheus", "prometheus", cfgflag, tsdb, listen, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static inline void tu_prometheus_stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

#endif
