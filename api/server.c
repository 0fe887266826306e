/*
 * server.c — the HTTP plumbing of api.h on libmicrohttpd: one internal epoll thread (or a pool),
 * per-request contexts with bounded body buffers, routing, authentication and roles, the token
 * bucket, uniform JSON errors, per-route counters and latency histograms, and one access-log line
 * per request.
 *
 * Keep-alive: MHD answers with "Connection: close" when a response is queued on the first call
 * of the access handler, so the first call only sets the request up and every answer is queued
 * on a later call (observed libmicrohttpd behaviour, not in its manual). A body over the limit
 * is read and discarded and answered 413 at its end — so a client that sends it without
 * waiting for "100 Continue" still reads the answer instead of a reset — unless
 * Content-Length announces more than DISCARD_MAX times the limit: that one is refused at once
 * (413, connection closed).
 */
#include "api/api_int.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

const char *const nops__route_paths[ROUTE_COUNT] = {
#define NOPS__ROUTE_PATH(name, path) path,
    NOPS_ROUTES(NOPS__ROUTE_PATH)
#undef NOPS__ROUTE_PATH
};

const int nops__http_codes[NOPS_HTTP_CODES] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 409,
                                               413, 415, 429, 500, 501, 502, 503, 504, 0};
const double nops__http_buckets[NOPS_HTTP_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001,
                                                      0.0025, 0.005,   0.01,   0.025,
                                                      0.05,   0.1,     0.5,    2.5};

/* ---- config ---------------------------------------------------------------------------- */

#define OFF(f) offsetof(nops_api_params, f)
static const nops_cfg_entry api_entries[] = {
    {"listen", NOPS_CFG_STRING, OFF(listen), 0, sizeof(((nops_api_params *)0)->listen),
     "127.0.0.1:8080", NULL, "listen", 0,
     "HTTP API address host:port (port 0 = any free port); empty = no HTTP server."},
    {"keys", NOPS_CFG_STRING, OFF(keys), 0, sizeof(((nops_api_params *)0)->keys), "", NULL,
     NULL, NOPS_CFG_SECRET,
     "API keys as id:role:sha256hex, comma-separated; role viewer|operator|org-admin. "
     "`neuralops config hash-key` reads a key on stdin and prints its hash. Clients send the key "
     "in X-API-Key. Read again on SIGHUP."},
    {"jwt_secret", NOPS_CFG_STRING, OFF(jwt_secret), 0,
     sizeof(((nops_api_params *)0)->jwt_secret), "", NULL, NULL, NOPS_CFG_SECRET,
     "HS256 secret for Authorization: Bearer tokens (claims exp, role; nbf, iss checked when "
     "present/configured); empty = bearer tokens refused."},
    {"jwt_issuer", NOPS_CFG_STRING, OFF(jwt_issuer), 0,
     sizeof(((nops_api_params *)0)->jwt_issuer), "", NULL, NULL, 0,
     "Required `iss` claim of bearer tokens; empty = any issuer."},
    {"rate", NOPS_CFG_DOUBLE, OFF(rate), 0.001, 1e9, "100", NULL, NULL, 0,
     "Requests per second allowed per API key or token subject (token bucket refill); over it "
     "the answer is 429 with Retry-After."},
    {"burst", NOPS_CFG_DOUBLE, OFF(burst), 1, 1e9, "200", NULL, NULL, 0,
     "Token bucket size: requests a caller may make at once."},
    {"body_limit", NOPS_CFG_INT, OFF(body_limit), 64, 1 << 30, "1048576", NULL, NULL, 0,
     "Largest request body in bytes, also once decompressed (Content-Encoding gzip, remote "
     "write's snappy); larger bodies get 413."},
    {"timeout_s", NOPS_CFG_INT, OFF(timeout_s), 1, 3600, "10", NULL, NULL, 0,
     "A connection that sends nothing for this long is closed (a client that trickles its "
     "request is bounded by request_timeout_s)."},
    {"request_timeout_s", NOPS_CFG_INT, OFF(request_timeout_s), 1, 3600, "30", NULL, NULL, 0,
     "A whole request (headers and body) must arrive within this many seconds of the "
     "connection opening, or of the previous answer on a kept-alive connection, and an answer "
     "must be taken by the client within as long; slower connections are closed. The time "
     "the server takes to answer (e.g. /ingest waiting for Kafka) is not counted."},
    {"max_connections", NOPS_CFG_INT, OFF(max_connections), 16, 1000000, "1024", NULL, NULL, 0,
     "Connections open at once, in all; more wait in the listen backlog. Keep it below the "
     "process's open-file limit (ulimit -n)."},
    {"max_connections_per_ip", NOPS_CFG_INT, OFF(max_per_ip), 0, 1000000, "64", NULL, NULL, 0,
     "Connections open at once from one client address (more are closed at once); 0 = no "
     "limit. Behind a reverse proxy every client shares its address: raise it there."},
    {"auth_failures_per_min", NOPS_CFG_DOUBLE, OFF(auth_failures_per_min), 0, 1e6, "30", NULL,
     NULL, 0,
     "Failed authentications (unknown key, bad token) allowed per client address and minute, "
     "a minute's worth at once; past it every request from that address that needs "
     "credentials gets 429 with Retry-After, without its credentials being checked. 0 = no "
     "limit."},
    {"ingest_timeout_s", NOPS_CFG_INT, OFF(ingest_timeout_s), 1, 300, "10", NULL, NULL, 0,
     "POST /ingest answers 202 only when Kafka acknowledged every point; it waits this long "
     "(without holding up other requests), then answers 504 with the counts. Also the "
     "producer's message.timeout.ms."},
    {"threads", NOPS_CFG_INT, OFF(threads), 0, 64, "0", NULL, NULL, 0,
     "HTTP server threads, each running its own epoll loop and its own POST /analyze "
     "detector; 0 = one per core (at most 64)."},
    {"prometheus_url", NOPS_CFG_STRING, OFF(prometheus_url), 0,
     sizeof(((nops_api_params *)0)->prometheus_url), "", NULL, NULL, 0,
     "Base URL of a Prometheus server (http://host:9090) for POST /analyze with prom_query; "
     "empty = that form answers 501."},
    {"access_log", NOPS_CFG_BOOL, OFF(access_log), 0, 0, "true", NULL, NULL, 0,
     "Log one line per request (method, path, status, duration, caller id; never a key)."},
    {"history", NOPS_CFG_INT, OFF(history), 1, 100000000, "100000", NULL, NULL, 0,
     "Signals kept in memory for GET /signals (incidents: a tenth of it)."},
};
#undef OFF

