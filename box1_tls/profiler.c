/* box1_tls/profiler.c - the sampled heap profiler (profiler.h): buckets by stack, counts,
 * and profiles in gperftools' legacy heap-profile text format.
 *
 * A bucket is one distinct stack: its frames and four counts, the sampled allocations and
 * their bytes, and the sampled frees and their bytes (in use = allocated - freed), each kept
 * in COUNT_SETS sets, summed in a profile: a thread owns one of the first COUNT_OWNED sets
 * while it lives (claimed at its first count, given back at its exit) and adds to it with
 * plain loads and stores, no locked instruction; threads beyond those, and counts made while
 * the thread is already inside the profiler (a free in a signal handler), go to the last set
 * with atomic adds. The counts
 * are raw: one per sampled allocation, its size asked for. The profile's header names the
 * sampling (heap_v2/<mean>), and google-pprof unsamples each stack itself: with c samples of
 * b bytes, it scales both by 1 / (1 - exp(-(b / c) / mean)), as for tcmalloc's profiles.
 *
 * Buckets live in a hash table of BUCKET_TABLE chains, in memory the profiler maps itself
 * (never malloc), and are never freed. Synchronisation: prof_lock serialises making a bucket
 * (a chain's head and the list of all buckets are published with release stores, so a
 * lookup walks a chain with acquire loads and no lock) and writing a profile. The counts
 * are relaxed atomics, written by any thread with no lock (a free counts with no lock, even
 * in a signal handler); a profile reads each once, so a profile written while others
 * allocate is a snapshot good to a few samples.
 *
 * The file:
 *   heap profile: <in-use objs>: <in-use bytes> [<alloc objs>: <alloc bytes>] @ heap_v2/<mean>
 *   <in-use objs>: <in-use bytes> [<alloc objs>: <alloc bytes>] @ 0x<pc> 0x<pc> ...
 *   ...
 *   (blank line)
 *   MAPPED_LIBRARIES:
 *   <a copy of /proc/self/maps>
 * The first pc of a stack is the return address into the code that called the allocator,
 * minus one (google-pprof subtracts one from every other pc itself), so it falls inside the
 * call instruction's line.
 */
#include "profiler.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "include/hakmem.h"
#include "guard.h"
#include "sampler.h"
#include "stack.h"
#include "shared_contracts/ace_hooks.h"
#include "shared_contracts/backend.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"

#define BUCKET_TABLE (1u << 14)       /* hash chains */
#define BUCKET_ARENA ((size_t)1 << 20) /* bytes mapped at a time for buckets */
#define DEFAULT_FILE "hakmem.%p.heap"

#define COUNT_OWNED 8u                /* count sets a thread can own */
#define COUNT_SHARED COUNT_OWNED      /* the set every other count goes to, by atomic add */
#define COUNT_SETS (COUNT_OWNED + 1u)

/* A bucket's counts, each set on a line of its own, so threads sampling the same stack do
 * not bounce one line; summed when a profile is written. */
typedef struct counts {
    uint64_t alloc_objs, alloc_bytes, free_objs, free_bytes;
} __attribute__((aligned(64))) counts_t;

typedef struct bucket {
    struct bucket *next; /* in its hash chain */
    struct bucket *all;  /* in the list of every bucket */
    uint64_t hash;
    uint32_t depth;
    counts_t count[COUNT_SETS];
    uintptr_t frames[]; /* depth return addresses, innermost first */
} bucket_t;

static pthread_mutex_t prof_lock = PTHREAD_MUTEX_INITIALIZER;
static bucket_t **table;         /* BUCKET_TABLE chains; made under prof_lock, then read freely */
static bucket_t *all_buckets;    /* newest first; release store under prof_lock */
static char *arena, *arena_end;  /* bucket memory; under prof_lock */
static uint64_t sampled_bytes;   /* bytes allocated, estimated: mean x samples; atomic */
static uint64_t next_dump;       /* HAKMEM_PROF_INTERVAL's next threshold; CAS */
static uint32_t dump_seq;        /* interval profiles written; under prof_lock */
static int open_warned;          /* one warning for a file that cannot be opened; atomic */

