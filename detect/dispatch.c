/*
 * dispatch.c — the detector object: creation, kernel variant choice, update entry points.
 *
 * The variant is chosen once (at creation or by nops_detect_set_variant) from the CPU flags
 * reported by __builtin_cpu_supports; the update calls then cost one indirect call per batch.
 * Without NOPS_X86_SIMD (not x86-64, or NOPS_SCALAR_ONLY) only the scalar variant is built
 * and supported.
 */
#include "detect/detect_int.h"

#include <math.h>
#include <string.h>

bool nops_detect_variant_supported(nops_detect_variant v)
{
#ifdef NOPS_X86_SIMD
    __builtin_cpu_init();
#endif
    switch (v) {
    case NOPS_VARIANT_AUTO:
    case NOPS_VARIANT_SCALAR:
        return true;
#ifdef NOPS_X86_SIMD
    case NOPS_VARIANT_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case NOPS_VARIANT_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("fma");
#else
    case NOPS_VARIANT_AVX2:
    case NOPS_VARIANT_AVX512:
        return false;
#endif
    }
    return false;
}

nops_detect_variant nops_detect_variant_best(void)
{
    if (nops_detect_variant_supported(NOPS_VARIANT_AVX512))
        return NOPS_VARIANT_AVX512;
    if (nops_detect_variant_supported(NOPS_VARIANT_AVX2))
        return NOPS_VARIANT_AVX2;
    return NOPS_VARIANT_SCALAR;
}

const char *nops_detect_variant_name(nops_detect_variant v)
{
    static const char *names[] = {"auto", "scalar", "avx2", "avx512"};
    return (unsigned)v < 4 ? names[v] : "?";
}

nops_err nops_detect_set_variant(nops_detector *det, nops_detect_variant v)
{
    if (v == NOPS_VARIANT_AUTO)
        v = nops_detect_variant_best();
    if (!nops_detect_variant_supported(v))
        return NOPS_UNSUPPORTED;
    det->variant = v;
#ifdef NOPS_X86_SIMD
    det->kern = v == NOPS_VARIANT_AVX512 ? &nops__kernels_avx512
                : v == NOPS_VARIANT_AVX2 ? &nops__kernels_avx2
                                         : &nops__kernels_scalar;
#else
    det->kern = &nops__kernels_scalar;
#endif
    return NOPS_OK;
}

nops_detect_variant nops_detect_get_variant(const nops_detector *det)
{
    return det->variant;
}

nops_detector *nops_detect_new(const nops_detect_params *p, uint32_t capacity_hint, char *errstr,
                               size_t errstr_size)
{
    if (!p) {
        nops_errf(errstr, errstr_size, "no detector parameters");
        return NULL;
    }
    if (nops_detect_params_check(p, errstr, errstr_size) != NOPS_OK)
        return NULL;
    nops_detector *det = nops_calloc(1, sizeof *det);
    if (!det)
        goto nomem;
    det->p = *p;
    nops_detect_params_resolve(&det->p);
    nops__kconst_init(&det->k, &det->p);
    const uint32_t cap = capacity_hint ? capacity_hint : 1024;
    if (nops__dstate_init(&det->st, det->k.W, cap, det->p.season_points > 0) != NOPS_OK)
        goto nomem;
    if (nops__registry_init(det, cap) != NOPS_OK)
        goto nomem;
    if (nops_detect_set_variant(det, (nops_detect_variant)p->variant) != NOPS_OK) {
        nops_errf(errstr, errstr_size,
                  "detect.variant=%s is not supported by this CPU (best available: %s)",
                  nops_detect_variant_name((nops_detect_variant)p->variant),
                  nops_detect_variant_name(nops_detect_variant_best()));
        nops_detect_destroy(det);
        return NULL;
    }
    return det;
nomem:
    nops_errf(errstr, errstr_size, "out of memory creating a detector for %u series",
              capacity_hint);
    nops_detect_destroy(det);
    return NULL;
}

