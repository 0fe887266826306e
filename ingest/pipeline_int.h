/*
 * pipeline_int.h — internals shared by pipeline.c (queues, workers) and poller.c (consumer,
 * checkpoints, rebalance, snapshots, life cycle). Not a public header.
 */
#ifndef NOPS_PIPELINE_INT_H
#define NOPS_PIPELINE_INT_H

#include "ingest/ingest.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#define MAX_PARTITIONS 4096
#define MAX_WORKERS 64

/*
 * A bounded queue of Kafka messages from the poller to one worker, bounded twice: by count
 * (pipeline.queue_depth) and by payload bytes (pipeline.queue_mb). The byte bound is what keeps
 * a backlog's memory in check: without it a worker's queue of 65536 messages held 400 MB of
 * 100-line messages, and 64 GB of 1 MB ones, every byte of it on pages the process had to fault
 * in fresh. A message is let in whenever the queue is empty, so one larger than the byte bound
 * still passes; the bytes queued are thus below the bound plus one message.
 */
typedef struct msgq {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full, drained;
    rd_kafka_message_t **ring; /* bounded ring */
    uint32_t cap, head, len;   /* capacity, first, count */
    uint32_t busy;             /* messages taken by the worker and not finished */
    size_t cap_bytes;          /* payload bytes queued before push waits (0: no byte bound) */
    size_t bytes, bytes_peak;  /* payload bytes queued now, and the most ever queued */
    bool closed;               /* no more messages will come */
} msgq;

bool nops__msgq_init(msgq *q, uint32_t cap, size_t cap_bytes);
void nops__msgq_fini(msgq *q);
/* Push n messages, waiting while full by count or bytes (the poller's backpressure). */
void nops__msgq_push(msgq *q, rd_kafka_message_t **m, uint32_t n);
/* Wait until the worker has finished everything queued so far. */
void nops__msgq_wait_drained(msgq *q);
/* Take up to max messages, waiting up to 100 ms; 0 when none (or closed and empty). */
uint32_t nops__msgq_pop(msgq *q, rd_kafka_message_t **out, uint32_t max);
/* The worker finished n messages it took. */
void nops__msgq_done(msgq *q, uint32_t n);


typedef struct worker worker;

/* The service stage (svcstage.c): signals of series with a service go through the service
 * topic to the instance that owns their service's partition of it. */
typedef struct svc_stage svc_stage;

/*
 * "Now" for incident resolution. Point times drive it (a replay resolves like the live run),
 * but not the newest one: each worker remembers the newest point time of each of its last
 * NOPS__TS_RING messages and offers the NOPS__TS_KTH-newest of them, so a few messages stamped
 * ahead of the rest (within pipeline.max_future_s; beyond it they never get here) move nothing.
 */
#define NOPS__TS_RING 64
#define NOPS__TS_KTH 8

/*
 * A worker's turn (up to pipeline.batch messages) is parsed, detected and emitted in parts of
 * about this many message bytes (~6k line-protocol points): a full turn of 2048 messages of 100
 * lines is 200k points, and a point of its first message used to wait for all of them to be
 * parsed before its detection — tens of ms added to every signal whenever a backlog made turns
 * full, at any rate. A part this size still spreads the per-part costs over thousands of points.
 */
#define NOPS__TURN_BYTES (256u << 10)

/* A question from another thread about one series, answered by whichever worker holds it. */
typedef struct series_query {
    uint64_t id;        /* series id */
    float *out;         /* window values, oldest first */
    uint32_t cap, n;    /* room in out, values copied */
    double mean, std;   /* window statistics */
    nops_series_point *pts; /* NULL, or: the values with their times (nops_pipeline_series_view),
                           room for cap; n then counts these */
    uint32_t untimed;   /* ... the oldest values left out: no time known */
    uint32_t answered;  /* workers that have looked */
    bool found;
} series_query;

