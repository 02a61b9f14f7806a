/* box3_ace/acelog.c - POOL_ACE_LOG=path: one CSV row per count change.
 *
 * Header (the bench plot script reads exactly this):
 *   ms,class,old_count,new_count,reason,refills_per_s,spills_per_s,drops
 * ms: since hak_ace_start; class: the class index 0..39 (docs/TUNING.md maps it to a size);
 * refills_per_s, spills_per_s: the class over the interval, all threads; drops: events lost in
 * the interval, all classes (ring full + no ring). Written with open(2)/write(2) from a stack
 * buffer: no malloc, no stdio. Everything here runs under hak_ace_mu.
 */
#include <fcntl.h>
#include <unistd.h>

#include "box3_ace/ace_internal.h"
#include "shared_contracts/diag.h"

static int log_fd = -1;        /* under hak_ace_mu */
static char log_buf[4096];     /* rows not yet written; under hak_ace_mu */
static size_t log_len;         /* bytes used in log_buf; under hak_ace_mu */

static const char log_header[] =
    "ms,class,old_count,new_count,reason,refills_per_s,spills_per_s,drops\n";

void hak_ace_log_open(const char *path)
{
    if (!path || !path[0] || log_fd >= 0)
        return;
    log_fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        hak_warn("POOL_ACE_LOG=%s: cannot open it; ACE logging is off", path);
        return;
    }
    hak_write_all(log_fd, log_header, sizeof log_header - 1);
}

void hak_ace_log_flush(void)
{
    if (log_fd >= 0 && log_len)
        hak_write_all(log_fd, log_buf, log_len);
    log_len = 0;
}

void hak_ace_log_row(uint64_t ms, unsigned c, unsigned old_count, unsigned new_count,
                     const char *reason, uint64_t refills_per_s, uint64_t spills_per_s,
                     uint64_t drops)
{
    if (log_fd < 0)
        return;
    char row[160];
    size_t n = hak_fmt(row, sizeof row, "%llu,%u,%u,%u,%s,%llu,%llu,%llu\n",
                       (unsigned long long)ms, c, old_count, new_count, reason,
                       (unsigned long long)refills_per_s, (unsigned long long)spills_per_s,
                       (unsigned long long)drops);
    if (n >= sizeof row)
        n = sizeof row - 1;
    if (log_len + n > sizeof log_buf)
        hak_ace_log_flush();
    for (size_t i = 0; i < n; i++)
        log_buf[log_len + i] = row[i];
    log_len += n;
}

void hak_ace_log_close(void)
{
    hak_ace_log_flush();
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
}
