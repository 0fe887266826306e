/*
 * score.c — from z values to a ratio and a score in [0, 1].
 *
 * The mapping (documented in README and detect.h): r = max(|z|/z_threshold, |ze|/ewma_threshold)
 * over the enabled methods, score = 1 − 2^(−r²). It is 0 for a perfectly ordinary point, exactly
 * 0.5 at the threshold (so "anomalous" ⇔ score ≥ 0.5), 0.9375 at twice the threshold, and
 * approaches 1 quickly beyond: an SRE can read 0.5 as "just over the line".
 */
#include "detect/detect.h"

#include <math.h>

double nops_detect_ratio(const nops_detect_params *p, double z, double ze)
{
    double rz = p->method != NOPS_METHOD_EWMA ? fabs(z) / p->z_threshold : 0.0;
    double re = p->method != NOPS_METHOD_ZSCORE ? fabs(ze) / p->ewma_threshold : 0.0;
    return rz > re ? rz : re;
}

double nops_detect_score(double ratio)
{
    if (!(ratio > 0.0))
        return 0.0;
    double s = 1.0 - exp2(-ratio * ratio);
    return s > 1.0 ? 1.0 : s;
}