const nops_cfg_section nops_api_cfg_section = {
    "api",
    "The HTTP API (docs: README, GET /openapi.json): address, authentication by API key or "
    "HS256 bearer token, limits.",
    api_entries, sizeof api_entries / sizeof api_entries[0], NULL};

void nops_api_params_default(nops_api_params *p)
{
    memset(p, 0, sizeof *p);
    nops_cfg *cfg = nops_cfg_new();
    if (!cfg || nops_cfg_add(cfg, &nops_api_cfg_section, p, NULL, 0) != NOPS_OK)
        NOPS_ERROR("http", "no memory for the [api] defaults"); /* p stays zeroed */
    nops_cfg_destroy(cfg);
}

/* ---- responses ------------------------------------------------------------------------- */

bool nops__api_put(response *r, const char *s, size_t n)
{
    if (nops_buf_reserve(&r->body, n + 1) != NOPS_OK)
        return false;
    memcpy(r->body.b + r->body.len, s, n);
    r->body.len += n;
    r->body.b[r->body.len] = '\0';
    return true;
}

static const char *status_code_name(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 413: return "payload_too_large";
    case 415: return "unsupported_media_type";
    case 429: return "rate_limited";
    case 501: return "not_implemented";
    case 502: return "bad_gateway";
    case 503: return "unavailable";
    case 504: return "timeout";
    default: return "internal";
    }
}

