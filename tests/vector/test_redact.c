/*
 * test_redact.c — the redactor against real-looking PII and secrets in incident prose (each
 * fully replaced, no fragment surviving), ordinary operations text (left byte for byte), the
 * per-class counts, the keyed actor hash, JSON records, and adversarial input at the capacity
 * bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vector/vector.h"

#include <stdlib.h>
#include <string.h>

static nops_redactor *g_r;

static int setup(void **state)
{
    char err[128];
    g_r = nops_redactor_new("test-actor-key", err, sizeof err);
    return g_r ? 0 : -1;
}

static int teardown(void **state)
{
    nops_redactor_destroy(g_r);
    return 0;
}

static char *redact(const char *in, nops_redact_stats *st)
{
    size_t len = strlen(in), cap = NOPS_REDACT_CAP(len);
    char *out = malloc(cap);
    size_t n = nops_redact(g_r, in, len, out, cap, st);
    assert_int_equal(n, strlen(out));
    assert_true(n < cap);
    return out;
}

typedef struct pii_case {
    const char *in, *out;
    const char *secret; /* no 4-character piece of it may survive */
} pii_case;

static const pii_case pii[] = {
    {"paged alice.smith@corp.example.com about it", "paged <EMAIL> about it",
     "alice.smith@corp.example.com"},
    {"owner: Bob.Jones+oncall@mail.example.org.", "owner: <EMAIL>.",
     "Bob.Jones+oncall@mail.example.org"},
    {"db primary at 10.2.3.4 refused connections", "db primary at <IP> refused connections",
     "10.2.3.4"},
    {"bastion 192.168.100.254:22 timed out", "bastion <IP>:22 timed out", "192.168.100.254"},
    {"peer fe80::1ff:fe23:4567:890a went away", "peer <IP> went away", "fe80::1ff:fe23:4567:890a"},
    {"v6 2001:0db8:85a3:0000:0000:8a2e:0370:7334 flapped", "v6 <IP> flapped",
     "2001:0db8:85a3:0000:0000:8a2e:0370:7334"},
    {"mapped ::ffff:10.9.8.7 seen", "mapped <IP> seen", "10.9.8.7"},
    {"curl -H 'Authorization: Bearer abcdef0123456789.xyz' https://api",
     "curl -H 'Authorization: Bearer <TOKEN>' https://api", "abcdef0123456789"},
    {"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c "
     "leaked",
     "token <JWT> leaked", "sflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV"},
    {"export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "export AWS_ACCESS_KEY_ID=<AWS_KEY>",
     "AKIAIOSFODNN7EXAMPLE"},
    {"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY done",
     "aws_secret_access_key=<SECRET> done", "wJalrXUtnFEMI/K7MDENG"},
    {"{\"password\": \"hunter2!\", \"user\": \"x\"}", "{\"password\": \"<SECRET>\", \"user\": \"x\"}",
     "hunter2!"},
    {"DB_PASSWORD=S3cr3t-Pa55 psql -h db", "DB_PASSWORD=<SECRET> psql -h db", "S3cr3t-Pa55"},
    {"used api_key: 'k-91f2a7c3e1' then", "used api_key: '<SECRET>' then", "91f2a7c3e1"},
    {"X-Api-Key: 0f1e2d3c4b5a", "X-Api-Key: <SECRET>", "0f1e2d3c4b5a"},
    {"call +1 415-555-0100 now", "call <PHONE> now", "415-555-0100"},
    {"or +44 20 7946 0958.", "or <PHONE>.", "7946 0958"},
    {"desk (415) 555-0199 x", "desk <PHONE> x", "555-0199"},
    {"card 4111 1111 1111 1111 declined", "card <CARD> declined", "4111 1111 1111 1111"},
    {"card 5500-0000-0000-0004 ok", "card <CARD> ok", "5500-0000-0000-0004"},
};

/* Every 4-byte piece of `secret` made only of letters or digits (placeholders excepted). */
static void no_fragment(const char *out, const char *secret)
{
    size_t n = strlen(secret);
    for (size_t i = 0; i + 4 <= n; i++) {
        char piece[5];
        memcpy(piece, secret + i, 4);
        piece[4] = '\0';
        bool alnum = true;
        for (int k = 0; k < 4; k++)
            alnum = alnum && ((piece[k] >= '0' && piece[k] <= '9') ||
                              (piece[k] >= 'a' && piece[k] <= 'z') ||
                              (piece[k] >= 'A' && piece[k] <= 'Z'));
        if (alnum && strstr(out, piece) && !strstr("EMAIL TOKEN SECRET PHONE CARD AWS_KEY", piece))
            fail_msg("\"%s\" survives in \"%s\"", piece, out);
    }
}

static void test_pii_is_replaced(void **state)
{
    for (size_t i = 0; i < sizeof pii / sizeof pii[0]; i++) {
        char *out = redact(pii[i].in, NULL);
        if (strcmp(out, pii[i].out) != 0)
            fail_msg("case %zu:\n  in:  %s\n  out: %s\n  want %s", i, pii[i].in, out, pii[i].out);
        no_fragment(out, pii[i].secret);
        free(out);
    }
}