/*
 * The times of a series' points (the essay is in ingest.h, "the points of a series"): per slot
 * of a worker's detector, beside slot_part. The newest run + 1 valid points were at
 * last − k·step exactly; `seen` 0 means nothing is known (a slot new, reused after an
 * eviction, or restored from a snapshot). 24 bytes a series.
 */
typedef struct nops__slot_time {
    int64_t last;  /* the newest valid point's time */
    int64_t step;  /* the last positive step between two valid points (0 none yet) */
    uint32_t run;  /* steps in a row, up to the newest point, exactly `step` long */
    uint32_t seen; /* valid points tracked (saturating); 0: nothing known */
} nops__slot_time;

/* A valid point of the slot's series at ts (after the detectors took it). */
static inline void nops__slot_time_add(nops__slot_time *t, int64_t ts)
{
    if (t->seen) {
        const int64_t d = ts - t->last;
        if (d > 0 && d == t->step)
            t->run += t->run < 0x40000000u;
        else if (d > 0) {
            t->step = d;
            t->run = 1;
        } else
            t->run = 0; /* a repeated or older time: only the newest is known; the step stays
                           for estimates */
    }
    t->last = ts;
    t->seen += t->seen < 0x40000000u;
}

/* The times of the last n (≤ the window) values of a slot's window, oldest first, into pts
 * (values taken from `vals`); returns how many of the oldest had no time (left out: pts then
 * holds n − that many, from pts[0]). */
uint32_t nops__slot_time_fill(const nops__slot_time *t, const float *vals, uint32_t n,
                              nops_series_point *pts);

