/* tests/unit/test_sample_math.c - the sampler's arithmetic without libm
 * (box1_tls/sample_math.h) against libm's: the exponential draw -ln(u) over random words and
 * the ends of its range, and 1 - exp(-y) from tiny to huge y (libm's -expm1(-y) is the
 * reference, which keeps its digits where 1 - exp(-y) cancels). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "box1_tls/sample_math.h"
#include "shared_contracts/random.h"

static void test_neg_log_unit_matches_libm(void **s)
{
    (void)s;
    uint64_t state = 0x9e3779b97f4a7c15ull, worst_at = 0;
    double worst = 0.0;
    for (int i = 0; i < 2000000; i++) {
        uint64_t r = hak_xorshift64s(&state);
        if (i < 64) /* the ends: u = 2^-53 ... and u near 1, and each power of two */
            r = i < 2 ? (i ? UINT64_MAX : 0) : (UINT64_C(1) << (i - 2)) << 11;
        double want = -log((double)((r >> 11) + 1) * 0x1.0p-53);
        double err = fabs(hak_neg_log_unit(r) - want);
        if (err > worst) {
            worst = err;
            worst_at = r;
        }
    }
    print_message("    worst absolute error %.3g (at r = %#llx)\n", worst,
                  (unsigned long long)worst_at);
    assert_true(worst < 1e-8);
    assert_true(hak_neg_log_unit(UINT64_MAX) == 0.0); /* u = 1 */
}

static void test_one_minus_exp_neg_matches_libm(void **s)
{
    (void)s;
    double worst = 0.0, worst_y = 0.0;
    for (double y = 1e-15; y < 900.0; y *= 1.001) {
        double want = -expm1(-y);
        double err = fabs(hak_one_minus_exp_neg(y) - want) / want;
        if (err > worst) {
            worst = err;
            worst_y = y;
        }
    }
    print_message("    worst relative error %.3g (at y = %g)\n", worst, worst_y);
    assert_true(worst < 1e-8);
    assert_true(hak_one_minus_exp_neg(0.0) == 0.0);
    assert_true(hak_one_minus_exp_neg(-3.0) == 0.0);
    assert_true(hak_one_minus_exp_neg(1e6) == 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_neg_log_unit_matches_libm),
        cmocka_unit_test(test_one_minus_exp_neg_matches_libm),
    };
    return cmocka_run_group_tests_name("sampler arithmetic without libm", tests, NULL, NULL);
}
