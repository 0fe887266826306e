/*
 * test_ops.c — operator mistakes and the data dir's permissions, with the `neuralops` binary as
 * an operator runs it:
 *
 *   - a misspelt NEURALOPS_* variable is named in a warning with the setting it was probably
 *     meant to be (and the harness's NEURALOPS_TEST_* variables are not);
 *   - serve and vectorize refuse the published default vector.actor_key, with a message that
 *     says how to set one (the demo alone runs with it);
 *   - `playbook keygen` replaces neither an existing private key nor an existing public key;
 *   - past the file size limit (RLIMIT_FSIZE, `ulimit -f`) commands are not killed by SIGXFSZ
 *     without a word: the write fails with EFBIG and they say so (loadgen, analyze, the stdout
 *     of any command, and the JSONL sink of a running `serve`, which keeps running);
 *   - after `neuralops demo` under umask 022, every directory under the data dir is 0750 and no
 *     file is group-writable or readable by others (mode & 0027 == 0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/support/kafkautil.h"
#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[] = "/tmp/nops-ops-XXXXXX";

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(g_dir))
        return -1;
    /* the engine key the demo makes goes here, not into the user's ~/.config */
    char cfg[200];
    snprintf(cfg, sizeof cfg, "%s/xdg", g_dir);
    setenv("XDG_CONFIG_HOME", cfg, 1);
    unsetenv("NEURALOPS_VECTOR_ACTOR_KEY"); /* each test says whether it sets one */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
}

/* Run `neuralops ARGS` through sh with `env` before it; stdout and stderr into *out and *err
 * (free them). Returns the exit status (-1 when it did not exit). */
