/*
 * cmd_analyze.c — `neuralops analyze`: batch detection over a `timestamp,value` CSV.
 *
 * One series, one pass, streaming: each input row is parsed, pushed through the same detector
 * kernels the streaming engine uses, and written out at once, so arbitrarily long inputs run
 * in constant memory. Bad rows stop the run with the line number (exit 2) unless --skip-bad,
 * which writes a zero-score row in their place so output rows still line up with input rows.
 */
#include "app/cli.h"
#include "parse/parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ANALYZE_MAX_LINE (1u << 20)

typedef struct analyze_opts {
    const char *input;   /* -i FILE, NULL = stdin */
    bool skip_bad;       /* --skip-bad */
    bool json;           /* --format json */
    bool no_header;      /* --no-header */
    bool summary;        /* --summary */
    bool detectors;      /* --detectors: list the detector set and exit */
} analyze_opts;

static const cli_opt analyze_cli[] = {
    {"input", 'i', true, "FILE", "read CSV from FILE instead of stdin"},
    {"format", 0, true, "csv|json", "output format (default csv; json is one array)"},
    {"skip-bad", 0, false, NULL, "write a zero-score row for bad rows instead of stopping"},
    {"no-header", 0, false, NULL, "omit the CSV header line"},
    {"summary", 0, false, NULL, "also list each anomalous excursion (signal) on stderr"},
    {"detectors", 0, false, NULL,
     "list the detector set, thresholds and state size at these settings, then exit"},
};
#define N_ANALYZE_CLI (sizeof analyze_cli / sizeof analyze_cli[0])

static bool on_opt(void *ud, const cli_opt *opt, const char *value)
{
    analyze_opts *o = ud;
    if (strcmp(opt->name, "input") == 0) {
        o->input = value;
    } else if (strcmp(opt->name, "format") == 0) {
        if (strcmp(value, "csv") && strcmp(value, "json")) {
            fprintf(stderr, "neuralops analyze: --format must be csv or json, got \"%s\"\n",
                    value);
            return false;
        }
        o->json = strcmp(value, "json") == 0;
    } else if (strcmp(opt->name, "skip-bad") == 0) {
        o->skip_bad = true;
    } else if (strcmp(opt->name, "no-header") == 0) {
        o->no_header = true;
    } else if (strcmp(opt->name, "summary") == 0) {
        o->summary = true;
    } else if (strcmp(opt->name, "detectors") == 0) {
        o->detectors = true;
    }
    return true;
}

static void usage(const app_ctx *ctx, FILE *out)
{
    fprintf(out,
            "Usage: neuralops analyze [-i FILE] [options]\n\n"
            "Detect anomalies in one series. Input: CSV rows `timestamp,value` (header\n"
            "optional) on stdin or from FILE; timestamps may be ISO-8601, `YYYY-MM-DD\n"
            "HH:MM:SS` or epoch s/ms/us/ns. Output: one row per input row,\n"
            "`timestamp,value,zscore,ewma_z,score,anomaly,detector`, timestamp passed through\n"
            "verbatim. score is the combined score of the detector set (--detectors lists it):\n"
            "1 - 2^-(r^2) with r = max(|z|/z-threshold, |ewma_z|/ewma-threshold, CUSUM/h),\n"
            "0.5 exactly at the threshold; detector names the one that gave r (zscore, ewma,\n"
            "cusum). The thresholds derive from --false-alarm-points N (about one false\n"
            "signal per N points of a stationary series). Rows before warm-up have score 0.\n\n"
            "Exit status: 0 ok, 1 I/O failure, 2 bad flags/config or a bad row (the message\n"
            "names the line; --skip-bad writes a zero-score row instead and counts them).\n\n");
    cli_print_opts(ctx, analyze_cli, N_ANALYZE_CLI, out);
}

