#include "gguf_writer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

namespace chatrec::llm::runtime::testing {
namespace {

float rounded_half(float v) {
  return fp16_to_fp32(fp32_to_fp16(v));
}

int nearest(float v) {
  return static_cast<int>(std::lround(v));
}

// Packs the 8 six-bit scales and mins of a K-quant super-block (inverse of k_scale_min).
void pack_k_scales(const int* sc, const int* m, std::uint8_t* out) {
  std::memset(out, 0, kKScaleBytes);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      out[j] = static_cast<std::uint8_t>(out[j] | (sc[j] & 63));
      out[j + 4] = static_cast<std::uint8_t>(out[j + 4] | (m[j] & 63));
    } else {
      out[j + 4] = static_cast<std::uint8_t>((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
      out[j - 4] = static_cast<std::uint8_t>(out[j - 4] | ((sc[j] >> 4) << 6));
      out[j] = static_cast<std::uint8_t>(out[j] | ((m[j] >> 4) << 6));
    }
  }
}

// Shared by Q4_K and Q5_K: per sub-block scale and (non-negative) min, 6-bit quantised against the
// super-block's fp16 d and dmin; returns the integer quants in 0..qmax.
void quantize_k_superblock(const float* x, int qmax, std::uint16_t& d16, std::uint16_t& dmin16,
                           std::uint8_t* scales, int* q) {
  float sub_scale[8], sub_min[8];
  for (int j = 0; j < 8; ++j) {
    float lo = 0.0f, hi = 0.0f;
    for (int l = 0; l < 32; ++l) {
      lo = std::min(lo, x[32 * j + l]);
      hi = std::max(hi, x[32 * j + l]);
    }
    sub_scale[j] = (hi - lo) / static_cast<float>(qmax);
    sub_min[j] = -lo;
  }
  const float max_scale = *std::max_element(sub_scale, sub_scale + 8);
  const float max_min = *std::max_element(sub_min, sub_min + 8);
  const float d = rounded_half(max_scale / 63.0f), dmin = rounded_half(max_min / 63.0f);
  d16 = fp32_to_fp16(d);
  dmin16 = fp32_to_fp16(dmin);
  int sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d > 0.0f ? std::clamp(nearest(sub_scale[j] / d), 0, 63) : 0;
    m[j] = dmin > 0.0f ? std::clamp(nearest(sub_min[j] / dmin), 0, 63) : 0;
    const float ds = d * static_cast<float>(sc[j]), dm = dmin * static_cast<float>(m[j]);
    for (int l = 0; l < 32; ++l)
      q[32 * j + l] = ds > 0.0f ? std::clamp(nearest((x[32 * j + l] + dm) / ds), 0, qmax) : 0;
  }
  pack_k_scales(sc, m, scales);
}

}  // namespace

