/*
 * cmd_serve.c — `neuralops serve -c FILE`: the streaming engine against real brokers. The
 * wiring (sinks, pipeline, store, recommender, orchestration, HTTP API) and its teardown order
 * live in engine.c; this file is the command: options, the status log, the signal-driven stop.
 */
#include "app/cli.h"
#include "app/engine.h"

#include <systemd/sd-daemon.h>
#include <string.h>
#include <time.h>

/*
 * systemd (Type=notify, deploy/neuralops.service): READY=1 once the engine is up (the API
 * listens, the consumer has subscribed), RELOADING=1 / READY=1 around a SIGHUP reload,
 * STOPPING=1 when the drain starts, WATCHDOG=1 every half WatchdogSec from the main loop, and
 * STATUS= with the periodic figures. Without NOTIFY_SOCKET (not under systemd) each is a no-op.
 */
static void notify(const char *state)
{
    int r = sd_notify(0, state);
    if (r < 0)
        NOPS_WARN("serve", "cannot notify systemd (%s): %s", state, strerror(-r));
}

int nops_cmd_serve(int argc, char **argv)
{
    app_ctx ctx;
    if (!app_ctx_init(&ctx))
        return NOPS_EXIT_FAIL;
    bool help;
    int status = NOPS_EXIT_USAGE;
    if (!cli_parse(&ctx, "serve", argc, argv, NULL, 0, NULL, NULL, &help))
        goto out;
    if (help) {
        printf("Usage: neuralops serve -c FILE [options]\n\n"
               "Consume metrics from Kafka (group kafka.group, topic kafka.topic), detect\n"
               "anomalies, correlate them into incidents and write both to the sinks\n"
               "(storage.data_dir/signals.jsonl, incidents.jsonl). Offsets are committed only\n"
               "after the sinks have made the results durable (at-least-once). SIGTERM or\n"
               "Ctrl-C: stop consuming, flush, commit, exit 0. SIGHUP: read the config again\n"
               "and apply the log level, API keys, detector thresholds, notification routes,\n"
               "playbooks and policy; a log line names changed settings that need a restart.\n"
               "Under systemd (Type=notify) it reports READY, RELOADING, STOPPING and\n"
               "WATCHDOG (deploy/neuralops.service). The HTTP API (api.listen, default\n"
               "127.0.0.1:8080; GET /openapi.json) serves analysis, ingest, signals,\n"
               "incidents and /metrics.\n\n");
        cli_print_opts(&ctx, NULL, 0, stdout);
        status = NOPS_EXIT_OK;
        goto out;
    }
    if (!app_actor_key_set(&ctx, "serve")) /* status stays: usage */
        goto out;
    status = NOPS_EXIT_FAIL;
    if (!app_data_dir(&ctx, "serve")) /* made 0750 before any module writes there */
        goto out;
    atomic_bool *stop = app_stop_on_signals();
    atomic_bool *reload = app_reload_on_sighup(); /* before the start: a HUP then is no death */
    app_engine eng;
    if (!app_engine_start(&ctx, &eng, "serve"))
        goto out;
    notify("READY=1\nSTATUS=consuming");
    uint64_t wd_usec = 0, wd_last = 0;
    if (sd_watchdog_enabled(0, &wd_usec) <= 0)
        wd_usec = 0;
    nops_pipeline *p = eng.pipeline;
    uint64_t last = nops_now_ns(), last_points = 0;
    while (!atomic_load(stop)) {
        nanosleep(&(struct timespec){0, 200000000}, NULL);
        uint64_t now = nops_now_ns();
        if (wd_usec && now - wd_last >= wd_usec * 500) { /* half the interval, in ns */
            notify("WATCHDOG=1");
            wd_last = now;
        }
        if (atomic_exchange(reload, false)) {
            notify("RELOADING=1");
            app_engine_reload(&ctx, &eng);
            notify("READY=1");
        }
        if (now - last < 10000000000ull)
            continue;
        nops_pipeline_stats st;
        nops_pipeline_get_stats(p, &st);
        NOPS_INFO("serve",
                  "%.0f points/s, %llu series, %llu signals, %llu incidents open, lag %lld, "
                  "%u partitions%s",
                  (double)(st.points - last_points) * 1e9 / (double)(now - last),
                  (unsigned long long)st.series, (unsigned long long)st.signals,
                  (unsigned long long)st.incidents_open, (long long)st.lag, st.partitions,
                  st.paused ? ", PAUSED (sink down)" : "");
        sd_notifyf(0, "STATUS=%.0f points/s, %llu series, lag %lld%s",
                   (double)(st.points - last_points) * 1e9 / (double)(now - last),
                   (unsigned long long)st.series, (long long)st.lag,
                   st.paused ? ", PAUSED (sink down)" : "");
        last = now;
        last_points = st.points;
    }
    notify("STOPPING=1\nSTATUS=draining: flushing sinks and committing offsets");
    NOPS_INFO("serve", "stopping: flushing sinks and committing offsets");
    nops_err e = app_engine_stop(&eng);
    status = e == NOPS_OK ? NOPS_EXIT_OK : NOPS_EXIT_FAIL;
out:
    app_ctx_fini(&ctx);
    return status;
}
