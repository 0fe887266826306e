/*
 * serieskey.c — the one home of a series' identity as text: the canonical key and the label
 * pairs it is made of.
 *
 * A series is its name plus its labels sorted by key. The pipeline builds the canonical key of
 * a new series once (ingest/series.c through nops_detect_series_key, which hashes it into the
 * id); a signal carries the key and its labels as pairs (nops_labels), decoded once when the
 * signal is built, so the correlator and the sinks read pairs and never parse a key.
 */
#include "core/core.h"

#include <string.h>

nops_err nops_labels_add(nops_labels *ls, const char *key, size_t key_len, const char *value,
                         size_t value_len)
{
    if (ls->n >= NOPS_LABELS_MAX || key_len + value_len > sizeof ls->text - ls->used)
        return NOPS_FULL;
    char *t = ls->text + ls->used;
    memcpy(t, key, key_len);
    memcpy(t + key_len, value, value_len);
    /* offsets fit in 16 bits: text is NOPS_KEY_MAX (1024) bytes */
    ls->at[ls->n].key_off = (uint16_t)ls->used;
    ls->at[ls->n].key_len = (uint16_t)key_len;
    ls->at[ls->n].value_off = (uint16_t)(ls->used + key_len);
    ls->at[ls->n].value_len = (uint16_t)value_len;
    ls->used += (uint32_t)(key_len + value_len);
    ls->n++;
    return NOPS_OK;
}

nops_label nops_labels_at(const nops_labels *ls, uint32_t i)
{
    return (nops_label){ls->text + ls->at[i].key_off, ls->at[i].key_len,
                        ls->text + ls->at[i].value_off, ls->at[i].value_len};
}

bool nops_labels_valid(const nops_labels *ls)
{
    if (ls->n > NOPS_LABELS_MAX || ls->used > sizeof ls->text)
        return false;
    for (uint32_t i = 0; i < ls->n; i++)
        if ((uint32_t)ls->at[i].key_off + ls->at[i].key_len > ls->used ||
            (uint32_t)ls->at[i].value_off + ls->at[i].value_len > ls->used)
            return false;
    return true;
}

bool nops_labels_has(const nops_labels *ls, const nops_label *l)
{
    for (uint32_t i = 0; i < ls->n; i++) {
        nops_label m = nops_labels_at(ls, i);
        if (m.key_len == l->key_len && m.value_len == l->value_len &&
            memcmp(m.key, l->key, m.key_len) == 0 && memcmp(m.value, l->value, m.value_len) == 0)
            return true;
    }
    return false;
}

/* ---- the canonical key -------------------------------------------------------------------- */

/* Control characters, and the bytes a key's structure is made of. */
static bool name_byte_ok(unsigned char c, const char *forbidden)
{
    return c >= 0x20 && c != 0x7f && !strchr(forbidden, c);
}

bool nops_series_name_ok(const char *name, size_t len)
{
    if (!name || len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_byte_ok((unsigned char)name[i], "{}\""))
            return false;
    return true;
}

bool nops_label_key_ok(const char *key, size_t len)
{
    if (!key || len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_byte_ok((unsigned char)key[i], "=\",{}"))
            return false;
    return true;
}

