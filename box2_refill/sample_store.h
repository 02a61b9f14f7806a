/* box2_refill/sample_store.h - the sampled-block store (sample_store.c), beyond what
 * shared_contracts/backend.h exports: free's slow path for a pointer whose page map tag is
 * HAK_PM_SAMPLED (aborts naming `caller` unless ptr starts a live sampled block), and the
 * store's counts for the statistics. */
#ifndef HAK_BOX2_SAMPLE_STORE_H
#define HAK_BOX2_SAMPLE_STORE_H

#include <stddef.h>
#include <stdint.h>

void hak_store_free(void *ptr, const char *caller);
uint32_t hak_guarded_live(void);    /* guarded blocks live now (sample_store.c) */
uint64_t hak_guarded_declined(void); /* sampler picks allocated unguarded: past HAK_GUARD_LIVE_MAX, or no slot */
uint64_t hak_guarded_retired(void);  /* guarded slots kept out of use for good (an mprotect failed) */

#endif
