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

/*
 * z = dev / max(sqrt(var), floor), clamped to ±NOPS_DETECT_Z_MAX, never NaN. The floor is the
 * larger of the relative floor at `level` and `rfl` (the series' resolution) capped at
 * NOPS_DETECT_RES_REL·|level|. The sums stay in
 * double; the division and square root run in float (twice the lanes, several times the
 * throughput of their double forms), after scaling both terms by a power of two when the
 * variance would overflow float: the scaling is exact and cancels in the quotient.
 */
NOPS__INLINE float zfrom(double dev, double var, double level, double rfl)
{
    const double fa = NOPS_DETECT_FLOOR_REL * fabs(level) + NOPS_DETECT_FLOOR_ABS;
    const double rcap = NOPS_DETECT_RES_REL * fabs(level);
    const double rf = rfl < rcap ? rfl : rcap;
    const double fl = fa > rf ? fa : rf;
    const double fl2 = fl * fl;
    const double den = var > fl2 ? var : fl2;
    const double big = den > 1e30 ? 0x1p-64 : 1.0;
    const float devf = (float)(dev * big);
    const float denf = (float)(den * (big * big));
    float z = devf / sqrtf(denf);
    z = z < NOPS_DETECT_Z_MAX ? z : NOPS_DETECT_Z_MAX;
    z = z > -NOPS_DETECT_Z_MAX ? z : -NOPS_DETECT_Z_MAX;
    return z;
}

/* Squared std floor at a level: the relative floor zfrom() applies. */
NOPS__INLINE double fl2_of(double level)
{
    const double fl = NOPS_DETECT_FLOOR_REL * fabs(level) + NOPS_DETECT_FLOOR_ABS;
    return fl * fl;
}

/* Bit 8 of a block's 32-bit flags: the lane asks for an exact recompute (re-centring). */
#define NOPS__RECENTRE 0x100u
/* Bit 9: the lane has just collected its first season: centre its profile (season_boot). */
#define NOPS__SBOOT 0x200u

/*
 * Where a point falls in its season (the seasonal essay is in docs/detection.md). The season
 * word `sa` packs the phase ph (points into the period, bits 0–23) and the periods completed
 * (bits 24–31, saturating at 255), so no lane divides by its period to find its phase. With
 * period P > 0: the position t = ph·B/P − ½ in knots (knot b sits at the centre of cell
 * b = [b·P/B, (b+1)·P/B)), the knots either side b0 = ⌊t⌋ mod B and b1 = b0 + 1 mod B, the
 * weight w = t − ⌊t⌋ of b1, and j ≈ points of its cell the phase has passed in this period
 * (for the first period's running means). Float arithmetic (ph < 2^24 is exact): one division
 * per lane, and every variant computes the same bits.
 */
#define NOPS__SPH(sa) ((sa) & 0xffffffu)     /* phase */
#define NOPS__SKP(sa) ((sa) >> 24)            /* periods completed, ≤ 255 */
NOPS__INLINE void season_pos(uint32_t sa, uint32_t P, uint32_t *b0, uint32_t *b1, float *w,
                             float *j)
{
    const float Bf = (float)NOPS_DETECT_SEASON_BINS, Pf = (float)(P + (P == 0));
    const float q = Bf / Pf;
    const float tt = (float)NOPS__SPH(sa) * q;
    float cell = floorf(tt);
    cell = cell < Bf - 1.0f ? cell : Bf - 1.0f;
    const float t = tt - 0.5f;
    const float fb = floorf(t);
    *w = t - fb;
    const float b0f = fb < 0.0f ? Bf - 1.0f : fb;
    const uint32_t i0 = (uint32_t)(int32_t)b0f;
    *b0 = i0;
    *b1 = (i0 + 1u) * (i0 + 1u != NOPS_DETECT_SEASON_BINS);
    *j = floorf((tt - cell) * (Pf * (1.0f / NOPS_DETECT_SEASON_BINS)));
}

/*
 * Hysteresis for one lane: from the ratio r and the lane's meta word, the new meta word (count
 * cn, position pn, updated state) and the point's NOPS_DETECT_* flags. Invalid points leave the
 * word as it was and get no flags. Branch-free: 0/1 integers and masks only.
 */
