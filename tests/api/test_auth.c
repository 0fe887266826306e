/*
 * test_auth.c — API keys, HS256 bearer tokens and token buckets (api/auth.h): every way a key
 * entry or a token can be wrong is refused with its reason; roles come through; buckets refill
 * on the clock they are given (no sleeping, no real-time assertions).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "api/auth.h"
#include "tests/api/http.h"

#include <stdio.h>
#include <string.h>

#define SECRET "s3cret-for-tests"
#define NOW 1800000000

static char g_keys[1024];

static int setup(void **state)
{
    const char *k[][3] = {{"v", "viewer", "key-v"}, {"o", "operator", "key-o"},
                          {"a", "org-admin", "key-a"}};
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        char hex[65];
        nops_api_hash_key(k[i][2], hex);
        at += (size_t)snprintf(g_keys + at, sizeof g_keys - at, "%s %s:%s:%s", i ? "," : "",
                               k[i][0], k[i][1], hex);
    }
    return 0;
}

/* "Bearer <header>.<payload>.<sig>" signed with `secret` (NULL = leave the signature empty). */
static void token(const char *header, const char *payload, const char *secret, char *out,
                  size_t cap)
{
    http_jwt("Bearer ", header, payload, secret, out, cap);
}

static nops_auth *make(const char *keys, const char *secret, const char *iss)
{
    char err[256];
    nops_auth *a = nops__auth_new(keys, secret, iss, 10, 5, 0, err, sizeof err);
    if (!a)
        fail_msg("auth: %s", err);
    return a;
}

static void test_key_entries(void **state)
{
    char err[256];
    char hex[65];
    nops_api_hash_key("x", hex);
    char bad[6][200];
    snprintf(bad[0], 200, "k1:viewer");                   /* missing the hash */
    snprintf(bad[1], 200, "k1:root:%s", hex);             /* no such role */
    snprintf(bad[2], 200, "k1:viewer:abcd");              /* not 64 hex digits */
    snprintf(bad[3], 200, "k1:viewer:%.63sz", hex);       /* a non-hex digit */
    snprintf(bad[4], 200, "k1:viewer:%s,k1:operator:%s", hex, hex); /* repeated */
    snprintf(bad[5], 200, ":viewer:%s", hex);             /* empty id */
    for (int i = 0; i < 6; i++) {
        err[0] = '\0';
        assert_null(nops__auth_new(bad[i], "", "", 1, 1, 0, err, sizeof err));
        assert_non_null(strstr(err, "api.keys"));
        assert_null(strstr(err, hex)); /* a hash is never echoed */
    }
    nops_auth *a = make(g_keys, "", "");
    assert_int_equal(nops__auth_methods(a), 3);
    nops__auth_destroy(a);
    a = make("", SECRET, "");
    assert_int_equal(nops__auth_methods(a), 1);
    nops__auth_destroy(a);
}

static void test_keys(void **state)
{
    nops_auth *a = make(g_keys, SECRET, "");
    nops_principal who;
    char why[128];
    const char *keys[] = {"key-v", "key-o", "key-a"};
    const nops_role roles[] = {NOPS_ROLE_VIEWER, NOPS_ROLE_OPERATOR, NOPS_ROLE_ADMIN};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(nops__auth_check(a, keys[i], NULL, NOW, &who, why, sizeof why),
                         NOPS_AUTH_OK);
        assert_int_equal(who.role, roles[i]);
        assert_non_null(strstr(who.id, "key:"));
        assert_null(strstr(who.id, keys[i])); /* the id, never the key */
    }
    assert_int_equal(nops__auth_check(a, "key-x", NULL, NOW, &who, why, sizeof why),
                     NOPS_AUTH_INVALID);
    assert_string_equal(why, "unknown API key");
    assert_int_equal(nops__auth_check(a, NULL, NULL, NOW, &who, why, sizeof why),
                     NOPS_AUTH_MISSING);
    /* both given: the key decides */
    char t[2048];
    token("{\"alg\":\"HS256\"}", "{\"role\":\"org-admin\",\"exp\":1900000000}", SECRET, t,
          sizeof t);
    assert_int_equal(nops__auth_check(a, "key-v", t, NOW, &who, why, sizeof why), NOPS_AUTH_OK);
    assert_int_equal(who.role, NOPS_ROLE_VIEWER);
    assert_string_equal(nops__role_name(NOPS_ROLE_ADMIN), "org-admin");
    assert_int_equal(nops__role_parse("operator", 8), NOPS_ROLE_OPERATOR);
    assert_int_equal(nops__role_parse("root", 4), NOPS_ROLE_NONE);
    nops__auth_destroy(a);
}