struct nops_pipeline {
    nops_kafka_params kp;        /* copies of the settings */
    nops_pipeline_params pp;
    nops_detect_params dp;
    char state_dir[600];         /* data_dir/state */
    rd_kafka_t *rk;              /* consumer */
    rd_kafka_t *dlq;             /* dead-letter producer */
    nops_sinks *sinks;           /* borrowed */
    nops_correlator *corr;       /* shared, locked inside */
    svc_stage *svc;              /* the service stage, NULL when correlate.service_topic is
                                    empty (the workers' correlator takes every signal) */
    worker *workers;             /* pp.workers of them */
    pthread_t poller;            /* the poller thread */
    bool started;                /* threads running */
    atomic_bool stopping;        /* stop requested */
    atomic_int_fast64_t processed[MAX_PARTITIONS]; /* next offset whose signals are written */
    int64_t committed[MAX_PARTITIONS];  /* last committed offset (poller only) */
    int64_t held[MAX_PARTITIONS];       /* revoked after a good flush: where its in-memory state
                                           ends, -1 none (poller only; start_partitions) */
    rd_kafka_message_t **pend;          /* messages gathered per worker (poller only) */
    uint32_t *npend;                    /* how many per worker */
    size_t *pend_bytes;                 /* their payload bytes per worker */
    bool assigned[MAX_PARTITIONS];      /* partitions we own (poller only) */
    atomic_uint n_assigned;             /* how many */
    atomic_bool paused;                 /* consumption paused on a sink failure */
    atomic_int_fast64_t latest_ts;      /* "now" for incident resolution (never decreases):
                                           a robust newest point time, see NOPS__TS_KTH */
    atomic_int_fast64_t part_ts[MAX_PARTITIONS]; /* newest point time per partition (0 none):
                                           incidents of a partition resolve no later than its
                                           own data says (nops_correlate_tick_parts) */
    atomic_int_fast64_t part_wall[MAX_PARTITIONS]; /* wall time of the newest points per
                                           partition (0 none): a partition quiet for part_idle_ns
                                           no longer holds its incidents back (a dead host whose
                                           partition carries nothing else would keep them open) */
    int64_t part_idle_ns;               /* correlate.window_s in ns: a partition that got
                                           nothing for that long is not behind, it is done */
    int64_t part_now[MAX_PARTITIONS];   /* a copy of part_ts for the tick (poller only) */
    pthread_mutex_t thr_mu;             /* guards thr_dp */
    nops_detect_params thr_dp;          /* thresholds set by nops_pipeline_set_thresholds */
    atomic_uint thr_gen;                /* counts those calls; a worker whose own count is
                                           behind takes thr_dp between two batches */
    pthread_mutex_t query_mu;           /* guards query; held while a worker answers it */
    pthread_cond_t query_cv;            /* a worker answered */
    series_query *query;                /* the pending question, or NULL */
    pthread_mutex_t ctx_mu;             /* guards the signal contexts below */
    nops_signal_context *ctx[NOPS_PIPELINE_SIGNAL_CONTEXTS]; /* ring of signal contexts
                                           (NULL until used), seriesq.c */
    uint32_t ctx_head, ctx_n;           /* oldest, how many held */
    nops_ratelimit ctx_log;             /* "signal context dropped" lines (ctx_mu) */
    const nops_secret *secret;          /* keys the state snapshots; NULL: SHA-256 only (borrowed) */
    nops_incident_hook hook;            /* called with each incident record before the sinks */
    void *hook_ctx;                     /* its context (borrowed) */
    atomic_int_fast64_t high[MAX_PARTITIONS]; /* high watermark last queried, -1 unknown (lag.c) */
    bool assigned_once;                 /* an assignment (of any size) arrived (poller thread,
                                           then the stopping thread after it joined the poller) */
    atomic_int_fast64_t lag_as_of;      /* wall ns the last complete query round was sent, 0 none */
    pthread_t lag_thr;                  /* asks the brokers for the high watermarks */
    bool lag_started;                   /* lag_thr runs */
    pthread_mutex_t lag_mu;             /* guards the lag_ fields below */
    pthread_cond_t lag_cv;              /* wakes lag_thr: a rebalance, or stop */
    int32_t *lag_parts;                 /* the assigned partitions, as of the last rebalance */
    int lag_n;                          /* how many */
    uint64_t lag_gen;                   /* counts the assignments lag_parts held */
    bool lag_refresh, lag_stop;         /* query now; leave */
    nops_pipeline_stats st;             /* counters, updated with atomics */
    pthread_mutex_t incident_mu;        /* orders incident records: held from the correlator
                                           call through the sink write (workers' signals and the
                                           poller's resolutions), so a record copied out is
                                           written before any later state of that incident */
    pthread_mutex_t st_mu;              /* guards st's non-atomic fields and the logs below */
    nops_ratelimit dlq_lost_log;        /* "dead-letter copy lost" lines */
    nops_ratelimit uncorrelated_log;    /* "signal in no incident" lines */
    nops_ratelimit unsplit_log;         /* "series key not split" lines */
    nops_ratelimit snap_skip_log;       /* "series left out of the snapshot" lines */
    nops_ratelimit flush_log;           /* "flush failed" lines (poller only) */
    nops_ratelimit commit_log;          /* "offset commit failed" lines (poller only) */
};

