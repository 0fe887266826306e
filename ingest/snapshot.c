/*
 * snapshot.c — per-partition detector state snapshots: written at checkpoints (poller.c), read
 * back when a partition is assigned, so a restart or a rebalance starts warm.
 *
 * The file, data_dir/state/<group>-<topic>-<partition>.snap:
 *   header {u64 magic "NOPSSNP3", i64 offset, u64 owner, i32 partition, u32 keyed, u64 body_len}
 *   body   series records (nops_detect_save_series), then the partition's open incidents
 *          (nops_correlate_save) and their length as a u64: body_len bytes in all
 *          (a "NOPSSNP2" file, from before incidents were kept, has series records only)
 *   tag    32 bytes over header and body: HMAC-SHA256 under the engine key's "state-snapshot"
 *          subkey when the pipeline has the key (nops_pipeline_set_secret), else SHA-256
 * `offset` is the next message the state has not seen; `owner` (XXH3 of group and topic) and
 * `partition` say whose state it is, so a file copied over another partition's name is refused.
 *
 * Trust (the essay). A snapshot is only ever a shortcut to warm state, never a position: a
 * partition always resumes at its committed offset, and its snapshot is used only when the tag
 * verifies, the file is this group's, topic's and partition's, and its offset equals the
 * committed offset — the state then holds exactly the history the consumer resumes after. A
 * damaged, foreign or forged file is logged, counted (snapshots_rejected) and ignored; a
 * snapshot whose offset differs from the committed one (ahead: a commit that never landed, or a
 * forged offset; behind: a snapshot that failed) is ignored. Either way the partition starts cold
 * from the committed offset: nothing is skipped; a cold start only means the windows refill.
 * (poller.c's start_partitions has the one exception, which involves no file: a partition that
 * comes back to the instance that gave it up resumes where that instance's memory says.)
 * The checksum catches damage; only the keyed tag stops someone who can write the state
 * directory from planting a state of their choosing (e.g. variances that hide the next spike).
 *
 * Writes are durable and private: tmp file (0640, close-on-exec), fsync, rename, fsync of the
 * directory (nops_file_replace). The previous snapshot is kept as .snap.prev: a snapshot is
 * written just before the offsets it belongs to are committed, so a crash between the two, or a
 * commit the broker refused, leaves a newest snapshot ahead of the committed offset and the
 * previous one at it — that one restores the partition warm. Several refused commits in a row
 * (a rebalance on a loaded machine) would push that one out too, so the snapshot of each commit
 * the broker confirms is also kept as .snap.committed (a hard link: nops__snap_committed).
 * Restore tries .snap, .snap.prev, .snap.committed and takes the one at the committed offset.
 *
 * Threads: both directions run on the poller thread with every worker drained and idle (the
 * poller is the only producer of their queues), so reading and writing the detectors races with
 * nothing; the queue mutex the drain waited on orders the workers' last writes before our reads.
 */
#include "ingest/pipeline_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define SNAP_MAGIC 0x33504e5353504f4eull    /* "NOPSSNP3" */
#define SNAP_MAGIC_V2 0x32504e5353504f4eull /* "NOPSSNP2": series only, still read */
#define SNAP_MAGIC_V1 0x31504e5353504f4eull /* "NOPSSNP1": unchecked, no longer read */
#define SNAP_PURPOSE "state-snapshot"
#define SNAP_TAG_LEN 32

typedef struct snap_hdr {
    uint64_t magic;     /* SNAP_MAGIC */
    int64_t offset;     /* next message the state has not seen */
    uint64_t owner;     /* XXH3-64 of group, NUL, topic */
    int32_t partition;  /* whose state */
    uint32_t keyed;     /* 1: the tag is an HMAC under the engine key, 0: a SHA-256 */
    uint64_t body_len;  /* bytes of series records after the header */
} snap_hdr;

/* The snapshot files of a partition: the newest, the one before, and the one at the last
 * commit the broker confirmed (a link to one of the other two, made when the confirmation came). */
enum { SNAP_NEWEST, SNAP_PREV, SNAP_COMMITTED, SNAP_KINDS };

