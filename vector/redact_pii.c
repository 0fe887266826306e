/*
 * redact_pii.c — the matchers of personal data and addresses in the redactor's rule table
 * (redact_rules.h): e-mail addresses, IBANs, IPv6 and IPv4 addresses, payment cards, phone
 * numbers. Same contract as redact_rules.c: forward scanners over one token, no allocation.
 */
#include "vector/redact_rules.h"

#include <stdint.h>
#include <string.h>

#define TOKEN NOPS__TOKEN

size_t nops__rx_email(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    const size_t l = span(s, n, c_local);
    if (l == 0 || l >= n || s[l] != '@') return 0;
    size_t i = l + 1, labels = 0, last = 0;
    for (;;) {
        const size_t k = span(s + i, n - i, c_dom);
        if (k == 0) break;
        labels++;
        last = k;
        i += k;
        if (i + 1 < n && s[i] == '.' && c_dom(s[i + 1]))
            i++;
        else
            break;
    }
    if (labels < 2 || last < 2) return 0;
    for (size_t t = i - last; t < i; t++)
        if (!c_alpha(s[t])) return 0;
    return i;
}

/*
 * IBAN: two upper-case letters, two check digits, then upper-case letters and digits, 15-34 in
 * all, written solid or in groups of four separated by single spaces; the ISO 7064 mod-97
 * check must hold. In grouped form the longest prefix of whole groups that passes is taken
 * ("DE89 3704 0044 0532 0130 00 EUR" keeps "EUR").
 */
size_t nops__rx_iban(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    if (n < 15 || !c_upper(s[0]) || !c_upper(s[1]) || !c_digit(s[2]) || !c_digit(s[3])) return 0;
    uint32_t head = 0; /* the first four characters, moved to the end for the check */
    for (int i = 0; i < 4; i++)
        head = c_digit(s[i]) ? head * 10 + (uint32_t)(s[i] - '0')
                             : head * 100 + (uint32_t)(s[i] - 'A' + 10);
    uint32_t r = 0;
    size_t nb = 4, i = 4, group = 4, best = 0;
    bool spaced = false;
    for (;;) {
        if (i < n && (c_upper(s[i]) || c_digit(s[i]))) {
            if (++nb > 34) return best;
            r = c_digit(s[i]) ? (r * 10 + (uint32_t)(s[i] - '0')) % 97
                              : (r * 100 + (uint32_t)(s[i] - 'A' + 10)) % 97;
            i++;
            group++;
            continue;
        }
        /* the end of a run: a candidate when the check holds (head is ≤ 6 digits) */
        if (nb >= 15 && (r * 1000000 + head) % 97 == 1 && !(i < n && c_word(s[i]))) best = i;
        if (i + 1 < n && s[i] == ' ' && group == 4 && (spaced || nb == 4) &&
            (c_upper(s[i + 1]) || c_digit(s[i + 1]))) {
            spaced = true;
            group = 0;
            i++;
            continue;
        }
        return best;
    }
}

size_t nops__rx_ipv6(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    size_t i = 0, colons = 0, groups = 0, last_group = 0;
    bool dbl = false;
    while (i < n) {
        size_t h = 0;
        while (i + h < n && h < 5 && c_hex(s[i + h]))
            h++;
        if (h > 4) return 0;
        if (h) {
            groups++;
            last_group = i;
            i += h;
        }
        if (i < n && s[i] == ':') {
            if (i + 1 < n && s[i + 1] == ':') {
                if (dbl) return 0;
                dbl = true;
                colons += 2;
                i += 2;
            } else {
                colons++;
                i++;
            }
            continue;
        }
        break;
    }
    if (!(dbl || colons == 7) || colons < 2 || groups < 1 || groups > 8) return 0;
    if (i < n && s[i] == '.') { /* IPv4-mapped tail */
        size_t v4 = nops__rx_ipv4(sc, at + last_group, vs, vl);
        return v4 ? last_group + v4 : 0;
    }
    if (s[i - 1] == ':' && !(i >= 2 && s[i - 2] == ':'))
        return 0; /* ends in a single colon: "key:" text */
    if (i < n && (c_alnum(s[i]) || s[i] == '_' || s[i] == ':'))
        return 0; /* part of a longer colon run: not an address */
    return i;
}