static void test_tokens(void **state)
{
    nops_auth *a = make(g_keys, SECRET, "ops");
    nops_principal who;
    char why[128], t[4096];
    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    token(hs, "{\"sub\":\"ci-bot\",\"role\":\"operator\",\"iss\":\"ops\",\"exp\":1800000600}",
          SECRET, t, sizeof t);
    assert_int_equal(nops__auth_check(a, NULL, t, NOW, &who, why, sizeof why), NOPS_AUTH_OK);
    assert_int_equal(who.role, NOPS_ROLE_OPERATOR);
    assert_string_equal(who.id, "jwt:ci-bot");
    t[0] = 'b'; /* the scheme is case-insensitive */
    assert_int_equal(nops__auth_check(a, NULL, t, NOW, &who, why, sizeof why), NOPS_AUTH_OK);

    const struct { const char *h, *p, *secret, *why; } bad[] = {
        {hs, "{\"role\":\"viewer\",\"iss\":\"ops\",\"exp\":1800000600}", "wrong",
         "signature does not match"},
        {"{\"alg\":\"none\"}", "{\"role\":\"viewer\",\"iss\":\"ops\",\"exp\":1800000600}", NULL,
         "HS256"},
        {"{\"alg\":\"HS512\"}", "{\"role\":\"viewer\",\"iss\":\"ops\",\"exp\":1800000600}",
         SECRET, "HS256"},
        {"{\"alg\":\"RS256\"}", "{\"role\":\"viewer\",\"iss\":\"ops\",\"exp\":1800000600}",
         SECRET, "HS256"},
        {"{\"alg\":\"HS256\",\"typ\":\"JWE\"}",
         "{\"role\":\"viewer\",\"iss\":\"ops\",\"exp\":1800000600}", SECRET, "HS256"},
        {hs, "{\"role\":\"viewer\",\"iss\":\"ops\",\"exp\":1799999999}", SECRET, "expired"},
        {hs, "{\"role\":\"viewer\",\"iss\":\"ops\",\"exp\":1800000600,\"nbf\":1800000100}",
         SECRET, "not yet valid"},
        {hs, "{\"role\":\"viewer\",\"iss\":\"dev\",\"exp\":1800000600}", SECRET, "issuer"},
        {hs, "{\"role\":\"viewer\",\"exp\":1800000600}", SECRET, "issuer"},
        {hs, "{\"iss\":\"ops\",\"exp\":1800000600}", SECRET, "no valid role"},
        {hs, "{\"role\":\"root\",\"iss\":\"ops\",\"exp\":1800000600}", SECRET, "no valid role"},
        {hs, "{\"role\":\"viewer\",\"iss\":\"ops\"}", SECRET, "no exp"},
        {hs, "[1,2,3]", SECRET, "malformed"},
        {hs, "not json", SECRET, "malformed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        token(bad[i].h, bad[i].p, bad[i].secret, t, sizeof t);
        why[0] = '\0';
        assert_int_equal(nops__auth_check(a, NULL, t, NOW, &who, why, sizeof why),
                         NOPS_AUTH_INVALID);
        if (!strstr(why, bad[i].why))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, bad[i].why);
    }
    const char *garbage[] = {"Bearer ", "Bearer a.b", "Bearer a.b.c.d", "Bearer !!!.???.###",
                             "Basic dXNlcjpwYXNz", "Bearer eyJhbGciOiJIUzI1NiJ9..", "Token x"};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        assert_int_equal(nops__auth_check(a, NULL, garbage[i], NOW, &who, why, sizeof why),
                         NOPS_AUTH_INVALID);
    /* oversized */
    static char huge[20000];
    memcpy(huge, "Bearer ", 7);
    memset(huge + 7, 'A', sizeof huge - 8);
    assert_int_equal(nops__auth_check(a, NULL, huge, NOW, &who, why, sizeof why),
                     NOPS_AUTH_INVALID);
    nops__auth_destroy(a);
    /* tokens off */
    a = make(g_keys, "", "");
    token(hs, "{\"role\":\"viewer\",\"exp\":1800000600}", SECRET, t, sizeof t);
    assert_int_equal(nops__auth_check(a, NULL, t, NOW, &who, why, sizeof why),
                     NOPS_AUTH_INVALID);
    assert_non_null(strstr(why, "not enabled"));
    nops__auth_destroy(a);
}

