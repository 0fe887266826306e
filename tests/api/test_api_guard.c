/*
 * test_api_guard.c — what a client without credentials can do to the API (issue 12, items 5, 15
 * and 18), over real loopback connections from several source addresses (all of 127/8 is
 * local on Linux, so 127.0.0.2.. are distinct clients to the server):
 *   - 2,000 slow connections trickling header lines from 25 addresses: /healthz asked from
 *     127.0.0.1 is answered, and every slow connection is cut (request_timeout_s, the caps);
 *   - the per-address connection cap: past it, connections are closed at once, the ones held
 *     are served;
 *   - failed authentications are limited per address (429 with Retry-After, credentials not
 *     even checked), another address unaffected, public routes unaffected;
 *   - a JWT `sub` with a newline yields one access-log line.
 * Deadlines here are generous bounds on waiting for a condition, never timing assertions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api.h"
#include "tests/api/http.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SECRET "guard-secret-0123456789"

static nops_store *g_store;
static nops_detect_params g_dp;

static const char *H_OK[] = {"X-API-Key: viewer-key-1", NULL};
static const char *H_BAD[] = {"X-API-Key: wrong-key", NULL};

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_store = nops_store_new(100, 10);
    nops_detect_params_default(&g_dp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nops_store_destroy(g_store);
    curl_global_cleanup();
    return 0;
}

static void base_params(nops_api_params *p)
{
    nops_api_params_default(p);
    snprintf(p->listen, sizeof p->listen, "127.0.0.1:0");
    char hex[65];
    assert_int_equal(nops_api_hash_key("viewer-key-1", hex), NOPS_OK);
    snprintf(p->keys, sizeof p->keys, "v1:viewer:%s", hex);
    snprintf(p->jwt_secret, sizeof p->jwt_secret, SECRET);
    p->rate = 1e6;
    p->burst = 1e6;
    p->body_limit = 65536;
    p->timeout_s = 60; /* never what cuts a connection here */
    p->threads = 1;
    p->access_log = true;
    p->history = 100;
}

