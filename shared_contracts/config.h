/* shared_contracts/config.h - every environment variable hakmem reads, in one table.
 *
 * Integer options, HAK_OPTIONS: X(field, NAME, default, min, max, flags, meaning). Path
 * options, HAK_PATH_OPTIONS: X(field, NAME, meaning), a string of fewer than HAK_PATH_MAX
 * bytes, empty (off) when unset. POOL_REFILL_COUNT_<size> is the one family of names outside
 * the tables (parsed in config.c). Parsing (config.c) and docs/TUNING.md follow the tables.
 * A row flagged HAK_OPT_WORDS also takes the words listed for it in HAK_OPTION_WORDS below,
 * each standing for a value (which may lie outside [min, max]: a word is the only way to set
 * it). An invalid value (not an integer or a word of its row, out of range, not a power of two where one is needed; an
 * empty or too long path) prints one warning on stderr naming the variable, and the default
 * is used.
 *
 * hak_config is written once by hak_config_load() (at library init, before other threads can
 * see it) and only read afterwards, except decay_ms and large_cache_mib, which mallopt may
 * change at run time (relaxed atomic stores; readers use one value per decision). Parsing
 * uses getenv/environ and write(2): no allocation.
 */
#ifndef HAK_CONFIG_H
#define HAK_CONFIG_H

#include <stdint.h>
#include "size_classes.h"

#define HAK_OPT_POW2 1u  /* value must be a power of two */
#define HAK_OPT_WORDS 2u /* the value may also be one of the row's words (HAK_OPTION_WORDS) */

/* POOL_ACE: 0 off, 1 on, HAK_ACE_SHADOW ("shadow"): the learner decides and logs but
 * publishes nothing, so the fixed counts stay in force (docs/ACE.md). */
#define HAK_ACE_SHADOW 2

#define HAK_OPTIONS(X)                                                                          \
    X(refill_count, "POOL_REFILL_COUNT", 0, 0, 1024, 0,                                         \
      "blocks per refill for every class; 0 keeps the per-class Phase 1 counts")                \
    X(ace, "POOL_ACE", 0, 0, 1, HAK_OPT_WORDS,                                                  \
      "1 starts the ACE learner thread (adaptive refill counts); shadow runs it, logs what it "  \
      "would publish and publishes nothing")                                                    \
    X(ace_interval_ms, "POOL_ACE_INTERVAL_MS", 100, 10, 60000, 0,                               \
      "how often the learner collects the rings' events and decides, in milliseconds")    \
    X(ace_min, "POOL_ACE_MIN", 4, 1, 1024, 0, "smallest refill count ACE may publish")         \
    X(ace_max, "POOL_ACE_MAX", 1024, 1, 1024, 0, "largest refill count ACE may publish")        \
    X(ace_budget_mib, "POOL_ACE_BUDGET_MIB", 1, 0, 65536, 0,                                   \
      "process-wide MiB that ACE's raised counts may park in thread lists beyond the fixed "    \
      "counts (an estimate: threads x extra cap x size); 0 lets ACE only lower counts")        \
    X(ace_ring, "POOL_ACE_RING", 1024, 16, 65536, HAK_OPT_POW2,                                 \
      "events per thread ring (power of two); a full ring drops events")                      \
    X(stats, "HAKMEM_STATS", 0, 0, 1, 0, "1 prints a per-class table on stderr at exit")        \
    X(debug, "HAKMEM_DEBUG", 0, 0, 1, 0,                                                        \
      "1 bypasses thread caches and checks every malloc and free: double frees anywhere, "      \
      "writes after free, corrupted free lists (much slower)")                                 \
    X(decay_ms, "HAKMEM_DECAY_MS", 500, 0, 600000, 0,                                           \
      "how long an empty span waits before its pages go back to the OS, and a class's spare "   \
      "span before it goes back to the pool (ticks run on slow paths and in the purger)")       \
    X(purger, "HAKMEM_PURGER", 1, 0, 1, 0,                                                      \
      "1 lets a background thread run the decay tick while no allocation slow path does "       \
      "(started lazily, exits when nothing is left to give back)")                             \
    X(large_cache_mib, "HAKMEM_LARGE_CACHE_MIB", 1024, 0, 65536, 0,                              \
      "most MiB of freed large blocks kept resident for reuse; below it the cache follows the " \
      "recent peak of live large bytes; 0 unmaps them at once")                                 \
    X(large_thread_kib, "HAKMEM_LARGE_THREAD_KIB", 8192, 0, 1048576, 0,                       \
      "per thread, the KiB of its freed large blocks under 2 MiB it keeps for its own next "   \
      "ones, without the large cache's lock (a share of that per CPU when threads outnumber " \
      "the CPUs; 0: none)")                                                                  \
    X(arenas, "HAKMEM_ARENAS", 0, 0, 16, 0,                                                    \
      "sets of central lists (arenas) the threads are spread over, each thread on the one "    \
      "with the fewest threads when it started; 0: two per CPU the process may run on, at "   \
      "most 16")                                                                              \
    X(tcache_max_kib, "HAKMEM_TCACHE_MAX_KIB", 8192, 16, 1048576, 0,                           \
      "per thread and class, the bytes a thread list may hold before it spills (the list cap "  \
      "never goes below one refill count)")                                                  \
    X(tcache_grow_kib, "HAKMEM_TCACHE_GROW_KIB", 8192, 0, 1048576, 0,                          \
      "per thread, the bytes by which its bursts may raise its lists' caps above two refills' " \
      "worth, when their frees come back dense, so such bursts stay in the thread (0: never)") \
    X(prof, "HAKMEM_PROF", 0, 0, 1, 0,                                                         \
      "1 turns the sampled heap profiler on: profiles google-pprof reads, at exit, on "         \
      "hakmem_prof_dump() and every HAKMEM_PROF_INTERVAL bytes (docs/PROFILER.md)")            \
    X(prof_sample, "HAKMEM_PROF_SAMPLE", 2097152, 1, INT64_C(1) << 40, 0,                       \
      "mean bytes allocated between two sampled allocations, per thread (intervals drawn "     \
      "from an exponential distribution)")                                                    \
    X(prof_interval, "HAKMEM_PROF_INTERVAL", 0, 0, INT64_C(1) << 50, 0,                         \
      "with HAKMEM_PROF=1, write a numbered profile each time this many more bytes were "      \
      "allocated (estimated from the samples); 0: only at exit and on hakmem_prof_dump()")      \
    X(guard_sample, "HAKMEM_GUARD_SAMPLE", 0, 0, INT64_C(1) << 30, 0,                            \
      "about one allocation in N of at most 4096 bytes gets a page between guard pages and a " \
      "quarantine after its free; an overflow, underflow or use after free stops the program " \
      "with a report (1: every one; 0: off)")

