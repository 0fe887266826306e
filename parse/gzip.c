/*
 * gzip.c — request bodies sent with `Content-Encoding: gzip` (Telegraf's content_encoding =
 * "gzip", curl --compressed-ish clients), decompressed with zlib under a cap.
 *
 * A zip bomb is a small body that inflates without end; so the output grows only up to `max`
 * bytes, and the first byte past it stops the inflation with NOPS_RANGE (the caller answers
 * 413) — the memory spent is bounded by the cap, never by the claim of the stream. Several gzip
 * members one after another (what `cat a.gz b.gz` makes, and RFC 1952 allows) are read in turn.
 * Unlike the text parsers this allocates: the output buffer, which the caller owns.
 */
#include "parse/parse.h"

#include <string.h>
#include <zlib.h>

static void *z_alloc(void *ud, unsigned items, unsigned size)
{
    (void)ud;
    return nops_malloc((size_t)items * size);
}

static void z_free(void *ud, void *p)
{
    (void)ud;
    nops_free(p);
}

nops_err nops_ingest_gunzip(const void *in, size_t len, size_t max, nops_buf *out,
                            const char **why)
{
    out->len = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    z.zalloc = z_alloc;
    z.zfree = z_free;
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only */
        return NOPS_NOMEM;
    const unsigned char *p = in;
    size_t left = len;
    nops_err e = NOPS_OK;
    int zr = Z_OK;
    for (;;) {
        if (out->cap - out->len < 2 && out->len <= max) {
            size_t want = out->len < 65536 ? 65536 : out->len; /* double, within max + 1 */
            if (want > max + 1 - out->len)
                want = max + 1 - out->len;
            if (nops_buf_reserve(out, want + 1) != NOPS_OK) {
                e = NOPS_NOMEM;
                break;
            }
        }
        unsigned chunk = left > (1u << 30) ? (1u << 30) : (unsigned)left;
        z.next_in = (unsigned char *)p;
        z.avail_in = chunk;
        size_t room = out->cap - out->len - 1; /* keep one byte for the NUL */
        if (room > max + 1 - out->len)
            room = max + 1 - out->len;
        z.next_out = (unsigned char *)out->b + out->len;
        z.avail_out = room > (1u << 30) ? (1u << 30) : (unsigned)room;
        const unsigned out_before = z.avail_out;
        zr = inflate(&z, Z_NO_FLUSH);
        p += chunk - z.avail_in;
        left -= chunk - z.avail_in;
        out->len += out_before - z.avail_out;
        if (out->len > max) {
            e = NOPS_RANGE;
            if (why)
                *why = "body decompresses past the body limit";
            break;
        }
        if (zr == Z_STREAM_END) {
            if (left == 0)
                break;
            inflateReset(&z); /* another member follows */
            continue;
        }
        if (zr == Z_MEM_ERROR) {
            e = NOPS_NOMEM;
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            e = NOPS_PARSE;
            if (why)
                *why = z.msg && strstr(z.msg, "header") ? "body is not gzip"
                                                        : "gzip body is corrupt";
            break;
        }
        if (left == 0 && z.avail_out > 0) { /* everything given, nothing more comes out */
            e = NOPS_PARSE;
            if (why)
                *why = "gzip body is truncated";
            break;
        }
    }
    inflateEnd(&z);
    if (out->b)
        out->b[out->len < out->cap ? out->len : out->cap - 1] = '\0';
    return e;
}
