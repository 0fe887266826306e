/*
 * test_snapshot.c — the pipeline's per-partition state snapshots and its consumer lag, against
 * the librdkafka mock cluster hosted by this process:
 *
 *   - an intact snapshot restores its partition warm after a restart;
 *   - flipped bytes in a snapshot's series data are caught by its checksum: logged, counted,
 *     and the partition starts cold from the committed offset;
 *   - a flipped bit in a snapshot's offset (with or without a recomputed checksum) never moves
 *     the position: every message after the committed offset is processed, none is skipped;
 *   - with the engine key, a snapshot is MAC'd: one made or "repaired" without that key is
 *     refused; files are 0640 in a 0750 directory;
 *   - after a restart with everything consumed and committed the lag reads 0, not the topic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/testutil.h"
#include "tests/support/kafkautil.h"

#include "ingest/ingest.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HOSTS 8
#define HDR_OFFSET 8  /* the offset field of a snapshot header: bytes 8..15 */
#define HDR_LEN 40    /* header bytes before the series records */
#define TAG_LEN 32    /* the tag after them */

static rd_kafka_t *g_cluster;
static char g_boot[512];

/* ---- log capture: lines with "refused" ---------------------------------------------------- */

static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_refusals[8192];

static void capture(void *ud, nops_log_level level, const char *line)
{
    (void)ud;
    (void)level;
    fprintf(stderr, "%s\n", line);
    if (!strstr(line, "refused"))
        return;
    pthread_mutex_lock(&g_log_mu);
    size_t n = strlen(g_refusals);
    snprintf(g_refusals + n, sizeof g_refusals - n, "%s\n", line);
    pthread_mutex_unlock(&g_log_mu);
}

static int refusals(const char *needle)
{
    int n = 0;
    pthread_mutex_lock(&g_log_mu);
    for (const char *s = g_refusals; (s = strstr(s, needle)) != NULL; s++)
        n++;
    pthread_mutex_unlock(&g_log_mu);
    return n;
}

