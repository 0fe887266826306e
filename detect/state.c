/*
 * state.c — the [detect] parameters and the SoA series state (allocation, growth, reset).
 */
#include "detect/detect_int.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define P(f) offsetof(nops_detect_params, f)
static const nops_cfg_entry detect_entries[] = {
    {"window", NOPS_CFG_INT, P(window), 4, NOPS_DETECT_MAX_WINDOW, "60", NULL, "window", 0,
     "Points in the rolling window W; z is computed over the previous W points."},
    {"false_alarm_points", NOPS_CFG_DOUBLE, P(false_alarm_points), 100, 1e12, "1000000", NULL,
     "false-alarm-points", 0,
     "The one knob: about one false signal per this many points of a stationary series. The "
     "thresholds left at 0 are derived from it (docs/detection.md)."},
    {"warmup", NOPS_CFG_INT, P(warmup), 0, 1000000, "0", NULL, NULL, 0,
     "Points a series must have before any verdict (0 = twice the window)."},
    {"alpha", NOPS_CFG_DOUBLE, P(alpha), 1e-4, 1.0, "0.1", NULL, "alpha", 0,
     "EWMA smoothing factor α of the mean (weight of the newest point)."},
    {"alpha_var", NOPS_CFG_DOUBLE, P(alpha_var), 1e-4, 1.0, "0.01", NULL, NULL, 0,
     "EWMA smoothing factor of the variance (about 2/alpha_var effective samples)."},
    {"long_window", NOPS_CFG_INT, P(long_window), 16, 100000000, "2048", NULL, NULL, 0,
     "Points the long-horizon baseline of the CUSUM detector is decayed over."},
    {"season_points", NOPS_CFG_INT, P(season_points), 0, NOPS_DETECT_SEASON_MAX, "0", NULL,
     "season-points", 0,
     "Period of the seasonal baseline every series gets, in points (e.g. a day at the series' "
     "step: 1440 at 1 min); 0 = none (the default: the step differs between series, and a wrong "
     "period only costs memory bandwidth). Else at least 48. Only with method all."},
    {"season_s", NOPS_CFG_INT, P(season_s), 0, 100000000, "86400", NULL, "season-s", 0,
     "Period of the seasonal baseline in seconds, for callers that know a series' step "
     "(neuralops analyze): a series gets season_s/step points when that is 48..16777216. "
     "0 = none."},
    {"cusum_k", NOPS_CFG_DOUBLE, P(cusum_k), 0.05, 10.0, "0.5", NULL, NULL, 0,
     "CUSUM drift allowance in σ: half the smallest sustained shift it is tuned for."},
    {"z_threshold", NOPS_CFG_DOUBLE, P(z_threshold), 0.0, 1e6, "0", NULL, "z-threshold", 0,
     "A point with |rolling z| at or above this is anomalous (0 = from false_alarm_points)."},
    {"ewma_threshold", NOPS_CFG_DOUBLE, P(ewma_threshold), 0.0, 1e6, "0", NULL,
     "ewma-threshold", 0,
     "A point with |EWMA z| at or above this is anomalous (0 = from false_alarm_points)."},
    {"cusum_threshold", NOPS_CFG_DOUBLE, P(cusum_threshold), 0.0, 1e6, "0", NULL, NULL, 0,
     "CUSUM decision interval h in σ (0 = from false_alarm_points)."},
    {"method", NOPS_CFG_ENUM, P(method), 0, 0, "all", "zscore|ewma|both|all", "method", 0,
     "Which detectors decide: rolling z-score, EWMA, both, or all (adds the CUSUM)."},
    {"hysteresis", NOPS_CFG_DOUBLE, P(hysteresis), 0.0, 1.0, "0.75", NULL, NULL, 0,
     "A series leaves the anomalous state once its ratio |z|/threshold stays below this..."},
    {"clear_points", NOPS_CFG_INT, P(clear_points), 1, 127, "3", NULL, NULL, 0,
     "...for this many consecutive points. One excursion gives one signal."},
    {"ttl_s", NOPS_CFG_INT, P(ttl_s), 0, 100000000, "3600", NULL, NULL, 0,
     "Series not seen for this many seconds are evicted (0 keeps them forever)."},
    {"variant", NOPS_CFG_ENUM, P(variant), 0, 0, "auto", "auto|scalar|avx2|avx512", "variant",
     0, "Kernel instruction set; auto picks the best this CPU has."},
};
#undef P

