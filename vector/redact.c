/*
 * redact.c — the redactor of vector.h: one pass over the text; at each token start the matchers
 * are tried in a fixed order (JWT, bearer token, key=secret pair, e-mail, AWS key id, IPv6,
 * payment card, phone, IPv4) and the first that matches replaces its span by the typed
 * placeholder; otherwise the byte is copied. Rules and examples: docs/policies/data_redaction.md.
 *
 * Each matcher is a small hand-written scanner over the token shapes (no backtracking, no
 * allocation), so redaction runs at memory-scan speeds and the redactor is immutable after
 * _new (thread-safe).
 */
#include "vector/vector.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <strings.h>

struct nops_redactor {
    char *key;
    size_t key_len;
};

static const char *placeholders[] = {
#define NOPS__REDACT_PH(name, ph) ph,
    NOPS_REDACT_CLASSES(NOPS__REDACT_PH)
#undef NOPS__REDACT_PH
};

const char *nops_redact_placeholder(nops_redact_class c)
{
    return (unsigned)c < NOPS_REDACT_N ? placeholders[c] : "<REDACTED>";
}

nops_redactor *nops_redactor_new(const char *actor_key, char *errstr, size_t errstr_size)
{
    if (!actor_key || !*actor_key) {
        nops_errf(errstr, errstr_size, "the redactor needs a non-empty actor key");
        return NULL;
    }
    nops_redactor *r = nops_calloc(1, sizeof *r);
    if (!r || !(r->key = nops_strdup(actor_key))) {
        nops_free(r);
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->key_len = strlen(actor_key);
    return r;
}

void nops_redactor_destroy(nops_redactor *r)
{
    if (!r)
        return;
    nops_free(r->key);
    nops_free(r);
}

void nops_redact_actor(const nops_redactor *r, const char *who, char out[24])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), r->key, (int)r->key_len, (const unsigned char *)who, strlen(who), mac,
         &n);
    memcpy(out, "actor:", 6);
    for (int i = 0; i < 8; i++)
        snprintf(out + 6 + 2 * i, 3, "%02x", mac[i]);
}

/* ---- scanners: each returns the length matched at s[0..n), 0 for none ------------------- */

