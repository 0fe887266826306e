/*
 * test_core.c — errors, logging, and the config system (the allocation layer: test_alloc.c).
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

/* ---- errors ----------------------------------------------------------------------------- */

/* Comma-separated setting lists: trimmed items, ASCII case ignored, "*" for every word, no
 * prefix matches. */
static void test_list_has(void **state)
{
    (void)state;
    assert_true(nops_list_has("warning,critical", "critical"));
    assert_true(nops_list_has(" info , Warning ", "warning"));
    assert_true(nops_list_has("*", "anything"));
    assert_false(nops_list_has("warning,critical", "crit"));
    assert_false(nops_list_has("warnings", "warning"));
    assert_false(nops_list_has("", "info"));
    assert_false(nops_list_has(",,", "info"));
}

static void test_errors(void **state)
{
    assert_string_equal(nops_strerror(NOPS_OK), "success");
    assert_string_equal(nops_err_name(NOPS_PARSE), "NOPS_PARSE");
    for (int e = 0; e >= NOPS_INTERNAL; e--) {
        assert_non_null(nops_strerror((nops_err)e));
        assert_string_not_equal(nops_strerror((nops_err)e), "unknown error");
        assert_int_equal(strncmp(nops_err_name((nops_err)e), "NOPS_", 5), 0);
    }
    assert_string_equal(nops_strerror((nops_err)-999), "unknown error");
    char buf[8];
    nops_errf(buf, sizeof buf, "%s", "truncated message");
    assert_string_equal(buf, "truncat");
    nops_errf(NULL, 0, "no crash");
}

/* ---- logging ---------------------------------------------------------------------------- */

typedef struct captured {
    char lines[8][1200];
    int n;
} captured;

static void sink(void *ud, nops_log_level level, const char *line)
{
    captured *c = ud;
    if (c->n < 8)
        snprintf(c->lines[c->n++], sizeof c->lines[0], "%s", line);
}

static void test_log_levels_and_json(void **state)
{
    captured c = {0};
    nops_log_set_sink(sink, &c);
    nops_log_configure(NOPS_LOG_WARN, NOPS_LOG_TEXT);
    NOPS_INFO("test", "hidden %d", 1);
    NOPS_WARN("test", "shown %d", 2);
    assert_int_equal(c.n, 1);
    assert_non_null(strstr(c.lines[0], "warn  test: shown 2"));
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_JSON);
    NOPS_ERROR("api", "quote \" backslash \\ newline \n tab \t");
    assert_int_equal(c.n, 2);
    assert_non_null(strstr(c.lines[1], "\"level\":\"error\",\"module\":\"api\""));
    assert_non_null(strstr(c.lines[1], "quote \\\" backslash \\\\ newline \\n tab \\u0009"));
    nops_log_level lv;
    assert_int_equal(nops_log_level_parse("ERROR", &lv), NOPS_OK);
    assert_int_equal(lv, NOPS_LOG_ERROR);
    assert_int_equal(nops_log_level_parse("loud", &lv), NOPS_INVAL);
    nops_log_set_sink(NULL, NULL);
    nops_log_configure(NOPS_LOG_INFO, NOPS_LOG_TEXT);
}

