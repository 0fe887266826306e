/*
 * test_sinks.c — the JSONL, Kafka and PostgreSQL sinks against the real things: files, the
 * librdkafka mock cluster read back by `kcat`, and the PostgreSQL server `make test` starts
 * (tests/with-postgres.sh exports NEURALOPS_TEST_PG_DSN and commands to stop and start it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sinks/sinks.h"
#include "tests/support/kafkautil.h"
#include "tests/support/pgutil.h"

#include <jansson.h>
#include <pthread.h>
#include <time.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static nops_signal make_signal(int i)
{
    nops_signal s;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "%016x", 0xabc000 + i);
    char key[128];
    snprintf(key, sizeof key, "cpu_usage{host=\"web-%d\",service=\"checkout\"}", i);
    assert_int_equal(nops_signal_set_series(&s, key), NOPS_OK);
    s.ts_ns = 1700000000000000000ll + i * 1000000000ll;
    s.value = 95.5 + i;
    s.method = i % 2 ? NOPS_FIRED_EWMA : NOPS_FIRED_ZSCORE;
    s.zscore = 6.25f;
    s.ewma = 5.5f;
    s.score = 0.9;
    snprintf(s.hint, sizeof s.hint, "cpu_usage{host=web-%d} is 6.2σ above its rolling mean", i);
    return s;
}

static nops_incident make_incident(const char *id, int n, bool resolved)
{
    nops_incident inc;
    memset(&inc, 0, sizeof inc);
    snprintf(inc.id, sizeof inc.id, "%s", id);
    inc.status = resolved ? NOPS_INCIDENT_RESOLVED : NOPS_INCIDENT_OPEN;
    inc.opened_ns = 1700000000000000000ll;
    inc.updated_ns = inc.opened_ns + n * 1000000000ll;
    inc.n_signals = (uint32_t)n;
    for (int i = 0; i < n; i++)
        snprintf(inc.signals[i], NOPS_ID_LEN, "%016x", 0xabc000 + i);
    snprintf(inc.labels, sizeof inc.labels, "service=\"checkout\"");
    assert_int_equal(nops_labels_add(&inc.common, "service", 7, "checkout", 8), NOPS_OK);
    snprintf(inc.summary, sizeof inc.summary, "%d signal(s)", n);
    snprintf(inc.root_cause_hint, sizeof inc.root_cause_hint, "earliest: web-0");
    return inc;
}

/* Attach two recommendations, as the pipeline's incident hook does. */
static void add_recos(nops_incident *inc)
{
    inc->n_recos = 2;
    snprintf(inc->recos[0].playbook_id, sizeof inc->recos[0].playbook_id, "scale-out");
    inc->recos[0].score = 0.1f; /* written 0.1, not 0.100000001 */
    inc->recos[0].confidence = 0.875f;
    inc->recos[0].evidence = 12;
    snprintf(inc->recos[1].playbook_id, sizeof inc->recos[1].playbook_id, "restart-pod");
    inc->recos[1].score = 0.05f;
    inc->recos[1].confidence = 0.25f;
    inc->recos[1].evidence = 3;
    inc->recommended_ns = inc->opened_ns + 1;
}

/* The "recommendations" of an incident line: [] without, the two of add_recos with. */
static void check_recos_json(const char *line, bool with)
{
    json_t *o = json_loads(line, 0, NULL);
    assert_non_null(o);
    json_t *r = json_object_get(o, "recommendations");
    assert_true(json_is_array(r));
    assert_int_equal(json_array_size(r), with ? 2 : 0);
    if (with) {
        json_t *first = json_array_get(r, 0);
        assert_int_equal(json_object_size(first), 4);
        assert_string_equal(json_string_value(json_object_get(first, "playbook_id")),
                            "scale-out");
        assert_true(json_real_value(json_object_get(first, "score")) == 0.1);
        assert_true(json_real_value(json_object_get(first, "confidence")) == 0.875);
        assert_int_equal(json_integer_value(json_object_get(first, "evidence")), 12);
        assert_string_equal(json_string_value(json_object_get(json_array_get(r, 1),
                                                              "playbook_id")),
                            "restart-pod");
        assert_non_null(strstr(line, "\"score\":0.1,"));
    }
    json_decref(o);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    return b;
}

