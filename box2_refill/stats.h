/* box2_refill/stats.h - the per-class statistics table (HAKMEM_STATS=1, hakmem_stats_print). */
#ifndef HAK_BOX2_STATS_H
#define HAK_BOX2_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "shared_contracts/size_classes.h"
#include "span.h"

/* Format the table into buf (NUL-terminated); returns its length. No allocation. */
size_t hak_stats_format(char *buf, size_t cap);
/* Format and write(2) it to fd. */
void hak_stats_write(int fd);
/* Write it to the file HAKMEM_STATS_FILE names (`pattern`: "%p" is the pid, else ".<pid>"
 * is appended), created or truncated; one warning naming the variable if that fails. No
 * allocation, no stdio. */
void hak_stats_write_file(const char *pattern);

/* Where the memory is, per class and in all: one snapshot for mallinfo2, malloc_info and
 * malloc_stats, so that they agree. Exact while no other thread allocates; otherwise each
 * figure is a recent value. Takes the threads, class and pool locks one at a time.
 * A small block is in exactly one of: the program's hands (in_use), a thread list (thread),
 * its class's depot (depot), its span (span_free: free in a span in use, or the spare). */
typedef struct hak_class_usage {
    uint64_t in_use, thread, depot, span_free; /* blocks */
    uint64_t spans, mapped;         /* ACTIVE spans of the class (the spare too) and bytes */
} hak_class_usage_t;

typedef struct hak_usage {
    hak_class_usage_t cls[HAK_NUM_CLASSES];
    uint64_t in_use_blocks, thread_blocks, depot_blocks, span_free_blocks; /* class sums */
    uint64_t in_use_bytes, thread_bytes, depot_bytes, span_free_bytes;
    hak_span_totals_t spans;   /* span bytes mapped, active, pooled (empty), purged */
    uint64_t spans_mapped_max; /* the most span bytes mapped at once */
    uint64_t large_count, large_bytes;   /* live large blocks, their mapped bytes */
    uint64_t cache_entries, cache_bytes; /* freed large mappings kept for reuse */
} hak_usage_t;
void hak_usage_snapshot(hak_usage_t *u);

#endif