std::vector<std::uint8_t> quantize(GgmlType type, const float* x, std::int64_t n) {
  std::vector<std::uint8_t> out(row_bytes(type, n));
  switch (type) {
    case GgmlType::F32:
      std::memcpy(out.data(), x, static_cast<std::size_t>(n) * 4);
      break;
    case GgmlType::F16: {
      auto* h = reinterpret_cast<std::uint16_t*>(out.data());
      for (std::int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(x[i]);
      break;
    }
    case GgmlType::Q4_0: {
      auto* b = reinterpret_cast<BlockQ4_0*>(out.data());
      for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < kQK; ++j) {
          if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
          }
        }
        const float d = rounded_half(max / -8.0f);
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < kQK / 2; ++j) {
          const int q0 = d != 0.0f ? std::clamp(nearest(x[j] / d) + 8, 0, 15) : 8;
          const int q1 = d != 0.0f ? std::clamp(nearest(x[j + 16] / d) + 8, 0, 15) : 8;
          b[i].qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
        }
      }
      break;
    }
    case GgmlType::Q4_1: {
      auto* b = reinterpret_cast<BlockQ4_1*>(out.data());
      for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK) {
        const float lo = *std::min_element(x, x + kQK), hi = *std::max_element(x, x + kQK);
        const float d = rounded_half((hi - lo) / 15.0f), m = rounded_half(lo);
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(m);
        for (int j = 0; j < kQK / 2; ++j) {
          const int q0 = d != 0.0f ? std::clamp(nearest((x[j] - m) / d), 0, 15) : 0;
          const int q1 = d != 0.0f ? std::clamp(nearest((x[j + 16] - m) / d), 0, 15) : 0;
          b[i].qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
        }
      }
      break;
    }
    case GgmlType::Q5_0: {
      auto* b = reinterpret_cast<BlockQ5_0*>(out.data());
      for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < kQK; ++j) {
          if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
          }
        }
        const float d = rounded_half(max / -16.0f);
        b[i].d = fp32_to_fp16(d);
        std::uint32_t qh = 0;
        for (int j = 0; j < kQK / 2; ++j) {
          const int q0 = d != 0.0f ? std::clamp(nearest(x[j] / d) + 16, 0, 31) : 16;
          const int q1 = d != 0.0f ? std::clamp(nearest(x[j + 16] / d) + 16, 0, 31) : 16;
          b[i].qs[j] = static_cast<std::uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
          qh |= static_cast<std::uint32_t>(q0 >> 4) << j;
          qh |= static_cast<std::uint32_t>(q1 >> 4) << (j + 16);
        }
        std::memcpy(b[i].qh, &qh, sizeof(qh));
      }
      break;
    }
    case GgmlType::Q8_0: {
      auto* b = reinterpret_cast<BlockQ8_0*>(out.data());
      for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK) {
        float amax = 0.0f;
        for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = rounded_half(amax / 127.0f);
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < kQK; ++j)
          b[i].qs[j] =
              static_cast<std::int8_t>(d != 0.0f ? std::clamp(nearest(x[j] / d), -127, 127) : 0);
      }
      break;
    }
    case GgmlType::Q4_K: {
      auto* b = reinterpret_cast<BlockQ4_K*>(out.data());
      int q[kQKK];
      for (std::int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
        quantize_k_superblock(x, 15, b[i].d, b[i].dmin, b[i].scales, q);
        for (int c = 0; c < 4; ++c) {
          for (int l = 0; l < 32; ++l)
            b[i].qs[32 * c + l] =
                static_cast<std::uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
        }
      }
      break;
    }
    case GgmlType::Q5_K: {
      auto* b = reinterpret_cast<BlockQ5_K*>(out.data());
      int q[kQKK];
      for (std::int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
        quantize_k_superblock(x, 31, b[i].d, b[i].dmin, b[i].scales, q);
        std::memset(b[i].qh, 0, sizeof(b[i].qh));
        for (int c = 0; c < 4; ++c) {
          for (int l = 0; l < 32; ++l) {
            const int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
            b[i].qs[32 * c + l] = static_cast<std::uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
            b[i].qh[l] = static_cast<std::uint8_t>(b[i].qh[l] | ((lo >> 4) << (2 * c)) |
                                                   ((hi >> 4) << (2 * c + 1)));
          }
        }
      }
      break;
    }
    case GgmlType::Q6_K: {
      auto* b = reinterpret_cast<BlockQ6_K*>(out.data());
      for (std::int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
        float sub[16];
        float max_abs_scale = 0.0f;
        for (int j = 0; j < 16; ++j) {
          float amax = 0.0f, max = 0.0f;
          for (int l = 0; l < 16; ++l) {
            if (std::fabs(x[16 * j + l]) > amax) {
              amax = std::fabs(x[16 * j + l]);
              max = x[16 * j + l];
            }
          }
          sub[j] = max / -32.0f;
          max_abs_scale = std::max(max_abs_scale, std::fabs(sub[j]));
        }
        const float d = rounded_half(max_abs_scale / 127.0f);
        b[i].d = fp32_to_fp16(d);
        int q[kQKK];
        for (int j = 0; j < 16; ++j) {
          const int sc = d > 0.0f ? std::clamp(nearest(sub[j] / d), -127, 127) : 0;
          b[i].scales[j] = static_cast<std::int8_t>(sc);
          const float ds = d * static_cast<float>(sc);
          for (int l = 0; l < 16; ++l)
            q[16 * j + l] =
                (ds != 0.0f ? std::clamp(nearest(x[16 * j + l] / ds), -32, 31) : 0) + 32;
        }
        for (int h = 0; h < 2; ++h) {
          for (int l = 0; l < 32; ++l) {
            const int q1 = q[128 * h + l], q2 = q[128 * h + 32 + l], q3 = q[128 * h + 64 + l],
                      q4 = q[128 * h + 96 + l];
            b[i].ql[64 * h + l] = static_cast<std::uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
            b[i].ql[64 * h + 32 + l] = static_cast<std::uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
            b[i].qh[32 * h + l] = static_cast<std::uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) |
                                                            ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
          }
        }
      }
      break;
    }
    default:
      throw std::invalid_argument("quantize: unsupported type");
  }
  return out;
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type,
                            const std::vector<std::int64_t>& dims,
                            const std::vector<float>& values) {
  add_raw_tensor(name, static_cast<std::uint32_t>(type), dims,
                 quantize(type, values.data(), static_cast<std::int64_t>(values.size())));
}

