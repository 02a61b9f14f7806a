/* box2_refill/stats.h - the per-class statistics table at exit (HAKMEM_STATS=1,
 * HAKMEM_STATS_FILE). Its format, hak_stats_format, and the usage snapshot behind mallinfo2,
 * malloc_info and malloc_stats are declared in shared_contracts/introspect.h: Box 1's
 * introspection entry points call them. */
#ifndef HAK_BOX2_STATS_H
#define HAK_BOX2_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "shared_contracts/introspect.h"

/* Format the table (hak_stats_format) and write(2) it to fd. */
void hak_stats_write(int fd);
/* Write it to the file HAKMEM_STATS_FILE names (`pattern`: "%p" is the pid, else ".<pid>"
 * is appended), created or truncated; one warning naming the variable if that fails. No
 * allocation, no stdio. */
void hak_stats_write_file(const char *pattern);

#endif
