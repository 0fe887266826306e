/*
 * test_config_values.c — what a config value may hold beyond plain text: inline comments,
 * quotes, ${VAR} expansion, @file secrets (core/cfgvalue.c), in the file and the environment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct vals {
    int64_t window;
    double ratio;
    char name[64];
    char token[64];
} vals;

static const nops_cfg_entry entries[] = {
    {"window", NOPS_CFG_INT, offsetof(vals, window), 4, 1000, "60", NULL, NULL, 0, "W."},
    {"ratio", NOPS_CFG_DOUBLE, offsetof(vals, ratio), 0, 1, "0.5", NULL, NULL, 0, "A ratio."},
    {"name", NOPS_CFG_STRING, offsetof(vals, name), 0, 64, "", NULL, NULL, 0, "A name."},
    {"token", NOPS_CFG_STRING, offsetof(vals, token), 0, 64, "", NULL, NULL, NOPS_CFG_SECRET,
     "A secret."},
};

static const nops_cfg_section section = {"t", "Tests.", entries,
                                         sizeof entries / sizeof entries[0], NULL};

static nops_err load(vals *v, const char *text, char *err, size_t cap)
{
    nops_cfg *cfg = nops_cfg_new();
    assert_non_null(cfg);
    assert_int_equal(nops_cfg_add(cfg, &section, v, NULL, 0), NOPS_OK);
    err[0] = '\0';
    nops_err e = nops_cfg_load_buffer(cfg, text, strlen(text), "v.ini", err, cap);
    nops_cfg_destroy(cfg);
    return e;
}

static void expect_ok(const char *text, vals *v)
{
    char err[512];
    nops_err e = load(v, text, err, sizeof err);
    if (e != NOPS_OK)
        fail_msg("\"%s\" refused: %s", text, err);
}

static void expect_err(const char *text, const char *needle, const char *not_shown)
{
    vals v;
    char err[512];
    if (load(&v, text, err, sizeof err) == NOPS_OK)
        fail_msg("\"%s\" accepted", text);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    if (not_shown && strstr(err, not_shown))
        fail_msg("error \"%s\" shows \"%s\"", err, not_shown);
}

/* The README's own example: a comment after the value (it used to be refused). */
static void test_inline_comments(void **state)
{
    (void)state;
    vals v;
    expect_ok("[t]   # the section\nwindow = 60   # rolling window W\nratio = 0.25 ; a ratio\n"
              "name = a#b;c   # '#' and ';' inside a word stay\n", &v);
    assert_int_equal(v.window, 60);
    assert_true(v.ratio == 0.25);
    assert_string_equal(v.name, "a#b;c");
    expect_ok("[t]\nname = # only a comment\n", &v);
    assert_string_equal(v.name, "");
    expect_ok("[t]\nname =\tx\t;tab before\n", &v);
    assert_string_equal(v.name, "x");
}

static void test_quotes(void **state)
{
    (void)state;
    vals v;
    expect_ok("[t]\nname = \"p#ss; word\"   # quoted keeps them\n", &v);
    assert_string_equal(v.name, "p#ss; word");
    expect_ok("[t]\nname = \"say \\\"hi\\\" \\\\ \\n\"\n", &v);
    assert_string_equal(v.name, "say \"hi\" \\ \\n");
    expect_ok("[t]\nname = \"@not-a-file\"\n", &v);
    assert_string_equal(v.name, "@not-a-file");
    expect_ok("[t]\nname = \"\"\n", &v);
    assert_string_equal(v.name, "");
    expect_err("[t]\nname = \"open\n", "no closing quote", NULL);
    expect_err("[t]\nname = \"a\" b\n", "after the closing quote", NULL);
}

