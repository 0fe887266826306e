/*
 * redact_rules.c — the rows of the redactor's rule table (redact_rules.h) and their matchers.
 *
 * Each matcher is a small hand-written scanner over one token shape: it reads forward from the
 * token start (and at most a fixed window back, for context), never backtracks more than the
 * token, never allocates and never copies. Character classes are ASCII only, whatever the
 * locale: bytes ≥ 0x80 never belong to a secret shape. The order of the rows is the order they
 * are tried in; the first match wins (vendor token shapes before the generic key=value rule,
 * addresses last). Rules whose shape starts with a distinctive prefix (ghp_, xoxb-, AKIA, ...)
 * are tried anywhere, also inside a longer token ("run-ghp_…"); the others only where a token
 * starts, so that host names, versions and paths stay whole. docs/policies/data_redaction.md
 * describes every row with examples.
 */
#include "vector/redact_rules.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define DIGIT "0123456789"

#define PEM_MAX_BODY (64 * 1024) /* an END line further than this belongs to something else */
#define CONTEXT_WINDOW 100       /* bytes looked back for "aws" before a bare 40-char key */

/* s[0..n) begins with one of the placeholders (already redacted: leave it) */
static bool at_placeholder(const char *s, size_t n)
{
    if (n < 4 || s[0] != '<') return false;
    for (int c = 0; c < NOPS_REDACT_N; c++) {
        const char *ph = nops_redact_placeholder((nops_redact_class)c);
        size_t l = strlen(ph);
        if (n >= l && memcmp(s, ph, l) == 0) return true;
    }
    return false;
}

/* The end of a value from s[i]: up to the closing quote `q`, or (q = 0) up to a byte of
 * `stops`; never through a placeholder, so a second pass cannot swallow one. */
static size_t value_end(const char *s, size_t n, size_t i, char q, const char *stops)
{
    while (i < n && (q ? s[i] != q : !in_set(s[i], stops)) &&
           !(s[i] == '<' && at_placeholder(s + i, n - i)))
        i++;
    return i;
}

/* One of `words` (case-insensitive) within `win` bytes before `at`. */
static bool context_has(const nops__rscan *sc, size_t at, size_t win, const char *const *words)
{
    const size_t from = at > win ? at - win : 0;
    for (; *words; words++) {
        const size_t l = strlen(*words);
        for (size_t i = from; i + l <= at; i++)
            if ((sc->base[i] | 0x20) == ((*words)[0] | 0x20) &&
                strncasecmp(sc->base + i, *words, l) == 0)
                return true;
    }
    return false;
}

#define TOKEN NOPS__TOKEN

/* ---- PEM private keys ---------------------------------------------------------------------- */

/* The next "-----END " at or after `from` (absolute offset, SIZE_MAX: none). Remembers its last
 * answer: every byte of the text is searched at most once per pass. */
static size_t pem_find_end(nops__rscan *sc, size_t from)
{
    if (sc->end_from == SIZE_MAX || from < sc->end_from ||
        (sc->end_at != SIZE_MAX && from > sc->end_at)) {
        const char *p = memmem(sc->base + from, sc->len - from, "-----END ", 9);
        sc->end_from = from;
        sc->end_at = p ? (size_t)(p - sc->base) : SIZE_MAX;
    }
    return sc->end_at;
}

/* "[A-Z0-9 ]{0,48}-----" from s[i]: the index after the dashes, 0 when not there. */
static size_t pem_label_end(const char *s, size_t n, size_t i)
{
    const size_t lim = i + 48;
    while (i < n && i < lim && (c_upper(s[i]) || c_digit(s[i]) || s[i] == ' '))
        i++;
    return i + 5 <= n && memcmp(s + i, "-----", 5) == 0 ? i + 5 : 0;
}

/* The body of a key whose END line is missing (a cut paste): base64 chunks of 16+ characters
 * (or one ending in '=' or at the end of the text) and "Proc-Type: …"-style header lines (a
 * name with a dash), separated by white space or "\n" escapes. Prose after it stops the scan. */
