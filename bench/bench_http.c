/*
 * bench_http.c — `neuralops-bench http`: wrk (-t1 -c64, keep-alive) against the real API in this
 * process — POST /analyze with 60 inline values and GET /signals?limit=50 over a store of 10,000
 * signals — and, in the same run, against a bare libmicrohttpd handler with the same daemon
 * flags that answers a fixed small JSON (GET, and POST with the same body): the limit of this
 * machine. Every API run is checked for non-2xx answers, so the figures count successes only.
 */
#include "bench/bench.h"

#include "api/api.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wrk_result {
    double rps, p50_ms, p99_ms;
    long non2xx;
    bool ok;
} wrk_result;

/* "123.45us" / "1.20ms" / "2.00s" → milliseconds */
static double to_ms(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    return strncmp(end, "us", 2) == 0 ? v / 1000 : strncmp(end, "ms", 2) == 0 ? v
           : *end == 's'                                                    ? v * 1000
                                                                            : v;
}

static wrk_result run_wrk(const char *url, const char *script, double secs)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "wrk -t1 -c64 -d%.0fs --latency %s%s %s 2>&1", secs,
             script ? "-s " : "", script ? script : "", url);
    wrk_result r = {0};
    FILE *p = popen(cmd, "r");
    char line[512];
    while (p && fgets(line, sizeof line, p)) {
        char *at;
        if ((at = strstr(line, "Requests/sec:")))
            r.rps = strtod(at + 13, NULL), r.ok = true;
        else if ((at = strstr(line, "Non-2xx or 3xx responses:")))
            r.non2xx = strtol(at + 26, NULL, 10);
        else if (strncmp(line, "     50%", 8) == 0)
            r.p50_ms = to_ms(line + 8 + strspn(line + 8, " "));
        else if (strncmp(line, "     99%", 8) == 0)
            r.p99_ms = to_ms(line + 8 + strspn(line + 8, " "));
    }
    if (p)
        pclose(p);
    return r;
}

/* ---- the bare handler: the limit ---------------------------------------------------------- */

static enum MHD_Result bare(void *cls, struct MHD_Connection *c, const char *url,
                            const char *method, const char *version, const char *upload,
                            size_t *upload_size, void **con_cls)
{
    static int first;
    if (!*con_cls) { /* first call: headers only (answering now would close the connection) */
        *con_cls = &first;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* consume the body */
        return MHD_YES;
    }
    static const char body[] = "{\"ok\":true}";
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body,
                                                             MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- the suite -------------------------------------------------------------------------- */

static void fill_store(nops_store *st, size_t n)
{
    char line[768];
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(
            line, sizeof line,
            "{\"id\":\"%016zx\",\"series\":\"http_latency_p50_ms{host=\\\"web-%zu\\\",service="
            "\\\"checkout\\\"}\",\"metric\":\"http_latency_p50_ms\",\"labels\":{\"host\":\"web-%zu"
            "\",\"service\":\"checkout\"},\"ts\":\"2026-11-24T01:%02zu:%02zuZ\",\"value\":%zu.5,"
            "\"method\":\"zscore\",\"zscore\":5.2,\"ewma\":4.9,\"score\":0.81,\"hint\":"
            "\"http_latency_p50_ms{host=\\\"web-%zu\\\"} is 5.2σ above its rolling mean (120)\"}",
            i, i % 500, i % 500, (i / 60) % 60, i % 60, 100 + i % 300, i % 500);
        nops_store_add(st, NOPS_SINK_SIGNAL, line, (size_t)len);
    }
}

static void emit(const char *figure, const wrk_result *a, const wrk_result *peer, double target,
                 const char *peer_name)
{
    char extra[256];
    snprintf(extra, sizeof extra, "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"peer_p99_ms\":%.3f,"
             "\"non_2xx\":%ld,\"target_ratio\":%.2f,\"connections\":64", a->p50_ms, a->p99_ms,
             peer->p99_ms, a->non2xx, target);
    bench_emit("http", figure, a->rps, "req/s", peer_name, peer->rps, extra);
}