/* A sink that remembers what it was given and refuses signals (or everything) on demand. */
typedef struct test_sink {
    bool refuse_signals;  /* write() fails for signals */
    bool refuse_all;      /* write() fails for everything */
    char kinds[64];       /* kinds written, in order: 's' or 'i' */
    size_t n;
    int flushes;          /* successful flushes */
} test_sink;

static nops_err ts_write(void *self, int kind, const char *json, size_t len)
{
    test_sink *t = self;
    if (t->refuse_all || (t->refuse_signals && kind == NOPS_SINK_SIGNAL))
        return NOPS_IO;
    json_t *o = json_loadb(json, len, 0, NULL); /* whole JSON */
    assert_non_null(o);
    json_decref(o);
    if (t->n < sizeof t->kinds - 1)
        t->kinds[t->n++] = kind == NOPS_SINK_SIGNAL ? 's' : 'i';
    return NOPS_OK;
}

static nops_err ts_flush(void *self, char *errstr, size_t errstr_size)
{
    (void)errstr;
    (void)errstr_size;
    ((test_sink *)self)->flushes++;
    return NOPS_OK;
}

static void ts_destroy(void *self)
{
    (void)self;
}

static const nops_sink_ops test_ops = {"test", ts_write, ts_flush, ts_destroy, false};

/* A flush_concurrent sink whose flush waits (up to 10 s) for a write from another thread: the
 * write of a worker during a flush's I/O (the JSONL sink's fsync). */
typedef struct slow_sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool in_flush;       /* the flush has started its "I/O" */
    int written;         /* records written */
    int written_during;  /* records written while the flush waited */
    int flushes;
} slow_sink;

static nops_err ss_write(void *self, int kind, const char *json, size_t len)
{
    slow_sink *t = self;
    (void)kind, (void)json, (void)len;
    pthread_mutex_lock(&t->mu);
    t->written++;
    t->written_during += t->in_flush;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return NOPS_OK;
}

static nops_err ss_flush(void *self, char *errstr, size_t errstr_size)
{
    slow_sink *t = self;
    (void)errstr, (void)errstr_size;
    pthread_mutex_lock(&t->mu);
    t->in_flush = true;
    pthread_cond_broadcast(&t->cv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10; /* a bound, not a timing: a write blocked by the set never comes */
    while (t->written_during == 0 && t->flushes == 0 &&
           pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
        ;
    t->in_flush = false;
    t->flushes++;
    pthread_mutex_unlock(&t->mu);
    return NOPS_OK;
}

static const nops_sink_ops slow_ops = {"slow", ss_write, ss_flush, ts_destroy, true};

static void *flush_thread(void *set)
{
    char err[256];
    return (void *)(intptr_t)nops_sinks_flush(set, err, sizeof err);
}

/* A signal given to the set while a flush_concurrent sink is inside its flush is taken at once,
 * not after the flush: the pipeline's workers used to wait for every checkpoint's fsync (tens
 * of ms on a busy disk, added to those signals' latency) because the set held its lock through
 * the sinks' flushes. */
static void test_write_during_concurrent_flush(void **state)
{
    (void)state;
    slow_sink t = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    nops_sinks *set = nops_sinks_new();
    assert_int_equal(nops_sinks_add(set, &slow_ops, &t), NOPS_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flush_thread, set), 0);
    pthread_mutex_lock(&t.mu);
    while (!t.in_flush)
        pthread_cond_wait(&t.cv, &t.mu);
    pthread_mutex_unlock(&t.mu);
    nops_signal s = make_signal(7);
    assert_int_equal(nops_sinks_signal(set, &s), NOPS_OK);
    void *ret;
    assert_int_equal(pthread_join(th, &ret), 0);
    assert_int_equal((nops_err)(intptr_t)ret, NOPS_OK);
    assert_int_equal(t.written, 1);
    assert_int_equal(t.written_during, 1); /* it did not wait for the flush to end */
    assert_int_equal(t.flushes, 1);
    nops_sinks_stats st;
    nops_sinks_get_stats(set, &st);
    assert_int_equal(st.signals, 1);
    assert_int_equal(st.flushes, 1);
    nops_sinks_destroy(set);
}

/* A sink that refuses a signal: the set keeps it (and what follows, in order), every flush
 * fails until the sink takes it, and then it arrives; nothing is lost on the way. */
static void test_refused_signal_is_kept_and_flush_fails(void **state)
{
    test_sink t = {.refuse_signals = true};
    nops_sinks *set = nops_sinks_new();
    assert_int_equal(nops_sinks_add(set, &test_ops, &t), NOPS_OK);
    nops_signal s = make_signal(1);
    nops_incident inc = make_incident("00000000000000ee", 1, false);
    assert_int_equal(nops_sinks_signal(set, &s), NOPS_OK); /* kept, not lost */
    assert_int_equal(nops_sinks_incident(set, &inc), NOPS_OK);
    assert_int_equal(t.n, 0); /* the incident waits behind the refused signal */
    char err[256] = "";
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_IO);
    assert_non_null(strstr(err, "test sink"));
    assert_non_null(strstr(err, "refused"));
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_IO);
    nops_sinks_stats st;
    nops_sinks_get_stats(set, &st);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.held, 2);
    assert_int_equal(st.signals, 1); /* taken by the set (kept), not lost */
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.flush_failures, 2);
    t.refuse_signals = false; /* the sink recovers: both arrive, in order */
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_OK);
    assert_string_equal(t.kinds, "si");
    nops_sinks_get_stats(set, &st);
    assert_int_equal(st.held, 0);
    assert_int_equal(st.flushes, 1);
    nops_sinks_destroy(set);
}