static size_t pem_cut_body(const char *s, size_t n, size_t i)
{
    size_t done = i;
    for (;;) {
        size_t j = done;
        while (j < n && (in_set(s[j], " \t\r\n") ||
                         (s[j] == '\\' && j + 1 < n && (s[j + 1] == 'n' || s[j + 1] == 'r'))))
            j += s[j] == '\\' ? 2 : 1;
        size_t k = span(s + j, n - j, c_b64pad);
        if (k && (k >= 16 || s[j + k - 1] == '=' || j + k == n) &&
            (j + k == n || !in_set(s[j + k], ":-.,"))) {
            done = j + k;
            continue;
        }
        size_t h = span(s + j, n - j, c_ident); /* Proc-Type: 4,ENCRYPTED; DEK-Info: … */
        if (h >= 4 && j + h + 1 < n && s[j + h] == ':' && s[j + h + 1] == ' ' &&
            memchr(s + j + 1, '-', h - 1)) {
            const char *eol = memchr(s + j, '\n', n - j);
            done = eol ? (size_t)(eol - s) : n;
            continue;
        }
        return done;
    }
}

static size_t m_pem(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    if (n < 27 || memcmp(s, "-----BEGIN ", 11) != 0) return 0;
    size_t i = pem_label_end(s, n, 11);
    if (!i || !memmem(s + 11, i - 16, "PRIVATE KEY", 11)) return 0;
    const size_t end = pem_find_end(sc, at + i);
    if (end != SIZE_MAX && end - (at + i) <= PEM_MAX_BODY) {
        size_t j = pem_label_end(s, n, end - at + 9);
        return j ? j : end - at + 9;
    }
    return pem_cut_body(s, n, i);
}

/* ---- tokens with a known shape ------------------------------------------------------------- */

static size_t m_jwt(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    if (n < 10 || memcmp(s, "eyJ", 3) != 0) return 0;
    size_t i = span(s, n, c_b64url);
    for (int part = 0; part < 2; part++) {
        if (i >= n || s[i] != '.') return 0;
        size_t k = span(s + i + 1, n - i - 1, c_b64url);
        if (k == 0 && part == 0) return 0;
        i += 1 + k;
    }
    return i;
}

/* "Bearer <token>": the word is kept. */
static size_t m_bearer(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    if (n < 8 || strncasecmp(s, "bearer", 6) != 0 || (s[6] != ' ' && s[6] != '\t')) return 0;
    size_t i = 6;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t k = span(s + i, n - i, c_token);
    if (k < 8 || s[i] == '<') return 0;
    *vs = i;
    *vl = k;
    return i + k;
}

/* base64 of printable "user:password" (what a Basic header carries). */
static bool b64_userpass(const char *s, size_t k)
{
    size_t pad = 0;
    while (k && s[k - 1] == '=' && pad < 2)
        k--, pad++;
    if (k % 4 == 1) return false;
    uint32_t acc = 0;
    int bits = 0;
    size_t bytes = 0;
    bool colon = false;
    for (size_t i = 0; i < k; i++) {
        const char c = s[i];
        int v = c_upper(c)   ? c - 'A'
                : c_lower(c) ? c - 'a' + 26
                : c_digit(c) ? c - '0' + 52
                : c == '+'   ? 62
                : c == '/'   ? 63
                             : -1;
        if (v < 0) return false;
        acc = (acc << 6) | (uint32_t)v;
        if ((bits += 6) >= 8) {
            bits -= 8;
            const unsigned b = (acc >> bits) & 0xff;
            if (b < 0x20 || b > 0x7e) return false;
            colon |= b == ':';
            bytes++;
        }
    }
    return colon && bytes >= 3;
}

/* "Basic <base64>": the word is kept. The credentials must decode to printable "user:pass",
 * unless an Authorization header precedes them. */
static size_t m_basic(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    static const char *const header[] = {"authorization", NULL};
    TOKEN;
    if (n < 10 || strncasecmp(s, "basic", 5) != 0 || (s[5] != ' ' && s[5] != '\t')) return 0;
    size_t i = 5;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    const size_t k = span(s + i, n - i, c_b64pad);
    if (k < 4 || (i + k < n && (c_word(s[i + k]) || s[i + k] == '-'))) return 0;
    if (!(k >= 8 && b64_userpass(s + i, k)) && !context_has(sc, at, 32, header)) return 0;
    *vs = i;
    *vl = k;
    return i + k;
}