static int run(const char *env, const char *args, char **out, char **err)
{
    char cmd[4096], o[300], e[300];
    snprintf(o, sizeof o, "%s/run.out", g_dir);
    snprintf(e, sizeof e, "%s/run.err", g_dir);
    snprintf(cmd, sizeof cmd, "%s %s %s < /dev/null > %s 2> %s", env ? env : "", NEURALOPS_BIN,
             args, o, e);
    int st = system(cmd);
    *out = tu_read_file(o);
    *err = tu_read_file(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* ---- 16a: unknown NEURALOPS_* variables ------------------------------------------------- */

static void test_misspelt_variable_is_named(void **state)
{
    (void)state;
    char *out, *err;
    int rc = run("NEURALOPS_VECTOR_ACTOR_KY=my-secret-value NEURALOPS_TEST_WHATEVER=1 "
                 "NEURALOPS_DRY_RUN=1",
                 "config show", &out, &err);
    assert_int_equal(rc, 0);
    if (!strstr(err, "NEURALOPS_VECTOR_ACTOR_KY is not a setting") ||
        !strstr(err, "did you mean NEURALOPS_VECTOR_ACTOR_KEY?"))
        fail_msg("no warning naming the typo and the setting:\n%s", err);
    assert_null(strstr(err, "my-secret-value"));        /* the value is never logged */
    assert_null(strstr(err, "NEURALOPS_TEST_WHATEVER")); /* the test harness's own */
    assert_null(strstr(err, "NEURALOPS_DRY_RUN"));       /* what a playbook step is given */
    assert_non_null(strstr(out, "actor_key = ********")); /* still the default: masked */
    free(out);
    free(err);
    /* the warning goes through the logger as configured (one JSON object per line) */
    rc = run("NEURALOPS_LOG_LEVL=debug", "config show --log-format json", &out, &err);
    assert_int_equal(rc, 0);
    if (!strstr(err, "{\"ts\":") || !strstr(err, "\"level\":\"warn\"") ||
        !strstr(err, "NEURALOPS_LOG_LEVL is not a setting") ||
        !strstr(err, "did you mean NEURALOPS_LOG_LEVEL?"))
        fail_msg("no JSON warning for NEURALOPS_LOG_LEVL:\n%s", err);
    free(out);
    free(err);
    /* correct names: no warning at all */
    rc = run("NEURALOPS_VECTOR_ACTOR_KEY=k NEURALOPS_LOG_LEVEL=info", "config show", &out, &err);
    assert_int_equal(rc, 0);
    assert_null(strstr(err, "not a setting"));
    free(out);
    free(err);
}

/* recommend.index_dir left at its default follows storage.data_dir; set, it is kept */
static void test_index_dir_follows_the_data_dir(void **state)
{
    (void)state;
    char *out, *err;
    int rc = run("NEURALOPS_VECTOR_ACTOR_KEY=k NEURALOPS_STORAGE_DATA_DIR=/var/lib/nops-x",
                 "config show", &out, &err);
    assert_int_equal(rc, 0);
    if (!strstr(out, "index_dir = /var/lib/nops-x/index"))
        fail_msg("the index does not follow the data dir:\n%s", out);
    free(out);
    free(err);
    rc = run("NEURALOPS_VECTOR_ACTOR_KEY=k NEURALOPS_STORAGE_DATA_DIR=/var/lib/nops-x "
             "NEURALOPS_RECOMMEND_INDEX_DIR=/srv/idx", "config show", &out, &err);
    assert_int_equal(rc, 0);
    if (!strstr(out, "index_dir = /srv/idx"))
        fail_msg("a set index dir was not kept:\n%s", out);
    free(out);
    free(err);
    rc = run("NEURALOPS_VECTOR_ACTOR_KEY=k", "config show", &out, &err);
    assert_int_equal(rc, 0);
    if (!strstr(out, "index_dir = ./neuralops-data/index"))
        fail_msg("the default index dir changed:\n%s", out);
    free(out);
    free(err);
}

/* ---- 16b: the published actor key ------------------------------------------------------- */

static void expect_refused(int rc, const char *err, const char *what)
{
    if (rc != 2 || !strstr(err, "vector.actor_key is still the published default") ||
        !strstr(err, "NEURALOPS_VECTOR_ACTOR_KEY") || !strstr(err, "[vector]"))
        fail_msg("%s with the default actor key: exit %d, stderr:\n%s", what, rc, err);
}

static void test_default_actor_key_refused(void **state)
{
    (void)state;
    char runs[300], ix[300], args[1200], ini[300], data[300], *out, *err;
    snprintf(runs, sizeof runs, "%s/runs.jsonl", g_dir);
    snprintf(ix, sizeof ix, "%s/ix", g_dir);
    snprintf(args, sizeof args, "loadgen --history 50 --seed 3 --out %s", runs);
    assert_int_equal(run(NULL, args, &out, &err), 0);
    free(out);
    free(err);

    snprintf(args, sizeof args, "vectorize --input %s --out %s", runs, ix);
    int rc = run(NULL, args, &out, &err);
    expect_refused(rc, err, "vectorize");
    assert_false(exists(ix)); /* refused before anything was written */
    free(out);
    free(err);
    /* the default written out in a config file is the same key */
    snprintf(ini, sizeof ini, "%s/vec.ini", g_dir);
    write_text(ini, "[vector]\nactor_key = neuralops-change-me\n");
    snprintf(args, sizeof args, "vectorize -c %s --input %s --out %s", ini, runs, ix);
    rc = run(NULL, args, &out, &err);
    expect_refused(rc, err, "vectorize -c");
    free(out);
    free(err);
    snprintf(args, sizeof args, "vectorize --input %s --out %s", runs, ix);
    rc = run("NEURALOPS_VECTOR_ACTOR_KEY=an-operator-secret", args, &out, &err);
    if (rc != 0)
        fail_msg("vectorize with a key of its own: exit %d\n%s", rc, err);
    assert_true(exists(ix));
    free(out);
    free(err);

    /* serve: refused at once (it would otherwise run on, waiting for a broker: `timeout`) */
    snprintf(data, sizeof data, "%s/serve-data", g_dir);
    snprintf(args, sizeof args,
             "serve --set storage.data_dir=%s --set kafka.brokers=127.0.0.1:1 "
             "--set api.listen=127.0.0.1:0",
             data);
    rc = run("timeout 60", args, &out, &err);
    expect_refused(rc, err, "serve");
    assert_false(exists(data));
    free(out);
    free(err);
    /* its help still works without a key */
    assert_int_equal(run(NULL, "serve --help", &out, &err), 0);
    free(out);
    free(err);
}

/* ---- 16c: keygen never replaces a key --------------------------------------------------- */

static void test_keygen_keeps_existing_keys(void **state)
{
    (void)state;
    char key[300], pub[300], args[800], *out, *err;
    snprintf(key, sizeof key, "%s/k1.key", g_dir);
    snprintf(pub, sizeof pub, "%s/k1.pub", g_dir);
    write_text(pub, "the public key that verifies every signed manifest\n");
    snprintf(args, sizeof args, "playbook keygen --key %s --pub %s", key, pub);
    int rc = run(NULL, args, &out, &err);
    if (rc != 1 || !strstr(err, "exists") || !strstr(err, pub))
        fail_msg("keygen onto an existing public key: exit %d\n%s", rc, err);
    free(out);
    free(err);
    char *kept = tu_read_file(pub);
    assert_string_equal(kept, "the public key that verifies every signed manifest\n");
    free(kept);
    assert_false(exists(key)); /* nothing half-made */

    /* the private key exists: no new public key either */
    snprintf(key, sizeof key, "%s/k2.key", g_dir);
    snprintf(pub, sizeof pub, "%s/k2.pub", g_dir);
    write_text(key, "a private key\n");
    snprintf(args, sizeof args, "playbook keygen --key %s --pub %s", key, pub);
    rc = run(NULL, args, &out, &err);
    if (rc != 1 || !strstr(err, "exists"))
        fail_msg("keygen onto an existing private key: exit %d\n%s", rc, err);
    free(out);
    free(err);
    assert_false(exists(pub));

    /* neither exists: a pair, the private key 0600, the public one 0640 under umask 022 */
    snprintf(key, sizeof key, "%s/k3.key", g_dir);
    snprintf(pub, sizeof pub, "%s/k3.pub", g_dir);
    snprintf(args, sizeof args, "playbook keygen --key %s --pub %s", key, pub);
    mode_t old = umask(022);
    rc = run(NULL, args, &out, &err);
    umask(old);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    struct stat sb;
    assert_int_equal(stat(key, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(pub, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
}

/* ---- 16d: the file size limit ----------------------------------------------------------- */

/* Start `neuralops argv...` with RLIMIT_FSIZE = limit bytes, stdout into `out_path` (or
 * /dev/null) and stderr into the pipe *err_fd (non-blocking, the caller reads it). */
static pid_t start_limited(rlim_t limit, const char *out_path, int *err_fd, char *const argv[])
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {limit, limit};
        int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0 || out < 0)
            _exit(126);
        signal(SIGXFSZ, SIG_DFL); /* as a shell would leave it */
        dup2(out, STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        execv(NEURALOPS_BIN, argv);
        _exit(127);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *err_fd = p[0];
    return pid;
}

typedef struct text {
    char b[1 << 16]; /* the first 64 KiB of what was read */
    size_t n;        /* bytes kept */
} text;

/* Read what is there (never blocks); true at end of file. */
static bool drain(int fd, text *t)
{
    char buf[4096];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0)
            return true;
        if (r < 0)
            return errno != EAGAIN && errno != EINTR;
        size_t take = (size_t)r < sizeof t->b - 1 - t->n ? (size_t)r : sizeof t->b - 1 - t->n;
        memcpy(t->b + t->n, buf, take);
        t->n += take;
        t->b[t->n] = '\0';
    }
}

/* Wait (reading stderr) for the child to end, up to `secs`; its wait status. */
static int wait_reading(pid_t pid, int fd, text *t, int secs)
{
    int st = 0;
    for (int i = 0; i < secs * 20; i++) {
        drain(fd, t);
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            drain(fd, t);
            return st;
        }
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    fail_msg("the child did not end within %d s; stderr:\n%s", secs, t->b);
    return st;
}

static void expect_efbig_reported(int st, const text *t, const char *what, const char *says)
{
    if (WIFSIGNALED(st))
        fail_msg("%s was killed by signal %d (%s) past the file size limit; stderr:\n%s", what,
                 WTERMSIG(st), strsignal(WTERMSIG(st)), t->b);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 1 || !strstr(t->b, "File too large") ||
        !strstr(t->b, says))
        fail_msg("%s past the file size limit: exit %d, stderr lacks \"%s\" and \"File too "
                 "large\":\n%s", what, WIFEXITED(st) ? WEXITSTATUS(st) : -1, says, t->b);
}

static void test_file_size_limit_commands(void **state)
{
    (void)state;
    static text t;
    char runs[300], csv[300], out[300];
    int fd;
    /* loadgen writing a history file */
    snprintf(runs, sizeof runs, "%s/big-runs.jsonl", g_dir);
    char *a1[] = {"neuralops", "loadgen", "--history", "5000", "--out", runs, NULL};
    memset(&t, 0, sizeof t);
    pid_t pid = start_limited(64 * 1024, NULL, &fd, a1);
    expect_efbig_reported(wait_reading(pid, fd, &t, 120), &t, "loadgen --history", runs);
    close(fd);

    /* analyze writing its rows to stdout (a file) */
    snprintf(csv, sizeof csv, "%s/in.csv", g_dir);
    FILE *f = fopen(csv, "w");
    assert_non_null(f);
    for (int i = 0; i < 20000; i++)
        fprintf(f, "%d,%d\n", 1700000000 + i, 100 + i % 7);
    fclose(f);
    snprintf(out, sizeof out, "%s/analyze.out", g_dir);
    char *a2[] = {"neuralops", "analyze", "--no-header", "-i", csv, NULL};
    memset(&t, 0, sizeof t);
    pid = start_limited(16 * 1024, out, &fd, a2);
    expect_efbig_reported(wait_reading(pid, fd, &t, 120), &t, "analyze", "output");
    close(fd);

    /* any command's stdout: checked once more at exit */
    char *a3[] = {"neuralops", "config", "docs", NULL};
    memset(&t, 0, sizeof t);
    pid = start_limited(1024, out, &fd, a3);
    expect_efbig_reported(wait_reading(pid, fd, &t, 60), &t, "config docs",
                          "standard output is incomplete");
    close(fd);
}

/* A point a second per host for `ticks` seconds up to now; host h spikes every 100 s. */
static void produce_fleet(rd_kafka_t *rk, const char *topic, int hosts, int ticks)
{
    const long long now_s = (long long)time(NULL);
    char line[256], key[16];
    for (int t = 0; t < ticks; t++)
        for (int h = 0; h < hosts; h++) {
            double v = 100.0 + h + ((t % 100) == 30 && t >= 130 ? 50.0 : 0.0);
            int n = snprintf(line, sizeof line, "cpu,host=h%02d,service=s%d usage=%.1f %lld", h,
                             h % 3, v, (now_s - ticks + t) * 1000000000ll);
            snprintf(key, sizeof key, "h%02d", h);
            assert_int_equal(tu_produce(rk, topic, RD_KAFKA_PARTITION_UA, key, line, (size_t)n), 0);
        }
    assert_int_equal(rd_kafka_flush(rk, 30000), 0);
}

static void test_file_size_limit_serve(void **state)
{
    (void)state;
    static text t;
    char boot[512], data[300];
    const tu_topic topics[] = {{"ops.metrics", 4}, {"ops.dlq", 1}};
    rd_kafka_t *cluster = tu_mock_cluster(1, topics, 2, boot, sizeof boot);
    assert_non_null(cluster);
    produce_fleet(cluster, "ops.metrics", 20, 400); /* 60 signals, ~20 KB of signals.jsonl */
    snprintf(data, sizeof data, "%s/serve-limited", g_dir);
    setenv("NEURALOPS_KAFKA_BROKERS", boot, 1);
    setenv("NEURALOPS_KAFKA_TOPIC", "ops.metrics", 1);
    setenv("NEURALOPS_KAFKA_GROUP", "g-ops", 1);
    setenv("NEURALOPS_KAFKA_DLQ_TOPIC", "ops.dlq", 1);
    setenv("NEURALOPS_KAFKA_SESSION_TIMEOUT_MS", "6000", 1);
    setenv("NEURALOPS_PIPELINE_FLUSH_MS", "50", 1);
    setenv("NEURALOPS_STORAGE_DATA_DIR", data, 1);
    setenv("NEURALOPS_API_LISTEN", "", 1);
    setenv("NEURALOPS_LOG_LEVEL", "warn", 1);
    setenv("NEURALOPS_VECTOR_ACTOR_KEY", "test-ops-actor-key", 1);
    char *argv[] = {"neuralops", "serve", NULL};
    int fd;
    memset(&t, 0, sizeof t);
    pid_t pid = start_limited(4096, NULL, &fd, argv);
    const char *vars[] = {"NEURALOPS_KAFKA_BROKERS", "NEURALOPS_KAFKA_TOPIC",
                          "NEURALOPS_KAFKA_GROUP", "NEURALOPS_KAFKA_DLQ_TOPIC",
                          "NEURALOPS_KAFKA_SESSION_TIMEOUT_MS", "NEURALOPS_PIPELINE_FLUSH_MS",
                          "NEURALOPS_STORAGE_DATA_DIR", "NEURALOPS_API_LISTEN",
                          "NEURALOPS_LOG_LEVEL", "NEURALOPS_VECTOR_ACTOR_KEY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    int st = 0;
    bool ended = false, seen = false;
    for (int i = 0; i < 1800 && !ended && !seen; i++) { /* up to 90 s for the sink to hit it */
        sleep_ms(50);
        drain(fd, &t);
        seen = strstr(t.b, ".jsonl: File too large") != NULL; /* signals or incidents */
        ended = waitpid(pid, &st, WNOHANG) == pid;
    }
    if (ended)
        expect_efbig_reported(st, &t, "serve", "jsonl sink: cannot write");
    if (!seen) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        fail_msg("serve wrote no line about its JSONL files reaching the size limit:\n%s", t.b);
    }
    assert_non_null(strstr(t.b, "offsets not committed")); /* and it said what that means */
    sleep_ms(300);
    assert_int_equal(waitpid(pid, &st, WNOHANG), 0); /* still running: not killed by SIGXFSZ */
    kill(pid, SIGTERM);
    st = wait_reading(pid, fd, &t, 90);
    close(fd);
    /* the last flush fails too: exit 1, with the reason, and never a death by signal */
    expect_efbig_reported(st, &t, "serve (SIGTERM)", "jsonl sink: cannot write");
    rd_kafka_destroy(cluster);
}

/* ---- 17: private data files ------------------------------------------------------------- */

static size_t g_bad;     /* entries the walk found wider than allowed (each printed) */
static size_t g_checked; /* entries walked */

static int check_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    char line[600];
    line[0] = '\0';
    const unsigned mode = (unsigned)(sb->st_mode & 07777);
    if (flag == FTW_D || flag == FTW_DP) {
        if (mode != 0750)
            snprintf(line, sizeof line, "  %04o dir  %s (want 0750)\n", mode, path);
    } else if (flag == FTW_F) {
        if (mode & 0027)
            snprintf(line, sizeof line, "  %04o file %s (want no bits of 0027)\n", mode, path);
    } /* symbolic links (index/current) have no mode of their own */
    g_checked++;
    if (line[0]) {
        print_message("%s", line); /* every one, so a failure lists them all */
        g_bad++;
    }
    return 0;
}