static bool is_b64url(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

static bool is_ident(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

static size_t span(const char *s, size_t n, bool (*ok)(char))
{
    size_t i = 0;
    while (i < n && ok(s[i]))
        i++;
    return i;
}

static size_t m_jwt(const char *s, size_t n)
{
    if (n < 10 || memcmp(s, "eyJ", 3) != 0)
        return 0;
    size_t i = span(s, n, is_b64url);
    for (int part = 0; part < 2; part++) {
        if (i >= n || s[i] != '.')
            return 0;
        size_t k = span(s + i + 1, n - i - 1, is_b64url);
        if (k == 0 && part == 0)
            return 0;
        i += 1 + k;
    }
    return i;
}

static bool is_token(char c)
{
    return is_b64url(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

/* "Bearer <token>": returns the length of the token part only; *pre the "Bearer " part. */
static size_t m_bearer(const char *s, size_t n, size_t *pre)
{
    if (n < 8 || (s[0] | 0x20) != 'b' || strncasecmp(s, "bearer", 6) != 0 ||
        (s[6] != ' ' && s[6] != '\t'))
        return 0;
    size_t i = 6;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t k = span(s + i, n - i, is_token);
    if (k < 8 || s[i] == '<')
        return 0;
    *pre = i;
    return k;
}

static const char *secret_keys[] = {"password", "passwd", "pwd", "secret", "api_key", "apikey",
                                    "api-key", "token", "access_token", "auth_token",
                                    "secret_access_key", "private_key", "client_secret"};

/* key[=:]value with the key ending in a secret name; vstart and vlen locate the value. */
static size_t m_secret(const char *s, size_t n, size_t *vstart, size_t *vlen)
{
    size_t k = span(s, n, is_ident);
    if (k < 3)
        return 0;
    size_t sep = k + (k < n && (s[k] == '"' || s[k] == '\'')); /* cheap test first */
    while (sep < n && s[sep] == ' ')
        sep++;
    if (sep >= n || (s[sep] != '=' && s[sep] != ':'))
        return 0;
    bool named = false;
    for (size_t i = 0; i < sizeof secret_keys / sizeof secret_keys[0] && !named; i++) {
        size_t l = strlen(secret_keys[i]);
        named = k >= l && strncasecmp(s + k - l, secret_keys[i], l) == 0 &&
                (k == l || !isalnum((unsigned char)s[k - l - 1]) ||
                 isupper((unsigned char)s[k - l]));
    }
    if (!named)
        return 0;
    size_t i = k;
    if (i < n && (s[i] == '"' || s[i] == '\''))
        i++;
    while (i < n && s[i] == ' ')
        i++;
    if (i >= n || (s[i] != '=' && s[i] != ':'))
        return 0;
    i++;
    while (i < n && s[i] == ' ')
        i++;
    char q = i < n && (s[i] == '"' || s[i] == '\'') ? s[i] : 0;
    size_t v = i + (q ? 1 : 0), e = v;
    while (e < n && (q ? s[e] != q : !strchr(" \t\r\n,;&)}]'\"", s[e])))
        e++;
    if (e == v || s[v] == '<')
        return 0; /* empty, or already a placeholder */
    *vstart = v;
    *vlen = e - v;
    return e + (q && e < n ? 1 : 0);
}

static bool is_local(char c)
{
    return isalnum((unsigned char)c) || strchr("._%+-", c);
}

static bool is_dom(char c)
{
    return isalnum((unsigned char)c) || c == '-';
}

static size_t m_email(const char *s, size_t n)
{
    size_t l = span(s, n, is_local);
    if (l == 0 || l >= n || s[l] != '@')
        return 0;
    size_t i = l + 1, labels = 0, last = 0;
    for (;;) {
        size_t k = span(s + i, n - i, is_dom);
        if (k == 0)
            break;
        labels++;
        last = k;
        i += k;
        if (i + 1 < n && s[i] == '.' && is_dom(s[i + 1]))
            i++;
        else
            break;
    }
    if (labels < 2 || last < 2)
        return 0;
    for (size_t t = i - last; t < i; t++)
        if (!isalpha((unsigned char)s[t]))
            return 0;
    return i;
}

static size_t m_aws(const char *s, size_t n)
{
    static const char *pre[] = {"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"};
    if (n < 20)
        return 0;
    bool p = false;
    for (int i = 0; i < 8 && !p; i++)
        p = memcmp(s, pre[i], 4) == 0;
    for (size_t i = 4; p && i < 20; i++)
        p = isupper((unsigned char)s[i]) || isdigit((unsigned char)s[i]);
    return p && (n == 20 || !isalnum((unsigned char)s[20])) ? 20 : 0;
}

static size_t m_ipv4(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
        size_t d = 0;
        int v = 0;
        while (i < n && d < 4 && isdigit((unsigned char)s[i]))
            v = v * 10 + (s[i++] - '0'), d++;
        if (d == 0 || d > 3 || v > 255)
            return 0;
    }
    if (i < n && (isalnum((unsigned char)s[i]) ||
                  (s[i] == '.' && i + 1 < n && isdigit((unsigned char)s[i + 1])) ||
                  (s[i] == ':' && i + 1 < n && s[i + 1] == ':')))
        return 0; /* a longer dotted number (a version) or a colon run: not an address */
    return i;
}

static size_t m_ipv6(const char *s, size_t n)
{
    size_t i = 0, colons = 0, groups = 0, last_group = 0;
    bool dbl = false;
    while (i < n) {
        size_t h = 0;
        while (i + h < n && h < 5 && isxdigit((unsigned char)s[i + h]))
            h++;
        if (h > 4)
            return 0;
        if (h) {
            groups++;
            last_group = i;
            i += h;
        }
        if (i < n && s[i] == ':') {
            if (i + 1 < n && s[i + 1] == ':') {
                if (dbl)
                    return 0;
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
    if (!(dbl || colons == 7) || colons < 2 || groups < 1 || groups > 8)
        return 0;
    if (i < n && s[i] == '.') { /* IPv4-mapped tail */
        size_t v4 = m_ipv4(s + last_group, n - last_group);
        return v4 ? last_group + v4 : 0;
    }
    if (s[i - 1] == ':' && !(i >= 2 && s[i - 2] == ':'))
        return 0; /* ends in a single colon: "key:" text */
    if (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
        return 0; /* part of a longer colon run: not an address */
    return i;
}

/* Digits with single spaces or dashes between; counts digits into *nd, fills digits[]. */
static size_t digit_run(const char *s, size_t n, const char *seps, char *digits, size_t *nd,
                        size_t max)
{
    size_t i = 0;
    *nd = 0;
    while (i < n) {
        if (isdigit((unsigned char)s[i])) {
            if (*nd == max)
                return 0;
            digits[(*nd)++] = s[i++];
        } else if (strchr(seps, s[i]) && *nd && i + 1 < n && isdigit((unsigned char)s[i + 1])) {
            i++;
        } else {
            break;
        }
    }
    return i;
}

static size_t m_card(const char *s, size_t n)
{
    char d[20];
    if (s[0] < '2' || s[0] > '6') /* card networks start 2-6; epoch timestamps start with 1 */
        return 0;
    size_t nd, len = digit_run(s, n, " -", d, &nd, 19);
    if (len == 0 || nd < 13 || nd > 19 || (len < n && isalnum((unsigned char)s[len])))
        return 0;
    int sum = 0;
    for (size_t i = 0; i < nd; i++) { /* Luhn */
        int v = d[nd - 1 - i] - '0';
        if (i % 2 == 1)
            v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        sum += v;
    }
    return sum % 10 == 0 ? len : 0;
}

static size_t m_phone(const char *s, size_t n)
{
    char d[20];
    size_t nd, i = 0;
    if (s[0] == '+') { /* international: +CC then 7..14 more digits in groups */
        size_t len = digit_run(s + 1, n - 1, " -.()", d, &nd, 16);
        return len && nd >= 8 && nd <= 15 && (1 + len >= n || !isalnum((unsigned char)s[1 + len]))
                   ? 1 + len
                   : 0;
    }
    if (s[0] == '(') /* (415) 555-0100 */
        i = 1;
    size_t g[3] = {0}, want[3] = {3, 3, 4};
    for (int k = 0; k < 3; k++) {
        while (i < n && isdigit((unsigned char)s[i]) && g[k] < 5)
            g[k]++, i++;
        if (g[k] != want[k])
            return 0;
        if (k == 0 && s[0] == '(') {
            if (i >= n || s[i] != ')')
                return 0;
            i++;
            if (i < n && s[i] == ' ')
                i++;
        } else if (k < 2) {
            if (i >= n || !strchr("-. ", s[i]))
                return 0;
            i++;
        }
    }
    return i < n && (isalnum((unsigned char)s[i]) || s[i] == '-') ? 0 : i;
}

/* ---- the pass ---------------------------------------------------------------------------- */

typedef struct out_t {
    char *b;
    size_t len, cap;
} out_t;

static void emit(out_t *o, const char *s, size_t n)
{
    if (o->len + n >= o->cap) /* cannot happen within NOPS_REDACT_CAP; stay in bounds anyway */
        n = o->len + 1 < o->cap ? o->cap - 1 - o->len : 0;
    memcpy(o->b + o->len, s, n);
    o->len += n;
}

static void emit_ph(out_t *o, nops_redact_class c, nops_redact_stats *st)
{
    emit(o, placeholders[c], strlen(placeholders[c]));
    if (st)
        st->found[c]++;
}

/* Try the matchers at a token start; the bytes consumed (0 = none matched). */
static size_t try_at(const char *s, size_t n, out_t *o, nops_redact_stats *st)
{
    size_t m, pre, vs, vl;
    if ((m = m_jwt(s, n))) {
        emit_ph(o, NOPS_REDACT_JWT, st);
        return m;
    }
    if ((m = m_bearer(s, n, &pre))) {
        emit(o, s, pre);
        emit_ph(o, NOPS_REDACT_BEARER, st);
        return pre + m;
    }
    if ((m = m_secret(s, n, &vs, &vl))) {
        emit(o, s, vs);
        emit_ph(o, NOPS_REDACT_SECRET, st);
        emit(o, s + vs + vl, m - vs - vl);
        return m;
    }
    static const struct {
        size_t (*fn)(const char *, size_t);
        nops_redact_class c;
    } simple[] = {{m_email, NOPS_REDACT_EMAIL}, {m_aws, NOPS_REDACT_AWS_KEY},
                  {m_ipv6, NOPS_REDACT_IP},     {m_card, NOPS_REDACT_CARD},
                  {m_phone, NOPS_REDACT_PHONE}, {m_ipv4, NOPS_REDACT_IP}};
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if ((m = simple[i].fn(s, n))) {
            emit_ph(o, simple[i].c, st);
            return m;
        }
    return 0;
}

size_t nops_redact(const nops_redactor *r, const char *in, size_t len, char *out, size_t cap,
                   nops_redact_stats *st)
{
    out_t o = {out, 0, cap};
    if (cap == 0)
        return 0;
    size_t i = 0;
    while (i < len) {
        /* a token starts where the previous byte cannot continue one */
        bool start = i == 0 || !(isalnum((unsigned char)in[i - 1]) || in[i - 1] == '_' ||
                                 in[i - 1] == '.' || in[i - 1] == '-' || in[i - 1] == '+' ||
                                 in[i - 1] == '%' || (in[i - 1] == ':' && in[i] == ':'));
        size_t m = start ? try_at(in + i, len - i, &o, st) : 0;
        if (m) {
            i += m;
            continue;
        }
        if (start) { /* a colon run that is no address stays whole: no part of it matches */
            size_t k = 0, colons = 0;
            while (i + k < len && (isxdigit((unsigned char)in[i + k]) || in[i + k] == ':' ||
                                   in[i + k] == '.'))
                colons += in[i + k++] == ':';
            if (colons >= 2) {
                emit(&o, in + i, k);
                i += k;
                continue;
            }
        }
        emit(&o, in + i, 1);
        i++;
    }
    out[o.len] = '\0';
    return o.len;
}

/* ---- JSON records ------------------------------------------------------------------------ */

static nops_err redact_field(const nops_redactor *r, json_t *o, const char *key,
                             nops_redact_stats *st)
{
    json_t *v = json_object_get(o, key);
    const char *s = json_string_value(v);
    if (!s)
        return NOPS_OK;
    size_t len = json_string_length(v);
    char stack[1024], *buf = NOPS_REDACT_CAP(len) <= sizeof stack
                                 ? stack
                                 : nops_malloc(NOPS_REDACT_CAP(len));
    if (!buf)
        return NOPS_NOMEM;
    size_t n = nops_redact(r, s, len, buf, NOPS_REDACT_CAP(len), st);
    int rc = n == len && memcmp(buf, s, n) == 0 ? 0 /* nothing found: keep the string */
                                                : json_object_set_new(o, key, json_stringn(buf, n));
    if (buf != stack)
        nops_free(buf);
    return rc == 0 ? NOPS_OK : NOPS_NOMEM;
}

static nops_err redact_labels(const nops_redactor *r, json_t *labels, nops_redact_stats *st)
{
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(labels, tmp, key, v) {
        if (redact_field(r, labels, key, st) != NOPS_OK)
            return NOPS_NOMEM;
    }
    return NOPS_OK;
}

nops_err nops_redact_json(const nops_redactor *r, json_t *obj, nops_redact_stats *st)
{
    static const char *text[] = {"incident_summary", "summary", "notes", "root_cause_hint"};
    nops_err e = NOPS_OK;
    for (size_t i = 0; i < sizeof text / sizeof text[0] && e == NOPS_OK; i++)
        e = redact_field(r, obj, text[i], st);
    const char *who = json_string_value(json_object_get(obj, "executed_by"));
    if (who && e == NOPS_OK) {
        char h[24];
        nops_redact_actor(r, who, h);
        e = json_object_set_new(obj, "executed_by", json_string(h)) == 0 ? NOPS_OK : NOPS_NOMEM;
    }
    if (e == NOPS_OK)
        e = redact_labels(r, json_object_get(obj, "labels"), st);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(obj, "signals"), i, s) {
        if (e == NOPS_OK && json_is_object(s))
            e = redact_field(r, s, "hint", st);
        if (e == NOPS_OK && json_is_object(s))
            e = redact_labels(r, json_object_get(s, "labels"), st);
    }
    return e;
}