static void count_error_lines(void *ud, nops_log_level level, const char *line)
{
    (void)line;
    *(int *)ud += level == NOPS_LOG_ERROR;
}

/* A record that can be kept nowhere (no memory for it) is counted, and from then on every flush
 * fails, so the caller never commits past it. Losses in a row make one log line, not one each. */
static void test_lost_record_fails_every_flush(void **state)
{
    test_sink t = {.refuse_all = true};
    nops_sinks *set = nops_sinks_new();
    assert_int_equal(nops_sinks_add(set, &test_ops, &t), NOPS_OK);
    nops_signal s = make_signal(2);
    int lines = 0;
    nops_log_set_sink(count_error_lines, &lines);
    for (int i = 0; i < 3; i++) {
        nops_alloc_fail_after(0, true);
        nops_err e = nops_sinks_signal(set, &s);
        nops_alloc_fail_after(-1, false);
        assert_int_not_equal(e, NOPS_OK);
    }
    nops_log_set_sink(NULL, NULL);
    assert_int_equal(lines, 1);
    nops_sinks_stats st;
    nops_sinks_get_stats(set, &st);
    assert_int_equal(st.dropped, 3);
    t.refuse_all = false;
    char err[256] = "";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_IO);
        assert_non_null(strstr(err, "restart to replay"));
    }
    nops_sinks_destroy(set);
}

/* Labels whose JSON is far over 4 KiB (control characters escape to six bytes each), and
 * text that is not UTF-8 (a hint cut inside a character), are written whole and valid. */
