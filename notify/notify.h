/*
 * notify.h — telling people: incidents and pending approvals as Alertmanager alerts (API v2) and
 * as JSON webhooks (docs/notifications.md has the formats and the settings).
 *
 * Ownership in one sentence: the caller owns a nops_notifier and destroys it; everything passed
 * in (params, key, incident, approval record) is only read during the call, except `key`, which
 * is borrowed and must outlive the notifier.
 *
 * How a notification travels. nops_notify_incident / nops_notify_approval build the payloads in
 * the caller's thread, write one spool file per message and destination (spool_dir/<id>.msg,
 * fsync'ed, carrying an HMAC under the engine key's subkey "notify"), put the message on a
 * bounded in-memory queue and return: the network is only ever touched by the notifier's one
 * background thread. That thread posts each destination's messages in order (a destination whose
 * head message waits for a retry holds back only its own later messages), retries failures with
 * exponential backoff up to max_retries, and deletes the spool file once a message is delivered
 * or given up (counted failed and logged). A new notifier re-queues the spool it finds (kill -9
 * loses nothing that was accepted); a spool file whose MAC does not verify is never sent: it is
 * moved to spool_dir/rejected/, logged and counted.
 *
 * Alertmanager forgets a firing alert that is not sent again within its resolve_timeout, so the
 * notifier also keeps the alerts it has fired and not yet resolved (the "active" set, persisted in
 * spool_dir/active/ with the same MAC) and posts them all again every resend_s.
 *
 * A full queue refuses the newest message (NOPS_FULL, counted `dropped`, logged rate-limited):
 * what is queued is older and already on disk; the Alertmanager state is still kept in the active
 * set, so the next resend carries the newest firing state anyway.
 *
 * Thread contract: every function may be called from any number of threads at once, except
 * nops_notifier_destroy, which must be the last call.
 */
#ifndef NOPS_NOTIFY_H
#define NOPS_NOTIFY_H

#include "core/core.h"

#include <jansson.h>

/** [notify] settings (the config table in notify/config.c is the reference). */
typedef struct nops_notify_params {
    char alertmanager_url[512];    /**< e.g. http://127.0.0.1:9093; "" = off */
    char webhook_urls[2048];       /**< comma-separated http(s) URLs; "" = off */
    char webhook_format[16];       /**< "json" (default) | "slack" */
    char webhook_secret_file[512]; /**< HMAC-SHA256 key for X-NeuralOps-Signature; "" = unsigned */
    char alertmanager_severities[64]; /**< severities posted to Alertmanager ("warning,critical") */
    char webhook_severities[64];      /**< severities posted to the webhooks ("critical") */
    char external_url[512];           /**< base of generatorURL / links ("" = none) */
    int64_t timeout_ms;               /**< one HTTP request, connect included */
    int64_t max_retries;              /**< retries after the first attempt, then given up */
    int64_t resend_s;                 /**< period of re-posting the firing alerts */
    int64_t backoff_ms;               /**< first retry delay; doubles per retry */
    int64_t backoff_max_ms;           /**< cap of the retry delay */
    int64_t queue_size;               /**< messages queued at most (spooled and not yet done) */
    int64_t shutdown_ms;              /**< how long destroy keeps delivering what is due */
} nops_notify_params;

extern const nops_cfg_section nops_notify_cfg_section;

/** Write the table's defaults into *p (for callers without a nops_cfg, e.g. tests). */
void nops_notify_params_default(nops_notify_params *p);

typedef struct nops_notifier nops_notifier;

/**
 * Start a notifier: check the settings, read the webhook secret, create spool_dir (and its
 * active/ and rejected/ subdirectories), re-queue the spool left by an earlier process, load
 * the active alerts and start the delivery thread. With neither alertmanager_url nor
 * webhook_urls set it does nothing and needs neither `key` nor `spool_dir`: every notify call
 * then returns NOPS_OK at once.
 *
 * @param key the engine's key (borrowed; must outlive the notifier): MACs on the spool.
 * @param spool_dir where messages wait (created 0750); required when anything is configured.
 * @return the notifier, or NULL with a sentence in errstr (bad setting, unreadable or
 *         too-open secret file, spool not writable, out of memory).
 */
