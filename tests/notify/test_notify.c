/*
 * test_notify.c — the webhook side of notify/ against a receiver of the test's own
 * (libmicrohttpd on loopback) that fails the first N requests: payload, HMAC signature
 * (recomputed here with OpenSSL), retries and giving up, routing by severity, the Slack format,
 * the bounded queue, and the spool across a kill -9 (including a tampered and a renamed file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "notify/notify_int.h"
#include "tests/notify/notify_fixture.h"

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char SECRET[] = "s3cret-for-webhooks";

/* ---- the receiver ------------------------------------------------------------------------- */

typedef struct rx_req {
    char sig[160], ts[32], delivery[80], event[48];
    char *body;
} rx_req;

typedef struct rx {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    int fail_first;  /* answer fail_status to this many requests first */
    int fail_status; /* e.g. 500 */
    int n;           /* requests seen */
    rx_req req[64];
} rx;

typedef struct rx_body {
    char *b;
    size_t len;
} rx_body;

static void copy_hdr(struct MHD_Connection *c, const char *name, char *out, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(out, cap, "%s", v ? v : "");
}

static enum MHD_Result rx_handler(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    rx *r = cls;
    rx_body *b = *con_cls;
    if (!b) {
        *con_cls = calloc(1, sizeof *b);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        char *nb = realloc(b->b, b->len + *upload_size + 1);
        if (!nb) return MHD_NO;
        b->b = nb;
        memcpy(b->b + b->len, upload, *upload_size);
        b->len += *upload_size;
        b->b[b->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&r->mu);
    int k = r->n++;
    if (k < 64) {
        rx_req *q = &r->req[k];
        copy_hdr(c, "X-NeuralOps-Signature", q->sig, sizeof q->sig);
        copy_hdr(c, "X-NeuralOps-Timestamp", q->ts, sizeof q->ts);
        copy_hdr(c, "X-NeuralOps-Delivery", q->delivery, sizeof q->delivery);
        copy_hdr(c, "X-NeuralOps-Event", q->event, sizeof q->event);
        q->body = strdup(b->b ? b->b : "");
    }
    unsigned status = k < r->fail_first ? (unsigned)r->fail_status : 200;
    pthread_mutex_unlock(&r->mu);
    struct MHD_Response *resp = MHD_create_response_from_buffer(2, "ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void rx_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    rx_body *b = *con_cls;
    if (b) {
        free(b->b);
        free(b);
    }
    *con_cls = NULL;
}

/* A receiver on `port` (0 = any). */
static rx *rx_start(int port, int fail_first, int fail_status)
{
    rx *r = calloc(1, sizeof *r);
    assert_non_null(r);
    pthread_mutex_init(&r->mu, NULL);
    r->fail_first = fail_first;
    r->fail_status = fail_status;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    r->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, rx_handler,
                            r, MHD_OPTION_NOTIFY_COMPLETED, rx_done, NULL, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&a, MHD_OPTION_END);
    assert_non_null(r->d);
    r->port = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return r;
}

static int rx_count(rx *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void rx_stop(rx *r)
{
    MHD_stop_daemon(r->d);
    for (int i = 0; i < r->n && i < 64; i++)
        free(r->req[i].body);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- fixture ----------------------------------------------------------------------------------
 */

typedef struct fx {
    char dir[64];
    char spool[128];
    char secret_file[128];
    nops_secret *key;
    nops_notify_params p;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/nops-notify-XXXXXX");
    if (!f || !mkdtemp(f->dir)) return -1;
    snprintf(f->spool, sizeof f->spool, "%s/spool", f->dir);
    snprintf(f->secret_file, sizeof f->secret_file, "%s/webhook.secret", f->dir);
    FILE *s = fopen(f->secret_file, "w");
    if (!s) return -1;
    fprintf(s, "%s\n", SECRET);
    fclose(s);
    chmod(f->secret_file, 0600);
    f->key = nops_secret_from_bytes("notify-test-key", 15);
    nops_notify_params_default(&f->p);
    snprintf(f->p.webhook_secret_file, sizeof f->p.webhook_secret_file, "%s", f->secret_file);
    snprintf(f->p.external_url, sizeof f->p.external_url, "http://engine.example:8080/");
    snprintf(f->p.webhook_severities, sizeof f->p.webhook_severities, "warning,critical");
    f->p.backoff_ms = 20;
    f->p.backoff_max_ms = 200;
    f->p.timeout_ms = 10000;
    f->p.shutdown_ms = 200;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    nops_secret_destroy(f->key);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void set_hook(fx *f, int port)
{
    snprintf(f->p.webhook_urls, sizeof f->p.webhook_urls, "http://127.0.0.1:%d/hook", port);
}

static nops_notifier *start(fx *f)
{
    char err[300] = "";
    nops_notifier *n = nops_notifier_new(&f->p, f->key, f->spool, err, sizeof err);
    if (!n) fail_msg("nops_notifier_new: %s", err);
    return n;
}

/* The signature as a receiver checks it: HMAC-SHA256(secret, ts "." body), hex. */
static bool signature_ok(const rx_req *q, const char *secret)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    size_t tl = strlen(q->ts), bl = strlen(q->body);
    unsigned char *in = malloc(tl + 1 + bl);
    memcpy(in, q->ts, tl);
    in[tl] = '.';
    memcpy(in + tl + 1, q->body, bl);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), in, tl + 1 + bl, mac, &ml);
    free(in);
    char want[2 * EVP_MAX_MD_SIZE + 8] = "sha256=";
    for (unsigned i = 0; i < ml; i++)
        sprintf(want + 7 + 2 * i, "%02x", mac[i]);
    return strcmp(want, q->sig) == 0;
}

/* ---- tests ------------------------------------------------------------------------------------
 */

/* Two 500s, then 200: one message, three attempts with the same delivery id, each signed over
 * its own timestamp; the payload says what the docs say. */
static void test_webhook_retries_and_signature(void **state)
{
    fx *f = *state;
    rx *r = rx_start(0, 2, 500);
    set_hook(f, r->port);
    f->p.max_retries = 5;
    nops_notifier *n = start(f);
    nops_incident inc = nf_incident("00000000000000a1", NOPS_SEVERITY_WARNING, false);
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    nops_notify_stats st;
    uint64_t one = 1;
    assert_true(nf_wait(n, nf_delivered_at_least, &one, &st));
    assert_int_equal(st.queued, 1);
    assert_int_equal(st.retried, 2);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.pending, 0);
    assert_int_equal(rx_count(r), 3);
    assert_int_equal(nf_count_files(f->spool, ".msg"), 0); /* delivered: spool file gone */
    for (int i = 0; i < 3; i++) {
        rx_req *q = &r->req[i];
        assert_true(signature_ok(q, SECRET));
        assert_false(signature_ok(q, "another secret")); /* the check can fail */
        assert_string_equal(q->delivery, r->req[0].delivery);
        assert_string_equal(q->event, "incident.firing");
        assert_string_equal(q->body, r->req[0].body);
    }
    json_t *j = json_loads(r->req[2].body, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "incident.firing");
    assert_string_equal(json_string_value(json_object_get(j, "severity")), "warning");
    assert_string_equal(json_string_value(json_object_get(j, "id")), r->req[0].delivery);
    json_t *o = json_object_get(j, "incident");
    assert_string_equal(json_string_value(json_object_get(o, "id")), "00000000000000a1");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "open");
    assert_string_equal(json_string_value(json_object_get(o, "summary")), inc.summary);
    assert_string_equal(json_string_value(json_object_get(o, "url")),
                        "http://engine.example:8080/incidents/00000000000000a1");
    json_t *labels = json_object_get(o, "labels");
    assert_string_equal(json_string_value(json_object_get(labels, "service")), "api");
    assert_string_equal(json_string_value(json_object_get(labels, "my-label")), "x<&>y");
    json_decref(j);
    nops_notifier_destroy(n);
    rx_stop(r);
}