static void test_large_and_broken_records_written_whole(void **state)
{
    char dir[] = "/tmp/nops-sink-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[256];
    nops_sinks *set = nops_sinks_new();
    assert_int_equal(nops_sinks_add_jsonl(set, dir, 0, err, sizeof err), NOPS_OK);
    nops_signal s = make_signal(7);
    char value[901];
    memset(value, '\x01', 900);
    value[900] = '\0';
    char key[1000];
    snprintf(key, sizeof key, "cpu{host=\"%s\",service=\"checkout\"}", value);
    assert_int_equal(nops_signal_set_series(&s, key), NOPS_OK);
    char small[4096];
    assert_int_equal(nops_signal_json(&s, small, sizeof small), 0); /* > 4 KiB of JSON */
    assert_int_equal(nops_sinks_signal(set, &s), NOPS_OK);
    nops_signal bad = make_signal(8);
    snprintf(bad.hint, sizeof bad.hint, "latency{city=\"K\xc3\xb6ln\"} is hig\xc3");
    assert_int_equal(nops_sinks_signal(set, &bad), NOPS_OK);
    nops_incident inc = make_incident("00000000000000ff", 2, false);
    snprintf(inc.summary, sizeof inc.summary, "2 signals sharing city=\"K\xc3");
    assert_int_equal(nops_sinks_incident(set, &inc), NOPS_OK);
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_OK);
    char path[160];
    snprintf(path, sizeof path, "%s/signals.jsonl", dir);
    char *all = read_all(path);
    char *nl = strchr(all, '\n');
    assert_non_null(nl);
    assert_true(nl - all > 4096);
    *nl = '\0';
    json_t *o = json_loads(all, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "labels"), "host")),
                        value);
    assert_string_equal(json_string_value(json_object_get(o, "series")), s.series);
    json_decref(o);
    o = json_loads(nl + 1, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "hint")),
                        "latency{city=\"K\xc3\xb6ln\"} is hig\xef\xbf\xbd");
    json_decref(o);
    free(all);
    snprintf(path, sizeof path, "%s/incidents.jsonl", dir);
    all = read_all(path);
    o = json_loads(all, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "summary")),
                        "2 signals sharing city=\"K\xef\xbf\xbd");
    json_decref(o);
    free(all);
    nops_sinks_stats st;
    nops_sinks_get_stats(set, &st);
    assert_int_equal(st.signals, 2);
    assert_int_equal(st.incidents, 1);
    assert_int_equal(st.dropped, 0);
    nops_sinks_destroy(set);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_signal_json_shape(void **state)
{
    nops_signal s = make_signal(3);
    char buf[4096];
    size_t n = nops_signal_json(&s, buf, sizeof buf);
    assert_true(n > 0 && n == strlen(buf));
    json_error_t e;
    json_t *o = json_loads(buf, 0, &e);
    assert_non_null(o);
    const char *keys[] = {"id", "series", "metric", "labels", "ts", "value", "method",
                          "zscore", "ewma", "score", "hint"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(json_object_get(o, keys[i]));
    assert_string_equal(json_string_value(json_object_get(o, "metric")), "cpu_usage");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "labels"), "host")),
                        "web-3");
    assert_string_equal(json_string_value(json_object_get(o, "ts")), "2023-11-14T22:13:23.000Z");
    assert_string_equal(json_string_value(json_object_get(o, "method")), "ewma");
    json_decref(o);
    /* every detector is named (a season signal was written as "zscore" before) */
    const struct { nops_method_fired m; const char *name; } names[] = {
        {NOPS_FIRED_ZSCORE, "zscore"}, {NOPS_FIRED_EWMA, "ewma"}, {NOPS_FIRED_CUSUM, "cusum"},
        {NOPS_FIRED_SEASON, "season"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        nops_signal t = s;
        t.method = names[i].m;
        assert_true(nops_signal_json(&t, buf, sizeof buf) > 0);
        o = json_loads(buf, 0, &e);
        assert_string_equal(json_string_value(json_object_get(o, "method")), names[i].name);
        json_decref(o);
    }
    nops_incident inc = make_incident("00000000000000aa", 2, false);
    n = nops_incident_json(&inc, buf, sizeof buf);
    o = json_loads(buf, 0, &e);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "open");
    assert_int_equal(json_array_size(json_object_get(o, "signals")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "labels"), "service")), "checkout");
    json_decref(o);
    check_recos_json(buf, false); /* none attached: [] */
    add_recos(&inc);
    assert_true(nops_incident_json(&inc, buf, sizeof buf) > 0);
    check_recos_json(buf, true);
    inc.n_recos = 200; /* a count past the array writes what the array holds */
    assert_true(nops_incident_json(&inc, buf, sizeof buf) > 0);
    o = json_loads(buf, 0, &e);
    assert_int_equal(json_array_size(json_object_get(o, "recommendations")),
                     NOPS_INCIDENT_MAX_RECOS);
    json_decref(o);
    assert_int_equal(nops_signal_json(&s, buf, 10), 0); /* too small: refused, not truncated */
}

