/* shared_contracts/random.h - the allocator's two small generators, for whoever needs a
 * random number without a lock, a system call or an allocation: splitmix64, to turn a seed
 * (a clock, an address) into a well-mixed word, and one step of xorshift64*, for a stream
 * kept in a thread's own state. Neither is a secret's source: the keys come from getrandom
 * (keys.c). Pure inline functions. */
#ifndef HAK_RANDOM_H
#define HAK_RANDOM_H

#include <stdint.h>

/* splitmix64 of x (Steele, Lea, Flood 2014): its step, then its output mix. */
static inline uint64_t hak_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The next word of the xorshift64* stream whose state is *state (nonzero). */
static inline uint64_t hak_xorshift64s(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

#endif