#define HAK_PATH_MAX 512
#define HAK_PATH_OPTIONS(X)                                                                     \
    X(ace_log, "POOL_ACE_LOG", "CSV of ACE decisions (docs/ACE.md)")                           \
    X(stats_file, "HAKMEM_STATS_FILE",                                                         \
      "write the HAKMEM_STATS table to this file at exit; %p in it is the pid, else "           \
      "\".<pid>\" is appended")                                                                \
    X(prof_file, "HAKMEM_PROF_FILE",                                                           \
      "where HAKMEM_PROF=1 writes its profile (%p in it is the pid); unset: hakmem.%p.heap in " \
      "the working directory")

/* Each integer option's range, from the table: HAK_CFG_MIN_<field> and HAK_CFG_MAX_<field>
 * (mallopt checks the values it accepts for an option against them). */
enum {
#define HAK_CFG_RANGE(field, name, def, lo, hi, flags, meaning)                                   \
    HAK_CFG_MIN_##field = (lo), HAK_CFG_MAX_##field = (hi),
    HAK_OPTIONS(HAK_CFG_RANGE)
#undef HAK_CFG_RANGE
};

/* W(NAME, word, value): the words an HAK_OPT_WORDS row accepts besides its integers. */
#define HAK_OPTION_WORDS(W) W("POOL_ACE", "shadow", HAK_ACE_SHADOW)

typedef struct hak_config {
#define HAK_CFG_FIELD(field, name, def, lo, hi, flags, meaning) int64_t field;
    HAK_OPTIONS(HAK_CFG_FIELD)
#undef HAK_CFG_FIELD
    /* POOL_REFILL_COUNT_<class size in bytes>=N, e.g. POOL_REFILL_COUNT_32768=8 (0 = unset) */
    uint16_t class_refill[HAK_NUM_CLASSES];
#define HAK_CFG_PATH(field, name, meaning) char field[HAK_PATH_MAX];
    HAK_PATH_OPTIONS(HAK_CFG_PATH)
#undef HAK_CFG_PATH
    /* Not an option: the CPUs the process may run on when the options were loaded
     * (sched_getaffinity, which does not allocate), at least 1. */
    int64_t cpus;
} hak_config_t;

extern hak_config_t hak_config;

/* Parse the environment into hak_config. Idempotent; the first call does the work. */
void hak_config_load(void);

/* The Phase 1 (fixed) refill count of a class after POOL_REFILL_COUNT overrides. */
static inline uint32_t hak_fixed_refill_count(unsigned class_idx)
{
    if (hak_config.class_refill[class_idx])
        return hak_config.class_refill[class_idx];
    if (hak_config.refill_count)
        return (uint32_t)hak_config.refill_count;
    return hak_default_refill[class_idx];
}

#endif
