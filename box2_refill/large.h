/* box2_refill/large.h - Box 2's large path, beyond what shared_contracts/backend.h exports. */
#ifndef HAK_BOX2_LARGE_H
#define HAK_BOX2_LARGE_H

#include <stddef.h>
#include <stdint.h>

/* ptr's page map entry is tagged HAK_PM_LARGE; aborts unless ptr starts a live large block. */
void hak_large_free(void *ptr, uint64_t entry);
/* A large block for a sampled allocation (hak_sampled_alloc): its header keeps the note and
 * the size, which hak_large_note gives back (0 for a block with no note, or not a live large
 * block; never aborts). realloc keeps them with the block. */
void *hak_large_alloc_noted(size_t size, size_t align, int zero, uintptr_t note);
int hak_large_note(const void *ptr, uint64_t entry, uintptr_t *note, size_t *size);
/* Live large blocks and their mapped bytes (the freed ranges threads keep are not counted:
 * large_local.h), and large blocks allocated in all. */
void hak_large_stats(uint64_t *live_count, uint64_t *live_bytes, uint64_t *total_count);

#endif
