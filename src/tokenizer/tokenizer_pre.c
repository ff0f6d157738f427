/*
 * tokenizer_pre.c — the pre-tokenizer table (name -> regex list + switches)
 * and the PCRE2 splitter.
 *
 * The regular expressions are the ones the reference tokenizer uses for each
 * name (they come from the models' tokenizer.json; where the original used
 * (?i:...) the reference spells the case variants out). They are data, listed
 * once below; the splitter is generic.
 *
 * Matching runs on a canonical UTF-8 copy of the decoded code points (so PCRE2
 * never sees invalid UTF-8: surrogates and values past U+10FFFF are shown to
 * it as U+FFFD), with a byte -> code point index map to turn match offsets
 * back into code point offsets.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_pre.h"
#include "tokenizer/unicode.h"

static const char *const re_llama3[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_jais2[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
    NULL,
};
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
    NULL,
};
static const char *const re_deepseek3_llm[] = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_spark2_5[] = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+",
    "\\p{N}",
    NULL,
};
static const char *const re_youtu[] = {
    "[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_deepseek_coder[] = {
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}",
    NULL,
};
static const char *const re_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]",
    NULL,
};
static const char *const re_starcoder[] = {
    "\\p{N}",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL,
};
static const char *const re_gpt2[] = {
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL,
};
static const char *const re_qwen35[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_poro[] = {
    " ?[^(\\s|.,!?…。，、।۔،)]+",
    NULL,
};
static const char *const re_chatglm4[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_viking[] = {
    " ?[^(\\s|.,!?…。，、।۔،)]+",
    "\\p{N}",
    NULL,
};
static const char *const re_tekken[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_chameleon[] = {
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL,
};
static const char *const re_gpt4o[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_bailingmoe[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_seed_coder[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_ufakzeka[] = {
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "\\p{N}+",
    "[0-9][0-9][0-9]",
    NULL,
};
static const char *const re_qwen2[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};

/* One pre-tokenizer name and what comes with it (reference defaults for
 * byte-level BPE: clean_spaces on, ignore_merges off, no BOS). */
typedef struct pretok_def {
    const char *name;
    const char *const *regexes;
    bool clean_spaces;
    bool ignore_merges;
    bool add_bos;
} pretok_def;

static const pretok_def pretok_defs[] = {
    {"default", re_default, true, false, false},
    {"llama3", re_llama3, true, true, true},
    {"llama-v3", re_llama3, true, true, true},
    {"llama-bpe", re_llama3, true, true, true},
    {"falcon3", re_llama3, true, true, true},
    {"falcon-h1", re_llama3, true, true, true},
    {"pixtral", re_llama3, true, true, true},
    {"lfm2", re_llama3, true, true, true},
    {"dbrx", re_llama3, true, false, false},
    {"smaug-bpe", re_llama3, true, false, false},
    {"deepseek-llm", re_deepseek_llm, false, false, false},
    {"deepseek-coder", re_deepseek_coder, false, false, false},
    {"deepseek-v3", re_deepseek3_llm, false, false, false},
    {"hunyuan-dense", re_deepseek3_llm, false, false, false},
    {"falcon", re_falcon, true, false, false},
    {"mpt", re_gpt2, true, false, false},
    {"olmo", re_gpt2, true, false, false},
    {"jais", re_gpt2, true, false, false},
    {"trillion", re_gpt2, false, false, false},
    {"granite-docling", re_gpt2, false, false, false},
    {"gpt-2", re_gpt2, true, false, false},
    {"phi-2", re_gpt2, true, false, false},
    {"jina-es", re_gpt2, true, false, false},
    {"jina-de", re_gpt2, true, false, false},
    {"jina-v2-es", re_gpt2, true, false, false},
    {"jina-v2-de", re_gpt2, true, false, false},
    {"gigachat", re_gpt2, true, false, false},
    {"mellum", re_gpt2, true, false, false},
    {"exaone4", re_gpt2, true, false, false},
    {"starcoder", re_starcoder, true, false, false},
    {"refact", re_starcoder, true, false, false},
    {"command-r", re_starcoder, false, false, false},
    {"smollm", re_starcoder, false, false, false},
    {"codeshell", re_starcoder, true, false, false},
    {"exaone", re_starcoder, true, false, false},
    {"minerva-7b", re_starcoder, true, false, false},
    {"qwen2", re_qwen2, false, false, false},
    {"deepseek-r1-qwen", re_qwen2, false, false, false},
    {"megrez", re_qwen2, true, false, false},
    {"stablelm2", re_qwen2, true, false, false},
    {"hunyuan", re_qwen2, false, false, false},
    {"solar-open", re_qwen2, false, false, false},
    {"grok-2", re_qwen2, false, false, false},
    {"qwen35", re_qwen35, false, false, false},
    {"poro-chat", re_poro, false, false, false},
    {"bloom", re_poro, true, false, false},
    {"gpt3-finnish", re_poro, true, false, false},
    {"viking", re_viking, false, false, false},
    {"chatglm-bpe", re_chatglm4, true, false, false},
    {"glm4", re_chatglm4, true, false, false},
    {"tekken", re_tekken, false, true, true},
    {"chameleon", re_chameleon, false, false, true},
    {"gpt-4o", re_gpt4o, false, false, false},
    {"llama4", re_gpt4o, false, false, false},
    {"minimax-m2", re_gpt4o, false, false, false},
    {"bailingmoe", re_bailingmoe, false, false, false},
    {"bailingmoe2", re_bailingmoe, false, false, false},
    {"seed-coder", re_seed_coder, false, false, false},
    {"ufakzeka", re_ufakzeka, false, false, false},
    {"jais-2", re_jais2, true, false, false},
    {"youtu", re_youtu, false, true, false},
    {"spark2_5", re_spark2_5, false, false, false},
};