/* scheme://user:password@host — the password is replaced, the host left to the address rules. */
static size_t m_url_credentials(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    const char *sep = memchr(s, ':', n < 33 ? n : 33); /* cheap test first */
    if (!sep || (size_t)(sep - s) + 3 > n || sep[1] != '/' || sep[2] != '/')
        return 0;
    size_t i = 0;
    while (i < n && i < 32 && (c_alnum(s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '-'))
        i++;
    if (!c_alpha(s[0]) || s + i != sep) return 0;
    const size_t a = i + 3;
    size_t e = a, last_at = 0;
    for (; e < n && e - a < 512 && !in_set(s[e], "/?#<>\"'` \t\r\n"); e++)
        if (s[e] == '@') last_at = e;
    if (!last_at) return 0;
    const char *colon = memchr(s + a, ':', last_at - a);
    if (!colon) /* a user name alone (git@, a token@): left to the other rules */
        return 0;
    const size_t v = (size_t)(colon - s) + 1;
    if (v == last_at || at_placeholder(s + v, last_at - v)) return 0;
    *vs = v;
    *vl = last_at - v;
    return last_at + 1;
}

/* hooks.slack.com/services/T…/B…/secret — the path after services/ (or workflows/, triggers/). */
static size_t m_slack_webhook(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    static const char *const paths[] = {"services/", "workflows/", "triggers/"};
    TOKEN;
    if (n < 26 || memcmp(s, "hooks.slack.com/", 16) != 0) return 0;
    for (int p = 0; p < 3; p++) {
        const size_t l = 16 + strlen(paths[p]);
        if (n < l || memcmp(s + 16, paths[p], l - 16) != 0) continue;
        const size_t k = span(s + l, n - l, c_hookpath);
        if (k < 8) return 0;
        *vs = l;
        *vl = k;
        return l + k;
    }
    return 0;
}

/* A token made of `prefix` then at least `min` characters of class `cls` (with `trim`, a
 * trailing '.' or '-' — the end of a sentence — is given back): its length, 0 when s[0..n)
 * does not start with one. The shape of most vendor tokens below. */
static size_t prefix_span(const char *s, size_t n, const char *prefix, bool (*cls)(char),
                          size_t min, bool trim)
{
    const size_t l = strlen(prefix);
    if (n < l + min || memcmp(s, prefix, l) != 0)
        return 0;
    size_t k = span(s + l, n - l, cls);
    while (trim && k && (s[l + k - 1] == '.' || s[l + k - 1] == '-'))
        k--;
    return k >= min ? l + k : 0;
}

/* ghp_/gho_/ghu_/ghs_/ghr_ + 30+ letters or digits; github_pat_ + 22+ word characters. */
static size_t m_github(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    size_t l = 0;
    if (n >= 34 && s[0] == 'g' && s[1] == 'h' && in_set(s[2], "pousr") && s[3] == '_') {
        l = prefix_span(s + 4, n - 4, "", c_alnum_fn, 30, false);
        l = l ? 4 + l : 0;
    } else {
        l = prefix_span(s, n, "github_pat_", c_word, 22, false);
    }
    return l && word_ends(s, n, l) ? l : 0;
}

/* glpat- + 20+ of [A-Za-z0-9_-]. */
static size_t m_gitlab(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    return prefix_span(s, n, "glpat-", c_b64url, 20, false);
}

/* xoxb-/xoxp-/xoxa-/xoxr-/xoxs-/xoxe- (or xoxe.) + 10+ of [A-Za-z0-9.-] holding a digit. */
static size_t m_slack_token(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    if (n < 15 || memcmp(s, "xox", 3) != 0 || !in_set(s[3], "abeprs") ||
        (s[4] != '-' && s[4] != '.'))
        return 0;
    size_t k = span(s + 5, n - 5, c_dotted);
    while (k && (s[5 + k - 1] == '.' || s[5 + k - 1] == '-'))
        k--; /* the end of a sentence */
    bool digit = false;
    for (size_t i = 5; i < 5 + k && !digit; i++)
        digit = c_digit(s[i]);
    return k >= 10 && digit ? 5 + k : 0;
}

/* Stripe secret and restricted keys (sk_live_, rk_live_, sk_test_, rk_test_) and webhook
 * secrets (whsec_). Publishable keys (pk_) are public by design and kept. */
static size_t m_stripe(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    static const struct {
        const char *p;
        size_t min;
    } pre[] = {
        {"sk_live_", 10}, {"rk_live_", 10}, {"sk_test_", 10}, {"rk_test_", 10}, {"whsec_", 20}};
    TOKEN;
    if (n < 16 || (s[1] != 'k' && s[1] != 'h')) /* cheap test first */
        return 0;
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        const size_t l = strlen(pre[i].p);
        if (n < l + pre[i].min || memcmp(s, pre[i].p, l) != 0) continue;
        const size_t t = prefix_span(s, n, pre[i].p, c_alnum_fn, pre[i].min, false);
        return t && word_ends(s, n, t) ? t : 0;
    }
    return 0;
}

