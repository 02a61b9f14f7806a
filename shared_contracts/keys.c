/* shared_contracts/keys.c - the process's two secrets: the free key (backend.h), the mark in
 * word 1 of every cached block, and the link key (chain.h), which encodes every free-list
 * link stored in a block. Both are drawn from getrandom, independently, by hak_keys_make at
 * the start of library init (box2_refill/init.c), before the first block exists. Neither
 * comes from AT_RANDOM (whose bytes 8-15 are glibc's pointer guard), and a block shows the
 * free key in word 1 but never the link key: reading a free block gives no way to forge a
 * link.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "chain.h"
#include "random.h"

/* Placeholders until init (no block is cached before it): nonzero, and the link key has the
 * bits hak_keys_make forces (bit 0 and bit 63). */
uint64_t hak_free_key = 0x9e3779b97f4a7c15ull;
uint64_t hak_link_key = 0xc2b2ae3d27d4eb4full;

/* 16 random bytes: getrandom without blocking; if the kernel has no entropy yet (EAGAIN) or no
 * getrandom (ENOSYS), a mix of clocks, the pid and addresses (weaker, but never AT_RANDOM's). */
static void random_words(uint64_t w[2])
{
    size_t got = 0;
    while (got < 16) {
        ssize_t n = getrandom((char *)w + got, 16 - got, GRND_NONBLOCK);
        if (n > 0)
            got += (size_t)n;
        else if (n < 0 && errno != EINTR)
            break;
    }
    if (got == 16)
        return;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_REALTIME, &b);
    uint64_t x = (uint64_t)a.tv_nsec ^ (uint64_t)a.tv_sec << 32 ^ (uint64_t)b.tv_nsec << 17 ^
                 (uint64_t)getpid() << 40 ^ (uint64_t)(uintptr_t)&x ^
                 (uint64_t)(uintptr_t)random_words;
    w[0] ^= hak_splitmix64(x);
    w[1] ^= hak_splitmix64(x + 0x9e3779b97f4a7c15ull);
}

void hak_keys_make(void)
{
    int saved = errno;
    uint64_t w[2] = {0, 0};
    random_words(w);
    hak_free_key = w[0] | 1; /* odd: never a block address, never zero */
    /* Bit 63 and bit 0 set: a raw pointer written over a link (an attacker who does not know
     * the key) always decodes to a value that fails hak_link_bad. */
    hak_link_key = w[1] | 1ull << 63 | 1;
    errno = saved;
}
