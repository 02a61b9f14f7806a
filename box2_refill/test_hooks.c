/* box2_refill/test_hooks.c - the hook pointers of refill.h, defined in the test build of the
 * library only (-DHAK_TEST_HOOKS, tests/tests.mk). The shipped library has none. */
#include "refill.h"

#ifdef HAK_TEST_HOOKS
void (*hak_refill_hook)(unsigned class_idx, uint32_t refill_count);
void (*hak_give_hook)(unsigned class_idx, uint32_t count, enum hak_give why);
#endif
