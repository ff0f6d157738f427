/*
 * model_load.c — GGUF metadata -> model_hparams, tensors -> model weights.
 *
 * Every tensor the architecture needs is looked up by llama.cpp's name
 * (blk.N.attn_q.weight, ...), and its shape and type are checked against
 * the hyper-parameters before anything uses it; a mismatch is an error that
 * names the tensor, the shape found and the shape expected.
 */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "gguf/gguf.h"
#include "kv/kv_pool.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

static int key_i32(const gguf_file *f, const char *arch, const char *suffix, int32_t *out, bool required,
                   int32_t lo, int32_t hi, larder_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int32_t v;
    if (!gguf_get_i32(f, key, &v)) {
        if (gguf_find_key(f, key) >= 0) return error_set(err, ERR_FORMAT, "metadata %s is not an integer", key);
        if (required) return error_set(err, ERR_FORMAT, "metadata %s is missing", key);
        return 0;
    }
    if (v < lo || v > hi) return error_set(err, ERR_FORMAT, "metadata %s = %d is out of range [%d, %d]", key, v, lo, hi);
    *out = v;
    return 0;
}

static int key_f32(const gguf_file *f, const char *arch, const char *suffix, float *out, larder_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    float v;
    if (!gguf_get_f32(f, key, &v)) {
        if (gguf_find_key(f, key) >= 0) return error_set(err, ERR_FORMAT, "metadata %s is not a float", key);
        return 0;
    }
    if (!isfinite(v)) return error_set(err, ERR_FORMAT, "metadata %s is not finite", key);
    *out = v;
    return 0;
}

static int read_hparams(const gguf_file *f, model_hparams *hp, larder_error *err) {
    const char *arch = gguf_get_string(f, "general.architecture", NULL);
    if (!arch) return error_set(err, ERR_FORMAT, "metadata general.architecture is missing");
    memset(hp, 0, sizeof *hp);
    if (!strcmp(arch, "llama")) hp->arch = MODEL_ARCH_LLAMA, hp->arch_name = "llama";
    else if (!strcmp(arch, "qwen2")) hp->arch = MODEL_ARCH_QWEN2, hp->arch_name = "qwen2";
    else if (!strcmp(arch, "qwen3")) hp->arch = MODEL_ARCH_QWEN3, hp->arch_name = "qwen3";
    else return error_set(err, ERR_UNSUPPORTED, "architecture '%.64s' is not supported (llama, qwen2, qwen3)", arch);
    arch = hp->arch_name;

    if (key_i32(f, arch, "embedding_length", &hp->dim, true, 1, MODEL_MAX_DIM, err) ||
        key_i32(f, arch, "block_count", &hp->n_layers, true, 1, MODEL_MAX_LAYERS, err) ||
        key_i32(f, arch, "attention.head_count", &hp->n_heads, true, 1, MODEL_MAX_HEADS, err) ||
        key_i32(f, arch, "feed_forward_length", &hp->n_ff, true, 1, MODEL_MAX_FF, err))
        return -1;
    hp->n_kv_heads = hp->n_heads;
    hp->head_dim = hp->dim / hp->n_heads;
    if (key_i32(f, arch, "attention.head_count_kv", &hp->n_kv_heads, false, 1, MODEL_MAX_HEADS, err) ||
        key_i32(f, arch, "attention.key_length", &hp->head_dim, false, 1, MODEL_MAX_HEAD_DIM, err) ||
        key_i32(f, arch, "context_length", &hp->n_ctx_train, false, 0, INT32_MAX, err))
        return -1;
    if (hp->n_heads % hp->n_kv_heads)
        return error_set(err, ERR_FORMAT, "head_count %d is not a multiple of head_count_kv %d", hp->n_heads,
                         hp->n_kv_heads);
    if (hp->head_dim < 1) return error_set(err, ERR_FORMAT, "head size is 0 (embedding_length < head_count)");
    int32_t v_len = hp->head_dim;
    if (key_i32(f, arch, "attention.value_length", &v_len, false, 1, MODEL_MAX_HEAD_DIM, err)) return -1;
    if (v_len != hp->head_dim)
        return error_set(err, ERR_UNSUPPORTED, "value_length %d differs from key_length %d", v_len, hp->head_dim);
    hp->n_rot = hp->head_dim;
    if (key_i32(f, arch, "rope.dimension_count", &hp->n_rot, false, 2, MODEL_MAX_HEAD_DIM, err)) return -1;
    if (hp->n_rot % 2 || hp->n_rot > hp->head_dim)
        return error_set(err, ERR_FORMAT, "rope.dimension_count %d must be even and <= head size %d", hp->n_rot,
                         hp->head_dim);
    hp->rope_theta = 10000.0f;
    hp->rms_eps = 1e-5f;
    hp->rope_freq_scale = 1.0f;
    if (key_f32(f, arch, "rope.freq_base", &hp->rope_theta, err) ||
        key_f32(f, arch, "attention.layer_norm_rms_epsilon", &hp->rms_eps, err))
        return -1;
    if (hp->rope_theta <= 0 || hp->rms_eps < 0)
        return error_set(err, ERR_FORMAT, "rope.freq_base or layer_norm_rms_epsilon out of range");
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *scaling = gguf_get_string(f, key, NULL);
    float factor = 0;
    if (key_f32(f, arch, "rope.scaling.factor", &factor, err)) return -1;
    if (scaling && !strcmp(scaling, "linear")) {
        if (factor > 0) hp->rope_freq_scale = 1.0f / factor;
    } else if (scaling && strcmp(scaling, "none") != 0) {
        return error_set(err, ERR_UNSUPPORTED, "rope scaling '%.32s' is not supported (none, linear)", scaling);
    }
    hp->rope_neox = hp->arch != MODEL_ARCH_LLAMA;
    hp->has_qkv_bias = hp->arch == MODEL_ARCH_QWEN2;
    hp->has_qk_norm = hp->arch == MODEL_ARCH_QWEN3;
    return 0;
}

