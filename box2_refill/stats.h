/* box2_refill/stats.h - the per-class statistics table (HAKMEM_STATS=1, hakmem_stats_print). */
#ifndef HAK_BOX2_STATS_H
#define HAK_BOX2_STATS_H

#include <stddef.h>

/* Format the table into buf (NUL-terminated); returns its length. No allocation. */
size_t hak_stats_format(char *buf, size_t cap);
/* Format and write(2) it to fd. */
void hak_stats_write(int fd);
/* Write it to the file HAKMEM_STATS_FILE names (`pattern`: "%p" is the pid, else ".<pid>"
 * is appended), created or truncated; one warning naming the variable if that fails. No
 * allocation, no stdio. */
void hak_stats_write_file(const char *pattern);

#endif
