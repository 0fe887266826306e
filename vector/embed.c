/*
 * embed.c — one embedder for past workflow runs and live incidents (vector.h).
 *
 * Layout of the NOPS_EMBED_DIM = 256 floats:
 *   [0, 240)   signed feature hashing (XXH3, one seed per family) of
 *              metric names (weight 2.0) and their first word ("http", 0.7),
 *              label pairs by key: service 0.6, host/pod/instance 0.25, others 0.5,
 *              detector method (0.5), direction "above"/"below" from hints (0.8),
 *              words of the summary and root-cause hint (≥ 3 letters, no placeholders;
 *              1.8 / sqrt(n));
 *              the labels, method and direction of the signals count as their mean (each
 *              signal's weight divided by the number of signals): summed, a service-wide
 *              incident of five signals weighed its service and region labels 6× and its
 *              direction 5×, so two different incidents of one service were nearer than two
 *              of the same kind on different services (nops-embed-1; measured with
 *              synth/recoeval.h: exact kNN top-1 at 20 runs a kind 0.54 → 0.76);
 *   [240, 256) numeric features: log1p(signals), log1p(distinct metrics), max score, mean score,
 *              share of EWMA signals, share of "above" hints — each scaled to about [0, 1].
 * The whole vector is L2-normalised, so inner product = cosine. Version: NOPS_EMBED_VERSION.
 */
#include "vector/run_int.h"

#include <ctype.h>
#include <math.h>
#include <string.h>
#include <xxhash.h>

#define HASHED 240

enum { F_METRIC = 1, F_METRIC_HEAD, F_LABEL, F_METHOD, F_DIR, F_WORD };

typedef nops__feats feats;

static void add_token(float *v, int family, const char *s, size_t n, float w)
{
    uint64_t h = XXH3_64bits_withSeed(s, n, (uint64_t)family * 0x9E3779B97F4A7C15ull);
    v[h % HASHED] += (h >> 63) ? -w : w;
}

void nops__feats_metric(feats *f, const char *m)
{
    if (!m || !*m)
        return;
    for (int i = 0; i < f->metrics && i < 64; i++)
        if (strcmp(f->seen_metrics[i], m) == 0)
            return;
    if (f->metrics < 64)
        f->seen_metrics[f->metrics] = m;
    f->metrics++;
    size_t n = strlen(m);
    add_token(f->v, F_METRIC, m, n, 2.0f);
    const char *us = strchr(m, '_');
    add_token(f->v, F_METRIC_HEAD, m, us ? (size_t)(us - m) : n, 0.7f);
}

void nops__feats_label(feats *f, const char *k, const char *s, float scale)
{
    if (!s || strcmp(k, "__name__") == 0)
        return;
    float w = strcmp(k, "service") == 0 ? 0.6f
              : strcmp(k, "host") == 0 || strcmp(k, "pod") == 0 || strcmp(k, "instance") == 0
                  ? 0.25f
                  : 0.5f;
    char pair[256];
    int n = snprintf(pair, sizeof pair, "%s=%s", k, s);
    add_token(f->v, F_LABEL, pair, n > 0 && (size_t)n < sizeof pair ? (size_t)n : 0, w * scale);
}

static void add_labels(feats *f, const json_t *labels, float scale)
{
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)labels, k, val) nops__feats_label(f, k, json_string_value(val),
                                                                    scale);
}

static bool stopword(const char *w, size_t n)
{
    static const char *stop[] = {"the", "and", "for", "its", "was", "with", "from", "has",
                                 "after", "than", "this", "that", "are", "were", "into", "over",
                                 "signal", "signals", "series", "sharing", "earliest",
                                 "strongest", "score", "across"};
    for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++)
        if (strlen(stop[i]) == n && memcmp(stop[i], w, n) == 0)
            return true;
    return false;
}