static nops_err detect_finalize(void *base, char *errstr, size_t errstr_size)
{
    nops_err e = nops_detect_params_check(base, errstr, errstr_size);
    if (e == NOPS_OK)
        nops_detect_params_resolve(base);
    return e;
}

const nops_cfg_section nops_detect_cfg_section = {
    "detect",
    "Anomaly detectors (rolling z-score, robust EWMA, long-horizon CUSUM), their calibration "
    "and their signal hysteresis.",
    detect_entries,
    sizeof detect_entries / sizeof detect_entries[0],
    detect_finalize,
};

void nops_detect_params_default(nops_detect_params *p)
{
    nops_cfg *cfg = nops_cfg_new();
    memset(p, 0, sizeof *p);
    if (cfg)
        nops_cfg_add(cfg, &nops_detect_cfg_section, p, NULL, 0);
    nops_cfg_destroy(cfg);
    if (!cfg) { /* no memory for the table walk: same values, by hand */
        *p = (nops_detect_params){.window = 60, .alpha = 0.1, .alpha_var = 0.01,
                                  .false_alarm_points = 1e6, .cusum_k = 0.5,
                                  .long_window = 2048, .method = NOPS_METHOD_ALL,
                                  .season_s = 86400,
                                  .hysteresis = 0.75, .clear_points = 3, .ttl_s = 3600};
    }
    nops_detect_params_resolve(p);
}

void nops_detect_params_resolve(nops_detect_params *p)
{
    double tz, te, h;
    nops_detect_thresholds(p->false_alarm_points, p->window, p->alpha_var, p->cusum_k, &tz, &te,
                           &h);
    if (!(p->z_threshold > 0.0))
        p->z_threshold = tz;
    if (!(p->ewma_threshold > 0.0))
        p->ewma_threshold = te;
    if (!(p->cusum_threshold > 0.0))
        p->cusum_threshold = h;
    if (p->warmup <= 0)
        p->warmup = 2 * p->window;
}

nops_err nops_detect_params_check(const nops_detect_params *p, char *errstr, size_t errstr_size)
{
    if (p->window < 4 || p->window > NOPS_DETECT_MAX_WINDOW) {
        nops_errf(errstr, errstr_size, "detect.window must be 4..%d, got %lld",
                  NOPS_DETECT_MAX_WINDOW, (long long)p->window);
        return NOPS_CONFIG;
    }
    if (!(p->alpha > 0.0 && p->alpha <= 1.0)) {
        nops_errf(errstr, errstr_size, "detect.alpha must be in (0, 1], got %g", p->alpha);
        return NOPS_CONFIG;
    }
    if (!(p->alpha_var > 0.0 && p->alpha_var <= 1.0)) {
        nops_errf(errstr, errstr_size, "detect.alpha_var must be in (0, 1], got %g",
                  p->alpha_var);
        return NOPS_CONFIG;
    }
    if (!(p->false_alarm_points >= 100.0 && p->false_alarm_points <= 1e12)) {
        nops_errf(errstr, errstr_size, "detect.false_alarm_points must be 100..1e12, got %g",
                  p->false_alarm_points);
        return NOPS_CONFIG;
    }
    /* 0 means "derived from false_alarm_points"; anything else must be a real threshold */
    if (p->z_threshold < 0.0 || p->ewma_threshold < 0.0 || p->cusum_threshold < 0.0 ||
        (p->z_threshold > 0.0 && p->z_threshold < 0.1) ||
        (p->ewma_threshold > 0.0 && p->ewma_threshold < 0.1) ||
        (p->cusum_threshold > 0.0 && p->cusum_threshold < 0.1) || isnan(p->z_threshold) ||
        isnan(p->ewma_threshold) || isnan(p->cusum_threshold)) {
        nops_errf(errstr, errstr_size,
                  "detect thresholds must be 0 (derived from false_alarm_points) or at least 0.1");
        return NOPS_CONFIG;
    }
    if (!(p->cusum_k >= 0.05 && p->cusum_k <= 10.0)) {
        nops_errf(errstr, errstr_size, "detect.cusum_k must be 0.05..10, got %g", p->cusum_k);
        return NOPS_CONFIG;
    }
    if (p->long_window < 16 || p->warmup < 0 || p->warmup == 1 || p->warmup > 1000000) {
        nops_errf(errstr, errstr_size,
                  "detect.long_window must be at least 16 and detect.warmup 0 (auto) or 2..1000000");
        return NOPS_CONFIG;
    }
    if (p->season_points != 0 &&
        (p->season_points < NOPS_DETECT_SEASON_MIN || p->season_points > NOPS_DETECT_SEASON_MAX ||
         p->method != NOPS_METHOD_ALL)) {
        nops_errf(errstr, errstr_size,
                  "detect.season_points must be 0 (none) or %d..%d points, and needs "
                  "detect.method=all, got %lld",
                  NOPS_DETECT_SEASON_MIN, NOPS_DETECT_SEASON_MAX, (long long)p->season_points);
        return NOPS_CONFIG;
    }
    if (p->method < NOPS_METHOD_ZSCORE || p->method > NOPS_METHOD_ALL) {
        nops_errf(errstr, errstr_size, "detect.method must be zscore, ewma, both or all");
        return NOPS_CONFIG;
    }
    if (!(p->hysteresis >= 0.0 && p->hysteresis <= 1.0)) {
        nops_errf(errstr, errstr_size, "detect.hysteresis must be in [0, 1], got %g",
                  p->hysteresis);
        return NOPS_CONFIG;
    }
    if (p->clear_points < 1 || p->clear_points > 127) {
        nops_errf(errstr, errstr_size, "detect.clear_points must be 1..127");
        return NOPS_CONFIG;
    }
    if (p->variant < NOPS_VARIANT_AUTO || p->variant > NOPS_VARIANT_AVX512) {
        nops_errf(errstr, errstr_size, "detect.variant must be auto, scalar, avx2 or avx512");
        return NOPS_CONFIG;
    }
    return NOPS_OK;
}