NOPS__INLINE uint32_t hyst_step(float r, uint32_t show, float exit_ratio, uint32_t clear,
                                uint32_t *mt_io, uint32_t cn, uint32_t pn, uint32_t valid)
{
    const uint32_t mt = *mt_io;
    const uint32_t anom = show & (r >= 1.0f);
    const uint32_t h = NOPS__META_HYST(mt);
    const uint32_t in = h >> 7;
    const uint32_t calm = r < exit_ratio;
    const uint32_t quiet = ((h & 0x7fu) + 1u) * calm;
    const uint32_t cleared = in & (quiet >= clear);
    const uint32_t fired = (in ^ 1u) & anom;
    const uint32_t in_n = fired | (in & (cleared ^ 1u));
    const uint32_t hn = in_n * (0x80u | (in * quiet));
    const uint32_t vm = 0u - valid; /* all ones when valid */
    *mt_io = (NOPS__META(cn, pn, hn) & vm) | (mt & ~vm);
    /* masked by validity, so WARM = warm & valid = show */
    return (NOPS_DETECT_VALID | (show << 1) | (anom << 2) | (fired << 3) | (cleared << 4)) & vm;
}

/*
 * One robust exponentially weighted mean/variance step (the EWMA detector and the long-horizon
 * baseline share it). `e` is x − m before the update. The weights start at 1/(n+1), so the
 * first points give their exact running mean and mean square, then settle at `alpha` (mean) and
 * `alpha_v` (variance); once warm, e² enters the variance clipped at NOPS__CLIP2 · v.
 */
NOPS__INLINE void ew_step(double *restrict m, double *restrict v, double e, double ia,
                          double alpha, double alpha_v, uint32_t ag, uint32_t warm,
                          uint32_t valid)
{
    const double m0 = *m, v0 = *v;
    const double w1 = alpha > ia ? alpha : ia, w2 = alpha_v > ia ? alpha_v : ia;
    const double am = ag == 0 ? 1.0 : w1;
    const double av = ag == 0 ? 0.0 : w2;
    const double e2 = e * e, cap = NOPS__CLIP2 * v0;
    const double e2c = (e2 > cap) & warm ? cap : e2;
    /* an invalid point moves nothing: weights 0 (e is 0 for it as well) */
    const double amv = valid ? am : 0.0, avv = valid ? av : 0.0;
    *m = m0 + amv * e;
    *v = v0 + avv * (e2c - v0);
}

/*
 * The compute step over n contiguous lanes. Every array is a restrict parameter indexed by
 * lane: in the uniform range path they point straight into the state (offset to the block) and
 * `ring` points at the ring row all lanes share; in the gather path they point at block-local
 * copies that the caller gathered and scatters back. `ring` holds the value leaving the window on
 * entry and the value entering it on return. With `uniform`, all counts equal `uc`, so 1/count is
 * a constant. `method` is a constant after inlining, so single-detector instances do not touch
 * the other detectors' state. Selects are written as arithmetic on 0/1 integers and blends: GCC
 * if-converts those for AVX2 too, where it gives up on `?:` over mixed types. Flags bits 5–6
 * carry the detector that gave the ratio, bit 8 the re-centring request, bit 9 a season's boot.
 * It is one long function on purpose: every detector's step must sit in the one loop body GCC
 * vectorises across series (split into calls, the state would make one pass per detector).
 */