void nops__api_error(response *r, int status, const char *fmt, ...)
{
    char raw[512], msg[3 * sizeof raw];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    /* messages quote what the client sent (a query parameter's name, a cut key): bytes that are
     * not UTF-8 become U+FFFD, or the JSON could not hold them and the answer was a 500 */
    nops_utf8_sanitize(raw, strlen(raw), msg, sizeof msg, NULL);
    r->body.len = 0;
    json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", status_code_name(status),
                          "message", msg);
    if (!o || !nops__api_json(r, status, o))
        r->status = 500;
}

bool nops__api_json(response *r, int status, json_t *v)
{
    r->status = status;
    r->body.len = 0;
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT);
    bool ok = n > 0 && nops_buf_reserve(&r->body, n + 1) == NOPS_OK;
    if (ok) {
        r->body.len = json_dumpb(v, r->body.b, n, JSON_COMPACT);
        r->body.b[r->body.len] = '\0';
    }
    json_decref(v);
    if (!ok)
        r->status = 500;
    return ok;
}

static enum MHD_Result send_response(struct MHD_Connection *c, request *rq, response *res)
{
    if (res->status == 500 && res->body.len == 0)
        nops__api_put(res, "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}",
                      55);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(
        res->body.len, res->body.b ? res->body.b : (void *)"", res->body.b ? nops_free : NULL);
    if (!r) {
        nops_free(res->body.b);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            res->content_type ? res->content_type : "application/json");
    if (res->retry_after[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, res->retry_after);
    if (res->allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, res->allow);
    if (res->content_type && strncmp(res->content_type, "text/html", 9) == 0) {
        /* the dashboard: its own inline script and style, talking to this server only */
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; "
                                "style-src 'unsafe-inline'; connect-src 'self'; "
                                "frame-ancestors 'none'");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)res->status, r);
    MHD_destroy_response(r);
    rq->answered = true;
    rq->status = res->status;
    return ok;
}

/* ---- routing ---------------------------------------------------------------------------- */

typedef struct route {
    route_id id;
    const char *method;  /* the one allowed */
    nops_role role;      /* NOPS_ROLE_NONE = public */
} route;

static const route routes[] = {
    {ROUTE_ANALYZE, "POST", NOPS_ROLE_VIEWER},   {ROUTE_INGEST, "POST", NOPS_ROLE_OPERATOR},
    {ROUTE_REMOTE_WRITE, "POST", NOPS_ROLE_OPERATOR},
    {ROUTE_INFLUX_WRITE, "POST", NOPS_ROLE_OPERATOR},
    {ROUTE_RECOMMEND, "POST", NOPS_ROLE_VIEWER},  {ROUTE_ORCHESTRATE, "POST", NOPS_ROLE_OPERATOR},
    {ROUTE_ORCHESTRATION, "GET", NOPS_ROLE_VIEWER}, {ROUTE_ORCHESTRATIONS, "GET", NOPS_ROLE_VIEWER},
    {ROUTE_ORCH_DRY_RUN, "POST", NOPS_ROLE_OPERATOR},
    {ROUTE_ORCH_APPROVE, "POST", NOPS_ROLE_ADMIN},
    {ROUTE_ORCH_EXECUTE, "POST", NOPS_ROLE_OPERATOR}, {ROUTE_PLAYBOOKS, "GET", NOPS_ROLE_VIEWER},
    {ROUTE_AUDIT, "GET", NOPS_ROLE_OPERATOR},
    {ROUTE_AUTOMATION, "GET", NOPS_ROLE_VIEWER}, {ROUTE_AUTOMATION_PAUSE, "POST", NOPS_ROLE_ADMIN},
    {ROUTE_AUTOMATION_RESUME, "POST", NOPS_ROLE_ADMIN},
    {ROUTE_SIGNALS, "GET", NOPS_ROLE_VIEWER},    {ROUTE_INCIDENTS, "GET", NOPS_ROLE_VIEWER},
    {ROUTE_INCIDENT, "GET", NOPS_ROLE_VIEWER},   {ROUTE_SERIES, "GET", NOPS_ROLE_VIEWER},
    {ROUTE_METRICS, "GET", NOPS_ROLE_NONE},
    {ROUTE_HEALTHZ, "GET", NOPS_ROLE_NONE},      {ROUTE_READYZ, "GET", NOPS_ROLE_NONE},
    {ROUTE_OPENAPI, "GET", NOPS_ROLE_NONE},      {ROUTE_DASHBOARD, "GET", NOPS_ROLE_NONE},
};