struct worker {
    nops_pipeline *p;           /* owner */
    int id;                     /* index */
    pthread_t thr;              /* thread */
    msgq q;                     /* its queue */
    nops_detector *det;         /* its series state */
    unsigned thr_gen;           /* the p->thr_gen its detector's thresholds are from */
    nops_ingest_series_cache *sc; /* raw series bytes → slot of det (worker thread's own) */
    /* per-batch scratch, grown as needed and reused */
    uint32_t *slots;            /* point → slot */
    float *values;              /* point values */
    int64_t *ts;                /* point timestamps */
    float *z, *ze, *ratio;      /* detector outputs: z, EWMA z, combined ratio */
    uint8_t *flags;
    size_t n, cap;              /* points in the batch, capacity */
    /* the message being parsed: its line-protocol points wait here, hashed and with their
     * value and time already at values/ts[n + i], until its parse ends (resolve_pending) */
    nops_ingest_series_ref *pend_ref; /* raw series hash of each waiting point */
    const char **pend_line;     /* its line in the message (where the series span starts) */
    uint32_t *pend_rank;        /* its rank among the points of that line */
    size_t pend_n, pend_cap;    /* points waiting, capacity */
    const char *msg_end;        /* end of the message being parsed */
    int64_t msg_newest;         /* newest time of its points taken so far (INT64_MIN: none) */
    uint64_t anomalies;         /* anomalous points of the batch (added to st once a batch) */
    int64_t recv_ns;            /* wall clock when the batch was taken */
    nops_parse_stats ps;        /* last message's parse result */
    uint32_t pt_rejected[NOPS_REJECT_COUNT]; /* this message's points refused after parsing */
    uint32_t pt_total;          /* ... all reasons together */
    bool parse_oom;             /* this message's parse stopped: out of memory */
    nops_reject pt_reason;      /* ... the first one's reason */
    const char *pt_detail;      /* ... and its sentence (static storage) */
    uint64_t rejected_series;   /* points refused by the series limit */
    uint32_t series_cap;        /* series this worker may hold (nops_pipeline_series_limit) */
    size_t series_budget;       /* its share of pipeline.series_memory_mb in bytes (0 = none) */
    int64_t msg_ts[NOPS__TS_RING]; /* newest point time of each of the last messages */
    uint32_t msg_ts_n, msg_ts_pos;  /* entries filled, next to overwrite */
    nops_ratelimit dlq_log;    /* "messages sent to the dead-letter topic" lines */
    nops_ratelimit limit_log;  /* "series limit reached" lines */
    int32_t cur_part;           /* partition of the message being parsed */
    uint16_t *slot_part;        /* slot → partition (for per-partition snapshots) */
    nops__slot_time *slot_time; /* slot → the times of its points (as long as slot_part) */
    uint32_t slot_part_cap;     /* entries allocated (in both) */
    uint64_t seen_evictions;    /* nops_detect_evictions when slot_time was last cleaned */
    uint32_t *slot_mark;        /* slot → run of the batch it last appeared in (detect_runs) */
    uint32_t mark_cap, mark_gen;/* entries allocated, current run */
    uint32_t last_evict_s;      /* last TTL sweep */
    atomic_bool has_query;      /* a series_query waits for this worker */
    uint64_t cpu_ns;            /* its thread's CPU time after its last turn (relaxed atomic) */
};

#define STAT_ADD(p, field, v) __atomic_fetch_add(&(p)->st.field, (v), __ATOMIC_RELAXED)



/* Remember which partition a slot's series arrives on (pipeline.c). */
bool nops__set_slot_part(worker *w, uint32_t slot, int32_t part);
/* The signals of the anomalous points of the batch's slots [from, to): to the sinks, the
 * correlator or the service stage, incidents to the sinks (emit.c; the worker's thread). */
void nops__emit_signals(worker *w, size_t from, size_t to);

/* A dead-letter copy was lost (refused by the producer, or its delivery failed): counted in
 * st.dlq_lost, which fails every later checkpoint, and logged (rate-limited). Any thread
 * (poller.c). */
void nops__dlq_lost(nops_pipeline *p, const char *why);
/* Whether a line of `rl` (one of the logs st_mu guards) is due at now_ns; *missed as
 * nops_ratelimit_due. Takes st_mu: any thread. */
bool nops__log_due(nops_pipeline *p, nops_ratelimit *rl, int64_t now_ns, uint64_t *missed);

/* The worker thread (pipeline.c). */
void *nops__worker_main(void *arg);

/* Series questions and signal contexts (seriesq.c). Answer the pending question, if any
 * (worker thread, between batches); keep the context of the signal the worker raises for
 * batch point i (`win`: its window, nw values, the last point i's); forget the times of slots
 * freed by an eviction (worker thread); init and free the context ring (life cycle). */
