/* shared_contracts/diag.h - messages from inside the allocator, without malloc or stdio.
 *
 * hak_fmt understands %s %d %u %ld %lu %zu %llu %x %lx %p and %%, each with an optional
 * width (right-aligned, e.g. %8zu); it never allocates and
 * always NUL-terminates. hak_warn writes "hakmem: warning: ..." to fd 2; hak_fatal writes
 * "hakmem: ..." to fd 2 and aborts. Safe in any thread, under any hakmem lock, and in a
 * forked child.
 */
#ifndef HAK_DIAG_H
#define HAK_DIAG_H

#include <stdarg.h>
#include <stddef.h>

size_t hak_vfmt(char *buf, size_t cap, const char *fmt, va_list ap);
size_t hak_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void hak_write_all(int fd, const char *buf, size_t len);
void hak_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hak_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn, cold));

#endif