static void test_jsonl_sink(void **state)
{
    char dir[] = "/tmp/nops-sink-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[256];
    nops_sinks *set = nops_sinks_new();
    assert_int_equal(nops_sinks_add_jsonl(set, dir, 4096, err, sizeof err), NOPS_OK);
    for (int i = 0; i < 5; i++) {
        nops_signal s = make_signal(i);
        assert_int_equal(nops_sinks_signal(set, &s), NOPS_OK);
    }
    nops_incident inc = make_incident("00000000000000bb", 5, false);
    add_recos(&inc);
    assert_int_equal(nops_sinks_incident(set, &inc), NOPS_OK);
    char path[128];
    snprintf(path, sizeof path, "%s/signals.jsonl", dir);
    FILE *f = fopen(path, "r");
    fseek(f, 0, SEEK_END);
    assert_int_equal(ftell(f), 0); /* buffered until the flush */
    fclose(f);
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_OK);
    f = fopen(path, "r");
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        assert_non_null(o);
        json_decref(o);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 5);
    snprintf(path, sizeof path, "%s/incidents.jsonl", dir);
    char *incs = read_all(path);
    assert_non_null(strchr(incs, '\n'));
    *strchr(incs, '\n') = '\0';
    check_recos_json(incs, true); /* the incident line carries its recommendations */
    free(incs);
    snprintf(path, sizeof path, "%s/signals.jsonl", dir);
    /* the bound: 4 KiB per file; past it the sink refuses, the set keeps the records and the
     * next flush writes every one of them, in order (nothing dropped) */
    for (int i = 100; i < 200; i++) {
        nops_signal s = make_signal(i);
        assert_int_equal(nops_sinks_signal(set, &s), NOPS_OK);
    }
    nops_sinks_stats st;
    nops_sinks_get_stats(set, &st);
    assert_true(st.refused >= 1);
    assert_true(st.held >= 50);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.flushes, 1);
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_OK);
    nops_sinks_get_stats(set, &st);
    assert_int_equal(st.held, 0);
    assert_int_equal(st.signals, 105);
    char *all = read_all(path);
    const char *at = all;
    for (int i = 100; i < 200; i++) { /* each once, in the order written */
        char id[40];
        snprintf(id, sizeof id, "\"id\":\"%016x\"", 0xabc000 + i);
        const char *hit = strstr(at, id);
        if (!hit)
            fail_msg("signal %d missing or out of order", i);
        assert_null(strstr(hit + 1, id));
        at = hit;
    }
    free(all);
    nops_sinks_destroy(set);
    set = nops_sinks_new();
    assert_int_equal(nops_sinks_add_jsonl(set, "/proc/nope/neuralops", 0, err, sizeof err),
                     NOPS_IO);
    assert_non_null(strstr(err, "/proc/nope/neuralops"));
    nops_sinks_destroy(set);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_kafka_sink(void **state)
{
    char err[256], boot[256];
    const tu_topic topics[] = {{"neuralops.signals", 2}};
    rd_kafka_t *host = tu_mock_cluster(1, topics, 1, boot, sizeof boot);
    assert_non_null(host);
    /* the sink's producer gets the client settings every client gets: kafka.extra (the comma
     * form, here debug=conf: librdkafka logs the configuration it was given) and
     * [kafka.librdkafka] (a value holding commas and '=') */
    static nops_kafka_params kp;
    tu_kafka_params(&kp, boot, "unused");
    snprintf(kp.extra, sizeof kp.extra, "debug=conf,socket.keepalive.enable=true");
    assert_int_equal(nops_cfg_map_set(&kp.librdkafka, "sasl.kerberos.kinit.cmd",
                                      "kinit -k -t /k,tab p=1"),
                     NOPS_OK);
    static tu_logcap lc;
    tu_logcap_start(&lc);
    nops_sinks *set = nops_sinks_new();
    nops_err added = nops_sinks_add_kafka(set, &kp, "neuralops.signals", err, sizeof err);
    tu_logcap_stop(&lc);
    assert_int_equal(added, NOPS_OK);
    if (!tu_logcap_has(&lc, "neuralops-sink#producer", "sasl.kerberos.kinit.cmd = kinit -k -t "
                                                       "/k,tab p=1") ||
        !tu_logcap_has(&lc, "neuralops-sink#producer", "socket.keepalive.enable = true"))
        fail_msg("the Kafka sink's producer was not given the client settings:\n%s", lc.buf);
    for (int i = 0; i < 7; i++) {
        nops_signal s = make_signal(i);
        assert_int_equal(nops_sinks_signal(set, &s), NOPS_OK);
    }
    nops_incident inc = make_incident("00000000000000cc", 7, true);
    add_recos(&inc);
    nops_sinks_incident(set, &inc);
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_OK);
    char out[] = "/tmp/nops-kcat-XXXXXX";
    int fd = mkstemp(out);
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "kcat -C -b '%s' -t neuralops.signals -o beginning -e -q -f '%%h %%s\\n' > %s", boot,
             out);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(out, "r");
    char line[4096];
    int signals = 0, incidents = 0;
    while (fgets(line, sizeof line, f)) {
        signals += strncmp(line, "kind=signal {", 13) == 0;
        if (strncmp(line, "kind=incident {", 15) == 0) {
            incidents++;
            check_recos_json(line + 14, true); /* the message carries its recommendations */
        }
    }
    fclose(f);
    unlink(out);
    assert_int_equal(signals, 7);
    assert_int_equal(incidents, 1);
    nops_sinks_destroy(set);
    rd_kafka_destroy(host);
}