NOPS__INLINE uint32_t kcompute(const nops__kconst *restrict k, const uint32_t n,
                           const float *restrict xin, float *restrict ring,
                           double *restrict sum, double *restrict sumsq,
                           float *restrict shift, double *restrict em, double *restrict ev,
                           double *restrict lm, double *restrict lv, double *restrict gm,
                           double *restrict gv, float *restrict lc, float *restrict cp,
                           float *restrict cn_, float *restrict last, float *restrict res,
                           const float *restrict prev,
                           uint32_t *restrict age, uint32_t *restrict lage,
                           uint32_t *restrict meta, float *restrict sk0, float *restrict sk1,
                           const uint32_t *restrict sper, uint32_t *restrict sage,
                           float *restrict zo, float *restrict zeo, float *restrict ro,
                           uint32_t *restrict fo, const int method, const bool uniform,
                           const uint32_t uc)
{
    const bool do_s = method == NOPS__METHOD_ALL_SEASON;
    const bool do_z = method != NOPS_METHOD_EWMA;
    const bool do_e = method != NOPS_METHOD_ZSCORE;
    const bool do_c = method == NOPS_METHOD_ALL || do_s;
    const uint32_t W = k->W;
    const double inv_u = uc == W ? k->invW : 1.0 / (double)(uc ? uc : 1);
    /* 1/count after this point, the same for every lane of a uniform block */
    const double inv_u1 = uc >= W ? k->invW : 1.0 / (double)(uc + 1u);
    const float inv_tz = k->inv_tz, inv_te = k->inv_te, inv_h = k->inv_h, exit_ratio = k->exit_ratio;
    const float ck = k->cusum_k;
    const uint32_t clear = k->clear_points, min_n = k->min_n, c_min = k->cusum_min_n;
    const double alpha = k->alpha, alpha_v = k->alpha_var, alpha_l = k->alpha_long;
    const double invW = k->invW;
    uint32_t any_recentre = 0;

    for (uint32_t i = 0; i < n; i++) {
        const float x = xin[i];
        const uint32_t valid = (x - x) == 0.0f; /* 0 for NaN and ±Inf */
        uint32_t mt = meta[i];
        const uint32_t c = NOPS__META_CNT(mt);
        const uint32_t ag = age[i];
        const uint32_t warm = ag >= min_n;
        const uint32_t full = c == W;
        const uint32_t show = warm & valid;
        const double xd = valid ? (double)x : 0.0; /* keeps NaN out of the arithmetic */
        const double ia = 1.0 / (double)(ag + 1u);
        /* resolution: judged against the steps seen before this point */
        /* the previous valid value: `prev` with a window (the ring's, see lastv), else `last` */
        const float rs = res[i], lst = do_z ? prev[i] : last[i];
        const double rfl = (double)rs;
        /* float selects only (mixing float compares into integer masks defeats if-conversion):
         * 0 means "none yet", so both sides are mapped to +big before taking the minimum */
        const float step = fabsf(x - lst);
        const float big = 3.0e38f;
        const float cand = (step > 0.0f) & (ag > 0) & valid ? step : big;
        const float cur = rs > 0.0f ? rs : big;
        /* stored only when it shrinks (rarely, once a series has run a while): a line that no
         * lane of a vector changes is not written back, 4 bytes less per update. cand < cur is
         * exactly when the old "min(cand, cur), 0 for none" differs from rs */
        if (cand < cur)
            res[i] = cand;
        if (!do_z)
            last[i] = valid ? x : lst;
        float z = 0.0f, ze = 0.0f, rc = 0.0f;

        /* the seasonal baseline: y = x − S(phase) once the first period is collected (boot);
         * the EWMA, the long baseline and the gate see y instead of x */
        double y = xd;
        uint32_t sboot = 0, sdone = 0;
        float s_w = 0.0f, s_j = 0.0f;
        double s_S = 0.0;
        float s_k0 = 0.0f, s_k1 = 0.0f;
        uint32_t s_on = 0, s_sa = 0, s_P = 0;
        if (do_s) {
            s_P = sper[i];
            s_sa = sage[i];
            s_on = s_P != 0;
            uint32_t b0, b1;
            season_pos(s_sa, s_P, &b0, &b1, &s_w, &s_j);
            (void)b0;
            (void)b1;
            s_k0 = sk0[i];
            s_k1 = sk1[i];
            s_S = (double)((1.0f - s_w) * s_k0 + s_w * s_k1);
            sdone = s_on & (NOPS__SKP(s_sa) != 0);
            y = sdone ? xd - s_S : xd;
        }

        uint32_t recentre = 0;
        if (do_z) {
            /* the first point of a series becomes its shift, so its sums start exact at 0 */
            const float K0 = shift[i];
            const uint32_t first = (c == 0) & valid;
            const float Kf = first ? x : K0;
            if (first) /* only then: K is read-only on every other update (as bytes counted) */
                shift[i] = Kf;
            const double K = Kf;
            const double S1 = sum[i], S2 = sumsq[i];
            const double inv = uniform ? inv_u : (full ? invW : 1.0 / (double)(c + !c));
            const double md = S1 * inv;
            double var = S2 * inv - md * md;
            var = var > 0.0 ? var : 0.0;
            const double d = xd - K;
            const float zz = zfrom(d - md, var, K + md, rfl);
            z = show ? zz : 0.0f;
            const float old = ring[i];
            const double dold = full ? (double)old - K : 0.0;
            const double dv = valid ? d : 0.0, dov = valid ? dold : 0.0;
            const double S1n = S1 + dv - dov, S2n = S2 + dv * dv - dov * dov;
            sum[i] = S1n;
            sumsq[i] = S2n;
            ring[i] = valid ? x : old;
            /* K far from the window (its mean moved by more than 8 std since K was chosen, or
             * a huge value left and took the small ones' bits with it): re-centre now */
            const double invn = uniform ? inv_u1 : (full ? invW : 1.0 / (double)(c + 1));
            const double mdn = S1n * invn;
            const double varn = S2n * invn - mdn * mdn;
            recentre = (mdn * mdn > 64.0 * varn + fl2_of(K)) & valid;
        }
        if (do_e) {
            double m = em[i], v = ev[i];
            const double e = y - m;
            const float zz = zfrom(e, v, m, rfl);
            ze = show ? zz : 0.0f;
            ew_step(&m, &v, e, ia, alpha, alpha_v, ag, warm, valid);
            em[i] = m;
            ev[i] = v;
        }
        uint32_t alarm = 0;
        /* 1 when the CUSUM's downward sum leads. A float, not a 0/1 integer from the compare:
         * an integer from a float compare kept this long in the loop made GCC give up
         * vectorising the whole `all` kernel (it ran scalar on AVX-512, 0.04 G updates/s) */
        float cdf = 0.0f;
        if (do_c) {
            double m = lm[i], v = lv[i];
            const double e = y - m;
            /* autocorrelated residuals (AR noise, or a baseline lagging a drift) make the sums
             * wander far more than their point variance says: the CUSUM's input is scaled by
             * the long-run variance of an AR(1) with the residuals' lag-1 correlation ρ,
             * v·(1+ρ)/(1−ρ), ρ clamped to [0, 0.95] */
            const float lcf = lc[i], vf = (float)v; /* float: a factor needs no more */
            float rho = vf > 0.0f ? lcf / (vf > 0.0f ? vf : 1.0f) : 0.0f;
            rho = rho > 0.0f ? rho : 0.0f; /* NaN (inf/inf) lands here too */
            rho = rho < 0.95f ? rho : 0.95f;
            const double lcv = (double)lcf;
            const double lrf = (double)((1.0f + rho) / (1.0f - rho));
            float u = zfrom(e, v * lrf, m, rfl);
            u = u < NOPS__UCLIP ? u : NOPS__UCLIP;
            u = u > -NOPS__UCLIP ? u : -NOPS__UCLIP;
            const float cp0 = cp[i], cn0 = cn_[i];
            float sp = cp0 + u - ck, sn = cn0 - u - ck;
            sp = sp > 0.0f ? sp : 0.0f;
            sn = sn > 0.0f ? sn : 0.0f;
            /* a series whose long-horizon residuals are far wider than its short ones
             * (a wave, a random walk, a trend) has no stable long baseline: the CUSUM sits
             * out (its sums held at 0) rather than alarm on the series' own slow motion. The
             * gate's baseline (gm, gv: plain EW moments over the long window, never restarted,
             * never clipped) sees that motion even when alarms keep restarting lm. */
            double gmv = gm[i], gvv = gv[i];
            const double eg = y - gmv;
            /* a season longer than the long window: once it runs, the level averages over the
             * season (before that, y = x and everything is as without a season) */
            double al_ = alpha_l;
            if (do_s) {
                const double ip = (double)(1.0f / (float)(s_P + (s_P == 0)));
                al_ = sdone & (ip < alpha_l) ? ip : alpha_l;
            }
            const double ag_ = ag == 0 ? 1.0 : (al_ > ia ? al_ : ia);
            const double bg_ = ag == 0 ? 0.0 : (al_ > ia ? al_ : ia);
            gm[i] = valid ? gmv + ag_ * eg : gmv;
            gv[i] = valid ? gvv + bg_ * (eg * eg - gvv) : gvv;
            if (do_s) {
                /* the knots: during the first period the running mean of x over each knot's
                 * cell (all of the point to the knot of its cell); after it, Holt-Winters: the
                 * residual against the long baseline (slow, so the profile learns slow errors
                 * too; restarted at an alarm, so a level shift goes into the baseline within a
                 * few points, not into the profile), shared between the two
                 * knots by the interpolation weights, at a rate that averages the last
                 * ~NOPS__SMEM periods (a running mean until then), clipped at 4σ of the
                 * baseline once two periods are in (one outlier does not dent the profile) */
                const uint32_t kp = NOPS__SKP(s_sa), ph = NOPS__SPH(s_sa);
                const float Pf = (float)(s_P + (s_P == 0));
                const float sad = (float)(kp < NOPS__SMEM ? kp : NOPS__SMEM) * Pf + (float)ph;
                const float lim = (float)NOPS__SMEM * Pf;
                /* one division: the weight after the first period, B/(min(points, 4P) + B),
                 * or the running mean's 1/(j + 1) within the first */
                const float den = sdone ? ((sad < lim ? sad : lim) + (float)NOPS_DETECT_SEASON_BINS) *
                                              (1.0f / NOPS_DETECT_SEASON_BINS)
                                        : s_j + 1.0f;
                const double g = (double)(1.0f / den);
                const double ek = e; /* y − the long baseline, before this point */
                const double lim2 = NOPS__CLIP2 * v;
                const uint32_t clip = (kp >= 2u) & (ek * ek > lim2);
                const double sdv = sqrt(lim2);
                const double egc = clip ? (ek > 0.0 ? sdv : -sdv) : ek;
                const uint32_t right = s_w >= 0.5f;
                const double kc = right ? (double)s_k1 : (double)s_k0;
                const double e1 = (xd - kc) * g;
                const double wd = (double)s_w;
                const double d0 = sdone ? g * (1.0 - wd) * egc : (right ? 0.0 : e1);
                const double d1 = sdone ? g * wd * egc : (right ? e1 : 0.0);
                const uint32_t upd = s_on & valid;
                sk0[i] = upd ? (float)((double)s_k0 + d0) : s_k0;
                sk1[i] = upd ? (float)((double)s_k1 + d1) : s_k1;
                /* the next phase; a wrap counts a period (saturating at 255) */
                const uint32_t phn = ph + upd;
                const uint32_t wrap = phn >= s_P;
                const uint32_t kpn = kp + (wrap & (kp < 255u));
                sboot = upd & wrap & (kp == 0u);
                sage[i] = ((phn * (wrap ^ 1u)) | (kpn << 24)) * s_on;
            }
            const uint32_t la = lage[i];
            const uint32_t on = show & (ag >= c_min) & (la >= min_n) &
                                (gvv <= NOPS__CUSUM_GATE * ev[i]);
            sp = on ? sp : 0.0f;
            sn = on ? sn : 0.0f;
            const float s = sp > sn ? sp : sn;
            cdf = sn > sp ? 1.0f : 0.0f;
            rc = s * inv_h;
            alarm = on & (rc >= 1.0f);
            /* the baseline's weights count from its last restart (la), like a new series' */
            const double ial = 1.0 / (double)(la + 1u);
            {
                /* lag-1 autocovariance: this residual times the previous point's against the
                 * same baseline (on a seasonal lane the profile moves little in one step) */
                const double yp = (double)lst - (do_s && sdone ? s_S : 0.0);
                const double cv = e * (yp - m), cap = NOPS__CLIP2 * v;
                double cvc = cv < cap ? cv : cap;
                cvc = cvc > -cap ? cvc : -cap;
                const double bl = la == 0 ? 0.0 : (alpha_l > ial ? alpha_l : ial);
                const uint32_t upd = valid & (ag > 0);
                lc[i] = upd ? (float)(lcv + bl * (cvc - lcv)) : lc[i];
            }
            ew_step(&m, &v, e, ial, alpha_l, alpha_l, la, warm, valid);
            lm[i] = m;
            lv[i] = v;
            /* an alarm restarts the baseline: it relearns the level from the next point on (the
             * shift is the new normal) and the CUSUM waits `warmup` points before judging */
            lage[i] = (la + (valid & (la < NOPS__AGE_MAX))) * (alarm ^ 1u);
            const uint32_t keep = on & (alarm ^ 1u);
            const float kp = valid ? 0.0f : cp0, kn = valid ? 0.0f : cn0;
            cp[i] = keep ? sp : kp;
            cn_[i] = keep ? sn : kn;
        }
        (void)alarm;
        age[i] = ag + (valid & (ag < NOPS__AGE_MAX));

        const uint32_t p = NOPS__META_POS(mt);
        const uint32_t pn = (p + 1) * (p + 1 != W);
        const uint32_t cn = c + (full ^ 1u);

        float r = do_z ? fabsf(z) * inv_tz : fabsf(ze) * inv_te;
        uint32_t which = do_z ? NOPS_DETECTOR_ZSCORE : NOPS_DETECTOR_EWMA;
        if (do_z && do_e) {
            const float rb = fabsf(ze) * inv_te;
            const uint32_t we = do_s ? NOPS_DETECTOR_EWMA + sdone * (NOPS_DETECTOR_SEASON -
                                                                     NOPS_DETECTOR_EWMA)
                                     : NOPS_DETECTOR_EWMA;
            which = which + (uint32_t)(rb > r) * (we - which);
            r = r > rb ? r : rb;
        }
        if (do_c) {
            const uint32_t cw = rc > r;
            which = which + cw * (NOPS_DETECTOR_CUSUM - which);
            /* "+ 0.0f" (not removable: −0 + 0 = +0) keeps GCC from folding `max ≥ 1` below
             * into a select of two masks, which it cannot vectorise (the loop then runs
             * scalar, 8× slower) */
            r = (r > rc ? r : rc) + 0.0f;
        }
        uint32_t f = hyst_step(r, show, exit_ratio, clear, &mt, cn, pn, valid);
        meta[i] = mt;
        zo[i] = z;
        zeo[i] = ze;
        ro[i] = show ? r : 0.0f;
        const uint32_t cdir = (uint32_t)cdf & (which == NOPS_DETECTOR_CUSUM) & show;
        fo[i] = f | ((which * show) << 5) | (cdir << 7) | (recentre << 8) | (sboot << 9);
        any_recentre |= recentre | sboot;
    }
    return any_recentre;
}

