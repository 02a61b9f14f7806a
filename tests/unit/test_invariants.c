/* tests/unit/test_invariants.c - with HAKMEM_DEBUG=1, the equations the headers state are
 * checked at each slow path of the class: a planted corruption of each one aborts with a
 * "hakmem: invariant broken: ..." message naming it.
 *
 *   box1_tls/tcache.h       count (cap - room) == the length of the thread's list
 *   box2_refill/span.h      no free bit at or above capacity (or below the first word)
 *   box2_refill/span.h      capacity == in_use + popcount(freemap)
 *
 * And the checks every give-back makes as it sets a block's bit (central.c, span_put and its
 * callers, with or without HAKMEM_DEBUG): a block whose bit is already set, or put back into
 * the lists of an arena its span does not belong to, aborts with a "hakmem: double free or
 * corrupted free list:" message naming the block.
 *
 * Each case re-executes this binary (statically linked with hakmem) as
 * `--scenario <name>` with HAKMEM_DEBUG=1, plants the corruption, allocates once more, and
 * must die by SIGABRT with the expected message. A control case runs the same allocations
 * without a plant and must exit 0, so the checks are shown to hold on a sound heap.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "box1_tls/tcache.h"
#include "box2_refill/central.h"
#include "box2_refill/lock.h"
#include "shared_contracts/config.h"
#include "testlib.h"

#define CLASS 34u /* 14336 B: a class nothing else in this process uses */

static void warm(void)
{
    void *keep[8];
    for (int i = 0; i < 8; i++)
        keep[i] = malloc(hak_class_size(CLASS));
    for (int i = 0; i < 8; i += 2) /* frees go back to the span (debug: cap 0) */
        free(keep[i]);
}

/* The first span on a partial list of CLASS, in any arena, or NULL. */
static hak_span_t *partial_span(void)
{
    hak_span_t *s = NULL;
    for (unsigned a = 0; a < hak_arenas && !s; a++)
        s = hak_central[a][CLASS].partial;
    return s;
}

static int scenario(const char *name)
{
    if (!hak_config.debug) {
        fprintf(stderr, "scenario %s: HAKMEM_DEBUG is not on\n", name);
        return 2;
    }
    warm();
    if (strcmp(name, "list") == 0) {
        hak_list(CLASS)->room -= 3; /* the list claims three blocks it does not have */
    } else if (strcmp(name, "bits") == 0) {
        hak_span_t *s = partial_span();
        if (!s) {
            fprintf(stderr, "scenario bits: no partial span\n");
            return 2;
        }
        s->freemap[HAK_SPAN_MAP_WORDS - 1] |= 1ull << 63; /* a block past the span's end */
    } else if (strcmp(name, "span") == 0) {
        hak_span_t *s = partial_span();
        if (!s) {
            fprintf(stderr, "scenario span: no partial span\n");
            return 2;
        }
        s->in_use += 2;
    } else if (strcmp(name, "twice") == 0 || strcmp(name, "arena") == 0) {
        /* a block that went back to its span (debug: free gives it back at once), given back
         * once more, to its own arena or to another */
        void *p = malloc(hak_class_size(CLASS));
        unsigned arena = hak_central_arena_of(p, CLASS);
        free(p);
        fprintf(stderr, "block %p\n", p);
        hak_central_put(name[0] == 't' ? arena : (arena + 1) % HAK_ARENAS_MAX, CLASS, &p, 1,
                        hak_now_ms());
        return 0; /* not reached when the check holds */
    } else if (strcmp(name, "none") != 0) {
        return 2;
    }
    void *p = malloc(hak_class_size(CLASS)); /* the next slow path of the class */
    free(p);
    return 0;
}

/* Re-execute this binary as `--scenario name` with HAKMEM_DEBUG=1; its stderr is printed. */
static void run_scenario(const char *name, tl_result *r)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(len > 0);
    self[len] = '\0';
    const char *argv[] = {self, "--scenario", name, NULL};
    const char *env[] = {"HAKMEM_DEBUG=1", NULL};
    assert_int_equal(tl_run(argv, env, NULL, NULL, 60, r), 0);
    printf("%s", r->err);
}

static void expect_abort(const char *name, const char *message)
{
    tl_result r;
    run_scenario(name, &r);
    int aborted = WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT;
    int named = strstr(r.err, message) != NULL;
    int starts = strncmp(r.err, "hakmem: invariant broken: ", 26) == 0 ||
                 strstr(r.err, "\nhakmem: invariant broken: ") != NULL;
    char st[128];
    tl_status_str(&r, st, sizeof st);
    tl_result_free(&r);
    if (!aborted || !named || !starts)
        fail_msg("scenario %s: %s; expected SIGABRT and a 'hakmem: invariant broken:' line "
                 "with '%s'",
                 name, st, message);
}

static void test_list_count_equation(void **state)
{
    (void)state;
    expect_abort("list", "count (cap - room = 4) != list length (1)");
}

static void test_span_bits_within_capacity(void **state)
{
    (void)state;
    expect_abort("bits", "free bit set in word 63, below its first word (0) or past its "
                         "capacity (18)");
}

static void test_span_capacity_equation(void **state)
{
    (void)state;
    expect_abort("span", "capacity (18) != in_use");
}

/* The scenario prints "block <pointer>" first; the abort must name that pointer. */
static void expect_block_abort(const char *name, const char *message)
{
    tl_result r;
    run_scenario(name, &r);
    char block[64] = "", want[256];
    const char *at = strstr(r.err, "block 0x");
    if (at)
        sscanf(at + 6, "%63s", block);
    snprintf(want, sizeof want, "hakmem: double free or corrupted free list: block %s %s", block,
             message);
    int aborted = WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT;
    int named = block[0] && strstr(r.err, want) != NULL;
    char st[128];
    tl_status_str(&r, st, sizeof st);
    tl_result_free(&r);
    if (!aborted || !named)
        fail_msg("scenario %s: %s; expected SIGABRT and '%s'", name, st, want);
}

static void test_block_given_back_twice(void **state)
{
    (void)state;
    expect_block_abort("twice", "is already free in its span");
}

static void test_block_given_to_another_arena(void **state)
{
    (void)state;
    expect_block_abort("arena", "is not in a span of arena");
}

static void test_sound_heap_passes_the_checks(void **state)
{
    (void)state;
    tl_result r;
    run_scenario("none", &r);
    int ok = tl_exited_ok(&r) && !strstr(r.err, "hakmem:");
    tl_result_free(&r);
    assert_true(ok);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--scenario") == 0)
        return scenario(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sound_heap_passes_the_checks),
        cmocka_unit_test(test_list_count_equation),
        cmocka_unit_test(test_span_bits_within_capacity),
        cmocka_unit_test(test_span_capacity_equation),
        cmocka_unit_test(test_block_given_back_twice),
        cmocka_unit_test(test_block_given_to_another_arena),
    };
    return cmocka_run_group_tests_name("invariants", tests, NULL, NULL);
}
