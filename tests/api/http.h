/*
 * http.h — a small libcurl client for the API tests: one request, its status, headers and body.
 */
#ifndef NOPS_TESTS_HTTP_H
#define NOPS_TESTS_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct http_res {
    long status;       /* 0 when the request failed at the transport */
    char *body;        /* NUL-terminated, malloc'd */
    size_t len;
    char headers[2048];
} http_res;

static inline size_t http__body(char *p, size_t sz, size_t n, void *ud)
{
    http_res *r = ud;
    char *nb = realloc(r->body, r->len + sz * n + 1);
    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static inline size_t http__header(char *p, size_t sz, size_t n, void *ud)
{
    http_res *r = ud;
    size_t used = strlen(r->headers), len = sz * n;
    if (used + len < sizeof r->headers) {
        memcpy(r->headers + used, p, len);
        r->headers[used + len] = '\0';
    }
    return len;
}

/* Options of http_do_ex: 0/NULL = the defaults of http_do. */
typedef struct http_opts {
    long timeout_s;   /* whole request; default 30 */
    const char *from; /* local address to connect from (e.g. "127.0.0.2"); default any */
    bool expect_100;  /* send "Expect: 100-continue" and wait for the server's go-ahead before
                         the body (default: no such round trip) */
} http_opts;

/*
 * `hdrs`: NULL-terminated list of "Name: value" lines (may be NULL). `body` may be NULL;
 * `body_len` (size_t)-1 = strlen(body).
 */
static inline http_res http_do_ex(int port, const char *method, const char *path,
                                  const char **hdrs, const char *body, size_t body_len,
                                  http_opts o)
{
    http_res r = {0};
    r.body = calloc(1, 1);
    CURL *h = curl_easy_init();
    char url[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *sl = NULL;
    for (size_t i = 0; hdrs && hdrs[i]; i++)
        sl = curl_slist_append(sl, hdrs[i]);
    sl = curl_slist_append(sl, o.expect_100 ? "Expect: 100-continue"
                                            : "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http__body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, http__header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, o.timeout_s > 0 ? o.timeout_s : 30L);
    char from[64];
    if (o.from) {
        snprintf(from, sizeof from, "host!%s", o.from);
        curl_easy_setopt(h, CURLOPT_INTERFACE, from);
    }
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(body_len == (size_t)-1 ? strlen(body) : body_len));
    }
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(sl);
    curl_easy_cleanup(h);
    return r;
}

static inline http_res http_do(int port, const char *method, const char *path,
                               const char **hdrs, const char *body, size_t body_len)
{
    return http_do_ex(port, method, path, hdrs, body, body_len, (http_opts){0});
}

static inline void http_free(http_res *r)
{
    free(r->body);
    r->body = NULL;
}

/* base64url without padding, as JWS wants it. */
static inline void http_b64url(const unsigned char *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    while (len > 0 && out[len - 1] == '=')
        out[--len] = '\0';
}

/* `prefix` + "<header>.<payload>.<signature>", HS256-signed with `secret` (NULL = unsigned). */
static inline void http_jwt(const char *prefix, const char *header, const char *payload,
                     const char *secret, char *out, size_t cap)
{
    char h[512], p[1024], signing[1600], sig[128] = "";
    http_b64url((const unsigned char *)header, strlen(header), h);
    http_b64url((const unsigned char *)payload, strlen(payload), p);
    snprintf(signing, sizeof signing, "%s.%s", h, p);
    if (secret) {
        unsigned char mac[32];
        unsigned int ml = 0;
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)signing,
             strlen(signing), mac, &ml);
        http_b64url(mac, ml, sig);
    }
    snprintf(out, cap, "%s%s.%s", prefix, signing, sig);
}

#endif
