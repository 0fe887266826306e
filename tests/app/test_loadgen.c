/*
 * test_loadgen.c — `neuralops loadgen` (a separate process, a real Kafka client) produces a
 * noisy fleet with injected incidents to the mock cluster hosted here; the pipeline consumes it
 * with all three sinks (JSONL, PostgreSQL when the test run has one, Kafka topic
 * neuralops.signals). The ground truth loadgen writes decides what is expected:
 *
 *   - every injected incident is found: at least one signal on its service, host (or any host
 *     of the service for service-wide kinds) and metric, within its time span;
 *   - every signal but a few is explained by an injected incident: same service/host/metric,
 *     from the incident's start to one window after its end. The rest are false positives on
 *     the Gaussian noise; at z 5 / EWMA 6 with W = 60 the detectors fire on about 1e-5 of pure
 *     noise points (`neuralops analyze` over 400k N(0,1) points: 4), so about 0.4 are expected
 *     in the 38 400 points here, and more than MAX_FALSE_POSITIVES fails the test;
 *   - the signals of one injected incident are grouped into incidents whose labels carry the
 *     service, and every signal is in exactly one incident;
 *   - JSONL, PostgreSQL and the Kafka topic hold the same set of signal ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/testutil.h"
#include "tests/support/kafkautil.h"
#include "tests/support/pgutil.h"

#include "ingest/ingest.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_S 10
#define WINDOW 60
#define MAX_FALSE_POSITIVES 4

static rd_kafka_t *g_cluster;
static char g_boot[512];
static char g_dir[] = "/tmp/nops-loadgen-XXXXXX";

static int setup(void **state)
{
    (void)state;
    static const tu_topic topics[] = {{"neuralops.metrics", 8},
                                      {"neuralops.metrics.dlq", 1},
                                      {"neuralops.signals", 2}};
    g_cluster = tu_mock_cluster(3, topics, 3, g_boot, sizeof g_boot);
    assert_non_null(g_cluster);
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

/* Every JSON line of `path` (absent file: none). */
static json_t *read_jsonl(const char *path)
{
    json_t *arr = json_array();
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    while (f && getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        json_array_append_new(arr, o);
    }
    free(line);
    if (f)
        fclose(f);
    return arr;
}

static const char *sget(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int64_t ts_of(json_t *o, const char *k)
{
    const char *s = sget(o, k);
    int64_t ns = 0;
    assert_int_equal(nops_ingest_parse_timestamp(s, strlen(s), &ns, NULL), NOPS_OK);
    return ns;
}

/* Does signal `s` belong to injected incident `t`, with `tail_ticks` of slack after its end? */
static bool explains(json_t *t, json_t *s, int tail_ticks)
{
    json_t *labels = json_object_get(s, "labels");
    if (strcmp(sget(s, "metric"), sget(t, "metric")) != 0 ||
        strcmp(sget(labels, "service"), sget(t, "service")) != 0)
        return false;
    if (strcmp(sget(t, "host"), "*") != 0 && strcmp(sget(labels, "host"), sget(t, "host")) != 0)
        return false;
    /* signal times carry milliseconds, the truth too: half a tick of slack before the start */
    int64_t ts = ts_of(s, "ts"), half = (int64_t)TICK_S * 500000000ll;
    return ts >= ts_of(t, "start") - half &&
           ts <= ts_of(t, "end") + (int64_t)tail_ticks * TICK_S * 1000000000ll + half;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted, newline-joined ids: the comparable form of a set of signal ids. */
static char *id_set(char **ids, size_t n)
{
    qsort(ids, n, sizeof *ids, cmp_str);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(ids[i]) + 1;
    char *out = calloc(1, len), *p = out;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0) /* a set: duplicates collapse */
            p += sprintf(p, "%s\n", ids[i]);
    return out;
}

static char *pg_ids(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "SELECT id FROM insight_signals");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    size_t n = (size_t)PQntuples(r);
    char **ids = calloc(n + 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = strdup(PQgetvalue(r, (int)i, 0));
    PQclear(r);
    PQfinish(c);
    char *s = id_set(ids, n);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return s;
}

/* Signal ids on the Kafka sink topic, read by kcat (records of kind "signal" only). */
static char *kafka_ids(void)
{
    char cmd[2048], path[600];
    snprintf(path, sizeof path, "%s/kafka.txt", g_dir);
    snprintf(cmd, sizeof cmd,
             "kcat -C -b '%s' -t neuralops.signals -o beginning -e -q -f '%%h|%%s\\n' > %s",
             g_boot, path);
    assert_int_equal(system(cmd), 0);
    char *text = tu_read_file(path);
    size_t n = 0, cap = 64;
    char **ids = calloc(cap, sizeof *ids);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *bar = strchr(line, '|');
        if (!bar)
            continue;
        *bar = '\0'; /* headers before the bar */
        if (!strstr(line, "kind=signal"))
            continue;
        json_t *o = json_loads(bar + 1, 0, NULL);
        assert_non_null(o);
        if (n == cap)
            ids = realloc(ids, (cap *= 2) * sizeof *ids);
        ids[n++] = strdup(sget(o, "id"));
        json_decref(o);
    }
    char *s = id_set(ids, n);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(text);
    return s;
}