/* Inside the profiler: hak_prof_alloc, a free being counted, a profile being written. */
static __thread int prof_inside __attribute__((tls_model("initial-exec")));
/* The count set the calling thread owns + 1; 0: none claimed yet; COUNT_SHARED + 1: none was
 * free (or the thread is past its exit): it counts in the shared set. */
static __thread unsigned prof_set __attribute__((tls_model("initial-exec")));
static unsigned sets_owned; /* bit i: set i has an owner; claimed by CAS (acquire), given back
                             * by an atomic and (release), so a new owner sees the last counts */

/* A thread that owns a set gives it back at its exit, through a key destructor of the
 * profiler's own (Box 1's exit destructor is tcache.c's, which the profiler's code depends
 * on, so it cannot call up here). */
static pthread_key_t set_key;
static pthread_once_t set_key_once = PTHREAD_ONCE_INIT;

static void set_give_back(void *arg)
{
    (void)arg;
    unsigned set = prof_set;
    prof_set = COUNT_SHARED + 1; /* what this thread counts from now on goes to the shared set */
    if (set && set <= COUNT_OWNED)
        __atomic_fetch_and(&sets_owned, ~(1u << (set - 1)), __ATOMIC_RELEASE);
}

static void make_set_key(void)
{
    if (pthread_key_create(&set_key, set_give_back))
        set_key = (pthread_key_t)-1;
}

/* The set the calling thread counts in: its own (claimed at its first count if one is free,
 * and only if its exit can give it back), else the shared one. Called inside the profiler. */
