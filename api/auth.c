/*
 * auth.c — API keys, HS256 bearer tokens, per-principal token buckets and per-address buckets
 * of failed authentications (auth.h).
 */
#include "api/auth.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#define MAX_TOKEN 8192
#define MAX_BUCKETS 65536      /* principals */
#define MAX_FAIL_BUCKETS 16384 /* client addresses with failed attempts */

typedef struct key_entry {
    char id[64];
    nops_role role;
    unsigned char hash[32];
} key_entry;

typedef struct bucket {
    char id[80];     /* principal id or client address key */
    double tokens;   /* left now (refilled lazily at last_ns) */
    int64_t last_ns; /* monotonic time of the last refill */
    bool used;       /* slot taken */
} bucket;

/* Token buckets by id: open addressing with a bounded probe; when a neighbourhood is full the
 * bucket idle longest is reused, so the table never grows (an evicted id starts full again). */
typedef struct bucket_table {
    bucket *b;       /* `size` slots, a power of two */
    size_t size;
    double rate;     /* tokens per second */
    double burst;    /* bucket size */
} bucket_table;

struct nops_auth {
    key_entry *keys;
    size_t n_keys;
    char *secret, *issuer;
    pthread_mutex_t mu;   /* both tables */
    bucket_table calls;   /* requests per principal */
    bucket_table fails;   /* failed authentications per client address; rate 0 = off */
};

const char *nops__role_name(nops_role r)
{
    switch (r) {
    case NOPS_ROLE_VIEWER: return "viewer";
    case NOPS_ROLE_OPERATOR: return "operator";
    case NOPS_ROLE_ADMIN: return "org-admin";
    default: return "none";
    }
}

nops_role nops__role_parse(const char *s, size_t len)
{
    for (int r = NOPS_ROLE_VIEWER; r <= NOPS_ROLE_ADMIN; r++)
        if (strlen(nops__role_name((nops_role)r)) == len &&
            memcmp(s, nops__role_name((nops_role)r), len) == 0)
            return (nops_role)r;
    return NOPS_ROLE_NONE;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* One "id:role:hex" entry (trimmed) into k; a sentence in errstr otherwise. */
static bool parse_key(const char *s, size_t len, size_t pos, key_entry *k, char *errstr,
                      size_t errstr_size)
{
    const char *c1 = memchr(s, ':', len);
    const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - s)) : NULL;
    if (!c2) {
        nops_errf(errstr, errstr_size, "api.keys: entry %zu is not id:role:sha256hex", pos);
        return false;
    }
    size_t idl = (size_t)(c1 - s), rl = (size_t)(c2 - c1 - 1), hl = len - (size_t)(c2 + 1 - s);
    for (size_t i = 0; i < idl; i++)
        if (isspace((unsigned char)s[i]) || s[i] == ',')
            idl = 0;
    if (idl == 0 || idl >= 61) {
        nops_errf(errstr, errstr_size, "api.keys: entry %zu has an empty, spaced or over-long id",
                  pos);
        return false;
    }
    memcpy(k->id, s, idl);
    k->id[idl] = '\0';
    if ((k->role = nops__role_parse(c1 + 1, rl)) == NOPS_ROLE_NONE) {
        nops_errf(errstr, errstr_size, "api.keys: key \"%s\" has role \"%.*s\" (viewer, operator "
                  "or org-admin)", k->id, (int)(rl < 40 ? rl : 40), c1 + 1);
        return false;
    }
    bool ok = hl == 64;
    for (size_t i = 0; ok && i < 32; i++) {
        int hi = hexval(c2[1 + 2 * i]), lo = hexval(c2[2 + 2 * i]);
        ok = hi >= 0 && lo >= 0;
        k->hash[i] = (unsigned char)(hi * 16 + lo);
    }
    if (!ok) {
        nops_errf(errstr, errstr_size, "api.keys: key \"%s\" needs a SHA-256 of 64 hex digits "
                  "(neuralops config hash-key)", k->id);
        return false;
    }
    return true;
}