/*
 * The run every test below reads, made once (run_once): the pipeline consumes what the
 * `neuralops loadgen` binary produced into the JSONL, Kafka and (when NEURALOPS_TEST_PG_DSN
 * is set) PostgreSQL sinks; then the injected incidents, the signals, the incident records and
 * each incident's latest record are loaded.
 */
static bool g_ran;                 /* run_once started */
static char g_dsn[600];            /* PostgreSQL DSN, "" when not checked */
static PGconn *g_pg;               /* its connection (the schema helper's) */
static nops_pipeline_stats g_st;   /* the pipeline's counters when the run was consumed */
static json_t *g_inj, *g_sigs, *g_incs; /* truth.jsonl, signals.jsonl, incidents.jsonl */
static json_t *g_latest;           /* incident id → its latest record (updates append) */
static const uint64_t EXPECTED_POINTS = 96ull * 400;

/* A pipeline writing to every sink, started (so it is assigned when the points arrive). */
static nops_pipeline *start_pipeline(nops_sinks **sinks_out)
{
    char err[512];
    nops_kafka_params kp;
    tu_kafka_params(&kp, g_boot, "loadgen-test");
    nops_pipeline_params pp = {2, 4096, 512, 100, 1000000, 1000, 0, 0, 0, 0};
    nops_detect_params dp;
    nops_detect_params_default(&dp);
    dp.window = WINDOW;
    dp.z_threshold = 5; /* the demo's thresholds: the noise is Gaussian, the incidents are not */
    dp.ewma_threshold = 6;
    nops_correlate_params cp;
    nops_correlate_defaults(&cp);
    nops_storage_params sp;
    snprintf(sp.data_dir, sizeof sp.data_dir, "%s", g_dir);
    nops_sinks *sinks = nops_sinks_new();
    assert_int_equal(nops_sinks_add_jsonl(sinks, g_dir, 0, err, sizeof err), NOPS_OK);
    static nops_kafka_params skp;
    tu_kafka_params(&skp, g_boot, "unused");
    assert_int_equal(nops_sinks_add_kafka(sinks, &skp, "neuralops.signals", err, sizeof err),
                     NOPS_OK);
    if (g_dsn[0])
        assert_int_equal(nops_sinks_add_postgres(sinks, g_dsn, 0, err, sizeof err), NOPS_OK);
    else
        print_message("NEURALOPS_TEST_PG_DSN unset: the PostgreSQL sink is not checked\n");
    nops_pipeline *p = nops_pipeline_new(&kp, &pp, &dp, &cp, &sp, sinks, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(nops_pipeline_start(p, err, sizeof err), NOPS_OK);
    *sinks_out = sinks;
    return p;
}

static void run_once(void)
{
    if (g_ran)
        return;
    g_ran = true;
    char truth[600], path[700];
    g_pg = tu_pg_schema_opt("loadgen_test", g_dsn, sizeof g_dsn);
    if (!g_pg)
        g_dsn[0] = '\0';
    snprintf(truth, sizeof truth, "%s/truth.jsonl", g_dir);
    nops_sinks *sinks;
    nops_pipeline *p = start_pipeline(&sinks);
    /* 24 hosts (96 series) for 400 ticks: 120 quiet, then 4 incidents (one of each kind) */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s loadgen --brokers '%s' --series 96 --rate 19200 --seconds 2 --anomalies 4 "
             "--tick %d --truth %s --log-level warn",
             NEURALOPS_BIN, g_boot, TICK_S, truth);
    assert_int_equal(system(cmd), 0);
    for (int i = 0; i < 600; i++) { /* up to 60 s to consume it all */
        nops_pipeline_get_stats(p, &g_st);
        if (g_st.points >= EXPECTED_POINTS && g_st.lag == 0)
            break;
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    assert_int_equal(nops_pipeline_stop(p, 15000), NOPS_OK);
    nops_pipeline_destroy(p);
    nops_sinks_destroy(sinks);
    g_inj = read_jsonl(truth);
    snprintf(path, sizeof path, "%s/signals.jsonl", g_dir);
    g_sigs = read_jsonl(path);
    snprintf(path, sizeof path, "%s/incidents.jsonl", g_dir);
    g_incs = read_jsonl(path);
    print_message("%zu injected incidents, %zu signals, %zu incident records\n",
                  json_array_size(g_inj), json_array_size(g_sigs), json_array_size(g_incs));
    g_latest = json_object();
    size_t i;
    json_t *o;
    json_array_foreach(g_incs, i, o) json_object_set(g_latest, sget(o, "id"), o);
}

/* How many incidents (latest records) list signal `sid`; each one's record to fn when set. */
static int incidents_of(const char *sid, void (*fn)(json_t *inc, void *ud), void *ud)
{
    int in = 0;
    const char *id;
    json_t *inc;
    json_object_foreach(g_latest, id, inc) {
        size_t k;
        json_t *s;
        json_array_foreach(json_object_get(inc, "signals"), k, s) {
            if (strcmp(json_string_value(s), sid) == 0) {
                in++;
                if (fn)
                    fn(inc, ud);
            }
        }
    }
    return in;
}

/* Every point produced was consumed, none refused. */
static void test_loadgen_consumed(void **state)
{
    (void)state;
    run_once();
    assert_true(g_st.points == EXPECTED_POINTS);
    assert_int_equal(g_st.dlq, 0);
    assert_int_equal(json_array_size(g_inj), 4);
}

/* A run of known length ends at the wall clock: no point (so no signal) lies ahead of it,
 * however much data time the run replayed (it used to start at the wall clock and run 400
 * ticks ahead — a long demo ran past pipeline.max_future_s). */
static void test_loadgen_ends_at_wall_clock(void **state)
{
    (void)state;
    run_once();
    const int64_t wall = nops_wall_ns();
    size_t i;
    json_t *o;
    json_array_foreach(g_sigs, i, o)
        assert_true(ts_of(o, "ts") <= wall);
    json_array_foreach(g_inj, i, o)
        assert_true(ts_of(o, "end") <= wall);
}

/* Each signal is explained by an injected incident (but for a few false positives on the
 * noise) and sits in exactly one incident. */
static void test_signals_explained_once(void **state)
{
    (void)state;
    run_once();
    size_t unexplained = 0, i, j;
    json_t *o, *t;
    json_array_foreach(g_sigs, i, o) {
        bool ok = false;
        json_array_foreach(g_inj, j, t) ok = ok || explains(t, o, WINDOW);
        if (!ok) {
            unexplained++;
            print_message("false positive: %s %s z %.2f ewma %.2f at %s\n", sget(o, "series"),
                          sget(o, "method"), json_real_value(json_object_get(o, "zscore")),
                          json_real_value(json_object_get(o, "ewma")), sget(o, "ts"));
        }
        assert_int_equal(incidents_of(sget(o, "id"), NULL, NULL), 1);
    }
    assert_in_range(unexplained, 0, MAX_FALSE_POSITIVES);
}

static void same_service(json_t *inc, void *ud)
{
    assert_string_equal(sget(json_object_get(inc, "labels"), "service"), sget(ud, "service"));
}

/* Each injected incident is found, within its span, in an incident on its service. */
static void test_injections_found(void **state)
{
    (void)state;
    run_once();
    size_t i, j;
    json_t *o, *t;
    assert_true(json_array_size(g_inj) > 0);
    json_array_foreach(g_inj, j, t) {
        int found = 0;
        json_array_foreach(g_sigs, i, o) {
            if (!explains(t, o, 0))
                continue;
            found++;
            incidents_of(sget(o, "id"), same_service, t);
        }
        if (!found)
            fail_msg("missed: %s on %s/%s %s at %s", sget(t, "kind"), sget(t, "service"),
                     sget(t, "host"), sget(t, "metric"), sget(t, "start"));
    }
}

/* The same signals in every sink: JSONL, Kafka and PostgreSQL. */
static void test_same_signals_in_every_sink(void **state)
{
    (void)state;
    run_once();
    size_t i;
    json_t *o;
    char **ids = calloc(json_array_size(g_sigs) + 1, sizeof *ids);
    json_array_foreach(g_sigs, i, o) ids[i] = (char *)sget(o, "id");
    char *jsonl_set = id_set(ids, json_array_size(g_sigs));
    free(ids);
    char *kset = kafka_ids();
    assert_string_equal(kset, jsonl_set);
    free(kset);
    if (g_dsn[0]) {
        char *pset = pg_ids(g_dsn);
        assert_string_equal(pset, jsonl_set);
        free(pset);
    }
    free(jsonl_set);
}

static int teardown(void **state)
{
    (void)state;
    json_decref(g_latest);
    json_decref(g_inj);
    json_decref(g_sigs);
    json_decref(g_incs);
    if (g_pg)
        tu_pg_drop_schema(g_pg, "loadgen_test");
    rd_kafka_destroy(g_cluster);
    return tu_remove_tree(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loadgen_consumed),
        cmocka_unit_test(test_loadgen_ends_at_wall_clock),
        cmocka_unit_test(test_signals_explained_once),
        cmocka_unit_test(test_injections_found),
        cmocka_unit_test(test_same_signals_in_every_sink),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
