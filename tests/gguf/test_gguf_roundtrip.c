/*
 * test_gguf_roundtrip.c — the writer's files read back exactly: every value
 * type, arrays, string arrays with NUL bytes, tensors from data and from fill
 * callbacks, alignment, copy_kv; and real vocabulary files open.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "tensor/dtype.h"

static char tmp_path[256];

static int fill_rows(void *ctx, int64_t row_begin, int64_t n_rows, void *dst, larder_error *err) {
    (void)err;
    int64_t ne0 = *(int64_t *)ctx;
    float *out = dst;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t c = 0; c < ne0; c++) out[r * ne0 + c] = (float)((row_begin + r) * 1000 + c);
    return 0;
}

static int fill_fail(void *ctx, int64_t row_begin, int64_t n_rows, void *dst, larder_error *err) {
    (void)ctx; (void)row_begin; (void)n_rows; (void)dst;
    return error_set(err, ERR_IO, "boom");
}

static gguf_file *write_and_open(gguf_writer *w) {
    larder_error err = {0};
    snprintf(tmp_path, sizeof tmp_path, "/tmp/larder-gguf-test-%d.gguf", (int)getpid());
    assert_int_equal(gguf_writer_write(w, tmp_path, &err), 0);
    gguf_file *f = gguf_open(tmp_path, &err);
    if (!f) fail_msg("open: %s", err.message);
    return f;
}

static void test_all_value_types_round_trip(void **state) {
    (void)state;
    larder_error err = {0};
    gguf_writer *w = gguf_writer_create(&err);
    assert_non_null(w);
    assert_int_equal(gguf_writer_set_u8(w, "a.u8", 200, &err), 0);
    assert_int_equal(gguf_writer_set_i8(w, "a.i8", -5, &err), 0);
    assert_int_equal(gguf_writer_set_u16(w, "a.u16", 60000, &err), 0);
    assert_int_equal(gguf_writer_set_i16(w, "a.i16", -30000, &err), 0);
    assert_int_equal(gguf_writer_set_u32(w, "a.u32", 4000000000u, &err), 0);
    assert_int_equal(gguf_writer_set_i32(w, "a.i32", -7, &err), 0);
    assert_int_equal(gguf_writer_set_u64(w, "a.u64", UINT64_MAX, &err), 0);
    assert_int_equal(gguf_writer_set_i64(w, "a.i64", -1234567890123LL, &err), 0);
    assert_int_equal(gguf_writer_set_f32(w, "a.f32", 1.5f, &err), 0);
    assert_int_equal(gguf_writer_set_f64(w, "a.f64", 2.25, &err), 0);
    assert_int_equal(gguf_writer_set_bool(w, "a.bool", true, &err), 0);
    assert_int_equal(gguf_writer_set_string_n(w, "a.str", "x\0y", 3, &err), 0);
    assert_int_equal(gguf_writer_set_string(w, "a.replaced", "old", &err), 0);
    assert_int_equal(gguf_writer_set_string(w, "a.replaced", "new", &err), 0);
    float fa[3] = {1, -2, 3.5f};
    assert_int_equal(gguf_writer_set_array(w, "a.farr", GGUF_TYPE_FLOAT32, fa, 3, &err), 0);
    int32_t ia[2] = {-1, 7};
    assert_int_equal(gguf_writer_set_array(w, "a.iarr", GGUF_TYPE_INT32, ia, 2, &err), 0);
    const char *strs[] = {"hello", "", "a\0b"};
    size_t lens[] = {5, 0, 3};
    assert_int_equal(gguf_writer_set_string_array(w, "a.sarr", strs, lens, 3, &err), 0);
    assert_int_equal(gguf_writer_set_array(w, "a.empty", GGUF_TYPE_UINT8, NULL, 0, &err), 0);

    gguf_file *f = write_and_open(w);
    gguf_writer_free(w);
    assert_int_equal(gguf_version(f), 3);
    assert_int_equal(gguf_kv_count(f), 17);
    assert_string_equal(gguf_kv_key(f, 0), "a.u8");
    assert_int_equal(gguf_kv_type(f, 0), GGUF_TYPE_UINT8);
    uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; float f32; double f64; bool b;
    assert_true(gguf_get_u32(f, "a.u8", &u32)); assert_int_equal(u32, 200);
    assert_true(gguf_get_i32(f, "a.i8", &i32)); assert_int_equal(i32, -5);
    assert_false(gguf_get_u32(f, "a.i8", &u32)); /* negative does not fit */
    assert_true(gguf_get_u32(f, "a.u16", &u32)); assert_int_equal(u32, 60000);
    assert_true(gguf_get_i64(f, "a.i16", &i64)); assert_int_equal(i64, -30000);
    assert_true(gguf_get_u32(f, "a.u32", &u32)); assert_int_equal(u32, 4000000000u);
    assert_false(gguf_get_i32(f, "a.u32", &i32));
    assert_true(gguf_get_u64(f, "a.u64", &u64)); assert_true(u64 == UINT64_MAX);
    assert_false(gguf_get_i64(f, "a.u64", &i64));
    assert_true(gguf_get_i64(f, "a.i64", &i64)); assert_true(i64 == -1234567890123LL);
    assert_true(gguf_get_f32(f, "a.f32", &f32)); assert_true(f32 == 1.5f);
    assert_true(gguf_get_f32(f, "a.f64", &f32)); assert_true(f32 == 2.25f);
    assert_true(gguf_get_f64(f, "a.f64", &f64)); assert_true(f64 == 2.25);
    assert_false(gguf_get_f32(f, "a.u8", &f32));
    assert_true(gguf_get_bool(f, "a.bool", &b)); assert_true(b);
    assert_false(gguf_get_bool(f, "a.u8", &b));
    size_t len;
    const char *s = gguf_get_string(f, "a.str", &len);
    assert_non_null(s); assert_int_equal(len, 3); assert_memory_equal(s, "x\0y", 4);
    assert_string_equal(gguf_get_string(f, "a.replaced", NULL), "new");
    assert_null(gguf_get_string(f, "a.u8", NULL));
    assert_null(gguf_get_string(f, "missing", NULL));
    assert_int_equal(gguf_find_key(f, "missing"), -1);
    uint32_t et; uint64_t count;
    assert_true(gguf_get_array_info(f, "a.farr", &et, &count));
    assert_int_equal(et, GGUF_TYPE_FLOAT32); assert_int_equal(count, 3);
    assert_true(gguf_array_get_f32(f, "a.farr", 2, &f32)); assert_true(f32 == 3.5f);
    assert_false(gguf_array_get_f32(f, "a.farr", 3, &f32));
    float fr[3];
    assert_true(gguf_array_read_f32(f, "a.farr", fr, 3)); assert_true(fr[1] == -2);
    assert_false(gguf_array_read_f32(f, "a.farr", fr, 2));
    int32_t ir[2];
    assert_true(gguf_array_read_i32(f, "a.iarr", ir, 2)); assert_int_equal(ir[0], -1); assert_int_equal(ir[1], 7);
    assert_true(gguf_array_get_f32(f, "a.iarr", 1, &f32)); assert_true(f32 == 7.0f);
    assert_false(gguf_array_get_i32(f, "a.farr", 0, &i32)); /* floats are not i32 */
    assert_true(gguf_get_array_info(f, "a.sarr", &et, &count));
    assert_int_equal(et, GGUF_TYPE_STRING); assert_int_equal(count, 3);
    assert_string_equal(gguf_get_array_string(f, "a.sarr", 0, &len), "hello"); assert_int_equal(len, 5);
    assert_string_equal(gguf_get_array_string(f, "a.sarr", 1, &len), ""); assert_int_equal(len, 0);
    s = gguf_get_array_string(f, "a.sarr", 2, &len);
    assert_int_equal(len, 3); assert_memory_equal(s, "a\0b", 4);
    assert_null(gguf_get_array_string(f, "a.sarr", 3, &len));
    assert_null(gguf_get_array_data(f, "a.sarr"));
    assert_non_null(gguf_get_array_data(f, "a.empty"));
    assert_true(gguf_get_array_info(f, "a.empty", &et, &count)); assert_int_equal(count, 0);

    /* copy_kv of every kind reproduces the values. */
    gguf_writer *w2 = gguf_writer_create(&err);
    for (int64_t i = 0; i < gguf_kv_count(f); i++)
        assert_int_equal(gguf_writer_copy_kv(w2, f, gguf_kv_key(f, i), &err), 0);
    assert_int_not_equal(gguf_writer_copy_kv(w2, f, "missing", &err), 0);
    gguf_close(f);
    f = write_and_open(w2);
    gguf_writer_free(w2);
    assert_int_equal(gguf_kv_count(f), 17);
    assert_true(gguf_get_u64(f, "a.u64", &u64)); assert_true(u64 == UINT64_MAX);
    s = gguf_get_array_string(f, "a.sarr", 2, &len);
    assert_int_equal(len, 3); assert_memory_equal(s, "a\0b", 4);
    assert_true(gguf_array_read_i32(f, "a.iarr", ir, 2)); assert_int_equal(ir[1], 7);
    gguf_close(f);
    unlink(tmp_path);
}

