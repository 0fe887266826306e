/*
 * config.c — the [notify] table, its cross-field checks and the small parsers behind them
 * (severity lists, the webhook URL list). Everything is off by default: no URL, no traffic.
 */
#include "notify/notify_int.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define OFF(f) offsetof(nops_notify_params, f)
#define SZ(f) sizeof(((nops_notify_params *)0)->f)
static const nops_cfg_entry notify_entries[] = {
    {"alertmanager_url", NOPS_CFG_STRING, OFF(alertmanager_url), 0, SZ(alertmanager_url), "", NULL,
     "alertmanager-url", 0,
     "Alertmanager base URL (e.g. http://127.0.0.1:9093): incidents and pending approvals are "
     "posted to <url>/api/v2/alerts. Empty = off."},
    {"webhook_urls", NOPS_CFG_STRING, OFF(webhook_urls), 0, SZ(webhook_urls), "", NULL, NULL,
     NOPS_CFG_SECRET,
     "Webhook URLs, comma-separated (at most 16), each sent every routed event as JSON "
     "(docs/notifications.md). Masked in dumps: such URLs often carry a token. Empty = off."},
    {"webhook_format", NOPS_CFG_STRING, OFF(webhook_format), 0, SZ(webhook_format), "json", NULL,
     NULL, 0,
     "Webhook body: json (the NeuralOps event object) or slack (a Slack-compatible "
     "{\"text\",\"blocks\"} message, for incoming-webhook URLs)."},
    {"webhook_secret_file", NOPS_CFG_STRING, OFF(webhook_secret_file), 0, SZ(webhook_secret_file),
     "", NULL, NULL, 0,
     "File holding the webhook signing secret (not readable by others): each request carries "
     "X-NeuralOps-Signature: sha256=HMAC-SHA256(secret, \"<timestamp>.<body>\"). Empty = "
     "unsigned (logged once at start)."},
    {"alertmanager_severities", NOPS_CFG_STRING, OFF(alertmanager_severities), 0,
     SZ(alertmanager_severities), "warning,critical", NULL, NULL, 0,
     "Incident severities and approval levels posted to Alertmanager, comma-separated "
     "(info, warning, critical, emergency; * = all). Emergency also goes where critical goes."},
    {"webhook_severities", NOPS_CFG_STRING, OFF(webhook_severities), 0, SZ(webhook_severities),
     "critical", NULL, NULL, 0,
     "Incident severities and approval levels posted to the webhooks (same form as "
     "alertmanager_severities)."},
    {"external_url", NOPS_CFG_STRING, OFF(external_url), 0, SZ(external_url), "", NULL, NULL, 0,
     "The engine's URL as people reach it (e.g. https://neuralops.example.com): alerts link to "
     "<url>/incidents/<id> (generatorURL) and <url>/orchestrations/<id>. Empty = no links."},
    {"timeout_ms", NOPS_CFG_INT, OFF(timeout_ms), 100, 600000, "5000", NULL, NULL, 0,
     "Longest one delivery attempt may take, connecting included."},
    {"max_retries", NOPS_CFG_INT, OFF(max_retries), 0, 1000, "8", NULL, NULL, 0,
     "Retries of a failed delivery (after the first attempt) before it is given up, counted "
     "and logged. A 4xx answer other than 408 and 429 is not retried."},
    {"backoff_ms", NOPS_CFG_INT, OFF(backoff_ms), 1, 3600000, "1000", NULL, NULL, 0,
     "Delay before the first retry; each further retry waits twice as long, up to "
     "backoff_max_ms."},
    {"backoff_max_ms", NOPS_CFG_INT, OFF(backoff_max_ms), 1, 86400000, "60000", NULL, NULL, 0,
     "Longest delay between two retries."},
    {"resend_s", NOPS_CFG_INT, OFF(resend_s), 1, 86400, "60", NULL, NULL, 0,
     "Firing alerts are posted to Alertmanager again this often (keep it well below "
     "Alertmanager's resolve_timeout, 5 minutes by default, or it resolves them itself)."},
    {"queue_size", NOPS_CFG_INT, OFF(queue_size), 1, 1000000, "4096", NULL, NULL, 0,
     "Messages waiting for delivery at most; past it the newest are refused, counted and "
     "logged (what waits is older and already on disk)."},
    {"shutdown_ms", NOPS_CFG_INT, OFF(shutdown_ms), 0, 600000, "3000", NULL, NULL, 0,
     "At shutdown, how long messages that are due are still delivered; the rest stay in the "
     "spool and are sent after the next start."},
};
#undef SZ
#undef OFF

bool nt_url_ok(const char *s)
{
    size_t skip = strncmp(s, "http://", 7) == 0 ? 7 : strncmp(s, "https://", 8) == 0 ? 8 : 0;
    if (!skip || !s[skip]) return false;
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f) return false;
    return true;
}