/* ---- tensors */

static const gguf_tensor *find(const gguf_file *f, const char *name, bool required, larder_error *err) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t && required) error_set(err, ERR_FORMAT, "tensor %s is missing", name);
    return t;
}

/* A matrix (rows, cols) of a type larder can multiply. */
static int bind_matrix(const gguf_file *f, const char *name, int64_t rows, int64_t cols, model_weight *w,
                       larder_error *err) {
    const gguf_tensor *t = find(f, name, true, err);
    if (!t) return -1;
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows)
        return error_set(err, ERR_FORMAT, "tensor %s has shape [%lld, %lld, %lld], expected [%lld, %lld]", name,
                         (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)cols,
                         (long long)rows);
    if (quant_vec_dot_type(t->type) == QUANT_NO_TYPE || !quant_can_dequantize(t->type)) {
        const tensor_type_traits *tr = tensor_type_get(t->type);
        return error_set(err, ERR_UNSUPPORTED, "tensor %s has type %s, which larder cannot compute with", name,
                         tr ? tr->name : "?");
    }
    w->data = t->data;
    w->type = t->type;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = tensor_row_bytes(t->type, cols);
    return 0;
}

/* A 1-D tensor of n elements, converted to an owned f32 array. */
static int load_vector(const gguf_file *f, const char *name, int64_t n, bool required, model_vector *out,
                       larder_error *err) {
    out->data = NULL;
    out->n = 0;
    const gguf_tensor *t = find(f, name, required, err);
    if (!t) return required ? -1 : 0;
    if (t->n_elems != n || t->ne[0] != n)
        return error_set(err, ERR_FORMAT, "tensor %s has %lld elements, expected %lld", name, (long long)t->n_elems,
                         (long long)n);
    if (!quant_can_dequantize(t->type))
        return error_set(err, ERR_UNSUPPORTED, "tensor %s has an unsupported type %u", name, t->type);
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return error_set(err, ERR_NOMEM, "out of memory loading %s", name);
    dequantize_row(t->type, t->data, v, n);
    out->data = v;
    out->n = n;
    return 0;
}

