/*
 * test_store.c — the API's in-memory store of recent signals and incidents: the ring bound,
 * newest-first pages and cursors that stay stable while records arrive, label/time/status
 * filters, incident updates and eviction, seeding from JSONL tails, and what it refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "sinks/sinks.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void add_signal(nops_store *st, int i, const char *svc)
{
    char line[512];
    int n = snprintf(line, sizeof line,
                     "{\"id\":\"s%04d\",\"series\":\"x\",\"metric\":\"x\",\"labels\":{\"service\":"
                     "\"%s\",\"host\":\"h%d\"},\"ts\":\"2024-01-01T00:%02d:%02dZ\",\"value\":1}",
                     i, svc, i % 3, i / 60, i % 60);
    assert_int_equal(nops_store_add(st, NOPS_SINK_SIGNAL, line, (size_t)n), NOPS_OK);
}

static void add_incident(nops_store *st, const char *id, const char *status, int upd_min)
{
    char line[512];
    int n = snprintf(line, sizeof line,
                     "{\"id\":\"%s\",\"status\":\"%s\",\"opened_at\":\"2024-01-01T00:00:00Z\","
                     "\"updated_at\":\"2024-01-01T00:%02d:00Z\",\"signals\":[],\"labels\":"
                     "{\"service\":\"a\"}}",
                     id, status, upd_min);
    assert_int_equal(nops_store_add(st, NOPS_SINK_INCIDENT, line, (size_t)n), NOPS_OK);
}

/* Run a query; returns the page as JSON (caller decrefs). */
static json_t *page(nops_store *st, int kind, nops_store_query q)
{
    nops_buf b = {0};
    char err[128];
    assert_int_equal(nops_store_page(st, kind, &q, &b, err, sizeof err), NOPS_OK);
    json_t *o = json_loadb(b.b, b.len, 0, NULL);
    assert_non_null(o);
    nops_free(b.b);
    return o;
}

static const char *item_id(json_t *pg, const char *key, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(pg, key), i), "id"));
}

static void test_ring_and_pages(void **state)
{
    nops_store *st = nops_store_new(100, 10);
    for (int i = 0; i < 250; i++)
        add_signal(st, i, i % 2 ? "odd" : "even");
    size_t ns, ni;
    nops_store_counts(st, &ns, &ni);
    assert_int_equal(ns, 100); /* the oldest 150 went */
    assert_int_equal(ni, 0);
    json_t *p = page(st, NOPS_SINK_SIGNAL, (nops_store_query){.limit = 30});
    assert_int_equal(json_array_size(json_object_get(p, "signals")), 30);
    assert_string_equal(item_id(p, "signals", 0), "s0249"); /* newest first */
    assert_string_equal(item_id(p, "signals", 29), "s0220");
    uint64_t cursor = strtoull(json_string_value(json_object_get(p, "next_cursor")), NULL, 10);
    json_decref(p);
    /* new records do not shift the next page */
    add_signal(st, 250, "odd");
    p = page(st, NOPS_SINK_SIGNAL, (nops_store_query){.limit = 30, .cursor = cursor});
    assert_string_equal(item_id(p, "signals", 0), "s0219");
    json_decref(p);
    /* walk to the end: 101 records now held, 4 pages of 30 */
    size_t total = 0, pages = 0;
    cursor = 0;
    for (;;) {
        p = page(st, NOPS_SINK_SIGNAL, (nops_store_query){.limit = 30, .cursor = cursor});
        total += json_array_size(json_object_get(p, "signals"));
        pages++;
        json_t *nc = json_object_get(p, "next_cursor");
        if (json_is_null(nc)) {
            json_decref(p);
            break;
        }
        cursor = strtoull(json_string_value(nc), NULL, 10);
        json_decref(p);
    }
    assert_int_equal(total, 100);
    assert_int_equal(pages, 4);
    nops_store_destroy(st);
}

