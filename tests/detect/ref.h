/*
 * ref.h — the double-precision reference detector the kernels are tested against.
 *
 * Written for clarity, not speed: the window mean and std are recomputed with a two-pass sum
 * over the stored window at every point, in double, so no running sum can drift. Semantics are
 * those of detect.h, including the std and resolution floors, the z clamp, warm-up, the robust
 * EWMA, the gated CUSUM with its restart, the combined ratio and hysteresis.
 */
#ifndef NOPS_TEST_REF_H
#define NOPS_TEST_REF_H

#include "detect/detect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref_det {
    nops_detect_params p; /* params, thresholds resolved */
    double ring[NOPS_DETECT_MAX_WINDOW]; /* window, oldest first after rotation */
    int n;                /* points in window */
    int pos;              /* next write index */
    long age;             /* valid points seen */
    long lage;            /* valid points since the long baseline (re)started */
    double last, res;     /* previous value, resolution (0 = none) */
    double m, v;          /* EWMA */
    double lm, lv;        /* long-horizon baseline (restarted at alarms) */
    double gm, gv;        /* CUSUM gate baseline */
    double cp, cn;        /* CUSUM sums */
    double lc;            /* lag-1 autocovariance of the long baseline's residuals */
    double ratio;         /* last combined ratio */
    int which;            /* its detector */
    int in;               /* anomalous state */
    int quiet;            /* consecutive quiet points */
} ref_det;

static inline void ref_init(ref_det *r, const nops_detect_params *p)
{
    memset(r, 0, sizeof *r);
    r->p = *p;
    nops_detect_params_resolve(&r->p);
}

static inline double ref_z(double dev, double var, double level, double res)
{
    double fl = NOPS_DETECT_FLOOR_REL * fabs(level) + NOPS_DETECT_FLOOR_ABS;
    const double rcap = NOPS_DETECT_RES_REL * fabs(level);
    res = res < rcap ? res : rcap;
    fl = fl > res ? fl : res;
    double sd = sqrt(var);
    double z = dev / (sd > fl ? sd : fl);
    if (z > NOPS_DETECT_Z_MAX)
        z = NOPS_DETECT_Z_MAX;
    if (z < -NOPS_DETECT_Z_MAX)
        z = -NOPS_DETECT_Z_MAX;
    return z;
}

/* The robust EW step of detect.h: weights max(α, 1/(n+1)), e² clipped at 16 v once warm. */
static inline void ref_ew(double *m, double *v, double x, long age, double a, double av, int warm,
                          int clip)
{
    double e = x - *m, w = 1.0 / (double)(age + 1);
    if (age == 0) {
        *m = x;
        return;
    }
    double e2 = e * e;
    if (clip && warm && e2 > 16.0 * *v)
        e2 = 16.0 * *v;
    *m += (a > w ? a : w) * e;
    *v += (av > w ? av : w) * (e2 - *v);
}

/* One point; returns NOPS_DETECT_* flags, fills z and ze. One function on purpose: it is the
 * plain, step-by-step statement of the kernel's contract (kernel_body.h's kcompute), read side
 * by side with it, so it keeps the kernel's order of steps in one body. */
