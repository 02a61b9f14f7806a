/* shared_contracts/list_rule.c - the list rule's parameters as a variable, in the test build
 * only (list_rule.h); the library uses the constants. */
#include "list_rule.h"

#ifdef HAK_TEST_HOOKS
hak_list_rule_t hak_list_rule = {.cap_refills = HAK_LIST_CAP_REFILLS_DEFAULT,
                                 .spill_div = HAK_LIST_SPILL_DIV_DEFAULT};
#endif
