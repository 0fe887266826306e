/*
 * test_incident_hook.c — the pipeline's incident hook (nops_pipeline_set_incident_hook) against
 * the librdkafka mock cluster, with the JSONL sink:
 *   - the hook sees every incident record before the sinks do (as many calls as incident lines)
 *     with the events that happened: OPENED once, then UPDATED with NEW_SERIES when a second
 *     metric of the host joins, UPDATED after the restart, and RESOLVED on the resolve record;
 *   - a recommendation the hook attaches on OPENED only is on every later record of the
 *     incident in incidents.jsonl — the update, the update after a stop/start that restored the
 *     incident from its partition's snapshot, and the resolution;
 *   - fields other than the recommendations that the hook changes are not written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/testutil.h"
#include "tests/support/kafkautil.h"
#include "tests/support/pipeutil.h"

#include "ingest/ingest.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPIC "hk"
#define MAX_CALLS 64

static rd_kafka_t *g_cluster; /* producer handle hosting the mock cluster */
static char g_boot[512];

typedef struct hook_log {
    pthread_mutex_t mu;
    const char *playbook;     /* attached on OPENED */
    unsigned events[MAX_CALLS];
    char ids[MAX_CALLS][NOPS_ID_LEN];
    int n;                    /* calls */
} hook_log;

static void hook(void *ctx, nops_incident *inc, unsigned events)
{
    hook_log *l = ctx;
    pthread_mutex_lock(&l->mu);
    if (l->n < MAX_CALLS) {
        l->events[l->n] = events;
        memcpy(l->ids[l->n], inc->id, NOPS_ID_LEN);
    }
    l->n++;
    pthread_mutex_unlock(&l->mu);
    snprintf(inc->summary, sizeof inc->summary, "the hook may not change this");
    if (!(events & NOPS_INC_OPENED))
        return;
    inc->n_recos = 1;
    snprintf(inc->recos[0].playbook_id, sizeof inc->recos[0].playbook_id, "%s", l->playbook);
    inc->recos[0].score = 0.5f;
    inc->recos[0].confidence = 0.25f;
    inc->recos[0].evidence = 7;
    inc->recommended_ns = nops_wall_ns();
}

static int calls(hook_log *l)
{
    pthread_mutex_lock(&l->mu);
    int n = l->n;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

/* A deterministic noise in [-1, 1] per (series, tick). */
static double noise(uint64_t series, uint64_t t)
{
    uint64_t x = series * 0x9E3779B97F4A7C15ull + t * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    return (double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Ticks [from, to) of host web-1's cpu (spikes at the ticks in cpu_spikes) and mem (a spike at
 * mem_spike), 10 s apart, all keyed by the host (one partition). */
static void produce(int from, int to, const int *cpu_spikes, int n_spikes, int mem_spike,
                    int64_t t0)
{
    for (int t = from; t < to; t++)
        for (int s = 0; s < 2; s++) {
            bool spike = s == 1 && t == mem_spike;
            for (int k = 0; s == 0 && k < n_spikes; k++)
                spike |= t == cpu_spikes[k];
            char buf[200];
            double v = 100.0 + noise((uint64_t)s + 1, (uint64_t)t) + (spike ? 60.0 : 0.0);
            int n = snprintf(buf, sizeof buf, "%s,host=web-1,service=shop v=%.4f %lld",
                             s ? "mem" : "cpu", v, (long long)(t0 + (int64_t)t * 10000000000ll));
            assert_int_equal(tu_produce(g_cluster, TOPIC, RD_KAFKA_PARTITION_UA,
                                        "web-1", buf, (size_t)n), 0);
        }
    assert_int_equal(rd_kafka_flush(g_cluster, 10000), 0);
}

typedef struct running {
    nops_sinks *sinks;
    nops_pipeline *p;
} running;

static running start(const char *dir, hook_log *log)
{
    nops_kafka_params kp;
    tu_kafka_params(&kp, g_boot, "g-hook");
    snprintf(kp.topic, sizeof kp.topic, TOPIC);
    snprintf(kp.dlq_topic, sizeof kp.dlq_topic, TOPIC ".dlq");
    nops_pipeline_params pp = {2, 4096, 512, 100, 1000000, 1000, 0, 0, 0, 0};
    running r;
    r.p = tu_pipeline_new(dir, &kp, &pp, &r.sinks);
    nops_pipeline_set_incident_hook(r.p, hook, log);
    tu_pipeline_start(r.p);
    return r;
}

static void stop(running *r)
{
    assert_int_equal(nops_pipeline_stop(r->p, 15000), NOPS_OK);
    nops_pipeline_destroy(r->p);
    nops_sinks_destroy(r->sinks);
}

/* Wait (generously: the machine is shared) until the hook has seen a record with `bit`. */
static void await_event(hook_log *l, unsigned bit, const char *what)
{
    for (int i = 0; i < 1200; i++) {
        pthread_mutex_lock(&l->mu);
        bool seen = false;
        for (int k = 0; k < l->n && k < MAX_CALLS; k++)
            seen |= (l->events[k] & bit) != 0;
        pthread_mutex_unlock(&l->mu);
        if (seen)
            return;
        sleep_ms(100);
    }
    fail_msg("the hook never saw %s", what);
}

/* Every signal's latency (its points are 53-57 min old) in the quarter-octave histogram, and
 * the log2 one (what /metrics exports) its sums. */
static void check_latency_histograms(const nops_pipeline_stats *st)
{
    uint64_t in_q = 0, in_log2 = 0;
    for (int b = 0; b < 32; b++) {
        uint64_t quarters = 0;
        for (int k = 0; k < 4; k++)
            quarters += st->latency_us_q[b][k];
        assert_int_equal(st->latency_us_log2[b], quarters);
        in_q += quarters;
        in_log2 += st->latency_us_log2[b];
    }
    assert_true(st->signals > 0);
    assert_int_equal(in_q, st->signals);
    assert_int_equal(in_log2, st->signals);
}

/* Phase 2's hook calls: all of incident `id` (restored, never opened again), updated at least
 * once and resolved once. Returns how many there were. */
static int check_phase2_calls(hook_log *two, const char *id)
{
    const int n2 = calls(two);
    assert_true(n2 >= 2 && n2 <= MAX_CALLS);
    int resolved = 0, updated = 0;
    for (int k = 0; k < n2; k++) {
        assert_false(two->events[k] & NOPS_INC_OPENED); /* the restored incident carried on */
        assert_string_equal(two->ids[k], id);
        resolved += two->events[k] == NOPS_INC_RESOLVED;
        updated += (two->events[k] & NOPS_INC_UPDATED) != 0;
    }
    assert_int_equal(resolved, 1);
    assert_true(updated >= 1);
    return n2;
}

/* Every record of dir/incidents.jsonl is of incident `id`, carries phase 1's recommendation and
 * not the hook's summary. Returns how many records there were; *resolved_lines: resolved ones. */
static int check_jsonl_records(const char *dir, const char *id, int *resolved_lines)
{
    char path[256];
    snprintf(path, sizeof path, "%s/incidents.jsonl", dir);
    char *all = tu_read_file(path);
    assert_non_null(all);
    int lines = 0, resolved = 0;
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "id")), id);
        json_t *recos = json_object_get(o, "recommendations");
        assert_int_equal(json_array_size(recos), 1);
        json_t *first = json_array_get(recos, 0);
        assert_string_equal(json_string_value(json_object_get(first, "playbook_id")), "phase-1");
        assert_true(json_real_value(json_object_get(first, "score")) == 0.5);
        assert_int_equal(json_integer_value(json_object_get(first, "evidence")), 7);
        assert_null(strstr(json_string_value(json_object_get(o, "summary")), "the hook"));
        resolved += strcmp(json_string_value(json_object_get(o, "status")), "resolved") == 0;
        json_decref(o);
        lines++;
    }
    free(all);
    *resolved_lines = resolved;
    return lines;
}

