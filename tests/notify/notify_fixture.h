/*
 * notify_fixture.h — what the notifier tests share (header-only, tests/notify only): an incident
 * to send, a free loopback port, a poll-until helper (no timing is asserted: conditions are
 * awaited with a generous deadline) and the spool's file count.
 */
#ifndef NOPS_TESTS_NOTIFY_FIXTURE_H
#define NOPS_TESTS_NOTIFY_FIXTURE_H

#include "notify/notify.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NF_DEADLINE_S 90 /* a loaded machine is slow; nothing here is a timing assertion */

static inline void nf_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A loopback port nobody listens on right now. */
static inline int nf_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* An incident with labels service, host, a name that is no label name and one that clashes. */
static inline nops_incident nf_incident(const char *id, nops_severity sev, bool resolved)
{
    nops_incident inc;
    memset(&inc, 0, sizeof inc);
    snprintf(inc.id, sizeof inc.id, "%s", id);
    inc.status = resolved ? NOPS_INCIDENT_RESOLVED : NOPS_INCIDENT_OPEN;
    inc.opened_ns = nops_wall_ns() - 60ll * 1000000000ll;
    inc.updated_ns = nops_wall_ns();
    inc.severity = sev;
    inc.n_signals = 3;
    inc.n_series = 2;
    inc.n_hosts = 1;
    nops_labels_add(&inc.common, "host", 4, "h1", 2);
    nops_labels_add(&inc.common, "my-label", 8, "x<&>y", 5);
    nops_labels_add(&inc.common, "service", 7, "api", 3);
    nops_labels_add(&inc.common, "severity", 8, "bogus", 5);
    snprintf(inc.labels, sizeof inc.labels, "host=\"h1\",service=\"api\"");
    snprintf(inc.summary, sizeof inc.summary, "2 series of cpu_usage on h1");
    snprintf(inc.root_cause_hint, sizeof inc.root_cause_hint, "cpu_usage{host=\"h1\"} rose first");
    return inc;
}

/* Files in dir whose names end with suffix. */
static inline int nf_count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    size_t sl = strlen(suffix);
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        n += l > sl && strcmp(de->d_name + l - sl, suffix) == 0;
    }
    if (d) closedir(d);
    return n;
}

/* The first file of dir ending with suffix, into out; false when none. */
static inline bool nf_first_file(const char *dir, const char *suffix, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t sl = strlen(suffix);
    bool found = false;
    while (!found && d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0) {
            snprintf(out, cap, "%s/%s", dir, de->d_name);
            found = true;
        }
    }
    if (d) closedir(d);
    return found;
}

/* Poll the stats until pred holds or the deadline passes; the last stats in *st. */
typedef bool (*nf_pred)(const nops_notify_stats *st, const void *arg);
static inline bool nf_wait(nops_notifier *n, nf_pred pred, const void *arg, nops_notify_stats *st)
{
    time_t end = time(NULL) + NF_DEADLINE_S;
    for (;;) {
        nops_notifier_get_stats(n, st);
        if (pred(st, arg)) return true;
        if (time(NULL) > end) return false;
        nf_sleep_ms(20);
    }
}

static inline bool nf_delivered_at_least(const nops_notify_stats *st, const void *arg)
{
    return st->delivered >= *(const uint64_t *)arg;
}

static inline bool nf_failed_at_least(const nops_notify_stats *st, const void *arg)
{
    return st->failed >= *(const uint64_t *)arg;
}

static inline bool nf_resent_at_least(const nops_notify_stats *st, const void *arg)
{
    return st->resent >= *(const uint64_t *)arg;
}

#endif