int bench_http(const bench_opts *o)
{
    const double secs = o->quick ? 3 : 10;
    nops_log_configure(NOPS_LOG_WARN, NOPS_LOG_TEXT);
    nops_store *store = nops_store_new(10000, 100);
    fill_store(store, 10000);
    nops_detect_params dp;
    nops_detect_params_default(&dp);
    nops_api_params p = {.rate = 1e9, .burst = 1e9, .body_limit = 1 << 20, .timeout_s = 10,
                         .threads = 1, .access_log = false, .history = 10000};
    snprintf(p.listen, sizeof p.listen, "127.0.0.1:0");
    char hex[65], err[256];
    nops_api_hash_key("bench-key", hex);
    snprintf(p.keys, sizeof p.keys, "b:viewer:%s", hex);
    nops_api_deps d = {.store = store, .detect = &dp};
    nops_api *api = nops_api_new(&p, &d, err, sizeof err);
    struct MHD_Daemon *mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, bare, NULL,
        MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
    if (!api || nops_api_start(api, err, sizeof err) != NOPS_OK || !mhd) {
        fprintf(stderr, "bench http: cannot start the servers: %s\n", err);
        return 1;
    }
    int bare_port = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
    char body[1024] = "{\"values\":[";
    for (int i = 0; i < 60; i++)
        snprintf(body + strlen(body), sizeof body - strlen(body), "%s%.1f", i ? "," : "",
                 100.0 + (i * 37 % 11) * 0.7 + (i == 59 ? 40 : 0));
    strcat(body, "]}");
    char script[] = "/tmp/nops-bench-wrk-XXXXXX", get_script[] = "/tmp/nops-bench-wrkg-XXXXXX";
    int fd = mkstemp(script), gfd = mkstemp(get_script);
    FILE *f = fdopen(fd, "w"), *g = fdopen(gfd, "w");
    fprintf(f, "wrk.method = \"POST\"\nwrk.body = '%s'\nwrk.headers[\"Content-Type\"] = "
               "\"application/json\"\nwrk.headers[\"X-API-Key\"] = \"bench-key\"\n", body);
    fprintf(g, "wrk.headers[\"X-API-Key\"] = \"bench-key\"\n");
    fclose(f);
    fclose(g);
    char url[128];
    fprintf(stderr, "bench http: wrk -t1 -c64 for %.0f s per run, 4 runs\n", secs);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/analyze", nops_api_port(api));
    wrk_result analyze = run_wrk(url, script, secs);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/signals?limit=50", nops_api_port(api));
    wrk_result signals = run_wrk(url, get_script, secs);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/bare", bare_port);
    wrk_result bare_post = run_wrk(url, script, secs);
    wrk_result bare_get = run_wrk(url, NULL, secs);
    unlink(script);
    unlink(get_script);
    if (!analyze.ok || !signals.ok || !bare_post.ok || !bare_get.ok)
        fprintf(stderr, "bench http: a wrk run failed (is wrk installed?)\n");
    emit("analyze_rps", &analyze, &bare_post, 0.5, "bare_mhd_post_rps");
    emit("signals_rps", &signals, &bare_get, 0.3, "bare_mhd_get_rps");
    char extra[96];
    snprintf(extra, sizeof extra, "\"target_ms\":5");
    bench_emit("http", "analyze_p99_ms", analyze.p99_ms, "ms", "bare_mhd_post_p99_ms",
               bare_post.p99_ms, extra);
    bench_emit("http", "signals_p99_ms", signals.p99_ms, "ms", "bare_mhd_get_p99_ms",
               bare_get.p99_ms, NULL);
    MHD_stop_daemon(mhd);
    nops_api_destroy(api);
    nops_store_destroy(store);
    return analyze.non2xx || signals.non2xx ? 1 : 0;
}
