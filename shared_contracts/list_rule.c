/* shared_contracts/list_rule.c - the list rule's parameters (list_rule.h). */
#include "list_rule.h"

hak_list_rule_t hak_list_rule = {.cap_refills = 2, .spill_div = 2};