/* A destination that keeps failing: given up after 1 + max_retries attempts, counted, the spool
 * file removed; a 4xx answer (not 408/429) is given up at once. */
static void test_webhook_gives_up(void **state)
{
    fx *f = *state;
    rx *r = rx_start(0, 1000, 500);
    set_hook(f, r->port);
    f->p.max_retries = 2;
    nops_notifier *n = start(f);
    nops_incident inc = nf_incident("00000000000000b1", NOPS_SEVERITY_CRITICAL, false);
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    nops_notify_stats st;
    uint64_t one = 1;
    assert_true(nf_wait(n, nf_failed_at_least, &one, &st));
    assert_int_equal(st.delivered, 0);
    assert_int_equal(st.retried, 2);
    assert_int_equal(rx_count(r), 3);
    assert_int_equal(nf_count_files(f->spool, ".msg"), 0);
    nops_notifier_destroy(n);
    rx_stop(r);

    r = rx_start(0, 1000, 400);
    set_hook(f, r->port);
    n = start(f);
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    assert_true(nf_wait(n, nf_failed_at_least, &one, &st));
    assert_int_equal(st.retried, 0);
    assert_int_equal(rx_count(r), 1);
    nops_notifier_destroy(n);
    rx_stop(r);
}

/* webhook_severities decides what goes out; approvals route by level (emergency with critical);
 * the slack format is a Slack message. */
