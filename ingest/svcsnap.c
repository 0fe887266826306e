/*
 * svcsnap.c — snapshots of the service stage's correlator, one per partition of the service
 * topic, at the offset the stage commits (svcstage.c, "Delivery"): written before the commit,
 * kept as .snap.committed once it landed, restored by the partition's next owner when it
 * verifies. Stage thread only.
 */
#include "ingest/svcstage_int.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SVC_MAGIC 0x31435653504f4e00ull /* "\0NOPSVC1" */
#define SVC_PURPOSE "service-snapshot"
#define SVC_TAG_LEN 32

typedef struct svc_hdr {
    uint64_t magic;    /* SVC_MAGIC */
    int64_t offset;    /* next message the state has not seen */
    int64_t part_now;  /* the partition's data time */
    int32_t partition; /* whose state */
    uint32_t keyed;    /* 1: HMAC under the engine key, 0: SHA-256 */
    uint64_t body_len; /* correlator bytes after the header; then the tag */
} svc_hdr;

/* kind 0: the newest snapshot, 1: the one before, 2: the one at the last commit that landed
 * (a hard link, so that refused commits in a row cannot push it out: snapshot.c says why) */
static void svc_path(const svc_stage *s, int32_t part, int kind, char *buf, size_t cap)
{
    static const char *const suffix[3] = {"", ".prev", ".committed"};
    snprintf(buf, cap, "%s/%s-%s-%d.snap%s", s->p->state_dir, s->group, s->topic, (int)part,
             suffix[kind]);
}

void nops__svc_snap_keep_committed(svc_stage *s, int32_t part)
{
    char path[1200], keep[1200], tmp[1300];
    svc_path(s, part, 0, path, sizeof path);
    svc_path(s, part, 2, keep, sizeof keep);
    snprintf(tmp, sizeof tmp, "%s.tmp", keep);
    (void)unlink(tmp);
    if (link(path, tmp) != 0 || rename(tmp, keep) != 0) {
        (void)unlink(tmp);
        NOPS_WARN("ingest", "service stage: cannot keep %s as %s: %s", path, keep,
                  strerror(errno));
    }
}

static void svc_tag(const svc_stage *s, const void *data, size_t len, unsigned char *out)
{
    if (s->p->secret) {
        nops_secret_mac(s->p->secret, SVC_PURPOSE, data, len, out);
        return;
    }
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
        memset(out, 0, SVC_TAG_LEN);
}

void nops__svc_snap_write(svc_stage *s, int32_t part)
{
    void *body = NULL;
    size_t len = 0;
    if (nops_correlate_save(s->corr, part, &body, &len) != NOPS_OK) {
        NOPS_WARN("ingest", "service stage: no memory to snapshot partition %d", (int)part);
        return;
    }
    const size_t total = sizeof(svc_hdr) + len + SVC_TAG_LEN;
    unsigned char *b = nops_malloc(total);
    if (b) {
        svc_hdr h = {SVC_MAGIC, s->next_off[part], s->part_now[part], part,
                     s->p->secret != NULL, len};
        memcpy(b, &h, sizeof h);
        memcpy(b + sizeof h, body, len);
        svc_tag(s, b, sizeof h + len, b + sizeof h + len);
        char path[1200], prev[1200];
        svc_path(s, part, 0, path, sizeof path);
        svc_path(s, part, 1, prev, sizeof prev);
        (void)rename(path, prev); /* keep the one before: its commit may not land */
        if (nops_file_replace(path, b, total) != 0)
            NOPS_WARN("ingest", "service stage: cannot write %s", path);
    }
    nops_free(b);
    nops_free(body);
}

bool nops__svc_snap_restore(svc_stage *s, int32_t part, int64_t committed)
{
    for (int k = 0; k < 3; k++) {
        char path[1200];
        svc_path(s, part, k, path, sizeof path);
        size_t len = 0;
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        unsigned char *b = NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (len = (size_t)ftell(f)) > sizeof(svc_hdr) &&
            len < (64u << 20) && fseek(f, 0, SEEK_SET) == 0 && (b = nops_malloc(len)) &&
            fread(b, 1, len, f) != len) {
            nops_free(b);
            b = NULL;
        }
        fclose(f);
        svc_hdr h;
        unsigned char tag[SVC_TAG_LEN];
        bool ok = b != NULL;
        if (ok) {
            memcpy(&h, b, sizeof h);
            ok = h.magic == SVC_MAGIC && h.partition == part && h.offset == committed &&
                 h.keyed == (s->p->secret != NULL) && h.body_len == len - sizeof h - SVC_TAG_LEN;
        }
        if (ok) {
            svc_tag(s, b, sizeof h + h.body_len, tag);
            ok = CRYPTO_memcmp(tag, b + sizeof h + h.body_len, SVC_TAG_LEN) == 0 &&
                 nops_correlate_load(s->corr, part, b + sizeof h, h.body_len) == NOPS_OK;
        }
        if (ok)
            s->part_now[part] = h.part_now;
        nops_free(b);
        if (ok) {
            NOPS_INFO("ingest", "service stage: partition %d restored at offset %lld",
                      (int)part, (long long)committed);
            return true;
        }
    }
    return false;
}