static int bind_layer(const gguf_file *f, const model_hparams *hp, int il, model_layer *l, larder_error *err) {
    char n[96];
    int64_t q_rows = (int64_t)hp->n_heads * hp->head_dim, kv_rows = (int64_t)hp->n_kv_heads * hp->head_dim;
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, il), n)
    if (load_vector(f, NAME("attn_norm.weight"), hp->dim, true, &l->attn_norm, err) ||
        bind_matrix(f, NAME("attn_q.weight"), q_rows, hp->dim, &l->wq, err) ||
        bind_matrix(f, NAME("attn_k.weight"), kv_rows, hp->dim, &l->wk, err) ||
        bind_matrix(f, NAME("attn_v.weight"), kv_rows, hp->dim, &l->wv, err) ||
        bind_matrix(f, NAME("attn_output.weight"), hp->dim, q_rows, &l->wo, err) ||
        load_vector(f, NAME("ffn_norm.weight"), hp->dim, true, &l->ffn_norm, err) ||
        bind_matrix(f, NAME("ffn_gate.weight"), hp->n_ff, hp->dim, &l->w_gate, err) ||
        bind_matrix(f, NAME("ffn_up.weight"), hp->n_ff, hp->dim, &l->w_up, err) ||
        bind_matrix(f, NAME("ffn_down.weight"), hp->dim, hp->n_ff, &l->w_down, err))
        return -1;
    /* qwen2 requires the biases; llama files may carry them too (some
     * fine-tunes do), in which case they are used. */
    bool need_bias = hp->has_qkv_bias;
    if (load_vector(f, NAME("attn_q.bias"), q_rows, need_bias, &l->bq, err) ||
        load_vector(f, NAME("attn_k.bias"), kv_rows, need_bias, &l->bk, err) ||
        load_vector(f, NAME("attn_v.bias"), kv_rows, need_bias, &l->bv, err))
        return -1;
    if (hp->has_qk_norm && (load_vector(f, NAME("attn_q_norm.weight"), hp->head_dim, true, &l->q_norm, err) ||
                            load_vector(f, NAME("attn_k_norm.weight"), hp->head_dim, true, &l->k_norm, err)))
        return -1;
#undef NAME
    return 0;
}

static size_t weight_bytes(const model_weight *w) { return (size_t)w->rows * w->row_bytes; }

