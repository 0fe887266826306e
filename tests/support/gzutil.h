/*
 * gzutil.h — gzip for the tests of gzip request bodies (zlib; include after cmocka.h).
 */
#ifndef NOPS_TESTS_GZUTIL_H
#define NOPS_TESTS_GZUTIL_H

#include <zlib.h>

/* `in` (n bytes) gzipped into out (cap bytes); its length. */
static inline size_t tu_gzip(const void *in, size_t n, unsigned char *out, size_t cap)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    z.next_in = (unsigned char *)in;
    z.avail_in = (unsigned)n;
    z.next_out = out;
    z.avail_out = (unsigned)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

#endif