/* Most regexes in one list (the longest list above has 6). */
#define PRETOK_MAX_REGEXES 8

/* PCRE2 JIT stack bounds: patterns with repeated lookahead groups (gpt-4o)
 * use stack per character of a word; 16 MiB covers words far longer than any
 * real text has, and a longer one fails with ERR_LIMIT, never a crash. */
#define PRETOK_JIT_STACK_MIN_BYTES (32 * 1024)
#define PRETOK_JIT_STACK_MAX_BYTES (16 * 1024 * 1024)

struct pretok {
    const pretok_def *def;
    pcre2_code *code[PRETOK_MAX_REGEXES]; /* compiled, JIT'd where possible */
    int n_code;
};

pretok *pretok_create(const char *name, larder_error *err) {
    if (!name || !*name) name = "default";
    const pretok_def *def = NULL;
    for (size_t i = 0; i < sizeof pretok_defs / sizeof pretok_defs[0]; i++)
        if (!strcmp(pretok_defs[i].name, name)) def = &pretok_defs[i];
    if (!def) {
        error_set(err, ERR_UNSUPPORTED, "unknown pre-tokenizer '%s' (tokenizer.ggml.pre)", name);
        return NULL;
    }
    pretok *p = calloc(1, sizeof *p);
    if (!p) {
        error_set(err, ERR_NOMEM, "out of memory");
        return NULL;
    }
    p->def = def;
    for (const char *const *re = def->regexes; *re; re++) {
        if (p->n_code == PRETOK_MAX_REGEXES) {
            pretok_free(p);
            error_set(err, ERR_LIMIT, "pre-tokenizer '%s' has too many regexes", name);
            return NULL;
        }
        int ecode;
        PCRE2_SIZE eoff;
        pcre2_code *c = pcre2_compile((PCRE2_SPTR)*re, PCRE2_ZERO_TERMINATED,
                                      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK,
                                      &ecode, &eoff, NULL);
        if (!c) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            pretok_free(p);
            error_set(err, ERR_FORMAT, "pre-tokenizer '%s': regex does not compile at %zu: %s", name,
                      (size_t)eoff, (const char *)msg);
            return NULL;
        }
        (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* interpreted if JIT is unavailable */
        p->code[p->n_code++] = c;
    }
    return p;
}

void pretok_free(pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n_code; i++) pcre2_code_free(p->code[i]);
    free(p);
}

bool pretok_clean_spaces(const pretok *p) { return p->def->clean_spaces; }
bool pretok_ignore_merges(const pretok *p) { return p->def->ignore_merges; }
int pretok_add_bos_default(const pretok *p) { return p->def->add_bos ? 1 : 0; }

static int words_push(pretok_word **w, size_t *n, size_t *cap, uint32_t start, uint32_t len) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        pretok_word *nw = realloc(*w, nc * sizeof *nw);
        if (!nw) return -1;
        *w = nw;
        *cap = nc;
    }
    (*w)[*n].start = start;
    (*w)[*n].len = len;
    (*n)++;
    return 0;
}

