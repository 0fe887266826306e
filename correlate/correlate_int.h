/*
 * correlate_int.h — the correlator's state, shared by correlate.c (grouping, severity,
 * resolution) and state.c (saving and restoring a partition's incidents). Not a public header.
 */
#ifndef NOPS_CORRELATE_INT_H
#define NOPS_CORRELATE_INT_H

#include "correlate/correlate.h"

#include <pthread.h>

#define RECENT 256           /* recent signals kept for matching and de-duplication */
#define MAX_INCIDENTS 1024   /* incidents tracked: open ones, then resolved ones kept to reopen */
#define MAX_MEMBERS 128      /* series tracked per incident for resolution */
#define MAX_HOSTS 128        /* hosts tracked per incident (a service of ~100 hosts moving together stays one incident) */
#define MAX_LABELS 4         /* label names per list (host_labels, service_labels) */
#define VAL_MAX 128          /* longest label value compared */
#define NS 1000000000ll

typedef struct recent_sig {
    uint64_t sig_h;                  /* XXH3 of the signal id (replays) */
    int64_t ts_ns;                   /* its time */
    int incident;                    /* index into inc, -1 when resolved */
    uint64_t host_h, service_h;      /* hashes of its host and service values (0: none) */
    uint64_t metric_h;               /* hash of its metric name */
} recent_sig;

typedef struct incident_slot {
    bool used;                       /* slot in use */
    int32_t part;                    /* partition of its opening signal (-1: none) */
    nops_incident rec;               /* the record as written to sinks */
    uint64_t members[MAX_MEMBERS];   /* series ids */
    bool active[MAX_MEMBERS];        /* member still anomalous */
    int64_t first_ns[MAX_MEMBERS];   /* member's first signal time */
    int64_t last_ns[MAX_MEMBERS];    /* member's last signal time */
    uint32_t n_members;              /* members tracked */
    uint64_t hosts[MAX_HOSTS];       /* host hashes */
    uint32_t n_hosts;                /* hosts tracked */
    char straggler_of[NOPS_ID_LEN];  /* opened by a straggler of this service-wide incident
                                        ("" none): info while it holds one series */
    char merged_into[NOPS_ID_LEN];   /* merged into this incident ("" none): its last record
                                        (resolved, naming it) goes out at the next tick */
    bool resolved;                   /* resolved, kept reopen_s for its host to flap back */
    uint32_t reopened;               /* times it was reopened */
    int64_t last_clear_ns;           /* when the last member cleared */
    int64_t last_sig_ns;             /* newest signal time */
    double best_score;               /* strongest signal so far */
    char first_series[256];          /* earliest signal's series */
} incident_slot;

struct nops_correlator {
    pthread_mutex_t lock;
    nops_correlate_params p;
    uint32_t W;                      /* window length used for correlation */
    char host_names[MAX_LABELS][64]; /* host label names, in order of preference */
    size_t n_host_names;
    char svc_names[MAX_LABELS][64];  /* service label names */
    size_t n_svc_names;
    recent_sig recent[RECENT];       /* ring of recent signals */
    float *mat;                      /* RECENT × W standardised windows, row per ring slot */
    bool has_window[RECENT];         /* row holds a usable window */
    uint32_t head, count;            /* ring */
    incident_slot inc[MAX_INCIDENTS];
    uint64_t opened_total, resolved_total;
};

/* A free slot for an incident (lock held): an unused one, else the resolved one kept for
 * reopening that became due first (forgotten: its recent signals no longer point at it); -1
 * when every slot holds an open incident. */
int nops__correlate_free_slot(nops_correlator *c);

/* The labels of a signal that place it (labels.c). */
typedef struct sig_labels {
    const nops_correlator *c;
    char host[VAL_MAX];              /* value of the first host label present */
    int host_rank;                   /* its rank in host_names (MAX_LABELS: none) */
    char service[VAL_MAX];
    int svc_rank;
    size_t name_len;                 /* the metric name: the key's first name_len bytes */
} sig_labels;

/* The signal's host key (its host value, or its whole series key when it names no host) and
 * service (empty when none). */
void nops__signal_labels(const nops_correlator *c, const nops_signal *sig, sig_labels *sl);
/* Splits a comma-separated list of label names into names (at most MAX_LABELS); the count. */
size_t nops__split_names(const char *s, char names[][64]);

#endif /* NOPS_CORRELATE_INT_H */
