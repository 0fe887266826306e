/*
 * ref.h — the double-precision reference detector the kernels are tested against.
 *
 * Written for clarity, not speed: the window mean and std are recomputed with a two-pass sum
 * over the stored window at every point, in double, so no running sum can drift. Semantics are
 * those of detect.h, including the std floor, the z clamp, warm-up and hysteresis.
 */
#ifndef NOPS_TEST_REF_H
#define NOPS_TEST_REF_H

#include "detect/detect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ref_det {
    nops_detect_params p; /* params */
    double ring[NOPS_DETECT_MAX_WINDOW]; /* window, oldest first after rotation */
    int n;                /* points in window */
    int pos;              /* next write index */
    double m, v;          /* EWMA */
    int in;               /* anomalous state */
    int quiet;            /* consecutive quiet points */
} ref_det;

static inline void ref_init(ref_det *r, const nops_detect_params *p)
{
    memset(r, 0, sizeof *r);
    r->p = *p;
}

static inline double ref_z(double dev, double var, double level)
{
    double fl = NOPS_DETECT_FLOOR_REL * fabs(level) + NOPS_DETECT_FLOOR_ABS;
    double sd = sqrt(var);
    double z = dev / (sd > fl ? sd : fl);
    if (z > NOPS_DETECT_Z_MAX)
        z = NOPS_DETECT_Z_MAX;
    if (z < -NOPS_DETECT_Z_MAX)
        z = -NOPS_DETECT_Z_MAX;
    return z;
}

/* One point; returns NOPS_DETECT_* flags, fills z and ze. */
static inline unsigned ref_update(ref_det *r, float xf, double *z, double *ze)
{
    *z = *ze = 0.0;
    if (!isfinite(xf))
        return 0;
    const double x = xf;
    const int W = (int)r->p.window;
    const int min_n = W / 2 < 2 ? 2 : W / 2;
    const int warm = r->n >= min_n;
    const int do_z = r->p.method != NOPS_METHOD_EWMA, do_e = r->p.method != NOPS_METHOD_ZSCORE;
    if (warm && do_z) {
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < r->n; i++)
            mean += r->ring[i];
        mean /= r->n;
        for (int i = 0; i < r->n; i++)
            var += (r->ring[i] - mean) * (r->ring[i] - mean);
        var /= r->n;
        *z = ref_z(x - mean, var, mean);
    }
    if (warm && do_e)
        *ze = ref_z(x - r->m, r->v, r->m);
    if (r->n == 0) {
        r->m = x;
        r->v = 0.0;
    } else {
        double e = x - r->m;
        r->m += r->p.alpha * e;
        r->v = (1.0 - r->p.alpha) * (r->v + r->p.alpha * e * e);
    }
    r->ring[r->pos] = x;
    r->pos = (r->pos + 1) % W;
    if (r->n < W)
        r->n++;

    double ratio = nops_detect_ratio(&r->p, *z, *ze);
    int anom = warm && ratio >= 1.0;
    unsigned f = NOPS_DETECT_VALID | (warm ? NOPS_DETECT_WARM : 0) | (anom ? NOPS_DETECT_ANOM : 0);
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