static void test_routing_and_slack(void **state)
{
    fx *f = *state;
    rx *r = rx_start(0, 0, 200);
    set_hook(f, r->port);
    snprintf(f->p.webhook_severities, sizeof f->p.webhook_severities, "critical");
    snprintf(f->p.webhook_format, sizeof f->p.webhook_format, "slack");
    nops_notifier *n = start(f);
    nops_incident info = nf_incident("00000000000000c1", NOPS_SEVERITY_INFO, false);
    nops_incident warn = nf_incident("00000000000000c2", NOPS_SEVERITY_WARNING, false);
    nops_incident crit = nf_incident("00000000000000c3", NOPS_SEVERITY_CRITICAL, true);
    assert_int_equal(nops_notify_incident(n, &info), NOPS_OK);
    assert_int_equal(nops_notify_incident(n, &warn), NOPS_OK);
    nops_notify_stats st;
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.queued, 0); /* not routed */
    assert_int_equal(nops_notify_incident(n, &crit), NOPS_OK);
    json_t *rec = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:s}}", "id", "orch-0011223344556677", "state",
        "dry_run_ok", "playbook_id", "restart-api", "context", "incident_id", "00000000000000c3",
        "labels", "service", "api", "policy", "action", "escalate", "escalation", "emergency");
    assert_int_equal(nops_notify_approval(n, rec, "escalated", "warning"), NOPS_OK); /* no */
    assert_int_equal(nops_notify_approval(n, rec, "escalated", "emergency"), NOPS_OK);
    assert_int_equal(nops_notify_approval(n, rec, "bogus", "critical"), NOPS_INVAL);
    assert_int_equal(nops_notify_approval(n, rec, "done", "loud"), NOPS_INVAL);
    uint64_t two = 2;
    assert_true(nf_wait(n, nf_delivered_at_least, &two, &st));
    assert_int_equal(st.queued, 2);
    assert_int_equal(rx_count(r), 2);
    json_t *a = json_loads(r->req[0].body, 0, NULL), *b = json_loads(r->req[1].body, 0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    const char *text = json_string_value(json_object_get(a, "text"));
    assert_non_null(text);
    assert_non_null(strstr(text, "[CRITICAL] Incident 00000000000000c3 resolved"));
    const char *md = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(a, "blocks"), 0), "text"), "text"));
    assert_non_null(md);
    assert_non_null(strstr(md, "<http://engine.example:8080/incidents/00000000000000c3|"));
    assert_string_equal(r->req[0].event, "incident.resolved");
    assert_string_equal(r->req[1].event, "approval.escalated");
    assert_non_null(strstr(json_string_value(json_object_get(b, "text")),
                           "[EMERGENCY] Orchestration orch-0011223344556677 escalated"));
    json_decref(a);
    json_decref(b);

    /* the json format of an approval */
    nops_notifier_destroy(n);
    snprintf(f->p.webhook_format, sizeof f->p.webhook_format, "json");
    n = start(f);
    assert_int_equal(nops_notify_approval(n, rec, "pending", "critical"), NOPS_OK);
    uint64_t three = 1;
    assert_true(nf_wait(n, nf_delivered_at_least, &three, &st));
    json_t *c = json_loads(r->req[2].body, 0, NULL);
    json_t *ap = json_object_get(c, "approval");
    assert_string_equal(json_string_value(json_object_get(c, "event")), "approval.pending");
    assert_string_equal(json_string_value(json_object_get(c, "severity")), "critical");
    assert_string_equal(json_string_value(json_object_get(ap, "id")), "orch-0011223344556677");
    assert_string_equal(json_string_value(json_object_get(ap, "incident_id")), "00000000000000c3");
    assert_string_equal(json_string_value(json_object_get(ap, "playbook_id")), "restart-api");
    assert_string_equal(json_string_value(json_object_get(ap, "action")), "escalate");
    assert_string_equal(json_string_value(json_object_get(ap, "url")),
                        "http://engine.example:8080/orchestrations/orch-0011223344556677");
    json_decref(c);
    json_decref(rec);
    nops_notifier_destroy(n);
    rx_stop(r);
}