/* --detectors: the detector set at these settings, one line each, then the combination. */
static int print_detectors(const nops_detect_params *p_in)
{
    nops_detect_params p = *p_in;
    nops_detect_params_resolve(&p);
    const bool z = p.method != NOPS_METHOD_EWMA, e = p.method != NOPS_METHOD_ZSCORE;
    const bool c = p.method == NOPS_METHOD_ALL;
    printf("detector  on   threshold  what it sees\n");
    printf("zscore    %-4s %9.3f  |x - mean| / std over the previous %lld points\n",
           z ? "yes" : "no", p.z_threshold, (long long)p.window);
    printf("ewma      %-4s %9.3f  robust EWMA, alpha %g, variance over ~%.0f points\n",
           e ? "yes" : "no", p.ewma_threshold, p.alpha, (2.0 - p.alpha_var) / p.alpha_var);
    printf("cusum     %-4s %9.3f  CUSUM (k %g sigma) against a baseline over %lld points\n",
           c ? "yes" : "no", p.cusum_threshold, p.cusum_k, (long long)p.long_window);
    const uint32_t sp = nops_detect_season_for_step(&p, 60);
    printf("season    %-4s %9.3f  the EWMA and the CUSUM on the value minus a profile of %d "
           "knots over %lld s\n", c && p.season_s > 0 ? "yes" : "no", p.ewma_threshold,
           NOPS_DETECT_SEASON_BINS, (long long)p.season_s);
    printf("          (the period in points is season_s / the series' step, e.g. %u at 1 min; "
           "the profile is learned over the first period)\n", sp);
    printf("combined: score = 1 - 2^-(r^2), r = the largest |statistic| / threshold; "
           "anomalous at r >= 1 (score 0.5)\n");
    printf("calibration: about one false signal per %.0f points of a stationary series; "
           "warm-up %lld points\n", p.false_alarm_points, (long long)p.warmup);
    nops_detect_params ps = p;
    ps.season_points = NOPS_DETECT_SEASON_MIN; /* any period: the profile's size is fixed */
    printf("state: %zu bytes per series, %zu with a season (key not included)\n",
           nops_detect_bytes_per_series(&p), nops_detect_bytes_per_series(&ps));
    return fflush(stdout) == 0 ? NOPS_EXIT_OK : NOPS_EXIT_FAIL;
}

#define ANALYZE_STEPS 15 /* rows whose steps give the series' step (median) for its season */

typedef struct analyze_run {
    const analyze_opts *o;  /* options */
    nops_detector *det;     /* one series, slot 0 */
    uint64_t rows;          /* rows written */
    uint64_t bad;           /* bad rows skipped */
    uint64_t first_bad_line;/* line of the first one */
    const char *first_bad_reason;
    uint64_t signals;       /* excursions (FIRED) */
    int64_t ts0;            /* first timestamp (ns) */
    int64_t steps[ANALYZE_STEPS]; /* the first steps between rows, for the season */
    uint32_t n_ts;          /* timestamps seen, up to ANALYZE_STEPS + 1 */
} analyze_run;

static void write_row(analyze_run *r, const char *ts, size_t ts_len, const char *value_text,
                      float z, float ze, double score, int anomaly, const char *detector)
{
    char zb[32], zeb[32], sb[32];
    fmt_float(zb, sizeof zb, z);
    fmt_float(zeb, sizeof zeb, ze);
    fmt_double(sb, sizeof sb, score);
    if (r->o->json) {
        printf("%s{\"timestamp\":\"%.*s\",\"value\":%s,\"zscore\":%s,\"ewma_z\":%s,"
               "\"score\":%s,\"anomaly\":%d,\"detector\":\"%s\"}",
               r->rows ? ",\n" : "", (int)ts_len, ts, value_text[0] ? value_text : "null", zb,
               zeb, sb, anomaly, detector);
    } else {
        printf("%.*s,%s,%s,%s,%s,%d,%s\n", (int)ts_len, ts, value_text, zb, zeb, sb, anomaly,
               detector);
    }
    r->rows++;
}

