/*
 * test_series.c — a point's series identity through the per-worker raw-hash cache: a miss
 * builds the canonical key and registers, a hit finds the same slot without it, tag-order
 * variants of one series share a slot, a forced hash collision keeps two series apart, an
 * eviction never lets a cached raw form reach another series' slot, refused series are not
 * cached, and points without a raw span (JSON) resolve as before; the two-step form (hash every
 * point of a message while parsing, find or add after) gives the same slots as the one-step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ingest/ingest.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

typedef struct fixture {
    nops_detector *det;
    nops_ingest_series_cache *sc;
    uint32_t now_s;
    const char *admit_refusal; /* what admit answers (NULL: yes) */
    uint32_t admitted_asks;    /* times admit was asked */
    uint32_t slots[8];         /* slots of the message's points, in order */
    nops_reject r[8];          /* and their verdicts */
    uint32_t n;                /* points */
} fixture;

static const char *admit(void *ud, size_t key_len)
{
    fixture *f = ud;
    (void)key_len;
    f->admitted_asks++;
    return f->admit_refusal;
}

static bool on_point(void *ud, const nops_point *pt)
{
    fixture *f = ud;
    const char *detail = NULL;
    f->r[f->n] = nops_ingest_series_resolve(f->sc, f->det, pt, f->now_s, admit, f,
                                            &f->slots[f->n], &detail);
    f->n++;
    return f->n < 8;
}

/* Resolve every point of `msg`; the slot of the first. */
static uint32_t resolve(fixture *f, const char *msg)
{
    nops_parse_stats st;
    f->n = 0;
    assert_int_equal(nops_ingest_parse(msg, strlen(msg), 1, on_point, f, &st), NOPS_OK);
    assert_true(f->n >= 1);
    assert_int_equal(f->r[0], NOPS_REJECT_NONE);
    return f->slots[0];
}

static uint64_t key_id(const char *key)
{
    return nops_detect_key_id(key, strlen(key));
}

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    nops_detect_params dp;
    nops_detect_params_default(&dp);
    dp.ttl_s = 100;
    char err[200];
    f.det = nops_detect_new(&dp, 16, err, sizeof err);
    f.sc = nops_ingest_series_cache_new();
    f.now_s = 1;
    assert_non_null(f.det);
    assert_non_null(f.sc);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nops_ingest_series_cache_destroy(f->sc);
    nops_detect_destroy(f->det);
    return 0;
}

static void test_miss_then_hit(void **state)
{
    fixture *f = *state;
    uint32_t s = resolve(f, "cpu,host=a usage=1 1000");
    assert_int_equal(f->admitted_asks, 1);
    assert_int_equal(nops_detect_series_count(f->det), 1);
    assert_int_equal(nops__ingest_series_cache_size(f->sc), 1);
    /* the identity is the canonical key's, as without the cache */
    assert_string_equal(nops_detect_slot_key(f->det, s), "cpu_usage{host=\"a\"}");
    assert_true(nops_detect_slot_id(f->det, s) == key_id("cpu_usage{host=\"a\"}"));
    /* again, other value and time: a hit (nothing new asked, registered or cached) */
    assert_int_equal(resolve(f, "cpu,host=a usage=7 2000"), s);
    assert_int_equal(f->admitted_asks, 1);
    assert_int_equal(nops_detect_series_count(f->det), 1);
    assert_int_equal(nops__ingest_series_cache_size(f->sc), 1);
    /* another field of the same tags is another series */
    resolve(f, "cpu,host=a usage=1,idle=2 1000");
    assert_int_equal(f->slots[0], s);
    assert_true(f->slots[1] != s);
    assert_string_equal(nops_detect_slot_key(f->det, f->slots[1]), "cpu_idle{host=\"a\"}");
    /* field "value" names the measurement alone */
    uint32_t v = resolve(f, "cpu,host=a value=1 1000");
    assert_string_equal(nops_detect_slot_key(f->det, v), "cpu{host=\"a\"}");
}

static void test_tag_order_variants_share_a_slot(void **state)
{
    fixture *f = *state;
    uint32_t s = resolve(f, "cpu,host=a,dc=x usage=1 1000");
    uint32_t t = resolve(f, "cpu,dc=x,host=a usage=1 1000");
    assert_int_equal(s, t);
    assert_int_equal(nops_detect_series_count(f->det), 1);
    assert_int_equal(nops__ingest_series_cache_size(f->sc), 2); /* two raw forms */
    assert_int_equal(f->admitted_asks, 1);                     /* one series */
    assert_int_equal(resolve(f, "cpu,dc=x,host=a usage=2 1001"), s);
    assert_int_equal(resolve(f, "cpu,host=a,dc=x usage=2 1001"), s);
    /* JSON has no raw span: it is keyed every time, and meets the same series */
    const char *js = "{\"name\":\"cpu_usage\",\"value\":\"1\",\"timestamp\":\"2024-01-01T00:00:00Z\","
                     "\"labels\":{\"__name__\":\"cpu_usage\",\"host\":\"a\",\"dc\":\"x\"}}";
    assert_int_equal(resolve(f, js), s);
    assert_int_equal(nops__ingest_series_cache_size(f->sc), 2);
}

