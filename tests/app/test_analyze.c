/*
 * test_analyze.c — the `neuralops` binary end to end: `analyze` on good and bad input (against
 * the double reference), its flags, config file and environment, `config docs` against
 * docs/configuration.md, and smoke runs of `neuralops-bench detect` and `loop`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/testutil.h"

#include "tests/detect/ref.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct result {
    int status;  /* exit status */
    char *out;   /* stdout */
    char *err;   /* stderr */
} result;


/* Run `bin args` with `input` on stdin (NULL: no stdin redirection) and `env` prefix. */
static result run(const char *env, const char *bin, const char *args, const char *input)
{
    char in[] = "/tmp/nops-in-XXXXXX", out[] = "/tmp/nops-out-XXXXXX",
         err[] = "/tmp/nops-err-XXXXXX";
    int fi = mkstemp(in), fo = mkstemp(out), fe = mkstemp(err);
    assert_true(fi >= 0 && fo >= 0 && fe >= 0);
    if (input) {
        size_t len = strlen(input);
        assert_int_equal(write(fi, input, len), (ssize_t)len);
    }
    close(fi);
    close(fo);
    close(fe);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s %s < %s > %s 2> %s", env ? env : "", bin, args,
             input ? in : "/dev/null", out, err);
    int st = system(cmd);
    result r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, tu_read_file(out), tu_read_file(err)};
    unlink(in);
    unlink(out);
    unlink(err);
    return r;
}

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
}


/* A series with noise, spikes and a shift, as CSV text; values kept for the reference. */
static char *make_csv(int n, float *vals, bool header)
{
    size_t cap = (size_t)n * 64 + 64, len = 0;
    char *b = malloc(cap);
    if (header)
        len += (size_t)snprintf(b, cap, "timestamp,value\n");
    uint64_t s = 12345;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0 - 0.5;
        double v = 250.0 + 4.0 * u + (i % 211 == 150 ? 30.0 : 0.0) + (i > 1500 ? 20.0 : 0.0);
        char num[32];
        snprintf(num, sizeof num, "%.6f", v);
        vals[i] = (float)strtod(num, NULL); /* what analyze will read */
        len += (size_t)snprintf(b + len, cap - len, "2024-03-01T%02d:%02d:%02dZ,%s\n",
                                (i / 3600) % 24, (i / 60) % 60, i % 60, num);
    }
    return b;
}

static void test_matches_reference(void **state)
{
    enum { N = 3000 };
    static float vals[N];
    char *csv = make_csv(N, vals, true);
    result r = run(NULL, NEURALOPS_BIN, "analyze", csv);
    assert_int_equal(r.status, 0);
    assert_int_equal(tu_count_lines(r.out), N + 1);
    nops_detect_params p;
    nops_detect_params_default(&p);
    ref_det ref;
    ref_init(&ref, &p);
    char *line = strtok(r.out, "\n");
    assert_string_equal(line, "timestamp,value,zscore,ewma_z,score,anomaly,detector");
    int anomalies = 0;
    for (int i = 0; i < N; i++) {
        line = strtok(NULL, "\n");
        assert_non_null(line);
        char ts[64];
        double v, z, ze, score;
        int anom;
        char det[16] = "";
        int got = sscanf(line, "%63[^,],%lf,%lf,%lf,%lf,%d,%15s", ts, &v, &z, &ze, &score, &anom,
                         det);
        assert_true(got == 6 || got == 7); /* the detector column is empty before warm-up */
        char want[32];
        snprintf(want, sizeof want, "2024-03-01T%02d:%02d:%02dZ", (i / 3600) % 24, (i / 60) % 60,
                 i % 60);
        assert_string_equal(ts, want); /* timestamp verbatim */
        assert_true((float)v == vals[i]);
        double rz, rze;
        unsigned rf = ref_update(&ref, vals[i], &rz, &rze);
        if (!close_enough(z, rz, 1e-3) || !close_enough(ze, rze, 1e-3))
            fail_msg("row %d: z %g/%g vs reference %g/%g", i + 1, z, ze, rz, rze);
        /* the combined score of the whole detector set, and the detector that gave it */
        double rscore = (rf & NOPS_DETECT_WARM) ? nops_detect_score(ref.ratio) : 0.0;
        assert_float_equal(score, rscore, 1e-4);
        assert_true(score >= 0.0 && score <= 1.0);
        if (fabs(ref.ratio - 1.0) > 1e-3) {
            assert_int_equal(anom, (rf & NOPS_DETECT_ANOM) ? 1 : 0);
            if (rf & NOPS_DETECT_WARM)
                assert_string_equal(det, nops_detector_name((nops_detector_kind)ref.which));
        }
        anomalies += anom;
        if (i < p.warmup)
            assert_true(z == 0.0 && ze == 0.0 && score == 0.0 && got == 6); /* warm-up */
    }
    assert_true(anomalies >= 10); /* the spikes and the shift are there */
    result_free(&r);
    free(csv);
}

