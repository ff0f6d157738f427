/*
 * model_load.c — GGUF metadata -> model_hparams, tensors -> model weights.
 *
 * The architecture's row comes from model/arch.c by general.architecture;
 * the tensors are bound by walking arch.c's one tensor list: each is looked
 * up by llama.cpp's name (blk.N.attn_q.weight, ...), and its shape and type
 * are checked against the hyper-parameters before anything uses it; a
 * mismatch is an error that names the tensor, the shape found and the shape
 * expected.
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

/* The mixture-of-experts keys: expert_count and expert_used_count
 * (required: never assumed, REAP-pruned files have fewer experts), one
 * expert's feed-forward length (arch->ff_exp), the gating function (from the
 * file where the row says so: llama.cpp's 1 softmax, 2 sigmoid). The
 * chosen weights are always renormalised to sum 1 and never scaled: both
 * architectures are defined so (llama.cpp reads no expert_weights_scale or
 * expert_weights_norm for them). */
static int read_moe_hparams(const gguf_file *f, model_hparams *hp, larder_error *err) {
    const char *arch = hp->arch->name;
    if (key_i32(f, arch, "expert_count", &hp->n_expert, true, 1, MODEL_MAX_EXPERTS, err) ||
        key_i32(f, arch, "expert_used_count", &hp->n_expert_used, true, 1, MODEL_MAX_EXPERTS_USED, err))
        return -1;
    if (hp->n_expert_used > hp->n_expert)
        return error_set(err, ERR_FORMAT, "expert_used_count %d exceeds expert_count %d", hp->n_expert_used,
                         hp->n_expert);
    if (hp->arch->ff_exp == ARCH_FF_EXP_FF) {
        hp->n_ff_exp = hp->n_ff;
    } else {
        hp->n_ff_exp = hp->n_ff / hp->n_expert_used;
        if (key_i32(f, arch, "expert_feed_forward_length", &hp->n_ff_exp, false, 1, MODEL_MAX_FF, err)) return -1;
        if (hp->n_ff_exp < 1) return error_set(err, ERR_FORMAT, "expert feed-forward length is 0");
    }
    hp->gating = hp->arch->gating;
    if (hp->arch->gating_from_file) {
        int32_t g = 0;
        if (key_i32(f, arch, "expert_gating_func", &g, true, 0, INT32_MAX, err)) return -1;
        if (g != ARCH_GATING_SOFTMAX && g != ARCH_GATING_SIGMOID)
            return error_set(err, ERR_UNSUPPORTED, "%s.expert_gating_func %d is not supported (1 softmax, 2 sigmoid)",
                             arch, g);
        hp->gating = (arch_gating)g;
    }
    return 0;
}

static int read_hparams(const gguf_file *f, model_hparams *hp, larder_error *err) {
    const char *arch = gguf_get_string(f, "general.architecture", NULL);
    if (!arch) return error_set(err, ERR_FORMAT, "metadata general.architecture is missing");
    memset(hp, 0, sizeof *hp);
    hp->arch = arch_find(arch);
    if (!hp->arch) {
        char names[128];
        return error_set(err, ERR_UNSUPPORTED, "architecture '%.64s' is not supported (%s)", arch,
                         arch_names(names, sizeof names));
    }
    arch = hp->arch->name;

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
    return hp->arch->ffn == ARCH_FFN_MOE ? read_moe_hparams(f, hp, err) : 0;
}

/* ---- tensors */