static void test_tensors_round_trip_with_alignment(void **state) {
    (void)state;
    larder_error err = {0};
    gguf_writer *w = gguf_writer_create(&err);
    assert_int_equal(gguf_writer_set_u32(w, "general.alignment", 64, &err), 0);
    float small[3] = {1, 2, 3};
    int64_t ne1[1] = {3};
    assert_int_equal(gguf_writer_add_tensor(w, "small", TYPE_F32, 1, ne1, small, &err), 0);
    int64_t ne2[2] = {5, 700000}; /* 14 MB: several fill chunks? no: one; rows still checked */
    int64_t ne0 = 5;
    assert_int_equal(gguf_writer_add_tensor_fill(w, "big", TYPE_F32, 2, ne2, fill_rows, &ne0, &err), 0);
    int64_t neq[2] = {64, 3};
    uint8_t q8[3 * 2 * 34];
    memset(q8, 0, sizeof q8);
    assert_int_equal(gguf_writer_add_tensor(w, "q", TYPE_Q8_0, 2, neq, q8, &err), 0);
    /* writer validation */
    int64_t bad[1] = {33};
    assert_int_not_equal(gguf_writer_add_tensor(w, "bad", TYPE_Q8_0, 1, bad, q8, &err), 0);
    assert_non_null(strstr(err.message, "multiple"));
    assert_int_not_equal(gguf_writer_add_tensor(w, "small", TYPE_F32, 1, ne1, small, &err), 0);
    assert_non_null(strstr(err.message, "duplicate"));
    assert_int_not_equal(gguf_writer_add_tensor(w, "0123456789012345678901234567890123456789012345678901234567890123",
                                                TYPE_F32, 1, ne1, small, &err), 0);
    gguf_file *f = write_and_open(w);
    gguf_writer_free(w);
    assert_int_equal(gguf_alignment(f), 64);
    assert_int_equal(gguf_data_offset(f) % 64, 0);
    assert_int_equal(gguf_tensor_count(f), 3);
    const gguf_tensor *t = gguf_find_tensor(f, "big");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 5); assert_int_equal(t->ne[1], 700000); assert_int_equal(t->ne[2], 1);
    assert_int_equal(t->size_bytes, 5 * 700000 * 4);
    assert_int_equal(t->offset_bytes % 64, 0);
    float v;
    memcpy(&v, (const char *)t->data + (699999 * 5 + 4) * 4, 4);
    assert_true(v == 699999.0f * 1000 + 4);
    t = gguf_find_tensor(f, "small");
    assert_memory_equal(t->data, small, sizeof small);
    assert_ptr_equal(gguf_tensor_at(f, 0), t);
    assert_null(gguf_tensor_at(f, 3));
    assert_null(gguf_find_tensor(f, "nope"));
    t = gguf_find_tensor(f, "q");
    assert_int_equal(t->type, TYPE_Q8_0); assert_int_equal(t->size_bytes, sizeof q8);
    gguf_close(f);
    unlink(tmp_path);
}

