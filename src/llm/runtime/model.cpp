#include "llm/runtime/model.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "llm/runtime/activations.h"
#include "llm/runtime/attention.h"

namespace chatrec::llm::runtime {
namespace {

// Like ggml's rms_norm: the squares are rounded to float and summed in double.
void rms_norm(const float* x, const float* w, float* y, int n, float eps) {
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / n) + eps);
  for (int i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

int check_range(const GgufFile& f, const std::string& key, std::int64_t v, std::int64_t lo,
                std::int64_t hi) {
  if (v < lo || v > hi) {
    throw GgufError(f.name() + ": " + key + ": value " + std::to_string(v) + " outside " +
                    std::to_string(lo) + ".." + std::to_string(hi));
  }
  return static_cast<int>(v);
}

}  // namespace

WeightMatrix Model::matrix(const std::string& name, std::int64_t cols, std::int64_t rows,
                           bool required) const {
  const GgufTensor* t = file_.tensor(name);
  if (!t) {
    if (required) throw GgufError(file_.name() + ": missing tensor " + name);
    return {};
  }
  if (!type_traits(static_cast<std::uint32_t>(t->type))) {
    throw GgufError(file_.name() + ": tensor " + name + ": type " +
                    type_name(static_cast<std::uint32_t>(t->type)) +
                    " is not supported by the runtime");
  }
  const std::int64_t t_rows = t->dims.size() > 1 ? t->dims[1] : 1;
  if (t->dims[0] != cols || t_rows != rows || t->elements() != cols * rows) {
    throw GgufError(file_.name() + ": tensor " + name + ": shape mismatch, expected [" +
                    std::to_string(cols) + ", " + std::to_string(rows) + "]");
  }
  WeightMatrix w;
  w.type = t->type;
  w.cols = cols;
  w.rows = rows;
  w.data = t->data;
  w.row_stride = row_bytes(t->type, cols);
  return w;
}

std::vector<float> Model::vector(const std::string& name, std::int64_t n, bool required) const {
  const GgufTensor* t = file_.tensor(name);
  if (!t) {
    if (required) throw GgufError(file_.name() + ": missing tensor " + name);
    return {};
  }
  if (t->elements() != n || (t->type != GgmlType::F32 && t->type != GgmlType::F16)) {
    throw GgufError(file_.name() + ": tensor " + name + ": expected " + std::to_string(n) +
                    " F32/F16 elements");
  }
  std::vector<float> v(static_cast<std::size_t>(n));
  dequantize_row(t->type, t->data, v.data(), n);
  return v;
}

Model::Model(GgufFile file) : file_(std::move(file)) {
  ModelConfig& c = config_;
  c.arch = file_.get_string("general.architecture");
  if (c.arch != "llama" && c.arch != "qwen2" && c.arch != "gemma3") {
    throw GgufError(file_.name() + ": general.architecture: unsupported architecture '" + c.arch +
                    "' (llama, qwen2 and gemma3 are)");
  }
  const std::string& a = c.arch;
  c.n_layer = check_range(file_, a + ".block_count", file_.get_int(a + ".block_count"), 1, 1024);
  c.n_embd = check_range(file_, a + ".embedding_length", file_.get_int(a + ".embedding_length"), 1,
                         1 << 16);
  c.n_ff = check_range(file_, a + ".feed_forward_length", file_.get_int(a + ".feed_forward_length"),
                       1, 1 << 20);
  c.n_head = check_range(file_, a + ".attention.head_count",
                         file_.get_int(a + ".attention.head_count"), 1, 4096);
  c.n_head_kv = check_range(file_, a + ".attention.head_count_kv",
                            file_.get_int(a + ".attention.head_count_kv", c.n_head), 1, c.n_head);
  if (c.n_head % c.n_head_kv != 0)
    throw GgufError(file_.name() + ": head_count must be a multiple of head_count_kv");
  const std::int64_t default_hd = c.n_embd / c.n_head;
  c.head_dim = check_range(file_, a + ".attention.key_length",
                           file_.get_int(a + ".attention.key_length", default_hd), 2, 1 << 12);
  if (c.head_dim % 2 != 0) throw GgufError(file_.name() + ": head dimension must be even");
  c.n_rot = check_range(file_, a + ".rope.dimension_count",
                        file_.get_int(a + ".rope.dimension_count", c.head_dim), 2, c.head_dim);
  c.n_ctx_train = check_range(file_, a + ".context_length",
                              file_.get_int(a + ".context_length", 2048), 1, 1 << 24);
  c.rms_eps = static_cast<float>(file_.get_float(a + ".attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_base = static_cast<float>(file_.get_float(a + ".rope.freq_base", 10000.0));
  if (!(c.rms_eps > 0.0f) || !(c.rope_base > 0.0f))
    throw GgufError(file_.name() + ": rms epsilon and rope base must be positive");
  c.rope_neox = c.arch == "qwen2" || c.arch == "gemma3";
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (c.arch == "gemma3") {
    c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
    c.qk_norm = c.post_norms = c.geglu = true;
    c.sliding_window = check_range(file_, a + ".attention.sliding_window",
                                   file_.get_int(a + ".attention.sliding_window", 0), 0, 1 << 24);
    c.swa_pattern = check_range(file_, a + ".attention.sliding_window_pattern",
                                file_.get_int(a + ".attention.sliding_window_pattern", 6), 0, 1024);
    c.rope_base_swa = static_cast<float>(file_.get_float(a + ".rope.freq_base_swa", 10000.0));
    if (file_.get_float(a + ".final_logit_softcapping", 0.0) != 0.0)
      throw GgufError(file_.name() + ": " + a +
                      ".final_logit_softcapping: logit soft-capping is not supported");
    if (file_.get_float(a + ".rope.scaling.factor", 1.0) != 1.0)
      throw GgufError(file_.name() + ": " + a +
                      ".rope.scaling.factor: RoPE scaling is not supported");
  }

  const GgufTensor* emb = file_.tensor("token_embd.weight");
  if (!emb || emb->dims.size() != 2)
    throw GgufError(file_.name() + ": missing or malformed tensor token_embd.weight");
  c.n_vocab = static_cast<int>(std::min<std::int64_t>(emb->dims[1], 1 << 24));
  token_embd_ = matrix("token_embd.weight", c.n_embd, c.n_vocab);
  output_ =
      file_.tensor("output.weight") ? matrix("output.weight", c.n_embd, c.n_vocab) : token_embd_;
  output_norm_ = vector("output_norm.weight", c.n_embd, true);
  rope_freq_factors_ = vector("rope_freqs.weight", c.n_rot / 2, false);

  const std::int64_t q_dim = static_cast<std::int64_t>(c.n_head) * c.head_dim;
  const std::int64_t kv_dim = static_cast<std::int64_t>(c.n_head_kv) * c.head_dim;
  const bool bias = c.arch == "qwen2";
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    Layer l;
    l.attn_norm = vector(p + "attn_norm.weight", c.n_embd, true);
    l.ffn_norm = vector(p + "ffn_norm.weight", c.n_embd, true);
    l.wq = matrix(p + "attn_q.weight", c.n_embd, q_dim);
    l.wk = matrix(p + "attn_k.weight", c.n_embd, kv_dim);
    l.wv = matrix(p + "attn_v.weight", c.n_embd, kv_dim);
    l.wo = matrix(p + "attn_output.weight", q_dim, c.n_embd);
    l.w_gate = matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff);
    l.w_up = matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
    l.w_down = matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
    if (c.qk_norm) {
      l.q_norm = vector(p + "attn_q_norm.weight", c.head_dim, true);
      l.k_norm = vector(p + "attn_k_norm.weight", c.head_dim, true);
    }
    if (c.post_norms) {
      l.attn_post_norm = vector(p + "post_attention_norm.weight", c.n_embd, true);
      l.ffn_post_norm = vector(p + "post_ffw_norm.weight", c.n_embd, true);
    }
    l.bq = vector(p + "attn_q.bias", q_dim, bias);
    l.bk = vector(p + "attn_k.bias", kv_dim, bias);
    l.bv = vector(p + "attn_v.bias", kv_dim, bias);
    layers_.push_back(std::move(l));
  }
}

void Model::init_cache(int n_ctx, int n_slots) {
  n_ctx_ = std::max(1, n_ctx);
  const std::size_t per_layer =
      static_cast<std::size_t>(n_ctx_) * config_.n_head_kv * config_.head_dim;
  k_cache_.clear();
  v_cache_.clear();
  k_cache_.resize(static_cast<std::size_t>(std::max(1, n_slots)));
  v_cache_.resize(k_cache_.size());
  for (std::size_t s = 0; s < k_cache_.size(); ++s) {
    for (int i = 0; i < config_.n_layer; ++i) {
      k_cache_[s].push_back(std::make_unique_for_overwrite<float[]>(per_layer));
      v_cache_[s].push_back(std::make_unique_for_overwrite<float[]>(per_layer));
    }
  }
  slot_ = 0;
}

void Model::use_slot(int slot) {
  if (slot < 0 || slot >= cache_slots())
    throw std::out_of_range("KV cache slot " + std::to_string(slot) + " does not exist");
  slot_ = slot;
}

const WeightMatrix& Model::Layer::projection(LoraTarget t) const {
  switch (t) {
    case LoraTarget::kQ:
      return wq;
    case LoraTarget::kK:
      return wk;
    case LoraTarget::kV:
      return wv;
    case LoraTarget::kO:
      return wo;
    case LoraTarget::kGate:
      return w_gate;
    case LoraTarget::kUp:
      return w_up;
    case LoraTarget::kDown:
      break;
  }
  return w_down;
}

void Model::set_lora(const LoraAdapter* adapter, float scale) {
  lora_ = nullptr;
  lora_active_.assign(static_cast<std::size_t>(config_.n_layer), {});
  if (!adapter) return;
  if (adapter->architecture != config_.arch ||
      adapter->layers.size() != static_cast<std::size_t>(config_.n_layer))
    throw std::invalid_argument("LoRA adapter does not fit this model");
  for (std::size_t l = 0; l < adapter->layers.size(); ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const LoraMatrix& m = adapter->layers[l][static_cast<std::size_t>(t)];
      lora_active_[l][static_cast<std::size_t>(t)] =
          !m.empty() && std::any_of(m.b.begin(), m.b.end(), [](float v) { return v != 0.0f; });
    }
  }
  lora_ = adapter;
  lora_scale_ = scale * adapter->scale();
}