static void test_timestamps_verbatim_and_header_optional(void **state)
{
    const char *in = "2024-01-01T00:00:00Z,1\n2024-01-01 00:00:01,2\n1704067202,3\n"
                     "1704067203000,4\n1704067204000000000,5\n2024-01-01T00:00:05.5+01:00,6\n";
    result a = run(NULL, NEURALOPS_BIN, "analyze --no-header", in);
    assert_int_equal(a.status, 0);
    assert_int_equal(tu_count_lines(a.out), 6);
    assert_non_null(strstr(a.out, "2024-01-01 00:00:01,2,"));
    assert_non_null(strstr(a.out, "1704067203000,4,"));
    assert_non_null(strstr(a.out, "1704067204000000000,5,"));
    assert_non_null(strstr(a.out, "2024-01-01T00:00:05.5+01:00,6,"));
    char *with_header = malloc(strlen(in) + 32);
    sprintf(with_header, "ts,val\n%s", in);
    result b = run(NULL, NEURALOPS_BIN, "analyze --no-header", with_header);
    assert_int_equal(b.status, 0);
    assert_string_equal(a.out, b.out);
    free(with_header);
    result_free(&a);
    result_free(&b);
    result e = run(NULL, NEURALOPS_BIN, "analyze", "");
    assert_int_equal(e.status, 0);
    assert_string_equal(e.out, "timestamp,value,zscore,ewma_z,score,anomaly,detector\n");
    result_free(&e);
}

static void test_bad_row_names_line(void **state)
{
    const char *in = "timestamp,value\n2024-01-01,1\n\n2024-01-02,2\n2024-01-03,lots\n2024-01-04,4\n";
    result r = run(NULL, NEURALOPS_BIN, "analyze", in);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "line 5: value is not a number"));
    assert_int_equal(tu_count_lines(r.out), 3); /* header and the two good rows before it */
    result_free(&r);
    const char *cases[][2] = {
        {"2024-01-01,1,2\n", "line 1: expected two fields"},
        {"2024-01-01,nan\n", "line 1: value is NaN"},
        {"2024-13-01,1\n", "line 1: timestamp has an impossible date"},
        {"1,2\nsoon,3\n", "line 2: timestamp is neither"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result c = run(NULL, NEURALOPS_BIN, "analyze", cases[i][0]);
        assert_int_equal(c.status, 2);
        if (!strstr(c.err, cases[i][1]))
            fail_msg("input %s: stderr \"%s\" lacks \"%s\"", cases[i][0], c.err, cases[i][1]);
        result_free(&c);
    }
}

static void test_skip_bad_keeps_rows_aligned(void **state)
{
    const char *in = "2024-01-01,1\n2024-01-02,x\n2024-01-03,3\nbroken\n2024-01-05,inf\n2024-01-06,6\n";
    result r = run(NULL, NEURALOPS_BIN, "analyze --skip-bad --no-header", in);
    assert_int_equal(r.status, 0);
    assert_int_equal(tu_count_lines(r.out), 6);
    assert_non_null(strstr(r.out, "2024-01-02,,0,0,0,0,\n"));
    assert_non_null(strstr(r.out, "\n,,0,0,0,0,\n")); /* "broken": no timestamp to echo */
    assert_non_null(strstr(r.err, "skipped 3 bad row(s)"));
    assert_non_null(strstr(r.err, "first: line 2"));
    result_free(&r);
}