static const route *route_of(route_id id)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (routes[i].id == id)
            return &routes[i];
    return NULL;
}

/* The route of a URL; *id points at the {id} part of templated paths (not terminated). */
static const route *find_route_id(const char *url, const char **id, size_t *id_len)
{
    *id = NULL;
    *id_len = 0;
    if (strncmp(url, "/incidents/", 11) == 0 && url[11] && !strchr(url + 11, '/')) {
        *id = url + 11;
        *id_len = strlen(*id);
        return route_of(ROUTE_INCIDENT);
    }
    if (strncmp(url, "/orchestrations/", 16) == 0 && url[16] && url[16] != '/') {
        const char *slash = strchr(url + 16, '/');
        *id = url + 16;
        *id_len = slash ? (size_t)(slash - *id) : strlen(*id);
        if (!slash)
            return route_of(ROUTE_ORCHESTRATION);
        static const struct { const char *s; route_id r; } steps[] = {
            {"/dry-run", ROUTE_ORCH_DRY_RUN}, {"/approve", ROUTE_ORCH_APPROVE},
            {"/execute", ROUTE_ORCH_EXECUTE}};
        for (size_t i = 0; i < 3; i++)
            if (strcmp(slash, steps[i].s) == 0)
                return route_of(steps[i].r);
        return NULL;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strchr(nops__route_paths[routes[i].id], '{') &&
            strcmp(url, nops__route_paths[routes[i].id]) == 0)
            return &routes[i];
    return NULL;
}

static const route *find_route(const char *url)
{
    const char *id;
    size_t n;
    return find_route_id(url, &id, &n);
}

/* The client's address as the key of its failed-authentication bucket: IPv4 as is (also when
 * mapped into IPv6), IPv6 by its /64 (one host commonly holds a whole /64). */
static void client_key(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    char a[INET6_ADDRSTRLEN] = "?";
    if (sa && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof a);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            inet_ntop(AF_INET, in6->s6_addr + 12, a, sizeof a);
        } else {
            struct in6_addr net = {0};
            memcpy(net.s6_addr, in6->s6_addr, 8);
            inet_ntop(AF_INET6, &net, a, sizeof a);
            snprintf(out, cap, "%s/64", a);
            return;
        }
    }
    snprintf(out, cap, "%s", a);
}

/* 401/403/429 decisions; true when the request may go on. */
static bool admit(nops_api *api, struct MHD_Connection *c, const route *rt, request *rq,
                  response *res)
{
    if (rt->role == NOPS_ROLE_NONE)
        return true;
    char addr[80];
    client_key(c, addr, sizeof addr);
    int64_t retry = 1;
    nops_auth *auth = api->auth; /* one set of keys for the whole decision */
    if (nops__auth_blocked(auth, addr, (int64_t)nops_now_ns(), &retry)) {
        atomic_fetch_add(&api->m.auth_blocked, 1);
        nops__api_error(res, 429, "too many failed authentications from this address (%.4g "
                        "per minute allowed); try again later", api->p.auth_failures_per_min);
        snprintf(res->retry_after, sizeof res->retry_after, "%lld", (long long)retry);
        return false;
    }
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION);
    if (!key && authz && strncasecmp(authz, "Token ", 6) == 0) {
        key = authz + 6; /* InfluxDB's "Authorization: Token <t>" (Telegraf, Influx clients,
                            Prometheus' remote_write authorization) is the API key <t> */
        while (*key == ' ')
            key++;
        authz = NULL;
    }
    char why[160] = "";
    nops_auth_result ar = nops__auth_check(auth, key, authz, nops_wall_ns() / 1000000000,
                                           &rq->who, why, sizeof why);
    if (ar != NOPS_AUTH_OK) {
        atomic_fetch_add(&api->m.auth_failures, 1);
        if (ar == NOPS_AUTH_INVALID && nops__auth_failed(auth, addr, (int64_t)nops_now_ns()))
            NOPS_WARN("http", "client %s used up its failed authentications (%.4g per minute): "
                      "429 until its allowance refills", addr, api->p.auth_failures_per_min);
        nops__api_error(res, 401, "%s",
                        ar == NOPS_AUTH_MISSING
                            ? "authentication required: send X-API-Key, Authorization: Bearer "
                              "or Authorization: Token"
                            : why);
        return false;
    }
    if (!nops__auth_take(auth, rq->who.id, nops_now_ns(), &retry)) {
        atomic_fetch_add(&api->m.rate_limited, 1);
        nops__api_error(res, 429, "rate limit exceeded: %.4g requests/s, burst %.4g",
                        api->p.rate, api->p.burst);
        snprintf(res->retry_after, sizeof res->retry_after, "%lld", (long long)retry);
        return false;
    }
    if (rq->who.role < rt->role) {
        nops__api_error(res, 403, "role %s may not call %s %s (needs %s)",
                        nops__role_name(rq->who.role), rt->method,
                        nops__route_paths[rt->id], nops__role_name(rt->role));
        return false;
    }
    return true;
}

