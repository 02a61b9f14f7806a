/* shared_contracts/backend.c - the free key (backend.h). */
#include "backend.h"

/* Written once by Box 2's library init (before a second thread can exist); a nonzero
 * placeholder until then, so blocks cached before init still carry a mark. */
uint64_t hak_free_key = 0x9e3779b97f4a7c15ull;