void nops_detect_destroy(nops_detector *det)
{
    if (!det)
        return;
    nops__registry_fini(det);
    nops__dstate_fini(&det->st);
    nops_free(det);
}

nops_err nops_detect_set_thresholds(nops_detector *det, const nops_detect_params *p,
                                    char *errstr, size_t errstr_size)
{
    nops_detect_params q = det->p; /* the rest stays: it shapes the state already held */
    q.false_alarm_points = p->false_alarm_points;
    q.z_threshold = p->z_threshold;
    q.ewma_threshold = p->ewma_threshold;
    q.cusum_threshold = p->cusum_threshold;
    q.hysteresis = p->hysteresis;
    q.clear_points = p->clear_points;
    if (nops_detect_params_check(&q, errstr, errstr_size) != NOPS_OK)
        return NOPS_CONFIG;
    nops_detect_params_resolve(&q); /* a threshold of 0: derived from the new N */
    det->p = q;
    nops__kconst_init(&det->k, &det->p);
    return NOPS_OK;
}

const nops_detect_params *nops_detect_get_params(const nops_detector *det)
{
    return &det->p;
}

uint32_t nops_detect_warmup(const nops_detector *det)
{
    return det->k.min_n;
}

/* The kernel to run: `all` with the seasonal baseline once any series may have a season (the
 * plain `all` kernel does not touch the profile arrays: no cost without seasons). */
static int kernel_index(const nops_detector *det)
{
    if (det->p.method == NOPS_METHOD_ALL && det->st.seasonal)
        return NOPS__METHOD_ALL_SEASON;
    return det->p.method;
}

nops_err nops_detect_update_range(nops_detector *det, uint32_t first, uint32_t n,
                                  const float *values, const nops_detect_out *out)
{
    if (!det || !values || !out || !out->z || !out->ze || !out->flags)
        return NOPS_INVAL;
    if (n == 0)
        return NOPS_OK;
    if ((uint64_t)first + n > det->hwm)
        return NOPS_RANGE;
    det->kern->range[kernel_index(det)](&det->k, &det->st, first, n, values, out);
    return NOPS_OK;
}

nops_err nops_detect_update_pairs(nops_detector *det, const uint32_t *slots, const float *values,
                                  size_t n, const nops_detect_out *out)
{
    if (!det || !slots || !values || !out || !out->z || !out->ze || !out->flags)
        return NOPS_INVAL;
    for (size_t i = 0; i < n; i++)
        if (slots[i] >= det->hwm)
            return NOPS_RANGE;
    /* the kernels take 32-bit counts; feed them in bounded batches */
    for (size_t off = 0; off < n; off += (1u << 30)) {
        uint32_t m = (uint32_t)(n - off < (1u << 30) ? n - off : (1u << 30));
        nops_detect_out o = {out->z + off, out->ze + off, out->flags + off,
                             out->ratio ? out->ratio + off : NULL};
        det->kern->pairs[kernel_index(det)](&det->k, &det->st, slots + off, m, values + off, &o);
    }
    return NOPS_OK;
}

nops_err nops_detect_slot_stats(const nops_detector *det, uint32_t slot, double *mean,
                                double *std, uint32_t *count)
{
    if (slot >= det->hwm)
        return NOPS_RANGE;
    const nops__dstate *st = &det->st;
    const uint32_t c = NOPS__META_CNT(st->meta[slot]);
    if (count)
        *count = c;
    if (c == 0 || det->p.method == NOPS_METHOD_EWMA) {
        if (c && det->p.method == NOPS_METHOD_EWMA) {
            if (mean)
                *mean = st->em[slot];
            if (std)
                *std = sqrt(st->ev[slot]);
            return NOPS_OK;
        }
        return NOPS_RANGE;
    }
    const double md = st->sum[slot] / c;
    const double var = st->sumsq[slot] / c - md * md;
    if (mean)
        *mean = (double)st->shift[slot] + md;
    if (std)
        *std = var > 0 ? sqrt(var) : 0.0;
    return NOPS_OK;
}