/* Words of free text: letters only, lowercased, placeholders (<EMAIL>) and stopwords skipped. */
void nops__feats_words(feats *f, const char *text)
{
    if (!text)
        return;
    char words[128][24];
    size_t lens[128], nw = 0;
    for (const char *p = text; *p && nw < 128;) {
        if (*p == '<') { /* a redaction placeholder */
            const char *end = strchr(p, '>');
            p = end ? end + 1 : p + 1;
            continue;
        }
        if (!isalpha((unsigned char)*p)) {
            p++;
            continue;
        }
        size_t n = 0;
        while (isalpha((unsigned char)p[n]))
            n++;
        if (n >= 3 && n < sizeof words[0]) {
            for (size_t i = 0; i < n; i++)
                words[nw][i] = (char)tolower((unsigned char)p[i]);
            if (!stopword(words[nw], n))
                lens[nw++] = n;
        }
        p += n;
    }
    const float w = nw ? 0.6f / sqrtf((float)nw) * 3.0f : 0;
    for (size_t i = 0; i < nw; i++)
        add_token(f->v, F_WORD, words[i], lens[i], w);
}

void nops__feats_signal(feats *f, const char *metric)
{
    f->signals++;
    nops__feats_metric(f, metric);
}

void nops__feats_signal_end(feats *f, const char *method, const char *hint, double sc)
{
    if (method) {
        add_token(f->v, F_METHOD, method, strlen(method), 0.5f * f->per_signal);
        f->ewma += strcmp(method, "ewma") == 0;
    }
    if (hint) {
        bool above = strstr(hint, " above ") != NULL;
        f->above += above;
        add_token(f->v, F_DIR, above ? "above" : "below", 5, 0.8f * f->per_signal);
    }
    if (isfinite(sc)) {
        f->sum_score += sc;
        f->max_score = sc > f->max_score ? sc : f->max_score;
    }
}

static void add_signal(feats *f, const json_t *s)
{
    if (!json_is_object(s))
        return;
    nops__feats_signal(f, json_string_value(json_object_get(s, "metric")));
    add_labels(f, json_object_get(s, "labels"), f->per_signal);
    nops__feats_signal_end(f, json_string_value(json_object_get(s, "method")),
                           json_string_value(json_object_get(s, "hint")),
                           json_number_value(json_object_get(s, "score")));
}

static const char *text_of(const json_t *o, const char *a, const char *b)
{
    const char *s = json_string_value(json_object_get(o, a));
    return s ? s : json_string_value(json_object_get(o, b));
}

void nops__feats_begin(feats *f, float out[NOPS_EMBED_DIM], size_t n_sig)
{
    memset(out, 0, NOPS_EMBED_DIM * sizeof *out);
    memset(f, 0, sizeof *f);
    f->v = out;
    f->per_signal = n_sig ? 1.0f / (float)n_sig : 1.0f;
}

nops_err nops__feats_end(feats *f, bool has_labels, const char *summary)
{
    float *out = f->v;
    if (!f->metrics && !f->signals && !has_labels && !(summary && *summary))
        return NOPS_PARSE;
    float *num = out + HASHED;
    num[0] = (float)(log1p(f->signals) / 3.0);
    num[1] = (float)(log1p(f->metrics) / 3.0);
    num[2] = (float)f->max_score;
    num[3] = f->signals ? (float)(f->sum_score / f->signals) : 0;
    num[4] = f->signals ? (float)f->ewma / (float)f->signals : 0;
    num[5] = f->signals ? (float)f->above / (float)f->signals : 0;
    double norm = 0;
    for (int d = 0; d < NOPS_EMBED_DIM; d++)
        norm += (double)out[d] * out[d];
    if (!(norm > 0))
        return NOPS_PARSE;
    const float inv = (float)(1.0 / sqrt(norm));
    for (int d = 0; d < NOPS_EMBED_DIM; d++)
        out[d] *= inv;
    return NOPS_OK;
}

nops_err nops_embed_json(const json_t *obj, float out[NOPS_EMBED_DIM])
{
    memset(out, 0, NOPS_EMBED_DIM * sizeof *out);
    if (!json_is_object(obj))
        return NOPS_PARSE;
    const json_t *sigs = json_object_get(obj, "signals");
    feats f;
    nops__feats_begin(&f, out, json_array_size(sigs));
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(obj, "metrics"), i, x)
        nops__feats_metric(&f, json_string_value(x));
    json_array_foreach(sigs, i, x) add_signal(&f, x);
    add_labels(&f, json_object_get(obj, "labels"), 1.0f);
    const char *summary = text_of(obj, "incident_summary", "summary");
    nops__feats_words(&f, summary);
    nops__feats_words(&f, json_string_value(json_object_get(obj, "root_cause_hint")));
    return nops__feats_end(&f, json_object_size(json_object_get(obj, "labels")) != 0, summary);
}
