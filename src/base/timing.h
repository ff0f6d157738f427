/*
 * timing.h — monotonic clock readings for measuring durations.
 *
 * CLOCK_MONOTONIC: never jumps with wall-clock changes; the origin is
 * arbitrary, so only differences mean anything.
 */
#ifndef LARDER_BASE_TIMING_H
#define LARDER_BASE_TIMING_H

#include <stdint.h>

/* Monotonic time in microseconds. */
int64_t timing_now_us(void);

/* Monotonic time in milliseconds (as a double, sub-ms resolution). */
double timing_now_ms(void);

/* Wall-clock time (Unix epoch) in seconds, for timestamps in logs and APIs. */
int64_t timing_unix_s(void);

#endif
