/*
 * kernel_body.h — the one detector kernel body, instantiated per instruction set.
 *
 * kernel_scalar.c, kernel_avx2.c and kernel_avx512.c each define NOPS__KSUFFIX and include this
 * file; CMake compiles them with -fno-tree-vectorize, -mavx2 and -mavx512* respectively, and
 * dispatch.c picks a table at run time. The loops are written so that the compiler vectorises
 * them across series: no branches on data (selects instead), no calls but sqrtf/copysignf/fabs
 * (which vectorise under -fno-math-errno), state in separate arrays.
 *
 * Two ways in:
 *   - range: contiguous slots. Each block of NOPS__BLOCK series is checked for a common ring
 *     position and count (the steady state of a fleet scraped in lockstep); such a block takes
 *     the uniform path, where every array access is a contiguous vector load or store. Other
 *     blocks take the general path, which gathers the ring value per series.
 *   - pairs: arbitrary (slot, value) pairs. They are cut into chunks of distinct slots (a small
 *     hash bitmap; a collision simply ends the chunk), so a chunk can be processed as independent
 *     lanes while a series that repeats later in the batch still sees its earlier points.
 *
 * After a block, series whose ring position wrapped to 0 get their sums recomputed exactly from
 * the ring (see the numerics essay in detect_int.h).
 */
#include "detect/detect_int.h"

#include <math.h>
#include <string.h>

#ifndef NOPS__KSUFFIX
#error "define NOPS__KSUFFIX before including kernel_body.h"
#endif

#define NOPS__BLOCK 64
#define NOPS__CAT2(a, b) a##_##b
#define NOPS__CAT(a, b) NOPS__CAT2(a, b)
#define NOPS__FN(name) NOPS__CAT(name, NOPS__KSUFFIX)
#define NOPS__INLINE static inline __attribute__((always_inline))

static const double nops__zmax2 = (double)NOPS_DETECT_Z_MAX * (double)NOPS_DETECT_Z_MAX;

/* z from a squared deviation and a variance: clamped, floored, finite, signed like dev. */
NOPS__INLINE float zfrom(double dev, double var, double level)
{
    const double fl = NOPS_DETECT_FLOOR_REL * fabs(level) + NOPS_DETECT_FLOOR_ABS;
    const double fl2 = fl * fl;
    const double den = var > fl2 ? var : fl2;
    double q = dev * dev / den;
    q = q < nops__zmax2 ? q : nops__zmax2;
    return copysignf(sqrtf((float)q), (float)dev);
}

/*
 * Process n lanes. Lane i is series `slots ? slots[i] : base + i`; when `uniform`, every lane's
 * ring position is `up` and count `uc` (the caller checked). `method` is a constant after
 * inlining, so z-only and EWMA-only instances do not touch the other detector's state.
 */