/* No byte of `line` ends a line or is a control character. */
static void assert_one_line(const char *line)
{
    for (const unsigned char *p = (const unsigned char *)line; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            fail_msg("control byte 0x%02x in \"%s\"", *p, line);
    assert_null(strstr(line, "\xE2\x80\xA8")); /* U+2028 */
    assert_null(strstr(line, "\xC2\x85"));     /* U+0085 */
}

/* Whatever a message holds (a forged log line, a multi-line database error, terminal escapes,
 * bytes that are not UTF-8), it is one line in both formats. */
static void test_log_one_line_per_entry(void **state)
{
    (void)state;
    const char *forged = "user alice\n2026-01-01T00:00:00.000Z info  http: POST /x 200\r\n"
                         "ERROR:  relation \"x\" does not exist\nLINE 1: SELECT\n\t^ \x1b[31m"
                         "red\x7f \xff\xfe half \xE2\x80\xA8 sep \xC2\x85 nel";
    captured c = {0};
    nops_log_set_sink(sink, &c);
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_TEXT);
    NOPS_WARN("pg", "%s", forged);
    nops_log_kafka(NULL, 4, "FAIL", "broker down\nforged line");
    NOPS_INFO("mod\nule", "x");
    assert_int_equal(c.n, 3);
    for (int i = 0; i < 3; i++)
        assert_one_line(c.lines[i]);
    assert_non_null(strstr(c.lines[0], "warn  pg: user alice\\n2026-01-01T00:00:00.000Z info  "
                                       "http: POST /x 200\\r\\nERROR:  relation \"x\" does not "
                                       "exist\\nLINE 1: SELECT\\n\\t^ \\x1b[31mred\\x7f"));
    assert_non_null(strstr(c.lines[0], "\\u2028 sep \\u0085 nel"));
    assert_non_null(strstr(c.lines[1], "warn  kafka: FAIL: broker down\\nforged line"));
    assert_non_null(strstr(c.lines[2], "mod\\nule: x"));
    c.n = 0;
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_JSON);
    NOPS_WARN("pg", "%s", forged);
    nops_log_kafka(NULL, 7, "BROKER", "line\none");
    assert_int_equal(c.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_one_line(c.lines[i]);
        assert_true(nops_utf8_valid(c.lines[i], strlen(c.lines[i]))); /* stays valid JSON */
    }
    assert_non_null(strstr(c.lines[0], "user alice\\n2026-01-01T00:00:00.000Z info  http: POST "
                                       "/x 200\\u000d\\nERROR:  relation \\\"x\\\" does not "
                                       "exist\\nLINE 1: SELECT\\n\\u0009^ \\u001b[31mred\\u007f "
                                       "\xEF\xBF\xBD\xEF\xBF\xBD half \\u2028 sep \\u0085 nel"));
    assert_non_null(strstr(c.lines[1], "\"level\":\"debug\",\"module\":\"kafka\",\"msg\":"
                                       "\"BROKER: line\\none\""));
    nops_log_set_sink(NULL, NULL);
    nops_log_configure(NOPS_LOG_INFO, NOPS_LOG_TEXT);
}

/* ---- config ----------------------------------------------------------------------------- */

typedef struct demo_cfg {
    int64_t workers;
    double ratio;
    bool enabled;
    char name[16];
    int mode;
    char token[32];
} demo_cfg;

static const nops_cfg_entry demo_entries[] = {
    {"workers", NOPS_CFG_INT, offsetof(demo_cfg, workers), 1, 64, "4", NULL, "workers", 0,
     "Worker threads."},
    {"ratio", NOPS_CFG_DOUBLE, offsetof(demo_cfg, ratio), 0, 1, "0.5", NULL, NULL, 0, "A ratio."},
    {"enabled", NOPS_CFG_BOOL, offsetof(demo_cfg, enabled), 0, 0, "true", NULL, NULL, 0,
     "On or off."},
    {"name", NOPS_CFG_STRING, offsetof(demo_cfg, name), 0, 16, "alpha", NULL, NULL, 0, "A name."},
    {"mode", NOPS_CFG_ENUM, offsetof(demo_cfg, mode), 0, 0, "fast", "fast|safe|off", "mode", 0,
     "A mode."},
    {"token", NOPS_CFG_STRING, offsetof(demo_cfg, token), 0, 32, "", NULL, NULL, NOPS_CFG_SECRET,
     "A secret."},
};

static nops_err demo_finalize(void *base, char *errstr, size_t errstr_size)
{
    demo_cfg *c = base;
    if (!c->enabled && c->mode == 0) {
        nops_errf(errstr, errstr_size, "demo.mode=fast needs demo.enabled=true");
        return NOPS_CONFIG;
    }
    return NOPS_OK;
}

static const nops_cfg_section demo_section = {
    "demo", "A section for tests.", demo_entries, sizeof demo_entries / sizeof demo_entries[0],
    demo_finalize,
};

static nops_cfg *make_cfg(demo_cfg *c)
{
    nops_cfg *cfg = nops_cfg_new();
    assert_non_null(cfg);
    assert_int_equal(nops_cfg_add(cfg, &demo_section, c, NULL, 0), NOPS_OK);
    return cfg;
}

