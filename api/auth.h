/*
 * auth.h — who is calling and may they (internal to api/; not a public header).
 *
 * API keys: configured as "id:role:sha256hex,..." (api.keys); a presented X-API-Key is hashed
 * with SHA-256 (OpenSSL EVP) and compared in constant time (CRYPTO_memcmp) against every
 * configured hash; the key itself is never stored or logged, only its id.
 * Bearer tokens: compact JWS, header {"alg":"HS256"} only (any other alg, "none" included, is
 * refused), signature HMAC-SHA256 (OpenSSL) over "header.payload" compared in constant time;
 * claims: `exp` required and > now, `nbf` if present <= now, `iss` must equal the configured
 * issuer when one is configured, `role` required and one of the roles; `sub` names the caller.
 * Rate limit: one token bucket per principal id (rate per second, burst), thread-safe.
 * Failed authentications: one token bucket per client address (api.auth_failures_per_min, a
 * minute's worth as the burst); each failed attempt takes a token, and an address without one
 * is refused before its credentials are even looked at (so guessing cannot go on unthrottled
 * behind 429s), until the bucket refills.
 *
 * Ownership: nops_auth copies what it needs from its arguments; nops__auth_destroy frees all.
 */
#ifndef NOPS_API_AUTH_H
#define NOPS_API_AUTH_H

#include "core/core.h"

typedef enum nops_role {
    NOPS_ROLE_NONE = 0,
    NOPS_ROLE_VIEWER = 1,
    NOPS_ROLE_OPERATOR = 2,
    NOPS_ROLE_ADMIN = 3, /* "org-admin" */
} nops_role;

/** "viewer" | "operator" | "org-admin" | "none". */
const char *nops__role_name(nops_role r);
/** Parse a role name; NOPS_ROLE_NONE when unknown. */
nops_role nops__role_parse(const char *s, size_t len);

typedef struct nops_principal {
    nops_role role;
    char id[80]; /* "key:<id>" or "jwt:<sub>" (sub truncated); for logs and the rate limit */
} nops_principal;

typedef enum nops_auth_result {
    NOPS_AUTH_OK = 0,
    NOPS_AUTH_MISSING, /* no credentials presented */
    NOPS_AUTH_INVALID, /* unknown key, bad token, bad signature, bad/expired claims */
} nops_auth_result;

typedef struct nops_auth nops_auth;

/**
 * Build from api.keys (may be ""), the JWT secret ("" = tokens refused) and issuer ("" = any),
 * the bucket settings (rate > 0, burst >= 1) and the failed authentications allowed per client
 * address and minute (0 = unlimited). NULL with a sentence naming the bad entry (never echoing
 * a hash in full) when a key entry is malformed or duplicated.
 */
nops_auth *nops__auth_new(const char *keys, const char *jwt_secret, const char *jwt_issuer,
                          double rate, double burst, double fails_per_min, char *errstr,
                          size_t errstr_size);
void nops__auth_destroy(nops_auth *a);
/** Configured key entries plus (1 if a JWT secret is set). 0 = nobody can authenticate. */
size_t nops__auth_methods(const nops_auth *a);

/**
 * Authenticate: `api_key` is the X-API-Key header value or NULL, `authorization` the
 * Authorization header value or NULL (only "Bearer <jwt>" is understood). When both are given
 * the key is used. `now_s` is the wall clock in seconds. On NOPS_AUTH_INVALID, `why` holds a
 * short reason safe to send back ("unknown API key", "token expired", ...).
 */
nops_auth_result nops__auth_check(nops_auth *a, const char *api_key, const char *authorization,
                                  int64_t now_s, nops_principal *out, char *why, size_t why_size);

/** Take one token of `id`'s bucket at monotonic time now_ns; false = limited, with
 *  *retry_after_s the whole seconds (>= 1) until a token is back. */
bool nops__auth_take(nops_auth *a, const char *id, int64_t now_ns, int64_t *retry_after_s);

/** True when client address `addr` (any stable text, e.g. "1.2.3.4") has used up its failed
 *  authentications at monotonic time now_ns; then *retry_after_s is the whole seconds (>= 1)
 *  until it may try again. Nothing is taken. */
bool nops__auth_blocked(nops_auth *a, const char *addr, int64_t now_ns, int64_t *retry_after_s);
/** Count one failed authentication of `addr`; true when this one used up its allowance (the
 *  caller may log that the address is now blocked). */
bool nops__auth_failed(nops_auth *a, const char *addr, int64_t now_ns);

#endif /* NOPS_API_AUTH_H */