nops_notifier *nops_notifier_new(const nops_notify_params *p, const nops_secret *key,
                                 const char *spool_dir, char *errstr, size_t errstr_size);

/**
 * Change the routes of a running notifier (a config reload): which incident severities and
 * approval levels go to Alertmanager and to the webhooks (the alertmanager_severities and
 * webhook_severities settings). Calls after it route by the new lists; alerts already firing
 * are followed to their end as before. NOPS_CONFIG with a sentence for a list that is not
 * valid (nothing changes). Thread-safe (waits for a notify call in progress).
 */
nops_err nops_notifier_set_routes(nops_notifier *n, const char *alertmanager_severities,
                                  const char *webhook_severities, char *errstr,
                                  size_t errstr_size);

/**
 * Stop: keep delivering what is due for at most shutdown_ms, then stop the thread and free.
 * Whatever is not delivered stays in the spool for the next notifier. NULL is a no-op.
 */
void nops_notifier_destroy(nops_notifier *n);

/**
 * Notify about an incident (copied; not kept): while inc->status is open, as a firing alert
 * (labels alertname="NeuralOpsIncident", incident_id, severity and the incident's common
 * labels) and the webhook event "incident.firing"; when resolved, the alert with endsAt = now
 * and "incident.resolved". Call it on open and on every significant change (severity up,
 * labels changed): a change of the alert's labels also resolves the alert with the old labels.
 * Routed by severity (alertmanager_severities, webhook_severities); a resolution always goes to
 * Alertmanager when its alert was fired.
 *
 * Never waits for the network (it writes and fsyncs the spool files).
 * @return NOPS_OK (also when nothing is routed), NOPS_FULL (queue full: counted dropped),
 *         NOPS_IO (spool not writable: logged, counted failed), NOPS_INVAL (bad id).
 */
nops_err nops_notify_incident(nops_notifier *n, const nops_incident *inc);

/**
 * Notify about an orchestration waiting for (or done with) an approval. `record` is the
 * orchestrator's JSON record (read: id, state, playbook_id, context.incident_id or
 * incident.id, context.labels, policy.action/escalation; absent fields are left out);
 * `event` is "pending", "escalated" or "done"; `level` is info|warning|critical|emergency (the
 * escalation level; NULL, "" or "none" count as warning) and routes like a severity, except that
 * emergency also goes where critical goes. Alertmanager gets alertname
 * "NeuralOpsApprovalPending" firing for pending/escalated and resolved for done; webhooks get
 * "approval.<event>". Same return values as nops_notify_incident.
 */
nops_err nops_notify_approval(nops_notifier *n, const json_t *record, const char *event,
                              const char *level);

/** What a notifier did since it started (for /metrics). Counters unless marked gauge. */
typedef struct nops_notify_stats {
    uint64_t queued;        /**< messages accepted (spooled and queued), re-queued spool included */
    uint64_t delivered;     /**< messages a destination answered 2xx to */
    uint64_t retried;       /**< attempts that failed and were scheduled again */
    uint64_t failed;        /**< messages given up (max_retries, a 4xx answer, no spool) */
    uint64_t dropped;       /**< messages refused because the queue was full */
    uint64_t spooled;       /**< spool files written */
    uint64_t resent;        /**< firing alerts re-posted to Alertmanager (per alert) */
    uint64_t resend_failed; /**< periodic re-posts that failed (retried at the next period) */
    uint64_t rejected;      /**< spool or active files whose MAC did not verify (moved aside) */
    uint64_t pending;       /**< gauge: messages queued now */
    uint64_t active;        /**< gauge: firing alerts kept for re-posting */
} nops_notify_stats;

/** A consistent snapshot of the counters (all zero for a notifier that does nothing). */
void nops_notifier_get_stats(nops_notifier *n, nops_notify_stats *st);

#endif /* NOPS_NOTIFY_H */
