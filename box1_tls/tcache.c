/* box1_tls/tcache.c - the thread cache itself and the free key. */
#include "shared_contracts/tcache.h"

/* Per thread; all zero at thread start (the "static empty state"). Owner thread only. */
__thread hak_tcache_t hak_tcache __attribute__((tls_model("initial-exec")));

/* Written once by Box 2's init before other threads exist or see it; read-only after. A
 * nonzero placeholder until then, so blocks cached before init still carry a mark. */
uint64_t hak_free_key = 0x9e3779b97f4a7c15ull;
