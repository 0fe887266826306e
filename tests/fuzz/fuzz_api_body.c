/*
 * fuzz_api_body.c — libFuzzer target for HTTP request bodies: each input is POSTed as the body
 * of /analyze (the first byte picks /analyze or /ingest and the content type) to a real API
 * server on loopback, started once. Whatever the body, the server answers with a status the
 * API documents and a JSON body, errors in the {"error":{"code","message"}} shape, and keeps
 * answering.
 */
#include "api/api.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static nops_api *g_api;
static int g_port;
static nops_detect_params g_dp;

static void start(void)
{
    static nops_store *store;
    nops_log_configure(NOPS_LOG_OFF, NOPS_LOG_TEXT);
    nops_detect_params_default(&g_dp);
    store = nops_store_new(100, 10);
    nops_api_params p = {.rate = 1e9, .burst = 1e9, .body_limit = 1 << 20, .timeout_s = 5,
                         .threads = 1, .history = 100};
    snprintf(p.listen, sizeof p.listen, "127.0.0.1:0");
    char hex[65];
    nops_api_hash_key("fuzz-key", hex);
    snprintf(p.keys, sizeof p.keys, "f:org-admin:%s", hex);
    nops_api_deps d = {.store = store, .detect = &g_dp};
    char err[256];
    if (!(g_api = nops_api_new(&p, &d, err, sizeof err)) ||
        nops_api_start(g_api, err, sizeof err) != NOPS_OK)
        abort();
    g_port = nops_api_port(g_api);
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        abort();
    return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            return; /* the server may close early (e.g. 413): fine */
        c += w;
        n -= (size_t)w;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_api)
        start();
    const bool ingest = size && (data[0] & 1);
    const char *type = size && (data[0] & 2) ? "text/plain" : "application/json";
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: fuzz\r\nX-API-Key: fuzz-key\r\n"
                      "Content-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      ingest ? "/ingest" : "/analyze", type, size);
    int fd = dial();
    write_all(fd, head, (size_t)hl);
    write_all(fd, data, size);
    char *resp = malloc(1 << 20);
    size_t got = 0;
    ssize_t r;
    while (got < (1 << 20) - 1 && (r = read(fd, resp + got, (1 << 20) - 1 - got)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    close(fd);
    int status = 0;
    if (sscanf(resp, "HTTP/1.1 %d", &status) != 1)
        abort(); /* no answer at all */
    static const int ok[] = {200, 400, 404, 413, 415, 501, 503};
    bool known = false;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        known = known || status == ok[i];
    const char *body = strstr(resp, "\r\n\r\n");
    json_t *o = body ? json_loads(body + 4, 0, NULL) : NULL;
    if (!known || !o || (status >= 400 && !json_is_string(json_object_get(
                                               json_object_get(o, "error"), "message"))))
        abort();
    json_decref(o);
    free(resp);
    return 0;
}