void Model::add_lora(int layer, LoraTarget target, const float* in, int n_tokens,
                     float* out) const {
  if (!lora_ || !lora_active_[static_cast<std::size_t>(layer)][static_cast<std::size_t>(target)])
    return;
  const LoraMatrix& m =
      lora_->layers[static_cast<std::size_t>(layer)][static_cast<std::size_t>(target)];
  std::vector<float> mid(static_cast<std::size_t>(m.rank));
  for (int t = 0; t < n_tokens; ++t) {
    const float* x = in + static_cast<std::size_t>(t) * m.n_in;
    float* y = out + static_cast<std::size_t>(t) * m.n_out;
    for (int j = 0; j < m.rank; ++j) {
      const float* a = m.a.data() + static_cast<std::size_t>(j) * m.n_in;
      float acc = 0.0f;
      for (int c = 0; c < m.n_in; ++c) acc += a[c] * x[c];
      mid[static_cast<std::size_t>(j)] = acc * lora_scale_;
    }
    for (int o = 0; o < m.n_out; ++o) {
      const float* b = m.b.data() + static_cast<std::size_t>(o) * m.rank;
      float acc = 0.0f;
      for (int j = 0; j < m.rank; ++j) acc += b[j] * mid[static_cast<std::size_t>(j)];
      y[o] += acc;
    }
  }
}

