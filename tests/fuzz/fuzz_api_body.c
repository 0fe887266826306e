/*
 * fuzz_api_body.c — libFuzzer target for HTTP request bodies: each input is POSTed as the body
 * of /analyze (the first byte picks /analyze or /ingest and the content type) to a real API
 * server on loopback, started once. Whatever the body, the server answers with a status the
 * API documents and a JSON body, errors in the {"error":{"code","message"}} shape, and keeps
 * answering.
 */
#include "tests/fuzz/fuzz_api_server.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_api_start("org-admin");
    const bool ingest = size && (data[0] & 1);
    const char *type = size && (data[0] & 2) ? "text/plain" : "application/json";
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: fuzz\r\nX-API-Key: fuzz-key\r\n"
                      "Content-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      ingest ? "/ingest" : "/analyze", type, size);
    int fd = fuzz_api_dial();
    fuzz_api_write_all(fd, head, (size_t)hl);
    fuzz_api_write_all(fd, data, size);
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
