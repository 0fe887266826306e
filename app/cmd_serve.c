/*
 * cmd_serve.c — `neuralops serve -c FILE`: the streaming engine against real brokers.
 */
#include "app/cli.h"

#include <string.h>
#include <time.h>

nops_pipeline *app_start_pipeline(app_ctx *ctx, nops_sinks **sinks_out, const char *cmd)
{
    char err[1024];
    nops_sinks *sinks = nops_sinks_new();
    nops_err e = sinks ? NOPS_OK : NOPS_NOMEM;
    snprintf(err, sizeof err, "out of memory");
    if (e == NOPS_OK && ctx->sinks.jsonl)
        e = nops_sinks_add_jsonl(sinks, ctx->storage.data_dir, 0, err, sizeof err);
    if (e == NOPS_OK && ctx->sinks.kafka_topic[0])
        e = nops_sinks_add_kafka(sinks, ctx->kafka.brokers, ctx->sinks.kafka_topic, err,
                                 sizeof err);
    if (e == NOPS_OK && ctx->sinks.postgres_dsn[0])
        e = nops_sinks_add_postgres(sinks, ctx->sinks.postgres_dsn, 0, err, sizeof err);
    if (e != NOPS_OK) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        nops_sinks_destroy(sinks);
        return NULL;
    }
    nops_pipeline *p = nops_pipeline_new(&ctx->kafka, &ctx->pipeline, &ctx->detect,
                                         &ctx->correlate, &ctx->storage, sinks, err, sizeof err);
    if (!p || nops_pipeline_start(p, err, sizeof err) != NOPS_OK) {
        fprintf(stderr, "neuralops %s: %s\n", cmd, err);
        nops_pipeline_destroy(p);
        nops_sinks_destroy(sinks);
        return NULL;
    }
    *sinks_out = sinks;
    return p;
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
               "Ctrl-C: stop consuming, flush, commit, exit 0.\n\n");
        cli_print_opts(&ctx, NULL, 0, stdout);
        status = NOPS_EXIT_OK;
        goto out;
    }
    atomic_bool *stop = app_stop_on_signals();
    nops_sinks *sinks = NULL;
    nops_pipeline *p = app_start_pipeline(&ctx, &sinks, "serve");
    if (!p) {
        status = NOPS_EXIT_FAIL;
        goto out;
    }
    uint64_t last = nops_now_ns(), last_points = 0;
    while (!atomic_load(stop)) {
        nanosleep(&(struct timespec){0, 200000000}, NULL);
        uint64_t now = nops_now_ns();
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
        last = now;
        last_points = st.points;
    }
    NOPS_INFO("serve", "stopping: flushing sinks and committing offsets");
    nops_err e = nops_pipeline_stop(p, 15000);
    nops_pipeline_destroy(p);
    nops_sinks_destroy(sinks);
    status = e == NOPS_OK ? NOPS_EXIT_OK : NOPS_EXIT_FAIL;
out:
    app_ctx_fini(&ctx);
    return status;
}