void nops__answer_query(worker *w);
void nops__keep_context(worker *w, size_t i, const nops_signal *sig, const float *win,
                        uint32_t nw);
void nops__slot_times_evicted(worker *w);
void nops__ctx_init(nops_pipeline *p);
void nops__ctx_fini(nops_pipeline *p);

/* Give an incident record of `corr` to the incident hook, if any (incident_mu held, or on the
 * service stage's thread, the one writer of its incidents), and keep what it
 * attached on the correlator's incident (poller.c). */
void nops__pipeline_incident_hook(nops_pipeline *p, nops_correlator *corr, nops_incident *inc,
                                  unsigned events);

/* Snapshot the detector state and open incidents of every partition marked in `which` at
 * offs[partition] (snapshot.c); partitions with no known offset (< 0) are skipped. Workers must be idle. */
void nops__snap_write(nops_pipeline *p, const bool *which, const int64_t *offs);
/* The commit of `offset` for `part` was confirmed: keep the snapshot taken there (snapshot.c). */
void nops__snap_committed(nops_pipeline *p, int32_t part, int64_t offset);
/* Restore partition `part` warm from its snapshot if one verifies and was taken at `committed`;
 * the series restored (0: the partition starts cold). Workers must be idle. */
size_t nops__snap_restore(nops_pipeline *p, int32_t part, int64_t committed);
/* Restore only partition `part`'s open incidents from its snapshot taken at `held` (a partition
 * back to this instance with its detectors still in memory). Workers must be idle. */
void nops__snap_restore_incidents(nops_pipeline *p, int32_t part, int64_t held);

/* The service stage (svcstage.c, whose essay says how it works). new: NULL with a sentence;
 * start (NOPS_NOTFOUND: the topic does not exist)/stop (stop drains what the brokers hold, bounded) on the life cycle's thread. _signal:
 * false when the signal's series names no service (the caller correlates it), else produced
 * with its window. _cleared: a series left its anomalous state (sent when its key names a
 * service); _evicted: a series gone while anomalous (sent to every partition). Workers' threads.
 * _flush: ticks of now_ts to every partition, then the producer flushed; NOPS_IO when it did
 * not flush or lost a message (every later checkpoint fails then). Poller thread. _open: the
 * stage's open incidents. */
svc_stage *nops__svc_new(nops_pipeline *p, const nops_correlate_params *cp, char *errstr,
                         size_t errstr_size);
nops_err nops__svc_start(svc_stage *s, char *errstr, size_t errstr_size);
bool nops__svc_derived(const svc_stage *s); /* the engine derived the topic (start: NOPS_NOTFOUND
                                               then means in-process, with a warning) */
void nops__svc_stop(svc_stage *s);
void nops__svc_destroy(svc_stage *s);
bool nops__svc_signal(svc_stage *s, const nops_signal *sig, const float *win, uint32_t n);
void nops__svc_cleared(svc_stage *s, const char *key, uint64_t series_id, int64_t ts);
void nops__svc_evicted(svc_stage *s, uint64_t series_id, int64_t ts);
nops_err nops__svc_flush(svc_stage *s, int64_t now_ts, char *err, size_t cap);
uint64_t nops__svc_open(svc_stage *s);

/* Consumer lag (lag.c): init/fini the lag fields; start/stop the thread that queries the high
 * watermarks; tell it the assignment changed (poller, after each rebalance); the lag summed over
 * the assigned partitions whose high watermark is known (*known of them). */
void nops__lag_init(nops_pipeline *p);
void nops__lag_fini(nops_pipeline *p);
bool nops__lag_start(nops_pipeline *p);
void nops__lag_stop(nops_pipeline *p);
void nops__lag_assigned(nops_pipeline *p);
int64_t nops__lag_sum(nops_pipeline *p, uint32_t *known);

#endif