/* "[a, b, c]": the first n_dims extents of ne. */
static const char *shape_text(char *buf, size_t size, uint32_t n_dims, const int64_t *ne) {
    size_t used = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < n_dims && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%lld", i ? ", " : "[", (long long)ne[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* A matrix (2-D, or 3-D expert tensor) of the expected shape and of a type
 * larder can multiply. */
static int bind_matrix(const gguf_tensor *t, const arch_tensor_use *u, model_weight *w, larder_error *err) {
    bool same = t->n_dims == u->n_dims;
    for (uint32_t i = 0; same && i < u->n_dims; i++) same = t->ne[i] == u->ne[i];
    if (!same) {
        char found[96], expected[96];
        return error_set(err, ERR_FORMAT, "tensor %s has shape %s, expected %s", u->name,
                         shape_text(found, sizeof found, t->n_dims, t->ne),
                         shape_text(expected, sizeof expected, u->n_dims, u->ne));
    }
    if (quant_vec_dot_type(t->type) == QUANT_NO_TYPE || !quant_can_dequantize(t->type)) {
        const tensor_type_traits *tr = tensor_type_get(t->type);
        return error_set(err, ERR_UNSUPPORTED, "tensor %s has type %s, which larder cannot compute with", u->name,
                         tr ? tr->name : "?");
    }
    w->data = t->data;
    w->type = t->type;
    w->cols = t->ne[0];
    w->rows = t->ne[1] * t->ne[2];
    w->row_bytes = tensor_row_bytes(t->type, w->cols);
    return 0;
}

/* A 1-D tensor of ne[0] elements, converted to an owned f32 array. */
static int load_vector(const gguf_tensor *t, const arch_tensor_use *u, model_vector *out, larder_error *err) {
    int64_t n = u->ne[0];
    if (t->n_elems != n || t->ne[0] != n)
        return error_set(err, ERR_FORMAT, "tensor %s has %lld elements, expected %lld", u->name,
                         (long long)t->n_elems, (long long)n);
    if (!quant_can_dequantize(t->type))
        return error_set(err, ERR_UNSUPPORTED, "tensor %s has an unsupported type %u", u->name, t->type);
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return error_set(err, ERR_NOMEM, "out of memory loading %s", u->name);
    dequantize_row(t->type, t->data, v, n);
    out->data = v;
    out->n = n;
    return 0;
}

/* Where tensor u binds: its field in the model or in its layer. */
static void *field_of(model *m, const arch_tensor_use *u) {
    char *owner = u->layer < 0 ? (char *)m : (char *)&m->layers[u->layer];
    return owner + u->spec->field;
}

typedef struct bind_ctx {
    const gguf_file *f;
    model *m;
} bind_ctx;

/* arch_tensor_fn: one tensor of the list into its field of the model or layer. */
static int bind_tensor(void *ctx, const arch_tensor_use *u, larder_error *err) {
    bind_ctx *b = ctx;
    const gguf_tensor *t = gguf_find_tensor(b->f, u->name);
    if (!t) return u->need == ARCH_NEED_REQUIRED ? error_set(err, ERR_FORMAT, "tensor %s is missing", u->name) : 0;
    if (!arch_tensor_is_matrix(u->spec->kind)) return load_vector(t, u, field_of(b->m, u), err);
    model_weight *w = field_of(b->m, u);
    if (bind_matrix(t, u, w, err)) return -1;
    b->m->weight_bytes += (size_t)w->rows * w->row_bytes;
    return 0;
}

model *model_load_gguf(gguf_file *f, larder_error *err) {
    model *m = calloc(1, sizeof *m);
    if (!m) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    model_hparams *hp = &m->hp;
    if (read_hparams(f, hp, err)) goto fail;

    /* Vocabulary: the embedding's rows; tokenizer.ggml.tokens must agree. */
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb) {
        error_set(err, ERR_FORMAT, "tensor token_embd.weight is missing");
        goto fail;
    }
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

    /* Every tensor of the architecture's list, bound and checked. */
    m->layers = calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) {
        error_set(err, ERR_NOMEM, "out of memory");
        goto fail;
    }
    bind_ctx b = {f, m};
    if (arch_tensors_each(hp, bind_tensor, &b, err)) goto fail;
    if (!m->output.data) {
        m->output = m->tok_embd;
        m->output_tied = true;
    }

    /* Rope: pair i turns by freq_scale * theta_i / rope_freqs_i, theta_i =
     * pos * theta_scale^i stepped in f32 (backend_rope_freqs). */
    m->rope_theta_scale = powf(hp->rope_theta, -2.0f / (float)hp->n_rot);
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

/* arch_tensor_fn: frees a vector of the list (matrices live in the mapping). */
static int free_tensor(void *ctx, const arch_tensor_use *u, larder_error *err) {
    model *m = ctx;
    if (!arch_tensor_is_matrix(u->spec->kind) && (u->layer < 0 || m->layers)) free(((model_vector *)field_of(m, u))->data);
    return 0;
}

void model_free(model *m) {
    if (!m) return;
    if (m->hp.arch) arch_tensors_each(&m->hp, free_tensor, m, NULL);
    free(m->layers);
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

typedef struct upload_ctx {
    model *m;
    backend *be;
} upload_ctx;

/* arch_tensor_fn: one bound tensor of the list to the backend. The tied
 * output shares the embedding's copy; rope_freqs goes up as a vector (the
 * rope op reads it). */
static int upload_tensor(void *ctx, const arch_tensor_use *u, larder_error *err) {
    upload_ctx *c = ctx;
    if (!arch_tensor_is_matrix(u->spec->kind)) return upload_vector(c->be, field_of(c->m, u), err);
    model_weight *w = field_of(c->m, u);
    if (w == &c->m->output && c->m->output_tied) {
        w->dev = c->m->tok_embd.dev; /* the list puts token_embd first */
        return 0;
    }
    return w->data ? upload_weight(c->be, w, err) : 0;
}

int model_upload(model *m, backend *be, larder_error *err) {
    upload_ctx c = {m, be};
    return arch_tensors_each(&m->hp, upload_tensor, &c, err) ? -1 : 0;
}

size_t model_kv_bytes_per_token(const model *m, uint32_t kv_type) {
    return 2 * (size_t)m->hp.n_layers * (size_t)m->hp.n_kv_heads * kv_pool_row_bytes(kv_type, m->hp.head_dim);
}

static size_t weight_bytes(const model_weight *w) { return w->data ? (size_t)w->rows * w->row_bytes : 0; }

size_t model_expert_bytes(const model *m) {
    size_t total = 0;
    for (int32_t il = 0; il < m->hp.n_layers; il++) {
        const model_layer *l = &m->layers[il];
        total += weight_bytes(&l->gate_exps) + weight_bytes(&l->up_exps) + weight_bytes(&l->down_exps);
    }
    return total;
}

size_t model_decode_bytes_per_token(const model *m) {
    size_t experts = model_expert_bytes(m);
    size_t total = m->weight_bytes - experts - weight_bytes(&m->tok_embd);
    total += m->output_tied ? weight_bytes(&m->tok_embd) : m->tok_embd.row_bytes;
    if (m->hp.n_expert > 0) total += experts / (size_t)m->hp.n_expert * (size_t)m->hp.n_expert_used;
    return total;
}
