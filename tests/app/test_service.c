/*
 * test_service.c — `neuralops serve` as systemd runs it (deploy/neuralops.service):
 *
 *   - sd_notify for real: the test binds a unix datagram socket, gives it to serve as
 *     NOTIFY_SOCKET, and receives READY=1 once the API answers and the consumer has subscribed,
 *     RELOADING=1 / READY=1 around a SIGHUP, and STOPPING=1 at the SIGTERM drain (exit 0);
 *   - SIGHUP does not end serve: it reads its config file again, a new API key authenticates
 *     and the old one gets 401, one log line names what was applied (the key, a threshold) and
 *     the changed setting that needs a restart (the window); a broken file is refused with an error line and the running keys
 *     stay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/api/http.h"
#include "tests/support/kafkautil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-svc-XXXXXX";

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
}

typedef struct text {
    char b[1 << 17]; /* what serve wrote to stderr (the first 128 KiB) */
    size_t n;
} text;

static void drain(int fd, text *t)
{
    char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        size_t take = (size_t)r < sizeof t->b - 1 - t->n ? (size_t)r : sizeof t->b - 1 - t->n;
        memcpy(t->b + t->n, buf, take);
        t->n += take;
        t->b[t->n] = '\0';
    }
}

/* Wait (up to 90 s) for serve to exit after a SIGTERM sent before, reading its stderr; it must
 * exit 0. */
static void expect_clean_exit(pid_t pid, int fd, text *t)
{
    int st = 0;
    for (int i = 0; i < 1800 && waitpid(pid, &st, WNOHANG) == 0; i++) {
        drain(fd, t);
        sleep_ms(50);
    }
    drain(fd, t);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("serve did not exit 0 after SIGTERM (status %d); stderr:\n%s", st, t->b);
}

/* Wait up to `secs` for a datagram on `sock` that contains `want` (other ones are skipped;
 * all are appended to `seen`), reading serve's stderr meanwhile. */
static bool await_notify(int sock, const char *want, int secs, int errfd, text *t, char *seen,
                         size_t cap)
{
    for (int i = 0; i < secs * 10; i++) {
        struct pollfd pf = {sock, POLLIN, 0};
        if (poll(&pf, 1, 100) == 1) {
            char msg[1024];
            ssize_t r = recv(sock, msg, sizeof msg - 1, 0);
            if (r > 0) {
                msg[r] = '\0';
                size_t n = strlen(seen);
                snprintf(seen + n, cap - n, "[%s]", msg);
                if (strstr(msg, want))
                    return true;
            }
        }
        drain(errfd, t);
    }
    return false;
}

/* Wait up to `secs` for `needle` in serve's stderr after byte `from`. */
static bool await_log(int errfd, text *t, size_t from, const char *needle, int secs)
{
    for (int i = 0; i < secs * 20; i++) {
        drain(errfd, t);
        if (strstr(t->b + from, needle))
            return true;
        sleep_ms(50);
    }
    return false;
}

static void write_config(const char *path, const char *boot, const char *data, const char *hex,
                         const char *extra)
{
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f,
            "[log]\nlevel = info\n\n"
            "[kafka]\nbrokers = %s\ntopic = svc.metrics   # comments after values work\n"
            "group = g-svc\ndlq_topic = svc.dlq\nsession_timeout_ms = 6000\n\n"
            "[pipeline]\nflush_ms = 100\n\n[storage]\ndata_dir = %s\n\n"
            "[vector]\nactor_key = test-svc-actor-key\n\n"
            "[api]\nlisten = 127.0.0.1:0\nkeys = ops:viewer:%s\n%s",
            boot, data, hex, extra);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0); /* whole, as an editor that saves atomically */
}

static long get_status(int port, const char *key)
{
    char h[128];
    snprintf(h, sizeof h, "X-API-Key: %s", key);
    const char *hs[] = {h, NULL};
    http_res r = http_do(port, "GET", "/signals", hs, NULL, 0);
    long s = r.status;
    http_free(&r);
    return s;
}

/* Start `neuralops serve -c conf` with NOTIFY_SOCKET bound at `sockpath` (returned in *sock),
 * the NAME=VALUE strings of `env` (NULL-terminated; NULL: none) in its environment, and stderr
 * into the non-blocking pipe *errfd. */