static void test_json_format(void **state)
{
    enum { N = 200 };
    static float vals[N];
    char *csv = make_csv(N, vals, false);
    result r = run(NULL, NEURALOPS_BIN, "analyze --format json", csv);
    assert_int_equal(r.status, 0);
    json_error_t jerr;
    json_t *doc = json_loads(r.out, 0, &jerr);
    if (!doc)
        fail_msg("not JSON: %s", jerr.text);
    assert_true(json_is_array(doc));
    assert_int_equal(json_array_size(doc), N);
    json_t *row = json_array_get(doc, 150);
    assert_true(json_is_string(json_object_get(row, "timestamp")));
    assert_true(json_is_number(json_object_get(row, "zscore")));
    assert_true(json_is_number(json_object_get(row, "ewma_z")));
    assert_true(json_is_number(json_object_get(row, "score")));
    assert_true(json_is_integer(json_object_get(row, "anomaly")));
    assert_true((float)json_number_value(json_object_get(row, "value")) == vals[150]);
    json_decref(doc);
    result_free(&r);
    free(csv);
    result e = run(NULL, NEURALOPS_BIN, "analyze --format json", "");
    json_t *empty = json_loads(e.out, 0, &jerr);
    assert_non_null(empty);
    assert_int_equal(json_array_size(empty), 0);
    json_decref(empty);
    result_free(&e);
}

/* First row (1-based) with a non-zero z in the output. */
static int first_verdict(const char *out)
{
    int row = 0;
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, "timestamp", 9) == 0)
            continue;
        row++;
        double v, z;
        if (sscanf(strchr(l, ',') + 1, "%lf,%lf", &v, &z) == 2 && z != 0.0)
            return row;
    }
    return -1;
}