static void test_config_defaults_and_file(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    assert_int_equal(c.workers, 4);
    assert_float_equal(c.ratio, 0.5, 0);
    assert_true(c.enabled);
    assert_string_equal(c.name, "alpha");
    assert_int_equal(c.mode, 0);
    const char *text = "# comment\n\n[demo]\r\nworkers = 8\n  ratio=0.25  \n"
                       "enabled = off\nname = \"beta\"\nmode = SAFE\n; another comment\n";
    char err[256];
    assert_int_equal(nops_cfg_load_buffer(cfg, text, strlen(text), "t.ini", err, sizeof err),
                     NOPS_OK);
    assert_int_equal(c.workers, 8);
    assert_float_equal(c.ratio, 0.25, 0);
    assert_false(c.enabled);
    assert_string_equal(c.name, "beta");
    assert_int_equal(c.mode, 1);
    assert_int_equal(nops_cfg_finalize(cfg, err, sizeof err), NOPS_OK);
    nops_cfg_destroy(cfg);
}

static void expect_error(const char *text, nops_err code, const char *needle)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    char err[256] = "";
    assert_int_equal(nops_cfg_load_buffer(cfg, text, strlen(text), "bad.ini", err, sizeof err),
                     code);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    nops_cfg_destroy(cfg);
}

static void test_config_errors_name_the_line(void **state)
{
    expect_error("[demo]\nworkers = many\n", NOPS_PARSE, "bad.ini:2");
    expect_error("[demo]\nworkers = 0\n", NOPS_RANGE, "outside");
    expect_error("[demo]\nworkers = 99999999999999999999\n", NOPS_PARSE, "integer");
    expect_error("[demo]\nratio = nan\n", NOPS_PARSE, "finite");
    expect_error("[demo]\nratio = 1.5\n", NOPS_RANGE, "ratio");
    expect_error("[demo]\nenabled = maybe\n", NOPS_PARSE, "true or false");
    expect_error("[demo]\nname = 0123456789abcdefXYZ\n", NOPS_RANGE, "at most 15");
    expect_error("[demo]\nmode = turbo\n", NOPS_PARSE, "fast|safe|off");
    expect_error("[demo]\ncolour = red\n", NOPS_NOTFOUND, "unknown key \"colour\"");
    expect_error("[nope]\n", NOPS_NOTFOUND, "unknown section [nope]");
    expect_error("workers = 2\n", NOPS_PARSE, "outside any [section]");
    expect_error("[demo\n", NOPS_PARSE, "expected [section]");
    expect_error("[demo]\njust words\n", NOPS_PARSE, "bad.ini:2: expected key = value");
    {
        demo_cfg c;
        nops_cfg *cfg = make_cfg(&c);
        char err[128] = "";
        static const char nul[] = "[demo]\nworkers = 2\0 9\n";
        assert_int_equal(nops_cfg_load_buffer(cfg, nul, sizeof nul - 1, "n.ini", err, sizeof err),
                         NOPS_PARSE);
        assert_non_null(strstr(err, "n.ini:2: NUL"));
        nops_cfg_destroy(cfg);
    }
    char big[5000];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = '\0';
    expect_error(big, NOPS_PARSE, "longer than");
}

static void test_config_env_and_flags_precedence(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    char err[256];
    const char *text = "[demo]\nworkers = 8\nmode = safe\n";
    assert_int_equal(nops_cfg_load_buffer(cfg, text, strlen(text), "f", err, sizeof err),
                     NOPS_OK);
    setenv("NEURALOPS_DEMO_WORKERS", "16", 1);
    assert_int_equal(nops_cfg_apply_env(cfg, err, sizeof err), NOPS_OK);
    assert_int_equal(c.workers, 16); /* env beats file */
    assert_int_equal(c.mode, 1);     /* untouched by env */
    bool takes;
    const char *target = nops_cfg_flag_target(cfg, "workers", &takes);
    assert_non_null(target);
    assert_string_equal(target, "demo.workers");
    assert_int_equal(nops_cfg_set(cfg, target, "32", "--workers", err, sizeof err), NOPS_OK);
    assert_int_equal(c.workers, 32); /* flag beats env */
    assert_non_null(nops_cfg_flag_target(cfg, "demo.ratio", NULL));
    assert_null(nops_cfg_flag_target(cfg, "nonsense", NULL));
    assert_int_equal(nops_cfg_set(cfg, "demo.workers", "0", "--workers", err, sizeof err),
                     NOPS_RANGE);
    assert_non_null(strstr(err, "--workers"));
    setenv("NEURALOPS_DEMO_RATIO", "lots", 1);
    assert_int_equal(nops_cfg_apply_env(cfg, err, sizeof err), NOPS_PARSE);
    assert_non_null(strstr(err, "NEURALOPS_DEMO_RATIO"));
    unsetenv("NEURALOPS_DEMO_RATIO");
    unsetenv("NEURALOPS_DEMO_WORKERS");
    /* cross-field check */
    assert_int_equal(nops_cfg_set(cfg, "demo.enabled", "no", "x", err, sizeof err), NOPS_OK);
    assert_int_equal(nops_cfg_set(cfg, "demo.mode", "fast", "x", err, sizeof err), NOPS_OK);
    assert_int_equal(nops_cfg_finalize(cfg, err, sizeof err), NOPS_CONFIG);
    assert_non_null(strstr(err, "needs demo.enabled"));
    nops_cfg_destroy(cfg);
}

