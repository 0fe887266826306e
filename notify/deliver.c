/*
 * deliver.c — one HTTP POST with libcurl on the notifier's thread (never a caller's): bounded by
 * timeout_ms, no signals, no redirects, http and https only, close-on-exec sockets, the answer
 * read and thrown away (at most 64 KiB kept for the log). 2xx is delivered; 408, 429, 5xx and
 * transport errors are retried; any other answer would be the same the next time and is not.
 */
#include "notify/notify_int.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

void nt_sign(const unsigned char *secret, size_t secret_len, const char *ts, const char *body,
             size_t len, char *out, size_t cap)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    const size_t tl = strlen(ts);
    unsigned char *in = nops_malloc(tl + 1 + len);
    bool ok = in != NULL;
    if (ok) {
        memcpy(in, ts, tl);
        in[tl] = '.';
        memcpy(in + tl + 1, body, len);
        ok = HMAC(EVP_sha256(), secret, (int)secret_len, in, tl + 1 + len, mac, &ml) != NULL;
    }
    nops_free(in);
    if (!ok) {
        snprintf(out, cap, "sha256=");
        return;
    }
    nops_hex(mac, ml, hex);
    snprintf(out, cap, "sha256=%s", hex);
}

static size_t on_data(char *ptr, size_t size, size_t n, void *ud)
{
    char *b = ud; /* 256 bytes: the start of the answer, for the log */
    size_t have = strlen(b), len = size * n;
    if (have < 255) {
        size_t take = len < 255 - have ? len : 255 - have;
        memcpy(b + have, ptr, take);
        b[have + take] = '\0';
    }
    return len;
}

/* curl's own socket(2) is not close-on-exec: a playbook step forked meanwhile would inherit
 * the connection. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)ud;
    (void)purpose;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

nt_outcome nt_post(CURL *h, nt_kind kind, const char *url, const char *body, size_t len,
                   const char *event, const char *msg_id, const unsigned char *secret,
                   size_t secret_len, long timeout_ms, char *why, size_t why_size)
{
    char hdr[5][200], answer[256] = "";
    struct curl_slist *sl = NULL, *t;
    int nh = 0;
    snprintf(hdr[nh++], sizeof hdr[0], "Content-Type: application/json");
    if (kind == NT_WEBHOOK) {
        char ts[32];
        snprintf(ts, sizeof ts, "%lld", (long long)(nops_wall_ns() / 1000000000));
        snprintf(hdr[nh++], sizeof hdr[0], "X-NeuralOps-Event: %s", event);
        snprintf(hdr[nh++], sizeof hdr[0], "X-NeuralOps-Delivery: %s", msg_id);
        snprintf(hdr[nh++], sizeof hdr[0], "X-NeuralOps-Timestamp: %s", ts);
        if (secret_len) {
            char sig[96];
            nt_sign(secret, secret_len, ts, body, len, sig, sizeof sig);
            snprintf(hdr[nh++], sizeof hdr[0], "X-NeuralOps-Signature: %s", sig);
        }
    }
    for (int i = 0; i < nh; i++) {
        if (!(t = curl_slist_append(sl, hdr[i]))) break;
        sl = t;
    }
    if ((t = curl_slist_append(sl, "Expect:"))) /* no 100-continue round trip */
        sl = t;
    curl_easy_reset(h); /* keeps the connection cache */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "neuralops/" NOPS_VERSION);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, answer);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(sl);
    if (rc != CURLE_OK) {
        nops_errf(why, why_size, "%s", curl_easy_strerror(rc));
        return NT_RETRY;
    }
    if (code >= 200 && code < 300) return NT_OK;
    for (char *c = answer; *c; c++) /* one log line */
        if ((unsigned char)*c < ' ') *c = ' ';
    nops_errf(why, why_size, "HTTP %ld: %.200s", code, answer);
    return code == 408 || code == 429 || code >= 500 ? NT_RETRY : NT_PERMANENT;
}
