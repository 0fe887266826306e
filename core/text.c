/*
 * text.c — UTF-8 checks for text that came from outside (tags, step output).
 *
 * The decoder follows RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
 * nops_utf8_sanitize copies text, replacing every byte that does not start a valid sequence
 * with U+FFFD, and never cuts a character in two when the output is full, so what it writes is
 * always valid UTF-8 that jansson and PostgreSQL accept.
 */
#include "core/core.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Length of the valid sequence at s[0..n), or 0 if the bytes there are not one. */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

size_t nops_utf8_valid_prefix(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) { /* the common case, a byte at a time */
            i++;
            continue;
        }
        size_t l = seq_len(p + i, n - i);
        if (!l)
            return i;
        i += l;
    }
    return n;
}

bool nops_utf8_valid(const char *s, size_t n)
{
    return nops_utf8_valid_prefix(s, n) == n;
}

size_t nops_utf8_sanitize(const char *s, size_t n, char *out, size_t cap, size_t *replaced)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0, bad = 0;
    if (cap == 0)
        return 0;
    while (i < n) {
        size_t l = seq_len(p + i, n - i);
        const char *src = l ? s + i : "\xEF\xBF\xBD";
        size_t w = l ? l : 3;
        if (p[i] == '\0') /* a NUL would end the text early in every consumer */
            src = "\xEF\xBF\xBD", w = 3, l = 1;
        if (o + w >= cap)
            break;
        memcpy(out + o, src, w);
        o += w;
        if (!l || p[i] == '\0')
            bad++;
        i += l ? l : 1;
    }
    out[o] = '\0';
    if (replaced)
        *replaced = bad;
    return o;
}

size_t nops_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t i = max;
    /* step back over continuation bytes to the start of the character that crosses max */
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80 && max - i < 4)
        i--;
    return i;
}

bool nops_list_has(const char *list, const char *word)
{
    const size_t wl = strlen(word);
    for (const char *s = list; *s;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        while (len && isspace((unsigned char)*s))
            s++, len--;
        while (len && isspace((unsigned char)s[len - 1]))
            len--;
        if ((len == 1 && *s == '*') || (len == wl && strncasecmp(s, word, len) == 0))
            return true;
        if (!end)
            break;
        s = end + 1;
    }
    return false;
}