static void test_data_files_private(void **state)
{
    (void)state;
    char data[300], cmd[2048];
    snprintf(data, sizeof data, "%s/demo-data", g_dir);
    snprintf(cmd, sizeof cmd,
             "umask 022 && %s demo --seconds 4 --series 200 --rate 20000 --approve "
             "--listen 127.0.0.1:0 --data-dir %s --index %s/index > %s/demo.out 2> %s/demo.err "
             "< /dev/null",
             NEURALOPS_BIN, data, data, g_dir, g_dir);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "%s/demo.err", g_dir);
        char *err = tu_read_file(cmd);
        fail_msg("demo exited %d:\n%s", rc, err);
    }
    snprintf(cmd, sizeof cmd, "%s/demo.out", g_dir);
    char *out = tu_read_file(cmd);
    assert_non_null(strstr(out, "executed by key:demo-admin")); /* the run wrote its records */
    free(out);
    g_bad = 0;
    g_checked = 0;
    assert_int_equal(nftw(data, check_entry, 16, FTW_PHYS), 0);
    print_message("  %zu entries under the data dir checked\n", g_checked);
    assert_true(g_checked > 20);
    if (g_bad)
        fail_msg("%zu entries under the data dir are wider than allowed (listed above)", g_bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_misspelt_variable_is_named),
        cmocka_unit_test(test_index_dir_follows_the_data_dir),
        cmocka_unit_test(test_default_actor_key_refused),
        cmocka_unit_test(test_keygen_keeps_existing_keys),
        cmocka_unit_test(test_file_size_limit_commands),
        cmocka_unit_test(test_file_size_limit_serve),
        cmocka_unit_test(test_data_files_private),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