/* Every raw form lands in the same cell; only the high half tells them apart. */
static void colliding_hash(const char *span, size_t span_len, const char *field,
                           size_t field_len, uint64_t out[2])
{
    out[0] = 42;
    out[1] = XXH3_64bits_withSeed(span, span_len, XXH3_64bits(field, field_len));
}

static void test_forced_collision_keeps_series_apart(void **state)
{
    fixture *f = *state;
    nops__ingest_series_cache_set_hash(f->sc, colliding_hash);
    uint32_t a = resolve(f, "cpu,host=a usage=1 1000");
    uint32_t b = resolve(f, "cpu,host=b usage=1 1000");
    uint32_t c = resolve(f, "mem,host=a usage=1 1000");
    assert_true(a != b && b != c && a != c);
    assert_int_equal(nops__ingest_series_cache_size(f->sc), 3);
    for (int i = 0; i < 3; i++) { /* hits, each to its own series */
        assert_int_equal(resolve(f, "cpu,host=b usage=2 1001"), b);
        assert_int_equal(resolve(f, "cpu,host=a usage=2 1001"), a);
        assert_int_equal(resolve(f, "mem,host=a usage=2 1001"), c);
    }
    assert_int_equal(f->admitted_asks, 3);
    assert_string_equal(nops_detect_slot_key(f->det, b), "cpu_usage{host=\"b\"}");
    assert_int_equal(nops__ingest_series_cache_size(f->sc), 3);
}

static void test_eviction_forgets_slots(void **state)
{
    fixture *f = *state;
    uint32_t a = resolve(f, "cpu,host=a usage=1 1000");
    f->now_s = 1000; /* a idles past ttl_s */
    assert_int_equal(nops_detect_evict_idle(f->det, f->now_s), 1);
    /* b takes a's freed slot; a's cached raw form must not lead there */
    uint32_t b = resolve(f, "cpu,host=b usage=1 1000");
    assert_int_equal(b, a);
    uint32_t a2 = resolve(f, "cpu,host=a usage=1 1000");
    assert_true(a2 != b);
    assert_string_equal(nops_detect_slot_key(f->det, a2), "cpu_usage{host=\"a\"}");
    assert_string_equal(nops_detect_slot_key(f->det, b), "cpu_usage{host=\"b\"}");
    assert_int_equal(resolve(f, "cpu,host=b usage=1 1000"), b);
}

static void test_refused_and_bad_series_are_not_cached(void **state)
{
    fixture *f = *state;
    f->admit_refusal = "no room";
    nops_parse_stats st;
    const char *m = "cpu,host=a usage=1 1000";
    f->n = 0;
    nops_ingest_parse(m, strlen(m), 1, on_point, f, &st);
    assert_int_equal(f->r[0], NOPS_REJECT_SERIES_LIMIT);
    assert_int_equal(nops__ingest_series_cache_size(f->sc), 0);
    f->n = 0;
    nops_ingest_parse(m, strlen(m), 1, on_point, f, &st); /* asked again, refused again */
    assert_int_equal(f->r[0], NOPS_REJECT_SERIES_LIMIT);
    assert_int_equal(f->admitted_asks, 2);
    f->admit_refusal = NULL;
    resolve(f, m);
    assert_int_equal(nops__ingest_series_cache_size(f->sc), 1);
    /* a label given twice is refused as before, and never cached */
    const char *dup = "cpu,host=a,host=b usage=1 1000";
    f->n = 0;
    nops_ingest_parse(dup, strlen(dup), 1, on_point, f, &st);
    assert_int_equal(f->r[0], NOPS_REJECT_TOO_LARGE);
    assert_int_equal(nops__ingest_series_cache_size(f->sc), 1);
}

/* The series name is measurement_field: up to 511 bytes it is a series, from 512 refused. */
static void test_series_name_length_limit(void **state)
{
    fixture *f = *state;
    char m[1200], meas[600], field[600];
    memset(meas, 'm', sizeof meas);
    memset(field, 'f', sizeof field);
    nops_parse_stats st;
    static const int lens[][3] = {{255, 255, NOPS_REJECT_NONE}, {256, 255, NOPS_REJECT_TOO_LARGE},
                                  {511, 0, NOPS_REJECT_NONE}, {100, 411, NOPS_REJECT_TOO_LARGE},
                                  {512, 0, NOPS_REJECT_TOO_LARGE}};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        /* a field named "value" is dropped from the name: a field of length 0 stands for it */
        if (lens[i][1])
            snprintf(m, sizeof m, "%.*s,host=a %.*s=1 1000", lens[i][0], meas, lens[i][1], field);
        else
            snprintf(m, sizeof m, "%.*s,host=a value=1 1000", lens[i][0], meas);
        f->n = 0;
        assert_int_equal(nops_ingest_parse(m, strlen(m), 1, on_point, f, &st), NOPS_OK);
        assert_int_equal(f->n, 1);
        if (f->r[0] != (nops_reject)lens[i][2])
            fail_msg("measurement %d, field %d: verdict %d, not %d", lens[i][0], lens[i][1],
                     (int)f->r[0], lens[i][2]);
    }
}