/* A bad row under --skip-bad: keep the timestamp text when it is safe to echo. */
static void write_bad_row(analyze_run *r, const char *line, size_t len)
{
    const char *comma = memchr(line, ',', len);
    size_t tl = comma ? (size_t)(comma - line) : 0;
    for (size_t i = 0; i < tl; i++) {
        char c = line[i];
        if (c == '"' || c == '\\' || (unsigned char)c < 0x20 || (unsigned char)c >= 0x7f) {
            tl = 0;
            break;
        }
    }
    write_row(r, line, tl, "", 0.0f, 0.0f, 0.0, 0, "");
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The series' step is the median of its first ANALYZE_STEPS steps; once known, the series gets
 * its season (detect.season_s / step points, nops_detect_season_for_step). */
static void season_from_steps(analyze_run *r, int64_t ts_ns)
{
    if (r->n_ts > ANALYZE_STEPS)
        return;
    if (r->n_ts > 0)
        r->steps[r->n_ts - 1] = ts_ns - r->ts0;
    r->ts0 = ts_ns;
    if (++r->n_ts <= ANALYZE_STEPS)
        return;
    int64_t s[ANALYZE_STEPS];
    memcpy(s, r->steps, sizeof s);
    qsort(s, ANALYZE_STEPS, sizeof s[0], cmp_i64);
    const int64_t step_s = s[ANALYZE_STEPS / 2] / 1000000000ll;
    const uint32_t period = nops_detect_season_for_step(nops_detect_get_params(r->det), step_s);
    if (period)
        nops_detect_set_season(r->det, 0, period); /* NOPS_NOMEM: the series runs without */
}

static int process_line(analyze_run *r, const char *line, size_t len, uint64_t lineno,
                        bool *first)
{
    nops_csv_row row;
    nops_csv_kind kind;
    const char *reason = NULL;
    nops_err err = nops_ingest_csv_line(line, len, *first, &row, &kind, &reason);
    if (err == NOPS_OK && kind == NOPS_CSV_BLANK)
        return 0;
    *first = false;
    if (err == NOPS_OK && kind == NOPS_CSV_HEADER)
        return 0;
    if (err != NOPS_OK) {
        if (!r->o->skip_bad) {
            fflush(stdout);
            fprintf(stderr, "neuralops analyze: line %llu: %s\n", (unsigned long long)lineno,
                    reason);
            return -1;
        }
        if (r->bad++ == 0) {
            r->first_bad_line = lineno;
            r->first_bad_reason = reason;
        }
        write_bad_row(r, line, len);
        return 0;
    }
    season_from_steps(r, row.ts_ns);
    float x = (float)row.value;
    uint32_t slot = 0;
    float z, ze, ratio;
    uint8_t flags;
    nops_detect_out out = {&z, &ze, &flags, &ratio};
    nops_detect_update_pairs(r->det, &slot, &x, 1, &out);
    const bool warm = (flags & NOPS_DETECT_WARM) != 0;
    const double score = warm ? nops_detect_score(ratio) : 0.0;
    const char *det = warm ? nops_detector_name((nops_detector_kind)NOPS_DETECT_WHICH(flags)) : "";
    char vb[40];
    fmt_double(vb, sizeof vb, row.value);
    write_row(r, row.ts, row.ts_len, vb, z, ze, score, (flags & NOPS_DETECT_ANOM) ? 1 : 0, det);
    if (flags & NOPS_DETECT_FIRED) {
        r->signals++;
        if (r->o->summary) {
            char zb[32], zeb[32];
            fmt_float(zb, sizeof zb, z);
            fmt_float(zeb, sizeof zeb, ze);
            fprintf(stderr, "anomaly: line %llu at %.*s value %s (z %s, ewma_z %s, score %.3f, "
                    "%s)\n", (unsigned long long)lineno, (int)row.ts_len, row.ts, vb, zb, zeb,
                    score, det);
        }
    }
    return 0;
}

/* Read every line of `in`; returns an exit status. */
static int analyze_stream(analyze_run *r, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t lineno = 0;
    bool first = true;
    int status = NOPS_EXIT_OK;
    errno = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if ((size_t)len > ANALYZE_MAX_LINE) {
            if (!r->o->skip_bad) {
                fprintf(stderr, "neuralops analyze: line %llu: longer than %u bytes\n",
                        (unsigned long long)lineno, ANALYZE_MAX_LINE);
                status = NOPS_EXIT_USAGE;
                break;
            }
            if (r->bad++ == 0) {
                r->first_bad_line = lineno;
                r->first_bad_reason = "line too long";
            }
            write_bad_row(r, "", 0);
            continue;
        }
        if (process_line(r, line, (size_t)len, lineno, &first) != 0) {
            status = NOPS_EXIT_USAGE;
            break;
        }
    }
    if (status == NOPS_EXIT_OK && ferror(in)) {
        fprintf(stderr, "neuralops analyze: read error: %s\n", strerror(errno));
        status = NOPS_EXIT_FAIL;
    }
    free(line);
    return status;
}

