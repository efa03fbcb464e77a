#include "llm/runtime/lora.h"

#include <cstring>
#include <stdexcept>

#include "common/random.h"
#include "llm/runtime/gguf.h"
#include "llm/runtime/gguf_writer.h"
#include "llm/runtime/model.h"

namespace chatrec::llm::runtime {
namespace {

constexpr std::array<const char*, kLoraTargets> kNames = {"q", "k", "v", "o", "gate", "up", "down"};
constexpr std::array<const char*, kLoraTargets> kSuffixes = {
    "attn_q.weight",   "attn_k.weight", "attn_v.weight",  "attn_output.weight",
    "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};

std::string tensor_name(int layer, LoraTarget t) {
  return "blk." + std::to_string(layer) + "." + kSuffixes[static_cast<std::size_t>(t)];
}

}  // namespace

std::pair<int, int> projection_shape(const ModelConfig& c, LoraTarget t) {
  const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
  switch (t) {
    case LoraTarget::kQ:
      return {c.n_embd, q_dim};
    case LoraTarget::kK:
    case LoraTarget::kV:
      return {c.n_embd, kv_dim};
    case LoraTarget::kO:
      return {q_dim, c.n_embd};
    case LoraTarget::kGate:
    case LoraTarget::kUp:
      return {c.n_embd, c.n_ff};
    case LoraTarget::kDown:
      return {c.n_ff, c.n_embd};
  }
  return {0, 0};
}

const char* to_string(LoraTarget target) {
  return kNames[static_cast<std::size_t>(target)];
}
const char* base_tensor_suffix(LoraTarget target) {
  return kSuffixes[static_cast<std::size_t>(target)];
}

std::vector<LoraTarget> parse_lora_targets(const std::string& list) {
  std::vector<LoraTarget> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    const std::string name = list.substr(start, end - start);
    start = end + 1;
    if (name.empty()) continue;
    if (name == "all") {
      for (int t = 0; t < kLoraTargets; ++t) out.push_back(static_cast<LoraTarget>(t));
      continue;
    }
    bool found = false;
    for (int t = 0; t < kLoraTargets; ++t) {
      if (name == kNames[static_cast<std::size_t>(t)]) {
        out.push_back(static_cast<LoraTarget>(t));
        found = true;
      }
    }
    if (!found)
      throw std::invalid_argument("unknown LoRA target '" + name +
                                  "' (known: q, k, v, o, gate, up, down, all)");
  }
  if (out.empty()) throw std::invalid_argument("no LoRA targets given");
  return out;
}

LoraAdapter LoraAdapter::create(const ModelConfig& config, const std::vector<LoraTarget>& targets,
                                int rank, float alpha, std::uint64_t seed) {
  if (rank < 1) throw std::invalid_argument("LoRA rank must be at least 1");
  LoraAdapter a;
  a.architecture = config.arch;
  a.rank = rank;
  a.alpha = alpha;
  a.layers.resize(static_cast<std::size_t>(config.n_layer));
  Rng rng(seed);
  for (int l = 0; l < config.n_layer; ++l) {
    for (LoraTarget t : targets) {
      LoraMatrix& m = a.layers[static_cast<std::size_t>(l)][static_cast<std::size_t>(t)];
      if (!m.empty()) continue;
      const auto [n_in, n_out] = projection_shape(config, t);
      m.n_in = n_in;
      m.n_out = n_out;
      m.rank = rank;
      m.a.resize(static_cast<std::size_t>(rank) * n_in);
      // Kaiming-uniform bound as PEFT's default initialisation of A.
      const double bound = 1.0 / std::sqrt(static_cast<double>(n_in));
      for (float& v : m.a) v = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
      m.b.assign(static_cast<std::size_t>(n_out) * rank, 0.0f);
    }
  }
  return a;
}

std::size_t LoraAdapter::parameter_count() const {
  std::size_t n = 0;
  for (const auto& layer : layers)
    for (const auto& m : layer) n += m.a.size() + m.b.size();
  return n;
}

void LoraAdapter::save(const std::filesystem::path& path) const {
  GgufWriter w;
  w.add_string("general.type", "adapter");
  w.add_string("general.architecture", architecture);
  w.add_string("adapter.type", "lora");
  w.add_f32("adapter.lora.alpha", alpha);
  w.add_u32("chatrec.lora.rank", static_cast<std::uint32_t>(rank));
  for (const auto& [k, v] : info) w.add_string("chatrec." + k, v);
  for (std::size_t l = 0; l < layers.size(); ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const LoraMatrix& m = layers[l][static_cast<std::size_t>(t)];
      if (m.empty()) continue;
      const std::string base = tensor_name(static_cast<int>(l), static_cast<LoraTarget>(t));
      w.add_f32_tensor(base + ".lora_a", {m.n_in, m.rank}, m.a.data(), m.a.size());
      w.add_f32_tensor(base + ".lora_b", {m.rank, m.n_out}, m.b.data(), m.b.size());
    }
  }
  // Written beside the target and renamed, so a crash never leaves a half-written adapter.
  const std::filesystem::path tmp = path.string() + ".tmp";
  w.write(tmp);
  std::filesystem::rename(tmp, path);
}