static void test_many_series_grow_the_cache(void **state)
{
    fixture *f = *state;
    char line[64];
    uint32_t slots[5000];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 5000; i++) {
            snprintf(line, sizeof line, "cpu,host=h%d usage=1 1000", i);
            uint32_t s = resolve(f, line);
            if (round == 0)
                slots[i] = s;
            else
                assert_int_equal(s, slots[i]);
        }
    assert_int_equal(nops_detect_series_count(f->det), 5000);
    assert_int_equal(nops__ingest_series_cache_size(f->sc), 5000);
    assert_int_equal(f->admitted_asks, 5000);
}

/* Two steps: every point hashed during the parse, found (or added) after it. */
typedef struct two_step {
    fixture *f;
    nops_ingest_series_ref ref[8];
    uint32_t n;
} two_step;

static bool hash_only(void *ud, const nops_point *pt)
{
    two_step *t = ud;
    nops_ingest_series_hash(t->f->sc, pt, &t->ref[t->n++]);
    return t->n < 8;
}

typedef struct nth_point {
    two_step *t;
    uint32_t want, seen;
    uint32_t slot;
    nops_reject r;
} nth_point;

static bool add_nth(void *ud, const nops_point *pt)
{
    nth_point *x = ud;
    if (x->seen++ != x->want)
        return true;
    fixture *f = x->t->f;
    const char *detail;
    x->r = nops_ingest_series_add(f->sc, f->det, pt, &x->t->ref[x->want], f->now_s, admit, f,
                                  &x->slot, &detail);
    return false;
}

/* Slots of msg's points in two steps; `misses` counts the points not found at first. */
static void resolve_two_step(fixture *f, const char *msg, uint32_t *slots, uint32_t *misses)
{
    two_step t = {f, {{0}}, 0};
    nops_parse_stats st;
    assert_int_equal(nops_ingest_parse(msg, strlen(msg), 1, hash_only, &t, &st), NOPS_OK);
    for (uint32_t i = 0; i < t.n; i++) {
        if (nops_ingest_series_find(f->sc, f->det, &t.ref[i], f->now_s, &slots[i]))
            continue;
        (*misses)++;
        nth_point x = {&t, i, 0, UINT32_MAX, NOPS_REJECT_SYNTAX};
        nops_ingest_parse(msg, strlen(msg), 1, add_nth, &x, &st); /* the point again */
        assert_int_equal(x.r, NOPS_REJECT_NONE);
        slots[i] = x.slot;
    }
}

static void test_two_steps_match_one(void **state)
{
    fixture *f = *state;
    const char *msg = "cpu,host=a usage=1,idle=2 1000\nmem,host=a used=3 1000\n"
                      "cpu,host=a usage=4 1001\ncpu,host=b usage=5 1001";
    uint32_t two[8], misses = 0;
    resolve_two_step(f, msg, two, &misses);
    /* four series: all missed once; the second cpu,host=a usage point was hashed before its
     * series was added, and is found after (the add comes first in order) */
    assert_int_equal(misses, 4);
    assert_int_equal(two[3], two[0]);
    assert_string_equal(nops_detect_slot_key(f->det, two[1]), "cpu_idle{host=\"a\"}");
    assert_string_equal(nops_detect_slot_key(f->det, two[2]), "mem_used{host=\"a\"}");
    assert_string_equal(nops_detect_slot_key(f->det, two[4]), "cpu_usage{host=\"b\"}");
    /* the one-step form finds the same slots, without building a key */
    const uint32_t asks = f->admitted_asks;
    resolve(f, msg);
    for (int i = 0; i < 5; i++)
        assert_int_equal(f->slots[i], two[i]);
    assert_int_equal(f->admitted_asks, asks);
    misses = 0;
    resolve_two_step(f, msg, two, &misses);
    assert_int_equal(misses, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(f->slots[i], two[i]);
    /* after an eviction the cached entries are never used: b may now sit in a's old slot */
    f->now_s = 1000;
    assert_int_equal(nops_detect_evict_idle(f->det, f->now_s), 4);
    misses = 0;
    resolve_two_step(f, "cpu,host=b usage=5 1001\ncpu,host=a usage=1 1000", two, &misses);
    assert_int_equal(misses, 2);
    assert_string_equal(nops_detect_slot_key(f->det, two[0]), "cpu_usage{host=\"b\"}");
    assert_string_equal(nops_detect_slot_key(f->det, two[1]), "cpu_usage{host=\"a\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_miss_then_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_order_variants_share_a_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forced_collision_keeps_series_apart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_eviction_forgets_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_bad_series_are_not_cached, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_series_name_length_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_series_grow_the_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_steps_match_one, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
