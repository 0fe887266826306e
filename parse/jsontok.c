/*
 * jsontok.c — pass 1 of the JSON metric tokenizer (jsonfmt.c): whether a document is JSON that
 * jansson would accept as the tree parser was called (JSON_REJECT_DUPLICATES), checked without
 * building anything: grammar, UTF-8 as jansson's utf8_check_full takes it, escapes and
 * surrogate pairs, no U+0000, no duplicate key, integers within int64, reals that cannot
 * overflow. It may refuse more than jansson (documents it does not track go to the jansson slow
 * path, which then decides), never less.
 */
#include "parse/jsonfmt_int.h"

#include <string.h>

/* The length of the UTF-8 sequence at p as jansson's utf8_check_full takes it, 0 if bad. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || (v >= 0xD800 && v <= 0xDFFF) ||
        v > 0x10FFFF)
        return 0;
    return n;
}

/* Four hex digits at p, or -1. */
int nops_json_hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                       : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* ---- pass 1: validation ---------------------------------------------------------------- */

/* A string at p (the opening quote): past its closing quote, or NULL. *esc: it has escapes. */
static const char *v_string(const char *p, const char *end, bool *esc)
{
    const char *s = ++p;
    *esc = false;
    for (;;) {
        while (end - p >= 8) {
            unsigned k = swar_special(p, true);
            p += k;
            if (k < 8)
                break;
        }
        while (p < end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 && *p != '"' &&
               *p != '\\')
            p++;
        if (p >= end)
            return NULL;
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c < 0x20)
            return NULL;
        if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)p, (const unsigned char *)end);
            if (!n)
                return NULL;
            p += n;
            continue;
        }
        *esc = true; /* a backslash */
        if (end - p < 2)
            return NULL;
        char e = p[1];
        if (e == 'u') {
            int u = end - p >= 6 ? nops_json_hex4(p + 2) : -1;
            if (u <= 0 || (u >= 0xDC00 && u <= 0xDFFF)) /* \u0000, a lone low surrogate */
                return NULL;
            p += 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                int l = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? nops_json_hex4(p + 2) : -1;
                if (l < 0xDC00 || l > 0xDFFF)
                    return NULL;
                p += 6;
            }
            continue;
        }
        if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
            e != 't')
            return NULL;
        p += 2;
    }
    if (p - s > JT_STR_MAX)
        return NULL;
    return p + 1;
}

/* A number at p: past it, or NULL (bad, or one the tokenizer leaves to jansson). */
static const char *v_number(const char *p, const char *end)
{
    const char *s = p;
    bool real = false;
    if (*p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return NULL;
    } else if (is_digit(*p)) {
        while (p < end && is_digit(*p))
            p++;
    } else {
        return NULL;
    }
    long int_digits = (long)(p - s) - (*s == '-');
    long exp = 0;
    if (p < end && *p == '.') {
        real = true;
        p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        bool neg = false;
        if (p < end && (*p == '+' || *p == '-'))
            neg = *p++ == '-';
        if (p >= end || !is_digit(*p))
            return NULL;
        const char *e0 = p;
        while (p < end && is_digit(*p))
            exp = exp * 10 + (*p++ - '0');
        if (p - e0 > 3)
            return NULL;
        if (neg)
            exp = 0; /* underflow is no error */
    }
    if (!real && (int_digits > 19 ||
                  (int_digits == 19 && memcmp(s + (*s == '-'), *s == '-' ? "9223372036854775808"
                                                                        : "9223372036854775807",
                                              19) > 0)))
        return NULL; /* past int64: jansson's error */
    if (int_digits + exp > 308 || p - s > JT_NUM_MAX) /* could overflow: jansson decides */
        return NULL;
    return p;
}

static const char *v_literal(const char *p, const char *end)
{
    const char *w = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
    size_t n = strlen(w);
    if ((size_t)(end - p) < n || memcmp(p, w, n) != 0)
        return NULL;
    p += n;
    return p < end && is_alpha(*p) ? NULL : p;
}

typedef struct kspan {
    const char *s;
    size_t n;
} kspan;

/*
 * One document at p (not whitespace): past its closing brace when it is an object the
 * tokenizer vouches for, else NULL. An explicit stack, not recursion, bounds the depth. The
 * function is long because it is one state machine; splitting its states apart would only
 * pass the stack around.
 */
const char *nops_json_validate(const char *p, const char *end)
{
    char stack[JT_DEPTH];     /* '{' or '[' of each open container */
    uint32_t kbase[JT_DEPTH]; /* first key of each open object in keys[] */
    kspan keys[JT_KEYS];
    uint32_t nk = 0;
    int d = 0;
    size_t escaped = 0;
    bool esc;
    if (*p != '{')
        return NULL;
value:
    p = ws(p, end);
    if (p >= end)
        return NULL;
    switch (*p) {
    case '{':
    case '[':
        if (d == JT_DEPTH)
            return NULL;
        kbase[d] = nk;
        stack[d++] = *p++;
        p = ws(p, end);
        if (p >= end)
            return NULL;
        if (*p == (stack[d - 1] == '{' ? '}' : ']')) {
            p++;
            d--;
            goto after;
        }
        if (stack[d - 1] == '{')
            goto key;
        goto value;
    case '"': {
        const char *s = p;
        if (!(p = v_string(p, end, &esc)))
            return NULL;
        if (esc && (escaped += (size_t)(p - s)) > JT_SCRATCH)
            return NULL;
        goto after;
    }
    case 't':
    case 'f':
    case 'n':
        if (!(p = v_literal(p, end)))
            return NULL;
        goto after;
    default:
        if (*p != '-' && !is_digit(*p))
            return NULL;
        if (!(p = v_number(p, end)))
            return NULL;
        goto after;
    }
key:
    if (*p != '"' || nk == JT_KEYS)
        return NULL;
    {
        const char *s = p + 1;
        if (!(p = v_string(p, end, &esc)) || esc)
            return NULL;
        size_t n = (size_t)(p - 1 - s);
        for (uint32_t i = kbase[d - 1]; i < nk; i++)
            if (keys[i].n == n && memcmp(keys[i].s, s, n) == 0)
                return NULL; /* a duplicate key */
        keys[nk++] = (kspan){s, n};
    }
    p = ws(p, end);
    if (p >= end || *p != ':')
        return NULL;
    p++;
    goto value;
after:
    if (d == 0)
        return p;
    p = ws(p, end);
    if (p >= end)
        return NULL;
    if (*p == ',') {
        p = ws(p + 1, end);
        if (p >= end)
            return NULL;
        if (stack[d - 1] == '{')
            goto key;
        goto value;
    }
    if (*p != (stack[d - 1] == '{' ? '}' : ']'))
        return NULL;
    nk = kbase[--d];
    p++;
    goto after;
}

