/* box1_tls/sample_math.h - the two functions of the sampler's arithmetic, without libm:
 * the exponential draw of an interval and the chance that an allocation of a given size is
 * sampled.
 *
 * Why not libm: it is the only library hakmem would load for two calls made once a sample,
 * and every process that preloads hakmem would carry it: loading libm runs its IFUNC
 * resolvers, which fault in about 300 KiB of its text, resident in every process (measured
 * with /proc/self/smaps; docs/BENCHMARKS.md). Both need only a few digits: they set the
 * spacing and the odds of samples, whose own scatter is far larger.
 *
 * Pure inline functions; tests/unit/test_sample_math.c checks them against libm.
 */
#ifndef HAK_BOX1_SAMPLE_MATH_H
#define HAK_BOX1_SAMPLE_MATH_H

#include <stdint.h>
#include <string.h>

#include "log_table.h"

#define HAK_LN2 0.6931471805599453

/* -ln(u) for u = ((r >> 11) + 1) / 2^53, in (0, 1]: an exponential variate of mean 1 from a
 * random word. u = 2^e m with m in [1, 2); ln m = ln c + ln(1 + x) for the lower end c of m's
 * cell of the table (its top 8 mantissa bits) and x = m/c - 1 in [0, 1/256), summed to x^4:
 * absolute error below 1e-12, with no division (a third of the time of the series it
 * replaced, which a sample paid: docs/BENCHMARKS.md). */
static inline double hak_neg_log_unit(uint64_t r)
{
    double u = (double)((r >> 11) + 1) * 0x1.0p-53;
    uint64_t bits;
    memcpy(&bits, &u, sizeof bits);
    int e = (int)(bits >> 52) - 1023; /* u >= 2^-53: never subnormal */
    const double *row = hak_log_table[(bits >> (52 - HAK_LOG_TABLE_BITS)) &
                                      ((1u << HAK_LOG_TABLE_BITS) - 1)];
    bits = (bits & ((UINT64_C(1) << 52) - 1)) | UINT64_C(1023) << 52;
    double m;
    memcpy(&m, &bits, sizeof m);
    double x = m * row[0] - 1.0;
    double ln_m = row[1] + x * (1.0 - x * (0.5 - x * (1.0 / 3 - x * 0.25)));
    return -((double)e * HAK_LN2 + ln_m);
}

/* 1 - exp(-y) for y >= 0: the chance that a Poisson process of rate 1 has a point in an
 * interval of length y. Relative error below 1e-9: for y < 1/2 its alternating series
 * (no cancellation), else 1 - 2^-k exp(-f) with y = k ln 2 + f, f in [0, ln 2). */
static inline double hak_one_minus_exp_neg(double y)
{
    if (!(y > 0.0))
        return 0.0;
    if (y < 0.5) {
        double sum = 1.0; /* 1 - y/2 + y^2/6 - ...: (1 - exp(-y)) / y, by Horner, to y^12 */
        for (int n = 13; n >= 2; n--)
            sum = 1.0 - sum * y / n;
        return y * sum;
    }
    if (y > 700.0) /* exp(-700) < 1e-304 */
        return 1.0;
    int k = (int)(y / HAK_LN2); /* <= 1010 */
    double f = y - k * HAK_LN2;
    double term = 1.0, e_f = 1.0; /* exp(-f) to f^14 / 14! (< 1e-12 at f = ln 2) */
    for (int n = 1; n <= 14; n++) {
        term *= -f / n;
        e_f += term;
    }
    uint64_t bits = (uint64_t)(1023 - k) << 52; /* 2^-k */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return 1.0 - scale * e_f;
}

#endif