/* The closing lines on stderr and the final flush; returns the exit status. */
static int analyze_finish(analyze_run *r, int status)
{
    if (r->o->json && status == NOPS_EXIT_OK)
        printf("%s]\n", r->rows ? "\n" : "");
    if (r->bad)
        fprintf(stderr,
                "neuralops analyze: skipped %llu bad row(s), written with score 0 (first: line "
                "%llu: %s)\n",
                (unsigned long long)r->bad, (unsigned long long)r->first_bad_line,
                r->first_bad_reason);
    if (r->o->summary && status == NOPS_EXIT_OK)
        fprintf(stderr, "neuralops analyze: %llu row(s), %llu anomalous excursion(s)\n",
                (unsigned long long)r->rows, (unsigned long long)r->signals);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "neuralops analyze: cannot write output: %s\n", strerror(errno));
        status = NOPS_EXIT_FAIL;
    }
    return status;
}

int nops_cmd_analyze(int argc, char **argv)
{
    app_ctx ctx;
    analyze_opts o = {0};
    analyze_run r = {.o = &o};
    bool help = false;
    int status = NOPS_EXIT_USAGE;
    FILE *in = stdin;
    char errbuf[512];
    uint32_t slot;
    if (!app_ctx_init(&ctx))
        return NOPS_EXIT_FAIL;
    if (!cli_parse(&ctx, "analyze", argc, argv, analyze_cli, N_ANALYZE_CLI, on_opt, &o, &help))
        goto out;
    if (help) {
        usage(&ctx, stdout);
        status = NOPS_EXIT_OK;
        goto out;
    }
    if (o.detectors) {
        status = print_detectors(&ctx.detect);
        goto out;
    }
    status = NOPS_EXIT_FAIL;
    if (o.input && !(in = nops_file_fopen(o.input, "r"))) {
        fprintf(stderr, "neuralops analyze: cannot open %s: %s\n", o.input, strerror(errno));
        in = stdin;
        goto out;
    }
    r.det = nops_detect_new(&ctx.detect, 1, errbuf, sizeof errbuf);
    if (!r.det || nops_detect_slot(r.det, 1, "analyze", 7, 0, &slot) != NOPS_OK) {
        fprintf(stderr, "neuralops analyze: %s\n", r.det ? "out of memory" : errbuf);
        goto out;
    }
    if (o.json)
        printf("[\n");
    else if (!o.no_header)
        printf("timestamp,value,zscore,ewma_z,score,anomaly,detector\n");
    status = analyze_finish(&r, analyze_stream(&r, in));
out:
    nops_detect_destroy(r.det);
    if (in != stdin)
        fclose(in);
    app_ctx_fini(&ctx);
    return status;
}