static void snap_path_of(const nops_pipeline *p, int32_t part, int kind, char *buf, size_t cap)
{
    static const char *const suffix[SNAP_KINDS] = {"", ".prev", ".committed"};
    snprintf(buf, cap, "%s/%s-%s-%d.snap%s", p->state_dir, p->kp.group, p->kp.topic, (int)part,
             suffix[kind]);
}

static void snap_path(const nops_pipeline *p, int32_t part, bool prev, char *buf, size_t cap)
{
    snap_path_of(p, part, prev ? SNAP_PREV : SNAP_NEWEST, buf, cap);
}

static uint64_t snap_owner(const nops_pipeline *p)
{
    char id[sizeof p->kp.group + sizeof p->kp.topic + 1];
    size_t g = strlen(p->kp.group), t = strlen(p->kp.topic);
    memcpy(id, p->kp.group, g + 1); /* the NUL separates them */
    memcpy(id + g + 1, p->kp.topic, t);
    return XXH3_64bits(id, g + 1 + t);
}

/* The tag of data: the keyed MAC with a key, a SHA-256 without. */
static void snap_tag(const nops_pipeline *p, const void *data, size_t len,
                     unsigned char out[SNAP_TAG_LEN])
{
    if (p->secret) {
        nops_secret_mac(p->secret, SNAP_PURPOSE, data, len, out);
        return;
    }
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
        memset(out, 0, SNAP_TAG_LEN); /* never verifies: a cold start, not a wrong state */
}

/* Series records of every partition marked in `which`, one buffer per partition. */
static nops_buf *collect_series(nops_pipeline *p, const bool *which)
{
    nops_buf *bufs = nops_calloc(MAX_PARTITIONS, sizeof *bufs);
    if (!bufs)
        return NULL;
    static _Thread_local uint8_t rec[NOPS_DETECT_SERIES_REC_MAX]; /* ~5 KiB: off the stack */
    uint64_t skipped = 0;
    const char *why = NULL, *key = NULL;
    for (int wi = 0; wi < p->pp.workers; wi++) {
        worker *w = &p->workers[wi];
        uint32_t lim = nops_detect_slot_limit(w->det);
        for (uint32_t s = 0; s < lim && s < w->slot_part_cap; s++) {
            uint16_t part = w->slot_part[s];
            if (!which[part])
                continue;
            size_t n = nops_detect_save_series(w->det, s, rec, sizeof rec);
            if (!n) { /* a free slot, or a record past the largest: the latter is counted */
                if (*nops_detect_slot_key(w->det, s)) {
                    skipped++;
                    why = "its record does not fit the snapshot buffer";
                    key = nops_detect_slot_key(w->det, s);
                }
                continue;
            }
            nops_buf *b = &bufs[part];
            if (nops_buf_reserve(b, n) != NOPS_OK) {
                skipped++;
                why = "no memory";
                key = nops_detect_slot_key(w->det, s);
                continue;
            }
            memcpy(b->b + b->len, rec, n);
            b->len += n;
        }
    }
    if (skipped) {
        STAT_ADD(p, snapshot_series_skipped, skipped);
        uint64_t missed;
        const bool due = nops__log_due(p, &p->snap_skip_log, nops_wall_ns(), &missed);
        if (due)
            NOPS_WARN("ingest", "%llu series left out of the state snapshot (they start cold "
                      "after a restart); the last, \"%.200s\": %s (%llu more such line(s) not "
                      "logged in the last 10 s)", (unsigned long long)skipped, key, why,
                      (unsigned long long)missed);
    }
    return bufs;
}