/*
 * A series' previous valid value. The detectors with a window (all but EWMA alone) hold it in
 * the ring, at the position before the next one, as soon as the window has a point: the kernel
 * reads it there and `last` is neither read nor written for them then (4 bytes less per
 * update); `last` serves the EWMA-only kernel and a window without points (a new or restored
 * series). nops_detect_save_series() reads it the same way.
 */
NOPS__INLINE float lastv(const nops__dstate *st, size_t s, uint32_t meta, bool do_z)
{
    const uint32_t p = NOPS__META_POS(meta);
    if (do_z && NOPS__META_CNT(meta) > 0)
        return st->ring[(size_t)(p ? p - 1u : st->W - 1u) * st->cap + s];
    return st->last[s];
}

/*
 * Exact recompute of K, Σ(x−K), Σ(x−K)² for one series from its ring. A window that is not yet
 * full holds its values at ring positions 0 … count−1 (positions start at 0 with the count).
 */
static void recompute_one(const nops__kconst *k, nops__dstate *st, size_t s)
{
    const size_t cap = st->cap;
    const uint32_t n = NOPS__META_CNT(st->meta[s]);
    if (n == 0)
        return;
    double acc = 0.0;
    for (uint32_t j = 0; j < n; j++)
        acc += st->ring[(size_t)j * cap + s];
    const float K = (float)(acc / n);
    double s1 = 0.0, s2 = 0.0;
    for (uint32_t j = 0; j < n; j++) {
        const double d = (double)st->ring[(size_t)j * cap + s] - K;
        s1 += d;
        s2 += d * d;
    }
    st->shift[s] = K;
    st->sum[s] = s1;
    st->sumsq[s] = s2;
    (void)k;
}

