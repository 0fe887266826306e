/*
 * jsonfmt_int.h — what the JSON metric tokenizer (jsonfmt.c) shares with its jansson slow path
 * (jsonfmt_jansson.c). Internal to parse/.
 */
#ifndef NOPS_PARSE_JSONFMT_INT_H
#define NOPS_PARSE_JSONFMT_INT_H

#include "parse/parse.h"

#include <string.h>

typedef struct json_ctx {
    int64_t now_ns;        /* stamp for points without a timestamp */
    nops_point_fn fn;      /* consumer */
    void *ud;              /* its data */
    nops_parse_stats *st;  /* counters */
    uint32_t objects;      /* objects seen */
    bool stop;             /* the consumer asked to stop */
} json_ctx;

/* The first rejection of a message is the one reported. */
void nops_json_reject(json_ctx *c, nops_reject r, const char *detail);

/* The detail of an object of neither shape. */
extern const char nops_json_unsupported[];

/*
 * The slow path: one JSON document at p (not whitespace) parsed into a jansson tree and its
 * points delivered, or the document rejected (malformed: resynchronised at the next line).
 * Returns where the next document may start. Taken for every document the tokenizer does not
 * vouch for (malformed or unusual input), so every error is classified exactly as jansson does.
 */
const char *nops_json_doc_jansson(json_ctx *c, const char *p, const char *end);

#define JT_DEPTH 64      /* nesting the validator follows */
#define JT_KEYS 256      /* keys of all open objects, for the duplicate check */
#define JT_STR_MAX 4096  /* longest string (raw bytes) taken */
#define JT_NUM_MAX 400   /* longest number token taken */
#define JT_SCRATCH 16384 /* escaped text of one document (decoded text is never longer) */

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static inline const char *ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * The first of the next 8 bytes at p that is a quote, a backslash or (with `strict`) a control
 * or non-ASCII byte: its offset, or 8 when none is. Word-at-a-time (the byte loop it replaces
 * was a chain of dependent loads); the caller makes sure 8 bytes are there. The lowest flagged
 * byte of each mask is exact (borrows only run upwards), so the first match is found.
 */
static inline unsigned swar_special(const char *p, bool strict)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b);
    if (strict)
        hit |= ((x - ones * 0x20) & ~x) | x;
    hit &= high;
    return hit ? (unsigned)__builtin_ctzll(hit) >> 3 : 8;
}

/* Four hex digits at p, or -1. */
int nops_json_hex4(const char *p);

/*
 * One document at p (not whitespace): past its closing brace when it is an object the
 * tokenizer vouches for (valid JSON within the limits above: strings at most JT_STR_MAX bytes,
 * escaped strings at most JT_SCRATCH bytes in all, keys without escapes, integers within
 * int64), else NULL.
 */
const char *nops_json_validate(const char *p, const char *end);

#endif /* NOPS_PARSE_JSONFMT_INT_H */
