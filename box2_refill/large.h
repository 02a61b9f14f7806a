/* box2_refill/large.h - Box 2's large path, beyond what shared_contracts/backend.h exports. */
#ifndef HAK_BOX2_LARGE_H
#define HAK_BOX2_LARGE_H

#include <stdint.h>

/* ptr's page map entry is tagged HAK_PM_LARGE; aborts unless ptr starts a live large block. */
void hak_large_free(void *ptr, uint64_t entry);
void hak_large_stats(uint64_t *live_count, uint64_t *live_bytes, uint64_t *total_count);

#endif
