/*
 * score.c — from z values to a ratio and a score in [0, 1], and the calibration that turns the
 * one knob (false_alarm_points) into the three detectors' thresholds.
 *
 * The mapping (documented in README and detect.h): r = max(|z|/z_threshold, |ze|/ewma_threshold,
 * S/h) over the enabled detectors, score = 1 − 2^(−r²). It is 0 for a perfectly ordinary point,
 * exactly 0.5 at the threshold (so "anomalous" ⇔ score ≥ 0.5), 0.9375 at twice the threshold,
 * and approaches 1 quickly beyond: an SRE can read 0.5 as "just over the line".
 *
 * Calibration. A threshold is a false-alarm rate: at the defaults about one false signal per N
 * points of a stationary series. The per-point budget 1/N is split evenly over the three
 * detectors (a union bound: their exceedances overlap, so the combined rate is at most 1/N and
 * the hysteresis merges the runs of a single excursion into one signal):
 *   - the rolling z of a Gaussian series is (x − x̄)/s_pop with x outside its window of W, so
 *     z·sqrt((W−1)/(W+1)) is Student-t with W − 1 degrees of freedom;
 *   - the EWMA z divides by an estimate with about (2 − α_var)/α_var effective samples: t with
 *     that many degrees of freedom;
 *   - the t quantile is the normal quantile q (found by bisection on erfc) corrected by the
 *     Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5), good to well below 1 % here;
 *   - the CUSUM h solves Siegmund's approximation of the in-control average run length of a
 *     one-sided CUSUM of standard normal inputs, ARL = (e^{2kb} − 2kb − 1)/(2k²) with
 *     b = h + 1.166, for ARL = 6N (two sides, a third of the budget).
 * tests/detect/test_calibration.c checks the resulting rate on 10⁶ stationary points.
 */
#include "detect/detect.h"

#include <math.h>

/* 6N: two sides, a third of the budget. Measured (10⁶–3·10⁶ stationary points) the CUSUM's
 * own rate came within 15 % of the formula's at N = 10³, 10⁴ and 10⁵, so no empirical factor. */
#define NOPS__ARL_FACTOR 6.0

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

const char *nops_detector_name(nops_detector_kind k)
{
    static const char *names[NOPS_DETECTOR_N] = {"zscore", "ewma", "cusum", "season"};
    return (unsigned)k < NOPS_DETECTOR_N ? names[k] : "?";
}

/* q with P(|Z| ≥ q) = p for a standard normal Z (two-sided), by bisection on erfc. */
static double norm_q2(double p)
{
    double lo = 0.0, hi = 40.0;
    for (int i = 0; i < 200; i++) {
        const double mid = 0.5 * (lo + hi);
        if (erfc(mid / sqrt(2.0)) > p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* The two-sided Student-t quantile for ν degrees of freedom (Cornish-Fisher from q). */
static double t_q2(double p, double nu)
{
    const double q = norm_q2(p), q2 = q * q, q3 = q2 * q, q5 = q3 * q2, q7 = q5 * q2;
    const double g1 = (q3 + q) / 4.0;
    const double g2 = (5.0 * q5 + 16.0 * q3 + 3.0 * q) / 96.0;
    const double g3 = (3.0 * q7 + 19.0 * q5 + 17.0 * q3 - 15.0 * q) / 384.0;
    return q + g1 / nu + g2 / (nu * nu) + g3 / (nu * nu * nu);
}

/* Siegmund: the one-sided in-control ARL of a CUSUM with allowance k and interval h. */
static double cusum_arl(double k, double h)
{
    const double b = h + 1.166, x = 2.0 * k * b;
    return (exp(x) - x - 1.0) / (2.0 * k * k);
}

void nops_detect_thresholds(double N, int64_t window, double alpha_var, double cusum_k,
                            double *z_threshold, double *ewma_threshold, double *cusum_threshold)
{
    N = N >= 2.0 ? N : 2.0;
    const double p = 1.0 / (3.0 * N); /* per detector, two-sided */
    const double W = window > 2 ? (double)window : 3.0;
    *z_threshold = t_q2(p, W - 1.0) * sqrt((W + 1.0) / (W - 1.0));
    const double a = alpha_var > 0.0 && alpha_var <= 1.0 ? alpha_var : 0.01;
    const double nu = (2.0 - a) / a;
    *ewma_threshold = t_q2(p, nu > 2.0 ? nu : 2.0);
    const double k = cusum_k > 0.0 ? cusum_k : 0.5, target = NOPS__ARL_FACTOR * N;
    double lo = 0.0, hi = 1000.0;
    for (int i = 0; i < 200; i++) {
        const double mid = 0.5 * (lo + hi);
        if (cusum_arl(k, mid) < target)
            lo = mid;
        else
            hi = mid;
    }
    *cusum_threshold = 0.5 * (lo + hi);
}