static void test_filters(void **state)
{
    nops_store *st = nops_store_new(1000, 10);
    for (int i = 0; i < 120; i++)
        add_signal(st, i, i % 2 ? "odd" : "even");
    json_t *p = page(st, NOPS_SINK_SIGNAL,
                     (nops_store_query){.limit = 1000, .labels = "service=odd,host=h1"});
    /* odd i with i % 3 == 1: 1, 7, 13, ... */
    assert_int_equal(json_array_size(json_object_get(p, "signals")), 20);
    json_decref(p);
    int64_t t60 = 1704067260ll * 1000000000ll; /* 00:01:00 */
    p = page(st, NOPS_SINK_SIGNAL, (nops_store_query){.limit = 1000, .since_ns = t60});
    assert_int_equal(json_array_size(json_object_get(p, "signals")), 60);
    json_decref(p);
    p = page(st, NOPS_SINK_SIGNAL,
             (nops_store_query){.limit = 1000, .since_ns = t60, .until_ns = t60});
    assert_int_equal(json_array_size(json_object_get(p, "signals")), 1);
    json_decref(p);
    /* a value is matched whole, not as a prefix */
    p = page(st, NOPS_SINK_SIGNAL, (nops_store_query){.limit = 1000, .labels = "service=od"});
    assert_int_equal(json_array_size(json_object_get(p, "signals")), 0);
    json_decref(p);
    nops_buf b = {0};
    char err[128] = "";
    assert_int_equal(nops_store_page(st, NOPS_SINK_SIGNAL,
                                     &(nops_store_query){.limit = 5, .labels = "service"}, &b,
                                     err, sizeof err),
                     NOPS_INVAL);
    assert_non_null(strstr(err, "key=value"));
    nops_free(b.b);
    nops_store_destroy(st);
}

/* An incident reopened by the correlator (correlate.reopen_s): open, resolved, open again
 * under one id — the latest record wins, GET /incidents lists it open once. */
static void test_incident_reopened(void **state)
{
    (void)state;
    nops_store *st = nops_store_new(10, 3);
    add_incident(st, "i1", "open", 1);
    add_incident(st, "i1", "resolved", 2);
    add_incident(st, "i1", "open", 3);
    json_t *p = page(st, NOPS_SINK_INCIDENT, (nops_store_query){.limit = 10, .status = "open"});
    assert_int_equal(json_array_size(json_object_get(p, "incidents")), 1);
    assert_string_equal(item_id(p, "incidents", 0), "i1");
    json_decref(p);
    p = page(st, NOPS_SINK_INCIDENT, (nops_store_query){.limit = 10, .status = "resolved"});
    assert_int_equal(json_array_size(json_object_get(p, "incidents")), 0);
    json_decref(p);
    nops_buf b = {0};
    assert_int_equal(nops_store_incident(st, "i1", &b), NOPS_OK);
    assert_non_null(strstr(b.b, "\"status\":\"open\""));
    nops_free(b.b);
    nops_store_destroy(st);
}

static void test_incidents(void **state)
{
    nops_store *st = nops_store_new(10, 3);
    add_incident(st, "i1", "open", 1);
    add_incident(st, "i2", "open", 2);
    add_incident(st, "i1", "resolved", 3); /* an update replaces, and moves it to the front */
    json_t *p = page(st, NOPS_SINK_INCIDENT, (nops_store_query){.limit = 10});
    assert_int_equal(json_array_size(json_object_get(p, "incidents")), 2);
    assert_string_equal(item_id(p, "incidents", 0), "i1");
    json_decref(p);
    p = page(st, NOPS_SINK_INCIDENT, (nops_store_query){.limit = 10, .status = "open"});
    assert_int_equal(json_array_size(json_object_get(p, "incidents")), 1);
    assert_string_equal(item_id(p, "incidents", 0), "i2");
    json_decref(p);
    nops_buf b = {0};
    assert_int_equal(nops_store_incident(st, "i1", &b), NOPS_OK);
    assert_non_null(strstr(b.b, "\"resolved\""));
    nops_free(b.b);
    b = (nops_buf){0};
    assert_int_equal(nops_store_incident(st, "nope", &b), NOPS_NOTFOUND);
    /* over the bound: the least recently updated (i2) goes */
    add_incident(st, "i3", "open", 4);
    add_incident(st, "i4", "open", 5);
    assert_int_equal(nops_store_incident(st, "i2", &b), NOPS_NOTFOUND);
    assert_int_equal(nops_store_incident(st, "i4", &b), NOPS_OK);
    assert_int_equal(nops_store_incident(st, "i1", &b), NOPS_OK);
    nops_free(b.b);
    /* records without the fields the filters need are refused */
    assert_int_equal(nops_store_add(st, NOPS_SINK_INCIDENT, "{\"id\":\"x\"}", 10), NOPS_PARSE);
    assert_int_equal(nops_store_add(st, NOPS_SINK_SIGNAL, "not json", 8), NOPS_PARSE);
    assert_int_equal(nops_store_add(st, NOPS_SINK_SIGNAL, "{\"id\":\"s\",\"ts\":\"later\"}", 23),
                     NOPS_PARSE);
    nops_store_destroy(st);
}

/*
 * Records from the sink set arrive as structures: the store indexes id, time, status and
 * label pairs from them and serves the line exactly as the set encoded it.
 */
