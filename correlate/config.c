/*
 * config.c — the [correlate] settings: one table drives parsing, validation and the docs.
 */
#include "correlate/correlate_int.h"

#include <stddef.h>
#include <string.h>

#define C(f) offsetof(nops_correlate_params, f)
static const nops_cfg_entry correlate_entries[] = {
    {"window_s", NOPS_CFG_INT, C(window_s), 1, 86400, "120", NULL, NULL, 0,
     "Signals at most this many seconds apart may join one incident."},
    {"min_r", NOPS_CFG_DOUBLE, C(min_r), 0.0, 1.0, "0.8", NULL, NULL, 0,
     "Hosts of one service join one incident when their windows, as captured at detection, "
     "correlate at least this much (|Pearson r|)."},
    {"host_labels", NOPS_CFG_STRING, C(host_labels), 0, 128, "host,hostname,instance", NULL,
     NULL, 0, "Comma-separated labels naming a series' host, first present wins (at most 4); "
     "signals of one host join one incident. A series with none is a host of its own."},
    {"service_labels", NOPS_CFG_STRING, C(service_labels), 0, 128, "service,job,app", NULL,
     NULL, 0, "Comma-separated labels naming a series' service, first present wins (at most 4); "
     "only hosts of one service can share an incident."},
    {"resolve_s", NOPS_CFG_INT, C(resolve_s), 0, 86400 * 7, "300", NULL, NULL, 0,
     "An incident resolves once all its series have been normal this many seconds."},
    {"reopen_s", NOPS_CFG_INT, C(reopen_s), 0, 86400, "1800", NULL, NULL, 0,
     "A resolved one-host incident whose host signals again within this many seconds of "
     "resolving reopens (same id) instead of paging with a new one; 0: resolved is final."},
    {"strong_score", NOPS_CFG_DOUBLE, C(strong_score), 0.0, 1.0, "0.9", NULL, NULL, 0,
     "A signal at least this strong (score; 0.9 is about 1.8x the detector threshold) makes "
     "its incident at least warning; weaker single-series incidents are info (not paging)."},
    {"warning_after_s", NOPS_CFG_INT, C(warning_after_s), 0, 86400 * 7, "600", NULL, NULL, 0,
     "A series whose signals span this many seconds makes its incident at least warning."},
    {"critical_after_s", NOPS_CFG_INT, C(critical_after_s), 0, 86400 * 7, "1800", NULL, NULL, 0,
     "Several series whose signals span this many seconds make their incident critical."},
    {"service_topic", NOPS_CFG_STRING, C(service_topic), 0, 256, "", NULL, NULL, 0,
     "Topic of the service stage: signals of series naming a service go there keyed by the "
     "service, and one instance of the group correlates each service, so service-wide "
     "incidents stay whole however many instances run (docs/incidents.md). Empty: "
     "<sinks.kafka_topic>.service when a Kafka signals topic is set, else in-process (one "
     "instance sees only its partitions' hosts); off: always in-process."},
};
#undef C

const nops_cfg_section nops_correlate_cfg_section = {
    "correlate",
    "Grouping of signals into incidents (host first, service-wide when hosts move together) "
    "and their severity.",
    correlate_entries,
    sizeof correlate_entries / sizeof correlate_entries[0],
    NULL,
};

void nops_correlate_defaults(nops_correlate_params *p)
{
    memset(p, 0, sizeof *p);
    nops_cfg *cfg = nops_cfg_new();
    if (cfg)
        nops_cfg_add(cfg, &nops_correlate_cfg_section, p, NULL, 0);
    nops_cfg_destroy(cfg);
}