/* Header, body and tag of one partition's snapshot, written durably; the old one kept as .prev. */
static bool write_one(nops_pipeline *p, int32_t part, int64_t offset, const nops_buf *body)
{
    void *corr = NULL;
    size_t corr_len = 0;
    if (nops_correlate_save(p->corr, part, &corr, &corr_len) != NOPS_OK) {
        errno = ENOMEM;
        return false;
    }
    const uint64_t corr_len64 = corr_len;
    const size_t body_len = body->len + corr_len + sizeof corr_len64;
    snap_hdr h = {SNAP_MAGIC, offset, snap_owner(p), part, p->secret != NULL, body_len};
    const size_t len = sizeof h + body_len + SNAP_TAG_LEN;
    uint8_t *out = nops_malloc(len);
    if (!out) {
        nops_free(corr);
        errno = ENOMEM;
        return false;
    }
    memcpy(out, &h, sizeof h);
    if (body->len)
        memcpy(out + sizeof h, body->b, body->len);
    memcpy(out + sizeof h + body->len, corr, corr_len);
    memcpy(out + sizeof h + body->len + corr_len, &corr_len64, sizeof corr_len64);
    nops_free(corr);
    snap_tag(p, out, sizeof h + body_len, out + sizeof h + body_len);
    char path[1100], prev[1100];
    snap_path(p, part, false, path, sizeof path);
    snap_path(p, part, true, prev, sizeof prev);
    bool ok = (rename(path, prev) == 0 || errno == ENOENT) &&
              nops_file_replace(path, out, len) == 0;
    int saved = errno;
    nops_free(out);
    errno = saved;
    return ok;
}

void nops__snap_write(nops_pipeline *p, const bool *which, const int64_t *offs)
{
    nops_buf *bufs = collect_series(p, which);
    if (!bufs) {
        NOPS_WARN("ingest", "no memory for state snapshots: skipped (a restart starts cold)");
        return;
    }
    for (int part = 0; part < MAX_PARTITIONS; part++) {
        if (!which[part])
            continue;
        if (offs[part] >= 0) { /* a position is known: something to resume after */
            if (write_one(p, part, offs[part], &bufs[part]))
                STAT_ADD(p, snapshots, 1);
            else
                NOPS_WARN("ingest", "cannot write the state snapshot of partition %d in %s: %s",
                          part, p->state_dir, strerror(errno));
        }
        nops_free(bufs[part].b);
    }
    nops_free(bufs);
}

typedef enum { SNAP_MISSING, SNAP_OLD, SNAP_BAD, SNAP_GOOD } snap_load;

/* The whole regular file at path into *buf (owned by the caller), its size into *len. No
 * symlinks, FIFOs or devices planted in the state dir: a regular file or nothing. */