static void test_live_records(void **state)
{
    nops_store *st = nops_store_new(10, 10);
    nops_sinks *set = nops_sinks_new();
    char err[128];
    assert_int_equal(nops_store_attach(st, set, err, sizeof err), NOPS_OK);
    nops_signal sig[2];
    for (int i = 0; i < 2; i++) {
        memset(&sig[i], 0, sizeof sig[i]);
        snprintf(sig[i].id, sizeof sig[i].id, "%016x", 0x51 + i);
        assert_int_equal(nops_signal_set_series(&sig[i], i ? "cpu{host=\"h=1\",service=\"b\"}"
                                                           : "cpu{host=\"h2\",service=\"a\"}"),
                         NOPS_OK);
        sig[i].ts_ns = 1700000000000000000ll + i * 60000000000ll;
        assert_int_equal(nops_sinks_signal(set, &sig[i]), NOPS_OK);
    }
    json_t *p = page(st, NOPS_SINK_SIGNAL, (nops_store_query){.limit = 10, .labels = "host=h=1"});
    assert_int_equal(json_array_size(json_object_get(p, "signals")), 1);
    assert_string_equal(item_id(p, "signals", 0), sig[1].id);
    json_decref(p);
    p = page(st, NOPS_SINK_SIGNAL, (nops_store_query){.limit = 10,
                                                      .until_ns = sig[0].ts_ns + 1});
    assert_int_equal(json_array_size(json_object_get(p, "signals")), 1);
    assert_string_equal(item_id(p, "signals", 0), sig[0].id);
    json_decref(p);
    char line[4096];
    size_t n = nops_signal_json(&sig[0], line, sizeof line);
    assert_true(n > 0);
    nops_buf b = {0};
    assert_int_equal(nops_store_signal(st, sig[0].id, &b), NOPS_OK);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.b, line, n);
    nops_free(b.b);
    nops_incident inc;
    memset(&inc, 0, sizeof inc);
    snprintf(inc.id, sizeof inc.id, "00000000000000a1");
    inc.opened_ns = sig[0].ts_ns;
    inc.updated_ns = sig[1].ts_ns;
    assert_int_equal(nops_labels_add(&inc.common, "service", 7, "a", 1), NOPS_OK);
    assert_int_equal(nops_sinks_incident(set, &inc), NOPS_OK);
    inc.status = NOPS_INCIDENT_RESOLVED;
    assert_int_equal(nops_sinks_incident(set, &inc), NOPS_OK);
    p = page(st, NOPS_SINK_INCIDENT, (nops_store_query){.limit = 10, .status = "resolved",
                                                        .labels = "service=a"});
    assert_int_equal(json_array_size(json_object_get(p, "incidents")), 1);
    assert_string_equal(item_id(p, "incidents", 0), inc.id);
    json_decref(p);
    p = page(st, NOPS_SINK_INCIDENT, (nops_store_query){.limit = 10, .status = "open"});
    assert_int_equal(json_array_size(json_object_get(p, "incidents")), 0);
    json_decref(p);
    nops_sinks_destroy(set);
    nops_store_destroy(st);
}

static void test_load_jsonl(void **state)
{
    char dir[] = "/tmp/nops-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/signals.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 50; i++)
        fprintf(f, "{\"id\":\"s%d\",\"labels\":{},\"ts\":\"2024-01-01T00:00:%02dZ\"}\n", i, i);
    fprintf(f, "this line is torn"); /* a crash mid-write: skipped */
    fclose(f);
    nops_store *st = nops_store_new(20, 5);
    size_t ns = 0, ni = 0;
    char err[256];
    assert_int_equal(nops_store_load_jsonl(st, dir, &ns, &ni, err, sizeof err), NOPS_OK);
    assert_int_equal(ns, 50);
    assert_int_equal(ni, 0);
    json_t *p = page(st, NOPS_SINK_SIGNAL, (nops_store_query){.limit = 100});
    assert_int_equal(json_array_size(json_object_get(p, "signals")), 20);
    assert_string_equal(item_id(p, "signals", 0), "s49");
    json_decref(p);
    nops_store_destroy(st);
    /* an empty data dir is fine */
    st = nops_store_new(20, 5);
    assert_int_equal(nops_store_load_jsonl(st, "/nonexistent-dir", &ns, &ni, err, sizeof err),
                     NOPS_OK);
    assert_int_equal(ns, 0);
    nops_store_destroy(st);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_and_pages),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_incidents),
        cmocka_unit_test(test_incident_reopened),
        cmocka_unit_test(test_live_records),
        cmocka_unit_test(test_load_jsonl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
