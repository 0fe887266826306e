/*
 * learn.c — the learning loop (recommend.h "the learning loop"): the workflow runs the
 * orchestrator writes go into the index the recommender follows, so the next similar incident
 * ranks with the new evidence.
 *
 * A cycle is one job of the vectorize pipeline (vector/vectorize.c, the code `neuralops
 * vectorize --append` runs): the rows not seen yet → redaction → embeddings →
 * nops_histdir_add (which knows the run ids indexed already) → one commit, a new generation
 * swapped in atomically; the recommender's reload thread picks it up without blocking a query.
 * Nothing new → no commit, no generation.
 *
 * What "not seen yet" means: for the JSONL file, the bytes past the offset of the last
 * committed cycle (complete lines only: the orchestrator may be in the middle of one); for
 * PostgreSQL, rows finished at or after the latest finished_at committed minus a margin (rows of
 * other instances land late; the overlap is harmless, run ids already indexed are counted as
 * known). Both start at the beginning with each process, so the first cycle reads the whole
 * history once and finds it known. An offset moves only when its cycle committed (or found
 * nothing new): a failed commit reads the same rows again next time. A file that shrank
 * (rotated, truncated) is read from its start.
 */
#include "recommend/recommend.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Rows of other instances may reach PostgreSQL this long after rows already read. */
#define PG_MARGIN_NS (600ll * 1000000000ll)

struct nops_learner {
    nops_learn_params p;      /* copied */
    pthread_mutex_t run_mu;   /* one cycle at a time; guards the offsets */
    uint64_t jsonl_off;       /* bytes of history_jsonl committed (or found known) */
    int64_t pg_since;         /* rows finished before this are not read again (INT64_MIN) */
    pthread_mutex_t mu;       /* guards st, stop */
    pthread_cond_t cv;        /* wakes the thread to stop */
    nops_learn_stats st;      /* counters */
    bool stop;                /* the thread is to end */
    bool thr_started;         /* thr runs */
    pthread_t thr;            /* the cycle thread (interval_s > 0) */
    nops_ratelimit skip_rl;   /* skipped-row lines (under run_mu) */
};

typedef struct cycle {
    nops_learner *l;
    size_t skipped;           /* rows skipped this cycle */
    char first_skip[300];     /* where and why of the first */
} cycle;

static void on_skip(void *ud, const char *where, const char *why)
{
    cycle *c = ud;
    if (c->skipped++ == 0)
        snprintf(c->first_skip, sizeof c->first_skip, "%.80s: %.200s", where, why);
}

/* Read the sources into `v`, the file from *off (moved past what was read). NOPS_OK, or
 * NOPS_IO with a sentence. */
static nops_err read_sources(nops_learner *l, nops_vectorize *v, uint64_t *off, char *errstr,
                             size_t errstr_size)
{
    if (l->p.history_jsonl[0]) {
        FILE *f = nops_file_fopen(l->p.history_jsonl, "r");
        struct stat sb;
        if (!f && errno != ENOENT) {
            nops_errf(errstr, errstr_size, "cannot read %s: %s", l->p.history_jsonl,
                      strerror(errno));
            return NOPS_IO;
        }
        if (f && fstat(fileno(f), &sb) == 0 && (uint64_t)sb.st_size < *off)
            *off = 0; /* rotated or truncated: a new file */
        nops_err e = f ? nops_vectorize_jsonl_from(v, f, off) : NOPS_OK;
        if (f)
            fclose(f);
        if (e != NOPS_OK) {
            nops_errf(errstr, errstr_size, "cannot read %s", l->p.history_jsonl);
            return e;
        }
    }
    if (l->p.pg_dsn[0])
        return nops_vectorize_postgres_since(v, l->p.pg_dsn, l->pg_since, errstr, errstr_size);
    return NOPS_OK;
}

/* The counters after a cycle: `err` "" = fine. */
static void account(nops_learner *l, size_t appended, size_t skipped, bool failed,
                    const char *err)
{
    pthread_mutex_lock(&l->mu);
    l->st.cycles++;
    l->st.failed += failed;
    l->st.appended += appended;
    l->st.skipped += skipped;
    if (appended)
        l->st.generation = nops_histdir_current(l->p.index_dir);
    if (!failed)
        l->st.last_ok_ns = (int64_t)nops_wall_ns();
    snprintf(l->st.last_error, sizeof l->st.last_error, "%s", err);
    pthread_mutex_unlock(&l->mu);
}