static unsigned my_set(void)
{
    if (HAK_UNLIKELY(!prof_set)) {
        prof_set = COUNT_SHARED + 1;
        pthread_once(&set_key_once, make_set_key);
        unsigned owned = __atomic_load_n(&sets_owned, __ATOMIC_RELAXED);
        while (set_key != (pthread_key_t)-1 && owned != (1u << COUNT_OWNED) - 1) {
            unsigned i = (unsigned)__builtin_ctz(~owned);
            if (!__atomic_compare_exchange_n(&sets_owned, &owned, owned | 1u << i, 0,
                                             __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                continue;
            if (pthread_setspecific(set_key, (void *)1)) { /* no destructor: give it back */
                __atomic_fetch_and(&sets_owned, ~(1u << i), __ATOMIC_RELEASE);
                break;
            }
            prof_set = i + 1;
            break;
        }
    }
    return prof_set - 1;
}

/* Count one sampled allocation (freed == 0) or free of `bytes` in b. The caller is inside the
 * profiler since before it checked that it was not (so a signal handler that interrupts this
 * counts in the shared set), or says shared. */
static void count(bucket_t *b, int freed, uint64_t bytes, int shared)
{
    unsigned set = shared ? COUNT_SHARED : my_set();
    counts_t *c = &b->count[set];
    uint64_t *objs = freed ? &c->free_objs : &c->alloc_objs;
    uint64_t *sum = freed ? &c->free_bytes : &c->alloc_bytes;
    if (set == COUNT_SHARED) {
        __atomic_fetch_add(objs, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(sum, bytes, __ATOMIC_RELAXED);
        return;
    }
    /* The set's one writer: plain load and store (relaxed: a profile reads them meanwhile). */
    __atomic_store_n(objs, __atomic_load_n(objs, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    __atomic_store_n(sum, __atomic_load_n(sum, __ATOMIC_RELAXED) + bytes, __ATOMIC_RELAXED);
}

/* A bucket's four counts, summed over its sets. */
static void sum_counts(const bucket_t *b, uint64_t out[4])
{
    out[0] = out[1] = out[2] = out[3] = 0;
    for (unsigned i = 0; i < COUNT_SETS; i++) {
        out[0] += __atomic_load_n(&b->count[i].alloc_objs, __ATOMIC_RELAXED);
        out[1] += __atomic_load_n(&b->count[i].alloc_bytes, __ATOMIC_RELAXED);
        out[2] += __atomic_load_n(&b->count[i].free_objs, __ATOMIC_RELAXED);
        out[3] += __atomic_load_n(&b->count[i].free_bytes, __ATOMIC_RELAXED);
    }
}

int hak_prof_busy(void) { return prof_inside; }

static void enter(void)
{
    prof_inside = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* set before anything a handler could see */
}

static void leave(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    prof_inside = 0;
}

/* ---- buckets ----------------------------------------------------------------------------- */

static uint64_t hash_frames(const uintptr_t *frames, int n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++)
        h = (h ^ frames[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static bucket_t *find(bucket_t *b, uint64_t h, const uintptr_t *frames, int n)
{
    for (; b; b = __atomic_load_n(&b->next, __ATOMIC_ACQUIRE))
        if (b->hash == h && b->depth == (uint32_t)n && !memcmp(b->frames, frames, n * sizeof *frames))
            return b;
    return NULL;
}

static void *map_zeroed(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Under prof_lock: memory for a bucket of n frames, or NULL. */
static bucket_t *new_bucket(int n)
{
    size_t len = (sizeof(bucket_t) + (size_t)n * sizeof(uintptr_t) + 63) & ~(size_t)63;
    if (!arena || (size_t)(arena_end - arena) < len) {
        char *fresh = map_zeroed(BUCKET_ARENA);
        if (!fresh)
            return NULL;
        arena = fresh;
        arena_end = fresh + BUCKET_ARENA;
    }
    bucket_t *b = (bucket_t *)arena;
    arena += len;
    return b;
}

/* The bucket of this stack, made if it is new; NULL when no memory could be mapped. */
static bucket_t *bucket_for(const uintptr_t *frames, int n)
{
    uint64_t h = hash_frames(frames, n);
    bucket_t **table_now = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    if (table_now) {
        bucket_t *b = find(__atomic_load_n(&table_now[h % BUCKET_TABLE], __ATOMIC_ACQUIRE), h,
                           frames, n);
        if (b)
            return b;
    }
    pthread_mutex_lock(&prof_lock);
    bucket_t *b = NULL;
    if (!table) {
        bucket_t **t = map_zeroed(BUCKET_TABLE * sizeof(bucket_t *));
        if (t)
            __atomic_store_n(&table, t, __ATOMIC_RELEASE);
    }
    if (table) {
        bucket_t **chain = &table[h % BUCKET_TABLE];
        b = find(*chain, h, frames, n);
        if (!b && (b = new_bucket(n))) {
            b->hash = h;
            b->depth = (uint32_t)n;
            memcpy(b->frames, frames, n * sizeof *frames);
            b->next = *chain;
            b->all = all_buckets;
            __atomic_store_n(chain, b, __ATOMIC_RELEASE);
            __atomic_store_n(&all_buckets, b, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&prof_lock);
    return b;
}

/* ---- writing a profile ------------------------------------------------------------------- */

typedef struct out {
    int fd;
    int failed;
    size_t n;
    char buf[4096];
} out_t;

static void out_flush(out_t *o)
{
    size_t done = 0;
    while (done < o->n) {
        ssize_t w = write(o->fd, o->buf + done, o->n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->failed = 1;
            break;
        }
        done += (size_t)w;
    }
    o->n = 0;
}

static void out_put(out_t *o, const char *s, size_t len)
{
    while (len) {
        if (o->n == sizeof o->buf)
            out_flush(o);
        size_t take = sizeof o->buf - o->n < len ? sizeof o->buf - o->n : len;
        memcpy(o->buf + o->n, s, take);
        o->n += take;
        s += take;
        len -= take;
    }
}

__attribute__((format(printf, 2, 3))) static void out_fmt(out_t *o, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    size_t len = hak_vfmt(line, sizeof line, fmt, ap);
    va_end(ap);
    out_put(o, line, len < sizeof line ? len : sizeof line - 1);
}

static void out_counts(out_t *o, uint64_t in_objs, uint64_t in_bytes, uint64_t objs,
                       uint64_t bytes)
{
    out_fmt(o, "%6lu: %8lu [%6lu: %8lu] @", (unsigned long)in_objs, (unsigned long)in_bytes,
            (unsigned long)objs, (unsigned long)bytes);
}

static void out_maps(out_t *o)
{
    out_fmt(o, "\nMAPPED_LIBRARIES:\n");
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char chunk[4096];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof chunk)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        out_put(o, chunk, (size_t)r);
    }
    close(fd);
}

/* Under prof_lock: the profile of every bucket into fd. 0, or -1 when a write failed. */
static int write_profile(int fd)
{
    out_t o = {.fd = fd};
    uint64_t tot[4] = {0, 0, 0, 0};
    bucket_t *first = __atomic_load_n(&all_buckets, __ATOMIC_ACQUIRE);
    for (bucket_t *b = first; b; b = b->all) {
        uint64_t c[4];
        sum_counts(b, c);
        for (int i = 0; i < 4; i++)
            tot[i] += c[i];
    }
    out_fmt(&o, "heap profile: ");
    out_counts(&o, tot[0] - tot[2], tot[1] - tot[3], tot[0], tot[1]);
    out_fmt(&o, " heap_v2/%lu\n", (unsigned long)hak_sample_mean());
    for (bucket_t *b = first; b; b = b->all) {
        uint64_t c[4];
        sum_counts(b, c);
        uint64_t objs = c[0], bytes = c[1], fobjs = c[2], fbytes = c[3];
        if (!objs)
            continue;
        if (fobjs > objs || fbytes > bytes) /* a free counted before its allocation's add */
            fobjs = objs, fbytes = bytes;
        out_counts(&o, objs - fobjs, bytes - fbytes, objs, bytes);
        for (uint32_t i = 0; i < b->depth; i++)
            out_fmt(&o, " 0x%lx", (unsigned long)(b->frames[i] - (i == 0)));
        out_put(&o, "\n", 1);
    }
    out_maps(&o);
    out_flush(&o);
    return o.failed ? -1 : 0;
}

/* ".0001" for seq 1: at least four digits (hak_fmt pads with spaces, not zeros). */
static size_t seq_suffix(char *out, size_t cap, unsigned seq)
{
    char digits[16];
    size_t len = hak_fmt(digits, sizeof digits, "%u", seq);
    size_t n = 0;
    if (n + 1 < cap)
        out[n++] = '.';
    for (size_t pad = len; pad < 4 && n + 1 < cap; pad++)
        out[n++] = '0';
    for (size_t i = 0; i < len && n + 1 < cap; i++)
        out[n++] = digits[i];
    out[n < cap ? n : cap - 1] = '\0';
    return n;
}

/* The file name: %p in the template is the pid; seq > 0 (an interval profile) goes before a
 * final ".heap", or at the end. */
static void file_name(char *name, size_t cap, const char *tmpl, unsigned seq)
{
    size_t n = 0, len = strlen(tmpl);
    int heap_ext = len >= 5 && !strcmp(tmpl + len - 5, ".heap");
    for (size_t i = 0; tmpl[i] && n + 1 < cap; i++) {
        if (seq && heap_ext && i == len - 5)
            n += seq_suffix(name + n, cap - n, seq);
        if (tmpl[i] == '%' && tmpl[i + 1] == 'p') {
            n += hak_fmt(name + n, cap - n, "%d", (int)getpid());
            i++;
            continue;
        }
        if (n + 1 < cap)
            name[n++] = tmpl[i];
    }
    if (seq && !heap_ext && n < cap)
        n += seq_suffix(name + n, cap - n, seq);
    name[n < cap ? n : cap - 1] = '\0';
}

/* Under prof_lock, inside the profiler. 0, or -1 with errno. */
static int dump_locked(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        if (!__atomic_exchange_n(&open_warned, 1, __ATOMIC_RELAXED))
            hak_warn("HAKMEM_PROF: cannot open '%s' for the heap profile (errno %d); no profile "
                     "written",
                     path, err);
        errno = err;
        return -1;
    }
    int rc = write_profile(fd);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

static int dump(const char *path, unsigned seq)
{
    char name[HAK_PATH_MAX + 32];
    if (!path) {
        file_name(name, sizeof name,
                  hak_config.prof_file[0] ? hak_config.prof_file : DEFAULT_FILE, seq);
        path = name;
    }
    int was_inside = prof_inside;
    enter();
    pthread_mutex_lock(&prof_lock);
    int rc = dump_locked(path);
    pthread_mutex_unlock(&prof_lock);
    if (!was_inside)
        leave();
    return rc;
}

static int prof_on(void) { return hak_sampler_wanted() && hak_config.prof; }

HAKMEM_API int hakmem_prof_dump(const char *path)
{
    if (!prof_on()) {
        errno = EINVAL;
        return -1;
    }
    int saved = errno;
    int rc = dump(path, 0);
    if (!rc)
        errno = saved;
    return rc;
}

/* HAKMEM_PROF_INTERVAL: after a sample, a profile when the estimate of the bytes allocated
 * crossed the next multiple; one thread writes it. */
static void interval_dump(uint64_t mean)
{
    uint64_t every = (uint64_t)hak_config.prof_interval;
    if (!every)
        return; /* (no shared counter to bounce between cores) */
    uint64_t total = __atomic_add_fetch(&sampled_bytes, mean, __ATOMIC_RELAXED);
    uint64_t due = __atomic_load_n(&next_dump, __ATOMIC_RELAXED); /* 0: the first, every */
    if (total < (due ? due : every) ||
        !__atomic_compare_exchange_n(&next_dump, &due, (total / every + 1) * every, 0,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&prof_lock);
    unsigned seq = ++dump_seq;
    pthread_mutex_unlock(&prof_lock);
    dump(NULL, seq);
}

__attribute__((destructor)) static void prof_at_exit(void)
{
    if (prof_on() && !prof_inside)
        dump(NULL, 0);
}

/* ---- allocation and free --------------------------------------------------------------- */

void *hak_prof_alloc(size_t size, size_t align, int zero)
{
    if (prof_inside)
        return NULL; /* a nested allocation: the unwinder's, or a signal handler's */
    enter();
    int saved = errno;
    void *p = NULL;
    if (!hak_config.prof) { /* guarded sampling alone (guard.h) */
        if (align <= HAK_MIN_ALIGN && hak_guard_take(size))
            p = hak_guard_alloc(size, zero, 0, NULL, 0);
        errno = saved;
        leave();
        return p;
    }
    uintptr_t frames[HAK_STACK_MAX];
    hak_stack_seen_t seen;
    int n = hak_stack_capture(frames, HAK_STACK_MAX, &seen);
    bucket_t *b = (bucket_t *)seen.note; /* the stack cache knew these frames' bucket */
    if (!b && (b = bucket_for(frames, n)))
        hak_stack_set_note(&seen, (uintptr_t)b);
    if (b && hak_guard_on() && align <= HAK_MIN_ALIGN && size <= HAK_GUARD_MAX_SIZE)
        p = hak_guard_alloc(size, zero, (uintptr_t)b, frames, n);
    if (b && !p)
        p = hak_sampled_alloc(size, align, zero, (uintptr_t)b);
    if (p) {
        count(b, 0, size, 0);
        interval_dump(hak_sample_mean());
    }
    errno = saved;
    leave();
    return p;
}

void hak_prof_free(void *ptr)
{
    uintptr_t note;
    size_t size;
    if (hak_config.guard_sample) {
        int was_inside = prof_inside;
        enter(); /* the free stack's capture allocates nothing sampled */
        hak_guard_free(ptr);
        if (!was_inside)
            leave();
    }
    if (!hak_config.prof || !hak_sampled_note(ptr, &note, &size) || !note)
        return;
    if (prof_inside) { /* a free inside the profiler, or in a handler that interrupted it */
        count((bucket_t *)note, 1, size, 1);
        return;
    }
    enter();
    count((bucket_t *)note, 1, size, 0);
    leave();
}

/* ---- fork ------------------------------------------------------------------------------ */

static int fork_locked; /* set by the prepare handler that took prof_lock */

void hak_prof_fork_prepare(void)
{
    if (!hak_config.prof || prof_inside)
        return;
    pthread_mutex_lock(&prof_lock);
    fork_locked = 1;
}

void hak_prof_fork_parent(void)
{
    if (fork_locked) {
        fork_locked = 0;
        pthread_mutex_unlock(&prof_lock);
    }
}

void hak_prof_fork_child(void)
{
    /* Only the forking thread lives on: only its count set stays owned. */
    sets_owned = prof_set && prof_set <= COUNT_OWNED ? 1u << (prof_set - 1) : 0;
    fork_locked = 0;
    pthread_mutex_init(&prof_lock, NULL);
}