/* Routes changed on a running notifier (SIGHUP): a warning goes out only after the webhook
 * route takes warnings; a list that is not valid changes nothing. */
static void test_routes_changed_while_running(void **state)
{
    fx *f = *state;
    rx *r = rx_start(0, 0, 200);
    set_hook(f, r->port);
    snprintf(f->p.webhook_severities, sizeof f->p.webhook_severities, "critical");
    nops_notifier *n = start(f);
    nops_incident w1 = nf_incident("00000000000000d1", NOPS_SEVERITY_WARNING, false);
    nops_incident w2 = nf_incident("00000000000000d2", NOPS_SEVERITY_WARNING, false);
    assert_int_equal(nops_notify_incident(n, &w1), NOPS_OK);
    nops_notify_stats st;
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.queued, 0); /* not routed */
    char err[256] = "";
    assert_int_equal(nops_notifier_set_routes(n, "warning,critical", "loud", err, sizeof err),
                     NOPS_CONFIG);
    assert_non_null(strstr(err, "loud"));
    assert_int_equal(nops_notify_incident(n, &w1), NOPS_OK);
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.queued, 0); /* the refused lists changed nothing */
    assert_int_equal(nops_notifier_set_routes(n, "warning,critical", "warning,critical", err,
                                              sizeof err), NOPS_OK);
    assert_int_equal(nops_notify_incident(n, &w2), NOPS_OK);
    uint64_t one = 1;
    assert_true(nf_wait(n, nf_delivered_at_least, &one, &st));
    assert_int_equal(st.queued, 1);
    assert_int_equal(rx_count(r), 1);
    assert_non_null(strstr(r->req[0].body, "00000000000000d2"));
    nops_notifier_destroy(n);
    rx_stop(r);
}

/* A full queue refuses the newest message and counts it; nothing is spooled for it. */
static void test_queue_full(void **state)
{
    fx *f = *state;
    set_hook(f, nf_free_port()); /* nobody listens: everything stays queued */
    f->p.queue_size = 2;
    f->p.max_retries = 1000;
    f->p.backoff_ms = f->p.backoff_max_ms = 60000;
    nops_notifier *n = start(f);
    nops_incident inc = nf_incident("00000000000000d1", NOPS_SEVERITY_CRITICAL, false);
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_FULL);
    nops_notify_stats st;
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.queued, 2);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.spooled, 2);
    assert_int_equal(nf_count_files(f->spool, ".msg"), 2);
    nops_notifier_destroy(n);
    assert_int_equal(nf_count_files(f->spool, ".msg"), 2); /* kept for the next start */
}

/* kill -9 after the call returned: the spool has the message; a notifier that cannot deliver
 * keeps it on destroy; the next one delivers it. */