/* The body of a cycle, under run_mu; see nops_learner_run_once. */
static nops_err cycle_locked(nops_learner *l, cycle *c, size_t *appended, char *errstr,
                             size_t errstr_size)
{
    const bool have = nops_histdir_current(l->p.index_dir) != 0;
    nops_vectorize_opts o = {.actor_key = l->p.actor_key, .dir = l->p.index_dir,
                             .type = NOPS_INDEX_AUTO, .append = have, .on_skip = on_skip,
                             .ud = c};
    nops_vectorize *v = nops_vectorize_begin(&o, errstr, errstr_size);
    if (!v)
        return NOPS_IO;
    /* without an index every row is read again until a first generation is committed */
    uint64_t off = have ? l->jsonl_off : 0;
    const int64_t since_before = l->pg_since;
    if (!have)
        l->pg_since = INT64_MIN;
    nops_err e = read_sources(l, v, &off, errstr, errstr_size);
    nops_vectorize_stats st;
    nops_vectorize_get_stats(v, &st);
    if (e == NOPS_OK && st.pending == 0) {
        l->jsonl_off = off; /* nothing new there */
    } else if (e == NOPS_OK && !have && st.pending < (size_t)l->p.min_runs) {
        nops_errf(errstr, errstr_size, "no index in %s yet: %zu usable workflow runs, "
                  "recommend.learn_min_runs asks for %lld before a first one is built",
                  l->p.index_dir, st.pending, (long long)l->p.min_runs);
    } else if (e == NOPS_OK) {
        e = nops_vectorize_commit(v, errstr, errstr_size);
        if (e == NOPS_OK) {
            *appended = st.pending;
            l->jsonl_off = off;
            if (st.last_finished_ns - PG_MARGIN_NS > l->pg_since)
                l->pg_since = st.last_finished_ns - PG_MARGIN_NS;
        }
    }
    if (e != NOPS_OK)
        l->pg_since = since_before;
    nops_vectorize_destroy(v);
    return e;
}

nops_err nops_learner_run_once(nops_learner *l, size_t *appended, char *errstr,
                               size_t errstr_size)
{
    size_t n = 0;
    cycle c = {.l = l};
    errstr[0] = '\0';
    pthread_mutex_lock(&l->run_mu);
    nops_err e = cycle_locked(l, &c, &n, errstr, errstr_size);
    uint64_t missed = 0;
    if (c.skipped && nops_ratelimit_due(&l->skip_rl, (int64_t)nops_now_ns(), &missed))
        NOPS_WARN("learn", "%zu workflow runs could not be used (first: %s)%s", c.skipped,
                  c.first_skip, missed ? "; more cycles skipped rows since the last line" : "");
    pthread_mutex_unlock(&l->run_mu);
    account(l, n, c.skipped, e != NOPS_OK, errstr);
    if (appended)
        *appended = n;
    return e;
}

void nops_learner_get_stats(nops_learner *l, nops_learn_stats *out)
{
    pthread_mutex_lock(&l->mu);
    *out = l->st;
    pthread_mutex_unlock(&l->mu);
}

/* The thread: a cycle at once, then one every interval; a line when something changes. */
static void *learn_main(void *arg)
{
    nops_learner *l = arg;
    char err[512], last[512] = "";
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        pthread_mutex_unlock(&l->mu);
        size_t n = 0;
        nops_err e = nops_learner_run_once(l, &n, err, sizeof err);
        if (n)
            NOPS_INFO("learn", "%zu new workflow runs appended to %s", n, l->p.index_dir);
        if (strcmp(err, last) != 0 && err[0]) /* the same sentence once, not every cycle */
            nops_log(e == NOPS_OK ? NOPS_LOG_INFO : NOPS_LOG_WARN, "learn", "%s", err);
        snprintf(last, sizeof last, "%s", err);
        pthread_mutex_lock(&l->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += l->p.interval_s;
        while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

nops_learner *nops_learner_new(const nops_learn_params *params, char *errstr,
                               size_t errstr_size)
{
    if (!params->index_dir[0] || !params->actor_key[0] || params->min_runs < 1 ||
        params->interval_s < 0) {
        nops_errf(errstr, errstr_size, "the learning loop needs recommend.index_dir, "
                  "vector.actor_key, learn_min_runs >= 1 and learn_interval_s >= 0");
        return NULL;
    }
    nops_learner *l = nops_calloc(1, sizeof *l);
    if (!l) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    l->p = *params;
    l->pg_since = INT64_MIN;
    pthread_mutex_init(&l->run_mu, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (l->p.interval_s > 0) {
        int rc = pthread_create(&l->thr, NULL, learn_main, l);
        if (rc != 0) {
            nops_errf(errstr, errstr_size, "cannot start the learning thread: %s", strerror(rc));
            nops_learner_destroy(l);
            return NULL;
        }
        l->thr_started = true;
    }
    return l;
}

void nops_learner_destroy(nops_learner *l)
{
    if (!l)
        return;
    if (l->thr_started) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thr, NULL);
    }
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->run_mu);
    nops_free(l);
}
