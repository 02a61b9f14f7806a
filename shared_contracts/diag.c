/* shared_contracts/diag.c - write(2)-based formatting for allocator messages (see diag.h). */
#include "diag.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t put_str(char *buf, size_t cap, size_t n, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s) {
        if (n + 1 < cap)
            buf[n] = *s;
        n++;
        s++;
    }
    return n;
}

static size_t put_uint(char *buf, size_t cap, size_t n, unsigned long long v, unsigned base)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (i > 0) {
        if (n + 1 < cap)
            buf[n] = tmp[i - 1];
        n++;
        i--;
    }
    return n;
}

size_t hak_vfmt(char *buf, size_t cap, const char *fmt, va_list ap)
{
    size_t n = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (n + 1 < cap)
                buf[n] = *f;
            n++;
            continue;
        }
        f++;
        unsigned width = 0;
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (unsigned)(*f++ - '0');
        size_t start = n;
        int longs = 0, size_t_arg = 0;
        while (*f == 'l') {
            longs++;
            f++;
        }
        if (*f == 'z') {
            size_t_arg = 1;
            f++;
        }
        switch (*f) {
        case 's':
            n = put_str(buf, cap, n, va_arg(ap, const char *));
            break;
        case 'd': {
            long long v = longs ? (longs > 1 ? va_arg(ap, long long) : va_arg(ap, long))
                                : va_arg(ap, int);
            if (v < 0) {
                n = put_str(buf, cap, n, "-");
                v = -v;
            }
            n = put_uint(buf, cap, n, (unsigned long long)v, 10);
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v;
            if (size_t_arg)
                v = va_arg(ap, size_t);
            else if (longs > 1)
                v = va_arg(ap, unsigned long long);
            else if (longs)
                v = va_arg(ap, unsigned long);
            else
                v = va_arg(ap, unsigned);
            n = put_uint(buf, cap, n, v, *f == 'x' ? 16 : 10);
            break;
        }
        case 'p':
            n = put_str(buf, cap, n, "0x");
            n = put_uint(buf, cap, n, (uintptr_t)va_arg(ap, void *), 16);
            break;
        case '%':
            n = put_str(buf, cap, n, "%");
            break;
        default:
            n = put_str(buf, cap, n, "%?");
            if (!*f)
                f--;
            break;
        }
        /* right-align in `width` columns: shift what was written (if it fit) */
        if (n - start < width) {
            size_t pad = width - (n - start);
            for (size_t i = n; i-- > start;)
                if (i + pad + 1 < cap)
                    buf[i + pad] = buf[i];
            for (size_t i = start; i < start + pad; i++)
                if (i + 1 < cap)
                    buf[i] = ' ';
            n += pad;
        }
    }
    if (cap)
        buf[n < cap ? n : cap - 1] = '\0';
    return n;
}

size_t hak_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = hak_vfmt(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

void hak_write_all(int fd, const char *buf, size_t len)
{
    int saved = errno;
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        buf += w;
        len -= (size_t)w;
    }
    errno = saved;
}

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n = hak_fmt(msg, sizeof msg, "%s", prefix);
    if (n < sizeof msg)
        n += hak_vfmt(msg + n, sizeof msg - n, fmt, ap);
    if (n > sizeof msg - 2)
        n = sizeof msg - 2;
    msg[n++] = '\n';
    hak_write_all(2, msg, n);
}

void hak_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("hakmem: warning: ", fmt, ap);
    va_end(ap);
}

void hak_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("hakmem: ", fmt, ap);
    va_end(ap);
    abort();
}
