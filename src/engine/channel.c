/*
 * channel.c — a reference-counted, mutex-protected event queue between the
 * engine thread and one HTTP thread (see channel.h). Events live in a ring
 * buffer that doubles when full; cancellation is a per-choice flag the
 * engine polls once per step.
 */
#include "engine/channel.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/platform.h"

struct channel {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    channel_event *ring;      /* capacity cap; head is the oldest event */
    int32_t head, count, cap;
    atomic_int refs;
    channel_finish cancel[CHANNEL_MAX_CHOICES]; /* under lock */
};

channel *channel_create(void) {
    channel *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->cap = 16;
    ch->ring = malloc((size_t)ch->cap * sizeof *ch->ring);
    if (!ch->ring) {
        free(ch);
        return NULL;
    }
    pthread_mutex_init(&ch->lock, NULL);
    platform_cond_init(&ch->ready);
    atomic_init(&ch->refs, 2);
    return ch;
}

void channel_release(channel *ch) {
    if (!ch) return;
    if (atomic_fetch_sub(&ch->refs, 1) != 1) return;
    pthread_mutex_destroy(&ch->lock);
    pthread_cond_destroy(&ch->ready);
    free(ch->ring);
    free(ch);
}

int32_t channel_backlog(channel *ch) {
    pthread_mutex_lock(&ch->lock);
    int32_t n = ch->count;
    pthread_mutex_unlock(&ch->lock);
    return n;
}

int channel_push(channel *ch, const channel_event *ev) {
    pthread_mutex_lock(&ch->lock);
    if (ch->count == ch->cap) {
        int32_t cap = ch->cap * 2;
        channel_event *ring = cap > 0 ? malloc((size_t)cap * sizeof *ring) : NULL;
        if (!ring) {
            pthread_mutex_unlock(&ch->lock);
            return -1;
        }
        for (int32_t i = 0; i < ch->count; i++) ring[i] = ch->ring[(ch->head + i) % ch->cap];
        free(ch->ring);
        ch->ring = ring;
        ch->cap = cap;
        ch->head = 0;
    }
    ch->ring[(ch->head + ch->count) % ch->cap] = *ev;
    ch->count++;
    pthread_cond_signal(&ch->ready);
    pthread_mutex_unlock(&ch->lock);
    return 0;
}

int channel_pop(channel *ch, channel_event *ev, int timeout_ms) {
    struct timespec deadline;
    platform_cond_deadline(&deadline, timeout_ms);
    pthread_mutex_lock(&ch->lock);
    while (ch->count == 0) {
        int rc = pthread_cond_timedwait(&ch->ready, &ch->lock, &deadline);
        if (rc == ETIMEDOUT && ch->count == 0) {
            pthread_mutex_unlock(&ch->lock);
            return 0;
        }
    }
    *ev = ch->ring[ch->head];
    ch->head = (ch->head + 1) % ch->cap;
    ch->count--;
    pthread_mutex_unlock(&ch->lock);
    return 1;
}

void channel_cancel(channel *ch, int32_t choice, channel_finish reason) {
    pthread_mutex_lock(&ch->lock);
    for (int32_t i = 0; i < CHANNEL_MAX_CHOICES; i++)
        if ((choice < 0 || choice == i) && ch->cancel[i] == FINISH_NONE) ch->cancel[i] = reason;
    pthread_mutex_unlock(&ch->lock);
}

channel_finish channel_cancelled(channel *ch, int32_t choice) {
    if (choice < 0 || choice >= CHANNEL_MAX_CHOICES) return FINISH_NONE;
    pthread_mutex_lock(&ch->lock);
    channel_finish f = ch->cancel[choice];
    pthread_mutex_unlock(&ch->lock);
    return f;
}