NOPS__INLINE void kbody(const nops__kconst *restrict k, const nops__dstate *restrict st,
                        const uint32_t *restrict slots, uint32_t base, uint32_t n,
                        const float *restrict xin, float *restrict zo, float *restrict zeo,
                        uint8_t *restrict fo, const int method, const bool uniform, uint32_t up,
                        uint32_t uc)
{
    float *restrict ring = st->ring;
    double *restrict sum = st->sum;
    double *restrict sumsq = st->sumsq;
    const float *restrict shift = st->shift;
    double *restrict em = st->em;
    double *restrict ev = st->ev;
    uint16_t *restrict cnt = st->cnt;
    uint16_t *restrict pos = st->pos;
    uint8_t *restrict hyst = st->hyst;
    const size_t cap = st->cap;
    const bool do_z = method != NOPS_METHOD_EWMA;
    const bool do_e = method != NOPS_METHOD_ZSCORE;
    const uint32_t W = k->W;
    const double inv_u = uc == W ? k->invW : 1.0 / (double)(uc ? uc : 1);
    const float inv_tz = k->inv_tz, inv_te = k->inv_te, exit_ratio = k->exit_ratio;
    const uint32_t clear = k->clear_points;
    const double alpha = k->alpha, oma = k->one_m_alpha;

    for (uint32_t i = 0; i < n; i++) {
        const size_t s = slots ? slots[i] : (size_t)base + i;
        const float x = xin[i];
        const bool valid = (x - x) == 0.0f; /* false for NaN and ±Inf */
        const uint32_t c = uniform ? uc : cnt[s];
        const uint32_t p = uniform ? up : pos[s];
        const bool warm = c >= k->min_n;
        const bool full = c == W;
        const bool show = warm && valid;
        float z = 0.0f, ze = 0.0f;

        if (do_z) {
            const double K = shift[s];
            const double S1 = sum[s], S2 = sumsq[s];
            const double inv = uniform ? inv_u : (full ? k->invW : 1.0 / (double)(c ? c : 1));
            const double md = S1 * inv;
            double var = S2 * inv - md * md;
            var = var > 0.0 ? var : 0.0;
            const double d = (double)x - K;
            const float zz = zfrom(d - md, var, K + md);
            z = show ? zz : 0.0f;

            const size_t ri = (size_t)p * cap + s;
            const float old = ring[ri];
            const double dold = full ? (double)old - K : 0.0;
            const double S1n = S1 + d - dold;
            const double S2n = S2 + d * d - dold * dold;
            sum[s] = valid ? S1n : S1;
            sumsq[s] = valid ? S2n : S2;
            ring[ri] = valid ? x : old;
        }
        if (do_e) {
            const double m = em[s], v = ev[s];
            const double e = (double)x - m;
            const float zz = zfrom(e, v, m);
            ze = show ? zz : 0.0f;
            const bool first = c == 0;
            const double mn = first ? (double)x : m + alpha * e;
            const double vn = first ? 0.0 : oma * (v + alpha * e * e);
            em[s] = valid ? mn : m;
            ev[s] = valid ? vn : v;
        }

        const uint32_t cn = full ? c : c + 1;
        const uint32_t pn = p + 1 == W ? 0 : p + 1;
        cnt[s] = (uint16_t)(valid ? cn : c);
        pos[s] = (uint16_t)(valid ? pn : p);

        const float ra = do_z ? fabsf(z) * inv_tz : 0.0f;
        const float rb = do_e ? fabsf(ze) * inv_te : 0.0f;
        const float r = ra > rb ? ra : rb;
        const bool anom = show && r >= 1.0f;
        const uint32_t h = hyst[s];
        const bool in = (h & 0x80u) != 0;
        const uint32_t quiet = r < exit_ratio ? (h & 0x7fu) + 1u : 0u;
        const bool cleared = in && quiet >= clear;
        const bool fired = !in && anom;
        const bool in_n = fired || (in && !cleared);
        const uint32_t hn = in_n ? (0x80u | (in ? quiet : 0u)) : 0u;
        hyst[s] = (uint8_t)(valid ? hn : h);

        zo[i] = z;
        zeo[i] = ze;
        fo[i] = (uint8_t)(valid ? (NOPS_DETECT_VALID | (warm ? NOPS_DETECT_WARM : 0u) |
                                   (anom ? NOPS_DETECT_ANOM : 0u) |
                                   (fired ? NOPS_DETECT_FIRED : 0u) |
                                   (cleared ? NOPS_DETECT_CLEARED : 0u))
                                : 0u);
    }
}

/* Exact recompute of K, Σ(x−K), Σ(x−K)² for one series from its ring. */
static void recompute_one(const nops__kconst *k, nops__dstate *st, size_t s)
{
    const size_t cap = st->cap;
    double acc = 0.0;
    for (uint32_t j = 0; j < k->W; j++)
        acc += st->ring[(size_t)j * cap + s];
    const float K = (float)(acc * k->invW);
    double s1 = 0.0, s2 = 0.0;
    for (uint32_t j = 0; j < k->W; j++) {
        const double d = (double)st->ring[(size_t)j * cap + s] - K;
        s1 += d;
        s2 += d * d;
    }
    st->shift[s] = K;
    st->sum[s] = s1;
    st->sumsq[s] = s2;
}