LoraAdapter LoraAdapter::load(const std::filesystem::path& path, const Model& base) {
  return load(GgufFile::open(path), base);
}

LoraAdapter LoraAdapter::load(const GgufFile& f, const Model& base) {
  const std::string& name = f.name();
  if (f.get_string("general.type", "") != "adapter" || f.get_string("adapter.type", "") != "lora")
    throw GgufError(name +
                    ": not a LoRA adapter (general.type must be 'adapter' and adapter.type "
                    "'lora')");
  const ModelConfig& c = base.config();
  LoraAdapter a;
  a.architecture = f.get_string("general.architecture");
  if (a.architecture != c.arch)
    throw GgufError(name + ": adapter for architecture '" + a.architecture +
                    "', but the base model is '" + c.arch + "'");
  a.alpha = static_cast<float>(f.get_float("adapter.lora.alpha", 0.0));
  a.layers.resize(static_cast<std::size_t>(c.n_layer));
  for (const auto& [key, value] : f.metadata()) {
    if (key.rfind("chatrec.", 0) == 0 && value.type == GgufValueType::kString)
      a.info[key.substr(8)] = value.str;
  }
  int count = 0;
  for (const GgufTensor& t : f.tensors()) {
    const bool is_a = t.name.ends_with(".lora_a"), is_b = t.name.ends_with(".lora_b");
    if (!is_a && !is_b) throw GgufError(name + ": unexpected tensor " + t.name);
    if (!is_a) continue;
    const std::string base_name = t.name.substr(0, t.name.size() - 7);
    int layer = -1;
    LoraTarget target{};
    bool matched = false;
    for (int l = 0; l < c.n_layer && !matched; ++l) {
      for (int k = 0; k < kLoraTargets; ++k) {
        if (base_name == tensor_name(l, static_cast<LoraTarget>(k))) {
          layer = l;
          target = static_cast<LoraTarget>(k);
          matched = true;
          break;
        }
      }
    }
    if (!matched)
      throw GgufError(name + ": tensor " + t.name + " adapts no tensor of the base model");
    const GgufTensor* tb = f.tensor(base_name + ".lora_b");
    if (!tb) throw GgufError(name + ": tensor " + base_name + ".lora_b is missing");
    const auto [n_in, n_out] = projection_shape(c, target);
    if (t.type != GgmlType::F32 || tb->type != GgmlType::F32)
      throw GgufError(name + ": tensor " + base_name + ": LoRA tensors must be F32");
    if (t.dims.size() != 2 || tb->dims.size() != 2 || t.dims[0] != n_in || tb->dims[1] != n_out ||
        t.dims[1] != tb->dims[0] || t.dims[1] < 1)
      throw GgufError(name + ": tensor " + base_name +
                      ": shape does not fit the base model (expected lora_a [" +
                      std::to_string(n_in) + ", r] and lora_b [r, " + std::to_string(n_out) + "])");
    const int rank = static_cast<int>(t.dims[1]);
    if (a.rank == 0) a.rank = rank;
    if (rank != a.rank)
      throw GgufError(name + ": tensor " + base_name + ": rank " + std::to_string(rank) +
                      " differs from the adapter's rank " + std::to_string(a.rank));
    LoraMatrix& m = a.layers[static_cast<std::size_t>(layer)][static_cast<std::size_t>(target)];
    m.n_in = n_in;
    m.n_out = n_out;
    m.rank = rank;
    m.a.resize(static_cast<std::size_t>(rank) * n_in);
    m.b.resize(static_cast<std::size_t>(n_out) * rank);
    std::memcpy(m.a.data(), t.data, m.a.size() * sizeof(float));
    std::memcpy(m.b.data(), tb->data, m.b.size() * sizeof(float));
    ++count;
  }
  if (count == 0) throw GgufError(name + ": the adapter has no LoRA tensors");
  // llama.cpp's convention: an adapter without alpha uses alpha = rank (scale 1).
  if (a.alpha == 0.0f) a.alpha = static_cast<float>(a.rank);
  return a;
}

}  // namespace chatrec::llm::runtime