static const char *ordinary[] = {
    "p50 latency on checkout/checkout-312 jumped to 310 ms after deploy v1.24.3",
    "web-1.prod.example.internal returned 503 for 2.5% of requests at 2024-01-05T10:30:00Z",
    "pod api-7f9c8d6b5-xk2lp OOMKilled (limit 512Mi), restarted 3 times in 10:30:00",
    "cpu_usage_user{host=\"web-1\",region=\"eu-west-1\"} is 5.2σ above its rolling mean (41.0)",
    "kafka lag 1700000000000000000 ns, offsets 123456789012345 to 123456789012399",
    "MAC 00:1a:2b:3c:4d:5e, std::vector<int>, http://grafana.internal:3000/d/abc",
    "500 errors in 60 s; retry budget 0.25; version 1.2.3.4.5; build 20240105-1",
    "tokens: 5, max_tokens=100, password reset flow ok, token bucket refill",
    "see runbook https://wiki.example.com/ops/cache-restart#step-3",
    "ISSUE-4521 opened by on-call; ETA 15m; 2024-01-05 12:00:00 UTC",
    "placeholders <EMAIL> and <IP> are left as they are",
};

static void test_ops_text_is_untouched(void **state)
{
    for (size_t i = 0; i < sizeof ordinary / sizeof ordinary[0]; i++) {
        nops_redact_stats st = {0};
        char *out = redact(ordinary[i], &st);
        if (strcmp(out, ordinary[i]) != 0)
            fail_msg("changed:\n  in:  %s\n  out: %s", ordinary[i], out);
        free(out);
    }
}

static void test_counts(void **state)
{
    nops_redact_stats st = {0};
    char *out = redact("a@b.example.com c@d.example.org 10.0.0.1 +1 415-555-0100 "
                       "password=xyz12 4111111111111111",
                       &st);
    assert_int_equal(st.found[NOPS_REDACT_EMAIL], 2);
    assert_int_equal(st.found[NOPS_REDACT_IP], 1);
    assert_int_equal(st.found[NOPS_REDACT_PHONE], 1);
    assert_int_equal(st.found[NOPS_REDACT_SECRET], 1);
    assert_int_equal(st.found[NOPS_REDACT_CARD], 1);
    assert_int_equal(st.found[NOPS_REDACT_JWT], 0);
    /* redacting again changes nothing more */
    nops_redact_stats st2 = {0};
    char *again = redact(out, &st2);
    assert_string_equal(again, out);
    for (int c = 0; c < NOPS_REDACT_N; c++)
        assert_int_equal(st2.found[c], 0);
    free(again);
    free(out);
}

static void test_actor_hash(void **state)
{
    char a[24], b[24], c[24];
    nops_redact_actor(g_r, "alice.smith", a);
    nops_redact_actor(g_r, "alice.smith", b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 22);
    assert_non_null(strstr(a, "actor:"));
    assert_null(strstr(a, "alice"));
    nops_redact_actor(g_r, "bob.jones", c);
    assert_string_not_equal(a, c);
    char err[64];
    nops_redactor *other = nops_redactor_new("another-key", err, sizeof err);
    nops_redact_actor(other, "alice.smith", c);
    assert_string_not_equal(a, c); /* keyed: another key, another hash */
    nops_redactor_destroy(other);
    assert_null(nops_redactor_new("", err, sizeof err));
}

static void test_json_record(void **state)
{
    json_t *run = json_pack(
        "{s:s, s:s, s:s, s:{s:s}, s:[{s:s, s:{s:s}}]}", "incident_summary",
        "paged carol@corp.example.com", "notes", "ssh 10.1.1.1 password=pw123", "executed_by",
        "carol.wu", "labels", "owner", "dave@corp.example.com", "signals", "hint",
        "db at 172.16.0.9 slow", "labels", "host", "10.0.0.5");
    nops_redact_stats st = {0};
    assert_int_equal(nops_redact_json(g_r, run, &st), NOPS_OK);
    char *s = json_dumps(run, JSON_COMPACT);
    const char *gone[] = {"carol", "dave", "10.1.1.1", "pw123", "172.16.0.9", "10.0.0.5"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        if (strstr(s, gone[i]))
            fail_msg("\"%s\" survives in %s", gone[i], s);
    assert_non_null(strstr(s, "actor:"));
    free(s);
    json_decref(run);
}

static void test_adversarial(void **state)
{
    /* the densest expansions: every few bytes a placeholder */
    const char *unit[] = {"a@b.cd ", "pwd=xy,", "::1 ", "1.2.3.4 ", "\xff\xfe"};
    for (size_t u = 0; u < sizeof unit / sizeof unit[0]; u++) {
        size_t ul = strlen(unit[u]), n = 4000 / ul * ul;
        char *in = malloc(n + 1);
        for (size_t i = 0; i < n; i += ul)
            memcpy(in + i, unit[u], ul);
        in[n] = '\0';
        size_t cap = NOPS_REDACT_CAP(n);
        char *out = malloc(cap);
        size_t got = nops_redact(g_r, in, n, out, cap, NULL);
        assert_true(got < cap);
        assert_int_equal(out[got], '\0');
        free(out);
        free(in);
    }
    char out[16];
    assert_int_equal(nops_redact(g_r, "", 0, out, sizeof out, NULL), 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pii_is_replaced),  cmocka_unit_test(test_ops_text_is_untouched),
        cmocka_unit_test(test_counts),           cmocka_unit_test(test_actor_hash),
        cmocka_unit_test(test_json_record),      cmocka_unit_test(test_adversarial),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