static nops_api *start_api(const nops_api_params *p)
{
    nops_api_deps d = {.store = g_store, .detect = &g_dp};
    char err[512];
    nops_api *api = nops_api_new(p, &d, err, sizeof err);
    if (!api)
        fail_msg("nops_api_new: %s", err);
    assert_int_equal(nops_api_start(api, err, sizeof err), NOPS_OK);
    return api;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- slow clients ------------------------------------------------------------------------ */

typedef enum { S_CONNECTING, S_OPEN, S_GONE } slow_state;

typedef struct slow {
    int fd;
    slow_state st;
    bool sent;      /* the request line went out */
    bool answered;  /* the server sent something (it must not: the request never ends) */
} slow;

/* A non-blocking connection to 127.0.0.1:port from address `from`. */
static int dial_from(const char *from, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("bind %s: %s", from, strerror(errno));
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int r = connect(fd, (struct sockaddr *)&a, sizeof a);
    assert_true(r == 0 || errno == EINPROGRESS);
    return fd;
}

/* Write all of s, or mark the connection gone (the server closed it). */
static void slow_send(slow *s, const char *txt)
{
    ssize_t n = send(s->fd, txt, strlen(txt), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        s->st = S_GONE;
}

/* One turn over the connections: connect, send the request line once, read what comes. */
static void slow_turn(slow *s, size_t n, struct pollfd *pf, bool trickle)
{
    for (size_t i = 0; i < n; i++) {
        pf[i].fd = s[i].st == S_GONE ? -1 : s[i].fd;
        pf[i].events = s[i].st == S_CONNECTING ? POLLOUT : POLLIN;
        pf[i].revents = 0;
    }
    poll(pf, n, 50);
    for (size_t i = 0; i < n; i++) {
        if (s[i].st == S_GONE)
            continue;
        if (s[i].st == S_CONNECTING && (pf[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
            int e = 0;
            socklen_t el = sizeof e;
            getsockopt(s[i].fd, SOL_SOCKET, SO_ERROR, &e, &el);
            s[i].st = e ? S_GONE : S_OPEN;
        }
        if (s[i].st == S_OPEN && !s[i].sent) {
            slow_send(&s[i], "GET /healthz HTTP/1.1\r\nHost: slow\r\n");
            s[i].sent = true;
        } else if (s[i].st == S_OPEN && trickle) {
            slow_send(&s[i], "X-Slow: 1\r\n"); /* never the blank line that ends the headers */
        }
        if (s[i].st == S_OPEN && (pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buf[512];
            ssize_t r = recv(s[i].fd, buf, sizeof buf, 0);
            if (r > 0)
                s[i].answered = true;
            else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                s[i].st = S_GONE;
        }
    }
}

typedef struct asker {
    int port;
    long status;
    atomic_bool done;
} asker;

static void *ask_healthz(void *arg)
{
    asker *a = arg;
    http_res r = http_do_ex(a->port, "GET", "/healthz", NULL, NULL, 0,
                            (http_opts){.timeout_s = 180, .from = "127.0.0.1"});
    a->status = r.status;
    http_free(&r);
    atomic_store(&a->done, true);
    return NULL;
}

/* Raise the open-file limit towards `want`; returns the limit now. */
static rlim_t raise_fd_limit(rlim_t want)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    return rl.rlim_cur;
}

static size_t count_gone(const slow *s, size_t n)
{
    size_t g = 0;
    for (size_t i = 0; i < n; i++)
        g += s[i].st == S_GONE;
    return g;
}

static void test_slow_clients(void **state)
{
    (void)state;
    enum { ADDRS = 25 };
    /* 2,000 client and as many server sockets live in this one process: fewer where the
     * open-file limit cannot be raised that far */
    rlim_t fds = raise_fd_limit(16384);
    int N = fds >= 4500 ? 2000 : (int)(fds - 300) / 2;
    if (N < 2000)
        print_message("  open-file limit %llu: %d slow connections\n", (unsigned long long)fds,
                      N);
    assert_true(N >= 200);
    nops_api_params p;
    base_params(&p);
    p.request_timeout_s = 2;
    p.max_connections = N / 2;       /* the slow ones are more than the server holds */
    p.max_per_ip = N / ADDRS * 5 / 8; /* and more than each address may hold */
    nops_api *api = start_api(&p);
    int port = nops_api_port(api);
    slow *s = calloc((size_t)N, sizeof *s);
    struct pollfd *pf = calloc((size_t)N, sizeof *pf);
    assert_true(s && pf);
    for (int i = 0; i < N; i++) {
        char from[32];
        snprintf(from, sizeof from, "127.0.0.%d", 2 + i % ADDRS);
        s[i] = (slow){.fd = dial_from(from, port), .st = S_CONNECTING};
    }
    asker a = {.port = port};
    pthread_t t;
    bool asked = false;
    double last_trickle = now_s(), deadline = now_s() + 240;
    while (now_s() < deadline) {
        bool trickle = now_s() - last_trickle >= 0.5;
        if (trickle)
            last_trickle = now_s();
        slow_turn(s, (size_t)N, pf, trickle);
        if (!asked) { /* once the slow ones are in place: ask /healthz from 127.0.0.1 */
            size_t placed = 0;
            for (int i = 0; i < N; i++)
                placed += s[i].st != S_CONNECTING;
            if (placed == (size_t)N) {
                assert_int_equal(pthread_create(&t, NULL, ask_healthz, &a), 0);
                asked = true;
            }
        }
        if (asked && atomic_load(&a.done) && count_gone(s, (size_t)N) == (size_t)N)
            break;
    }
    if (asked)
        pthread_join(t, NULL);
    assert_true(asked);
    assert_int_equal(a.status, 200); /* answered while the slow ones held on */
    if (count_gone(s, (size_t)N) != (size_t)N)
        fail_msg("%zu of %d slow connections still open", (size_t)N - count_gone(s, (size_t)N),
                 N);
    for (int i = 0; i < N; i++) {
        assert_false(s[i].answered); /* cut, never answered */
        close(s[i].fd);
    }
    free(s);
    free(pf);
    http_res r = http_do(port, "GET", "/metrics", NULL, NULL, 0);
    const char *name = "\nneuralops_http_slow_requests_cut_total ";
    const char *cut = strstr(r.body, name);
    assert_non_null(cut);
    assert_true(atof(cut + strlen(name)) >= 1);
    http_free(&r);
    nops_api_destroy(api);
}

static void test_per_ip_cap(void **state)
{
    (void)state;
    enum { N = 30, CAP = 10 };
    nops_api_params p;
    base_params(&p);
    p.request_timeout_s = 600; /* only the cap acts here */
    p.max_per_ip = CAP;
    nops_api *api = start_api(&p);
    int port = nops_api_port(api);
    slow s[N];
    struct pollfd pf[N];
    for (int i = 0; i < N; i++)
        s[i] = (slow){.fd = dial_from("127.0.0.2", port), .st = S_CONNECTING};
    double deadline = now_s() + 120;
    while (count_gone(s, N) < N - CAP && now_s() < deadline)
        slow_turn(s, N, pf, false);
    assert_int_equal(count_gone(s, N), N - CAP); /* the ones over the cap, closed at once */
    /* another address is not affected */
    http_res r = http_do_ex(port, "GET", "/healthz", NULL, NULL, 0,
                            (http_opts){.from = "127.0.0.3"});
    assert_int_equal(r.status, 200);
    http_free(&r);
    /* and the ones held are served when they finish their requests */
    for (int i = 0; i < N; i++) {
        if (s[i].st == S_GONE) {
            close(s[i].fd);
            continue;
        }
        int fl = fcntl(s[i].fd, F_GETFL);
        fcntl(s[i].fd, F_SETFL, fl & ~O_NONBLOCK);
        struct timeval tv = {60, 0};
        setsockopt(s[i].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        assert_int_equal(send(s[i].fd, "\r\n", 2, MSG_NOSIGNAL), 2);
        char buf[256] = "";
        assert_true(recv(s[i].fd, buf, sizeof buf - 1, 0) > 12);
        assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
        close(s[i].fd);
    }
    nops_api_destroy(api);
}

/* ---- failed authentications ------------------------------------------------------------- */

static long status_from(int port, const char *path, const char **hdrs, const char *from,
                        char *retry_after, size_t cap)
{
    http_res r = http_do_ex(port, "GET", path, hdrs, NULL, 0, (http_opts){.from = from});
    long st = r.status;
    if (retry_after) {
        const char *ra = strstr(r.headers, "Retry-After: ");
        snprintf(retry_after, cap, "%s", ra ? ra + 13 : "");
    }
    http_free(&r);
    return st;
}

static void test_auth_failures_limited_per_address(void **state)
{
    (void)state;
    nops_api_params p;
    base_params(&p);
    p.auth_failures_per_min = 5;
    nops_api *api = start_api(&p);
    int port = nops_api_port(api);
    int n401 = 0, n429 = 0;
    char ra[64];
    for (int i = 0; i < 40; i++) {
        long st = status_from(port, "/signals", H_BAD, "127.0.0.4", ra, sizeof ra);
        n401 += st == 401;
        n429 += st == 429;
        if (st == 429)
            assert_true(atoi(ra) >= 1 && atoi(ra) <= 60);
    }
    /* a minute's worth, then 429: the refill over the loop is a fraction of a token per
     * second, so at most a few more 401s than the burst on the slowest machine */
    assert_true(n401 >= 5 && n401 < 40);
    assert_int_equal(n401 + n429, 40);
    /* the address is blocked, whatever it sends: a right key is not even checked */
    assert_int_equal(status_from(port, "/signals", H_OK, "127.0.0.4", ra, sizeof ra), 429);
    /* public routes answer */
    assert_int_equal(status_from(port, "/healthz", NULL, "127.0.0.4", NULL, 0), 200);
    /* another address: served, and its own failures are its own */
    assert_int_equal(status_from(port, "/signals", H_OK, "127.0.0.5", NULL, 0), 200);
    assert_int_equal(status_from(port, "/signals", H_BAD, "127.0.0.5", NULL, 0), 401);
    /* missing credentials are not counted as guesses */
    for (int i = 0; i < 10; i++)
        assert_int_equal(status_from(port, "/signals", NULL, "127.0.0.6", NULL, 0), 401);
    assert_int_equal(status_from(port, "/signals", H_OK, "127.0.0.6", NULL, 0), 200);
    http_res r = http_do(port, "GET", "/metrics", NULL, NULL, 0);
    const char *name = "\nneuralops_http_auth_blocked_total ";
    const char *b = strstr(r.body, name);
    assert_non_null(b);
    assert_true(atof(b + strlen(name)) >= n429 + 1);
    http_free(&r);
    nops_api_destroy(api);
}

/* ---- log lines ---------------------------------------------------------------------------- */

static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log[64][600];
static nops_log_level g_log_level[64];
static int g_nlog;

static void sink(void *ud, nops_log_level level, const char *line)
{
    (void)ud;
    pthread_mutex_lock(&g_log_mu);
    if (g_nlog < 64) {
        g_log_level[g_nlog] = level;
        snprintf(g_log[g_nlog++], sizeof g_log[0], "%s", line);
    }
    pthread_mutex_unlock(&g_log_mu);
}

static void test_jwt_sub_one_log_line(void **state)
{
    (void)state;
    nops_api_params p;
    base_params(&p);
    nops_api *api = start_api(&p);
    int port = nops_api_port(api);
    char auth[2048];
    http_jwt("Authorization: Bearer ", "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
             "{\"sub\":\"mallory\\n2026-01-01T00:00:00.000Z info  http: GET /audit 200 "
             "0.1 ms key:admin\",\"role\":\"viewer\",\"exp\":4000000000}",
             SECRET, auth, sizeof auth);
    const char *h[] = {auth, NULL};
    nops_log_set_sink(sink, NULL);
    http_res r = http_do(port, "GET", "/signals", h, NULL, 0);
    assert_int_equal(r.status, 200);
    http_free(&r);
    nops_api_destroy(api); /* the access line is written when the request completes */
    nops_log_set_sink(NULL, NULL);
    int access = 0;
    for (int i = 0; i < g_nlog; i++) {
        assert_null(strchr(g_log[i], '\n'));
        if (strstr(g_log[i], "method=GET path=/signals status=200")) {
            access++;
            assert_non_null(strstr(g_log[i], "jwt:mallory\\n2026-01-01T00:00:00.000Z"));
        }
    }
    assert_int_equal(access, 1);
}

/* The access log's facts are JSON members, not text inside "msg"; a successful scrape or
 * health probe is logged at debug, any other request at info. */
static void test_access_log_fields(void **state)
{
    (void)state;
    nops_api_params p;
    base_params(&p);
    nops_api *api = start_api(&p);
    int port = nops_api_port(api);
    const char *h[] = {"X-API-Key: viewer-key-1", NULL};
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_JSON);
    g_nlog = 0;
    nops_log_set_sink(sink, NULL);
    const char *paths[] = {"/signals", "/healthz", "/readyz", "/metrics", "/nowhere"};
    for (size_t i = 0; i < 5; i++) {
        http_res r = http_do(port, "GET", paths[i], h, NULL, 0);
        assert_true(r.status > 0);
        http_free(&r);
    }
    nops_api_destroy(api); /* every access line is written by now */
    nops_log_set_sink(NULL, NULL);
    nops_log_configure(NOPS_LOG_INFO, NOPS_LOG_TEXT);
    int seen = 0, debug = 0;
    for (int i = 0; i < g_nlog; i++) {
        if (!strstr(g_log[i], "\"module\":\"http\",\"msg\":\"request\""))
            continue;
        json_error_t je;
        json_t *o = json_loads(g_log[i], 0, &je);
        if (!o)
            fail_msg("not JSON: %s", g_log[i]);
        const char *path = json_string_value(json_object_get(o, "path"));
        assert_non_null(path);
        assert_string_equal(json_string_value(json_object_get(o, "method")), "GET");
        assert_true(json_is_integer(json_object_get(o, "status")));
        assert_true(json_is_number(json_object_get(o, "duration_ms")));
        assert_string_equal(json_string_value(json_object_get(o, "msg")), "request");
        long status = (long)json_integer_value(json_object_get(o, "status"));
        bool routine = strcmp(path, "/signals") != 0 && strcmp(path, "/nowhere") != 0 &&
                       status < 400; /* /readyz answers 503 here: no pipeline */
        debug += routine;
        assert_int_equal(g_log_level[i], routine ? NOPS_LOG_DEBUG : NOPS_LOG_INFO);
        assert_string_equal(json_string_value(json_object_get(o, "level")),
                            routine ? "debug" : "info");
        if (strcmp(path, "/signals") == 0) {
            assert_int_equal(status, 200);
            assert_string_equal(json_string_value(json_object_get(o, "caller")), "key:v1");
        }
        if (strcmp(path, "/nowhere") == 0)
            assert_int_equal(status, 404);
        seen++;
        json_decref(o);
    }
    assert_int_equal(seen, 5);
    assert_true(debug >= 2); /* /healthz and /metrics at least */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_clients),
        cmocka_unit_test(test_per_ip_cap),
        cmocka_unit_test(test_auth_failures_limited_per_address),
        cmocka_unit_test(test_jwt_sub_one_log_line),
        cmocka_unit_test(test_access_log_fields),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
