/* tests/unit/test_ace_fork.c - fork while the ACE learner runs and publishes.
 *
 * A thread publishes tables back to back (so forks land near or inside a publish), another
 * feeds a ring, the learner runs at 10 ms; the main thread forks many times. Each child
 * mallocs, reads the policy (an RCU read-side section after urcu-bp's child handler), finds no
 * learner (frozen table), and exits through exit(3) and the library destructors. The parent
 * waits for each child with a deadline: a hang fails the test instead of blocking it.
 * The ACE fork handlers are also registered here, on top of Box 2's: nesting must be safe.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "box3_ace/ace.h"
#include "shared_contracts/config.h"
#include "shared_contracts/event_ring.h"
#include "shared_contracts/policy_table.h"
#include "testlib.h"

static int stop_threads;

static void *publisher(void *arg)
{
    (void)arg;
    uint16_t counts[HAK_NUM_CLASSES];
    for (uint16_t k = 0; !__atomic_load_n(&stop_threads, __ATOMIC_ACQUIRE); k++) {
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            counts[c] = (uint16_t)(8 + (k + c) % 64);
        hak_policy_publish(counts);
    }
    return NULL;
}

static void *producer(void *arg)
{
    (void)arg;
    hak_ring_t *r = hak_ring_acquire();
    while (!__atomic_load_n(&stop_threads, __ATOMIC_ACQUIRE)) {
        hak_event_t e = {.class_idx = 9, .count = 64, .kind = HAK_EV_REFILL};
        for (int i = 0; i < 50 && r; i++)
            hak_ring_push(r, &e);
        void *p = malloc(200); /* and the allocator itself, through Box 2 */
        free(p);
        usleep(500);
    }
    hak_ring_orphan(r);
    return NULL;
}

/* 0 = exited 0; -1 = deadline passed (killed); else the wait status. */
static int wait_with_deadline(pid_t pid, int seconds)
{
    int status;
    for (int i = 0; i < seconds * 1000; i++) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : status ? status : 1;
        usleep(1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static void fork_with_learner_running(void **state)
{
    (void)state;
    hak_config_load();
    hak_config.ace = 1;
    hak_config.ace_interval_ms = 10;
    pthread_atfork(hak_ace_fork_prepare, hak_ace_fork_parent, hak_ace_fork_child);
    hak_ace_start();
    assert_true(hak_ace_running());
    pthread_t pub, prod;
    pthread_create(&pub, NULL, publisher, NULL);
    pthread_create(&prod, NULL, producer, NULL);

    int forks = 40 * tl_scale(), hung = 0, failed = 0;
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            void *p = malloc(100);
            uint32_t n = hak_policy_refill_count(3, 64);
            if (!p || n < 1 || n > HAK_REFILL_MAX || hak_ace_running())
                _exit(3);
            free(p);
            hak_policy_publish((uint16_t[HAK_NUM_CLASSES]){[3] = 9}); /* one thread: fine */
            if (hak_policy_refill_count(3, 64) != 9)
                _exit(4);
            exit(0); /* destructors: hak_ace_stop is a no-op in the child */
        }
        int rc = wait_with_deadline(pid, 10);
        hung += rc == -1;
        failed += rc != 0 && rc != -1;
        usleep(2000);
    }
    __atomic_store_n(&stop_threads, 1, __ATOMIC_RELEASE);
    pthread_join(pub, NULL);
    pthread_join(prod, NULL);
    assert_int_equal(hung, 0);
    assert_int_equal(failed, 0);
    assert_true(hak_ace_running()); /* the parent's learner survived every fork */
    assert_true(hak_ace_publishes() > 10);
    hak_ace_stop();
    assert_false(hak_ace_running());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fork_with_learner_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