/* Google API keys: AIza + 30+ of [A-Za-z0-9_-] (35 in practice). */
static size_t m_google_api_key(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    return prefix_span(s, n, "AIza", c_b64url, 30, false);
}

/* Google OAuth access tokens: ya29. + 20+ of [A-Za-z0-9._-]. */
static size_t m_google_oauth(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    return prefix_span(s, n, "ya29.", c_dotted, 20, true);
}

/* sk- + 32+ of [A-Za-z0-9_-] with upper case, lower case and digits: OpenAI (sk-proj-,
 * sk-svcacct-, sk-admin-, legacy sk-…) and Anthropic (sk-ant-) keys. A host name such as
 * sk-prod-cluster-… has no upper case. */
static size_t m_sk_dash_key(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    const size_t t = prefix_span(s, n, "sk-", c_b64url, 32, false);
    bool up = false, lo = false, dg = false;
    for (size_t i = 3; i < t; i++)
        up |= c_upper(s[i]), lo |= c_lower(s[i]), dg |= c_digit(s[i]);
    return up && lo && dg ? t : 0;
}

/* ---- passwords by position ----------------------------------------------------------------- */

/* A quoted value at s[q] (the quote): the inside is replaced, both quotes kept. An unclosed
 * quote runs to the next white space. */
static size_t quoted_value(const char *s, size_t n, size_t q, size_t *vs, size_t *vl)
{
    size_t e = value_end(s, n, q + 1, s[q], "");
    const bool closed = e < n && s[e] == s[q];
    if (!closed && (e == n || s[e] != '<')) e = value_end(s, n, q + 1, 0, " \t\r\n");
    if (e == q + 1) return 0;
    *vs = q + 1;
    *vl = e - q - 1;
    return closed ? e + 1 : e;
}

/* name ends in password, passwd, pass, pwd or passphrase, after a '-' or '_' or nothing */
static bool pass_name(const char *s, size_t k)
{
    static const char *const names[] = {"password", "passwd", "passphrase", "pass", "pwd"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const size_t l = strlen(names[i]);
        if (k >= l && strncasecmp(s + k - l, names[i], l) == 0 &&
            (k == l || s[k - l - 1] == '-' || s[k - l - 1] == '_'))
            return true;
    }
    return false;
}

/* --password x, --db-pass 'x', --password=x; -p'x' and -p"x" (only quoted: -p 5432 and
 * -p8080:80 are ports). A value starting with '-' is the next flag, not a password. */
static size_t m_cli_password(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    if (n < 4 || s[0] != '-') return 0;
    if (s[1] != '-')
        return s[1] == 'p' && (s[2] == '\'' || s[2] == '"') ? quoted_value(s, n, 2, vs, vl) : 0;
    const size_t k = 2 + span(s + 2, n - 2, c_ident);
    if (!pass_name(s + 2, k - 2)) return 0;
    size_t i = k;
    if (i < n && s[i] == '=') {
        i++;
    } else {
        if (i >= n || s[i] != ' ') return 0;
        while (i < n && s[i] == ' ')
            i++;
    }
    if (i >= n || s[i] == '-' || at_placeholder(s + i, n - i)) return 0;
    if (s[i] == '\'' || s[i] == '"') return quoted_value(s, n, i, vs, vl);
    const size_t e = value_end(s, n, i, 0, " \t\r\n;&|");
    if (e == i) return 0;
    *vs = i;
    *vl = e - i;
    return e;
}

/* Key names whose value is a secret: the key must END in one of them, after a non-letter or
 * at a camel-case hump; `bare` says whether the name alone is a key ("pass: 3" is prose). */
#define KEY(name, bare) {name, sizeof name - 1, bare}
static const struct {
    const char *name;
    size_t len;
    bool bare;
} secret_keys[] = {
    KEY("password", true),   KEY("passwd", true),      KEY("pwd", true),
    KEY("pass", false),      KEY("passphrase", true),  KEY("secret", true),
    KEY("api_key", true),    KEY("apikey", true),      KEY("api-key", true),
    KEY("token", true),      KEY("private_key", true), KEY("private-key", true),
    KEY("access_key", true), KEY("secret_key", true),
};
#undef KEY

