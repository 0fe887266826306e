/*
 * fuzz_jwt.c — libFuzzer target for credentials: the input as a bearer token (after
 * "Bearer ") and as an API key, against an authenticator with a secret, an issuer and keys.
 * Whatever comes in, the answer is one of the results, a success carries a valid role and a
 * principal id, and a refusal a reason.
 */
#include "api/api.h"
#include "api/auth.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static nops_auth *a;
    if (!a) {
        char keys[256], hex[65];
        nops_api_hash_key("fuzz-key", hex);
        snprintf(keys, sizeof keys, "f:operator:%s", hex);
        if (!(a = nops__auth_new(keys, "fuzz-secret", "fuzz", 5, 5, 0, NULL, 0)))
            abort();
    }
    char *s = malloc(size + 8);
    memcpy(s, "Bearer ", 7);
    memcpy(s + 7, data, size);
    s[size + 7] = '\0';
    for (int as_key = 0; as_key < 2; as_key++) {
        nops_principal who;
        char why[128] = "";
        nops_auth_result r = nops__auth_check(a, as_key ? s + 7 : NULL, as_key ? NULL : s,
                                              1800000000, &who, why, sizeof why);
        if (r == NOPS_AUTH_OK && (who.role < NOPS_ROLE_VIEWER || who.role > NOPS_ROLE_ADMIN ||
                                  !who.id[0]))
            abort();
        if (r == NOPS_AUTH_INVALID && !why[0])
            abort();
        if (r != NOPS_AUTH_OK && r != NOPS_AUTH_INVALID && r != NOPS_AUTH_MISSING)
            abort();
    }
    free(s);
    return 0;
}