static void test_spool_survives_kill(void **state)
{
    fx *f = *state;
    int port = nf_free_port();
    set_hook(f, port);
    f->p.max_retries = 1000;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[300];
        nops_notifier *n = nops_notifier_new(&f->p, f->key, f->spool, err, sizeof err);
        nops_incident inc = nf_incident("00000000000000e1", NOPS_SEVERITY_CRITICAL, false);
        if (!n || nops_notify_incident(n, &inc) != NOPS_OK) _exit(3);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    assert_int_equal(nf_count_files(f->spool, ".msg"), 1);

    /* the receiver is still down: destroy delivers nothing and keeps the file */
    nops_notifier *n = start(f);
    nops_notify_stats st;
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.queued, 1);
    nops_notifier_destroy(n);
    assert_int_equal(nf_count_files(f->spool, ".msg"), 1);

    rx *r = rx_start(port, 0, 200);
    n = start(f);
    uint64_t one = 1;
    assert_true(nf_wait(n, nf_delivered_at_least, &one, &st));
    assert_int_equal(rx_count(r), 1);
    assert_true(signature_ok(&r->req[0], SECRET));
    assert_non_null(strstr(r->req[0].body, "\"00000000000000e1\""));
    assert_int_equal(nf_count_files(f->spool, ".msg"), 0);
    nops_notifier_destroy(n);
    rx_stop(r);
}

/* A spool file with one byte changed, and a valid one copied under another name, are refused,
 * moved to rejected/ and never sent; the genuine message beside them is. */
static void test_spool_refuses_tampered(void **state)
{
    fx *f = *state;
    int port = nf_free_port();
    set_hook(f, port);
    f->p.max_retries = 1000;
    nops_notify_stats st;
    uint64_t one = 1;
    nops_notifier *n = start(f);
    nops_incident inc = nf_incident("00000000000000e2", NOPS_SEVERITY_CRITICAL, false);
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    nops_notifier_destroy(n);
    char path[300], copy[400];
    assert_true(nf_first_file(f->spool, ".msg", path, sizeof path));
    FILE *fp = fopen(path, "r+");
    assert_non_null(fp);
    fseek(fp, -30, SEEK_END);
    int ch = fgetc(fp);
    fseek(fp, -30, SEEK_END);
    fputc(ch == 'a' ? 'b' : 'a', fp);
    fclose(fp);
    /* and a valid file copied under another name */
    n = start(f);
    nops_incident inc3 = nf_incident("00000000000000e3", NOPS_SEVERITY_CRITICAL, false);
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.queued, 0);
    assert_int_equal(nops_notify_incident(n, &inc3), NOPS_OK);
    nops_notifier_destroy(n);
    assert_true(nf_first_file(f->spool, ".msg", path, sizeof path));
    snprintf(copy, sizeof copy, "%s/99999999999999999999-000000-00000000.msg", f->spool);
    char *data = NULL;
    size_t len = 0;
    fp = fopen(path, "r");
    assert_non_null(fp);
    data = malloc(1 << 16);
    len = fread(data, 1, 1 << 16, fp);
    fclose(fp);
    fp = fopen(copy, "w");
    fwrite(data, 1, len, fp);
    fclose(fp);
    free(data);

    rx *r = rx_start(port, 0, 200);
    n = start(f);
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.rejected, 1); /* the copy */
    assert_int_equal(st.queued, 1);   /* the genuine e3 */
    assert_true(nf_wait(n, nf_delivered_at_least, &one, &st));
    nops_notifier_destroy(n);
    assert_int_equal(rx_count(r), 1);
    assert_non_null(strstr(r->req[0].body, "\"00000000000000e3\""));
    assert_null(strstr(r->req[0].body, "\"00000000000000e2\""));
    char rej[200];
    snprintf(rej, sizeof rej, "%s/rejected", f->spool);
    assert_int_equal(nf_count_files(rej, ".msg"), 2);
    assert_int_equal(nf_count_files(f->spool, ".msg"), 0);
    rx_stop(r);
}

/* The active set (alerts re-posted to Alertmanager) is kept across a restart, and an active file
 * that does not verify is refused and never re-posted. */