/* Fill `res` for the request; false when the handler suspended the connection instead (the
 * answer comes when MHD calls again). */
static bool dispatch(nops_api *api, struct MHD_Connection *c, const char *url, request *rq,
                     response *res)
{
    const char *idp;
    size_t id_len;
    const route *rt = find_route_id(url, &idp, &id_len);
    char id[80] = "";
    if (idp)
        snprintf(id, sizeof id, "%.*s", (int)(id_len < sizeof id ? id_len : sizeof id - 1), idp);
    if (!rt) {
        nops__api_error(res, 404, "no such endpoint: %.200s (see /openapi.json)", url);
        return true;
    }
    rq->route = rt->id;
    if (strcmp(rq->method, rt->method) != 0 &&
        !(strcmp(rq->method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0)) {
        nops__api_error(res, 405, "%s is not allowed on %s", rq->method,
                        nops__route_paths[rt->id]);
        res->allow = rt->method;
        return true;
    }
    if (!admit(api, c, rt, rq, res))
        return true;
    if (rq->too_large) {
        nops__api_error(res, 413, "request body over the limit of %lld bytes",
                        (long long)api->p.body_limit);
        return true;
    }
    switch (rt->id) {
    case ROUTE_ANALYZE: nops__api_analyze(api, c, rq, res); break;
    case ROUTE_INGEST: return !nops__api_ingest(api, c, rq, res);
    case ROUTE_REMOTE_WRITE: return !nops__api_remote_write(api, c, rq, res);
    case ROUTE_INFLUX_WRITE: return !nops__api_influx_write(api, c, rq, res);
    case ROUTE_RECOMMEND: nops__api_recommend(api, c, rq, res); break;
    case ROUTE_SIGNALS: nops__api_list(api, c, NOPS_SINK_SIGNAL, res); break;
    case ROUTE_INCIDENTS: nops__api_list(api, c, NOPS_SINK_INCIDENT, res); break;
    case ROUTE_INCIDENT: nops__api_incident(api, id, res); break;
    case ROUTE_SERIES: nops__api_series(api, c, res); break;
    case ROUTE_ORCHESTRATE:
    case ROUTE_ORCHESTRATION:
    case ROUTE_ORCH_DRY_RUN:
    case ROUTE_ORCH_APPROVE:
    case ROUTE_ORCH_EXECUTE: nops__api_orchestrate(api, rt->id, id, rq, res); break;
    case ROUTE_PLAYBOOKS: nops__api_playbooks(api, res); break;
    case ROUTE_AUTOMATION:
    case ROUTE_AUTOMATION_PAUSE:
    case ROUTE_AUTOMATION_RESUME: nops__api_automation(api, rt->id, rq, res); break;
    case ROUTE_AUDIT: nops__api_audit(api, c, res); break;
    case ROUTE_ORCHESTRATIONS: nops__api_orchestrations(api, c, res); break;
    case ROUTE_METRICS: nops__api_metrics(api, res); break;
    case ROUTE_HEALTHZ: nops__api_healthz(api, res); break;
    case ROUTE_READYZ: nops__api_readyz(api, res); break;
    case ROUTE_OPENAPI: nops__api_openapi(res); break;
    case ROUTE_DASHBOARD: nops__api_dashboard(res); break;
    default: nops__api_error(res, 404, "no such endpoint"); break;
    }
    return true;
}

/* ---- the MHD callbacks -------------------------------------------------------------------- */

static request *request_new(nops_api *api, const char *method, const char *url)
{
    request *rq = nops_calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->api = api;
    rq->route = ROUTE_OTHER;
    rq->start_ns = nops_now_ns();
    snprintf(rq->method, sizeof rq->method, "%s", method);
    snprintf(rq->path, sizeof rq->path, "%s", url);
    for (char *p = rq->path; *p; p++) /* the access log is one line of printable text */
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    return rq;
}

/* Bodies up to this many times body_limit are read to their end before the 413. */
#define DISCARD_MAX 16

/* Take body bytes, keeping at most body_limit; true when the caller should answer now. */
static bool take_body(nops_api *api, request *rq, const char *data, size_t n)
{
    if (rq->too_large)
        return false;
    if (rq->body.len + n > (size_t)api->p.body_limit) {
        rq->too_large = true;
        nops_free(rq->body.b);
        rq->body = (nops_buf){0};
        return false;
    }
    if (nops_buf_reserve(&rq->body, n + 1) != NOPS_OK) {
        rq->too_large = true; /* cannot hold it: refuse it like an oversized body */
        return false;
    }
    memcpy(rq->body.b + rq->body.len, data, n);
    rq->body.len += n;
    rq->body.b[rq->body.len] = '\0';
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    nops_api *api = cls;
    request *rq = *con_cls;
    if (!rq) { /* first call: headers only; answering now would close the connection */
        if (!(rq = request_new(api, method, url)))
            return MHD_NO;
        *con_cls = rq;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        const unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
        if (announced > (unsigned long long)api->p.body_limit)
            rq->too_large = true; /* read and dropped, answered 413 at its end */
        if (announced > (unsigned long long)api->p.body_limit * DISCARD_MAX) {
            /* too much to read for nothing: refuse before reading it (MHD then closes) */
            response res = {0};
            const route *rt = find_route(url);
            rq->route = rt ? rt->id : ROUTE_OTHER;
            nops__api_error(&res, 413, "request body over the limit of %lld bytes",
                            (long long)api->p.body_limit);
            return send_response(c, rq, &res);
        }
        return MHD_YES;
    }
    if (rq->answered)
        return MHD_YES;
    if (*upload_data_size) {
        take_body(api, rq, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    nops__guard_received(c); /* the whole request is in: answering it is not bounded here */
    response res = {0};
    if (rq->job) /* resumed: the /ingest it waited for is done */
        nops__api_ingest_answer(api, rq, &res);
    else if (!dispatch(api, c, url, rq, &res))
        return MHD_YES; /* suspended */
    nops__guard_next(api, c); /* the answer, too, must be taken within request_timeout_s */
    return send_response(c, rq, &res);
}

static int code_index(int status)
{
    for (int i = 0; i < NOPS_HTTP_CODES - 1; i++)
        if (nops__http_codes[i] == status)
            return i;
    return NOPS_HTTP_CODES - 1;
}

/*
 * One access-log entry, its facts as fields (method, path, status, duration_ms, caller, and
 * closed when the client left before the answer was sent): JSON logs get them as members, not
 * inside "msg". Prometheus scrapes and health probes that succeed come every few seconds and
 * say nothing, so they are logged at debug; every other request, and any of those that fails,
 * at info.
 */
static void access_log(const request *rq, int status, double secs, bool completed)
{
    const bool routine = (rq->route == ROUTE_METRICS || rq->route == ROUTE_HEALTHZ ||
                          rq->route == ROUTE_READYZ) && status > 0 && status < 400;
    nops_log_field f[6] = {
        {.key = "method", .type = NOPS_LOGF_STR, .str = rq->method},
        {.key = "path", .type = NOPS_LOGF_STR, .str = rq->path},
        {.key = "status", .type = NOPS_LOGF_INT, .i = status},
        {.key = "duration_ms", .type = NOPS_LOGF_NUM, .num = secs * 1e3},
        {.key = "caller", .type = NOPS_LOGF_STR, .str = rq->who.id[0] ? rq->who.id : "-"},
        {.key = "closed", .type = NOPS_LOGF_BOOL, .i = 1},
    };
    nops_log_fields(routine ? NOPS_LOG_DEBUG : NOPS_LOG_INFO, "http", f, completed ? 5 : 6,
                    "request");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    nops_api *api = cls;
    request *rq = *con_cls;
    if (!rq)
        return;
    *con_cls = NULL;
    const double secs = (double)(nops_now_ns() - rq->start_ns) / 1e9;
    const int status = rq->answered ? rq->status : 0;
    atomic_fetch_add(&api->m.requests[rq->route][code_index(status)], 1);
    int b = 0;
    while (b < NOPS_HTTP_BUCKETS && secs > nops__http_buckets[b])
        b++;
    atomic_fetch_add(&api->m.latency[rq->route][b], 1);
    atomic_fetch_add(&api->m.latency_sum_us[rq->route], (uint_fast64_t)(secs * 1e6));
    if (api->p.access_log)
        access_log(rq, status, secs, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    nops__guard_next(api, c); /* a kept-alive connection: the next request's clock starts */
    nops__api_ingest_release(rq->job);
    nops_free(rq->body.b);
    nops_free(rq);
}

/* ---- life cycle -------------------------------------------------------------------------- */

static nops_err parse_listen(const char *s, struct sockaddr_storage *ss, char *errstr,
                             size_t errstr_size)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == s || port < 0 || port > 65535 || *end ||
        (size_t)(colon - s) >= sizeof host) {
        nops_errf(errstr, errstr_size, "api.listen: \"%s\" is not host:port", s);
        return NOPS_CONFIG;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        memmove(host, host + 1, hl - 1);
    }
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
    } else {
        nops_errf(errstr, errstr_size, "api.listen: \"%s\" is not an IP address", host);
        return NOPS_CONFIG;
    }
    return NOPS_OK;
}

nops_api *nops_api_new(const nops_api_params *params, const nops_api_deps *deps, char *errstr,
                       size_t errstr_size)
{
    if (!deps || !deps->store || !deps->detect) {
        nops_errf(errstr, errstr_size, "the API needs a store and detector settings");
        return NULL;
    }
    nops_api *api = nops_calloc(1, sizeof *api);
    if (!api) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&api->jobs_mu, NULL);
    pthread_mutex_init(&api->conns_mu, NULL);
    pthread_mutex_init(&api->reaper_mu, NULL);
    nops_err an = nops__analyze_init(api);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&api->reaper_cv, &ca);
    pthread_condattr_destroy(&ca);
    api->p = *params;
    /* zero means the table's default for the bounds that have no "off" (their minimum is > 0) */
    nops_api_params def;
    nops_api_params_default(&def);
    if (api->p.request_timeout_s <= 0)
        api->p.request_timeout_s = def.request_timeout_s;
    if (api->p.max_connections <= 0)
        api->p.max_connections = def.max_connections;
    if (api->p.ingest_timeout_s <= 0)
        api->p.ingest_timeout_s = def.ingest_timeout_s;
    if (api->p.request_timeout_s <= 0 || api->p.max_connections <= 0 ||
        api->p.ingest_timeout_s <= 0 || an != NOPS_OK) {
        nops_errf(errstr, errstr_size, "out of memory");
        nops_api_destroy(api);
        return NULL;
    }
    api->d = *deps;
    atomic_init(&api->registry, deps->registry);
    snprintf(api->orch_off, sizeof api->orch_off, "%s",
             deps->orchestration_off ? deps->orchestration_off : "");
    api->d.orchestration_off = NULL; /* the copy above is the one in use */
    if (parse_listen(params->listen, &api->addr, errstr, errstr_size) != NOPS_OK ||
        !(api->auth = nops__auth_new(params->keys, params->jwt_secret, params->jwt_issuer,
                                     params->rate, params->burst, params->auth_failures_per_min,
                                     errstr, errstr_size)) ||
        nops__api_producer(api, errstr, errstr_size) != NOPS_OK) {
        nops_api_destroy(api);
        return NULL;
    }
    if (nops__auth_methods(api->auth) == 0)
        NOPS_WARN("http", "no API keys and no JWT secret are configured: every endpoint but "
                          "/healthz, /readyz, /metrics and /openapi.json answers 401 (see "
                          "api.keys)");
    return api;
}