/*
 * The end of a series' first season: its knots hold the mean of x over each cell. Centre them
 * and take out a linear trend (the profile is the deviation from the level; a drift within the
 * period belongs to the level, or every wrap of the profile would be a step), move
 * the EWMA's mean to deseasonalised terms (so switching its input from x to y is no jump),
 * and start the long baseline and the gate at the level M with the EWMA's variance (~200
 * effective samples: the wave's variance leaves them at once instead of over thousands of
 * points), the CUSUM's sums at 0. Once per series, outside the vector loop.
 */
static void season_boot(nops__dstate *st, size_t s)
{
    const size_t cap = st->cap;
    const uint32_t B = NOPS_DETECT_SEASON_BINS;
    float *k = st->sk + s;
    double acc = 0.0;
    for (uint32_t b = 0; b < B; b++)
        acc += k[b * cap];
    const double M = acc / B;
    /* a trend within the period shows as a step where the profile wraps: extrapolate the
     * knots linearly across the wrap from both sides; what is left over is the trend's rise
     * over one period, d (a smooth wave extrapolates onto itself to within ~A(2π/B)³) */
    const double kl = k[(B - 1) * cap], kl2 = k[(B - 2) * cap], k0 = k[0], k1 = k[cap];
    const double d = (3.0 * kl - kl2 - 3.0 * k0 + k1) * 0.5;
    for (uint32_t b = 0; b < B; b++)
        k[b * cap] = (float)((double)k[b * cap] - M - d * (((double)b + 0.5) / B - 0.5));
    uint32_t b0, b1;
    float w, j;
    season_pos(st->sper[s] - 1u, st->sper[s], &b0, &b1, &w, &j); /* the last point's phase */
    const double S = (double)((1.0f - w) * k[b0 * cap] + w * k[b1 * cap]);
    st->em[s] -= S;
    st->gm[s] = st->lm[s] = M + 0.5 * d; /* the level at the end of the period */
    st->gv[s] = st->lv[s] = st->ev[s];
    st->cp[s] = st->cn[s] = 0.0f;
}