static int setup(void **state)
{
    (void)state;
    static const tu_topic topics[] = {{"s1", 2}, {"s2", 2}, {"s3", 2},
                                      {"s4", 4}, {"s5", 2}, {"s6", 2}, {"s7", 1}, {"s9", 2}};
    g_cluster = tu_mock_cluster(3, topics, 8, g_boot, sizeof g_boot);
    assert_non_null(g_cluster);
    nops_log_set_sink(capture, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nops_log_set_sink(NULL, NULL);
    rd_kafka_destroy(g_cluster);
    return 0;
}

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

/* Ticks [t0, t1) of `hosts` constant series (one per host, keyed by host), stamped recently. */
static void produce_hosts(const char *topic, int t0, int t1, int hosts)
{
    const long long base = (long long)(nops_wall_ns() / 1000000000 - 7200) * 1000000000ll;
    char line[256], key[16];
    for (int t = t0; t < t1; t++)
        for (int h = 0; h < hosts; h++) {
            int n = snprintf(line, sizeof line, "cpu,host=h%02d usage=%d %lld", h, 50 + h % 3,
                             base + (long long)t * 1000000000ll);
            snprintf(key, sizeof key, "h%02d", h);
            assert_int_equal(tu_produce(g_cluster, topic, RD_KAFKA_PARTITION_UA,
                                        key, line, (size_t)n), 0);
        }
    assert_int_equal(rd_kafka_flush(g_cluster, 10000), 0);
}

static void produce(const char *topic, int t0, int t1)
{
    produce_hosts(topic, t0, t1, HOSTS);
}

static int g_window; /* detect.window of the pipelines start() makes (0: the default) */

typedef struct running {
    nops_sinks *sinks;
    nops_pipeline *p;
} running;

static running start(const char *topic, const char *group, const char *dir,
                     const nops_secret *secret)
{
    nops_kafka_params kp = {0};
    snprintf(kp.brokers, sizeof kp.brokers, "%s", g_boot);
    snprintf(kp.topic, sizeof kp.topic, "%s", topic);
    snprintf(kp.group, sizeof kp.group, "%s", group);
    snprintf(kp.dlq_topic, sizeof kp.dlq_topic, "dlq");
    kp.session_timeout_ms = 6000;
    nops_pipeline_params pp = {2, 4096, 512, 100, 1000000, 1000, 0, 0, 0, 0};
    nops_detect_params dp;
    nops_detect_params_default(&dp);
    if (g_window)
        dp.window = g_window;
    nops_correlate_params cp;
    nops_correlate_defaults(&cp);
    nops_storage_params sp;
    snprintf(sp.data_dir, sizeof sp.data_dir, "%s", dir);
    char err[512];
    running r = {nops_sinks_new(), NULL};
    assert_int_equal(nops_sinks_add_jsonl(r.sinks, dir, 0, err, sizeof err), NOPS_OK);
    r.p = nops_pipeline_new(&kp, &pp, &dp, &cp, &sp, r.sinks, err, sizeof err);
    assert_non_null(r.p);
    nops_pipeline_set_secret(r.p, secret);
    assert_int_equal(nops_pipeline_start(r.p, err, sizeof err), NOPS_OK);
    return r;
}

static void stop(running *r)
{
    assert_int_equal(nops_pipeline_stop(r->p, 15000), NOPS_OK);
    nops_pipeline_destroy(r->p);
    nops_sinks_destroy(r->sinks);
}

/* Stats once `parts` partitions are assigned, `messages` processed and the lag is known and 0
 * (everything there is consumed), or after 60 s. */
static nops_pipeline_stats settle(running *r, uint32_t parts, uint64_t messages)
{
    nops_pipeline_stats st;
    for (int i = 0; i < 600; i++) {
        nops_pipeline_get_stats(r->p, &st);
        if (st.partitions == parts && st.messages >= messages && st.lag_partitions == parts &&
            st.lag == 0)
            break;
        sleep_ms(100);
    }
    return st;
}

/* Consume [0, ticks) of `topic` in `group` from scratch and stop: snapshots and commits made. */
static void first_run(const char *topic, const char *group, const char *dir, int ticks,
                      const nops_secret *secret)
{
    produce(topic, 0, ticks);
    running r = start(topic, group, dir, secret);
    nops_pipeline_stats st = settle(&r, 2, (uint64_t)HOSTS * ticks);
    assert_int_equal(st.messages, HOSTS * ticks);
    assert_int_equal(st.restored_series, 0);
    stop(&r);
}

static void snap_file(const char *dir, const char *group, const char *topic, int part,
                      bool prev, char *out, size_t cap)
{
    snprintf(out, cap, "%s/state/%s-%s-%d.snap%s", dir, group, topic, part, prev ? ".prev" : "");
}

/* Remove the partitions' .snap.committed links (kept since the last confirmed commit), so a test
 * of how .snap and .snap.prev are judged sees only those two, as an earlier build left them; the
 * .committed file is read by the same code (test_refused_commits_in_a_row_stay_warm). */
static void forget_committed(const char *dir, const char *group, const char *topic)
{
    for (int part = 0; part < 4; part++) {
        char path[700];
        snprintf(path, sizeof path, "%s/state/%s-%s-%d.snap.committed", dir, group, topic, part);
        (void)unlink(path);
    }
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void write_all(const char *path, const unsigned char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

/* What someone who can write the state dir but holds no key can do: fix up the SHA-256. */
static void recompute_sha256(unsigned char *b, size_t len)
{
    unsigned int n;
    assert_int_equal(EVP_Digest(b, len - TAG_LEN, b + len - TAG_LEN, &n, EVP_sha256(), NULL), 1);
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Intact: warm. Three flipped bytes in the series data of both generations: refused by the
 * checksum, logged, counted; the partitions start cold at the committed offset and process
 * exactly what follows it. */
static void test_damaged_snapshot_starts_cold(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-snap-XXXXXX";
    assert_non_null(mkdtemp(dir));
    first_run("s1", "g-dmg", dir, 100, NULL);

    running r = start("s1", "g-dmg", dir, NULL); /* intact: both partitions warm */
    nops_pipeline_stats st = settle(&r, 2, 0);
    assert_int_equal(st.restored_series, HOSTS);
    assert_int_equal(st.snapshots_rejected, 0);
    stop(&r);

    char path[700], state_dir[600];
    struct stat sb;
    forget_committed(dir, "g-dmg", "s1");
    snprintf(state_dir, sizeof state_dir, "%s/state", dir);
    assert_int_equal(stat(state_dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0750);
    for (int part = 0; part < 2; part++)
        for (int prev = 0; prev < 2; prev++) {
            snap_file(dir, "g-dmg", "s1", part, prev, path, sizeof path);
            assert_int_equal(stat(path, &sb), 0);
            assert_int_equal(sb.st_mode & 0777, 0640);
            size_t len;
            unsigned char *b = read_all(path, &len);
            assert_true(len > HDR_LEN + TAG_LEN + 64); /* it holds series */
            for (int k = 0; k < 3; k++) /* three bytes of the series data */
                b[HDR_LEN + 20 + (size_t)k * 17] ^= 0x5a;
            write_all(path, b, len);
            free(b);
        }
    int logged = refusals("checksum does not match");
    r = start("s1", "g-dmg", dir, NULL);
    for (int i = 0; i < 600; i++) {
        nops_pipeline_get_stats(r.p, &st);
        if (st.snapshots_rejected >= 4)
            break;
        sleep_ms(100);
    }
    produce("s1", 100, 150);
    st = settle(&r, 2, HOSTS * 50);
    print_message("  damaged: %llu snapshots refused, %llu series restored, %llu messages\n",
                  (unsigned long long)st.snapshots_rejected,
                  (unsigned long long)st.restored_series, (unsigned long long)st.messages);
    assert_int_equal(st.snapshots_rejected, 4);          /* counted: 2 partitions × 2 files */
    assert_int_equal(refusals("checksum does not match") - logged, 4); /* logged */
    assert_int_equal(st.restored_series, 0);             /* cold */
    assert_int_equal(st.messages, HOSTS * 50);           /* from the committed offset: all new */
    stop(&r);
    rm_rf(dir);
}

/* A flipped bit in the offset (+512 or more, as in the review) — left as it is in one
 * partition, with the checksum recomputed in the other: neither moves the position, every new
 * message is processed. */
static void test_offset_bitflip_skips_nothing(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-snapoff-XXXXXX";
    assert_non_null(mkdtemp(dir));
    first_run("s2", "g-off", dir, 100, NULL);
    forget_committed(dir, "g-off", "s2");
    char path[700];
    for (int part = 0; part < 2; part++)
        for (int prev = 0; prev < 2; prev++) {
            snap_file(dir, "g-off", "s2", part, prev, path, sizeof path);
            if (prev && access(path, F_OK) != 0)
                continue; /* (the old code kept no previous snapshot) */
            size_t len;
            unsigned char *b = read_all(path, &len);
            int64_t off;
            memcpy(&off, b + HDR_OFFSET, sizeof off);
            assert_true(off > 0);
            int bit = 9;
            while (off & (1ll << bit)) /* the lowest clear bit from 9 up: the offset grows */
                bit++;
            off |= 1ll << bit;
            memcpy(b + HDR_OFFSET, &off, sizeof off);
            if (part == 1)
                recompute_sha256(b, len);
            write_all(path, b, len);
            free(b);
        }
    produce("s2", 100, 200); /* 800 new messages: a skip of 512 in a partition eats its share */
    running r = start("s2", "g-off", dir, NULL);
    nops_pipeline_stats st = settle(&r, 2, HOSTS * 100);
    print_message("  offset flipped: %llu of %d new messages processed, %llu snapshots refused\n",
                  (unsigned long long)st.messages, HOSTS * 100,
                  (unsigned long long)st.snapshots_rejected);
    assert_int_equal(st.messages, HOSTS * 100); /* nothing skipped, nothing replayed */
    assert_int_equal(st.points, HOSTS * 100);
    assert_int_equal(st.snapshots_rejected, 2); /* partition 0: its checksums fail */
    assert_int_equal(st.restored_series, 0);    /* partition 1: verifies, but not at the offset */
    stop(&r);
    rm_rf(dir);
}

/* Files that verify but are not this partition's, a symlink planted in the state dir, and a
 * snapshot of the old unchecked format: none is used, the first two are counted. */
static void test_foreign_and_planted_snapshots(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-snapfor-XXXXXX";
    assert_non_null(mkdtemp(dir));
    first_run("s5", "g-for", dir, 20, NULL);
    forget_committed(dir, "g-for", "s5");
    char p0[700], p0prev[700], p1[700], p1prev[700], keep[720];
    snap_file(dir, "g-for", "s5", 0, false, p0, sizeof p0);
    snap_file(dir, "g-for", "s5", 0, true, p0prev, sizeof p0prev);
    snap_file(dir, "g-for", "s5", 1, false, p1, sizeof p1);
    snap_file(dir, "g-for", "s5", 1, true, p1prev, sizeof p1prev);
    snprintf(keep, sizeof keep, "%s.keep", p1);
    /* partition 1: partition 0's snapshot under its name, and a symlink to its own as .prev */
    size_t len;
    unsigned char *b = read_all(p0, &len);
    assert_int_equal(rename(p1, keep), 0);
    write_all(p1, b, len);
    free(b);
    assert_int_equal(unlink(p1prev), 0);
    assert_int_equal(symlink(keep, p1prev), 0);
    /* partition 0: the old format ({magic, offset} and series), no .prev */
    b = read_all(p0, &len);
    memcpy(b, "NOPSSNP1", 8);
    write_all(p0, b, HDR_OFFSET + 8);
    free(b);
    assert_int_equal(unlink(p0prev), 0);
    int before = refusals("another group, topic or partition");
    running r = start("s5", "g-for", dir, NULL);
    nops_pipeline_stats st = settle(&r, 2, 0);
    for (int i = 0; i < 100 && st.snapshots_rejected < 2; i++) {
        sleep_ms(100);
        nops_pipeline_get_stats(r.p, &st);
    }
    assert_int_equal(st.snapshots_rejected, 2); /* the foreign copy and the symlink */
    assert_int_equal(st.restored_series, 0);
    assert_int_equal(refusals("another group, topic or partition") - before, 1);
    stop(&r);
    rm_rf(dir);
}

/* With the engine key the tag is a MAC: the same key restores warm; a snapshot "repaired" with
 * a SHA-256, or read with another key, or without one, is refused. */
static void test_keyed_snapshot(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-snapkey-XXXXXX";
    assert_non_null(mkdtemp(dir));
    nops_secret *ka = nops_secret_from_bytes("key a", 5), *kb = nops_secret_from_bytes("key b", 5);
    first_run("s3", "g-key", dir, 100, ka);

    running r = start("s3", "g-key", dir, ka);
    nops_pipeline_stats st = settle(&r, 2, 0);
    assert_int_equal(st.restored_series, HOSTS);
    assert_int_equal(st.snapshots_rejected, 0);
    stop(&r);

    int before = refusals("MAC does not verify");
    forget_committed(dir, "g-key", "s3");
    r = start("s3", "g-key", dir, kb); /* another key: all four files refused, cold */
    st = settle(&r, 2, 0);
    for (int i = 0; i < 100 && st.snapshots_rejected < 4; i++) {
        sleep_ms(100);
        nops_pipeline_get_stats(r.p, &st);
    }
    assert_int_equal(st.snapshots_rejected, 4);
    assert_int_equal(st.restored_series, 0);
    assert_int_equal(refusals("MAC does not verify") - before, 4);
    produce("s3", 100, 110); /* the cold detectors learn the series again */
    st = settle(&r, 2, HOSTS * 10);
    assert_int_equal(st.messages, HOSTS * 10);
    stop(&r); /* now both generations hold them, MAC'd with key b */

    char path[700];
    forget_committed(dir, "g-key", "s3");
    snap_file(dir, "g-key", "s3", 0, false, path, sizeof path);
    size_t len;
    unsigned char *b = read_all(path, &len);
    b[HDR_LEN + 20] ^= 1;
    recompute_sha256(b, len); /* a checksum is no MAC */
    write_all(path, b, len);
    free(b);
    r = start("s3", "g-key", dir, kb);
    st = settle(&r, 2, 0);
    for (int i = 0; i < 100 && st.snapshots_rejected < 1; i++) {
        sleep_ms(100);
        nops_pipeline_get_stats(r.p, &st);
    }
    assert_int_equal(st.snapshots_rejected, 1);
    assert_int_equal(st.restored_series, HOSTS); /* partition 0 from .prev, partition 1 intact */
    stop(&r);

    forget_committed(dir, "g-key", "s3");
    r = start("s3", "g-key", dir, NULL); /* no key: keyed files are refused, not half-trusted */
    st = settle(&r, 2, 0);
    for (int i = 0; i < 100 && st.snapshots_rejected < 4; i++) {
        sleep_ms(100);
        nops_pipeline_get_stats(r.p, &st);
    }
    assert_int_equal(st.snapshots_rejected, 4);
    assert_int_equal(st.restored_series, 0);
    assert_true(refusals("no key loaded") >= 4);
    stop(&r);
    nops_secret_destroy(ka);
    nops_secret_destroy(kb);
    rm_rf(dir);
}

/* The broker refuses the first commits (as it does in the middle of a rebalance): they are
 * made again, so a restart neither replays nor starts cold. Before, a refused asynchronous
 * commit counted as done, an idle partition was never committed again, and a restart replayed
 * everything (and, now that snapshots never move the position, cold). */
static void test_refused_commit_is_made_again(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-snapcommit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    produce("s6", 0, 50);
    rd_kafka_mock_push_request_errors(rd_kafka_handle_mock_cluster(g_cluster), 8 /* OffsetCommit */,
                                      2, RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE,
                                      RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE);
    running r = start("s6", "g-commit", dir, NULL);
    nops_pipeline_stats st = settle(&r, 2, HOSTS * 50);
    assert_int_equal(st.messages, HOSTS * 50);
    for (int i = 0; i < 600 && st.commit_failures < 1; i++) { /* the refusal came back */
        sleep_ms(100);
        nops_pipeline_get_stats(r.p, &st);
    }
    assert_true(st.commit_failures >= 1);
    stop(&r);
    r = start("s6", "g-commit", dir, NULL);
    st = settle(&r, 2, 0);
    print_message("  after refused commits: %llu messages replayed, %llu series restored\n",
                  (unsigned long long)st.messages, (unsigned long long)st.restored_series);
    assert_int_equal(st.messages, 0);
    assert_int_equal(st.restored_series, HOSTS);
    stop(&r);
    rm_rf(dir);
}

/* Refused commits in a row (as during a rebalance under load) while snapshots go on being
 * written: the snapshot at the last confirmed commit is kept, so the next start is warm. Before,
 * only the newest two were kept, both ahead of the committed offset: the restart was cold and
 * its detectors blind for a warm-up (test_incident_identity lost a host's last signals so). */
static void test_refused_commits_in_a_row_stay_warm(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-snaprow-XXXXXX";
    assert_non_null(mkdtemp(dir));
    first_run("s9", "g-row", dir, 50, NULL); /* committed at 50, confirmed */
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(g_cluster);
    rd_kafka_resp_err_t errs[200];
    for (int i = 0; i < 200; i++)
        errs[i] = RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE;
    rd_kafka_mock_push_request_errors_array(mc, 8 /* OffsetCommit */, 200, errs);
    running r = start("s9", "g-row", dir, NULL);
    nops_pipeline_stats st = settle(&r, 2, 0);
    assert_int_equal(st.restored_series, HOSTS);
    for (int chunk = 0; chunk < 3; chunk++) { /* a snapshot after each, its commit refused */
        produce("s9", 50 + 10 * chunk, 60 + 10 * chunk);
        st = settle(&r, 2, (uint64_t)HOSTS * 10 * (chunk + 1));
        const uint64_t snaps = st.snapshots;
        for (int i = 0; i < 600 && st.snapshots < snaps + 2; i++) {
            sleep_ms(100);
            nops_pipeline_get_stats(r.p, &st);
        }
    }
    assert_true(st.commit_failures >= 2);
    (void)nops_pipeline_stop(r.p, 15000); /* its last commit is refused too */
    nops_pipeline_destroy(r.p);
    nops_sinks_destroy(r.sinks);
    rd_kafka_mock_clear_request_errors(mc, 8);
    r = start("s9", "g-row", dir, NULL);
    st = settle(&r, 2, (uint64_t)HOSTS * 30);
    print_message("  after refused commits in a row: %llu messages replayed, %llu series "
                  "restored\n", (unsigned long long)st.messages,
                  (unsigned long long)st.restored_series);
    assert_int_equal(st.messages, HOSTS * 30); /* from the committed offset: nothing skipped */
    assert_int_equal(st.restored_series, HOSTS); /* warm */
    stop(&r);
    rm_rf(dir);
}

/* A series with a long key (~1000 bytes) and a full window at the largest detect.window (1024):
 * its snapshot record (88 + key + 4·1024 bytes) used to overflow the snapshot's buffer, so the
 * series was left out silently and started cold after a restart. */
static void test_long_key_full_window_restored(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-snaplong-XXXXXX";
    assert_non_null(mkdtemp(dir));
    g_window = NOPS_DETECT_MAX_WINDOW;
    enum { TICKS = NOPS_DETECT_MAX_WINDOW + 50, PAD = 960 };
    char pad[PAD + 1];
    memset(pad, 'p', PAD);
    pad[PAD] = '\0';
    const long long base = (long long)(nops_wall_ns() / 1000000000 - 7200) * 1000000000ll;
    char line[1200];
    for (int t = 0; t < TICKS; t++) {
        int n = snprintf(line, sizeof line, "cpu,host=h00,pad=%s usage=%d %lld", pad, 50 + t % 3,
                         base + (long long)t * 1000000000ll);
        assert_int_equal(tu_produce(g_cluster, "s7", RD_KAFKA_PARTITION_UA,
                                    "h00", line, (size_t)n), 0);
    }
    assert_int_equal(rd_kafka_flush(g_cluster, 10000), 0);
    running r = start("s7", "g-long", dir, NULL);
    nops_pipeline_stats st = settle(&r, 1, TICKS);
    assert_int_equal(st.messages, TICKS);
    assert_int_equal(st.series, 1);
    stop(&r);
    r = start("s7", "g-long", dir, NULL);
    st = settle(&r, 1, 0);
    print_message("  key of ~%d bytes, window %d: %llu series restored, %llu skipped\n", PAD + 22,
                  NOPS_DETECT_MAX_WINDOW, (unsigned long long)st.restored_series,
                  (unsigned long long)st.snapshot_series_skipped);
    assert_int_equal(st.restored_series, 1);
    assert_int_equal(st.snapshot_series_skipped, 0);
    stop(&r);
    g_window = 0;
    rm_rf(dir);
}

/* Everything consumed and committed, then a restart: the lag is 0 once the high watermarks are
 * known, not the whole topic (it used to count every partition from its low watermark until a
 * new message arrived there). */
static void test_lag_after_restart_is_zero(void **state)
{
    (void)state;
    char dir[] = "/tmp/nops-lag-XXXXXX";
    assert_non_null(mkdtemp(dir));
    produce("s4", 0, 100);
    running r = start("s4", "g-lag", dir, NULL);
    nops_pipeline_stats st = settle(&r, 4, HOSTS * 100);
    assert_int_equal(st.messages, HOSTS * 100);
    stop(&r);

    r = start("s4", "g-lag", dir, NULL);
    st = settle(&r, 4, 0);
    print_message("  after the restart: lag %lld over %u partitions with known watermarks\n",
                  (long long)st.lag, st.lag_partitions);
    assert_int_equal(st.partitions, 4);
    assert_int_equal(st.lag_partitions, 4);
    assert_int_equal(st.lag, 0);
    assert_int_equal(st.messages, 0);
    /* new messages on one partition only: consumed, and the lag is 0 again (the partitions
     * that got nothing new used to count from their low watermarks: the whole topic) */
    produce_hosts("s4", 100, 120, 1);
    st = settle(&r, 4, 20);
    print_message("  after 20 messages to one partition: lag %lld\n", (long long)st.lag);
    assert_int_equal(st.messages, 20);
    assert_int_equal(st.lag, 0);
    stop(&r);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_damaged_snapshot_starts_cold),
        cmocka_unit_test(test_offset_bitflip_skips_nothing),
        cmocka_unit_test(test_foreign_and_planted_snapshots),
        cmocka_unit_test(test_keyed_snapshot),
        cmocka_unit_test(test_refused_commit_is_made_again),
        cmocka_unit_test(test_refused_commits_in_a_row_stay_warm),
        cmocka_unit_test(test_lag_after_restart_is_zero),
        cmocka_unit_test(test_long_key_full_window_restored),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