static void test_flags_env_and_config(void **state)
{
    enum { N = 100 };
    static float vals[N];
    char *csv = make_csv(N, vals, false);
    result r = run(NULL, NEURALOPS_BIN, "analyze --window 20", csv);
    assert_int_equal(r.status, 0);
    assert_int_equal(first_verdict(r.out), 41); /* warm-up 2W = 40 rows */
    result_free(&r);
    r = run("NEURALOPS_DETECT_WINDOW=30", NEURALOPS_BIN, "analyze", csv);
    assert_int_equal(first_verdict(r.out), 61);
    result_free(&r);
    r = run("NEURALOPS_DETECT_WINDOW=30", NEURALOPS_BIN, "analyze --window=8", csv);
    assert_int_equal(first_verdict(r.out), 17); /* flags beat the environment */
    result_free(&r);
    char path[] = "/tmp/nops-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(write(fd, "[detect]\nwindow = 40\n", 21) == 21);
    close(fd);
    char args[128];
    snprintf(args, sizeof args, "analyze -c %s", path);
    r = run(NULL, NEURALOPS_BIN, args, csv);
    assert_int_equal(first_verdict(r.out), 81);
    result_free(&r);
    unlink(path);
    r = run(NULL, NEURALOPS_BIN, "analyze --method zscore --set detect.z_threshold=3", csv);
    assert_int_equal(r.status, 0);
    for (const char *l = strchr(r.out, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        double v, z, ze;
        assert_int_equal(sscanf(strchr(l, ',') + 1, "%lf,%lf,%lf", &v, &z, &ze), 3);
        assert_true(ze == 0.0);
    }
    result_free(&r);
    free(csv);

    const char *bad[][2] = {
        {"analyze --window 2", "detect.window = 2 is outside"},
        {"analyze --window", "--window needs a value"},
        {"analyze --alpha much", "expects a finite number"},
        {"analyze --method magic", "must be one of zscore|ewma|both"},
        {"analyze --frobnicate", "unknown flag --frobnicate"},
        {"analyze extra", "unexpected argument \"extra\""},
        {"analyze --format xml", "--format must be csv or json"},
        {"analyze --set detect.nope=1", "unknown setting \"detect.nope\""},
        {"analyze -c /nonexistent.ini", "cannot open config file /nonexistent.ini"},
        {"analyze --skip-bad=yes", "--skip-bad=yes takes no value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        result b = run(NULL, NEURALOPS_BIN, bad[i][0], "1,1\n");
        assert_int_equal(b.status, 2);
        if (!strstr(b.err, bad[i][1]))
            fail_msg("`%s`: stderr \"%s\" lacks \"%s\"", bad[i][0], b.err, bad[i][1]);
        result_free(&b);
    }
    result e = run("NEURALOPS_DETECT_ALPHA=0", NEURALOPS_BIN, "analyze", "1,1\n");
    assert_int_equal(e.status, 2);
    assert_non_null(strstr(e.err, "NEURALOPS_DETECT_ALPHA"));
    result_free(&e);
    result m = run(NULL, NEURALOPS_BIN, "analyze -i /nonexistent.csv", NULL);
    assert_int_equal(m.status, 1);
    assert_non_null(strstr(m.err, "cannot open /nonexistent.csv"));
    result_free(&m);
}

static void test_help_and_commands(void **state)
{
    result h = run(NULL, NEURALOPS_BIN, "analyze --help", NULL);
    assert_int_equal(h.status, 0);
    assert_non_null(strstr(h.out, "Usage: neuralops analyze"));
    assert_non_null(strstr(h.out, "--window"));
    result_free(&h);
    h = run(NULL, NEURALOPS_BIN, "--help", NULL);
    assert_int_equal(h.status, 0);
    assert_non_null(strstr(h.out, "analyze"));
    result_free(&h);
    h = run(NULL, NEURALOPS_BIN, "config --help", NULL);
    assert_int_equal(h.status, 0);
    result_free(&h);
    h = run(NULL, NEURALOPS_BIN, "nonsense", NULL);
    assert_int_equal(h.status, 2);
    assert_non_null(strstr(h.err, "unknown command"));
    result_free(&h);
    h = run(NULL, NEURALOPS_BIN, "", NULL);
    assert_int_equal(h.status, 2);
    result_free(&h);
}

/* The streaming commands: help, and bad flags refused before anything starts. */
static void test_stream_commands_refuse_bad_flags(void **state)
{
    const char *helps[] = {"serve --help", "demo --help", "loadgen --help"};
    for (size_t i = 0; i < 3; i++) {
        result h = run(NULL, NEURALOPS_BIN, helps[i], NULL);
        assert_int_equal(h.status, 0);
        assert_non_null(strstr(h.out, "Usage: neuralops"));
        result_free(&h);
    }
    const char *bad[][2] = {
        {"loadgen --rate fast", "--rate expects a number"},
        {"loadgen --format xml", "--format must be lp or json"},
        {"loadgen --series 2", "--series expects a number"},
        {"demo --seconds -3", "--seconds expects a positive number"},
        {"serve --workers 0", "pipeline.workers = 0 is outside"},
        {"serve --set kafka.session_timeout_ms=5", "outside"},
        {"serve stray", "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        result b = run(NULL, NEURALOPS_BIN, bad[i][0], NULL);
        assert_int_equal(b.status, 2);
        if (!strstr(b.err, bad[i][1]))
            fail_msg("`%s`: stderr \"%s\" lacks \"%s\"", bad[i][0], b.err, bad[i][1]);
        result_free(&b);
    }
    /* a bad librdkafka property is a clear error, not a crash */
    result k = run("NEURALOPS_KAFKA_EXTRA=no.such.property=1 NEURALOPS_VECTOR_ACTOR_KEY=t",
                   NEURALOPS_BIN, "serve", NULL);
    assert_int_equal(k.status, 1);
    assert_non_null(strstr(k.err, "no.such.property"));
    result_free(&k);
}

/* A line longer than 1 MiB: an error naming it, or a zero-score row with --skip-bad. */
static void test_overlong_line(void **state)
{
    size_t n = (1u << 20) + 10;
    char *in = malloc(n + 64);
    strcpy(in, "2024-01-01,1\n");
    size_t o = strlen(in);
    memset(in + o, '7', n);
    o += n;
    strcpy(in + o, "\n2024-01-03,3\n");
    result r = run(NULL, NEURALOPS_BIN, "analyze --no-header", in);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "line 2: longer than"));
    result_free(&r);
    r = run(NULL, NEURALOPS_BIN, "analyze --no-header --skip-bad", in);
    assert_int_equal(r.status, 0);
    assert_int_equal(tu_count_lines(r.out), 3);
    assert_non_null(strstr(r.err, "line too long"));
    result_free(&r);
    free(in);
}

/* docs/configuration.md is exactly what the tables generate. */
static void test_config_docs_are_current(void **state)
{
    result r = run(NULL, NEURALOPS_BIN, "config docs", NULL);
    assert_int_equal(r.status, 0);
    char *doc = tu_read_file(NOPS_SOURCE_DIR "/docs/configuration.md");
    if (strcmp(r.out, doc) != 0)
        fail_msg("docs/configuration.md is stale: run `make docs`");
    free(doc);
    result_free(&r);
    r = run("NEURALOPS_DETECT_WINDOW=90", NEURALOPS_BIN, "config show", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "[detect]\nwindow = 90\n"));
    result_free(&r);
}