static void test_active_set_persisted(void **state)
{
    fx *f = *state;
    snprintf(f->p.alertmanager_url, sizeof f->p.alertmanager_url, "http://127.0.0.1:%d",
             nf_free_port()); /* down: the alerts stay queued */
    f->p.max_retries = 1000;
    nops_notifier *n = start(f);
    nops_incident a = nf_incident("00000000000000a7", NOPS_SEVERITY_CRITICAL, false);
    nops_incident b = nf_incident("00000000000000a8", NOPS_SEVERITY_WARNING, false);
    nops_incident c = nf_incident("00000000000000a9", NOPS_SEVERITY_INFO, false); /* not routed */
    assert_int_equal(nops_notify_incident(n, &a), NOPS_OK);
    assert_int_equal(nops_notify_incident(n, &b), NOPS_OK);
    assert_int_equal(nops_notify_incident(n, &c), NOPS_OK);
    b.status = NOPS_INCIDENT_RESOLVED;
    assert_int_equal(nops_notify_incident(n, &b), NOPS_OK);
    nops_notify_stats st;
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.active, 1); /* a */
    assert_int_equal(st.queued, 3);
    nops_notifier_destroy(n);

    char active[200], path[300];
    snprintf(active, sizeof active, "%s/active", f->spool);
    assert_int_equal(nf_count_files(active, ".json"), 1);
    n = start(f);
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.active, 1);
    assert_int_equal(st.queued, 3); /* the spool, in order */
    assert_int_equal(st.rejected, 0);
    nops_notifier_destroy(n);

    assert_true(nf_first_file(active, ".json", path, sizeof path));
    FILE *fp = fopen(path, "r+");
    assert_non_null(fp);
    fseek(fp, -5, SEEK_END);
    fputc('X', fp);
    fclose(fp);
    n = start(f);
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.active, 0);
    assert_int_equal(st.rejected, 1);
    nops_notifier_destroy(n);
    assert_int_equal(nf_count_files(active, ".json"), 0);
}

/* The Nth allocation fails, for every N the start and one call make: each failure is a clean
 * error (never a crash), and once the notifier is gone every allocation is given back. */
static void test_allocation_failures(void **state)
{
    fx *f = *state;
    set_hook(f, nf_free_port());
    snprintf(f->p.alertmanager_url, sizeof f->p.alertmanager_url, "http://127.0.0.1:%d",
             nf_free_port());
    f->p.max_retries = 1000;
    f->p.backoff_ms = f->p.backoff_max_ms = 60000;
    nops_incident inc = nf_incident("00000000000000ff", NOPS_SEVERITY_CRITICAL, false);
    char cmd[200], err[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->spool);
    const size_t live = nops_alloc_live_count();
    int ok_runs = 0;
    for (long k = 0; k < 400 && ok_runs < 3; k++) {
        assert_int_equal(system(cmd), 0);
        nops_alloc_fail_after(k, false);
        nops_notifier *n = nops_notifier_new(&f->p, f->key, f->spool, err, sizeof err);
        nops_err e = n ? nops_notify_incident(n, &inc) : NOPS_NOMEM;
        nops_alloc_fail_after(-1, false);
        assert_true(e == NOPS_OK || e == NOPS_NOMEM || e == NOPS_IO);
        ok_runs += e == NOPS_OK && k > 0;
        nops_notifier_destroy(n);
        assert_int_equal(nops_alloc_live_count(), live);
    }
    assert_true(ok_runs > 0); /* past the last allocation the call succeeds */
}

/* Nothing configured: no key, no spool, no thread; calls succeed and count nothing. */
static void test_off_by_default(void **state)
{
    (void)state;
    nops_notify_params p;
    nops_notify_params_default(&p);
    assert_string_equal(p.alertmanager_url, "");
    assert_string_equal(p.webhook_urls, "");
    assert_string_equal(p.webhook_format, "json");
    assert_string_equal(p.alertmanager_severities, "warning,critical");
    assert_string_equal(p.webhook_severities, "critical");
    char err[200];
    nops_notifier *n = nops_notifier_new(&p, NULL, NULL, err, sizeof err);
    assert_non_null(n);
    nops_incident inc = nf_incident("00000000000000f1", NOPS_SEVERITY_CRITICAL, false);
    assert_int_equal(nops_notify_incident(n, &inc), NOPS_OK);
    nops_notify_stats st;
    nops_notifier_get_stats(n, &st);
    assert_int_equal(st.queued, 0);
    nops_notifier_destroy(n);
    nops_notifier_destroy(NULL);
}