/* Post-pass of a block: exact recomputes and season boots the lanes asked for. */
NOPS__INLINE void block_fixups(const nops__kconst *k, nops__dstate *st, const uint32_t *slots,
                               size_t base, uint32_t n, const uint32_t *restrict f32,
                               const int method)
{
    for (uint32_t i = 0; i < n; i++) {
        const size_t s = slots ? slots[i] : base + i;
        if (f32[i] & NOPS__RECENTRE)
            recompute_one(k, st, s);
        if (method == NOPS__METHOD_ALL_SEASON && (f32[i] & NOPS__SBOOT))
            season_boot(st, s);
    }
}

/* Narrow the block's 32-bit flags into the caller's bytes; the ratio when asked for. */
NOPS__INLINE void narrow_flags(const uint32_t *restrict f32, uint8_t *restrict fo,
                               const float *restrict r32, float *restrict ro, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        fo[i] = (uint8_t)f32[i];
    if (ro)
        memcpy(ro, r32, n * sizeof *ro);
}

/* Gather path: copy lane state in, compute, copy it back. `slots == NULL` means base + i.
 * One function for the same reason as kcompute: the block-local copies must be visible to the
 * compiler in the same body as the gather and scatter loops so they stay on the stack. */
NOPS__INLINE void kgather(const nops__kconst *k, nops__dstate *st, const uint32_t *slots,
                          size_t base, uint32_t n, const float *x, float *zo, float *zeo,
                          uint8_t *fo, float *ro, const int method)
{
    const bool do_z = method != NOPS_METHOD_EWMA;
    const bool do_e = method != NOPS_METHOD_ZSCORE;
    const bool do_s = method == NOPS__METHOD_ALL_SEASON;
    const bool do_c = method == NOPS_METHOD_ALL || do_s;
    float ring[NOPS__BLOCK], shift[NOPS__BLOCK], cp[NOPS__BLOCK], cn[NOPS__BLOCK];
    float last[NOPS__BLOCK], prev[NOPS__BLOCK], res[NOPS__BLOCK], r32[NOPS__BLOCK];
    float sk0[NOPS__BLOCK], sk1[NOPS__BLOCK];
    uint32_t sper[NOPS__BLOCK], sage[NOPS__BLOCK], kb0[NOPS__BLOCK], kb1[NOPS__BLOCK];
    double sum[NOPS__BLOCK], sumsq[NOPS__BLOCK], em[NOPS__BLOCK], ev[NOPS__BLOCK];
    double lm[NOPS__BLOCK], lv[NOPS__BLOCK], gm[NOPS__BLOCK], gv[NOPS__BLOCK];
    float lc[NOPS__BLOCK];
    uint32_t meta[NOPS__BLOCK], f32[NOPS__BLOCK], age[NOPS__BLOCK], lage[NOPS__BLOCK];
    const size_t cap = st->cap;
    for (uint32_t i = 0; i < n; i++) {
        const size_t s = slots ? slots[i] : base + i;
        meta[i] = st->meta[s];
        age[i] = st->age[s];
        if (do_z)
            prev[i] = lastv(st, s, meta[i], do_z);
        else
            last[i] = st->last[s];
        res[i] = st->res[s];
        if (do_z) {
            ring[i] = st->ring[(size_t)NOPS__META_POS(meta[i]) * cap + s];
            shift[i] = st->shift[s];
            sum[i] = st->sum[s];
            sumsq[i] = st->sumsq[s];
        }
        if (do_e) {
            em[i] = st->em[s];
            ev[i] = st->ev[s];
        }
        if (do_c) {
            lm[i] = st->lm[s];
            lv[i] = st->lv[s];
            gm[i] = st->gm[s];
            gv[i] = st->gv[s];
            cp[i] = st->cp[s];
            cn[i] = st->cn[s];
            lage[i] = st->lage[s];
            lc[i] = st->lc[s];
        }
        if (do_s) {
            float w, j;
            sper[i] = st->sper[s];
            sage[i] = st->sage[s];
            season_pos(sage[i], sper[i], &kb0[i], &kb1[i], &w, &j);
            sk0[i] = st->sk[(size_t)kb0[i] * cap + s];
            sk1[i] = st->sk[(size_t)kb1[i] * cap + s];
        }
    }
    const uint32_t any = kcompute(k, n, x, ring, sum, sumsq, shift, em, ev, lm, lv, gm, gv, lc, cp, cn, last,
                                  res, prev, age, lage, meta, sk0, sk1, sper, sage, zo, zeo, r32, f32,
                                  method, false, 0);
    for (uint32_t i = 0; i < n; i++) {
        const size_t s = slots ? slots[i] : base + i;
        if (do_z) {
            /* the value entering the window goes where the leaving one was: the old position */
            st->ring[(size_t)NOPS__META_POS(st->meta[s]) * cap + s] = ring[i];
            st->shift[s] = shift[i];
            st->sum[s] = sum[i];
            st->sumsq[s] = sumsq[i];
        }
        if (do_e) {
            st->em[s] = em[i];
            st->ev[s] = ev[i];
        }
        if (do_c) {
            st->lm[s] = lm[i];
            st->lv[s] = lv[i];
            st->gm[s] = gm[i];
            st->gv[s] = gv[i];
            st->cp[s] = cp[i];
            st->cn[s] = cn[i];
            st->lage[s] = lage[i];
            st->lc[s] = lc[i];
        }
        if (do_s) {
            st->sk[(size_t)kb0[i] * cap + s] = sk0[i];
            st->sk[(size_t)kb1[i] * cap + s] = sk1[i];
            st->sage[s] = sage[i];
        }
        st->meta[s] = meta[i];
        st->age[s] = age[i];
        if (!do_z)
            st->last[s] = last[i];
        st->res[s] = res[i];
    }
    if (any)
        block_fixups(k, st, slots, base, n, f32, method);
    narrow_flags(f32, fo, r32, ro, n);
}