/* key[=:]value with the key ending in a secret name; the value is replaced. */
static size_t m_key_value(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    TOKEN;
    const size_t k = span(s, n, c_ident);
    if (k < 3) return 0;
    size_t i = k + (k < n && (s[k] == '"' || s[k] == '\'')); /* cheap test first */
    while (i < n && s[i] == ' ')
        i++;
    if (i >= n || (s[i] != '=' && s[i] != ':')) return 0;
    bool named = false;
    for (size_t j = 0; j < sizeof secret_keys / sizeof secret_keys[0] && !named; j++) {
        const size_t l = secret_keys[j].len;
        named = k >= l && strncasecmp(s + k - l, secret_keys[j].name, l) == 0 &&
                (k == l ? secret_keys[j].bare : !c_alnum(s[k - l - 1]) || c_upper(s[k - l]));
    }
    if (!named) return 0;
    i++;
    while (i < n && s[i] == ' ')
        i++;
    const char q = i < n && (s[i] == '"' || s[i] == '\'') ? s[i] : 0;
    const size_t v = i + (q ? 1 : 0);
    const size_t e = value_end(s, n, v, q, " \t\r\n,;&)}]'\"");
    if (e == v || s[v] == '<' || (n - v >= 11 && memcmp(s + v, "-----BEGIN ", 11) == 0))
        return 0; /* empty, already a placeholder, or a PEM block (its own rule takes it) */
    *vs = v;
    *vl = e - v;
    return e + (q && e < n && s[e] == q ? 1 : 0);
}

/* ---- AWS keys --------------------------------------------- */

static size_t m_aws_key_id(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    static const char pre[][5] = {"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"};
    TOKEN;
    if (n < 20) return 0;
    bool p = false;
    for (int i = 0; i < 8 && !p; i++)
        p = memcmp(s, pre[i], 4) == 0;
    for (size_t i = 4; p && i < 20; i++)
        p = c_upper(s[i]) || c_digit(s[i]);
    return p && (n == 20 || !c_alnum(s[20])) ? 20 : 0;
}

/*
 * A bare AWS secret access key: exactly 40 of [A-Za-z0-9+/], not part of a longer run (no such
 * byte, '=', '_' or '-' on either side, no ".ext" after), with upper case, lower case and
 * digits, at most 3 slashes (paths have more) and at most 20 neighbouring pairs of letters of
 * the same case (words and camel case have more; random keys ~13). Random keys also change
 * character class (upper/lower/digit/symbol) between ~25 of their 39 neighbouring pairs and use
 * ~30 distinct characters: standalone, a key needs 16+ changes and 20+ distinct characters;
 * with "aws", "AKIA" or "ASIA" in the 100 bytes before it, 10+ changes. Simulated on 200,000
 * random keys this finds 98.4% of them (the rest are caught only by name, aws_secret_access_key=
 * ...). A git commit hash (40 lower-case hex digits) never matches: it has no upper case.
 */
static size_t m_aws_secret(nops__rscan *sc, size_t at, size_t *vs, size_t *vl)
{
    static const char *const context[] = {"aws", "akia", "asia", NULL};
    TOKEN;
    if (n < 40 || (at > 0 && (c_b64(sc->base[at - 1]) || sc->base[at - 1] == '='))) return 0;
    const size_t k = span(s, n, c_b64);
    if (k != 40 || (k < n && in_set(s[k], "=_-")) ||
        (k + 1 < n && s[k] == '.' && c_alnum(s[k + 1])))
        return 0;
    int changes = 0, same_case = 0, slashes = 0, prev = -1, has[4] = {0};
    uint64_t seen = 0;
    for (size_t i = 0; i < 40; i++) {
        const char c = s[i];
        const int cls = c_upper(c) ? 0 : c_lower(c) ? 1 : c_digit(c) ? 2 : 3;
        has[cls] = 1;
        changes += prev >= 0 && cls != prev;
        same_case += cls == prev && cls < 2;
        slashes += c == '/';
        prev = cls;
        seen |= 1ull << (cls == 0   ? c - 'A'
                         : cls == 1 ? c - 'a' + 26
                         : cls == 2 ? c - '0' + 52
                         : c == '+' ? 62
                                    : 63);
    }
    if (!(has[0] && has[1] && has[2]) || slashes > 3 || same_case > 20) return 0;
    if (changes >= 16 && __builtin_popcountll(seen) >= 20) return 40;
    return changes >= 10 && context_has(sc, at, CONTEXT_WINDOW, context) ? 40 : 0;
}

/* ---- the table ------------------------------------------------------------------------------ */

#define ALNUM UPPER LOWER DIGIT