/* Bad settings are refused with a sentence; a secret file others can read is refused. */
static void test_settings_refused(void **state)
{
    fx *f = *state;
    char err[300];
    nops_cfg *cfg = nops_cfg_new();
    nops_notify_params p;
    assert_int_equal(nops_cfg_add(cfg, &nops_notify_cfg_section, &p, err, sizeof err), NOPS_OK);
    assert_int_equal(nops_cfg_set(cfg, "notify.webhook_format", "xml", "test", err, sizeof err),
                     NOPS_OK);
    assert_int_equal(nops_cfg_finalize(cfg, err, sizeof err), NOPS_CONFIG);
    assert_non_null(strstr(err, "webhook_format"));
    assert_int_equal(nops_cfg_set(cfg, "notify.webhook_format", "slack", "t", err, sizeof err),
                     NOPS_OK);
    assert_int_equal(
        nops_cfg_set(cfg, "notify.webhook_severities", "warning,loud", "t", err, sizeof err),
        NOPS_OK);
    assert_int_equal(nops_cfg_finalize(cfg, err, sizeof err), NOPS_CONFIG);
    assert_non_null(strstr(err, "loud"));
    assert_int_equal(nops_cfg_set(cfg, "notify.webhook_severities", "*", "t", err, sizeof err),
                     NOPS_OK);
    assert_int_equal(nops_cfg_set(cfg, "notify.webhook_urls", "http://a/x, ftp://token@b/", "t",
                                  err, sizeof err),
                     NOPS_OK);
    assert_int_equal(nops_cfg_finalize(cfg, err, sizeof err), NOPS_CONFIG);
    assert_null(strstr(err, "token")); /* URLs may carry tokens: never echoed */
    assert_int_equal(
        nops_cfg_set(cfg, "notify.webhook_urls", "http://a/x, https://b/", "t", err, sizeof err),
        NOPS_OK);
    assert_int_equal(nops_cfg_finalize(cfg, err, sizeof err), NOPS_OK);
    nops_cfg_destroy(cfg);

    set_hook(f, 9);
    chmod(f->secret_file, 0644);
    assert_null(nops_notifier_new(&f->p, f->key, f->spool, err, sizeof err));
    assert_non_null(strstr(err, "readable by others"));
    chmod(f->secret_file, 0600);
    assert_null(nops_notifier_new(&f->p, NULL, f->spool, err, sizeof err)); /* no key */
    f->p.queue_size = 0; /* a struct not filled from the table */
    assert_null(nops_notifier_new(&f->p, f->key, f->spool, err, sizeof err));
    assert_non_null(strstr(err, "queue_size"));
}

/* Routing lists and label names (the parts the payload tests above do not reach alone). */
static void test_route_and_label_names(void **state)
{
    (void)state;
    assert_true(nt_route("warning,critical", "critical"));
    assert_false(nt_route("warning,critical", "info"));
    assert_true(nt_route(" critical ", "emergency")); /* emergency goes where critical goes */
    assert_false(nt_route("warning", "emergency"));
    assert_true(nt_route("*", "info"));
    assert_false(nt_route("", "critical"));
    char out[64];
    nt_label_name("my-label.x", 10, out, sizeof out);
    assert_string_equal(out, "my_label_x");
    nt_label_name("9lives", 6, out, sizeof out);
    assert_string_equal(out, "_9lives");
    nt_label_name("", 0, out, sizeof out);
    assert_string_equal(out, "_");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_webhook_retries_and_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_gives_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routing_and_slack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_changed_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_survives_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_refuses_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_set_persisted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
        cmocka_unit_test(test_off_by_default),
        cmocka_unit_test_setup_teardown(test_settings_refused, setup, teardown),
        cmocka_unit_test(test_route_and_label_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
