/*
 * redact.c — the redactor of vector.h: one pass over the text. Where a token starts (the byte
 * before it, as already written to the output, cannot continue one), the rules of the table in
 * redact_rules.c that can start with this byte are tried in table order, and the first that
 * matches replaces its span (or the secret part of it) by its class's placeholder; rules marked
 * `anywhere` (PEM blocks) are tried at every byte. Otherwise bytes are copied in runs up to the
 * next possible token start. Rules and examples: docs/policies/data_redaction.md.
 *
 * No matcher allocates or copies and none backtracks beyond its token, so the pass is linear
 * (the PEM rule remembers its END search) and runs at memory-scan speeds; the redactor is
 * immutable after _new (thread-safe): it holds the key and, per first byte, the bit set of the
 * rules worth trying.
 *
 * Judging token starts by the output rather than the input makes a second pass over the output
 * see the same token starts as the first pass did, so it finds nothing new in ordinary text
 * and never swallows a placeholder the first pass wrote (fuzz_redact checks the second part).
 */
#include "vector/redact_rules.h"
#include "vector/vector.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

struct nops_redactor {
    char *key;                 /* the actor key (HMAC key of the keyed hashes) */
    size_t key_len;            /* its length */
    uint32_t at_start[256];    /* by first byte: rules tried where a token starts */
    uint32_t anywhere[256];    /* by first byte: rules tried at every byte */
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
    for (size_t i = 0; i < nops__redact_nrules && i < 32; i++) {
        const nops__rrule *ru = &nops__redact_rules[i];
        for (const char *c = ru->first; *c; c++)
            (ru->anywhere ? r->anywhere : r->at_start)[(unsigned char)*c] |= 1u << i;
    }
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
    nops_hex(mac, 8, out + 6);
}

void nops_redact_id(const nops_redactor *r, const char *prefix, const char *id, char *out,
                    size_t cap)
{
    unsigned char sub[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    /* a subkey per prefix, so that no id hashes like an actor name or another kind of id */
    HMAC(EVP_sha256(), r->key, (int)r->key_len, (const unsigned char *)prefix, strlen(prefix),
         sub, &n);
    HMAC(EVP_sha256(), sub, (int)n, (const unsigned char *)id, strlen(id), mac, &n);
    char hex[17];
    nops_hex(mac, 8, hex);
    snprintf(out, cap, "%s:%s", prefix, hex);
}

bool nops_redact_rule(size_t i, nops_redact_rule_info *out)
{
    if (i >= nops__redact_nrules)
        return false;
    out->name = nops__redact_rules[i].name;
    out->cls = nops__redact_rules[i].cls;
    out->doc = nops__redact_rules[i].doc;
    return true;
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

/* `prev` (the last byte written) continues a token that `c` would be part of */
static inline bool continues(char prev, char c)
{
    return (unsigned char)((prev | 0x20) - 'a') < 26 || (unsigned char)(prev - '0') < 10 ||
           prev == '_' || prev == '.' || prev == '-' || prev == '+' || prev == '%' ||
           (prev == ':' && c == ':');
}

/* Try the candidate rules (bit i = row i, lowest first) at base[at]; bytes consumed or 0. */
static size_t try_rules(nops__rscan *sc, size_t at, uint32_t cand, out_t *o,
                        nops_redact_stats *st)
{
    for (; cand; cand &= cand - 1) {
        const nops__rrule *ru = &nops__redact_rules[__builtin_ctz(cand)];
        size_t vs = 0, vl = SIZE_MAX;
        const size_t m = ru->match(sc, at, &vs, &vl);
        if (!m)
            continue;
        if (vl == SIZE_MAX || vs > m || vl > m - vs) /* the whole match is the secret */
            vs = 0, vl = m;
        const char *ph = placeholders[ru->cls];
        emit(o, sc->base + at, vs);
        emit(o, ph, strlen(ph));
        emit(o, sc->base + at + vs + vl, m - vs - vl);
        if (st)
            st->found[ru->cls]++;
        return m;
    }
    return 0;
}

/* A run of hex digits, colons and dots with two or more colons that no rule took (a MAC
 * address, "std::vector", a timestamp): its length, copied whole so no part of it matches. */
static size_t colon_run(const char *s, size_t n)
{
    size_t k = 0, colons = 0;
    while (k < n && ((unsigned char)(s[k] - '0') < 10 ||
                     (unsigned char)((s[k] | 0x20) - 'a') < 6 || s[k] == ':' || s[k] == '.'))
        colons += s[k++] == ':';
    return colons >= 2 ? k : 0;
}

size_t nops_redact(const nops_redactor *r, const char *in, size_t len, char *out, size_t cap,
                   nops_redact_stats *st)
{
    out_t o = {out, 0, cap};
    if (cap == 0)
        return 0;
    nops__rscan sc = {in, len, SIZE_MAX, SIZE_MAX};
    size_t i = 0;
    while (i < len) {
        const unsigned char c = (unsigned char)in[i];
        const bool start = o.len == 0 || !continues(o.b[o.len - 1], in[i]);
        const uint32_t cand = r->anywhere[c] | (start ? r->at_start[c] : 0);
        size_t m = cand ? try_rules(&sc, i, cand, &o, st) : 0;
        if (m) {
            i += m;
            continue;
        }
        m = start ? colon_run(in + i, len - i) : 0;
        if (!m) /* copy up to the next byte where a rule could start */
            for (m = 1; i + m < len && continues(in[i + m - 1], in[i + m]) &&
                        !r->anywhere[(unsigned char)in[i + m]];)
                m++;
        emit(&o, in + i, m);
        i += m;
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