static void test_failed_fill_leaves_no_file(void **state) {
    (void)state;
    larder_error err = {0};
    gguf_writer *w = gguf_writer_create(&err);
    int64_t ne[1] = {4};
    assert_int_equal(gguf_writer_add_tensor_fill(w, "t", TYPE_F32, 1, ne, fill_fail, NULL, &err), 0);
    char path[256];
    snprintf(path, sizeof path, "/tmp/larder-gguf-fail-%d.gguf", (int)getpid());
    unlink(path);
    assert_int_not_equal(gguf_writer_write(w, path, &err), 0);
    assert_non_null(strstr(err.message, "boom"));
    assert_int_not_equal(access(path, F_OK), 0);
    gguf_writer_free(w);
}

static void test_real_vocab_file_opens(void **state) {
    (void)state;
    const char *shared = getenv("SHARED");
    char path[512];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", shared ? shared : "/work/shared");
    larder_error err = {0};
    gguf_file *f = gguf_open(path, &err);
    if (!f) fail_msg("%s: %s", path, err.message);
    uint64_t n;
    uint32_t et;
    assert_true(gguf_get_array_info(f, "tokenizer.ggml.tokens", &et, &n));
    assert_int_equal(et, GGUF_TYPE_STRING);
    assert_int_equal(n, 32000);
    assert_string_equal(gguf_get_array_string(f, "tokenizer.ggml.tokens", 1, NULL), "<s>");
    assert_string_equal(gguf_get_string(f, "tokenizer.ggml.model", NULL), "llama");
    float score;
    assert_true(gguf_array_get_f32(f, "tokenizer.ggml.scores", 31999, &score));
    gguf_close(f);
}

static void test_missing_file_is_an_io_error(void **state) {
    (void)state;
    larder_error err = {0};
    assert_null(gguf_open("/nonexistent/x.gguf", &err));
    assert_int_equal(err.code, ERR_IO);
    assert_null(gguf_open("/tmp", &err));
    assert_non_null(strstr(err.message, "regular"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_value_types_round_trip),
        cmocka_unit_test(test_tensors_round_trip_with_alignment),
        cmocka_unit_test(test_failed_fill_leaves_no_file),
        cmocka_unit_test(test_real_vocab_file_opens),
        cmocka_unit_test(test_missing_file_is_an_io_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
