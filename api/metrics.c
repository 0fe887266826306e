/*
 * metrics.c — GET /metrics: every engine counter, gauge and latency histogram in the Prometheus
 * text exposition format (version 0.0.4), named neuralops_*, each with HELP and TYPE, counters
 * ending in _total and durations in seconds, so `promtool check metrics` finds nothing to say.
 */
#include "api/api_int.h"

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef NOPS_COMMIT
#define NOPS_COMMIT "unknown" /* api/CMakeLists.txt sets it from git at configure time */
#endif
#ifndef NOPS_COMPILER
#define NOPS_COMPILER "unknown"
#endif

static void out(response *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out(response *r, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        nops__api_put(r, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void head(response *r, const char *name, const char *type, const char *help)
{
    out(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(response *r, const char *name, const char *type, const char *help, double v)
{
    head(r, name, type, help);
    out(r, "%s %.17g\n", name, v);
}

/* The plain uint64 counters and gauges of nops_pipeline_stats, one row each. */
typedef struct stat_row {
    const char *name, *type, *help;
    size_t off;
} stat_row;

#define ROW(n, t, h, f) {n, t, h, offsetof(nops_pipeline_stats, f)}
static const stat_row pipeline_rows[] = {
    ROW("neuralops_ingest_messages_total", "counter", "Kafka messages processed.", messages),
    ROW("neuralops_ingest_points_total", "counter", "Metric points run through the detectors.",
        points),
    ROW("neuralops_dlq_messages_total", "counter", "Messages sent to the dead-letter topic.", dlq),
    ROW("neuralops_dlq_lost_total", "counter",
        "Dead-letter copies refused by the producer or not delivered; from the first, offsets "
        "are no longer committed (restart to replay).", dlq_lost),
    ROW("neuralops_signals_uncorrelated_total", "counter",
        "Signals in no incident: the correlator held its limit of open incidents already "
        "(MAX_INCIDENTS, 1024, fixed at compile time).",
        uncorrelated),
    ROW("neuralops_signals_key_unsplit_total", "counter",
        "Signals whose series key could not be split into labels (written with the whole key "
        "as the metric name, no labels).", key_unsplit),
    ROW("neuralops_signals_total", "counter", "Signals raised (one per anomalous excursion).",
        signals),
    ROW("neuralops_anomaly_total", "counter", "Anomalous points seen by the detectors.",
        anomalies),
    ROW("neuralops_incidents_opened_total", "counter", "Incidents opened.", incidents_opened),
    ROW("neuralops_incidents_resolved_total", "counter", "Incidents resolved.",
        incidents_resolved),
    ROW("neuralops_incidents_open", "gauge", "Incidents open now.", incidents_open),
    ROW("neuralops_series", "gauge", "Series tracked by the detectors now.", series),
    ROW("neuralops_kafka_commits_total", "counter", "Successful offset commits.", commits),
    ROW("neuralops_kafka_commit_failures_total", "counter", "Failed offset commits (retried).",
        commit_failures),
    ROW("neuralops_sink_flush_failures_total", "counter",
        "Failed sink flushes seen by the pipeline (partitions paused and retried).",
        flush_failures),
    ROW("neuralops_state_snapshots_total", "counter", "Partition state snapshots written.",
        snapshots),
    ROW("neuralops_restored_series_total", "counter",
        "Series restored from snapshots on partition assignment.", restored_series),
    ROW("neuralops_state_snapshots_rejected_total", "counter",
        "State snapshots refused on assignment (damaged, foreign or not keyed with the engine "
        "key); the partition started cold.", snapshots_rejected),
    ROW("neuralops_ingest_stale_total", "counter",
        "NaN samples skipped on the Kafka path (Prometheus staleness markers): not rejected, "
        "not dead-lettered.", stale),
    ROW("neuralops_state_snapshot_series_skipped_total", "counter",
        "Series left out of a state snapshot (record did not fit, or no memory): cold after a "
        "restart.", snapshot_series_skipped),
    ROW("neuralops_signal_contexts_dropped_total", "counter",
        "Signal contexts (the window a signal was judged on, kept for GET /series) replaced by "
        "newer ones or not kept for want of memory.", signal_contexts_dropped),
};
#undef ROW

static void pipeline_metrics(response *r, nops_pipeline *p)
{
    nops_pipeline_stats st;
    nops_pipeline_get_stats(p, &st);
    for (size_t i = 0; i < sizeof pipeline_rows / sizeof pipeline_rows[0]; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&st + pipeline_rows[i].off, sizeof v);
        one(r, pipeline_rows[i].name, pipeline_rows[i].type, pipeline_rows[i].help, (double)v);
    }
    head(r, "neuralops_ingest_rejected_total", "counter",
         "Rejected lines or JSON objects, by reason (the message went to the dead-letter topic).");
    for (int i = 1; i < NOPS_REJECT_COUNT; i++)
        out(r, "neuralops_ingest_rejected_total{reason=\"%s\"} %llu\n",
            nops_ingest_reject_name((nops_reject)i), (unsigned long long)st.rejected[i]);
    one(r, "neuralops_partitions_assigned", "gauge", "Kafka partitions assigned to this instance.",
        (double)st.partitions);
    one(r, "neuralops_consumer_paused", "gauge", "1 while consumption is paused on a sink failure.",
        st.paused ? 1 : 0);
    one(r, "neuralops_worker_cpu_seconds_total", "counter",
        "CPU time of the pipeline's worker threads (parse, series identity, detection, "
        "emission), as of each worker's last turn.", (double)st.worker_cpu_ns / 1e9);
    one(r, "neuralops_pipeline_queued_bytes", "gauge",
        "Message bytes waiting in the workers' queues (each bounded by pipeline.queue_mb).",
        (double)st.queued_bytes);
    one(r, "neuralops_consumer_lag_messages", "gauge",
        "Messages behind the high watermark, summed over the assigned partitions.",
        (double)(st.lag > 0 ? st.lag : 0));
    /* ingest-to-signal latency: bucket i of the pipeline counts latencies below 2^i µs */
    head(r, "neuralops_ingest_to_signal_seconds", "histogram",
         "Time from a point's timestamp to its signal leaving the detectors.");
    uint64_t cum = 0;
    double sum = 0;
    for (int i = 0; i < 31; i++) {
        cum += st.latency_us_log2[i];
        sum += (double)st.latency_us_log2[i] * (i ? 0.75 * (double)(1ull << i) : 0.5) / 1e6;
        if (i >= 6 && i % 2 == 0) /* 64 µs .. 1 s in powers of four: enough resolution */
            out(r, "neuralops_ingest_to_signal_seconds_bucket{le=\"%.6g\"} %llu\n",
                (double)(1ull << i) / 1e6, (unsigned long long)cum);
    }
    cum += st.latency_us_log2[31];
    out(r, "neuralops_ingest_to_signal_seconds_bucket{le=\"+Inf\"} %llu\n",
        (unsigned long long)cum);
    out(r, "neuralops_ingest_to_signal_seconds_sum %.6f\n", sum);
    out(r, "neuralops_ingest_to_signal_seconds_count %llu\n", (unsigned long long)cum);
}

static void sink_metrics(response *r, nops_sinks *s)
{
    nops_sinks_stats st;
    nops_sinks_get_stats(s, &st);
    head(r, "neuralops_sink_records_total", "counter",
         "Records taken by the sinks (written, or kept for the next flush), by kind.");
    out(r, "neuralops_sink_records_total{kind=\"signal\"} %llu\n",
        (unsigned long long)st.signals);
    out(r, "neuralops_sink_records_total{kind=\"incident\"} %llu\n",
        (unsigned long long)st.incidents);
    one(r, "neuralops_sink_flushes_total", "counter", "Successful sink flushes.",
        (double)st.flushes);
    one(r, "neuralops_sink_refused_total", "counter",
        "Records a sink refused; kept and written again at the next flush (offsets wait).",
        (double)st.refused);
    one(r, "neuralops_sink_held_records", "gauge",
        "Refused records kept for the next flush now.", (double)st.held);
    one(r, "neuralops_sink_dropped_total", "counter",
        "Records neither written nor kept (each logged); from the first, flushes fail and "
        "offsets stay uncommitted until a restart replays them.", (double)st.dropped);
}

static void http_metrics_out(response *r, nops_api *api)
{
    head(r, "neuralops_http_requests_total", "counter", "HTTP requests answered, by route and "
                                                        "status code (0 = closed unanswered).");
    for (int rt = 0; rt < ROUTE_COUNT; rt++)
        for (int c = 0; c < NOPS_HTTP_CODES; c++) {
            uint64_t n = atomic_load(&api->m.requests[rt][c]);
            if (n)
                out(r, "neuralops_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                    nops__route_paths[rt], nops__http_codes[c], (unsigned long long)n);
        }
    head(r, "neuralops_http_request_duration_seconds", "histogram",
         "HTTP request duration from the first byte read to the response queued.");
    for (int rt = 0; rt < ROUTE_COUNT; rt++) {
        uint64_t cum = 0;
        for (int b = 0; b <= NOPS_HTTP_BUCKETS; b++) {
            cum += atomic_load(&api->m.latency[rt][b]);
            if (b < NOPS_HTTP_BUCKETS)
                out(r, "neuralops_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                       "%llu\n", nops__route_paths[rt], nops__http_buckets[b],
                    (unsigned long long)cum);
            else
                out(r, "neuralops_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"}"
                       " %llu\n", nops__route_paths[rt], (unsigned long long)cum);
        }
        out(r, "neuralops_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
            nops__route_paths[rt], (double)atomic_load(&api->m.latency_sum_us[rt]) / 1e6);
        out(r, "neuralops_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
            nops__route_paths[rt], (unsigned long long)cum);
    }
    one(r, "neuralops_http_rate_limited_total", "counter", "Requests refused with 429.",
        (double)atomic_load(&api->m.rate_limited));
    one(r, "neuralops_http_auth_failures_total", "counter", "Requests refused with 401.",
        (double)atomic_load(&api->m.auth_failures));
    one(r, "neuralops_http_auth_blocked_total", "counter",
        "Requests refused with 429 because their client address used up its failed "
        "authentications (api.auth_failures_per_min).",
        (double)atomic_load(&api->m.auth_blocked));
    one(r, "neuralops_http_slow_requests_cut_total", "counter",
        "Connections closed because a whole request did not arrive within "
        "api.request_timeout_s.",
        (double)atomic_load(&api->m.slow_cut));
    pthread_mutex_lock(&api->conns_mu);
    size_t conns = api->n_conns;
    pthread_mutex_unlock(&api->conns_mu);
    one(r, "neuralops_http_connections", "gauge", "HTTP connections open now.", (double)conns);
    one(r, "neuralops_api_ingest_points_total", "counter",
        "Points sent by POST /ingest, /api/v2/write and /api/v1/write and acknowledged by "
        "Kafka.",
        (double)atomic_load(&api->m.ingest_points));
    one(r, "neuralops_api_ingest_waiting", "gauge",
        "POST /ingest requests waiting for Kafka's acknowledgements now.",
        (double)atomic_load(&api->m.ingest_waiting));
    one(r, "neuralops_api_ingest_rejected_total", "counter",
        "Lines, objects or samples of POST /ingest, /api/v2/write and /api/v1/write bodies "
        "refused.", (double)atomic_load(&api->m.ingest_rejected));
    one(r, "neuralops_api_ingest_stale_total", "counter",
        "NaN samples (Prometheus staleness markers) skipped by POST /ingest and /api/v1/write.",
        (double)atomic_load(&api->m.ingest_stale));
}

/* The remediation flow: steps by outcome, refusals, lost audit entries, steps running. */
static void orchestration_metrics(response *r, nops_orchestrator *o)
{
    nops_orch_stats st;
    nops_orch_get_stats(o, &st);
    static const struct {
        const char *step, *outcome;
        size_t off;
    } rows[] = {
        {"suggest", "suggested", offsetof(nops_orch_stats, suggested)},
        {"suggest", "denied", offsetof(nops_orch_stats, denied)},
        {"dry-run", "ok", offsetof(nops_orch_stats, dry_run_ok)},
        {"dry-run", "failed", offsetof(nops_orch_stats, dry_run_failed)},
        {"approve", "approved", offsetof(nops_orch_stats, approved)},
        {"execute", "executed", offsetof(nops_orch_stats, executed)},
        {"execute", "failed", offsetof(nops_orch_stats, failed)},
        {"execute", "interrupted", offsetof(nops_orch_stats, interrupted)},
    };
    head(r, "neuralops_orchestration_steps_total", "counter",
         "Steps of the remediation flow taken, by step and outcome.");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        out(r, "neuralops_orchestration_steps_total{step=\"%s\",outcome=\"%s\"} %llu\n",
            rows[i].step, rows[i].outcome,
            (unsigned long long)*(const uint64_t *)((const char *)&st + rows[i].off));
    one(r, "neuralops_orchestration_refusals_total", "counter",
        "Approvals and executions refused (role, approver is requester, plan or manifest "
        "changed).",
        (double)st.refused);
    one(r, "neuralops_audit_failures_total", "counter",
        "Audit entries the trail refused (the step was refused, or the entry was lost).",
        (double)st.audit_failures);
    one(r, "neuralops_orchestration_running", "gauge",
        "Dry-runs and executions claimed and not yet finished.", (double)st.running);
    one(r, "neuralops_orchestration_damaged_records", "gauge",
        "Orchestration records found damaged at start (listed with state damaged, never run).",
        (double)st.damaged);
    head(r, "neuralops_automation_total", "counter",
         "Automatic executions started, and held by a guard rail (paused, budget, "
         "failed_before).");
    out(r, "neuralops_automation_total{outcome=\"started\"} %llu\n",
        (unsigned long long)st.auto_started);
    out(r, "neuralops_automation_total{outcome=\"held\",guard=\"paused\"} %llu\n",
        (unsigned long long)st.auto_held_paused);
    out(r, "neuralops_automation_total{outcome=\"held\",guard=\"budget\"} %llu\n",
        (unsigned long long)st.auto_held_budget);
    out(r, "neuralops_automation_total{outcome=\"held\",guard=\"failed_before\"} %llu\n",
        (unsigned long long)st.auto_held_failed_before);
    one(r, "neuralops_orchestration_escalations_total", "counter",
        "Escalation levels raised because a run waited too long for an approval.",
        (double)st.escalations);
    one(r, "neuralops_automation_tampered_total", "counter",
        "Automation state (pause, ledger) read back that did not verify under the engine key.",
        (double)st.automation_tampered);
}

/* The learning loop (recommend.h): cycles, runs appended, the generation it wrote. */
static void learn_metrics(response *r, nops_learner *l)
{
    nops_learn_stats st;
    nops_learner_get_stats(l, &st);
    one(r, "neuralops_learn_cycles_total", "counter",
        "Cycles of the learning loop (new workflow runs appended to the history index).",
        (double)st.cycles);
    one(r, "neuralops_learn_failures_total", "counter",
        "Learning cycles that failed (a source unreadable, a commit refused); the log says why.",
        (double)st.failed);
    one(r, "neuralops_learn_runs_appended_total", "counter",
        "Workflow runs the learning loop added to the history index.", (double)st.appended);
    one(r, "neuralops_learn_runs_skipped_total", "counter",
        "Workflow rows the learning loop could not use (logged, rate-limited).",
        (double)st.skipped);
    one(r, "neuralops_learn_generation", "gauge",
        "Index generation the learning loop wrote last (0 = none yet).", (double)st.generation);
    one(r, "neuralops_learn_last_success_timestamp_seconds", "gauge",
        "Wall clock of the last learning cycle without error (0 = none yet).",
        (double)st.last_ok_ns / 1e9);
}

/* The closed loop: what it did on its own, and time to remediation per stage. */
static void loop_metrics(response *r, nops_loop *l)
{
    nops_loop_stats st;
    nops_loop_get_stats(l, &st);
    static const struct {
        const char *name, *help;
        size_t off;
    } rows[] = {
        {"neuralops_loop_recommended_total", "Incidents that got recommendations attached.",
         offsetof(nops_loop_stats, recommended)},
        {"neuralops_loop_no_recommendation_total", "Incidents the index had no similar run for.",
         offsetof(nops_loop_stats, no_recommendation)},
        {"neuralops_loop_recommend_errors_total", "Recommendations that failed (no index, "
         "nothing to embed).", offsetof(nops_loop_stats, reco_errors)},
        {"neuralops_loop_suggestions_total", "Suggestions the engine made on its own.",
         offsetof(nops_loop_stats, suggested)},
        {"neuralops_loop_suggest_errors_total", "Suggestions or dry-runs the engine could not "
         "make (logged).", offsetof(nops_loop_stats, suggest_errors)},
        {"neuralops_loop_auto_executions_total", "Executions started without a human.",
         offsetof(nops_loop_stats, auto_started)},
        {"neuralops_loop_auto_held_total", "Automatic executions a guard rail held back (kill "
         "switch, budget, a failed earlier run).", offsetof(nops_loop_stats, auto_held)},
        {"neuralops_loop_approvals_pending_total", "Pending-approval notifications sent.",
         offsetof(nops_loop_stats, approvals_pending)},
        {"neuralops_loop_escalations_total", "Escalations raised after their timeout.",
         offsetof(nops_loop_stats, escalations)},
        {"neuralops_loop_dropped_total", "Incidents the loop's full queue dropped (they reached "
         "the sinks, but were not notified or suggested).", offsetof(nops_loop_stats, dropped)},
        {"neuralops_loop_audit_failures_total", "Automatic recommendations the audit trail "
         "refused.", offsetof(nops_loop_stats, audit_failures)},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        one(r, rows[i].name, "counter", rows[i].help,
            (double)*(const uint64_t *)((const char *)&st + rows[i].off));
    one(r, "neuralops_loop_watching", "gauge", "Orchestrations the engine started and follows.",
        (double)st.watching);
    head(r, "neuralops_time_to_remediation_seconds", "histogram",
         "Seconds from an incident's open to its first recommendation, its suggestion, its "
         "approval (or automatic start) and its execution's end (label stage).");
    for (int s = 0; s < NOPS_LOOP_STAGES; s++) {
        const char *name = nops_loop_stage_name((nops_loop_stage)s);
        const nops_loop_hist *h = &st.stage[s];
        for (int b = 0; b < NOPS_LOOP_BUCKETS; b++)
            out(r, "neuralops_time_to_remediation_seconds_bucket{stage=\"%s\",le=\"%g\"} "
                   "%llu\n", name, nops_loop_bucket_le[b], (unsigned long long)h->le[b]);
        out(r, "neuralops_time_to_remediation_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n",
            name, (unsigned long long)h->count);
        out(r, "neuralops_time_to_remediation_seconds_sum{stage=\"%s\"} %.6f\n", name, h->sum);
        out(r, "neuralops_time_to_remediation_seconds_count{stage=\"%s\"} %llu\n", name,
            (unsigned long long)h->count);
    }
}

/*
 * The process_* families of the Prometheus client libraries (client_golang's process collector:
 * same names, types, units and sources), read from /proc/self at each scrape — a few small
 * reads on the HTTP thread, never on a data path. A value that cannot be read is left out
 * rather than reported as 0, so an alert on it does not fire on a read error.
 */
typedef struct proc_sample {
    double start_s;   /* process start, seconds since the epoch; < 0 unknown */
    double cpu_s;     /* user + system CPU seconds; < 0 unknown */
    double rss_bytes; /* resident set; < 0 unknown */
    double vm_bytes;  /* virtual memory size; < 0 unknown */
    double open_fds;  /* descriptors open; < 0 unknown */
    double max_fds;   /* RLIMIT_NOFILE's soft limit; < 0 unknown */
} proc_sample;

/* The boot time ("btime" of /proc/stat), seconds since the epoch; -1 if unreadable. */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    char line[256];
    double bt = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

/* Fields 14, 15, 22, 23, 24 of /proc/self/stat (proc(5)); false if unreadable. */
static bool self_stat(proc_sample *ps)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name (field 2) may hold spaces and ')' */
    if (!p)
        return false;
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long rss = 0;
    /* from field 3 (state) on */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                      "%*d %*d %llu %llu %lld", &utime, &stime, &start, &vsize, &rss) != 5)
        return false;
    const double hz = (double)sysconf(_SC_CLK_TCK);
    const double bt = boot_time();
    ps->cpu_s = hz > 0 ? (double)(utime + stime) / hz : -1;
    ps->start_s = hz > 0 && bt > 0 ? bt + (double)start / hz : -1;
    ps->vm_bytes = (double)vsize;
    ps->rss_bytes = (double)rss * (double)sysconf(_SC_PAGESIZE);
    return true;
}

static proc_sample proc_read(void)
{
    proc_sample ps = {-1, -1, -1, -1, -1, -1};
    self_stat(&ps);
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long count = 0;
        for (struct dirent *de; (de = readdir(d));)
            count += de->d_name[0] != '.';
        ps.open_fds = (double)(count - 1); /* not the descriptor of the listing itself */
        closedir(d);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        ps.max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
    return ps;
}

static void process_metrics(response *r)
{
    const proc_sample ps = proc_read();
    const struct {
        const char *name, *type, *help;
        double v;
    } rows[] = {
        {"process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.", ps.start_s},
        {"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
         ps.cpu_s},
        {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         ps.rss_bytes},
        {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", ps.vm_bytes},
        {"process_open_fds", "gauge", "Number of open file descriptors.", ps.open_fds},
        {"process_max_fds", "gauge", "Maximum number of open file descriptors.", ps.max_fds},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].v >= 0)
            one(r, rows[i].name, rows[i].type, rows[i].help, rows[i].v);
}

/* A label value as the exposition format wants it: \\, \" and \n escaped. */
static void label_value(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; *src && o + 3 < cap; src++) {
        if (*src == '\\' || *src == '"' || *src == '\n') {
            dst[o++] = '\\';
            dst[o++] = *src == '\n' ? 'n' : *src;
        } else {
            dst[o++] = *src;
        }
    }
    dst[o] = '\0';
}

void nops__api_metrics(nops_api *api, response *r)
{
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    char ver[64], commit[64], cc[128];
    label_value(ver, sizeof ver, NOPS_VERSION);
    label_value(commit, sizeof commit, NOPS_COMMIT);
    label_value(cc, sizeof cc, NOPS_COMPILER);
    head(r, "neuralops_build_info", "gauge",
         "Build information (version, git commit, compiler); the value is always 1.");
    out(r, "neuralops_build_info{version=\"%s\",commit=\"%s\",compiler=\"%s\"} 1\n", ver, commit,
        cc);
    process_metrics(r);
    one(r, "neuralops_uptime_seconds", "gauge",
        "Seconds since the API started (kept for existing dashboards; prefer "
        "time() - process_start_time_seconds).",
        (double)(nops_now_ns() - api->started_ns) / 1e9);
    one(r, "neuralops_memory_bytes", "gauge", "Bytes held through the engine's allocator.",
        (double)nops_alloc_bytes_in_use());
    size_t ns = 0, ni = 0;
    nops_store_counts(api->d.store, &ns, &ni);
    head(r, "neuralops_api_store_records", "gauge",
         "Records the API holds in memory for GET /signals and GET /incidents.");
    out(r, "neuralops_api_store_records{kind=\"signal\"} %zu\n", ns);
    out(r, "neuralops_api_store_records{kind=\"incident\"} %zu\n", ni);
    one(r, "neuralops_audit_integrity_failures_total", "counter",
        "Audit trail integrity problems: starts refused (cut short, rolled back, rewritten, "
        "diverged from PostgreSQL) and head records that could not be rewritten.",
        (double)nops_audit_integrity_failures());
    if (api->d.pipeline)
        pipeline_metrics(r, api->d.pipeline);
    if (api->d.sinks)
        sink_metrics(r, api->d.sinks);
    if (api->d.orchestrator)
        orchestration_metrics(r, api->d.orchestrator);
    if (api->d.loop)
        loop_metrics(r, api->d.loop);
    if (api->d.learner)
        learn_metrics(r, api->d.learner);
    http_metrics_out(r, api);
    if (!r->body.b)
        nops__api_error(r, 500, "out of memory");
}
