/* tests/unit/test_stack.c - the stack cache's notes (box1_tls/stack.c, hak_stack_set_note):
 * a capture from a known call chain finds the note hung on it, with the same frames, and a
 * capture from another call chain that lands on the same cache entry (the same stack pointer,
 * other return addresses) never sees that note.
 *
 * Linked with libhakmem.a.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "box1_tls/stack.h"

typedef struct capture {
    hak_stack_seen_t seen;
    int n;
    uintptr_t frames[HAK_STACK_MAX];
} capture_t;

/* Two call sites with identical frames: called from the same place, each calls
 * hak_stack_capture with the same stack pointer, from a different return address. */
__attribute__((noinline)) static void capture_a(capture_t *c)
{
    c->n = hak_stack_capture(c->frames, HAK_STACK_MAX, &c->seen);
    __asm__ volatile("" ::: "memory"); /* no tail call */
}

__attribute__((noinline)) static void capture_b(capture_t *c)
{
    c->n = hak_stack_capture(c->frames, HAK_STACK_MAX, &c->seen);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void capture_at(int which, capture_t *c)
{
    memset(c, 0, sizeof *c);
    if (which == 'a')
        capture_a(c);
    else
        capture_b(c);
    __asm__ volatile("" ::: "memory");
}

typedef struct step {
    int which;       /* 'a' or 'b' */
    int note_on;     /* after the capture, hang `note` on the entry capture note_on saw */
    uintptr_t note;  /* 0: none */
} step_t;

/* Every capture from one call site here, so that a's captures share their whole chain. */
static void run(const step_t *steps, int n, capture_t *out)
{
    for (int i = 0; i < n; i++) {
        capture_at(steps[i].which, &out[i]);
        if (steps[i].note)
            hak_stack_set_note(&out[steps[i].note_on].seen, steps[i].note);
    }
}

static void test_note_follows_its_frames(void **s)
{
    (void)s;
    static const step_t steps[] = {
        {'a', 0, 0xa0}, /* 0: a walk, kept in the cache; a's note hung on it */
        {'a', 0, 0},    /* 1: served by the cache, with the note */
        {'b', 2, 0xb0}, /* 2: the same entry, other frames: not a's note; b's hung */
        {'a', 0, 0xa1}, /* 3: b's walk replaced a's: a misses, never sees b's note; then a
                         *    stale hang (capture 0's entry changed since): nothing happens */
        {'a', 0, 0},    /* 4: a's walk, kept by 3, with no note */
    };
    capture_t c[5];
    run(steps, 5, c);
    assert_true(c[0].n > 0);
    assert_non_null(c[0].seen.entry);
    assert_int_equal(c[0].seen.note, 0);

    assert_int_equal(c[1].seen.note, 0xa0);
    assert_int_equal(c[1].n, c[0].n);
    assert_memory_equal(c[1].frames, c[0].frames, (size_t)c[0].n * sizeof c[0].frames[0]);

    assert_ptr_equal(c[2].seen.entry, c[0].seen.entry);
    assert_true(c[2].frames[0] != c[0].frames[0]);
    assert_int_equal(c[2].seen.note, 0);

    assert_int_equal(c[3].seen.note, 0);
    assert_memory_equal(c[3].frames, c[0].frames, (size_t)c[0].n * sizeof c[0].frames[0]);

    assert_int_equal(c[4].seen.note, 0);
    assert_memory_equal(c[4].frames, c[0].frames, (size_t)c[0].n * sizeof c[0].frames[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_note_follows_its_frames),
    };
    return cmocka_run_group_tests_name("stack cache notes", tests, NULL, NULL);
}