const nops__rrule nops__redact_rules[] = {
    {"pem_private_key", NOPS_REDACT_PRIVATE_KEY, "-", true, m_pem,
     "-----BEGIN … PRIVATE KEY----- through its -----END …----- line (a cut block: its body)"},
    {"jwt", NOPS_REDACT_JWT, "e", false, m_jwt, "three base64url segments, the first eyJ…"},
    {"bearer", NOPS_REDACT_BEARER, "Bb", false, m_bearer, "Bearer + a token of 8+ characters"},
    {"basic_auth", NOPS_REDACT_SECRET, "Bb", false, m_basic,
     "Basic + base64 of user:password (any base64 after an Authorization header)"},
    {"url_credentials", NOPS_REDACT_SECRET, UPPER LOWER, false, m_url_credentials,
     "the password of scheme://user:password@host, whatever the host"},
    {"slack_webhook", NOPS_REDACT_SECRET, "h", false, m_slack_webhook,
     "the path of hooks.slack.com/services/…, /workflows/…, /triggers/…"},
    {"github_token", NOPS_REDACT_API_KEY, "g", true, m_github,
     "ghp_, gho_, ghu_, ghs_, ghr_ + 30+ letters or digits; github_pat_ + 22+"},
    {"gitlab_token", NOPS_REDACT_API_KEY, "g", true, m_gitlab, "glpat- + 20+ characters"},
    {"slack_token", NOPS_REDACT_API_KEY, "x", true, m_slack_token,
     "xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe- + 10+ characters with a digit"},
    {"stripe_key", NOPS_REDACT_API_KEY, "srw", true, m_stripe,
     "sk_live_, rk_live_, sk_test_, rk_test_ + 10+; whsec_ + 20+"},
    {"google_api_key", NOPS_REDACT_API_KEY, "A", true, m_google_api_key,
     "AIza + 30+ of [A-Za-z0-9_-]"},
    {"google_oauth_token", NOPS_REDACT_API_KEY, "y", true, m_google_oauth,
     "ya29. + 20+ characters"},
    {"sk_dash_key", NOPS_REDACT_API_KEY, "s", true, m_sk_dash_key,
     "sk- + 32+ of [A-Za-z0-9_-] with upper, lower and digits (OpenAI sk-proj-…, Anthropic)"},
    {"cli_password", NOPS_REDACT_SECRET, "-", false, m_cli_password,
     "the value of --password x, --db-pass 'x', --password=x, -p'x', -p\"x\""},
    {"key_value", NOPS_REDACT_SECRET, ALNUM "_-", false, m_key_value,
     "the value of a key ending in password, pass, pwd, secret, token, api_key, …"},
    {"email", NOPS_REDACT_EMAIL, ALNUM "._%+-", false, nops__rx_email, "local@domain.tld"},
    {"aws_key_id", NOPS_REDACT_AWS_KEY, "A", true, m_aws_key_id,
     "AKIA/ASIA/AGPA/AIDA/AROA/ANPA/ANVA/AIPA + 16 upper-case letters or digits"},
    {"aws_secret_key", NOPS_REDACT_SECRET, ALNUM "+/", false, m_aws_secret,
     "a bare 40-character AWS secret key (high entropy, or after aws/AKIA context)"},
    {"iban", NOPS_REDACT_IBAN, UPPER, false, nops__rx_iban,
     "an IBAN, solid or in groups of four, mod-97 valid"},
    {"ipv6", NOPS_REDACT_IP, DIGIT "abcdefABCDEF:", false, nops__rx_ipv6,
     "IPv6 with ::, the full 8-group form, IPv4-mapped tails"},
    {"card", NOPS_REDACT_CARD, "23456", false, nops__rx_card,
     "13-19 digits, Luhn-valid, separated by spaces, dashes, dots or double spaces"},
    {"phone", NOPS_REDACT_PHONE, DIGIT "+(", false, nops__rx_phone,
     "+CC and 8-15 digits in groups; (415) 555-0199, 415-555-0100"},
    {"ipv4", NOPS_REDACT_IP, DIGIT, false, nops__rx_ipv4,
     "four dotted octets ≤ 255, not part of a longer dotted number"},
};

const size_t nops__redact_nrules = sizeof nops__redact_rules / sizeof nops__redact_rules[0];
_Static_assert(sizeof nops__redact_rules / sizeof nops__redact_rules[0] <= 32,
               "the redactor dispatches on 32-bit rule masks");
