/* test_core_secure.c — the engine secret, UTF-8 checks and private files (core/secret.c,
 * core/text.c, core/files.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/nops_core_sec_XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_secret_created_private_and_stable(void **state)
{
    (void)state;
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/cfg/neuralops/engine.key", tmpdir);
    mode_t old = umask(0);
    nops_secret *a = nops_secret_load(path, true, err, sizeof err);
    umask(old);
    assert_non_null(a);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char m1[65], m2[65], m3[65];
    nops_secret_mac_hex(a, "approval", "plan", 4, m1);
    /* a second load reads the same key: never replaced */
    nops_secret *b = nops_secret_load(path, true, err, sizeof err);
    assert_non_null(b);
    nops_secret_mac_hex(b, "approval", "plan", 4, m2);
    assert_string_equal(m1, m2);
    /* another purpose, another MAC */
    nops_secret_mac_hex(b, "audit", "plan", 4, m3);
    assert_string_not_equal(m1, m3);
    assert_true(nops_secret_verify_hex(a, "approval", "plan", 4, m1));
    assert_false(nops_secret_verify_hex(a, "audit", "plan", 4, m1));
    assert_false(nops_secret_verify_hex(a, "approval", "plam", 4, m1));
    assert_false(nops_secret_verify_hex(a, "approval", "plan", 4, "00"));
    assert_false(nops_secret_verify_hex(a, "approval", "plan", 4, NULL));
    /* a key inside a directory is reported */
    assert_false(nops_secret_outside(a, tmpdir, err, sizeof err));
    assert_non_null(strstr(err, "inside"));
    assert_true(nops_secret_outside(a, "/usr", err, sizeof err));
    nops_secret_destroy(a);
    nops_secret_destroy(b);
    /* a different key gives a different MAC */
    nops_secret *c = nops_secret_from_bytes("other", 5);
    assert_false(nops_secret_verify_hex(c, "approval", "plan", 4, m1));
    nops_secret_destroy(c);
    nops_secret_destroy(NULL);
}

static void test_secret_refuses_bad_files(void **state)
{
    (void)state;
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/wide.key", tmpdir);
    FILE *f = fopen(path, "w");
    fprintf(f, "%064d\n", 7);
    fclose(f);
    chmod(path, 0644);
    assert_null(nops_secret_load(path, false, err, sizeof err));
    assert_non_null(strstr(err, "readable by others"));
    chmod(path, 0600);
    nops_secret *s = nops_secret_load(path, false, err, sizeof err);
    assert_non_null(s);
    nops_secret_destroy(s);
    snprintf(path, sizeof path, "%s/short.key", tmpdir);
    f = fopen(path, "w");
    fprintf(f, "abcd\n");
    fclose(f);
    chmod(path, 0600);
    assert_null(nops_secret_load(path, false, err, sizeof err));
    assert_non_null(strstr(err, "short"));
    snprintf(path, sizeof path, "%s/missing.key", tmpdir);
    assert_null(nops_secret_load(path, false, err, sizeof err));
    assert_null(nops_secret_load("", true, err, sizeof err));
}

static void test_security_key_path(void **state)
{
    (void)state;
    nops_security_params p = {.key_file = "/etc/x.key"};
    char out[256];
    nops_security_key_path(&p, out, sizeof out);
    assert_string_equal(out, "/etc/x.key");
    p.key_file[0] = '\0';
    setenv("XDG_CONFIG_HOME", "/xdg", 1);
    nops_security_key_path(&p, out, sizeof out);
    assert_string_equal(out, "/xdg/neuralops/engine.key");
    unsetenv("XDG_CONFIG_HOME");
    setenv("HOME", "/home/u", 1);
    nops_security_key_path(&p, out, sizeof out);
    assert_string_equal(out, "/home/u/.config/neuralops/engine.key");
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(nops_utf8_valid("plain", 5));
    assert_true(nops_utf8_valid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14));
    assert_false(nops_utf8_valid("\xC0\xAF", 2));         /* overlong */
    assert_false(nops_utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    assert_false(nops_utf8_valid("\xF4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(nops_utf8_valid("\xE2\x82", 2));         /* cut */
    assert_false(nops_utf8_valid("\xFF", 1));
    assert_int_equal(nops_utf8_valid_prefix("ab\xFF" "c", 4), 2);

    char out[64];
    size_t bad = 0;
    size_t n = nops_utf8_sanitize("a\xFF" "b\x00" "c", 5, out, sizeof out, &bad);
    assert_int_equal(bad, 2);
    assert_int_equal(n, 9);
    assert_string_equal(out, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c");
    assert_true(nops_utf8_valid(out, n));
    /* a full buffer ends on a character boundary */
    n = nops_utf8_sanitize("\xE2\x82\xAC\xE2\x82\xAC", 6, out, 6, &bad);
    assert_int_equal(n, 3);
    assert_int_equal(bad, 0);
    /* cut never splits a character */
    assert_int_equal(nops_utf8_cut("ab\xE2\x82\xAC", 5, 3), 2);
    assert_int_equal(nops_utf8_cut("ab\xE2\x82\xAC", 5, 4), 2);
    assert_int_equal(nops_utf8_cut("ab\xE2\x82\xAC", 5, 5), 5);
    assert_int_equal(nops_utf8_cut("abcdef", 6, 4), 4);
}

static void test_private_files(void **state)
{
    (void)state;
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/data", tmpdir);
    mode_t old = umask(0);
    assert_int_equal(nops_dir_make(dir), 0);
    assert_int_equal(nops_dir_make(dir), 0); /* exists: fine */
    snprintf(path, sizeof path, "%s/a.jsonl", dir);
    FILE *f = nops_file_fopen(path, "a");
    umask(old);
    assert_non_null(f);
    int fl = fcntl(fileno(f), F_GETFD);
    assert_true(fl & FD_CLOEXEC);
    fputs("x\n", f);
    fclose(f);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    /* an existing world-readable file of ours is narrowed when opened for writing */
    chmod(path, 0666);
    int fd = nops_file_open(path, O_WRONLY | O_APPEND | O_CREAT);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    /* replace: new content, private mode, no temp file left */
    assert_int_equal(nops_file_replace(path, "new\n", 4), 0);
    f = fopen(path, "r");
    char line[16] = {0};
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "new\n");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    /* a symbolic link planted at the temp name does not redirect the write */
    char tmpname[400], victim[300];
    snprintf(victim, sizeof victim, "%s/victim", tmpdir);
    f = fopen(victim, "w");
    fputs("keep\n", f);
    fclose(f);
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(symlink(victim, tmpname), 0);
    assert_int_equal(nops_file_replace(path, "newer\n", 6), 0);
    f = fopen(victim, "r");
    memset(line, 0, sizeof line);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "keep\n");
    f = fopen(path, "r");
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "newer\n");
    assert_int_not_equal(access(tmpname, F_OK), 0);
    /* a file where a directory should be is an error */
    assert_int_equal(nops_dir_make(path), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_created_private_and_stable),
        cmocka_unit_test(test_secret_refuses_bad_files),
        cmocka_unit_test(test_security_key_path),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_private_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
