/*
 * fuzz_api_query.c — libFuzzer target for query strings: each input is the query string of
 * GET /series (the route whose parameters are the richest: a series key, times in two forms, a
 * count) sent to a real API server on loopback, started once, without a pipeline. Bytes that
 * cannot stand in a request line are percent-encoded; '%', '&', '=' and '+' go as they are, so
 * the server's own decoding (bad escapes, empty names, names without '=') is exercised too.
 * Whatever the query, the server answers 400 (a parameter named) or 503 (no pipeline: the
 * query was valid), always with a JSON error body, and keeps answering.
 */
#include "tests/fuzz/fuzz_api_server.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_api_start("viewer");
    /* MHD keeps each argument in the connection's memory pool (32 KiB by default): some
     * hundreds of them exhaust it and MHD closes the connection unanswered, before any route
     * sees the request — its own bound, not the parser's. Keep below it. */
    if (size > 4096)
        size = 4096;
    size_t amps = 0;
    for (size_t i = 0; i < size; i++)
        if (data[i] == '&' && ++amps == 200) {
            size = i;
            break;
        }
    char *req = malloc(3 * size + 256);
    size_t at = (size_t)sprintf(req, "GET /series?");
    for (size_t i = 0; i < size; i++) {
        const unsigned char c = data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            (c && strchr("-._~%&=+:{}\"", c)))
            req[at++] = (char)c;
        else
            at += (size_t)sprintf(req + at, "%%%02X", c);
    }
    at += (size_t)sprintf(req + at, " HTTP/1.1\r\nHost: fuzz\r\nX-API-Key: fuzz-key\r\n"
                                    "Connection: close\r\n\r\n");
    int fd = fuzz_api_dial();
    fuzz_api_write_all(fd, req, at);
    free(req);
    char *resp = malloc(1 << 16);
    size_t got = 0;
    ssize_t r;
    while (got < (1 << 16) - 1 && (r = read(fd, resp + got, (1 << 16) - 1 - got)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    close(fd);
    int status = 0;
    if (sscanf(resp, "HTTP/1.1 %d", &status) != 1) {
        fprintf(stderr, "fuzz_api_query: no answer (%zu bytes read)\n", got);
        abort(); /* no answer at all */
    }
    const char *body = strstr(resp, "\r\n\r\n");
    json_t *o = body ? json_loads(body + 4, 0, NULL) : NULL;
    if ((status != 400 && status != 503) || !o ||
        !json_is_string(json_object_get(json_object_get(o, "error"), "message"))) {
        fprintf(stderr, "fuzz_api_query: unexpected answer:\n%.1000s\n", resp);
        abort();
    }
    json_decref(o);
    free(resp);
    return 0;
}
