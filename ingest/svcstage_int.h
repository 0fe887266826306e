/*
 * svcstage_int.h — the service stage's state, shared by its two files: svcstage.c (producing,
 * the stage thread, life cycle; the design is described there) and svcsnap.c (snapshots of the
 * stage's correlator per partition). Private to ingest/.
 *
 * Threads: as svcstage.c says; the snapshot functions run on the stage thread (and in its
 * rebalance callback, which librdkafka calls from the stage thread's poll or close).
 */
#ifndef NOPS_INGEST_SVCSTAGE_INT_H
#define NOPS_INGEST_SVCSTAGE_INT_H

#include "ingest/pipeline_int.h"

#include <jansson.h>

#define SVC_BATCH 4096          /* messages per batch at most (see Order above) */
#define SVC_STALE_NS 5000000000ll /* + 2 flush intervals: no tick this long, place (Order) */

/* A message read and not placed yet. */
typedef struct placed {
    json_t *o;              /* the message (NULL: damaged; placed as nothing) */
    int64_t ts;             /* its data time */
    const char *id;         /* signal id ("" for others) */
    int64_t offset;         /* its offset */
} placed;

/* The messages of one partition since its last batch, in offset order. */
typedef struct held {
    placed *v;              /* grown as needed, up to SVC_BATCH */
    uint32_t n, cap;
    int64_t since;          /* wall time the first of them was read */
} held;

struct svc_stage {
    nops_pipeline *p;                 /* owner */
    char topic[256];                  /* the service topic */
    char group[300];                  /* <kafka.group>.service */
    rd_kafka_t *prod;                 /* producer of signals, clears and ticks */
    rd_kafka_t *cons;                 /* the stage's consumer */
    nops_correlator *corr;            /* the stage's correlator (stage thread, and stats) */
    pthread_t thr;                    /* the stage thread */
    bool started;                     /* thr runs */
    atomic_bool stop;                 /* drain and leave */
    atomic_uint_fast64_t lost;        /* messages the producer refused or lost */
    atomic_int_fast32_t n_parts;      /* partitions of the topic (0: not known yet) */
    int64_t meta_ns;                  /* when n_parts was last asked (poller only) */
    int64_t tick_sent;                /* newest time sent as a tick (poller only) */
    atomic_bool untold;               /* signals or clears produced since the last ticks */
    bool assigned[MAX_PARTITIONS];    /* partitions the stage owns (stage thread) */
    int64_t next_off[MAX_PARTITIONS]; /* next offset to place, -1 unknown (stage thread) */
    int64_t committed[MAX_PARTITIONS];/* last committed (stage thread) */
    int64_t part_now[MAX_PARTITIONS]; /* data time per partition (stage thread) */
    int64_t read_off[MAX_PARTITIONS]; /* next offset to read (stage thread) */
    held *held;                       /* [MAX_PARTITIONS]: read, not placed (stage thread) */
    bool derived;                     /* the topic was derived, not configured */
    nops_ratelimit lost_log;          /* "service message lost" lines */
    nops_ratelimit commit_log;        /* "commit failed" lines */
    nops_ratelimit stale_log;         /* "no tick in partition" lines (stage thread) */
    nops_ratelimit damaged_log;       /* "not a stage message" lines (stage thread) */
    uint64_t n_placed;                /* messages placed (stage thread) */
    bool assigned_once;               /* an assignment (of any size) arrived (stage thread) */
};

/* Snapshot partition `part` of the stage's correlator at s->next_off[part] (the one before is
 * kept as .prev: its commit may not land). */
void nops__svc_snap_write(svc_stage *s, int32_t part);
/* The commit of the snapshot just written for `part` landed: keep it as .snap.committed. */
void nops__svc_snap_keep_committed(svc_stage *s, int32_t part);
/* Restore partition `part` from the snapshot taken at `committed`, if one verifies (its tag
 * under the engine key, or its SHA-256 without one); false: the partition starts empty. */
bool nops__svc_snap_restore(svc_stage *s, int32_t part, int64_t committed);

#endif