static snap_load read_regular(const char *path, uint8_t **buf, size_t *len, char *why,
                              size_t why_cap)
{
    int fd = nops_file_open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT)
        return SNAP_MISSING;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_cap, "%s", fd >= 0 ? "not a regular file"
                                     : errno == ELOOP ? "a symbolic link"
                                                      : strerror(errno));
        if (fd >= 0)
            close(fd);
        return SNAP_BAD;
    }
    *len = (size_t)st.st_size;
    *buf = nops_malloc(*len ? *len : 1);
    size_t got = 0;
    while (*buf && got < *len) {
        ssize_t r = read(fd, *buf + got, *len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (*buf && got == *len)
        return SNAP_GOOD;
    snprintf(why, why_cap, "%s", *buf ? "unreadable" : "too large to read");
    nops_free(*buf);
    *buf = NULL;
    return SNAP_BAD;
}

/* Why the snapshot in b (len bytes) cannot be used for `part`, or NULL; *h gets its header. */
static const char *check(const nops_pipeline *p, const uint8_t *b, size_t len, int32_t part,
                         snap_hdr *h)
{
    if (len < sizeof *h + SNAP_TAG_LEN)
        return "too short";
    memcpy(h, b, sizeof *h);
    if (h->magic != SNAP_MAGIC && h->magic != SNAP_MAGIC_V2)
        return "not a snapshot of this version";
    if (h->body_len != len - sizeof *h - SNAP_TAG_LEN)
        return "truncated or padded";
    if (h->magic == SNAP_MAGIC) { /* the incident section's length ends the body */
        uint64_t corr_len = 0;
        if (h->body_len < sizeof corr_len)
            return "its incident section is missing";
        memcpy(&corr_len, b + sizeof *h + h->body_len - sizeof corr_len, sizeof corr_len);
        if (corr_len > h->body_len - sizeof corr_len)
            return "its incident section is out of bounds";
    }
    if (h->keyed != (p->secret != NULL))
        return p->secret ? "not keyed with the engine key" : "keyed, and no key loaded";
    unsigned char tag[SNAP_TAG_LEN];
    snap_tag(p, b, len - SNAP_TAG_LEN, tag);
    if (CRYPTO_memcmp(tag, b + len - SNAP_TAG_LEN, SNAP_TAG_LEN) != 0)
        return p->secret ? "its MAC does not verify (damaged or forged)"
                         : "its checksum does not match (damaged)";
    if (h->owner != snap_owner(p) || h->partition != part)
        return "it belongs to another group, topic or partition";
    return NULL;
}

/*
 * Read and verify the snapshot at path: on SNAP_GOOD *buf (owned by the caller) holds the file,
 * *h its header; SNAP_BAD puts the reason into why.
 */
static snap_load load_verified(const nops_pipeline *p, const char *path, int32_t part,
                               uint8_t **buf, snap_hdr *h, char *why, size_t why_cap)
{
    size_t len = 0;
    snap_load l = read_regular(path, buf, &len, why, why_cap);
    if (l != SNAP_GOOD)
        return l;
    uint64_t magic = 0;
    memcpy(&magic, *buf, len < sizeof magic ? len : sizeof magic);
    const char *bad = magic == SNAP_MAGIC_V1 ? NULL : check(p, *buf, len, part, h);
    if (magic == SNAP_MAGIC_V1 || bad) { /* v1: written before snapshots were checked */
        snprintf(why, why_cap, "%s", bad ? bad : "");
        nops_free(*buf);
        *buf = NULL;
        return bad ? SNAP_BAD : SNAP_OLD;
    }
    return SNAP_GOOD;
}

/* Load the verified body into the worker that owns the partition; the series restored. */
static size_t restore_body(nops_pipeline *p, int32_t part, const uint8_t *body, size_t len,
                           const char *path)
{
    worker *w = &p->workers[part % p->pp.workers];
    uint32_t now_s = (uint32_t)(nops_wall_ns() / 1000000000);
    size_t off = 0, restored = 0;
    while (off < len) {
        size_t used;
        uint32_t slot;
        if (nops_detect_restore_series(w->det, body + off, len - off, now_s, &used, &slot) !=
            NOPS_OK) {
            NOPS_WARN("ingest", "state snapshot %s: series %zu cannot be restored (another "
                      "detect.window, or out of memory): the rest starts cold", path, restored);
            break;
        }
        if (!nops__set_slot_part(w, slot, part))
            break;
        w->slot_time[slot] = (nops__slot_time){0}; /* the restored window's times are unknown */
        off += used;
        restored++;
    }
    return restored;
}

/* The body of a verified snapshot split into series records and incident state. */
static void split_body(const uint8_t *buf, const snap_hdr *h, const uint8_t **series,
                       size_t *series_len, const uint8_t **corr, size_t *corr_len)
{
    const uint8_t *body = buf + sizeof *h;
    uint64_t cl = 0;
    if (h->magic == SNAP_MAGIC) /* bounds checked by check() */
        memcpy(&cl, body + h->body_len - sizeof cl, sizeof cl);
    *series = body;
    *series_len = h->magic == SNAP_MAGIC ? (size_t)(h->body_len - sizeof cl - cl)
                                         : (size_t)h->body_len;
    *corr = body + *series_len;
    *corr_len = (size_t)cl;
}

/* The partition's open incidents from a verified snapshot into the correlator; how many. */
static void restore_incidents(nops_pipeline *p, int32_t part, const uint8_t *corr, size_t len,
                              const char *path)
{
    if (!len) /* a snapshot from before incidents were kept */
        return;
    nops_err e = nops_correlate_load(p->corr, part, corr, len);
    if (e != NOPS_OK)
        NOPS_WARN("ingest", "state snapshot %s: its open incidents cannot be restored (%s): "
                  "signals replayed after it may open new incidents", path, nops_strerror(e));
}

/*
 * Restore from the snapshot taken at exactly `at` (see the essay above): the series and the
 * open incidents, or the incidents only (a partition back to this instance, its detectors
 * still in memory: start_partitions). The series restored.
 */
static size_t restore_at(nops_pipeline *p, int32_t part, int64_t at, bool incidents_only)
{
    char path[1100], why[160];
    const char *cold = at < 0 ? "no committed offset" : "no snapshot";
    for (int gen = 0; gen < SNAP_KINDS; gen++) {
        snap_path_of(p, part, gen, path, sizeof path);
        uint8_t *buf;
        snap_hdr h;
        snap_load l = load_verified(p, path, part, &buf, &h, why, sizeof why);
        if (l == SNAP_MISSING)
            continue;
        if (l == SNAP_OLD) {
            NOPS_INFO("ingest", "partition %d: %s is a snapshot of an older version (no "
                      "checksum): not used", (int)part, path);
            continue;
        }
        if (l == SNAP_BAD) {
            STAT_ADD(p, snapshots_rejected, 1);
            NOPS_WARN("ingest", "partition %d: state snapshot %s refused: %s", (int)part, path,
                      why);
            cold = "the snapshot was refused";
            continue;
        }
        if (h.offset != at) {
            NOPS_INFO("ingest", "partition %d: state snapshot %s is at offset %lld, the %s "
                      "offset is %lld: not used", (int)part, path, (long long)h.offset,
                      incidents_only ? "resumed" : "committed", (long long)at);
            if (h.offset > at)
                cold = "the snapshot is ahead of the committed offset";
            nops_free(buf);
            continue;
        }
        const uint8_t *series, *corr;
        size_t series_len, corr_len;
        split_body(buf, &h, &series, &series_len, &corr, &corr_len);
        size_t n = incidents_only ? 0 : restore_body(p, part, series, series_len, path);
        restore_incidents(p, part, corr, corr_len, path);
        nops_free(buf);
        if (incidents_only)
            return 0;
        STAT_ADD(p, restored_series, n);
        NOPS_INFO("ingest", "partition %d: %zu series restored warm from %s (offset %lld)",
                  (int)part, n, path, (long long)at);
        return n;
    }
    if (at >= 0 && !incidents_only)
        NOPS_INFO("ingest", "partition %d: starting cold at the committed offset %lld (%s)",
                  (int)part, (long long)at, cold);
    return 0;
}

size_t nops__snap_restore(nops_pipeline *p, int32_t part, int64_t committed)
{
    return restore_at(p, part, committed, false);
}

void nops__snap_restore_incidents(nops_pipeline *p, int32_t part, int64_t held)
{
    restore_at(p, part, held, true);
}

/*
 * The broker confirmed the commit of `offset` for `part`: keep the snapshot taken there as
 * .snap.committed (a hard link, swapped in by rename), so that it survives however many later
 * snapshots are written while their commits fail. Before, only the newest two were kept: during
 * a rebalance two refused commits in a row left both ahead of the committed offset, and the
 * next owner started the partition cold (its detectors blind for a warm-up) — what made
 * test_incident_identity lose a host's last signals on a loaded machine. Poller thread.
 */
void nops__snap_committed(nops_pipeline *p, int32_t part, int64_t offset)
{
    if (part < 0 || part >= MAX_PARTITIONS || offset < 0)
        return;
    char path[1100], keep[1100], tmp[1200];
    snap_path_of(p, part, SNAP_COMMITTED, keep, sizeof keep);
    for (int gen = SNAP_NEWEST; gen <= SNAP_PREV; gen++) {
        snap_path_of(p, part, gen, path, sizeof path);
        FILE *f = nops_file_fopen(path, "r");
        snap_hdr h;
        const bool got = f && fread(&h, sizeof h, 1, f) == 1;
        if (f)
            fclose(f);
        if (!got || h.magic != SNAP_MAGIC || h.partition != part || h.offset != offset)
            continue;
        snprintf(tmp, sizeof tmp, "%s.tmp", keep);
        (void)unlink(tmp);
        if (link(path, tmp) != 0 || rename(tmp, keep) != 0) {
            (void)unlink(tmp);
            NOPS_WARN("ingest", "partition %d: cannot keep the snapshot at the committed offset "
                      "%lld as %s: %s", (int)part, (long long)offset, keep, strerror(errno));
        }
        return;
    }
}