static inline unsigned ref_update(ref_det *r, float xf, double *z, double *ze)
{
    *z = *ze = 0.0;
    r->ratio = 0.0;
    if (!isfinite(xf))
        return 0;
    const double x = xf;
    const int W = (int)r->p.window;
    const int warm = r->age >= r->p.warmup;
    const int do_z = r->p.method != NOPS_METHOD_EWMA, do_e = r->p.method != NOPS_METHOD_ZSCORE;
    const int do_c = r->p.method == NOPS_METHOD_ALL;
    const double res = r->res;
    const double prev = r->last;
    if (r->age > 0) {
        double step = fabs((double)(float)fabsf(xf - (float)r->last));
        if (step > 0 && (r->res == 0 || step < r->res))
            r->res = step;
    }
    r->last = x;
    if (warm && do_z) {
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < r->n; i++)
            mean += r->ring[i];
        mean /= r->n;
        for (int i = 0; i < r->n; i++)
            var += (r->ring[i] - mean) * (r->ring[i] - mean);
        var /= r->n;
        *z = ref_z(x - mean, var, mean, res);
    }
    if (warm && do_e)
        *ze = ref_z(x - r->m, r->v, r->m, res);
    if (do_e)
        ref_ew(&r->m, &r->v, x, r->age, r->p.alpha, r->p.alpha_var, warm, 1);
    double rc = 0.0;
    if (do_c) {
        const double aL = 1.0 / (double)r->p.long_window;
        float rho = (float)r->lv > 0.0f ? (float)r->lc / (float)r->lv : 0.0f;
        rho = rho > 0.0f ? rho : 0.0f;
        rho = rho < 0.95f ? rho : 0.95f;
        double u = ref_z(x - r->lm, r->lv * (double)((1.0f + rho) / (1.0f - rho)), r->lm, res);
        u = u > 4.0 ? 4.0 : u < -4.0 ? -4.0 : u;
        double sp = fmax(0.0, r->cp + u - r->p.cusum_k), sn = fmax(0.0, r->cn - u - r->p.cusum_k);
        const long c_min = r->p.long_window / 2 > r->p.warmup ? r->p.long_window / 2 : r->p.warmup;
        const int on = warm && r->age >= c_min && r->lage >= r->p.warmup && r->gv <= 2.0 * r->v;
        if (!on)
            sp = sn = 0.0;
        rc = fmax(sp, sn) / r->p.cusum_threshold;
        const int alarm = on && rc >= 1.0;
        if (r->age > 0 && r->lage > 0) {
            const double cap = 16.0 * r->lv;
            const double cv = fmax(-cap, fmin(cap, (x - r->lm) * (prev - r->lm)));
            const double bl = fmax(aL, 1.0 / (double)(r->lage + 1));
            r->lc = (double)(float)(r->lc + bl * (cv - r->lc));
        }
        ref_ew(&r->lm, &r->lv, x, r->lage, aL, aL, warm, 1);
        ref_ew(&r->gm, &r->gv, x, r->age, aL, aL, warm, 0);
        r->lage = alarm ? 0 : r->lage + 1;
        r->cp = on && !alarm ? sp : 0.0;
        r->cn = on && !alarm ? sn : 0.0;
    }
    r->age++;
    r->ring[r->pos] = x;
    r->pos = (r->pos + 1) % W;
    if (r->n < W)
        r->n++;

    double rz = do_z ? fabs(*z) / r->p.z_threshold : 0.0;
    double re = do_e ? fabs(*ze) / r->p.ewma_threshold : 0.0;
    double ratio = do_z ? rz : re;
    int which = do_z ? NOPS_DETECTOR_ZSCORE : NOPS_DETECTOR_EWMA;
    if (do_z && do_e && re > rz) {
        ratio = re;
        which = NOPS_DETECTOR_EWMA;
    }
    if (do_c && rc > ratio) {
        ratio = rc;
        which = NOPS_DETECTOR_CUSUM;
    }
    if (!warm)
        ratio = 0.0, which = 0;
    r->ratio = ratio;
    r->which = which;
    int anom = warm && ratio >= 1.0;
    unsigned f = NOPS_DETECT_VALID | (warm ? NOPS_DETECT_WARM : 0) | (anom ? NOPS_DETECT_ANOM : 0) |
                 ((unsigned)which << 5);
    if (!r->in) {
        if (anom) {
            r->in = 1;
            r->quiet = 0;
            f |= NOPS_DETECT_FIRED;
        }
    } else {
        r->quiet = ratio < r->p.hysteresis ? r->quiet + 1 : 0;
        if (r->quiet >= r->p.clear_points) {
            r->in = 0;
            r->quiet = 0;
            f |= NOPS_DETECT_CLEARED;
        }
    }
    return f;
}

/* |a − b| ≤ tol · max(1, |b|): absolute near zero, relative for large z. */
static inline int close_enough(double a, double b, double tol)
{
    double scale = fabs(b) > 1.0 ? fabs(b) : 1.0;
    return fabs(a - b) <= tol * scale;
}

#endif
