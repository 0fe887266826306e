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

#include <stdio.h>
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

/*
 * One row per rule of the redactor's table (vector/redact_rules.c): inputs the rule must
 * redact (with the exact output) and inputs that must pass byte for byte. Every rule of the
 * table must have a row here, and every row must name a rule: adding a rule without examples
 * fails this test.
 */
typedef struct rule_case {
    const char *rule;
    const char *pos[8][2]; /* {input, expected output}, up to an empty row */
    const char *neg[8];    /* left unchanged, up to NULL */
} rule_case;

static const rule_case rule_cases[] = {
    {"pem_private_key",
     {{"key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx3Yk1Zq9f0Qm1h2Vb8s7fQ4RzJ0nK9yT2vL8p"
       "X5wQ6cE1rD4\nAbCdEfGh==\n-----END RSA PRIVATE KEY-----\nthen restarted",
       "key: <PRIVATE_KEY>\nthen restarted"},
      {"-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ "
       "-----END OPENSSH PRIVATE KEY-----",
       "<PRIVATE_KEY>"},
      {"cut: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nAbcd",
       "cut: <PRIVATE_KEY>"},
      {"x -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yBxaeT1TnmPQ\n and then we "
       "rotated it",
       "x <PRIVATE_KEY>\n and then we rotated it"},
      {"private_key=-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END "
       "PRIVATE KEY----- ok",
       "private_key=<PRIVATE_KEY> ok"},
      {"10.0.0.1-----BEGIN DSA PRIVATE KEY-----\nMIIBuwIBAAKBgQD0123456789abcdef\n-----END DSA "
       "PRIVATE KEY-----",
       "<IP><PRIVATE_KEY>"},
      {"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F1A\n\n"
       "MIIEowIBAAKCAQEAx3Yk1Zq9f0Qm1h2V\nNote: rotated",
       "<PRIVATE_KEY>\nNote: rotated"}},
     {"-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----",
      "see -----BEGIN PUBLIC KEY----- in the docs", "------ divider ------",
      "-----BEGIN PRIVATE KEY without dashes", NULL}},
    {"jwt",
     {{"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c "
       "leaked",
       "token <JWT> leaked"}},
     {"eyJ is how JSON starts in base64", "eyJhbGciOiJIUzI1NiJ9 alone", NULL}},
    {"bearer",
     {{"Authorization: Bearer abcdef0123456789.xyz", "Authorization: Bearer <TOKEN>"}},
     {"bearer of bad news", "Bearer <TOKEN>", "Bearer short", NULL}},
    {"basic_auth",
     {{"Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic <SECRET>"},
      {"curl -H 'Authorization: basic Zm9vYmFy'", "curl -H 'Authorization: basic <SECRET>'"},
      {"sent Basic YWRtaW46aHVudGVyMg== upstream", "sent Basic <SECRET> upstream"}},
     {"Basic checks passed", "basic functionality restored", "Basic auth failed for user",
      "Basic YWJjZGVmZ2g=", "WWW-Authenticate: Basic realm=\"ops\"", NULL}},
    {"url_credentials",
     {{"postgresql://admin:S3cr3t%21@10.1.2.3:5432/app", "postgresql://admin:<SECRET>@<IP>:5432/app"},
      {"redis://:pw@cache", "redis://:<SECRET>@cache"},
      {"amqp://guest:p@ss@rabbit-1:5672", "amqp://guest:<SECRET>@rabbit-1:5672"},
      {"https://deploy:tok3n@git.example.com/x", "https://deploy:<SECRET>@git.example.com/x"}},
     {"http://grafana.internal:3000/d/abc", "redis://cache:6379/0", "https://user:@host",
      "ssh://deploy-host:22/srv", "see http://wiki/ops@2 and a:b@c", NULL}},
    {"slack_webhook",
     {{"posted to https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghijklmnopqrstuvwx ok",
       "posted to https://hooks.slack.com/services/<SECRET> ok"},
      {"hooks.slack.com/workflows/T01/A02/12345/abcdef", "hooks.slack.com/workflows/<SECRET>"}},
     {"see hooks.slack.com/services/ for setup", "https://hooks.slack.com/", NULL}},
    {"github_token",
     {{"GH ghp_1234567890abcdefghijABCDEFGHIJ123456 x", "GH <API_KEY> x"},
      {"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
       "<API_KEY>"},
      {"Authorization: token gho_16C7e42F292c6912E7710c838347Ae178B4a",
       "Authorization: token <API_KEY>"},
      {"run-ghp_1234567890abcdefghijABCDEFGHIJ123456", "run-<API_KEY>"}},
     {"ghp_short", "gh-pages branch", "github_pat_ tokens", "ghs_ is the prefix of server tokens",
      NULL}},
    {"gitlab_token",
     {{"glpat-xYz12AbC34dEf56GhI78 leaked", "<API_KEY> leaked"}},
     {"glpat- tokens expire", "glpat-short", NULL}},
    {"slack_token",
     {{"xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "<API_KEY>"},
      {"token xoxp-1234567890-abcdefghij.", "token <API_KEY>."},
      {"xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OQ", "<API_KEY>"}},
     {"xoxo hugs", "xoxb-not-a-token-here", "xoxb-12", NULL}},
    {"stripe_key",
     {{"sk_live_4eC39HqLyjWDarjtT1zdp7dc", "<API_KEY>"},
      {"STRIPE whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLSAe set", "STRIPE <API_KEY> set"},
      {"rk_test_51H8abcdEFGH1234", "<API_KEY>"}},
     {"pk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_short", "whsec_short", NULL}},
    {"google_api_key",
     {{"key=AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe&q=x", "key=<API_KEY>&q=x"}},
     {"AIza is a prefix", "AIzaSyShort", NULL}},
    {"google_oauth_token",
     {{"ya29.a0AfH6SMBx3-abcdefghijklmnop_qrstuv", "<API_KEY>"}},
     {"ya29. is Google's prefix", "ya29.short", NULL}},
    {"sk_dash_key",
     {{"OPENAI_API_KEY is sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z-AbCdEfGh",
       "OPENAI_API_KEY is <API_KEY>"},
      {"sk-ant-api03-AbCdEf0123456789GhIjKlMnOpQrStUvWxYz", "<API_KEY>"},
      {"sk-1234567890abcdefABCDEF1234567890abcdef12", "<API_KEY>"}},
     {"sk-prod-cluster-01-eu-west-1-node-pool-a1b2", "sk-1234", "sk-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh",
      NULL}},
    {"cli_password",
     {{"mysql -u root --password hunter2 -h db", "mysql -u root --password <SECRET> -h db"},
      {"psql --db-pass 'S3cr3t pw' x", "psql --db-pass '<SECRET>' x"},
      {"mysql -uroot -p'hunter2' app", "mysql -uroot -p'<SECRET>' app"},
      {"mysql -p\"hunter2\"", "mysql -p\"<SECRET>\""},
      {"redis-cli --pass=abc123", "redis-cli --pass=<SECRET>"}},
     {"ssh -p 2222 host", "docker run -p8080:80 img", "--password-file /run/secrets/db",
      "--bypass cache", "mysql --password --host db", "--pass-rate 0.9", "-p '' x", NULL}},
    {"key_value",
     {{"DB_PASSWORD=S3cr3t-Pa55 psql -h db", "DB_PASSWORD=<SECRET> psql -h db"},
      {"DB_PASS=hunter2 ./run", "DB_PASS=<SECRET> ./run"},
      {"{\"password\": \"hunter2!\", \"user\": \"x\"}", "{\"password\": \"<SECRET>\", \"user\": \"x\"}"},
      {"X-Api-Key: 0f1e2d3c4b5a", "X-Api-Key: <SECRET>"},
      {"client_secret: abc123 and redisPass=x9", "client_secret: <SECRET> and redisPass=<SECRET>"},
      {"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY done",
       "aws_secret_access_key=<SECRET> done"}},
     {"bypass=true", "pass: 3 of 5", "max_tokens=100", "password reset flow ok",
      "compass: north", "DB_PASS_FILE=/run/secrets/db", "password=<unset>", NULL}},
    {"email",
     {{"paged alice.smith@corp.example.com about it", "paged <EMAIL> about it"},
      {"owner: Bob.Jones+oncall@mail.example.org.", "owner: <EMAIL>."}},
     {"web-1.prod.example.internal", "user@localhost", "v1.2@build3", NULL}},
    {"aws_key_id",
     {{"export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "export AWS_ACCESS_KEY_ID=<AWS_KEY>"}},
     {"AKIAshort", "AKIAIOSFODNN7EXAMPLEXX", NULL}},
    {"aws_secret_key",
     {{"leaked 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 in chat", "leaked <SECRET> in chat"},
      {"creds AKIAIOSFODNN7EXAMPLE cU1vsHiQMaRiNTN9Ox98whGcTZc1UWb5fxzpF7ST",
       "creds <AWS_KEY> <SECRET>"},
      {"aws s3 ls with 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", "aws s3 ls with <SECRET>"}},
     {"commit 3f2a9c1e5b7d4a6c8e0f2b4d6a8c0e2f4a6b8c0d", "ThisIsAVeryLongCamelCaseIdentifierName12",
      "s3 Reports/2024/Q1/SalesData/Region1/Finals", "src/main/java/com/example/PaymentService",
      "aws alarm HTTPServerErrorRate5xxAboveThreshold2024",
      "GTd7FguoV8FWnFbB0JxXujr4qqaaABvvLOzAxzXMx longer", "at /a/GTd7FguoV8FWnFbB0JxXujr4qqaaABvvLOzAxzXM",
      NULL}},
    {"iban",
     {{"IBAN DE89 3704 0044 0532 0130 00 on file", "IBAN <IBAN> on file"},
      {"GB82WEST12345698765432", "<IBAN>"},
      {"paid GB82 WEST 1234 5698 7654 32 EUR", "paid <IBAN> EUR"},
      {"to FR14 2004 1010 0505 0001 3M02 606.", "to <IBAN>."}},
     {"DE89 is the check", "GB82WEST12345698765431", "AB12CDEFGHIJKLMNOP", "gb82west12345698765432",
      NULL}},
    {"ipv6",
     {{"peer fe80::1ff:fe23:4567:890a went away", "peer <IP> went away"},
      {"mapped ::ffff:10.9.8.7 seen", "mapped <IP> seen"}},
     {"MAC 00:1a:2b:3c:4d:5e", "std::vector<int>", "10:30:00", NULL}},
    {"card",
     {{"card 4111 1111 1111 1111 declined", "card <CARD> declined"},
      {"card 5500-0000-0000-0004 ok", "card <CARD> ok"},
      {"card 4111  1111  1111  1111 x", "card <CARD> x"},
      {"card 4111.1111.1111.1111.", "card <CARD>."},
      {"amex 3782  822463  10005", "amex <CARD>"}},
     {"4111 1111 1111 1112", "kafka lag 1700000000000000000 ns", "2024.01.05.1234567",
      "4111.1111 1111.1111", "41111.111.1111.1111", NULL}},
    {"phone",
     {{"call +1 415-555-0100 now", "call <PHONE> now"},
      {"desk (415) 555-0199 x", "desk <PHONE> x"}},
     {"build 20240105-1", "ratio 3.14 at 10:30", NULL}},
    {"ipv4",
     {{"db primary at 10.2.3.4 refused connections", "db primary at <IP> refused connections"},
      {"bastion 192.168.100.254:22 timed out", "bastion <IP>:22 timed out"}},
     {"version 1.2.3.4.5", "10.0.0.256", NULL}},
};

static const rule_case *case_of(const char *rule)
{
    for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++)
        if (strcmp(rule_cases[i].rule, rule) == 0)
            return &rule_cases[i];
    return NULL;
}

static void test_every_rule(void **state)
{
    nops_redact_rule_info ri;
    size_t rules = 0;
    for (size_t i = 0; nops_redact_rule(i, &ri); i++, rules++) {
        const rule_case *rc = case_of(ri.name);
        if (!rc)
            fail_msg("rule %s has no examples in rule_cases", ri.name);
        if (!rc->pos[0][0] || !rc->neg[0])
            fail_msg("rule %s needs positive and negative examples", ri.name);
        for (int k = 0; k < 8 && rc->pos[k][0]; k++) {
            nops_redact_stats st = {0};
            char *out = redact(rc->pos[k][0], &st);
            if (strcmp(out, rc->pos[k][1]) != 0)
                fail_msg("%s positive %d:\n  in:  %s\n  out: %s\n  want %s", ri.name, k,
                         rc->pos[k][0], out, rc->pos[k][1]);
            if (st.found[ri.cls] == 0)
                fail_msg("%s positive %d: nothing counted as %s", ri.name, k,
                         nops_redact_placeholder(ri.cls));
            nops_redact_stats st2 = {0}; /* a second pass finds nothing more */
            char *again = redact(out, &st2);
            assert_string_equal(again, out);
            free(again);
            free(out);
        }
        for (int k = 0; k < 8 && rc->neg[k]; k++) {
            nops_redact_stats st = {0};
            char *out = redact(rc->neg[k], &st);
            if (strcmp(out, rc->neg[k]) != 0)
                fail_msg("%s negative %d changed:\n  in:  %s\n  out: %s", ri.name, k,
                         rc->neg[k], out);
            free(out);
        }
        assert_true(ri.doc && *ri.doc);
    }
    assert_true(rules >= 20);
    for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++) {
        bool known = false;
        for (size_t j = 0; nops_redact_rule(j, &ri) && !known; j++)
            known = strcmp(ri.name, rule_cases[i].rule) == 0;
        if (!known)
            fail_msg("rule_cases names %s, which is not a rule", rule_cases[i].rule);
    }
    assert_false(nops_redact_rule(rules, &ri));
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
    const char *unit[] = {"a@b.cd ", "pwd=xy,", "::1 ", "1.2.3.4 ", "\xff\xfe", "-p'x' ",
                          "s://:p@c ", "--pass x ", "DB_PASS=x,", "-----BEGIN PRIVATE KEY-----",
                          "Basic YTpiYw== "};
    for (size_t u = 0; u < sizeof unit / sizeof unit[0]; u++) {
        size_t ul = strlen(unit[u]), n = 4000 / ul * ul;
        char *in = malloc(n + 1);
        for (size_t i = 0; i < n; i += ul)
            memcpy(in + i, unit[u], ul);
        in[n] = '\0';
        size_t cap = NOPS_REDACT_CAP(n);
        char *out = malloc(cap);
        nops_redact_stats st = {0};
        size_t got = nops_redact(g_r, in, n, out, cap, &st);
        assert_true(got + 1 < cap); /* never cut short by the capacity bound */
        if (u >= 5) { /* every unit of the new shapes is one replacement */
            uint64_t found = 0;
            for (int c = 0; c < NOPS_REDACT_N; c++)
                found += st.found[c];
            if (found != n / ul)
                fail_msg("unit \"%s\": %llu replacements for %zu units", unit[u],
                         (unsigned long long)found, n / ul);
        }
        assert_int_equal(out[got], '\0');
        free(out);
        free(in);
    }
    char out[16];
    assert_int_equal(nops_redact(g_r, "", 0, out, sizeof out, NULL), 0);
    assert_string_equal(out, "");
}

/* Values planted in run ids and playbook ids, as the review did: none may reach runs.meta. */
static const char *planted[] = {
    "ghp_1234567890abcdefghijABCDEFGHIJ123456", "xoxb-1234567890-abcdefghijKLMN",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",         "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "GTd7FguoV8FWnFbB0JxXujr4qqaaABvvLOzAxzXM",
    "glpat-xYz12AbC34dEf56GhI78",               "alice.smith@corp.example.com",
    "10.1.2.3",                                 "AKIAIOSFODNN7EXAMPLE",
    "de89370400440532013000-DE89370400440532013000", "4111111111111111",
    "+1 415-555-0100",                          "redis://:pw@cache",
};

static json_t *a_run(const char *id, const char *playbook)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s}, s:s}", "id", id, "playbook_id", playbook, "status",
                     "success", "labels", "service", "checkout", "summary",
                     "p50 latency on checkout jumped");
}

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return memmem(buf, n, needle, strlen(needle)) != NULL;
}