static void test_config_docs_and_dump(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    char err[128];
    assert_int_equal(nops_cfg_set(cfg, "demo.token", "s3cr3t", "x", err, sizeof err), NOPS_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nops_cfg_print_markdown(cfg, f);
    nops_cfg_print_values(cfg, f);
    nops_cfg_print_flags(cfg, f);
    fclose(f);
    for (size_t i = 0; i < demo_section.n_entries; i++)
        assert_non_null(strstr(buf, demo_entries[i].key));
    assert_non_null(strstr(buf, "`NEURALOPS_DEMO_WORKERS`"));
    assert_non_null(strstr(buf, "workers = 4"));
    assert_non_null(strstr(buf, "token = ********"));
    assert_null(strstr(buf, "s3cr3t"));
    assert_non_null(strstr(buf, "--workers"));
    free(buf);
    nops_cfg_destroy(cfg);
}

static void test_config_file_io(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    char err[256];
    assert_int_equal(nops_cfg_load_file(cfg, "/nonexistent/neuralops.ini", err, sizeof err),
                     NOPS_IO);
    assert_non_null(strstr(err, "/nonexistent/neuralops.ini"));
    char path[] = "/tmp/nops-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("[demo]\nworkers = 3\n", f);
    fclose(f);
    assert_int_equal(nops_cfg_load_file(cfg, path, err, sizeof err), NOPS_OK);
    assert_int_equal(c.workers, 3);
    unlink(path);
    nops_cfg_destroy(cfg);
}

/* ---- unknown NEURALOPS_* variables (a typo must not leave a default in force) ------------ */

typedef struct env_lines {
    char lines[16][1200]; /* warnings logged */
    int n;                /* how many */
} env_lines;

static void env_sink(void *ud, nops_log_level level, const char *line)
{
    env_lines *c = ud;
    (void)level;
    if (c->n < 16)
        snprintf(c->lines[c->n++], sizeof c->lines[0], "%s", line);
}

/* The warning line that names `var`, or NULL. */
static const char *env_warning(const env_lines *c, const char *var)
{
    for (int i = 0; i < c->n; i++) {
        const char *p = strstr(c->lines[i], var);
        if (p && (p[strlen(var)] == ' ' || p[strlen(var)] == ':'))
            return c->lines[i];
    }
    return NULL;
}

static void test_config_unknown_env_warned(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    env_lines got = {0};
    nops_log_set_sink(env_sink, &got);
    const size_t before = nops_cfg_warn_unknown_env(cfg); /* whatever the runner's env holds */
    got.n = 0;
    setenv("NEURALOPS_DEMO_WORKRS", "s3cr3t-value", 1);   /* a typo */
    setenv("neuralops_demo_ratio", "0.2", 1);              /* wrong case: getenv misses it */
    setenv("NEURALOPS_NOTHING_LIKE_IT_AT_ALL", "1", 1);    /* no setting is close */
    setenv("NEURALOPS_TEST_SOMETHING", "1", 1);            /* the test harness's */
    setenv("NEURALOPS_DRY_RUN", "1", 1);                   /* what a playbook step is given */
    setenv("NEURALOPS_SERVICE", "checkout", 1);
    setenv("NEURALOPS_DEMO_WORKERS", "5", 1);              /* a setting */
    assert_int_equal(nops_cfg_warn_unknown_env(cfg), before + 3);
    const char *typo = env_warning(&got, "NEURALOPS_DEMO_WORKRS");
    assert_non_null(typo);
    assert_non_null(strstr(typo, "warn"));
    assert_non_null(strstr(typo, "did you mean NEURALOPS_DEMO_WORKERS?"));
    assert_null(strstr(typo, "s3cr3t")); /* never the value */
    const char *lower = env_warning(&got, "neuralops_demo_ratio");
    assert_non_null(lower);
    assert_non_null(strstr(lower, "did you mean NEURALOPS_DEMO_RATIO?"));
    const char *far = env_warning(&got, "NEURALOPS_NOTHING_LIKE_IT_AT_ALL");
    assert_non_null(far);
    assert_non_null(strstr(far, "the closest is NEURALOPS_DEMO_"));
    assert_null(env_warning(&got, "NEURALOPS_TEST_SOMETHING"));
    assert_null(env_warning(&got, "NEURALOPS_DRY_RUN"));
    assert_null(env_warning(&got, "NEURALOPS_SERVICE"));
    assert_null(env_warning(&got, "NEURALOPS_DEMO_WORKERS"));
    const char *unset[] = {"NEURALOPS_DEMO_WORKRS", "neuralops_demo_ratio",
                           "NEURALOPS_NOTHING_LIKE_IT_AT_ALL", "NEURALOPS_TEST_SOMETHING",
                           "NEURALOPS_DRY_RUN", "NEURALOPS_SERVICE", "NEURALOPS_DEMO_WORKERS"};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
    got.n = 0;
    assert_int_equal(nops_cfg_warn_unknown_env(cfg), before);
    nops_log_set_sink(NULL, NULL);
    nops_cfg_destroy(cfg);
}

static void test_config_default_text(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    char err[128];
    assert_int_equal(nops_cfg_set(cfg, "demo.name", "beta", "x", err, sizeof err), NOPS_OK);
    assert_string_equal(nops_cfg_default(cfg, "demo.name"), "alpha"); /* the table's, not now */
    assert_string_equal(nops_cfg_default(cfg, "demo.workers"), "4");
    assert_null(nops_cfg_default(cfg, "demo.nothing"));
    assert_null(nops_cfg_default(cfg, "nosection"));
    nops_cfg_destroy(cfg);
}

/* Hex and SHA-256 against known values. */
static void test_hex_and_sha256(void **state)
{
    (void)state;
    char hex[65];
    nops_hex("\x00\x7f\xff", 3, hex);
    assert_string_equal(hex, "007fff");
    nops_hex("", 0, hex);
    assert_string_equal(hex, "");
    assert_true(nops_sha256_hex("abc", 3, hex));
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* One line per 10 s: the events in between are counted and handed to the next line. */
static void test_ratelimit(void **state)
{
    (void)state;
    nops_ratelimit rl = {0};
    uint64_t missed = 99;
    const int64_t t0 = 5 * NOPS_RATELIMIT_NS;
    assert_true(nops_ratelimit_due(&rl, t0, &missed));
    assert_int_equal(missed, 0);
    assert_false(nops_ratelimit_due(&rl, t0 + 1, &missed));
    assert_false(nops_ratelimit_due(&rl, t0 + NOPS_RATELIMIT_NS - 1, &missed));
    assert_true(nops_ratelimit_due(&rl, t0 + NOPS_RATELIMIT_NS, &missed));
    assert_int_equal(missed, 2);
    /* a clock that starts at 0 still limits */
    nops_ratelimit z = {0};
    assert_true(nops_ratelimit_due(&z, 0, &missed));
    assert_false(nops_ratelimit_due(&z, 1, &missed));
}

/* A canonical key decodes back into the labels it was built from, escapes undone. */
static void test_series_key_round_trip(void **state)
{
    (void)state;
    nops_label in[] = {{"region", 6, "eu", 2}, {"path", 4, "a\"b\\c\nd", 7}, {"az", 2, "b", 1}};
    char key[NOPS_KEY_MAX];
    size_t len;
    assert_int_equal(nops_series_key("m", 1, in, 3, key, sizeof key, &len), NOPS_OK);
    assert_string_equal(key, "m{az=\"b\",path=\"a\\\"b\\\\c\\nd\",region=\"eu\"}");
    nops_signal sig;
    assert_int_equal(nops_signal_set_series(&sig, key), NOPS_OK);
    assert_string_equal(sig.series, key);
    assert_int_equal(sig.metric_len, 1);
    assert_int_equal(sig.labels.n, 3);
    for (uint32_t i = 0; i < 3; i++) { /* sorted by key, as in the key */
        nops_label l = nops_labels_at(&sig.labels, i);
        assert_int_equal(l.key_len, in[i].key_len);
        assert_memory_equal(l.key, in[i].key, l.key_len);
        assert_int_equal(l.value_len, in[i].value_len);
        assert_memory_equal(l.value, in[i].value, l.value_len);
        assert_true(nops_labels_has(&sig.labels, &in[i]));
    }
    nops_label other = {"az", 2, "c", 1};
    assert_false(nops_labels_has(&sig.labels, &other));
    size_t nl;
    assert_int_equal(nops_series_key_labels("up", &nl, NULL), NOPS_OK);
    assert_int_equal(nl, 2);
    /* a key that cannot be split keeps its identity: the whole text as the name, no labels */
    assert_int_equal(nops_signal_set_series(&sig, "m{a=\"b\""), NOPS_PARSE);
    assert_int_equal(sig.labels.n, 0);
    assert_string_equal(sig.series, "m{a=\"b\"");
    assert_int_equal(sig.metric_len, strlen("m{a=\"b\""));
    const char *unsplit = "cpu_v{a=b=\"1\",host=\"web-1\"}"; /* what `cpu,a\=b=1,...` gave */
    assert_int_equal(nops_signal_set_series(&sig, unsplit), NOPS_PARSE);
    assert_string_equal(sig.series, unsplit);
    assert_int_equal(sig.metric_len, strlen(unsplit));
    assert_int_equal(sig.labels.n, 0);
    /* names and label keys that a key could not be split back into are refused */
    nops_label eq[] = {{"a=b", 3, "1", 1}, {"host", 4, "web-1", 5}};
    assert_int_equal(nops_series_key("cpu_v", 5, eq, 2, key, sizeof key, &len), NOPS_INVAL);
    nops_label dc[] = {{"dc", 2, "1", 1}};
    assert_int_equal(nops_series_key("cpu{x_v", 7, dc, 1, key, sizeof key, &len), NOPS_INVAL);
    assert_int_equal(nops_series_key("cpu}x", 5, NULL, 0, key, sizeof key, &len), NOPS_INVAL);
    assert_int_equal(nops_series_key("cpu\"x", 5, NULL, 0, key, sizeof key, &len), NOPS_INVAL);
    const char *bad_keys[] = {"a\"b", "a,b", "a{b", "a}b", "a\nb", ""};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        nops_label l = {bad_keys[i], strlen(bad_keys[i]), "v", 1};
        assert_false(nops_label_key_ok(l.key, l.key_len));
        assert_int_equal(nops_series_key("m", 1, &l, 1, key, sizeof key, &len), NOPS_INVAL);
    }
    assert_true(nops_label_key_ok("host.name-1/x", 13));
    assert_true(nops_series_name_ok("cpu.usage-1/x:y", 15));
    assert_false(nops_series_name_ok("cpu{x", 5));
    assert_int_equal(nops_series_key_labels("{a=\"b\"}", &nl, NULL), NOPS_PARSE);
    assert_int_equal(nops_series_key_labels("m{a=b}", &nl, NULL), NOPS_PARSE);
}

/* A label set refuses a pair past its bounds and stays as it was. */
static void test_labels_bounds(void **state)
{
    (void)state;
    nops_labels ls = {0};
    for (int i = 0; i < NOPS_LABELS_MAX; i++)
        assert_int_equal(nops_labels_add(&ls, "k", 1, "v", 1), NOPS_OK);
    assert_int_equal(nops_labels_add(&ls, "k", 1, "v", 1), NOPS_FULL);
    assert_int_equal(ls.n, NOPS_LABELS_MAX);
    nops_labels big = {0};
    char v[NOPS_KEY_MAX];
    memset(v, 'x', sizeof v);
    assert_int_equal(nops_labels_add(&big, "k", 1, v, sizeof v), NOPS_FULL);
    assert_int_equal(big.n, 0);
    assert_int_equal(nops_labels_add(&big, "k", 1, v, sizeof v - 1), NOPS_OK);
    assert_int_equal(big.used, sizeof v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_has),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_hex_and_sha256),
        cmocka_unit_test(test_series_key_round_trip),
        cmocka_unit_test(test_labels_bounds),
        cmocka_unit_test(test_log_levels_and_json),
        cmocka_unit_test(test_log_one_line_per_entry),
        cmocka_unit_test(test_config_defaults_and_file),
        cmocka_unit_test(test_config_errors_name_the_line),
        cmocka_unit_test(test_config_env_and_flags_precedence),
        cmocka_unit_test(test_config_docs_and_dump),
        cmocka_unit_test(test_config_file_io),
        cmocka_unit_test(test_config_unknown_env_warned),
        cmocka_unit_test(test_config_default_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