void nops__kconst_init(nops__kconst *k, const nops_detect_params *p_in)
{
    nops_detect_params q = *p_in, *p = &q;
    nops_detect_params_resolve(p);
    k->W = (uint32_t)p->window;
    k->min_n = p->warmup < 2 ? 2 : (uint32_t)p->warmup;
    k->cusum_min_n = (uint32_t)(p->long_window / 2) > k->min_n ? (uint32_t)(p->long_window / 2)
                                                               : k->min_n;
    k->invW = 1.0 / (double)k->W;
    k->alpha = p->alpha;
    k->alpha_var = p->alpha_var;
    k->alpha_long = 1.0 / (double)p->long_window;
    k->cusum_k = (float)p->cusum_k;
    k->inv_tz = (float)(1.0 / p->z_threshold);
    k->inv_te = (float)(1.0 / p->ewma_threshold);
    k->inv_h = (float)(1.0 / p->cusum_threshold);
    k->exit_ratio = (float)p->hysteresis;
    k->clear_points = (uint8_t)p->clear_points;
}

size_t nops__dstate_bytes_per_slot(uint32_t W, bool seasonal)
{
    return (size_t)W * sizeof(float) + 2 * sizeof(double) + sizeof(float) + 6 * sizeof(double) +
           5 * sizeof(float) + 3 * sizeof(uint32_t) +
           (seasonal ? NOPS_DETECT_SEASON_BINS * sizeof(float) + 2 * sizeof(uint32_t) : 0);
}

/* ---- memory accounting (the series budget of pipeline.series_memory_mb) ------------------ */

/*
 * What a detector holds, as nops_detect_memory() reports it, for `cap` slots and `keys` bytes
 * of key copies: the SoA state, the slot arrays (id, last-seen, key pointer, free stack) and the
 * id table, which registry.c keeps at the power of two ≥ 2 × cap (at least 16 cells).
 */
static size_t slot_bytes(uint32_t W, bool seasonal);

static uint32_t table_cells(uint32_t cap)
{
    uint32_t n = 16;
    while (n < 2u * cap && n < (1u << 31))
        n <<= 1;
    return n;
}

size_t nops_detect_bytes_per_series(const nops_detect_params *p)
{
    /* the id table holds 2–4 cells per slot; count the worst (4) */
    return slot_bytes((uint32_t)p->window, p->season_points > 0) +
           4 * (sizeof(uint64_t) + sizeof(uint32_t));
}

static size_t slot_bytes(uint32_t W, bool seasonal)
{
    return nops__dstate_bytes_per_slot(W, seasonal) + sizeof(uint64_t) + sizeof(uint32_t) +
           sizeof(char *) + sizeof(uint32_t);
}

static size_t held_bytes(uint32_t W, bool seasonal, uint32_t cap, uint32_t cells)
{
    return (size_t)cap * slot_bytes(W, seasonal) +
           (size_t)cells * (sizeof(uint64_t) + sizeof(uint32_t));
}

