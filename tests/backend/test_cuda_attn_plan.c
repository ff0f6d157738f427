/*
 * test_cuda_attn_plan.c — the CUDA attention launches' host-side index math
 * (src/backend/cuda/cuda_attn_plan.h, plain C: checked here without a GPU):
 *   tiles of the flash kernel fill at most 64 rows and as many as fit;
 *   the warp layout covers a tile's rows with the fewest 16-row warps;
 *   split-KV ranges are multiples of the chunk, cover every key, none empty,
 *     and only few-block launches split;
 *   partial offsets of distinct (tile, head, split, row) never overlap and
 *     stay inside the buffer;
 *   the key mask is the batch descriptor's definition, a chunk skipped as
 *     "in the gap" holds no key any later row sees, and a chunk taken as
 *     "all visible" (no mask) is seen whole by every row.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_attn_plan.h"

static void test_tile_tokens(void **state) {
    (void)state;
    for (int32_t g = 1; g <= 64; g++) {
        int32_t t = cuda_fa_tile_tokens(g);
        assert_true(t >= 1);
        assert_true(t * g <= CUDA_FA_ROWS);
        assert_true((t + 1) * g > CUDA_FA_ROWS);
        assert_int_equal(cuda_fa_row_warps(t * g) * 16 >= t * g, 1);
    }
    assert_int_equal(cuda_fa_tile_tokens(65), 0);
    assert_int_equal(cuda_fa_tile_tokens(0), 0);
    assert_int_equal(cuda_fa_tile_tokens(4), 16);
    assert_int_equal(cuda_fa_tile_tokens(8), 8);
}

static void test_row_warps(void **state) {
    (void)state;
    for (int32_t r = 1; r <= 64; r++) {
        int32_t w = cuda_fa_row_warps(r);
        assert_true(w == 1 || w == 2 || w == 4);
        assert_true(w * 16 >= r);             /* covers the rows */
        assert_true(w == 1 || (w / 2) * 16 < r); /* and no fewer warps would */
        assert_int_equal(CUDA_FA_KC % (CUDA_FA_WARPS / w * 16), 0); /* keys per warp: whole k16 steps */
    }
    assert_int_equal(cuda_fa_row_warps(0), 0);
    assert_int_equal(cuda_fa_row_warps(65), 0);
}

static void test_split(void **state) {
    (void)state;
    const int32_t kcs[2] = {32, 64}, sms[2] = {132, 108};
    for (int ki = 0; ki < 2; ki++)
        for (int si = 0; si < 2; si++)
            for (int64_t blocks = 1; blocks <= 300; blocks += 7)
                for (int32_t keys = 1; keys <= 9000; keys += 37) {
                    int32_t ns = 0, sk = 0;
                    cuda_attn_plan_split(blocks, sms[si], keys, kcs[ki], &ns, &sk);
                    assert_true(ns >= 1);
                    assert_int_equal(sk % kcs[ki], 0);
                    assert_true((int64_t)(ns - 1) * sk < keys); /* no empty split */
                    assert_true((int64_t)ns * sk >= keys);      /* every key in one */
                    if (blocks >= sms[si]) assert_int_equal(ns, 1);
                    else assert_true(blocks * ns <= 2 * (int64_t)sms[si] + blocks); /* about 2 waves, no more */
                }
    /* the decode shapes of the bench: 1 sequence x 8 heads splits, 64 x 8 does not */
    int32_t ns, sk;
    cuda_attn_plan_split(8, 132, 3001, 64, &ns, &sk); /* 33 wanted; 91 keys rounded up to 2 chunks */
    assert_int_equal(sk, 128);
    assert_int_equal(ns, 24);
    cuda_attn_plan_split(512, 132, 641, 64, &ns, &sk);
    assert_int_equal(ns, 1);
    assert_int_equal(sk, 704);
}

