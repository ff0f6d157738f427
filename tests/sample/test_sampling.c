/* test_sampling.c — each sampling stage on a known distribution; the chain's
 * determinism. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "sample/sample.h"

/* logits of p = {0.5, 0.25, 0.125, 0.0625, 0.0625} (in id order 0..4) */
static const float k_logits[5] = {0.0f, -0.69314718f, -1.38629436f, -2.07944154f, -2.07944154f};
static sample_candidate g_store[16];

static sample_array known(void) {
    sample_array a;
    sample_array_init(&a, g_store, k_logits, 5);
    return a;
}

static void test_softmax_matches_known_probabilities(void **st) {
    (void)st;
    sample_array a = known();
    sample_softmax(&a);
    const float want[5] = {0.5f, 0.25f, 0.125f, 0.0625f, 0.0625f};
    for (int i = 0; i < 5; i++) assert_true(fabsf(a.v[i].p - want[i]) < 1e-5f);
    assert_int_equal(a.v[3].id, 3); /* tie: smaller id first */
    assert_int_equal(a.v[4].id, 4);
}

static void test_greedy_takes_argmax(void **st) {
    (void)st;
    float l[4] = {0.1f, 3.0f, 3.0f, -1.0f};
    sample_array a;
    sample_array_init(&a, g_store, l, 4);
    assert_int_equal(sample_greedy(&a), 1);
}

static void test_top_k_keeps_k_best(void **st) {
    (void)st;
    float l[8] = {1, 7, 3, 5, 2, 8, 0, 6};
    sample_array a;
    sample_array_init(&a, g_store, l, 8);
    sample_top_k(&a, 3);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.v[0].id, 5);
    assert_int_equal(a.v[1].id, 1);
    assert_int_equal(a.v[2].id, 7);
}

static void test_top_p_keeps_smallest_prefix_reaching_mass(void **st) {
    (void)st;
    sample_array a = known();
    sample_top_p(&a, 0.75f); /* 0.5 + 0.25 reaches 0.75 */
    assert_int_equal(a.n, 2);
    a = known();
    sample_top_p(&a, 0.76f);
    assert_int_equal(a.n, 3);
    a = known();
    sample_top_p(&a, 1.0f);
    assert_int_equal(a.n, 5);
}

static void test_min_p_keeps_relative_floor(void **st) {
    (void)st;
    sample_array a = known();
    sample_min_p(&a, 0.25f); /* keeps p >= 0.125 */
    assert_int_equal(a.n, 3);
    a = known();
    sample_min_p(&a, 0.9f);
    assert_int_equal(a.n, 1);
}

static void test_temperature_scales_logits(void **st) {
    (void)st;
    sample_array a = known();
    sample_temperature(&a, 0.5f);
    sample_softmax(&a);
    /* p ~ p0^2: {0.25, 0.0625, ...} normalised */
    double z = 0.25 + 0.0625 + 0.015625 + 0.00390625 * 2;
    assert_true(fabs(a.v[0].p - 0.25 / z) < 1e-5);
    assert_true(fabs(a.v[1].p - 0.0625 / z) < 1e-5);
}

static void test_penalties_llama_style(void **st) {
    (void)st;
    float l[4] = {2.0f, -2.0f, 1.0f, 0.5f};
    int32_t hist[5] = {0, 1, 1, 3, 3};
    sample_array a;
    sample_array_init(&a, g_store, l, 4);
    sample_penalties(&a, hist, 5, 2.0f, 0.0f, 0.0f);
    assert_true(fabsf(a.v[0].logit - 1.0f) < 1e-6f);  /* positive: divided */
    assert_true(fabsf(a.v[1].logit + 4.0f) < 1e-6f);  /* negative: multiplied */
    assert_true(fabsf(a.v[2].logit - 1.0f) < 1e-6f);  /* unseen: unchanged */
    sample_array_init(&a, g_store, l, 4);
    sample_penalties(&a, hist, 5, 1.0f, 0.5f, 0.25f);
    assert_true(fabsf(a.v[1].logit - (-2.0f - 2 * 0.5f - 0.25f)) < 1e-6f); /* seen twice */
    assert_true(fabsf(a.v[0].logit - (2.0f - 0.5f - 0.25f)) < 1e-6f);
    assert_true(fabsf(a.v[2].logit - 1.0f) < 1e-6f);
}

static void test_logit_bias_adds(void **st) {
    (void)st;
    sample_array a = known();
    sample_bias b[2] = {{4, 10.0f}, {0, -100.0f}};
    sample_logit_bias(&a, b, 2);
    assert_int_equal(sample_greedy(&a), 4);
}

