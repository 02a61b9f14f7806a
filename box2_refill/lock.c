/* box2_refill/lock.c - the per-thread lock counters of lock.h. */
#include "lock.h"

__thread int hak_fork_holder __attribute__((tls_model("initial-exec")));
__thread int hak_locks_held __attribute__((tls_model("initial-exec")));
