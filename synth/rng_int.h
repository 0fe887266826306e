/*
 * rng_int.h — the deterministic random numbers of corpus.c and fleet.c (synth/ internal):
 * splitmix64 seeding a xoshiro256** generator, and the distributions the generators draw.
 */
#ifndef NOPS_SYNTH_RNG_INT_H
#define NOPS_SYNTH_RNG_INT_H

#include <math.h>
#include <stdint.h>

typedef struct synth_rng {
    uint64_t s[4]; /* xoshiro256** state */
} synth_rng;

static inline uint64_t synth_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void synth_rng_seed(synth_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = synth_splitmix(&seed);
}

static inline uint64_t synth_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t synth_next(synth_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t out = synth_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = synth_rotl(s[3], 45);
    return out;
}

/** Uniform in [0, 1). */
static inline double synth_unif(synth_rng *r)
{
    return (double)(synth_next(r) >> 11) * 0x1.0p-53;
}
/** Uniform in [a, b). */
static inline double synth_range(synth_rng *r, double a, double b)
{
    return a + (b - a) * synth_unif(r);
}
/** Uniform integer in [0, n). */
static inline uint32_t synth_below(synth_rng *r, uint32_t n)
{
    return (uint32_t)(synth_unif(r) * n);
}
/** Standard normal (Box–Muller, one of the pair). */
static inline double synth_normal(synth_rng *r)
{
    double u = synth_unif(r);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * synth_unif(r));
}
/** Student-t with nu (integer, 1..10) degrees of freedom. */
static inline double synth_student(synth_rng *r, int nu)
{
    double chi = 0;
    for (int i = 0; i < nu; i++) {
        const double z = synth_normal(r);
        chi += z * z;
    }
    return synth_normal(r) / sqrt(chi / nu);
}
/** Poisson(lambda) for lambda up to a few dozen (Knuth's product of uniforms). */
static inline uint32_t synth_poisson(synth_rng *r, double lambda)
{
    const double l = exp(-lambda);
    double p = 1.0;
    uint32_t k = 0;
    do {
        k++;
        p *= synth_unif(r);
    } while (p > l && k < 1000);
    return k - 1;
}

#endif