/*
 * Payment cards: 13-19 digits, first digit 2-6 (epoch timestamps start with 1), Luhn-valid.
 * Between digits: single spaces or dashes anywhere; or dots, or double spaces, used the same
 * way throughout in groups (first group of 4, middle groups of 4-6): 4111.1111.1111.1111,
 * 4111  1111  1111  1111.
 */
size_t nops__rx_card(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    if (s[0] < '2' || s[0] > '6') return 0;
    char d[19];
    size_t nd = 0, i = 0, group = 0, groups = 0;
    char strict = 0; /* '.' or 'D' (two spaces) once seen */
    bool loose = false, bad_group = false;
    while (i < n) {
        if (c_digit(s[i])) {
            if (nd == sizeof d) return 0;
            d[nd++] = s[i++];
            group++;
            continue;
        }
        const size_t w = s[i] == ' ' && i + 1 < n && s[i + 1] == ' ' ? 2 : 1;
        if (!in_set(s[i], " -.") || i + w >= n || !c_digit(s[i + w])) break;
        const char kind = w == 2 ? 'D' : s[i];
        if (kind == '.' || kind == 'D') { /* a different separator ends the number */
            if ((strict && strict != kind) || loose) break;
            strict = kind;
        } else {
            if (strict) break;
            loose = true;
        }
        bad_group |= groups == 0 ? group != 4 : group < 4 || group > 6;
        groups++;
        group = 0;
        i += w;
    }
    if (nd < 13 || (i < n && c_alnum(s[i])) || (strict && bad_group)) return 0;
    int sum = 0;
    for (size_t k = 0; k < nd; k++) { /* Luhn */
        int v = d[nd - 1 - k] - '0';
        if (k % 2 == 1) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        sum += v;
    }
    return sum % 10 == 0 ? i : 0;
}

/* Digits with single separators of `seps` between; counts digits into *nd. */
static size_t digit_run(const char *s, size_t n, const char *seps, size_t *nd, size_t max)
{
    size_t i = 0;
    *nd = 0;
    while (i < n) {
        if (c_digit(s[i])) {
            if (*nd == max) return 0;
            ++*nd;
            i++;
        } else if (in_set(s[i], seps) && *nd && i + 1 < n && c_digit(s[i + 1])) {
            i++;
        } else {
            break;
        }
    }
    return i;
}

size_t nops__rx_phone(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    size_t nd, i = 0;
    if (s[0] == '+') { /* international: +CC then 7..14 more digits in groups */
        size_t len = digit_run(s + 1, n - 1, " -.()", &nd, 16);
        return len && nd >= 8 && nd <= 15 && (1 + len >= n || !c_alnum(s[1 + len])) ? 1 + len : 0;
    }
    if (s[0] == '(') /* (415) 555-0100 */
        i = 1;
    size_t g[3] = {0}, want[3] = {3, 3, 4};
    for (int k = 0; k < 3; k++) {
        while (i < n && c_digit(s[i]) && g[k] < 5)
            g[k]++, i++;
        if (g[k] != want[k]) return 0;
        if (k == 0 && s[0] == '(') {
            if (i >= n || s[i] != ')') return 0;
            i++;
            if (i < n && s[i] == ' ') i++;
        } else if (k < 2) {
            if (i >= n || !in_set(s[i], "-. ")) return 0;
            i++;
        }
    }
    return i < n && (c_alnum(s[i]) || s[i] == '-') ? 0 : i;
}

size_t nops__rx_ipv4(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || s[i] != '.') return 0;
            i++;
        }
        size_t d = 0;
        int v = 0;
        while (i < n && d < 4 && c_digit(s[i]))
            v = v * 10 + (s[i++] - '0'), d++;
        if (d == 0 || d > 3 || v > 255) return 0;
    }
    if (i < n && (c_alnum(s[i]) || (s[i] == '.' && i + 1 < n && c_digit(s[i + 1])) ||
                  (s[i] == ':' && i + 1 < n && s[i + 1] == ':')))
        return 0; /* a longer dotted number (a version) or a colon run: not an address */
    return i;
}