static long pg_count(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* A fresh schema holding an incidents table of an earlier version (no severity, no
 * recommendations) for the sink to upgrade; its connection string goes to dsn. */
static void pg_old_schema(char *dsn, size_t dsn_size)
{
    PGconn *old = tu_pg_schema("sinks_test", dsn, dsn_size); /* the sink creates its tables */
    /* an incidents table of an earlier version (no severity): the sink adds the column */
    PGresult *res = PQexec(old, "CREATE TABLE incidents (id text PRIMARY KEY, status text NOT "
                                "NULL, opened_at timestamptz NOT NULL, updated_at timestamptz "
                                "NOT NULL, signals jsonb NOT NULL, signal_count integer, labels "
                                "jsonb NOT NULL DEFAULT '{}', summary text, root_cause_hint text)");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(old);
}

/* Hand the set four signals and a replay of one, then incident 00..dd opened and resolved
 * (critical, with add_recos' two; the resolved record is left in *b) and 00..de without any. */
static void pg_write_first_records(nops_sinks *set, nops_incident *b)
{
    for (int i = 0; i < 4; i++) {
        nops_signal s = make_signal(i);
        nops_sinks_signal(set, &s);
    }
    nops_signal dup = make_signal(2); /* a replay: same id */
    nops_sinks_signal(set, &dup);
    nops_incident a = make_incident("00000000000000dd", 1, false);
    *b = make_incident("00000000000000dd", 3, true); /* the same incident, later */
    b->severity = NOPS_SEVERITY_CRITICAL;
    add_recos(b);
    nops_incident plain = make_incident("00000000000000de", 1, false); /* none attached */
    nops_sinks_incident(set, &a);
    nops_sinks_incident(set, b);
    nops_sinks_incident(set, &plain);
}

/* The tables after the first flush: one row per signal id, the incident's later record (with
 * its recommendations, in the column added to the earlier table), [] for the one without. */
static void pg_check_first_records(PGconn *c)
{
    assert_int_equal(pg_count(c, "SELECT count(*) FROM insight_signals"), 4);
    assert_int_equal(pg_count(c, "SELECT count(*) FROM insight_signals WHERE "
                                 "labels->>'host' = 'web-1' AND method = 'ewma' AND "
                                 "ts = '2023-11-14T22:13:21Z' AND metric = 'cpu_usage'"),
                     1);
    assert_int_equal(pg_count(c, "SELECT count(*) FROM incidents WHERE status = 'resolved' AND "
                                 "signal_count = 3 AND jsonb_array_length(signals) = 3 AND "
                                 "severity = 'critical'"),
                     1);
    /* the recommendations column, added to the earlier table, holds the record's array */
    assert_int_equal(pg_count(c, "SELECT count(*) FROM incidents WHERE id = '00000000000000dd' "
                                 "AND jsonb_array_length(recommendations) = 2 AND "
                                 "recommendations->0->>'playbook_id' = 'scale-out' AND "
                                 "(recommendations->0->>'evidence')::int = 12 AND "
                                 "(recommendations->0->>'confidence')::float8 = 0.875 AND "
                                 "recommendations->1->>'playbook_id' = 'restart-pod'"),
                     1);
    assert_int_equal(pg_count(c, "SELECT count(*) FROM incidents WHERE id = '00000000000000de' "
                                 "AND recommendations = '[]'::jsonb"),
                     1);
}

/* An upsert of incident *b with one other recommendation replaces its two in the table. */
static void pg_check_upsert_replaces_recos(nops_sinks *set, PGconn *c, nops_incident *b)
{
    char err[512];
    b->n_recos = 1;
    snprintf(b->recos[0].playbook_id, sizeof b->recos[0].playbook_id, "rollback-deploy");
    nops_sinks_incident(set, b);
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_OK);
    assert_int_equal(pg_count(c, "SELECT count(*) FROM incidents WHERE id = '00000000000000dd' "
                                 "AND jsonb_array_length(recommendations) = 1 AND "
                                 "recommendations->0->>'playbook_id' = 'rollback-deploy'"),
                     1);
}