std::vector<std::string> tiny_merges() {
  // Byte-level pieces: "Ġ" is the space byte.
  return {"Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r",  "o n",   "Ġ s",  "r e",  "a t",
          "e n", "Ġ c", "Ġ o",   "i s", "Ġ w", "o r",  "Ġ b",   "i t",  "Ġ p",  "a n",
          "a l", "Ġ f", "e s",   "Ġ m", "o u", "Ġa n", "Ġan d", "Ġ in", "in g", "Ġo f"};
}

std::vector<std::string> tiny_vocab() {
  std::vector<std::string> v = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  // The 256 byte tokens in GPT-2's byte-to-unicode order.
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable =
        (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const unsigned cp =
        printable ? static_cast<unsigned>(b) : 256u + static_cast<unsigned>(extra++);
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    v.push_back(s);
  }
  for (const std::string& m : tiny_merges()) {
    const auto sp = m.find(' ');
    v.push_back(m.substr(0, sp) + m.substr(sp + 1));
  }
  return v;
}

std::vector<std::uint8_t> make_tiny_model(const TinyModelSpec& s) {
  std::mt19937_64 rng(s.seed);
  auto random = [&](std::int64_t n, float scale) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& x : v) x = dist(rng);
    return v;
  };
  auto norm_weights = [&](std::int64_t n) {
    std::uniform_real_distribution<float> dist(0.8f, 1.2f);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& x : v) x = dist(rng);
    return v;
  };
  const auto vocab = tiny_vocab();
  const auto n_vocab = static_cast<std::int64_t>(vocab.size());
  const int head_dim = s.n_embd / s.n_head;
  const std::string& a = s.arch;

  GgufWriter w;
  w.add_string("general.architecture", a);
  w.add_string("general.name", "tiny-" + a);
  w.add_u32(a + ".block_count", static_cast<std::uint32_t>(s.n_layer));
  w.add_u32(a + ".context_length", static_cast<std::uint32_t>(s.n_ctx));
  w.add_u32(a + ".embedding_length", static_cast<std::uint32_t>(s.n_embd));
  w.add_u32(a + ".feed_forward_length", static_cast<std::uint32_t>(s.n_ff));
  w.add_u32(a + ".attention.head_count", static_cast<std::uint32_t>(s.n_head));
  w.add_u32(a + ".attention.head_count_kv", static_cast<std::uint32_t>(s.n_head_kv));
  w.add_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_f32(a + ".rope.freq_base", a == "gemma3" ? 1e6f : 10000.0f);
  if (a == "gemma3") {
    w.add_u32(a + ".attention.sliding_window", static_cast<std::uint32_t>(s.sliding_window));
    w.add_u32(a + ".attention.sliding_window_pattern", static_cast<std::uint32_t>(s.swa_pattern));
    w.add_u32(a + ".attention.key_length", static_cast<std::uint32_t>(head_dim));
  }
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", a == "qwen2" ? "qwen2" : "smollm");
  w.add_strings("tokenizer.ggml.tokens", vocab);
  std::vector<std::int32_t> types(vocab.size(), 1);
  types[0] = types[1] = types[2] = 3;
  w.add_i32s("tokenizer.ggml.token_type", types);
  w.add_strings("tokenizer.ggml.merges", tiny_merges());
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  w.add_bool("tokenizer.ggml.add_bos_token", false);
  w.add_string("tokenizer.chat_template",
               "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
               "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}");

  const GgmlType wt = s.weight_type;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.n_embd));
  // Small enough that tied output logits are not so peaked that sampling degenerates to greedy.
  w.add_tensor("token_embd.weight", wt, {s.n_embd, n_vocab}, random(s.n_embd * n_vocab, 0.15f));
  w.add_tensor("output_norm.weight", GgmlType::F32, {s.n_embd}, norm_weights(s.n_embd));
  if (!s.tied_embeddings)
    w.add_tensor("output.weight", wt, {s.n_embd, n_vocab},
                 random(s.n_embd * n_vocab, scale * 4.0f));
  const std::int64_t q_dim = static_cast<std::int64_t>(s.n_head) * head_dim,
                     kv_dim = static_cast<std::int64_t>(s.n_head_kv) * head_dim;
  for (int i = 0; i < s.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    w.add_tensor(p + "attn_norm.weight", GgmlType::F32, {s.n_embd}, norm_weights(s.n_embd));
    w.add_tensor(p + "attn_q.weight", wt, {s.n_embd, q_dim},
                 random(s.n_embd * q_dim, scale * 2.0f));
    w.add_tensor(p + "attn_k.weight", wt, {s.n_embd, kv_dim},
                 random(s.n_embd * kv_dim, scale * 2.0f));
    w.add_tensor(p + "attn_v.weight", wt, {s.n_embd, kv_dim}, random(s.n_embd * kv_dim, scale));
    if (a == "qwen2") {
      w.add_tensor(p + "attn_q.bias", GgmlType::F32, {q_dim}, random(q_dim, 0.5f));
      w.add_tensor(p + "attn_k.bias", GgmlType::F32, {kv_dim}, random(kv_dim, 0.5f));
      w.add_tensor(p + "attn_v.bias", GgmlType::F32, {kv_dim}, random(kv_dim, 0.5f));
    }
    w.add_tensor(p + "attn_output.weight", wt, {q_dim, s.n_embd}, random(q_dim * s.n_embd, scale));
    w.add_tensor(p + "ffn_norm.weight", GgmlType::F32, {s.n_embd}, norm_weights(s.n_embd));
    w.add_tensor(p + "ffn_gate.weight", wt, {s.n_embd, s.n_ff}, random(s.n_embd * s.n_ff, scale));
    w.add_tensor(p + "ffn_up.weight", wt, {s.n_embd, s.n_ff}, random(s.n_embd * s.n_ff, scale));
    w.add_tensor(p + "ffn_down.weight", wt, {s.n_ff, s.n_embd},
                 random(s.n_ff * s.n_embd, 1.0f / std::sqrt(static_cast<float>(s.n_ff))));
    if (a == "gemma3") {
      w.add_tensor(p + "attn_q_norm.weight", GgmlType::F32, {head_dim}, norm_weights(head_dim));
      w.add_tensor(p + "attn_k_norm.weight", GgmlType::F32, {head_dim}, norm_weights(head_dim));
      w.add_tensor(p + "post_attention_norm.weight", GgmlType::F32, {s.n_embd},
                   norm_weights(s.n_embd));
      w.add_tensor(p + "post_ffw_norm.weight", GgmlType::F32, {s.n_embd}, norm_weights(s.n_embd));
    }
  }
  return w.bytes();
}

}  // namespace chatrec::llm::runtime::testing