static void test_env_expansion(void **state)
{
    (void)state;
    vals v;
    setenv("NOPS_T_WIN", "128", 1);
    setenv("NOPS_T_EMPTY", "", 1);
    unsetenv("NOPS_T_UNSET");
    expect_ok("[t]\nwindow = ${NOPS_T_WIN}  # from the environment\n"
              "name = \"w=${NOPS_T_WIN}${NOPS_T_EMPTY}, $${literal}\"\n", &v);
    assert_int_equal(v.window, 128);
    assert_string_equal(v.name, "w=128, ${literal}");
    expect_err("[t]\nname = ${NOPS_T_UNSET}\n", "NOPS_T_UNSET is not set", NULL);
    expect_err("[t]\nname = ${NOPS_T_UNSET}\n", "v.ini:2", NULL);
    expect_err("[t]\nname = ${oops\n", "variable name", NULL);
    expect_err("[t]\nname = ${}\n", "variable name", NULL);
    expect_err("[t]\nname = ${1X}\n", "variable name", NULL);
    /* an expanded value is checked like any other */
    setenv("NOPS_T_WIN", "3", 1);
    expect_err("[t]\nwindow = ${NOPS_T_WIN}\n", "outside", NULL);
    unsetenv("NOPS_T_WIN");
    unsetenv("NOPS_T_EMPTY");
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_file_values(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops_cfgval_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sec[128], crlf[128], bad[128], big[128], text[512];
    snprintf(sec, sizeof sec, "%s/token", dir);
    snprintf(crlf, sizeof crlf, "%s/crlf", dir);
    snprintf(bad, sizeof bad, "%s/bad", dir);
    snprintf(big, sizeof big, "%s/big", dir);
    write_file(sec, "s3cr#t;x\n");
    write_file(crlf, "two\r\n");
    write_file(bad, "not-a-number\n");
    vals v;
    snprintf(text, sizeof text, "[t]\ntoken = @%s   # a mounted secret\nname = @%s\n", sec, crlf);
    expect_ok(text, &v);
    assert_string_equal(v.token, "s3cr#t;x");
    assert_string_equal(v.name, "two");
    /* the path may come from the environment */
    setenv("NOPS_T_DIR", dir, 1);
    expect_ok("[t]\ntoken = @${NOPS_T_DIR}/token\nname = @@literal\n", &v);
    assert_string_equal(v.token, "s3cr#t;x");
    assert_string_equal(v.name, "@literal");
    unsetenv("NOPS_T_DIR");
    snprintf(text, sizeof text, "[t]\ntoken = @%s/missing\n", dir);
    expect_err(text, "No such file", NULL);
    expect_err(text, "t.token", NULL);
    expect_err("[t]\ntoken = @/tmp\n", "not a regular file", NULL);
    /* refused content is not repeated in the message */
    snprintf(text, sizeof text, "[t]\nwindow = @%s\n", bad);
    expect_err(text, "not shown", "not-a-number");
    FILE *f = fopen(big, "w");
    assert_non_null(f);
    for (int i = 0; i < 70 * 1024; i++)
        fputc('x', f);
    fclose(f);
    snprintf(text, sizeof text, "[t]\nname = @%s\n", big);
    expect_err(text, "too large", NULL);
    unlink(sec);
    unlink(crlf);
    unlink(bad);
    unlink(big);
    rmdir(dir);
}

/* NEURALOPS_T_TOKEN=@/path reads the file too; the environment has no comments or ${}. */
static void test_env_settings(void **state)
{
    (void)state;
    char path[] = "/tmp/nops_cfgenv_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "from-file\n", 10), 10);
    close(fd);
    vals v;
    nops_cfg *cfg = nops_cfg_new();
    assert_int_equal(nops_cfg_add(cfg, &section, &v, NULL, 0), NOPS_OK);
    char at[64], err[256];
    snprintf(at, sizeof at, "@%s", path);
    setenv("NEURALOPS_T_TOKEN", at, 1);
    setenv("NEURALOPS_T_NAME", "x # y ${Z}", 1);
    assert_int_equal(nops_cfg_apply_env(cfg, err, sizeof err), NOPS_OK);
    assert_string_equal(v.token, "from-file");
    assert_string_equal(v.name, "x # y ${Z}");
    unlink(path);
    assert_int_equal(nops_cfg_apply_env(cfg, err, sizeof err), NOPS_IO);
    assert_non_null(strstr(err, "NEURALOPS_T_TOKEN"));
    unsetenv("NEURALOPS_T_TOKEN");
    unsetenv("NEURALOPS_T_NAME");
    nops_cfg_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline_comments), cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_env_expansion),   cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_env_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