/* Uniform path: compute in place on the state of contiguous slots [s0, s0 + n). */
NOPS__INLINE void kuniform(const nops__kconst *k, nops__dstate *st, size_t s0, uint32_t n,
                           uint32_t up, uint32_t uc, const float *x, float *zo, float *zeo,
                           uint8_t *fo, float *ro, const int method)
{
    uint32_t f32[NOPS__BLOCK];
    float r32[NOPS__BLOCK];
    /* the block shares its phase (range_impl): its two knots are two contiguous rows. They are
     * computed on in block-local copies: on the rows in place GCC does not vectorise the loop */
    float sk0[NOPS__BLOCK], sk1[NOPS__BLOCK];
    uint32_t sper[NOPS__BLOCK], sage[NOPS__BLOCK];
    float *row0 = NULL, *row1 = NULL;
    if (method == NOPS__METHOD_ALL_SEASON) {
        memcpy(sper, st->sper + s0, n * sizeof *sper);
        memcpy(sage, st->sage + s0, n * sizeof *sage);
        uint32_t b0, b1;
        float w, j;
        season_pos(st->sage[s0], st->sper[s0], &b0, &b1, &w, &j);
        row0 = st->sk + (size_t)b0 * st->cap + s0;
        row1 = st->sk + (size_t)b1 * st->cap + s0;
        memcpy(sk0, row0, n * sizeof *sk0);
        memcpy(sk1, row1, n * sizeof *sk1);
    }
    /* the previous value: with the window, the ring row before this one once it holds a point */
    const bool do_z = method != NOPS_METHOD_EWMA;
    const float *lastp = do_z && uc > 0 ? st->ring + (size_t)(up ? up - 1u : k->W - 1u) * st->cap + s0
                                        : st->last + s0;
    const uint32_t any =
        kcompute(k, n, x, st->ring + (size_t)up * st->cap + s0, st->sum + s0, st->sumsq + s0,
                 st->shift + s0, st->em + s0, st->ev + s0, st->lm + s0, st->lv + s0, st->gm + s0, st->gv + s0,
                 st->lc + s0, st->cp + s0, st->cn + s0, st->last + s0, st->res + s0, lastp, st->age + s0,
                 st->lage + s0, st->meta + s0, sk0, sk1, sper, sage, zo, zeo,
                 r32, f32, method, true, uc);
    if (method == NOPS__METHOD_ALL_SEASON) {
        memcpy(row0, sk0, n * sizeof *sk0);
        memcpy(row1, sk1, n * sizeof *sk1);
        memcpy(st->sage + s0, sage, n * sizeof *sage);
    }
    if (any)
        block_fixups(k, st, NULL, s0, n, f32, method);
    narrow_flags(f32, fo, r32, ro, n);
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
        /* uniform when count and position (the low 22 bits) agree across the block */
        const uint32_t m0 = st->meta[s0] & 0x3fffffu;
        uint32_t diff = 0;
        for (uint32_t i = 0; i < m; i++)
            diff |= (st->meta[s0 + i] & 0x3fffffu) ^ m0;
        if (method == NOPS__METHOD_ALL_SEASON) /* and the season's period and phase */
            for (uint32_t i = 0; i < m; i++)
                diff |= (st->sper[s0 + i] ^ st->sper[s0]) | (st->sage[s0 + i] ^ st->sage[s0]);
        const uint32_t p0 = NOPS__META_POS(m0), c0 = NOPS__META_CNT(m0);
        if (diff == 0) {
            kuniform(k, st, s0, m, p0, c0, x + b, out->z + b, out->ze + b, out->flags + b,
                     out->ratio ? out->ratio + b : NULL, method);
            if (do_z && p0 + 1u == k->W)
                recompute_block(k, st, s0, m, out->flags + b);
        } else {
            kgather(k, st, NULL, s0, m, x + b, out->z + b, out->ze + b, out->flags + b,
                    out->ratio ? out->ratio + b : NULL, method);
            if (do_z)
                for (uint32_t i = 0; i < m; i++)
                    if ((out->flags[b + i] & NOPS_DETECT_VALID) &&
                        NOPS__META_POS(st->meta[s0 + i]) == 0)
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
        kgather(k, st, slots + i, 0, j - i, x + i, out->z + i, out->ze + i, out->flags + i,
                out->ratio ? out->ratio + i : NULL, method);
        if (do_z)
            for (uint32_t l = i; l < j; l++)
                if ((out->flags[l] & NOPS_DETECT_VALID) &&
                    NOPS__META_POS(st->meta[slots[l]]) == 0)
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
NOPS__DEFINE(NOPS_METHOD_ALL, all)
NOPS__DEFINE(NOPS__METHOD_ALL_SEASON, all_s)

const nops__kernels NOPS__FN(nops__kernels) = {
    .range = {NOPS__FN(range_z), NOPS__FN(range_e), NOPS__FN(range_ze), NOPS__FN(range_all),
              NOPS__FN(range_all_s)},
    .pairs = {NOPS__FN(pairs_z), NOPS__FN(pairs_e), NOPS__FN(pairs_ze), NOPS__FN(pairs_all),
              NOPS__FN(pairs_all_s)},
};