int pretok_split(const pretok *p, const uint32_t *cps, size_t n, pretok_word **words, size_t *n_words,
                 size_t *cap, larder_error *err) {
    if (n == 0) return 0;
    if (n > UINT32_MAX / 4) return error_set(err, ERR_LIMIT, "text too long to tokenize (%zu characters)", n);
    int rc = -1;
    char *buf = malloc(n * 4);                        /* canonical UTF-8 of cps */
    uint32_t *byte_off = malloc((n + 1) * sizeof *byte_off); /* (n+1) byte offset of cp i */
    uint32_t *cp_at = malloc(n * 4 * sizeof *cp_at);  /* cp index of each byte */
    pretok_word *cur = NULL, *next = NULL;
    size_t n_cur = 0, cap_cur = 0, n_next = 0, cap_next = 0;
    pcre2_match_data *md = NULL;
    pcre2_match_context *mc = NULL;
    pcre2_jit_stack *js = NULL;
    if (!buf || !byte_off || !cp_at) goto nomem;

    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = cps[i];
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = UNICODE_REPLACEMENT;
        byte_off[i] = (uint32_t)nb;
        size_t k = unicode_encode_utf8(cp, buf + nb);
        for (size_t j = 0; j < k; j++) cp_at[nb + j] = (uint32_t)i;
        nb += k;
    }
    byte_off[n] = (uint32_t)nb;

    md = pcre2_match_data_create(1, NULL);
    mc = pcre2_match_context_create(NULL);
    js = pcre2_jit_stack_create(PRETOK_JIT_STACK_MIN_BYTES, PRETOK_JIT_STACK_MAX_BYTES, NULL);
    if (!md || !mc) goto nomem;
    if (js) pcre2_jit_stack_assign(mc, NULL, js);

    if (words_push(&cur, &n_cur, &cap_cur, 0, (uint32_t)n)) goto nomem;
    for (int r = 0; r < p->n_code; r++) {
        n_next = 0;
        for (size_t w = 0; w < n_cur; w++) {
            uint32_t ws = cur[w].start, we = cur[w].start + cur[w].len;
            const char *subj = buf + byte_off[ws];
            size_t subj_len = byte_off[we] - byte_off[ws];
            size_t at = 0;       /* byte offset in subj where the next search starts */
            uint32_t done = ws;  /* cps before this are emitted */
            while (at <= subj_len) {
                int m = pcre2_match(p->code[r], (PCRE2_SPTR)subj, subj_len, at, PCRE2_NO_UTF_CHECK, md, mc);
                if (m == PCRE2_ERROR_NOMATCH) break;
                if (m < 0) {
                    PCRE2_UCHAR msg[256];
                    pcre2_get_error_message(m, msg, sizeof msg);
                    error_set(err, ERR_LIMIT, "pre-tokenizer regex failed: %s", (const char *)msg);
                    goto out;
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                size_t ms = ov[0], me = ov[1];
                uint32_t cs = ws + (ms < subj_len ? cp_at[byte_off[ws] + ms] - ws : cur[w].len);
                uint32_t ce = ws + (me < subj_len ? cp_at[byte_off[ws] + me] - ws : cur[w].len);
                if (ce == cs) { /* empty match: step over one character */
                    if (ms >= subj_len) break;
                    at = byte_off[cs + 1] - byte_off[ws];
                    continue;
                }
                if (cs > done && words_push(&next, &n_next, &cap_next, done, cs - done)) goto nomem;
                if (words_push(&next, &n_next, &cap_next, cs, ce - cs)) goto nomem;
                done = ce;
                at = me;
            }
            if (we > done && words_push(&next, &n_next, &cap_next, done, we - done)) goto nomem;
        }
        pretok_word *t = cur; cur = next; next = t;
        size_t tc = cap_cur; cap_cur = cap_next; cap_next = tc;
        n_cur = n_next;
    }
    for (size_t w = 0; w < n_cur; w++)
        if (words_push(words, n_words, cap, cur[w].start, cur[w].len)) goto nomem;
    rc = 0;
    goto out;
nomem:
    error_set(err, ERR_NOMEM, "out of memory while splitting text");
out:
    if (js) pcre2_jit_stack_free(js);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    free(cur);
    free(next);
    free(buf);
    free(byte_off);
    free(cp_at);
    return rc;
}