void Model::embed(int token, float* dst) const {
  if (token < 0 || token >= config_.n_vocab)
    throw std::out_of_range("token id " + std::to_string(token) + " outside the vocabulary");
  dequantize_row(token_embd_.type,
                 token_embd_.data + static_cast<std::size_t>(token) * token_embd_.row_stride, dst,
                 config_.n_embd);
}

void Model::forward(std::span<const int> tokens, int pos, ForwardOutput output,
                    std::vector<float>& out, int threads) {
  run(tokens, pos, nullptr, output, out, threads);
}

void Model::forward_branches(std::span<const int> tokens, int pos, const Branches& branches,
                             ForwardOutput output, std::vector<float>& out, int threads) {
  const std::size_t n = tokens.size();
  if (branches.positions.size() != n || branches.branch_start.size() != n)
    throw std::invalid_argument("forward_branches: one position and branch start per token");
  for (std::size_t t = 0; t < n; ++t) {
    const int start = branches.branch_start[t];
    if (start < branches.shared || start > pos + static_cast<int>(t) || branches.shared > pos ||
        branches.positions[t] < 0)
      throw std::invalid_argument("forward_branches: inconsistent branch layout");
  }
  run(tokens, pos, &branches, output, out, threads);
}

void Model::run(std::span<const int> tokens, int pos, const Branches* branches,
                ForwardOutput output, std::vector<float>& out, int threads) {
  const ModelConfig& c = config_;
  const int n = static_cast<int>(tokens.size());
  if (n == 0) throw std::invalid_argument("forward: no tokens");
  if (pos < 0 || pos + n > n_ctx_)
    throw std::out_of_range("forward: positions exceed the KV cache");
  const int nt = threads > 0 ? threads : omp_get_max_threads();
  const int E = c.n_embd, F = c.n_ff, D = c.head_dim;
  const int q_dim = c.n_head * D, kv_dim = c.n_head_kv * D;
  const int group = c.n_head / c.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));

  std::vector<float> x(static_cast<std::size_t>(n) * E), xn(x.size()), tmp(x.size());
  std::vector<float> q(static_cast<std::size_t>(n) * q_dim),
      k(static_cast<std::size_t>(n) * kv_dim), v(k.size());
  std::vector<float> attn(q.size());
  std::vector<float> g(static_cast<std::size_t>(n) * F), u(g.size());
  for (int t = 0; t < n; ++t)
    embed(tokens[static_cast<std::size_t>(t)], x.data() + static_cast<std::size_t>(t) * E);

  if (c.embd_scale != 1.0f)
    for (float& e : x) e *= c.embd_scale;

  // RoPE angles per position and rotated pair; the frequency follows the model's base (and
  // per-dimension factors for Llama 3.1-style long-context scaling). The angle is computed the way
  // ggml does it, in float: theta starts at the position and is multiplied by base^(-2/n_rot) from
  // one pair to the next (a rounding difference in the angle is enough to flip a near-tie later).
  // Models with local layers keep a second table for their base.
  const int half = c.n_rot / 2;
  struct RopeTable {
    float base = 0.0f;
    std::vector<float> cos_t, sin_t;
  };
  auto make_table = [&](float base) {
    RopeTable r;
    r.base = base;
    const float theta_scale = std::pow(base, -2.0f / static_cast<float>(c.n_rot));
    r.cos_t.resize(static_cast<std::size_t>(n) * half);
    r.sin_t.resize(r.cos_t.size());
    for (int t = 0; t < n; ++t) {
      float theta =
          static_cast<float>(branches ? branches->positions[static_cast<std::size_t>(t)] : pos + t);
      for (int i = 0; i < half; ++i) {
        const float ff =
            rope_freq_factors_.empty() ? 1.0f : rope_freq_factors_[static_cast<std::size_t>(i)];
        r.cos_t[static_cast<std::size_t>(t) * half + i] = std::cos(theta / ff);
        r.sin_t[static_cast<std::size_t>(t) * half + i] = std::sin(theta / ff);
        theta *= theta_scale;
      }
    }
    return r;
  };
  std::vector<RopeTable> tables;
  tables.push_back(make_table(c.rope_base));
  if (c.sliding_window > 0 && c.rope_base_swa != c.rope_base)
    tables.push_back(make_table(c.rope_base_swa));
  auto rope = [&](const RopeTable& r, float* vec, int t) {
    const float* cs = r.cos_t.data() + static_cast<std::size_t>(t) * half;
    const float* sn = r.sin_t.data() + static_cast<std::size_t>(t) * half;
    for (int i = 0; i < half; ++i) {
      const int a = c.rope_neox ? i : 2 * i;
      const int b = c.rope_neox ? i + half : 2 * i + 1;
      const float x0 = vec[a], x1 = vec[b];
      vec[a] = x0 * cs[i] - x1 * sn[i];
      vec[b] = x0 * sn[i] + x1 * cs[i];
    }
  };
  // Queries are scaled before attention as llama.cpp's gemma graph does (the kernel then scales
  // by one); for the Llama family the kernel applies 1/sqrt(head_dim) to the scores.
  const bool scale_queries = c.qk_norm;
  const float kernel_scale = scale_queries ? 1.0f : scale;

  for (int li = 0; li < c.n_layer; ++li) {
    Layer& L = layers_[static_cast<std::size_t>(li)];
    for (int t = 0; t < n; ++t)
      rms_norm(x.data() + static_cast<std::size_t>(t) * E, L.attn_norm.data(),
               xn.data() + static_cast<std::size_t>(t) * E, E, c.rms_eps);
    matmul(L.wq, xn.data(), n, q.data(), nt);
    matmul(L.wk, xn.data(), n, k.data(), nt);
    matmul(L.wv, xn.data(), n, v.data(), nt);
    add_lora(li, LoraTarget::kQ, xn.data(), n, q.data());
    add_lora(li, LoraTarget::kK, xn.data(), n, k.data());
    add_lora(li, LoraTarget::kV, xn.data(), n, v.data());
    const RopeTable& table = tables.size() > 1 && c.is_local(li) ? tables[1] : tables[0];
    const int window = c.is_local(li) ? c.sliding_window : 0;
    // Branch batches need the tiled kernel's per-key visibility.
    const bool tiled = n >= kAttentionTile || branches;
    float* kc = k_cache_[static_cast<std::size_t>(slot_)][static_cast<std::size_t>(li)].get();
    float* vc = v_cache_[static_cast<std::size_t>(slot_)][static_cast<std::size_t>(li)].get();
    for (int t = 0; t < n; ++t) {
      float* qt = q.data() + static_cast<std::size_t>(t) * q_dim;
      float* kt = k.data() + static_cast<std::size_t>(t) * kv_dim;
      float* vt = v.data() + static_cast<std::size_t>(t) * kv_dim;
      if (!L.bq.empty()) {
        for (int i = 0; i < q_dim; ++i) qt[i] += L.bq[static_cast<std::size_t>(i)];
        for (int i = 0; i < kv_dim; ++i) kt[i] += L.bk[static_cast<std::size_t>(i)];
        for (int i = 0; i < kv_dim; ++i) vt[i] += L.bv[static_cast<std::size_t>(i)];
      }
      if (c.qk_norm) {
        for (int h = 0; h < c.n_head; ++h)
          rms_norm(qt + h * D, L.q_norm.data(), qt + h * D, D, c.rms_eps);
        for (int h = 0; h < c.n_head_kv; ++h)
          rms_norm(kt + h * D, L.k_norm.data(), kt + h * D, D, c.rms_eps);
      }
      for (int h = 0; h < c.n_head; ++h) rope(table, qt + h * D, t);
      for (int h = 0; h < c.n_head_kv; ++h) rope(table, kt + h * D, t);
      if (scale_queries)
        for (int i = 0; i < q_dim; ++i) qt[i] *= c.attn_scale;
      // Keys, values and queries are rounded to fp16 precision, as llama.cpp's default F16 KV cache
      // and attention do: the runtime then reproduces its greedy outputs (near-ties otherwise flip
      // now and then).
      for (int i = 0; i < kv_dim; ++i) {
        kc[static_cast<std::size_t>(pos + t) * kv_dim + i] = round_fp16(kt[i]);
        vc[static_cast<std::size_t>(pos + t) * kv_dim + i] = round_fp16(vt[i]);
      }
      // The one-query-at-a-time path takes fp16 queries; the tiled path keeps them in f32.
      if (!tiled)
        for (int i = 0; i < q_dim; ++i) qt[i] = round_fp16(qt[i]);
    }

    // Causal attention: token t sees positions 0 .. pos+t. Batches of kAttentionTile or more
    // queries go through the tiled kernel (as llama.cpp's prompt processing does), in blocks of
    // kAttentionTile queries per head.
    if (tiled) {
      const int blocks = (n + kAttentionTile - 1) / kAttentionTile;
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(nt) if (nt > 1)
      for (int h = 0; h < c.n_head; ++h) {
        for (int blk = 0; blk < blocks; ++blk) {
          CausalBatch b;
          b.q = q.data() + h * D;
          b.q_stride = static_cast<std::size_t>(q_dim);
          b.first_pos = pos;
          b.k = kc + (h / group) * D;
          b.v = vc + (h / group) * D;
          b.kv_stride = static_cast<std::size_t>(kv_dim);
          b.dim = D;
          b.scale = kernel_scale;
          b.window = window;
          b.out = attn.data() + h * D;
          b.out_stride = static_cast<std::size_t>(q_dim);
          if (branches) {
            b.shared = branches->shared;
            b.branch_start = branches->branch_start.data();
            b.positions = branches->positions.data();
          }
          // Later blocks see more keys: hand them out first so the threads finish together.
          const int rb = blocks - 1 - blk;
          attend_causal_tiled(b, rb * kAttentionTile, std::min(n, (rb + 1) * kAttentionTile));
        }
      }
    } else {
#pragma omp parallel for collapse(2) schedule(static) \
    num_threads(nt) if (nt > 1 && static_cast <long>(n) * (pos + n) * c.n_head >= 4096)
      for (int t = 0; t < n; ++t) {
        for (int h = 0; h < c.n_head; ++h) {
          const int kvh = h / group;
          // A local layer's query sees its last `window` positions only.
          const int first = window > 0 ? std::max(0, pos + t + 1 - window) : 0;
          const std::size_t skip = static_cast<std::size_t>(first) * kv_dim;
          attend_head(q.data() + static_cast<std::size_t>(t) * q_dim + h * D, kc + skip + kvh * D,
                      vc + skip + kvh * D, static_cast<std::size_t>(kv_dim), pos + t + 1 - first, D,
                      kernel_scale, attn.data() + static_cast<std::size_t>(t) * q_dim + h * D);
        }
      }
    }
    matmul(L.wo, attn.data(), n, tmp.data(), nt);
    add_lora(li, LoraTarget::kO, attn.data(), n, tmp.data());
    if (c.post_norms)
      for (int t = 0; t < n; ++t) {
        float* row = tmp.data() + static_cast<std::size_t>(t) * E;
        rms_norm(row, L.attn_post_norm.data(), row, E, c.rms_eps);
      }
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += tmp[i];

    for (int t = 0; t < n; ++t)
      rms_norm(x.data() + static_cast<std::size_t>(t) * E, L.ffn_norm.data(),
               xn.data() + static_cast<std::size_t>(t) * E, E, c.rms_eps);
    matmul(L.w_gate, xn.data(), n, g.data(), nt);
    matmul(L.w_up, xn.data(), n, u.data(), nt);
    add_lora(li, LoraTarget::kGate, xn.data(), n, g.data());
    add_lora(li, LoraTarget::kUp, xn.data(), n, u.data());
    if (c.geglu) {
      geglu(g.data(), u.data(), g.data(), g.size());
    } else {
      swiglu(g.data(), u.data(), g.data(), g.size());
    }
    matmul(L.w_down, g.data(), n, tmp.data(), nt);
    add_lora(li, LoraTarget::kDown, g.data(), n, tmp.data());
    if (c.post_norms)
      for (int t = 0; t < n; ++t) {
        float* row = tmp.data() + static_cast<std::size_t>(t) * E;
        rms_norm(row, L.ffn_post_norm.data(), row, E, c.rms_eps);
      }
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += tmp[i];
  }

  if (output == ForwardOutput::kNone) return;
  const int first = output == ForwardOutput::kLastLogits ? n - 1 : 0;
  const int count = n - first;
  for (int t = first; t < n; ++t) {
    rms_norm(x.data() + static_cast<std::size_t>(t) * E, output_norm_.data(),
             xn.data() + static_cast<std::size_t>(t - first) * E, E, c.rms_eps);
  }
  if (output == ForwardOutput::kHidden) {
    out.assign(xn.begin(), xn.begin() + static_cast<std::ptrdiff_t>(count) * E);
    return;
  }
  out.resize(static_cast<std::size_t>(count) * c.n_vocab);
  matmul(output_, xn.data(), count, out.data(), nt);
}

}  // namespace chatrec::llm::runtime