static void test_buckets(void **state)
{
    nops_auth *a = make(g_keys, "", ""); /* 10 per second, burst 5 */
    int64_t t = 1000000000000ll, retry = 0;
    for (int i = 0; i < 5; i++)
        assert_true(nops__auth_take(a, "key:v", t, &retry));
    assert_false(nops__auth_take(a, "key:v", t, &retry));
    assert_int_equal(retry, 1);
    assert_true(nops__auth_take(a, "key:o", t, &retry)); /* its own bucket */
    t += 100000000; /* 0.1 s: one token back */
    assert_true(nops__auth_take(a, "key:v", t, &retry));
    assert_false(nops__auth_take(a, "key:v", t, &retry));
    t += 10000000000ll; /* long idle: full again, not more */
    for (int i = 0; i < 5; i++)
        assert_true(nops__auth_take(a, "key:v", t, &retry));
    assert_false(nops__auth_take(a, "key:v", t, &retry));
    /* many callers: the table stays bounded and keeps working */
    char id[32];
    for (int i = 0; i < 200000; i++) {
        snprintf(id, sizeof id, "jwt:user-%d", i);
        assert_true(nops__auth_take(a, id, t + i, &retry));
    }
    nops__auth_destroy(a);
    /* slow refill: Retry-After counts whole seconds */
    char err[64];
    a = nops__auth_new("", "", "", 0.25, 1, 0, err, sizeof err);
    assert_true(nops__auth_take(a, "x", t, &retry));
    assert_false(nops__auth_take(a, "x", t, &retry));
    assert_int_equal(retry, 4);
    nops__auth_destroy(a);
}

/* Failed authentications per client address: a minute's worth at once, then blocked until a
 * token is back (on the clock given); other addresses have their own; 0 = no limit. */
static void test_failure_buckets(void **state)
{
    (void)state;
    char err[64];
    nops_auth *a = nops__auth_new("", "", "", 10, 5, 6, err, sizeof err); /* 6 a minute */
    int64_t t = 5000000000000ll, retry = 0;
    for (int i = 0; i < 6; i++) {
        assert_false(nops__auth_blocked(a, "10.0.0.1", t, &retry));
        assert_int_equal(nops__auth_failed(a, "10.0.0.1", t), i == 5); /* the 6th uses it up */
    }
    assert_true(nops__auth_blocked(a, "10.0.0.1", t, &retry));
    assert_int_equal(retry, 10); /* one token every 10 s */
    assert_false(nops__auth_blocked(a, "10.0.0.2", t, &retry)); /* its own bucket */
    t += 9000000000ll;
    assert_true(nops__auth_blocked(a, "10.0.0.1", t, &retry));
    assert_int_equal(retry, 1);
    t += 1000000000ll; /* one attempt back, and used up again by one failure */
    assert_false(nops__auth_blocked(a, "10.0.0.1", t, &retry));
    assert_true(nops__auth_failed(a, "10.0.0.1", t));
    assert_true(nops__auth_blocked(a, "10.0.0.1", t, &retry));
    t += 3600000000000ll; /* long quiet: a minute's worth again, not more */
    for (int i = 0; i < 6; i++)
        assert_int_equal(nops__auth_failed(a, "10.0.0.1", t), i == 5);
    assert_true(nops__auth_blocked(a, "10.0.0.1", t, &retry));
    /* many addresses: the table stays bounded and keeps working */
    char id[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        nops__auth_failed(a, id, t + i);
    }
    assert_false(nops__auth_blocked(a, "192.0.2.1", t + 100000, &retry));
    assert_false(nops__auth_failed(a, "192.0.2.1", t + 100000));
    nops__auth_destroy(a);
    a = nops__auth_new("", "", "", 10, 5, 0, err, sizeof err); /* no limit */
    for (int i = 0; i < 1000; i++)
        assert_false(nops__auth_failed(a, "10.0.0.1", t));
    assert_false(nops__auth_blocked(a, "10.0.0.1", t, &retry));
    nops__auth_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_entries),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_failure_buckets),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