static int label_cmp(const nops_label *a, const nops_label *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static bool put(char *key, size_t cap, size_t *o, const char *s, size_t n)
{
    if (*o + n >= cap)
        return false;
    memcpy(key + *o, s, n);
    *o += n;
    return true;
}

nops_err nops_series_key(const char *name, size_t name_len, nops_label *labels, size_t n_labels,
                         char *key, size_t key_cap, size_t *key_len)
{
    if (!nops_series_name_ok(name, name_len) || n_labels > NOPS_LABELS_MAX ||
        (n_labels && !labels))
        return NOPS_INVAL;
    for (size_t i = 0; i < n_labels; i++)
        if (!nops_label_key_ok(labels[i].key, labels[i].key_len))
            return NOPS_INVAL;
    /* insertion sort: label sets are small, and this keeps the sort stable and allocation-free */
    for (size_t i = 1; i < n_labels; i++) {
        nops_label t = labels[i];
        size_t j = i;
        while (j > 0 && label_cmp(&labels[j - 1], &t) > 0) {
            labels[j] = labels[j - 1];
            j--;
        }
        labels[j] = t;
    }
    for (size_t i = 1; i < n_labels; i++)
        if (label_cmp(&labels[i - 1], &labels[i]) == 0)
            return NOPS_INVAL;
    size_t o = 0;
    if (!put(key, key_cap, &o, name, name_len))
        return NOPS_RANGE;
    for (size_t i = 0; i < n_labels; i++) {
        if (!put(key, key_cap, &o, i ? "," : "{", 1) ||
            !put(key, key_cap, &o, labels[i].key, labels[i].key_len) ||
            !put(key, key_cap, &o, "=\"", 2))
            return NOPS_RANGE;
        /* escape like the Prometheus exposition format: backslash, quote, newline */
        for (size_t j = 0; j < labels[i].value_len; j++) {
            char c = labels[i].value[j];
            const char *esc = c == '\\' ? "\\\\" : c == '"' ? "\\\"" : c == '\n' ? "\\n" : NULL;
            if (!(esc ? put(key, key_cap, &o, esc, 2) : put(key, key_cap, &o, &c, 1)))
                return NOPS_RANGE;
        }
        if (!put(key, key_cap, &o, "\"", 1))
            return NOPS_RANGE;
    }
    if (n_labels && !put(key, key_cap, &o, "}", 1))
        return NOPS_RANGE;
    key[o] = '\0';
    if (key_len)
        *key_len = o;
    return NOPS_OK;
}

nops_err nops_series_key_labels(const char *key, size_t *name_len, nops_labels *out)
{
    if (out)
        out->n = out->used = 0;
    const char *brace = strchr(key, '{');
    size_t len = strlen(key);
    *name_len = brace ? (size_t)(brace - key) : len;
    if (*name_len == 0)
        return NOPS_PARSE;
    if (!brace)
        return NOPS_OK;
    if (key[len - 1] != '}')
        return NOPS_PARSE;
    const char *p = brace + 1, *end = key + len - 1;
    char val[NOPS_KEY_MAX];
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || eq + 1 >= end || eq[1] != '"')
            return NOPS_PARSE;
        const char *k = p;
        size_t klen = (size_t)(eq - p);
        p = eq + 2;
        size_t vl = 0;
        while (p < end && *p != '"') {
            if (vl + 1 >= sizeof val)
                return NOPS_RANGE;
            if (*p == '\\' && p + 1 < end) {
                p++;
                val[vl++] = *p == 'n' ? '\n' : *p;
            } else {
                val[vl++] = *p;
            }
            p++;
        }
        if (p >= end)
            return NOPS_PARSE;
        p++; /* closing quote */
        if (out && nops_labels_add(out, k, klen, val, vl) != NOPS_OK)
            return NOPS_RANGE;
        if (p < end && *p == ',')
            p++;
    }
    return NOPS_OK;
}

nops_err nops_signal_set_series(nops_signal *sig, const char *key)
{
    size_t klen = strlen(key), name_len = 0;
    nops_err e = klen < sizeof sig->series ? nops_series_key_labels(key, &name_len, &sig->labels)
                                           : NOPS_RANGE;
    if (e != NOPS_OK) { /* keep the identity: the whole text as the name, no labels */
        size_t n = klen < sizeof sig->series ? klen : sizeof sig->series - 1;
        memcpy(sig->series, key, n);
        sig->series[n] = '\0';
        sig->metric_len = (uint32_t)n;
        sig->labels.n = sig->labels.used = 0;
        return e;
    }
    memcpy(sig->series, key, klen + 1);
    sig->metric_len = (uint32_t)name_len;
    return NOPS_OK;
}