static bool parse_keys(nops_auth *a, const char *keys, char *errstr, size_t errstr_size)
{
    size_t n = 1;
    for (const char *p = keys; *p; p++)
        n += *p == ',';
    if (!(a->keys = nops_calloc(n, sizeof *a->keys))) {
        nops_errf(errstr, errstr_size, "out of memory");
        return false;
    }
    const char *p = keys;
    for (size_t pos = 1;; pos++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (len && isspace((unsigned char)*s))
            s++, len--;
        while (len && isspace((unsigned char)s[len - 1]))
            len--;
        if (len) {
            key_entry *k = &a->keys[a->n_keys];
            if (!parse_key(s, len, pos, k, errstr, errstr_size))
                return false;
            for (size_t i = 0; i < a->n_keys; i++)
                if (strcmp(a->keys[i].id, k->id) == 0 ||
                    memcmp(a->keys[i].hash, k->hash, 32) == 0) {
                    nops_errf(errstr, errstr_size, "api.keys: key \"%s\" repeats an id or a key",
                              k->id);
                    return false;
                }
            a->n_keys++;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return true;
}

nops_auth *nops__auth_new(const char *keys, const char *jwt_secret, const char *jwt_issuer,
                          double rate, double burst, double fails_per_min, char *errstr,
                          size_t errstr_size)
{
    nops_auth *a = nops_calloc(1, sizeof *a);
    if (!a) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->calls = (bucket_table){nops_calloc(MAX_BUCKETS, sizeof(bucket)), MAX_BUCKETS,
                              rate > 0 ? rate : 1, burst >= 1 ? burst : 1};
    a->fails = (bucket_table){NULL, MAX_FAIL_BUCKETS, fails_per_min > 0 ? fails_per_min / 60 : 0,
                              fails_per_min >= 1 ? fails_per_min : 1};
    if (fails_per_min > 0)
        a->fails.b = nops_calloc(MAX_FAIL_BUCKETS, sizeof(bucket));
    a->secret = nops_strdup(jwt_secret ? jwt_secret : "");
    a->issuer = nops_strdup(jwt_issuer ? jwt_issuer : "");
    if (!a->secret || !a->issuer || !a->calls.b || (fails_per_min > 0 && !a->fails.b)) {
        nops_errf(errstr, errstr_size, "out of memory");
        nops__auth_destroy(a);
        return NULL;
    }
    if (!parse_keys(a, keys ? keys : "", errstr, errstr_size)) {
        nops__auth_destroy(a);
        return NULL;
    }
    return a;
}

void nops__auth_destroy(nops_auth *a)
{
    if (!a)
        return;
    if (a->secret)
        OPENSSL_cleanse(a->secret, strlen(a->secret));
    nops_free(a->secret);
    nops_free(a->issuer);
    nops_free(a->keys);
    nops_free(a->calls.b);
    nops_free(a->fails.b);
    pthread_mutex_destroy(&a->mu);
    nops_free(a);
}

size_t nops__auth_methods(const nops_auth *a)
{
    return a->n_keys + (a->secret[0] ? 1 : 0);
}

/* ---- API keys ---------------------------------------------------------------------------- */

static nops_auth_result check_key(nops_auth *a, const char *key, nops_principal *out, char *why,
                                  size_t why_size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        nops_errf(why, why_size, "cannot hash the API key");
        return NOPS_AUTH_INVALID;
    }
    const key_entry *hit = NULL;
    for (size_t i = 0; i < a->n_keys; i++) /* every entry, in constant time each */
        if (CRYPTO_memcmp(md, a->keys[i].hash, 32) == 0)
            hit = &a->keys[i];
    if (!hit) {
        nops_errf(why, why_size, "unknown API key");
        return NOPS_AUTH_INVALID;
    }
    out->role = hit->role;
    snprintf(out->id, sizeof out->id, "key:%s", hit->id);
    return NOPS_AUTH_OK;
}

/* ---- HS256 tokens ------------------------------------------------------------------------ */

/* base64url (no padding) → bytes; -1 when malformed. */
static int b64url_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    if (len % 4 == 1 || (len + 3) / 4 * 3 > cap || len > MAX_TOKEN)
        return -1;
    char buf[MAX_TOKEN + 4];
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!(isalnum((unsigned char)c) || c == '-' || c == '_'))
            return -1;
        buf[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    size_t pad = (4 - len % 4) % 4;
    memset(buf + len, '=', pad);
    int n = EVP_DecodeBlock(out, (const unsigned char *)buf, (int)(len + pad));
    return n < 0 ? -1 : n - (int)pad; /* EVP_DecodeBlock counts the padding as zero bytes */
}

static json_t *decode_part(const char *s, size_t len)
{
    unsigned char raw[MAX_TOKEN];
    int n = b64url_decode(s, len, raw, sizeof raw);
    return n < 0 ? NULL : json_loadb((const char *)raw, (size_t)n, 0, NULL);
}

static nops_auth_result bad(char *why, size_t why_size, const char *reason)
{
    nops_errf(why, why_size, "%s", reason);
    return NOPS_AUTH_INVALID;
}

static nops_auth_result check_claims(nops_auth *a, json_t *c, int64_t now_s, nops_principal *out,
                                     char *why, size_t why_size)
{
    json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf");
    const char *role = json_string_value(json_object_get(c, "role"));
    const char *iss = json_string_value(json_object_get(c, "iss"));
    const char *sub = json_string_value(json_object_get(c, "sub"));
    if (!json_is_object(c))
        return bad(why, why_size, "malformed token");
    if (!json_is_number(exp))
        return bad(why, why_size, "token has no exp claim");
    if (json_number_value(exp) <= (double)now_s)
        return bad(why, why_size, "token expired");
    if (nbf && (!json_is_number(nbf) || json_number_value(nbf) > (double)now_s))
        return bad(why, why_size, "token not yet valid");
    if (a->issuer[0] && (!iss || strcmp(iss, a->issuer) != 0))
        return bad(why, why_size, "token issuer not accepted");
    nops_role r = role ? nops__role_parse(role, strlen(role)) : NOPS_ROLE_NONE;
    if (r == NOPS_ROLE_NONE)
        return bad(why, why_size, "token has no valid role");
    out->role = r;
    snprintf(out->id, sizeof out->id, "jwt:%.70s", sub && *sub ? sub : "-");
    return NOPS_AUTH_OK;
}