nops_err nops_api_set_auth(nops_api *api, const char *keys, const char *jwt_secret,
                           const char *jwt_issuer, char *errstr, size_t errstr_size)
{
    nops_auth **old = nops_realloc(api->auth_old, (api->n_auth_old + 1) * sizeof *old);
    if (!old) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    api->auth_old = old;
    nops_auth *fresh = nops__auth_new(keys, jwt_secret, jwt_issuer, api->p.rate, api->p.burst,
                                      api->p.auth_failures_per_min, errstr, errstr_size);
    if (!fresh)
        return NOPS_CONFIG;
    old[api->n_auth_old++] = atomic_exchange(&api->auth, fresh);
    return NOPS_OK;
}

void nops_api_set_registry(nops_api *api, const nops_registry *reg)
{
    atomic_store(&api->registry, reg);
}

/* Warn when max_connections cannot be reached within the process's open-file limit. */
static void check_fd_limit(const nops_api *api)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)api->p.max_connections + 128 > rl.rlim_cur)
        NOPS_WARN("http", "api.max_connections is %lld but the open-file limit is %llu: new "
                          "connections may fail before the cap is reached (raise ulimit -n, or "
                          "lower api.max_connections)",
                  (long long)api->p.max_connections, (unsigned long long)rl.rlim_cur);
}