/* The server goes down: flushes fail and keep three more signals; it comes back: they arrive
 * (seen on a new connection, which then drops the schema; c is closed). */
static void pg_check_outage_then_recovery(nops_sinks *set, PGconn *c, const char *dsn)
{
    char err[512];
    const char *stop = getenv("NEURALOPS_TEST_PG_STOP"), *start = getenv("NEURALOPS_TEST_PG_START");
    assert_non_null(stop);
    assert_int_equal(system(stop), 0);
    for (int i = 10; i < 13; i++) {
        nops_signal s = make_signal(i);
        nops_sinks_signal(set, &s);
    }
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_IO);
    assert_non_null(strstr(err, "postgres sink"));
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_IO);
    assert_int_equal(system(start), 0);
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_OK);
    PQfinish(c);
    c = PQconnectdb(dsn);
    assert_int_equal(pg_count(c, "SELECT count(*) FROM insight_signals"), 7);
    tu_pg_drop_schema(c, "sinks_test");
}

static void test_postgres_sink(void **state)
{
    char dsn[600], err[512];
    pg_old_schema(dsn, sizeof dsn);
    nops_sinks *set = nops_sinks_new();
    assert_int_equal(nops_sinks_add_postgres(set, dsn, 0, err, sizeof err), NOPS_OK);
    nops_sinks *again = nops_sinks_new(); /* the schema step is idempotent */
    assert_int_equal(nops_sinks_add_postgres(again, dsn, 0, err, sizeof err), NOPS_OK);
    nops_sinks_destroy(again);
    PGconn *c = PQconnectdb(dsn);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    nops_incident b;
    pg_write_first_records(set, &b);
    assert_int_equal(nops_sinks_flush(set, err, sizeof err), NOPS_OK);
    pg_check_first_records(c);
    /* an upsert replaces them with the newer record's */
    pg_check_upsert_replaces_recos(set, c, &b);

    /* the server goes down: flushes fail and keep the records; it comes back: they arrive */
    pg_check_outage_then_recovery(set, c, dsn);
    nops_sinks_stats st;
    nops_sinks_get_stats(set, &st);
    assert_int_equal(st.flush_failures, 2);
    nops_sinks_destroy(set);

    set = nops_sinks_new();
    assert_int_equal(nops_sinks_add_postgres(set, "host=127.0.0.1 port=1 connect_timeout=2", 0,
                                             err, sizeof err),
                     NOPS_IO);
    assert_non_null(strstr(err, "cannot connect"));
    nops_sinks_destroy(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_json_shape),
        cmocka_unit_test(test_jsonl_sink),
        cmocka_unit_test(test_refused_signal_is_kept_and_flush_fails),
        cmocka_unit_test(test_write_during_concurrent_flush),
        cmocka_unit_test(test_lost_record_fails_every_flush),
        cmocka_unit_test(test_large_and_broken_records_written_whole),
        cmocka_unit_test(test_kafka_sink),
        cmocka_unit_test(test_postgres_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