static nops_auth_result check_jwt(nops_auth *a, const char *tok, int64_t now_s,
                                  nops_principal *out, char *why, size_t why_size)
{
    if (!a->secret[0])
        return bad(why, why_size, "bearer tokens are not enabled");
    size_t len = strlen(tok);
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (len > MAX_TOKEN || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
        return bad(why, why_size, "malformed token");
    json_t *h = decode_part(tok, (size_t)(d1 - tok));
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *typ = json_string_value(json_object_get(h, "typ"));
    bool alg_ok = alg && strcmp(alg, "HS256") == 0 &&
                  (!json_object_get(h, "typ") || (typ && strcmp(typ, "JWT") == 0));
    json_decref(h);
    if (!alg_ok)
        return bad(why, why_size, h ? "token algorithm must be HS256" : "malformed token");
    unsigned char mac[EVP_MAX_MD_SIZE], sig[EVP_MAX_MD_SIZE + 8];
    unsigned int ml = 0;
    int sl = b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), sig, sizeof sig);
    if (!HMAC(EVP_sha256(), a->secret, (int)strlen(a->secret), (const unsigned char *)tok,
              (size_t)(d2 - tok), mac, &ml) ||
        sl != (int)ml || CRYPTO_memcmp(mac, sig, ml) != 0)
        return bad(why, why_size, "token signature does not match");
    json_t *c = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    nops_auth_result r = c ? check_claims(a, c, now_s, out, why, why_size)
                           : bad(why, why_size, "malformed token");
    json_decref(c);
    return r;
}

nops_auth_result nops__auth_check(nops_auth *a, const char *api_key, const char *authorization,
                                  int64_t now_s, nops_principal *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    if (api_key)
        return check_key(a, api_key, out, why, why_size);
    if (!authorization)
        return NOPS_AUTH_MISSING;
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return bad(why, why_size, "only Authorization: Bearer tokens are understood");
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    return check_jwt(a, tok, now_s, out, why, why_size);
}

/* ---- token buckets ------------------------------------------------------------------------ */

/* The bucket of `id`, refilled to now_ns (a new or evicted one starts full). Under a->mu. */
static bucket *bucket_get(bucket_table *t, const char *id, int64_t now_ns)
{
    size_t mask = t->size - 1, h = (size_t)XXH3_64bits(id, strlen(id)) & mask;
    bucket *b = NULL, *stalest = NULL;
    for (size_t probe = 0; probe < 64; probe++, h = (h + 1) & mask) { /* bounded probe */
        bucket *c = &t->b[h];
        if (!c->used || strcmp(c->id, id) == 0) {
            b = c;
            break;
        }
        if (!stalest || c->last_ns < stalest->last_ns)
            stalest = c;
    }
    if (!b) /* the neighbourhood is full: reuse the bucket idle longest */
        b = stalest;
    if (!b->used || strcmp(b->id, id) != 0) {
        snprintf(b->id, sizeof b->id, "%s", id);
        b->used = true;
        b->tokens = t->burst;
        b->last_ns = now_ns;
    }
    if (now_ns > b->last_ns) {
        b->tokens += (double)(now_ns - b->last_ns) / 1e9 * t->rate;
        if (b->tokens > t->burst)
            b->tokens = t->burst;
        b->last_ns = now_ns;
    }
    return b;
}

/* Whole seconds (>= 1) until bucket b holds a token again. */
static int64_t retry_after(const bucket_table *t, const bucket *b)
{
    int64_t s = (int64_t)ceil((1 - b->tokens) / t->rate);
    return s > 0 ? s : 1;
}

bool nops__auth_take(nops_auth *a, const char *id, int64_t now_ns, int64_t *retry_after_s)
{
    pthread_mutex_lock(&a->mu);
    bucket *b = bucket_get(&a->calls, id, now_ns);
    bool ok = b->tokens >= 1;
    if (ok)
        b->tokens -= 1;
    else
        *retry_after_s = retry_after(&a->calls, b);
    pthread_mutex_unlock(&a->mu);
    return ok;
}

bool nops__auth_blocked(nops_auth *a, const char *addr, int64_t now_ns, int64_t *retry_after_s)
{
    if (!a->fails.b)
        return false;
    pthread_mutex_lock(&a->mu);
    bucket *b = bucket_get(&a->fails, addr, now_ns);
    bool blocked = b->tokens < 1;
    if (blocked)
        *retry_after_s = retry_after(&a->fails, b);
    pthread_mutex_unlock(&a->mu);
    return blocked;
}

bool nops__auth_failed(nops_auth *a, const char *addr, int64_t now_ns)
{
    if (!a->fails.b)
        return false;
    pthread_mutex_lock(&a->mu);
    bucket *b = bucket_get(&a->fails, addr, now_ns);
    bool was_open = b->tokens >= 1;
    b->tokens = b->tokens >= 1 ? b->tokens - 1 : 0;
    bool now_blocked = was_open && b->tokens < 1;
    pthread_mutex_unlock(&a->mu);
    return now_blocked;
}