nops_err nops_api_start(nops_api *api, char *errstr, size_t errstr_size)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (api->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    check_fd_limit(api);
    int64_t threads = api->p.threads;
    if (threads <= 0) { /* one per core */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores < 1 ? 1 : cores > 64 ? 64 : cores;
    }
    if (nops__guard_start(api, errstr, errstr_size) != NOPS_OK)
        return NOPS_INTERNAL;
    api->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, api, MHD_OPTION_SOCK_ADDR, &api->addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)api->p.timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, api, MHD_OPTION_NOTIFY_CONNECTION, nops__guard_notify, api,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)api->p.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)api->p.max_per_ip,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 1 ? threads : 0),
        MHD_OPTION_END);
    if (!api->mhd) {
        nops__guard_stop(api);
        nops_errf(errstr, errstr_size, "cannot listen on %s (in use, or not an address here)",
                  api->p.listen);
        return NOPS_IO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_BIND_PORT);
    api->port = di ? di->port : 0;
    api->started_ns = nops_now_ns();
    NOPS_INFO("http", "API listening on http://%s (port %d)", api->p.listen, api->port);
    return NOPS_OK;
}

int nops_api_port(const nops_api *api)
{
    return api->port;
}

void nops_api_stop(nops_api *api)
{
    if (api && api->mhd) {
        nops__api_ingest_stop(api); /* MHD must not stop with a connection suspended */
        MHD_stop_daemon(api->mhd);
        api->mhd = NULL;
    }
    if (api)
        nops__guard_stop(api);
}

void nops_api_destroy(nops_api *api)
{
    if (!api)
        return;
    nops_api_stop(api);
    nops__auth_destroy(api->auth);
    for (size_t i = 0; i < api->n_auth_old; i++)
        nops__auth_destroy(api->auth_old[i]);
    nops_free(api->auth_old);
    nops__api_producer_destroy(api);
    nops__analyze_fini(api); /* after nops_api_stop: no thread uses a context any more */
    pthread_mutex_destroy(&api->jobs_mu);
    pthread_mutex_destroy(&api->conns_mu);
    pthread_mutex_destroy(&api->reaper_mu);
    pthread_cond_destroy(&api->reaper_cv);
    nops_free(api);
}

nops_err nops_api_hash_key(const char *key, char hex[65])
{
    if (!key || !*key)
        return NOPS_INVAL;
    return nops_sha256_hex(key, strlen(key), hex) ? NOPS_OK : NOPS_INTERNAL;
}
