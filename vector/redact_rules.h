/*
 * redact_rules.h — the redactor's rule table (internal to vector/). One row per rule: a name,
 * the class it counts as (and whose placeholder replaces it), the bytes a match can start
 * with, and a matcher. redact.c runs the pass; redact_rules.c holds the rows. To add a rule:
 * write its matcher, add its row where it should be tried (first match wins), and give it a
 * row of positive and negative examples in tests/vector/test_redact.c (the test fails for a
 * rule without one).
 */
#ifndef NOPS_REDACT_RULES_H
#define NOPS_REDACT_RULES_H

#include "vector/vector.h"

#include <string.h>

/**
 * The text being scanned. Matchers read base[at..len) forward and, for context, a few bytes
 * before `at`; the PEM rule remembers where it last found "-----END " so that the whole pass
 * stays linear however many BEGIN lines the text holds.
 */
typedef struct nops__rscan {
    const char *base; /**< the whole input (not NUL-terminated) */
    size_t len;       /**< its length */
    size_t end_from;  /**< where the last "-----END " search started (SIZE_MAX: none yet) */
    size_t end_at;    /**< what it found: an offset, or SIZE_MAX for "none up to len" */
} nops__rscan;

/**
 * Try a rule on the token that starts at base[at]. Returns the bytes consumed (0: no match).
 * The part replaced by the placeholder is [*vs, *vs + *vl) relative to `at` when the matcher
 * sets them (the rest of the match is kept as it is: "Bearer ", "password=", "://user:");
 * otherwise the whole match is replaced. Never allocates.
 */
typedef size_t (*nops__rmatch_fn)(nops__rscan *sc, size_t at, size_t *vs, size_t *vl);

typedef struct nops__rrule {
    const char *name;      /**< stable name: tests and docs refer to it */
    nops_redact_class cls; /**< counted as; replaced by its placeholder */
    const char *first;     /**< bytes a match can start with */
    bool anywhere;         /**< tried at every byte, not only where a token starts */
    nops__rmatch_fn match; /**< the matcher */
    const char *doc;       /**< what it matches, one line */
} nops__rrule;

/** The rows, in the order they are tried. At most 32 (the dispatch masks are 32-bit). */
extern const nops__rrule nops__redact_rules[];
extern const size_t nops__redact_nrules;

/* Character classes, ASCII only whatever the locale, and small scanners the matchers share. */

static inline bool c_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}
static inline bool c_upper(char c)
{
    return (unsigned char)(c - 'A') < 26;
}
static inline bool c_lower(char c)
{
    return (unsigned char)(c - 'a') < 26;
}
static inline bool c_alpha(char c)
{
    return c_upper(c) || c_lower(c);
}
static inline bool c_alnum(char c)
{
    return c_alpha(c) || c_digit(c);
}
static inline bool c_hex(char c)
{
    return c_digit(c) || (unsigned char)((c | 0x20) - 'a') < 6;
}
static inline bool c_word(char c)
{
    return c_alnum(c) || c == '_';
}
static inline bool c_b64url(char c)
{
    return c_alnum(c) || c == '-' || c == '_';
}
static inline bool c_b64(char c)
{
    return c_alnum(c) || c == '+' || c == '/';
}
static inline bool c_b64pad(char c)
{
    return c_b64(c) || c == '=';
}
static inline bool c_ident(char c)
{
    return c_alnum(c) || c == '_' || c == '-';
}
static inline bool c_alnum_fn(char c)
{
    return c_alnum(c);
}
static inline bool c_dotted(char c)
{
    return c_alnum(c) || c == '-' || c == '.' || c == '_';
}
static inline bool c_local(char c)
{
    return c_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
static inline bool c_dom(char c)
{
    return c_alnum(c) || c == '-';
}
static inline bool c_hookpath(char c)
{
    return c_alnum(c) || c == '/' || c == '_' || c == '-';
}
static inline bool c_token(char c)
{
    return c_b64url(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

/* c is one of set (never true for NUL) */
static inline bool in_set(char c, const char *set)
{
    return c && strchr(set, c);
}

static inline size_t span(const char *s, size_t n, bool (*ok)(char))
{
    size_t i = 0;
    while (i < n && ok(s[i]))
        i++;
    return i;
}

/* s[i] does not continue a word (end of text, or not a letter, digit or '_') */
static inline bool word_ends(const char *s, size_t n, size_t i)
{
    return i >= n || !c_word(s[i]);
}

/* The matchers of personal data and addresses (redact_pii.c). */
size_t nops__rx_email(nops__rscan *sc, size_t at, size_t *vs, size_t *vl);
size_t nops__rx_iban(nops__rscan *sc, size_t at, size_t *vs, size_t *vl);
size_t nops__rx_ipv6(nops__rscan *sc, size_t at, size_t *vs, size_t *vl);
size_t nops__rx_card(nops__rscan *sc, size_t at, size_t *vs, size_t *vl);
size_t nops__rx_phone(nops__rscan *sc, size_t at, size_t *vs, size_t *vl);
size_t nops__rx_ipv4(nops__rscan *sc, size_t at, size_t *vs, size_t *vl);

#define NOPS__TOKEN                                                                                \
    const char *s = sc->base + at;                                                                 \
    const size_t n = sc->len - at

#endif /* NOPS_REDACT_RULES_H */