static void test_hook_events_and_recos_carried(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-hook-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const int64_t t0 = nops_wall_ns() - 3600ll * 1000000000ll;
    hook_log one = {.mu = PTHREAD_MUTEX_INITIALIZER, .playbook = "phase-1"};
    hook_log two = {.mu = PTHREAD_MUTEX_INITIALIZER, .playbook = "phase-2"};

    /* phase 1: cpu spikes at 150 (opens), mem at 160 (a new series of the host joins) */
    const int spike1[] = {150};
    produce(0, 166, spike1, 1, 160, t0);
    running r = start(dir, &one);
    await_event(&one, NOPS_INC_NEW_SERIES, "the second metric joining");
    stop(&r); /* snapshots the partition, the incident open in it */
    assert_true(calls(&one) >= 2);
    assert_int_equal(one.events[0], NOPS_INC_OPENED);
    /* (a strong first signal made it warning already: SEVERITY_UP is test_correlate_recos's) */
    assert_int_equal(one.events[1] & ~(unsigned)NOPS_INC_SEVERITY_UP,
                     NOPS_INC_UPDATED | NOPS_INC_NEW_SERIES);
    assert_string_equal(one.ids[0], one.ids[1]);

    /* phase 2, a new pipeline: cpu again at 185 joins the restored incident; then it resolves */
    const int spike2[] = {185};
    produce(166, 420, spike2, 1, -1, t0);
    r = start(dir, &two);
    await_event(&two, NOPS_INC_RESOLVED, "the resolution");
    nops_pipeline_stats st;
    nops_pipeline_get_stats(r.p, &st);
    stop(&r);
    assert_true(st.restored_series > 0); /* warm: state came from the snapshot */
    assert_int_equal(st.incidents_opened, 0);
    check_latency_histograms(&st);
    const int n2 = check_phase2_calls(&two, one.ids[0]);

    /* every record in the JSONL sink carries phase 1's recommendation, none the hook's summary */
    int resolved_lines;
    const int lines = check_jsonl_records(dir, one.ids[0], &resolved_lines);
    print_message("  %d incident record(s), hook calls %d + %d\n", lines, calls(&one), n2);
    assert_int_equal(lines, calls(&one) + n2); /* one call per record written */
    assert_int_equal(resolved_lines, 1);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    static const tu_topic topics[] = {{TOPIC, 2}, {TOPIC ".dlq", 1}};
    g_cluster = tu_mock_cluster(3, topics, 2, g_boot, sizeof g_boot);
    return g_cluster ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rd_kafka_destroy(g_cluster);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hook_events_and_recos_carried),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