/* The same for n ≤ NOPS__BLOCK contiguous series that all wrapped (vectorised across lanes). */
NOPS__INLINE void recompute_block(const nops__kconst *k, nops__dstate *st, size_t s0, uint32_t n,
                                  const uint8_t *restrict fo)
{
    double acc[NOPS__BLOCK], s1[NOPS__BLOCK], s2[NOPS__BLOCK];
    float K[NOPS__BLOCK];
    const size_t cap = st->cap;
    for (uint32_t i = 0; i < n; i++)
        acc[i] = s1[i] = s2[i] = 0.0;
    for (uint32_t j = 0; j < k->W; j++) {
        const float *restrict row = st->ring + (size_t)j * cap + s0;
        for (uint32_t i = 0; i < n; i++)
            acc[i] += row[i];
    }
    for (uint32_t i = 0; i < n; i++)
        K[i] = (float)(acc[i] * k->invW);
    for (uint32_t j = 0; j < k->W; j++) {
        const float *restrict row = st->ring + (size_t)j * cap + s0;
        for (uint32_t i = 0; i < n; i++) {
            const double d = (double)row[i] - K[i];
            s1[i] += d;
            s2[i] += d * d;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (fo[i] & NOPS_DETECT_VALID) {
            st->shift[s0 + i] = K[i];
            st->sum[s0 + i] = s1[i];
            st->sumsq[s0 + i] = s2[i];
        }
    }
}

NOPS__INLINE void range_impl(const nops__kconst *k, nops__dstate *st, uint32_t first, uint32_t n,
                             const float *x, const nops_detect_out *out, const int method)
{
    const bool do_z = method != NOPS_METHOD_EWMA;
    for (uint32_t b = 0; b < n; b += NOPS__BLOCK) {
        const uint32_t m = n - b < NOPS__BLOCK ? n - b : NOPS__BLOCK;
        const size_t s0 = (size_t)first + b;
        const uint16_t p0 = st->pos[s0], c0 = st->cnt[s0];
        uint32_t diff = 0;
        for (uint32_t i = 0; i < m; i++)
            diff |= (uint32_t)(st->pos[s0 + i] ^ p0) | (uint32_t)(st->cnt[s0 + i] ^ c0);
        if (diff == 0) {
            kbody(k, st, NULL, (uint32_t)s0, m, x + b, out->z + b, out->ze + b, out->flags + b,
                  method, true, p0, c0);
            if (do_z && p0 + 1u == k->W)
                recompute_block(k, st, s0, m, out->flags + b);
        } else {
            kbody(k, st, NULL, (uint32_t)s0, m, x + b, out->z + b, out->ze + b, out->flags + b,
                  method, false, 0, 0);
            if (do_z)
                for (uint32_t i = 0; i < m; i++)
                    if ((out->flags[b + i] & NOPS_DETECT_VALID) && st->pos[s0 + i] == 0)
                        recompute_one(k, st, s0 + i);
        }
    }
}

NOPS__INLINE void pairs_impl(const nops__kconst *k, nops__dstate *st, const uint32_t *slots,
                             uint32_t n, const float *x, const nops_detect_out *out,
                             const int method)
{
    const bool do_z = method != NOPS_METHOD_EWMA;
    uint32_t i = 0;
    while (i < n) {
        uint64_t seen[16] = {0};
        uint32_t j = i;
        while (j < n && j - i < NOPS__BLOCK) {
            const uint32_t h = (slots[j] * 0x9E3779B1u) >> 22; /* 10 bits */
            const uint64_t bit = 1ull << (h & 63u);
            if (seen[h >> 6] & bit)
                break;
            seen[h >> 6] |= bit;
            j++;
        }
        kbody(k, st, slots + i, 0, j - i, x + i, out->z + i, out->ze + i, out->flags + i, method,
              false, 0, 0);
        if (do_z)
            for (uint32_t l = i; l < j; l++)
                if ((out->flags[l] & NOPS_DETECT_VALID) && st->pos[slots[l]] == 0)
                    recompute_one(k, st, slots[l]);
        i = j;
    }
}

#define NOPS__DEFINE(method, tag)                                                              \
    static void NOPS__FN(range_##tag)(const nops__kconst *k, nops__dstate *st, uint32_t first, \
                                      uint32_t n, const float *x, const nops_detect_out *out)  \
    {                                                                                          \
        range_impl(k, st, first, n, x, out, method);                                           \
    }                                                                                          \
    static void NOPS__FN(pairs_##tag)(const nops__kconst *k, nops__dstate *st,                 \
                                      const uint32_t *slots, uint32_t n, const float *x,       \
                                      const nops_detect_out *out)                              \
    {                                                                                          \
        pairs_impl(k, st, slots, n, x, out, method);                                           \
    }

NOPS__DEFINE(NOPS_METHOD_ZSCORE, z)
NOPS__DEFINE(NOPS_METHOD_EWMA, e)
NOPS__DEFINE(NOPS_METHOD_BOTH, ze)

const nops__kernels NOPS__FN(nops__kernels) = {
    .range = {NOPS__FN(range_z), NOPS__FN(range_e), NOPS__FN(range_ze)},
    .pairs = {NOPS__FN(pairs_z), NOPS__FN(pairs_e), NOPS__FN(pairs_ze)},
};
