/*
 * test_channel.c — the engine→HTTP event channel: FIFO order across ring
 * growth, timeouts, per-choice cancellation, and a producer thread racing a
 * consumer thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "engine/channel.h"

static void test_fifo_order_survives_growth(void **state) {
    (void)state;
    channel *ch = channel_create();
    assert_non_null(ch);
    channel_event ev = {0}, out;
    for (int i = 0; i < 100; i++) {
        ev.token = i;
        assert_int_equal(channel_push(ch, &ev), 0);
        if (i % 3 == 0) {
            assert_int_equal(channel_pop(ch, &out, 10), 1);
        }
    }
    int expected = 34; /* 34 popped during pushes */
    while (channel_pop(ch, &out, 0) == 1) assert_int_equal(out.token, expected++);
    assert_int_equal(expected, 100);
    channel_release(ch);
    channel_release(ch);
}

static void test_pop_times_out(void **state) {
    (void)state;
    channel *ch = channel_create();
    channel_event out;
    assert_int_equal(channel_pop(ch, &out, 20), 0);
    channel_release(ch);
    channel_release(ch);
}

static void test_cancel_per_choice(void **state) {
    (void)state;
    channel *ch = channel_create();
    assert_int_equal(channel_cancelled(ch, 1), FINISH_NONE);
    channel_cancel(ch, 1, FINISH_STOP);
    assert_int_equal(channel_cancelled(ch, 1), FINISH_STOP);
    assert_int_equal(channel_cancelled(ch, 0), FINISH_NONE);
    channel_cancel(ch, -1, FINISH_CANCELLED);
    assert_int_equal(channel_cancelled(ch, 0), FINISH_CANCELLED);
    assert_int_equal(channel_cancelled(ch, 1), FINISH_STOP); /* first reason kept */
    assert_int_equal(channel_cancelled(ch, 99), FINISH_NONE);
    channel_release(ch);
    channel_release(ch);
}

static void *producer(void *arg) {
    channel *ch = arg;
    channel_event ev = {0};
    for (int i = 0; i < 20000; i++) {
        ev.token = i;
        channel_push(ch, &ev);
    }
    ev.kind = CHANNEL_EVENT_DONE;
    channel_push(ch, &ev);
    channel_release(ch);
    return NULL;
}

static void test_threads_see_every_event_in_order(void **state) {
    (void)state;
    channel *ch = channel_create();
    pthread_t t;
    pthread_create(&t, NULL, producer, ch);
    channel_event out;
    int next = 0;
    for (;;) {
        if (!channel_pop(ch, &out, 5000)) fail_msg("timed out");
        if (out.kind == CHANNEL_EVENT_DONE) break;
        assert_int_equal(out.token, next++);
    }
    assert_int_equal(next, 20000);
    pthread_join(t, NULL);
    channel_release(ch);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order_survives_growth),
        cmocka_unit_test(test_pop_times_out),
        cmocka_unit_test(test_cancel_per_choice),
        cmocka_unit_test(test_threads_see_every_event_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