static pid_t spawn_serve(const char *conf, char *const *env, const char *sockpath, int *sock,
                         int *errfd)
{
    *sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(*sock >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(sockpath) < sizeof sa.sun_path);
    memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
    assert_int_equal(bind(*sock, (struct sockaddr *)&sa, sizeof sa), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        for (size_t i = 0; env && env[i]; i++)
            putenv(env[i]);
        setenv("NOTIFY_SOCKET", sockpath, 1);
        char *argv[] = {"neuralops", "serve", "-c", (char *)conf, NULL};
        execv(NEURALOPS_BIN, argv);
        _exit(127);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *errfd = p[0];
    return pid;
}

/* The API answers `accepted`'s requests (200) and refuses `refused`'s (401), in that order. */
static void expect_keys(int port, const char *accepted, const char *refused)
{
    assert_int_equal(get_status(port, accepted), 200);
    assert_int_equal(get_status(port, refused), 401);
}

/* The first "reloaded " line in `log` says what was applied and what needs a restart. */
static void expect_reload_line(const char *log)
{
    const char *line = strstr(log, "reloaded ");
    const char *eol = strchr(line, '\n');
    char l[1024];
    snprintf(l, sizeof l, "%.*s", eol ? (int)(eol - line) : (int)strlen(line), line);
    if (!strstr(l, "applied: detect.z_threshold, api.keys;") ||
        !strstr(l, "restart to take effect: detect.window"))
        fail_msg("the reload line does not say what changed: %s", l);
}

static void test_notify_and_reload(void **state)
{
    (void)state;
    static text t;
    memset(&t, 0, sizeof t);
    char boot[512], data[300], conf[300], sockpath[100], seen[4096] = "";
    const tu_topic topics[] = {{"svc.metrics", 2}, {"svc.dlq", 1}};
    rd_kafka_t *cluster = tu_mock_cluster(1, topics, 2, boot, sizeof boot);
    assert_non_null(cluster);
    snprintf(data, sizeof data, "%s/data", g_dir);
    snprintf(conf, sizeof conf, "%s/neuralops.ini", g_dir);
    snprintf(sockpath, sizeof sockpath, "%s/notify.sock", g_dir);
    char old_hex[65], new_hex[65];
    assert_true(nops_sha256_hex("old-key-1", 9, old_hex));
    assert_true(nops_sha256_hex("new-key-2", 9, new_hex));
    write_config(conf, boot, data, old_hex, "");

    int sock, fd;
    pid_t pid = spawn_serve(conf, NULL, sockpath, &sock, &fd);

    if (!await_notify(sock, "READY=1", 120, fd, &t, seen, sizeof seen))
        fail_msg("no READY=1 (got %s); stderr:\n%s", seen, t.b);
    /* READY means the API is up: its port is in the log already */
    drain(fd, &t);
    const char *lp = strstr(t.b, "(port ");
    if (!lp)
        fail_msg("READY=1 before the API listened; stderr:\n%s", t.b);
    int port = atoi(lp + 6);
    expect_keys(port, "old-key-1", "new-key-2");

    /* a new key and a changed threshold (that one needs a restart) */
    write_config(conf, boot, data, new_hex, "\n[detect]\nz_threshold = 7.5\nwindow = 90\n");
    size_t mark = t.n;
    seen[0] = '\0';
    assert_int_equal(kill(pid, SIGHUP), 0);
    if (!await_notify(sock, "RELOADING=1", 60, fd, &t, seen, sizeof seen) ||
        !await_notify(sock, "READY=1", 60, fd, &t, seen, sizeof seen))
        fail_msg("no RELOADING=1 then READY=1 after SIGHUP (got %s); stderr:\n%s", seen, t.b);
    if (!await_log(fd, &t, mark, "reloaded ", 30))
        fail_msg("no reload line; stderr:\n%s", t.b + mark);
    expect_reload_line(t.b + mark);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* alive */
    expect_keys(port, "new-key-2", "old-key-1");

    /* a broken file: refused, the running keys stay */
    FILE *f = fopen(conf, "a");
    assert_non_null(f);
    fputs("\n[detect]\nwindow = many\n", f);
    fclose(f);
    mark = t.n;
    assert_int_equal(kill(pid, SIGHUP), 0);
    if (!await_log(fd, &t, mark, "refused, the running settings stay", 60))
        fail_msg("no refusal line; stderr:\n%s", t.b + mark);
    assert_non_null(strstr(t.b + mark, "detect.window expects an integer"));
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    expect_keys(port, "new-key-2", "old-key-1");

    /* SIGTERM: STOPPING=1, a clean drain */
    seen[0] = '\0';
    assert_int_equal(kill(pid, SIGTERM), 0);
    if (!await_notify(sock, "STOPPING=1", 90, fd, &t, seen, sizeof seen))
        fail_msg("no STOPPING=1 after SIGTERM (got %s); stderr:\n%s", seen, t.b);
    expect_clean_exit(pid, fd, &t);
    close(fd);
    close(sock);
    rd_kafka_destroy(cluster);
}

/* The example config the install puts under /etc/neuralops (deploy/neuralops.ini) starts
 * serve as it is, with only what differs on this machine given by the environment: the broker,
 * the directories, the port — and its secret from a credential directory, as systemd makes it. */
static void test_example_config_serves(void **state)
{
    (void)state;
    static text t;
    memset(&t, 0, sizeof t);
    char boot[512], env[4][700], cred[300], sockpath[100], seen[2048] = "";
    const tu_topic topics[] = {{"neuralops.metrics", 2}, {"neuralops.metrics.dlq", 1}};
    rd_kafka_t *cluster = tu_mock_cluster(1, topics, 2, boot, sizeof boot);
    assert_non_null(cluster);
    snprintf(cred, sizeof cred, "%s/cred", g_dir);
    assert_int_equal(mkdir(cred, 0700), 0);
    char keyf[400];
    snprintf(keyf, sizeof keyf, "%s/actor.key", cred);
    FILE *f = fopen(keyf, "w");
    assert_non_null(f);
    fputs("example-actor-key-for-the-test\n", f);
    fclose(f);
    snprintf(env[0], sizeof env[0], "NEURALOPS_KAFKA_BROKERS=%s", boot);
    snprintf(env[1], sizeof env[1], "NEURALOPS_STORAGE_DATA_DIR=%s/ex-data", g_dir);
    snprintf(env[2], sizeof env[2], "NEURALOPS_SECURITY_KEY_FILE=%s/ex-keys/engine.key", g_dir);
    snprintf(env[3], sizeof env[3], "CREDENTIALS_DIRECTORY=%s", cred);
    snprintf(sockpath, sizeof sockpath, "%s/notify2.sock", g_dir);
    char *const envs[] = {env[0], env[1], env[2], env[3], "NEURALOPS_API_LISTEN=127.0.0.1:0",
                          "NEURALOPS_KAFKA_SESSION_TIMEOUT_MS=6000", NULL};
    int sock, fd;
    pid_t pid = spawn_serve(NOPS_SOURCE_DIR "/deploy/neuralops.ini", envs, sockpath, &sock, &fd);
    if (!await_notify(sock, "READY=1", 120, fd, &t, seen, sizeof seen))
        fail_msg("serve -c deploy/neuralops.ini: no READY=1 (got %s); stderr:\n%s", seen, t.b);
    drain(fd, &t);
    assert_null(strstr(t.b, "example-actor-key")); /* the secret is never logged */
    assert_non_null(strstr(t.b, "\"level\":\"info\"")); /* the example asks for JSON logs */
    assert_int_equal(kill(pid, SIGTERM), 0);
    expect_clean_exit(pid, fd, &t);
    close(fd);
    close(sock);
    rd_kafka_destroy(cluster);
}

static void run_ok(const char *cmd)
{
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);
}

