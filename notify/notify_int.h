/*
 * notify_int.h — what the files of notify/ share (not for other modules).
 */
#ifndef NOPS_NOTIFY_INT_H
#define NOPS_NOTIFY_INT_H

#include "notify/notify.h"

#include <curl/curl.h>

#define NT_MAX_WEBHOOKS 16 /* webhook URLs at most */
#define NT_ID_MAX 64       /* a message id / spool file stem, NUL included */
#define NT_KEY_MAX 96      /* an active alert's key ("incident-<id>", "approval-<id>") */
#define NT_SPOOL_MAGIC "nops-notify-1"

/* Which kind of destination. */
typedef enum nt_kind { NT_ALERTMANAGER = 0, NT_WEBHOOK = 1 } nt_kind;

/* One message for one destination; owned by the queue while queued. */
typedef struct nt_msg {
    struct nt_msg *next; /* next of the same destination, in order */
    char id[NT_ID_MAX];  /* spool file stem: <wall ns>-<seq>-<random> */
    int target;          /* index into the notifier's targets */
    char event[40];      /* "incident.firing", ... (header X-NeuralOps-Event) */
    char *body;          /* the exact bytes posted (nops_malloc) */
    size_t body_len;     /* their length */
    uint32_t attempts;   /* attempts made so far */
    uint64_t due_ns;     /* monotonic time of the next attempt */
} nt_msg;

void nt_msg_free(nt_msg *m);

/* ---- config.c ---- */

/* Whether `level` is named by the comma-separated `list` ("*" names all; emergency also goes
 * where critical goes). */
bool nt_route(const char *list, const char *level);
/* Split webhook_urls into urls (each trimmed, copied into urls[i]); their count, or -1 with a
 * sentence when one is not an http(s) URL or there are too many. */
int nt_split_urls(const char *list, char urls[][512], int max, char *errstr, size_t errstr_size);
/* Whether s starts with http:// or https:// and has something after it. */
bool nt_url_ok(const char *s);

/* ---- payload.c: the formats of docs/notifications.md ---- */

/* Copy a label name into out as a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*). */
void nt_label_name(const char *s, size_t n, char *out, size_t cap);
/* Alertmanager alert (no endsAt) for an incident; starts_at is RFC 3339. NULL: out of memory. */
json_t *nt_am_incident(const nops_notify_params *p, const nops_incident *inc,
                       const char *starts_at);
/* Alertmanager alert for an approval record at `level`. */
json_t *nt_am_approval(const nops_notify_params *p, const json_t *rec, const char *level,
                       const char *starts_at);
/* The webhook body (json or slack per p->webhook_format), compact text (nops_malloc'd). */
char *nt_hook_incident(const nops_notify_params *p, const nops_incident *inc, const char *event,
                       const char *msg_id, size_t *len);
char *nt_hook_approval(const nops_notify_params *p, const json_t *rec, const char *event,
                       const char *level, const char *msg_id, size_t *len);
/* The approval record's id (NULL when absent or not a usable id). */
const char *nt_record_id(const json_t *rec);
/* Compact JSON with sorted keys (nops_malloc'd), or NULL. */
char *nt_dump(const json_t *j, size_t *len);

/* ---- spool.c ---- */

/* Write dir/name as the magic, the MAC of "name\n" + data, a newline and data; fsync'ed and
 * renamed into place. 0 or -1 (errno). */
int nt_spool_write(const nops_secret *key, const char *dir, const char *name, const char *data,
                   size_t len);
/* Read dir/name back: the data (nops_malloc'd, NUL-terminated, length in *len), or NULL with
 * why ("bad MAC", "unreadable", ...). *tampered is set when the file was read but does not
 * verify (a MAC or format problem, not an I/O error). */
char *nt_spool_read(const nops_secret *key, const char *dir, const char *name, size_t *len,
                    bool *tampered, char *why, size_t why_size);
/* Move dir/name to dir/rejected/name (refused files are kept for a look, never sent). */
void nt_spool_reject(const char *dir, const char *name);

/* ---- deliver.c ---- */