int nt_split_urls(const char *list, char urls[][512], int max, char *errstr, size_t errstr_size)
{
    int n = 0;
    const char *s = list;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        while (len && isspace((unsigned char)*s))
            s++, len--;
        while (len && isspace((unsigned char)s[len - 1]))
            len--;
        if (len) {
            if (n == max) {
                nops_errf(errstr, errstr_size, "notify.webhook_urls lists more than %d URLs", max);
                return -1;
            }
            if (len >= 512) {
                nops_errf(errstr, errstr_size,
                          "a URL of notify.webhook_urls is longer than 511 "
                          "bytes");
                return -1;
            }
            memcpy(urls[n], s, len);
            urls[n][len] = '\0';
            if (!nt_url_ok(urls[n])) {
                /* never echo the URL: it may carry a token */
                nops_errf(errstr, errstr_size,
                          "URL %d of notify.webhook_urls is not an http:// "
                          "or https:// URL",
                          n + 1);
                return -1;
            }
            n++;
        }
        if (!end) break;
        s = end + 1;
    }
    return n;
}

static const char *const LEVELS[] = {"info", "warning", "critical", "emergency", "*"};

/* Whether every item of a severity list is a known level. */
static bool levels_ok(const char *list, char *bad, size_t cap)
{
    const char *s = list;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        while (len && isspace((unsigned char)*s))
            s++, len--;
        while (len && isspace((unsigned char)s[len - 1]))
            len--;
        bool ok = len == 0;
        for (size_t i = 0; !ok && i < sizeof LEVELS / sizeof LEVELS[0]; i++)
            ok = strlen(LEVELS[i]) == len && strncasecmp(LEVELS[i], s, len) == 0;
        if (!ok) {
            snprintf(bad, cap, "%.*s", (int)(len < 32 ? len : 32), s);
            return false;
        }
        if (!end) break;
        s = end + 1;
    }
    return true;
}

bool nt_route(const char *list, const char *level)
{
    return nops_list_has(list, level) ||
           (strcmp(level, "emergency") == 0 && nops_list_has(list, "critical"));
}

static nops_err notify_finalize(void *base, char *errstr, size_t errstr_size)
{
    nops_notify_params *p = base;
    char urls[NT_MAX_WEBHOOKS][512], bad[40];
    if (p->alertmanager_url[0] && !nt_url_ok(p->alertmanager_url)) {
        nops_errf(errstr, errstr_size,
                  "notify.alertmanager_url must be an http:// or https:// "
                  "URL");
        return NOPS_CONFIG;
    }
    if (p->external_url[0] && !nt_url_ok(p->external_url)) {
        nops_errf(errstr, errstr_size, "notify.external_url must be an http:// or https:// URL");
        return NOPS_CONFIG;
    }
    if (nt_split_urls(p->webhook_urls, urls, NT_MAX_WEBHOOKS, errstr, errstr_size) < 0)
        return NOPS_CONFIG;
    if (strcmp(p->webhook_format, "json") != 0 && strcmp(p->webhook_format, "slack") != 0) {
        nops_errf(errstr, errstr_size,
                  "notify.webhook_format must be json or slack, not "
                  "\"%.16s\"",
                  p->webhook_format);
        return NOPS_CONFIG;
    }
    if (!levels_ok(p->alertmanager_severities, bad, sizeof bad) ||
        !levels_ok(p->webhook_severities, bad, sizeof bad)) {
        nops_errf(errstr, errstr_size,
                  "notify severities: \"%s\" is not one of info, warning, "
                  "critical, emergency, *",
                  bad);
        return NOPS_CONFIG;
    }
    if (p->backoff_max_ms < p->backoff_ms) {
        nops_errf(errstr, errstr_size,
                  "notify.backoff_max_ms (%lld) is below notify.backoff_ms "
                  "(%lld)",
                  (long long)p->backoff_max_ms, (long long)p->backoff_ms);
        return NOPS_CONFIG;
    }
    return NOPS_OK;
}

const nops_cfg_section nops_notify_cfg_section = {
    "notify",
    "Notifications (docs/notifications.md): incidents and pending approvals as Alertmanager "
    "alerts (API v2) and as JSON webhooks, signed, retried with backoff, spooled on disk until "
    "delivered. Everything is off until a URL is set.",
    notify_entries, sizeof notify_entries / sizeof notify_entries[0], notify_finalize};

void nops_notify_params_default(nops_notify_params *p)
{
    memset(p, 0, sizeof *p);
    nops_cfg *cfg = nops_cfg_new();
    if (cfg && nops_cfg_add(cfg, &nops_notify_cfg_section, p, NULL, 0) == NOPS_OK) {
        nops_cfg_destroy(cfg);
        return;
    }
    nops_cfg_destroy(cfg);
    /* no memory for the table walk: the same values, by hand */
    snprintf(p->webhook_format, sizeof p->webhook_format, "json");
    snprintf(p->alertmanager_severities, sizeof p->alertmanager_severities, "warning,critical");
    snprintf(p->webhook_severities, sizeof p->webhook_severities, "critical");
    p->timeout_ms = 5000;
    p->max_retries = 8;
    p->backoff_ms = 1000;
    p->backoff_max_ms = 60000;
    p->resend_s = 60;
    p->queue_size = 4096;
    p->shutdown_ms = 3000;
}

void nt_msg_free(nt_msg *m)
{
    if (m) {
        nops_free(m->body);
        nops_free(m);
    }
}