static void test_bench_smoke(void **state)
{
    result r = run(NULL, NEURALOPS_BENCH_BIN, "detect --quick --variant scalar", NULL);
    assert_int_equal(r.status, 0);
    int lines = 0;
    for (char *l = strtok(r.out, "\n"); l; l = strtok(NULL, "\n")) {
        json_error_t jerr;
        json_t *o = json_loads(l, 0, &jerr);
        if (!o)
            fail_msg("bench line is not JSON: %s", l);
        const char *keys[] = {"suite", "figure", "value", "unit", "peer", "peer_value", "ratio"};
        for (size_t k = 0; k < 7; k++)
            assert_non_null(json_object_get(o, keys[k]));
        assert_string_equal(json_string_value(json_object_get(o, "suite")), "detect");
        assert_true(json_number_value(json_object_get(o, "value")) > 0.0);
        json_decref(o);
        lines++;
    }
    assert_true(lines >= 5);
    result_free(&r);
    r = run(NULL, NEURALOPS_BENCH_BIN, "nosuch", NULL);
    assert_int_equal(r.status, 2);
    result_free(&r);
}

/* `neuralops-bench loop --quick`: both figures, measured (all 800 incidents of the stream opened
 * in both runs, most of them with a playbook recommended from the index). */
static void test_bench_loop_smoke(void **state)
{
    (void)state;
    result r = run(NULL, NEURALOPS_BENCH_BIN, "loop --quick", NULL);
    assert_int_equal(r.status, 0);
    int lines = 0;
    for (char *l = strtok(r.out, "\n"); l; l = strtok(NULL, "\n")) {
        json_t *o = json_loads(l, 0, NULL);
        if (!o)
            fail_msg("bench line is not JSON: %s", l);
        assert_string_equal(json_string_value(json_object_get(o, "suite")), "loop");
        assert_true(json_number_value(json_object_get(o, "value")) > 0.0);
        assert_true(json_number_value(json_object_get(o, "peer_value")) > 0.0);
        if (lines++ == 0) {
            assert_int_equal(json_integer_value(json_object_get(o, "incidents")), 800);
            assert_int_equal(json_integer_value(json_object_get(o, "recommendations")), 800);
            assert_true(json_integer_value(json_object_get(o, "with_playbook")) >= 600);
            assert_int_equal(json_integer_value(json_object_get(o, "errors")), 0);
        }
        json_decref(o);
    }
    assert_int_equal(lines, 2);
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_timestamps_verbatim_and_header_optional),
        cmocka_unit_test(test_bad_row_names_line),
        cmocka_unit_test(test_skip_bad_keeps_rows_aligned),
        cmocka_unit_test(test_json_format),
        cmocka_unit_test(test_flags_env_and_config),
        cmocka_unit_test(test_help_and_commands),
        cmocka_unit_test(test_config_docs_are_current),
        cmocka_unit_test(test_stream_commands_refuse_bad_flags),
        cmocka_unit_test(test_overlong_line),
        cmocka_unit_test(test_bench_smoke),
        cmocka_unit_test(test_bench_loop_smoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