void nops_detect_memory_after_add(const nops_detector *det, size_t key_len, nops_detect_mem *mem)
{
    uint32_t cap = det->st.cap, cells = det->ht_cap;
    if (det->n_free == 0 && det->hwm == cap && cap < (1u << 30))
        cap *= 2; /* registration grows every array by doubling */
    if ((uint64_t)(det->active + 1) * 2 > cells)
        cells = table_cells(cap > det->active + 1 ? cap : det->active + 1);
    mem->state_bytes = (size_t)cap * nops__dstate_bytes_per_slot(det->st.W, det->st.seasonal);
    mem->registry_bytes =
        held_bytes(det->st.W, det->st.seasonal, cap, cells) - mem->state_bytes;
    mem->key_bytes = det->key_bytes + key_len + 1 + 16; /* as registry.c charges a copy */
    mem->capacity = cap;
    mem->active = det->active + 1;
}

uint32_t nops_detect_series_fit(const nops_detect_params *p, size_t budget, uint32_t initial,
                                size_t key_len, size_t extra_per_slot)
{
    const uint32_t W = (uint32_t)p->window;
    const size_t per_key = key_len + 1 + 16;
    uint32_t best = 0;
    /* capacities a detector passes through: initial, 2·initial, ... — at each, as many series
     * as the slots allow and the keys' bytes left after the arrays pay for */
    for (uint64_t cap = initial ? initial : 1024; cap <= (1u << 30); cap *= 2) {
        size_t fixed = held_bytes(W, p->season_points > 0, (uint32_t)cap,
                                  table_cells((uint32_t)cap)) +
                       (size_t)cap * extra_per_slot;
        if (fixed > budget)
            break;
        uint64_t n = (budget - fixed) / per_key;
        n = n < cap ? n : cap;
        best = n > best ? (uint32_t)n : best;
    }
    return best;
}

#define NOPS__ALIGN 64

/* Grow the array at *p to nc slots of `size` bytes (contents kept, new slots zero; in place in
 * memory terms for large arrays: nops_aligned_grow); *p is replaced only on success. */
static bool grow_field(void *p, size_t size, size_t nc)
{
    void **at = p;
    void *n = nops_aligned_grow(*at, NOPS__ALIGN, nc * size);
    if (n)
        *at = n;
    return n != NULL;
}

/*
 * `rows` rows of oc slots, in a block already grown to rows × nc (nc > oc), laid out again with
 * nc slots a row: the last row moves first, each to at or above where it was, so none is
 * overwritten before it moves; then the part of each row past its oc slots that held old rows
 * is zeroed (the rest of the block is new, and zero).
 */
static void relayout_rows(float *a, size_t rows, size_t oc, size_t nc)
{
    for (size_t k = rows; k-- > 1;)
        memmove(a + k * nc, a + k * oc, oc * sizeof(float));
    const size_t old_end = rows * oc;
    for (size_t k = 0; k < rows; k++) {
        const size_t from = k * nc + oc, to = (k + 1) * nc < old_end ? (k + 1) * nc : old_end;
        if (from < to)
            memset(a + from, 0, (to - from) * sizeof(float));
    }
}

/*
 * Every array grown to new_cap slots, the first cap slots kept. Each array grows in turn and
 * its pointer is replaced as it does: a failure leaves those grown so far larger than cap with
 * their contents (and the rows' layout) as they were, which is still a consistent state at cap,
 * and the next attempt finds them grown already. The rows are laid out again only once every
 * array has grown. Growing in place (nops_aligned_grow) keeps the pages already faulted in; the
 * one copy left is the ring's rows moving to their new stride. Slots past the old ones are
 * zero afterwards, as they are in a new state: registration relies on it (it resets only slots
 * it reuses), and the kernels write no slot they are not given.
 */