static void test_ids_never_carry_secrets(void **state)
{
    char dir[] = "/tmp/nops-ids-XXXXXX", err[256], why[200];
    assert_non_null(mkdtemp(dir));
    nops_histdir_writer *w = nops_histdir_begin(dir, NOPS_INDEX_FLAT, err, sizeof err);
    assert_non_null(w);
    float v[NOPS_EMBED_DIM];
    nops_run_meta m, again;
    for (size_t i = 0; i < sizeof planted / sizeof planted[0]; i++) {
        /* in a run id: stored as a stable keyed stand-in */
        json_t *run = a_run(planted[i], "restart-pod");
        nops_redact_stats st = {0};
        assert_int_equal(nops_vector_prepare_run(g_r, run, v, &m, &st, why, sizeof why), NOPS_OK);
        json_decref(run);
        if (strncmp(m.run_id, "run:", 4) != 0 || strlen(m.run_id) != 20)
            fail_msg("run id %s stored as %s", planted[i], m.run_id);
        assert_string_equal(m.playbook_id, "restart-pod");
        run = a_run(planted[i], "restart-pod");
        assert_int_equal(nops_vector_prepare_run(g_r, run, v, &again, NULL, why, sizeof why),
                         NOPS_OK);
        json_decref(run);
        assert_string_equal(again.run_id, m.run_id); /* stable: --append still dedups */
        assert_int_equal(nops_histdir_add(w, v, &m), NOPS_OK);
        /* in a playbook id: the run is refused, and the reason does not repeat the value */
        run = a_run("run-1", planted[i]);
        assert_int_equal(nops_vector_prepare_run(g_r, run, v, &m, NULL, why, sizeof why),
                         NOPS_PARSE);
        json_decref(run);
        assert_non_null(strstr(why, "playbook_id"));
        assert_null(strstr(why, planted[i]));
    }
    /* ordinary ids are kept as they are; odd bytes make a stand-in */
    json_t *run = a_run("run-0000001", "restart-pod");
    assert_int_equal(nops_vector_prepare_run(g_r, run, v, &m, NULL, why, sizeof why), NOPS_OK);
    assert_string_equal(m.run_id, "run-0000001");
    assert_int_equal(nops_histdir_add(w, v, &m), NOPS_OK);
    json_decref(run);
    run = a_run("run by Zo\xc3\xab", "restart-pod");
    assert_int_equal(nops_vector_prepare_run(g_r, run, v, &m, NULL, why, sizeof why), NOPS_OK);
    assert_int_equal(strncmp(m.run_id, "run:", 4), 0);
    json_decref(run);
    run = a_run("run-2", "Restart-Pod");
    assert_int_equal(nops_vector_prepare_run(g_r, run, v, &m, NULL, why, sizeof why), NOPS_PARSE);
    assert_non_null(strstr(why, "[a-z0-9._-]"));
    json_decref(run);
    /* what reaches the index directory */
    assert_int_equal(nops_histdir_commit(w, "x", 0, err, sizeof err), NOPS_OK);
    const char *files[] = {"runs.meta", "runs.faiss", "manifest.json"};
    char path[256];
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/current/%s", dir, files[f]);
        for (size_t i = 0; i < sizeof planted / sizeof planted[0]; i++)
            if (file_has(path, planted[i]))
                fail_msg("%s reached %s", planted[i], path);
    }
    snprintf(path, sizeof path, "%s/current/runs.meta", dir);
    assert_true(file_has(path, "run-0000001"));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pii_is_replaced),  cmocka_unit_test(test_ops_text_is_untouched),
        cmocka_unit_test(test_every_rule),
        cmocka_unit_test(test_counts),           cmocka_unit_test(test_actor_hash),
        cmocka_unit_test(test_json_record),      cmocka_unit_test(test_adversarial),
        cmocka_unit_test(test_ids_never_carry_secrets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