static void test_rng_same_seed_same_sequence(void **st) {
    (void)st;
    rng a, b, c;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    rng_seed(&c, 43);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = rng_next(&a);
        assert_true(x == rng_next(&b));
        differ |= x != rng_next(&c);
        double u = rng_uniform(&a);
        (void)rng_uniform(&b);
        (void)rng_uniform(&c);
        assert_true(u >= 0.0 && u < 1.0);
    }
    assert_true(differ);
}

static void test_draw_follows_distribution(void **st) {
    (void)st;
    rng r;
    rng_seed(&r, 7);
    int count[5] = {0};
    for (int i = 0; i < 40000; i++) {
        sample_array a = known();
        count[sample_draw(&a, &r)]++;
    }
    const double want[5] = {0.5, 0.25, 0.125, 0.0625, 0.0625};
    for (int i = 0; i < 5; i++) assert_true(fabs(count[i] / 40000.0 - want[i]) < 0.01);
}

static void test_chain_seeded_is_deterministic_and_logprobs(void **st) {
    (void)st;
    float logits[100];
    for (int i = 0; i < 100; i++) logits[i] = sinf((float)i) * 3.0f;
    sampler_params p;
    sampler_params_default(&p);
    p.temperature = 1.0f;
    p.top_k = 0; p.top_p = 1.0f; p.min_p = 0.0f;
    sampler s1, s2;
    assert_int_equal(sampler_init(&s1, &p, 1234, 100, NULL), 0);
    assert_int_equal(sampler_init(&s2, &p, 1234, 100, NULL), 0);
    for (int i = 0; i < 50; i++) {
        float lp1, lp2;
        sample_logprob top[3];
        size_t nt = 0;
        int32_t a = sampler_sample(&s1, logits, NULL, 0, &lp1, top, 3, &nt);
        int32_t b = sampler_sample(&s2, logits, NULL, 0, &lp2, NULL, 0, NULL);
        assert_int_equal(a, b);
        assert_int_equal(nt, 3);
        /* log-softmax of the full distribution: exact value */
        double mx = -1e9, sum = 0;
        for (int k = 0; k < 100; k++) if (logits[k] > mx) mx = logits[k];
        for (int k = 0; k < 100; k++) sum += exp(logits[k] - mx);
        assert_true(fabs(lp1 - (logits[a] - mx - log(sum))) < 1e-4);
        assert_true(top[0].logprob >= top[1].logprob && top[1].logprob >= top[2].logprob);
        assert_true(fabs(top[0].logprob - (-log(sum))) < 1e-4); /* best token has logit == max */
    }
    sampler_free(&s1);
    sampler_free(&s2);
    /* greedy through the chain */
    p.temperature = 0.0f;
    assert_int_equal(sampler_init(&s1, &p, 1, 100, NULL), 0);
    int best = 0;
    for (int k = 1; k < 100; k++) if (logits[k] > logits[best]) best = k;
    assert_int_equal(sampler_sample(&s1, logits, NULL, 0, NULL, NULL, 0, NULL), best);
    sampler_free(&s1);
}

static void test_penalty_window_limits_history(void **st) {
    (void)st;
    float logits[3] = {1.0f, 0.9f, 0.0f};
    int32_t hist[3] = {0, 2, 2};
    sampler_params p;
    sampler_params_default(&p);
    p.temperature = 0.0f;
    p.repeat_penalty = 2.0f;
    p.penalty_last_n = 2; /* token 0 is outside the window */
    sampler s;
    assert_int_equal(sampler_init(&s, &p, 1, 3, NULL), 0);
    assert_int_equal(sampler_sample(&s, logits, hist, 3, NULL, NULL, 0, NULL), 0);
    s.params.penalty_last_n = 3; /* now 0 is penalised: 0.5 < 0.9 */
    assert_int_equal(sampler_sample(&s, logits, hist, 3, NULL, NULL, 0, NULL), 1);
    sampler_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_matches_known_probabilities),
        cmocka_unit_test(test_greedy_takes_argmax),
        cmocka_unit_test(test_top_k_keeps_k_best),
        cmocka_unit_test(test_top_p_keeps_smallest_prefix_reaching_mass),
        cmocka_unit_test(test_min_p_keeps_relative_floor),
        cmocka_unit_test(test_temperature_scales_logits),
        cmocka_unit_test(test_penalties_llama_style),
        cmocka_unit_test(test_logit_bias_adds),
        cmocka_unit_test(test_rng_same_seed_same_sequence),
        cmocka_unit_test(test_draw_follows_distribution),
        cmocka_unit_test(test_chain_seeded_is_deterministic_and_logprobs),
        cmocka_unit_test(test_penalty_window_limits_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
