/*
 * demo_receiver.c — the demo's stand-in for a team's chat or pager: when no Alertmanager and no
 * webhook is configured, the demo points notify.webhook_urls at this receiver on loopback and
 * prints one line per notification the engine sends, so the closed loop can be watched live.
 * It is a real HTTP endpoint (libmicrohttpd) receiving the real webhook requests.
 */
#include "app/demo/demo.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY (256 * 1024)

struct demo_receiver {
    struct MHD_Daemon *mhd;
    int port;
    _Atomic unsigned long received;
};

typedef struct body {
    char *p;
    size_t n;
    bool too_big;
} body;

/* One line about one notification: event, severity and what it is about. */
static void print_notification(const char *text, size_t n)
{
    json_t *v = json_loadb(text, n, 0, NULL);
    if (!v) {
        printf("  [notification] (not JSON, %zu bytes)\n", n);
        return;
    }
    const char *event = json_string_value(json_object_get(v, "event"));
    const char *sev = json_string_value(json_object_get(v, "severity"));
    json_t *inc = json_object_get(v, "incident");
    json_t *appr = json_object_get(v, "approval");
    const char *what = json_string_value(json_object_get(inc, "summary"));
    if (!what)
        what = json_string_value(json_object_get(appr, "playbook_id"));
    if (!what)
        what = json_string_value(json_object_get(v, "text"));
    printf("  [notification] %s%s%s: %s\n", event ? event : "message", sev ? " " : "",
           sev ? sev : "", what ? what : "(no summary)");
    json_decref(v);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    (void)url;
    (void)version;
    struct demo_receiver *r = cls;
    body *b = *state;
    if (!b) {
        if (!(b = calloc(1, sizeof *b)))
            return MHD_NO;
        *state = b;
        return MHD_YES;
    }
    if (*size) {
        if (b->n + *size > MAX_BODY) {
            b->too_big = true;
        } else {
            char *np = realloc(b->p, b->n + *size + 1);
            if (!np)
                return MHD_NO;
            memcpy(np + b->n, data, *size);
            b->p = np;
            b->n += *size;
            b->p[b->n] = '\0';
        }
        *size = 0;
        return MHD_YES;
    }
    unsigned status = strcmp(method, "POST") != 0 ? 405 : b->too_big ? 413 : 200;
    if (status == 200) {
        r->received++;
        print_notification(b->p ? b->p : "", b->n);
    }
    struct MHD_Response *res = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(c, status, res);
    MHD_destroy_response(res);
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    body *b = *state;
    if (b) {
        free(b->p);
        free(b);
    }
    *state = NULL;
}

demo_receiver *demo_receiver_start(char *url, size_t cap, char *err, size_t errsz)
{
    demo_receiver *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    r->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
                              NULL, on_request, r, MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, r,
                              MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        r->mhd ? MHD_get_daemon_info(r->mhd, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info) {
        snprintf(err, errsz, "cannot start the demo's notification receiver on 127.0.0.1");
        demo_receiver_stop(r);
        return NULL;
    }
    r->port = info->port;
    snprintf(url, cap, "http://127.0.0.1:%d/notify", r->port);
    return r;
}

unsigned long demo_receiver_count(const demo_receiver *r)
{
    return r ? r->received : 0;
}

void demo_receiver_stop(demo_receiver *r)
{
    if (!r)
        return;
    if (r->mhd)
        MHD_stop_daemon(r->mhd);
    free(r);
}