model *model_load_gguf(gguf_file *f, larder_error *err) {
    model *m = calloc(1, sizeof *m);
    if (!m) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    model_hparams *hp = &m->hp;
    if (read_hparams(f, hp, err)) goto fail;

    /* Vocabulary: the embedding's rows; tokenizer.ggml.tokens must agree. */
    const gguf_tensor *emb = find(f, "token_embd.weight", true, err);
    if (!emb) goto fail;
    if (emb->n_dims != 2 || emb->ne[0] != hp->dim || emb->ne[1] < 1 || emb->ne[1] > MODEL_MAX_VOCAB) {
        error_set(err, ERR_FORMAT, "tensor token_embd.weight has shape [%lld, %lld], expected [%d, n_vocab]",
                  (long long)emb->ne[0], (long long)emb->ne[1], hp->dim);
        goto fail;
    }
    hp->n_vocab = (int32_t)emb->ne[1];
    uint64_t n_tok;
    if (gguf_get_array_info(f, "tokenizer.ggml.tokens", NULL, &n_tok) && n_tok != (uint64_t)hp->n_vocab) {
        error_set(err, ERR_FORMAT, "token_embd.weight has %d rows but the vocabulary has %llu tokens", hp->n_vocab,
                  (unsigned long long)n_tok);
        goto fail;
    }
    if (bind_matrix(f, "token_embd.weight", hp->n_vocab, hp->dim, &m->tok_embd, err) ||
        load_vector(f, "output_norm.weight", hp->dim, true, &m->output_norm, err))
        goto fail;
    if (gguf_find_tensor(f, "output.weight")) {
        if (bind_matrix(f, "output.weight", hp->n_vocab, hp->dim, &m->output, err)) goto fail;
    } else {
        m->output = m->tok_embd;
        m->output_tied = true;
    }

    /* Rope: theta_i = pos * freq_scale * theta^(-2i/n_rot) / freq_factor_i. */
    int32_t half = hp->n_rot / 2;
    model_vector factors;
    if (load_vector(f, "rope_freqs.weight", half, false, &factors, err)) goto fail;
    m->rope_inv_freq.data = malloc((size_t)half * sizeof *m->rope_inv_freq.data);
    m->rope_inv_freq.n = half;
    if (!m->rope_inv_freq.data) {
        free(factors.data);
        error_set(err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int32_t i = 0; i < half; i++) {
        double inv = pow((double)hp->rope_theta, -2.0 * i / hp->n_rot) * hp->rope_freq_scale;
        if (factors.data) inv /= factors.data[i];
        m->rope_inv_freq.data[i] = (float)inv;
    }
    free(factors.data);

    m->layers = calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) {
        error_set(err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    m->weight_bytes = weight_bytes(&m->tok_embd) + (m->output_tied ? 0 : weight_bytes(&m->output));
    for (int il = 0; il < hp->n_layers; il++) {
        model_layer *l = &m->layers[il];
        if (bind_layer(f, hp, il, l, err)) goto fail;
        m->weight_bytes += weight_bytes(&l->wq) + weight_bytes(&l->wk) + weight_bytes(&l->wv) +
                           weight_bytes(&l->wo) + weight_bytes(&l->w_gate) + weight_bytes(&l->w_up) +
                           weight_bytes(&l->w_down);
    }
    m->file = f;
    return m;
fail:
    m->file = NULL; /* the caller keeps f on failure */
    model_free(m);
    return NULL;
}

model *model_load(const char *path, larder_error *err) {
    gguf_file *f = gguf_open(path, err);
    if (!f) {
        error_prefix(err, "%s", path);
        return NULL;
    }
    model *m = model_load_gguf(f, err);
    if (!m) {
        gguf_close(f);
        error_prefix(err, "%s", path);
        return NULL;
    }
    return m;
}

void model_free(model *m) {
    if (!m) return;
    if (m->layers) {
        for (int il = 0; il < m->hp.n_layers; il++) {
            model_layer *l = &m->layers[il];
            free(l->attn_norm.data), free(l->ffn_norm.data), free(l->bq.data), free(l->bk.data), free(l->bv.data);
            free(l->q_norm.data), free(l->k_norm.data);
        }
        free(m->layers);
    }
    free(m->output_norm.data);
    free(m->rope_inv_freq.data);
    if (m->file) gguf_close(m->file);
    free(m);
}

/* ---- upload */

static int upload_weight(backend *be, model_weight *w, larder_error *err) {
    return backend_upload_weight(be, w->data, (size_t)w->rows * w->row_bytes, &w->dev, err);
}

static int upload_vector(backend *be, model_vector *v, larder_error *err) {
    if (!v->data) return 0; /* absent */
    const void *dev;
    if (backend_upload_weight(be, v->data, (size_t)v->n * sizeof(float), &dev, err)) return -1;
    v->dev = dev;
    return 0;
}

int model_upload(model *m, backend *be, larder_error *err) {
    if (upload_weight(be, &m->tok_embd, err) || upload_vector(be, &m->output_norm, err) ||
        upload_vector(be, &m->rope_inv_freq, err))
        return -1;
    if (m->output_tied) m->output.dev = m->tok_embd.dev;
    else if (upload_weight(be, &m->output, err)) return -1;
    for (int il = 0; il < m->hp.n_layers; il++) {
        model_layer *l = &m->layers[il];
        model_weight *mats[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        model_vector *vecs[] = {&l->attn_norm, &l->bq, &l->bk, &l->bv, &l->q_norm, &l->k_norm, &l->ffn_norm};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
            if (upload_weight(be, mats[i], err)) return -1;
        for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
            if (upload_vector(be, vecs[i], err)) return -1;
    }
    return 0;
}

size_t model_kv_bytes_per_token(const model *m, uint32_t kv_type) {
    return 2 * (size_t)m->hp.n_layers * (size_t)m->hp.n_kv_heads * kv_pool_row_bytes(kv_type, m->hp.head_dim);
}
