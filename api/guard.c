/*
 * guard.c — slow clients: a bound on the time to receive a whole request.
 *
 * MHD's own timeout (api.timeout_s) closes a connection that stays silent that long, but a
 * client that adds one header line every few seconds is never silent, and MHD calls the access
 * handler only once the headers are complete — so nothing of ours runs while such a request
 * trickles in, and a few thousand of them held every connection slot. The guard keeps its own
 * record of each connection (MHD_OPTION_NOTIFY_CONNECTION: STARTED links a record into
 * api->conns, CLOSED unlinks and frees it), with the deadline by which the current request must
 * have arrived: api.request_timeout_s after the connection opened, or after the previous
 * request on it was answered (keep-alive). The access handler clears the deadline once the
 * request is in (headers and body), so an answer that takes long (an /ingest waiting for Kafka)
 * is never cut, and sets a new one when it queues the answer (a client reading it too slowly
 * is bounded the same way); the completion callback sets the next request's. A reaper wakes every
 * REAP_MS, and for each record past its deadline calls shutdown(2) on the socket: MHD then
 * reads end-of-file and closes the connection itself, through its usual path. The records'
 * list, the shutdown and the CLOSED callback are all under conns_mu, and MHD calls CLOSED
 * before it closes the descriptor, so the reaper never touches a descriptor that was closed
 * (and perhaps reused by another connection).
 *
 * The caps in numbers of connections (api.max_connections, api.max_connections_per_ip) are
 * MHD's own options; see nops_api_start.
 */
#include "api/api_int.h"

#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define REAP_MS 200

struct conn_rec {
    conn_rec *prev, *next;         /* api->conns, under conns_mu */
    int fd;                        /* the connection's socket (MHD's; we only shut it down) */
    _Atomic int64_t deadline_ns;   /* monotonic; 0 = none (the request is in, being answered) */
    bool cut;                      /* shut down by the reaper already */
};

static conn_rec *rec_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static int64_t next_deadline(const nops_api *api)
{
    return (int64_t)nops_now_ns() + api->p.request_timeout_s * 1000000000ll;
}

void nops__guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    nops_api *api = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_rec *r = ci ? nops_calloc(1, sizeof *r) : NULL;
        *socket_context = r;
        if (!r)
            return; /* out of memory: this one connection goes unguarded (MHD's timeout holds) */
        r->fd = ci->connect_fd;
        atomic_init(&r->deadline_ns, next_deadline(api));
        pthread_mutex_lock(&api->conns_mu);
        r->next = api->conns;
        if (api->conns)
            api->conns->prev = r;
        api->conns = r;
        api->n_conns++;
        pthread_mutex_unlock(&api->conns_mu);
        return;
    }
    conn_rec *r = *socket_context;
    if (!r)
        return;
    pthread_mutex_lock(&api->conns_mu);
    if (r->prev)
        r->prev->next = r->next;
    else
        api->conns = r->next;
    if (r->next)
        r->next->prev = r->prev;
    api->n_conns--;
    pthread_mutex_unlock(&api->conns_mu);
    *socket_context = NULL;
    nops_free(r);
}

void nops__guard_received(struct MHD_Connection *c)
{
    conn_rec *r = rec_of(c);
    if (r)
        atomic_store(&r->deadline_ns, 0);
}

void nops__guard_next(nops_api *api, struct MHD_Connection *c)
{
    conn_rec *r = rec_of(c);
    if (r)
        atomic_store(&r->deadline_ns, next_deadline(api));
}

/* Shut down every connection whose request is overdue; returns how many. */
static uint64_t reap(nops_api *api, int64_t now_ns)
{
    uint64_t cut = 0;
    pthread_mutex_lock(&api->conns_mu);
    for (conn_rec *r = api->conns; r; r = r->next) {
        int64_t d = atomic_load(&r->deadline_ns);
        if (d && now_ns >= d && !r->cut) {
            shutdown(r->fd, SHUT_RDWR);
            r->cut = true;
            cut++;
        }
    }
    pthread_mutex_unlock(&api->conns_mu);
    return cut;
}

static void *reaper_main(void *arg)
{
    nops_api *api = arg;
    uint64_t logged = 0;
    int64_t last_log = 0;
    pthread_mutex_lock(&api->reaper_mu);
    while (!api->reaper_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += REAP_MS * 1000000l;
        ts.tv_sec += ts.tv_nsec / 1000000000l;
        ts.tv_nsec %= 1000000000l;
        pthread_cond_timedwait(&api->reaper_cv, &api->reaper_mu, &ts);
        if (api->reaper_stop)
            break;
        pthread_mutex_unlock(&api->reaper_mu);
        const int64_t now = (int64_t)nops_now_ns();
        uint64_t n = reap(api, now);
        atomic_fetch_add(&api->m.slow_cut, n);
        logged += n;
        if (logged && now - last_log >= 10000000000ll) { /* one line per 10 s at most */
            NOPS_WARN("http", "closed %llu connection(s) that did not send a whole request "
                              "within api.request_timeout_s (%lld s)",
                      (unsigned long long)logged, (long long)api->p.request_timeout_s);
            logged = 0;
            last_log = now;
        }
        pthread_mutex_lock(&api->reaper_mu);
    }
    pthread_mutex_unlock(&api->reaper_mu);
    return NULL;
}

nops_err nops__guard_start(nops_api *api, char *errstr, size_t errstr_size)
{
    int e = pthread_create(&api->reaper, NULL, reaper_main, api);
    if (e != 0) {
        nops_errf(errstr, errstr_size, "cannot start the API's connection reaper: %s",
                  strerror(e));
        return NOPS_INTERNAL;
    }
    api->reaper_started = true;
    return NOPS_OK;
}

void nops__guard_stop(nops_api *api)
{
    if (!api->reaper_started)
        return;
    pthread_mutex_lock(&api->reaper_mu);
    api->reaper_stop = true;
    pthread_cond_signal(&api->reaper_cv);
    pthread_mutex_unlock(&api->reaper_mu);
    pthread_join(api->reaper, NULL);
    api->reaper_started = false;
    api->reaper_stop = false;
}