static void test_part_offsets(void **state) {
    (void)state;
    const int32_t n_tiles = 5, n_kv = 3, n_split = 4, R = 7, D = 64;
    const int64_t total = cuda_attn_part_floats(n_tiles, n_kv, n_split, R, D);
    unsigned char *used = calloc((size_t)total, 1);
    assert_non_null(used);
    for (int32_t t = 0; t < n_tiles; t++)
        for (int32_t h = 0; h < n_kv; h++)
            for (int32_t s = 0; s < n_split; s++)
                for (int32_t r = 0; r < R; r++) {
                    int64_t o = cuda_attn_part_offset(t, n_kv, h, n_split, s, R, r, D);
                    assert_true(o >= 0 && o + 2 + D <= total);
                    for (int32_t i = 0; i < 2 + D; i++) {
                        assert_int_equal(used[o + i], 0);
                        used[o + i] = 1;
                    }
                }
    for (int64_t i = 0; i < total; i++) assert_int_equal(used[i], 1);
    free(used);
    /* the merge kernel's base: ((tile · n_kv + kvh) · n_split) · R rows, split s at + s · R */
    assert_int_equal(cuda_attn_part_offset(2, 3, 1, 4, 3, 7, 5, 64), ((((2 * 3 + 1) * 4) * 7) + 3 * 7 + 5) * 66);
}

static void test_mask(void **state) {
    (void)state;
    const int32_t keeps[3] = {0, 4, 0}, wins[3] = {0, 12, 100};
    for (int c = 0; c < 3; c++)
        for (int32_t pr = 0; pr < 300; pr += 3)
            for (int32_t j = 0; j < 320; j++) {
                /* backend.h: a token at pos sees j < keep and pos - window < j <= pos (window 0: all j <= pos) */
                bool want = j <= pr && (wins[c] == 0 || j < keeps[c] || j > pr - wins[c]);
                assert_int_equal(cuda_attn_key_visible(j, pr, keeps[c], wins[c]), want);
            }
    /* a chunk in the gap: no row at a position >= p_first sees any of its keys */
    for (int c = 1; c < 3; c++)
        for (int32_t p_first = 0; p_first < 400; p_first += 5)
            for (int32_t j0 = 0; j0 < 400; j0 += 16) {
                if (!cuda_attn_chunk_in_gap(j0, 64, keeps[c], wins[c], p_first)) continue;
                for (int32_t pr = p_first; pr < p_first + 70; pr++)
                    for (int32_t j = j0; j < j0 + 64; j++) assert_false(cuda_attn_key_visible(j, pr, keeps[c], wins[c]));
            }
    /* a chunk "all visible" is seen whole by every row of [p_first, last] */
    for (int c = 0; c < 3; c++)
        for (int32_t p_first = 0; p_first < 300; p_first += 7)
            for (int32_t last = p_first; last < p_first + 70; last += 13)
                for (int32_t j0 = 0; j0 < 320; j0 += 16) {
                    bool all = true;
                    for (int32_t pr = p_first; pr <= last; pr++)
                        for (int32_t j = j0; j < j0 + 64; j++) all = all && cuda_attn_key_visible(j, pr, keeps[c], wins[c]);
                    bool fast = cuda_attn_chunk_all_visible(j0, 64, keeps[c], wins[c], p_first, last);
                    if (fast) assert_true(all);                /* sound */
                    if (wins[c] == 0) assert_int_equal(fast, all); /* and exact without a window */
                }
    assert_true(cuda_attn_chunk_all_visible(0, 64, 0, 0, 63, 100));
    assert_false(cuda_attn_chunk_all_visible(0, 64, 0, 0, 62, 100));
    assert_true(cuda_attn_chunk_all_visible(192, 64, 4, 100, 255, 290)); /* 192 > 290 - 100 */
    assert_false(cuda_attn_chunk_all_visible(128, 64, 4, 100, 255, 290));
    /* and a chunk a row sees is never skipped */
    assert_false(cuda_attn_chunk_in_gap(0, 64, 4, 12, 200));  /* holds the kept prefix */
    assert_false(cuda_attn_chunk_in_gap(128, 64, 4, 12, 200)); /* holds key 190 > 200 - 12 */
    assert_true(cuda_attn_chunk_in_gap(64, 64, 4, 12, 200));  /* keys 64..127 < 189 */
    assert_false(cuda_attn_chunk_in_gap(64, 64, 0, 0, 200));  /* no window: no gap */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tile_tokens), cmocka_unit_test(test_row_warps), cmocka_unit_test(test_split),
        cmocka_unit_test(test_part_offsets), cmocka_unit_test(test_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