/* The ids GET /playbooks lists, space-separated, into out. */
static long playbooks(int port, char *out, size_t cap)
{
    const char *hs[] = {"X-API-Key: old-key-1", NULL};
    http_res r = http_do(port, "GET", "/playbooks", hs, NULL, 0);
    out[0] = '\0';
    for (const char *p = r.body ? r.body : ""; (p = strstr(p, "\"id\":\"")) != NULL;) {
        p += 6;
        size_t n = strcspn(p, "\""), o = strlen(out);
        snprintf(out + o, cap - o, "%s%.*s", o ? " " : "", (int)n, p);
    }
    long s = r.status;
    http_free(&r);
    return s;
}

/* SIGHUP reads the playbook registry again: a playbook signed and added to the directory while
 * serve runs is listed by GET /playbooks after the reload, and the log line counts it. */
static void test_reload_playbooks(void **state)
{
    (void)state;
    static text t;
    memset(&t, 0, sizeof t);
    char boot[512], data[300], conf[300], reg[300], key[300], pub[300], sockpath[100];
    char cmd[2048], seen[2048] = "", list[512];
    const tu_topic topics[] = {{"svc.metrics", 2}, {"svc.dlq", 1}};
    rd_kafka_t *cluster = tu_mock_cluster(1, topics, 2, boot, sizeof boot);
    assert_non_null(cluster);
    snprintf(data, sizeof data, "%s/pb-data", g_dir);
    snprintf(conf, sizeof conf, "%s/pb.ini", g_dir);
    snprintf(reg, sizeof reg, "%s/registry", g_dir);
    snprintf(key, sizeof key, "%s/pb.key", g_dir);
    snprintf(pub, sizeof pub, "%s/pb.pub", g_dir);
    snprintf(sockpath, sizeof sockpath, "%s/notify3.sock", g_dir);
    assert_int_equal(mkdir(reg, 0750), 0);
    snprintf(cmd, sizeof cmd, "%s playbook keygen --key %s --pub %s", NEURALOPS_BIN, key, pub);
    run_ok(cmd);
    const char *ids[] = {"restart-a", "restart-b"};
    for (int i = 0; i < 2; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s.json", i ? g_dir : reg, ids[i]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "{\"id\":\"%s\",\"name\":\"Restart\",\"version\":\"1.0.0\","
                   "\"safety\":{\"mode\":\"manual\",\"allowed_roles\":[\"org-admin\"]},"
                   "\"steps\":[{\"name\":\"r\",\"exec\":[\"/bin/echo\",\"x\"]}]}\n", ids[i]);
        fclose(f);
        snprintf(cmd, sizeof cmd, "%s playbook sign --key %s --file %s", NEURALOPS_BIN, key, path);
        run_ok(cmd);
    }
    char hex[65], extra[1200];
    assert_true(nops_sha256_hex("old-key-1", 9, hex));
    snprintf(extra, sizeof extra, "\n[orchestrate]\nregistry_dir = %s\npubkeys = %s\n", reg,
             pub);
    write_config(conf, boot, data, hex, extra);
    int sock, fd;
    pid_t pid = spawn_serve(conf, NULL, sockpath, &sock, &fd);
    if (!await_notify(sock, "READY=1", 120, fd, &t, seen, sizeof seen))
        fail_msg("no READY=1 (got %s); stderr:\n%s", seen, t.b);
    drain(fd, &t);
    const char *lp = strstr(t.b, "(port ");
    assert_non_null(lp);
    int port = atoi(lp + 6);
    assert_int_equal(playbooks(port, list, sizeof list), 200);
    assert_string_equal(list, "restart-a");

    /* the second playbook (and its signature) moves in; the config file does not change */
    snprintf(cmd, sizeof cmd, "mv %s/restart-b.json %s/restart-b.json.sig %s/", g_dir, g_dir, reg);
    run_ok(cmd);
    size_t mark = t.n;
    assert_int_equal(kill(pid, SIGHUP), 0);
    if (!await_log(fd, &t, mark, "playbooks read again: 2 signed (0 refused)", 60))
        fail_msg("no reload line counting 2 playbooks; stderr:\n%s", t.b + mark);
    assert_int_equal(playbooks(port, list, sizeof list), 200);
    if (!strstr(list, "restart-a") || !strstr(list, "restart-b"))
        fail_msg("GET /playbooks after the reload: %s", list);

    /* a registry that cannot be read is refused: the running playbooks stay */
    snprintf(cmd, sizeof cmd, "mv %s %s.gone", reg, reg);
    run_ok(cmd);
    mark = t.n;
    assert_int_equal(kill(pid, SIGHUP), 0);
    if (!await_log(fd, &t, mark, "refused, the running settings stay", 60))
        fail_msg("no refusal line; stderr:\n%s", t.b + mark);
    assert_int_equal(playbooks(port, list, sizeof list), 200);
    assert_non_null(strstr(list, "restart-b"));

    assert_int_equal(kill(pid, SIGTERM), 0);
    expect_clean_exit(pid, fd, &t);
    close(fd);
    close(sock);
    rd_kafka_destroy(cluster);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(g_dir))
        return -1;
    char cfg[200];
    snprintf(cfg, sizeof cfg, "%s/xdg", g_dir); /* the engine key goes here */
    setenv("XDG_CONFIG_HOME", cfg, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_and_reload),
        cmocka_unit_test(test_example_config_serves),
        cmocka_unit_test(test_reload_playbooks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