static nops_err realloc_all(nops__dstate *st, uint32_t new_cap)
{
    const size_t oc = st->cap, nc = new_cap, W = st->W;
    const bool ok =
        grow_field(&st->ring, W * sizeof(float), nc) && grow_field(&st->sum, sizeof(double), nc) &&
        grow_field(&st->sumsq, sizeof(double), nc) && grow_field(&st->shift, sizeof(float), nc) &&
        grow_field(&st->em, sizeof(double), nc) && grow_field(&st->ev, sizeof(double), nc) &&
        grow_field(&st->lm, sizeof(double), nc) && grow_field(&st->lv, sizeof(double), nc) &&
        grow_field(&st->gm, sizeof(double), nc) && grow_field(&st->gv, sizeof(double), nc) &&
        grow_field(&st->cp, sizeof(float), nc) && grow_field(&st->lc, sizeof(float), nc) &&
        grow_field(&st->cn, sizeof(float), nc) && grow_field(&st->last, sizeof(float), nc) &&
        grow_field(&st->res, sizeof(float), nc) && grow_field(&st->age, sizeof(uint32_t), nc) &&
        grow_field(&st->lage, sizeof(uint32_t), nc) &&
        grow_field(&st->meta, sizeof(uint32_t), nc) &&
        (!st->seasonal ||
         (grow_field(&st->sk, NOPS_DETECT_SEASON_BINS * sizeof(float), nc) &&
          grow_field(&st->sper, sizeof(uint32_t), nc) &&
          grow_field(&st->sage, sizeof(uint32_t), nc)));
    if (!ok)
        return NOPS_NOMEM;
    relayout_rows(st->ring, W, oc, nc);
    if (st->seasonal)
        relayout_rows(st->sk, NOPS_DETECT_SEASON_BINS, oc, nc);
    st->cap = new_cap;
    return NOPS_OK;
}

nops_err nops__dstate_init(nops__dstate *st, uint32_t W, uint32_t cap, bool seasonal)
{
    memset(st, 0, sizeof *st);
    st->W = W;
    st->seasonal = seasonal;
    return realloc_all(st, cap ? cap : 1);
}

nops_err nops__dstate_enable_season(nops__dstate *st)
{
    if (st->seasonal)
        return NOPS_OK;
    const size_t nc = st->cap;
    float *sk = nops_aligned_alloc(NOPS__ALIGN, NOPS_DETECT_SEASON_BINS * nc * sizeof(float));
    uint32_t *sper = nops_aligned_alloc(NOPS__ALIGN, nc * sizeof(uint32_t));
    uint32_t *sage = nops_aligned_alloc(NOPS__ALIGN, nc * sizeof(uint32_t));
    if (!sk || !sper || !sage) {
        nops_free(sk);
        nops_free(sper);
        nops_free(sage);
        return NOPS_NOMEM;
    }
    /* zero already (nops_aligned_alloc): a memset would fault every page in now */
    st->sk = sk;
    st->sper = sper;
    st->sage = sage;
    st->seasonal = true;
    return NOPS_OK;
}

nops_err nops__dstate_grow(nops__dstate *st, uint32_t new_cap)
{
    if (new_cap <= st->cap)
        return NOPS_OK;
    return realloc_all(st, new_cap);
}

void nops__dstate_reset_slot(nops__dstate *st, uint32_t s)
{
    for (size_t k = 0; k < st->W; k++)
        st->ring[k * st->cap + s] = 0.0f;
    st->sum[s] = st->sumsq[s] = 0.0;
    st->shift[s] = 0.0f;
    st->em[s] = st->ev[s] = 0.0;
    st->lm[s] = st->lv[s] = st->gm[s] = st->gv[s] = 0.0;
    st->cp[s] = st->cn[s] = st->last[s] = st->res[s] = st->lc[s] = 0.0f;
    st->age[s] = st->lage[s] = 0;
    st->meta[s] = 0;
    nops__season_reset_slot(st, s, 0);
}

void nops__season_reset_slot(nops__dstate *st, uint32_t s, uint32_t period)
{
    if (!st->seasonal)
        return;
    for (size_t k = 0; k < NOPS_DETECT_SEASON_BINS; k++)
        st->sk[k * st->cap + s] = 0.0f;
    st->sper[s] = period;
    st->sage[s] = 0;
}

void nops__dstate_fini(nops__dstate *st)
{
    nops_free(st->ring);
    nops_free(st->sum);
    nops_free(st->sumsq);
    nops_free(st->shift);
    nops_free(st->em);
    nops_free(st->ev);
    nops_free(st->lm);
    nops_free(st->lv);
    nops_free(st->gm);
    nops_free(st->gv);
    nops_free(st->cp);
    nops_free(st->lc);
    nops_free(st->cn);
    nops_free(st->last);
    nops_free(st->res);
    nops_free(st->age);
    nops_free(st->lage);
    nops_free(st->meta);
    nops_free(st->sk);
    nops_free(st->sper);
    nops_free(st->sage);
    st->sk = NULL;
    st->sper = st->sage = NULL;
    st->ring = NULL;
    st->sum = st->sumsq = st->em = st->ev = st->lm = st->lv = st->gm = st->gv = NULL;
    st->shift = st->lc = st->cp = st->cn = st->last = st->res = NULL;
    st->age = st->lage = st->meta = NULL;
}
