/*
 * labels.c — which of a signal's labels name its host and its service ([correlate]
 * host_labels and service_labels, first present wins).
 */
#include "correlate/correlate_int.h"

#include <stdio.h>
#include <string.h>

static int rank_of(const char names[][64], size_t n, const char *k, size_t kl)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == kl && memcmp(names[i], k, kl) == 0)
            return (int)i;
    return MAX_LABELS;
}

static void pick_label(sig_labels *sl, const nops_label *l)
{
    const nops_correlator *c = sl->c;
    int r = rank_of(c->host_names, c->n_host_names, l->key, l->key_len);
    if (r < sl->host_rank && l->value_len < VAL_MAX) {
        memcpy(sl->host, l->value, l->value_len);
        sl->host[l->value_len] = '\0';
        sl->host_rank = r;
    }
    r = rank_of(c->svc_names, c->n_svc_names, l->key, l->key_len);
    if (r < sl->svc_rank && l->value_len < VAL_MAX) {
        memcpy(sl->service, l->value, l->value_len);
        sl->service[l->value_len] = '\0';
        sl->svc_rank = r;
    }
}

void nops__signal_labels(const nops_correlator *c, const nops_signal *sig, sig_labels *sl)
{
    memset(sl, 0, sizeof *sl);
    sl->c = c;
    sl->host_rank = sl->svc_rank = MAX_LABELS;
    sl->name_len = sig->metric_len;
    for (uint32_t i = 0; i < sig->labels.n; i++) {
        nops_label l = nops_labels_at(&sig->labels, i);
        pick_label(sl, &l);
    }
    if (sl->host_rank == MAX_LABELS) /* no host label: the series is a host of its own */
        snprintf(sl->host, sizeof sl->host, "%.*s", VAL_MAX - 1, sig->series);
}

bool nops_correlate_service_of(const nops_correlator *c, const nops_labels *labels, char *out,
                               size_t cap)
{
    int best = MAX_LABELS;
    for (uint32_t i = 0; i < labels->n; i++) {
        nops_label l = nops_labels_at(labels, i);
        int r = rank_of(c->svc_names, c->n_svc_names, l.key, l.key_len);
        if (r < best && l.value_len > 0 && l.value_len < cap && l.value_len < VAL_MAX) {
            memcpy(out, l.value, l.value_len);
            out[l.value_len] = '\0';
            best = r;
        }
    }
    return best < MAX_LABELS;
}

size_t nops__split_names(const char *s, char names[][64])
{
    size_t n = 0;
    while (*s && n < MAX_LABELS) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len && len < 64) {
            memcpy(names[n], s, len);
            names[n++][len] = '\0';
        }
        s += len + (comma ? 1 : 0);
    }
    return n;
}