/* Outcome of one POST. */
typedef enum nt_outcome { NT_OK = 0, NT_RETRY = 1, NT_PERMANENT = 2 } nt_outcome;

/* POST body to url (headers for webhooks: event, delivery id, timestamp and signature when a
 * secret is given). `h` is reused between calls (connections kept alive). */
nt_outcome nt_post(CURL *h, nt_kind kind, const char *url, const char *body, size_t len,
                   const char *event, const char *msg_id, const unsigned char *secret,
                   size_t secret_len, long timeout_ms, char *why, size_t why_size);
/* "sha256=<hex>" of HMAC-SHA256(secret, "<ts>.<body>") into out (72 bytes at least). */
void nt_sign(const unsigned char *secret, size_t secret_len, const char *ts, const char *body,
             size_t len, char *out, size_t cap);

/* ---- the notifier (notifier.c: lifecycle, queue, worker; events.c: what the calls send) ---- */

#include <pthread.h>
#include <stdatomic.h>

/* One destination and its messages, oldest first. */
typedef struct nt_target {
    nt_kind kind;        /* Alertmanager or a webhook */
    int number;          /* webhooks: 1-based position in webhook_urls (logs never show URLs) */
    char url[600];       /* where to POST (Alertmanager: <base>/api/v2/alerts) */
    nt_msg *head, *tail; /* its queue; the head is the one being tried */
} nt_target;

/* A firing alert kept for re-posting (persisted as active/<key>.json). */
typedef struct nt_active {
    char key[NT_KEY_MAX]; /* "incident-<id>" or "approval-<id>" */
    char *labels;         /* compact JSON of its labels: a change resolves the old alert */
    char *alert;          /* compact JSON of the alert as fired (no endsAt) */
} nt_active;

struct nops_notifier {
    nops_notify_params p;             /* settings (copied) */
    bool off;                         /* nothing configured: every call is a no-op */
    const nops_secret *key;           /* borrowed: spool MACs */
    char dir[512];                    /* spool directory */
    char active_dir[560];             /* dir/active */
    unsigned char secret[1024];       /* webhook signing secret */
    size_t secret_len;                /* 0 = unsigned */
    nt_target t[1 + NT_MAX_WEBHOOKS]; /* destinations */
    int nt;                           /* how many */
    int am;                           /* index of Alertmanager in t, or -1 */

    pthread_mutex_t call_mu; /* serialises notify calls (spool and active files in order) */
    pthread_mutex_t mu;      /* queue, active set, stop, rate limits */
    pthread_cond_t cv;       /* work arrived or stop */
    size_t queued_n;         /* messages in all queues */
    size_t reserved;         /* slots taken by calls writing their spool file */
    nt_active *act;          /* the active set */
    size_t n_act, cap_act;   /* its size and capacity */
    uint64_t next_resend_ns; /* monotonic time of the next re-post */
    bool stop;               /* destroy was called */
    uint64_t stop_deadline;  /* until when due messages are still tried */
    pthread_t thr;           /* the delivery thread */
    bool thr_started;        /* it runs */
    nops_ratelimit rl_drop, rl_retry, rl_fail; /* log lines (under mu) */
    atomic_uint_fast64_t seq;                  /* message ids */

    atomic_uint_fast64_t queued, delivered, retried, failed, dropped, spooled, resent,
        resend_failed, rejected; /* nops_notify_stats */
};

/* Queue a message for target `ti` with id `id` (NULL = a new one): spool it, then queue it
 * (takes `body`). NOPS_FULL, NOPS_IO
 * and NOPS_NOMEM as documented for the notify calls. Called with call_mu held. */
nops_err nt_submit(nops_notifier *n, int ti, const char *event, const char *id, char *body,
                   size_t len);
/* A new message id into out (NT_ID_MAX bytes). */
void nt_new_id(nops_notifier *n, char *out);
/* Load the active set from active_dir (at start). */
void nt_active_load(nops_notifier *n);
/* Free the active set. */
void nt_active_free(nops_notifier *n);

#endif /* NOPS_NOTIFY_INT_H */
