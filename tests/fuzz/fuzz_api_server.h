/*
 * fuzz_api_server.h — what the API fuzz targets share: a real API server on loopback, started
 * once per process without a pipeline, with one key "fuzz-key" of the given role; a connection
 * to it; and a write that gives up quietly when the server closes early (e.g. after a 413).
 * Header-only: each target is its own binary.
 */
#ifndef NOPS_TESTS_FUZZ_API_SERVER_H
#define NOPS_TESTS_FUZZ_API_SERVER_H

#include "api/api.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static nops_api *g_api;
static int g_port;
static nops_detect_params g_dp;

/* Start the server once (abort on failure: a fuzz target has no other way to say it). */
static void fuzz_api_start(const char *role)
{
    if (g_api)
        return;
    static nops_store *store;
    nops_log_configure(NOPS_LOG_OFF, NOPS_LOG_TEXT);
    nops_detect_params_default(&g_dp);
    store = nops_store_new(100, 10);
    nops_api_params p = {.rate = 1e9, .burst = 1e9, .body_limit = 1 << 20, .timeout_s = 5,
                         .threads = 1, .history = 100};
    snprintf(p.listen, sizeof p.listen, "127.0.0.1:0");
    char hex[65];
    nops_api_hash_key("fuzz-key", hex);
    snprintf(p.keys, sizeof p.keys, "f:%s:%s", role, hex);
    nops_api_deps d = {.store = store, .detect = &g_dp};
    char err[256];
    if (!(g_api = nops_api_new(&p, &d, err, sizeof err)) ||
        nops_api_start(g_api, err, sizeof err) != NOPS_OK)
        abort();
    g_port = nops_api_port(g_api);
}

static int fuzz_api_dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        abort();
    return fd;
}

static void fuzz_api_write_all(int fd, const void *p, size_t n)
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

#endif
