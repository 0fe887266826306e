/*
 * prom.c — one Prometheus HTTP API call for POST /analyze {"prom_query"}: GET
 * /api/v1/query_range?query=&start=&end=&step= with libcurl (bounded by a 5 s timeout and a 16 MiB
 * answer), parsed with jansson; the values of the first series of the matrix, oldest first.
 */
#include "api/api_int.h"

#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ANSWER (16u << 20)

static size_t on_data(char *ptr, size_t size, size_t n, void *ud)
{
    nops_buf *b = ud;
    size_t len = size * n;
    if (b->len + len > MAX_ANSWER || nops_buf_reserve(b, len + 1) != NOPS_OK)
        return 0; /* aborts the transfer */
    memcpy(b->b + b->len, ptr, len);
    b->len += len;
    b->b[b->len] = '\0';
    return len;
}

/* The values of result[0] of a query_range answer; NOPS_PARSE with a reason otherwise. */
static nops_err parse_answer(const nops_buf *b, double **values, size_t *n, char *errstr,
                             size_t errstr_size)
{
    json_error_t je;
    json_t *o = json_loadb(b->b ? b->b : "", b->len, 0, &je);
    const char *status = json_string_value(json_object_get(o, "status"));
    nops_err e = NOPS_PARSE;
    if (!o || !status) {
        nops_errf(errstr, errstr_size, "the answer is not Prometheus API JSON");
    } else if (strcmp(status, "success") != 0) {
        const char *err = json_string_value(json_object_get(o, "error"));
        nops_errf(errstr, errstr_size, "%.200s", err ? err : "query failed");
    } else {
        json_t *res = json_object_get(json_object_get(o, "data"), "result");
        json_t *vals = json_object_get(json_array_get(res, 0), "values");
        size_t i, k = 0;
        json_t *pair;
        *values = malloc((json_array_size(vals) + 1) * sizeof **values);
        e = *values ? NOPS_OK : NOPS_NOMEM;
        json_array_foreach(vals, i, pair) { /* [ <unix time>, "<value>" ] */
            const char *s = json_string_value(json_array_get(pair, 1));
            char *end;
            double v = s ? strtod(s, &end) : NAN;
            if (*values && s && end != s && isfinite(v))
                (*values)[k++] = v;
        }
        *n = k;
    }
    json_decref(o);
    return e;
}

/* curl's own socket(2) is not close-on-exec (7.88): a playbook step forked meanwhile would
 * inherit the connection. This one is, atomically. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)ud;
    (void)purpose;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

nops_err nops__prom_query(const char *base_url, const char *query, int64_t lookback_s,
                          int64_t step_s, double **values, size_t *n, char *errstr,
                          size_t errstr_size)
{
    *values = NULL;
    *n = 0;
    CURL *h = curl_easy_init();
    if (!h) {
        nops_errf(errstr, errstr_size, "cannot start an HTTP client");
        return NOPS_NOMEM;
    }
    char *q = curl_easy_escape(h, query, 0);
    const int64_t end = nops_wall_ns() / 1000000000;
    size_t ul = strlen(base_url) + (q ? strlen(q) : 0) + 128;
    char *url = nops_malloc(ul);
    nops_buf b = {0};
    nops_err e = NOPS_NOMEM;
    if (q && url) {
        const size_t bl = strlen(base_url);
        snprintf(url, ul, "%.*s/api/v1/query_range?query=%s&start=%lld&end=%lld&step=%lld",
                 (int)(bl && base_url[bl - 1] == '/' ? bl - 1 : bl), base_url, q,
                 (long long)(end - lookback_s), (long long)end, (long long)step_s);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        CURLcode rc = curl_easy_perform(h);
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (rc != CURLE_OK) {
            nops_errf(errstr, errstr_size, "%s", curl_easy_strerror(rc));
            e = NOPS_IO;
        } else {
            e = parse_answer(&b, values, n, errstr, errstr_size);
            if (e == NOPS_OK && code != 200) {
                nops_errf(errstr, errstr_size, "HTTP %ld", code);
                e = NOPS_IO;
            }
        }
    }
    curl_free(q);
    nops_free(url);
    nops_free(b.b);
    curl_easy_cleanup(h);
    if (e != NOPS_OK) {
        free(*values);
        *values = NULL;
        *n = 0;
    }
    return e;
}
