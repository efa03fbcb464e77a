#include "chat/cold_start.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/IDSelector.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "common/hash.h"
#include "common/text.h"
#include "store/store.h"

namespace chatrec::chat {

namespace {

constexpr std::size_t kEmbedBatch = 16;

void normalise(std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  if (n <= 0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(n));
  for (float& x : v) x *= inv;
}

}  // namespace

std::string item_text(const data::Item& item) {
  std::string s = "Title: " + item.title;
  if (!item.categories.empty()) s += " | Categories: " + text::join(item.categories, ", ");
  if (item.year > 0) s += " | Year: " + std::to_string(item.year);
  auto it = item.text.find("description");
  if (it != item.text.end() && !it->second.empty())
    s += " | Description: " + it->second.substr(0, 400);
  return s;
}

EmbeddingCache::EmbeddingCache(std::shared_ptr<llm::LanguageModel> lm,
                               std::shared_ptr<store::Store> store)
    : lm_(std::move(lm)), store_(std::move(store)) {}

std::string EmbeddingCache::key(const std::string& text) {
  return hash::hex64(hash::fnv1a64(text));
}

std::vector<std::vector<float>> EmbeddingCache::embed(const std::vector<std::string>& texts,
                                                      Stats* stats) {
  const std::string model = lm_->name();
  std::vector<std::vector<float>> out(texts.size());
  std::vector<std::size_t> missing;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const std::string k = key(texts[i]);
      if (auto it = memory_.find(k); it != memory_.end()) {
        out[i] = it->second;
      } else if (store_) {
        if (auto v = store_->get_embedding(model, k)) {
          memory_[k] = *v;
          out[i] = std::move(*v);
        } else {
          missing.push_back(i);
        }
      } else {
        missing.push_back(i);
      }
    }
  }
  for (std::size_t b = 0; b < missing.size(); b += kEmbedBatch) {
    std::vector<std::string> batch;
    for (std::size_t j = b; j < std::min(missing.size(), b + kEmbedBatch); ++j)
      batch.push_back(texts[missing[j]]);
    const llm::Usage before = lm_->total_usage();
    auto vectors = lm_->embed(batch);
    if (vectors.size() != batch.size()) {
      throw llm::LlmError(llm::LlmError::Kind::kBadResponse,
                          "embed() returned the wrong number of vectors");
    }
    if (stats) {
      const llm::Usage after = lm_->total_usage();
      stats->tokens_in += after.prompt_tokens - before.prompt_tokens;
      stats->llm_calls += 1;
    }
    std::vector<std::pair<std::string, std::vector<float>>> to_store;
    std::lock_guard lock(mutex_);
    for (std::size_t j = 0; j < batch.size(); ++j) {
      normalise(vectors[j]);
      const std::string k = key(batch[j]);
      memory_[k] = vectors[j];
      out[missing[b + j]] = vectors[j];
      to_store.emplace_back(k, vectors[j]);
    }
    if (store_) store_->put_embeddings(model, to_store);
  }
  return out;
}

namespace {

using Label = faiss::Index::idx_t;

// A search filter over FAISS labels (FAISS asks it for each candidate vector it scans).
struct LabelFilter : faiss::IDSelector {
  explicit LabelFilter(std::function<bool(Label)> keep) : keep(std::move(keep)) {}
  bool is_member(Label id) const override { return keep(id); }
  std::function<bool(Label)> keep;
};

// The k-th best similarity of each query, exhaustively (the bar an approximate result must reach
// to count as found: counting by similarity, ties between equal vectors are not misses).
std::vector<float> kth_similarity(const faiss::IndexFlatIP& flat, const float* queries,
                                  std::size_t nq, std::size_t k) {
  std::vector<float> distances(nq * k);
  std::vector<Label> labels(nq * k);
  flat.search(static_cast<Label>(nq), queries, static_cast<Label>(k), distances.data(),
              labels.data());
  std::vector<float> out(nq);
  for (std::size_t q = 0; q < nq; ++q) out[q] = distances[q * k + k - 1];
  return out;
}

}  // namespace

struct ColdStartIndex::DomainIndex {
  explicit DomainIndex(int dim) : flat(std::make_unique<faiss::IndexFlatIP>(dim)) {}
  // Exactly one of the two holds the vectors: the exhaustive index until the domain passes
  // ApproximateSearch::min_items, then the inverted-file one (the vectors move, not copied).
  std::unique_ptr<faiss::IndexFlatIP> flat;
  std::unique_ptr<faiss::IndexFlatIP> quantizer;
  std::unique_ptr<faiss::IndexIVFFlat> ivf;
  IndexDescription description;
  std::vector<data::ItemIndex> items;  // faiss label -> item
  std::vector<bool> cold;
  std::set<data::ItemIndex> present;

  faiss::Index& index() {
    if (ivf) return *ivf;
    return *flat;
  }

  // Replaces the exhaustive index by an IVF-Flat one and calibrates its nprobe against it.
  void make_approximate(const ApproximateSearch& a) {
    const auto t0 = std::chrono::steady_clock::now();
    const int dim = flat->d;
    const std::size_t n = static_cast<std::size_t>(flat->ntotal);
    const std::size_t lists = std::clamp<std::size_t>(
        static_cast<std::size_t>(4.0 * std::sqrt(static_cast<double>(n))), 16, 65536);
    quantizer = std::make_unique<faiss::IndexFlatIP>(dim);
    ivf = std::make_unique<faiss::IndexIVFFlat>(quantizer.get(), dim, lists,
                                                faiss::METRIC_INNER_PRODUCT);
    ivf->cp.seed = 2023;  // k-means samples its training points; the same index every time
    const float* xb = flat->get_xb();
    ivf->train(static_cast<Label>(n), xb);
    ivf->add(static_cast<Label>(n), xb);

    // Calibration queries: indexed vectors drawn with a fixed seed; their exact top 10 first.
    constexpr std::size_t kRecallAt = 10;
    const std::size_t nq = std::min(a.calibration_queries, n);
    std::vector<std::size_t> ids(n);
    std::iota(ids.begin(), ids.end(), 0);
    std::mt19937_64 rng(2023);
    std::shuffle(ids.begin(), ids.end(), rng);
    std::vector<float> queries(nq * static_cast<std::size_t>(dim));
    for (std::size_t q = 0; q < nq; ++q)
      std::copy_n(xb + ids[q] * static_cast<std::size_t>(dim), dim,
                  queries.begin() + static_cast<std::ptrdiff_t>(q * static_cast<std::size_t>(dim)));
    const std::size_t k = std::min(kRecallAt, n);
    const std::vector<float> bar = kth_similarity(*flat, queries.data(), nq, k);
    std::size_t probes = 1;
    double recall = 0.0;
    for (;; probes = std::min(lists, probes * 2)) {
      faiss::SearchParametersIVF params;
      params.nprobe = probes;
      std::vector<float> distances(nq * k);
      std::vector<Label> labels(nq * k);
      ivf->search(static_cast<Label>(nq), queries.data(), static_cast<Label>(k), distances.data(),
                  labels.data(), &params);
      std::size_t hits = 0;
      for (std::size_t q = 0; q < nq; ++q)
        for (std::size_t j = 0; j < k; ++j)
          hits += labels[q * k + j] >= 0 && distances[q * k + j] >= bar[q] - 1e-5f ? 1 : 0;
      recall = nq == 0 ? 1.0 : static_cast<double>(hits) / static_cast<double>(nq * k);
      if (recall >= a.target_recall || probes == lists) break;
    }
    ivf->nprobe = probes;
    flat.reset();
    description.approximate = true;
    description.lists = lists;
    description.probes = probes;
    description.calibrated_recall = recall;
    description.build_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
};

// The vector size is learnt from the first embeddings rather than asked at construction, so an
// engine whose LLM is down at start-up still opens.
ColdStartIndex::ColdStartIndex(std::shared_ptr<llm::LanguageModel> lm,
                               std::shared_ptr<store::Store> store, ApproximateSearch approximate)
    : cache_(std::move(lm), std::move(store)), approximate_(approximate) {}

ColdStartIndex::~ColdStartIndex() = default;

bool ColdStartIndex::add(const std::string& domain,
                         const std::vector<std::pair<data::ItemIndex, data::Item>>& items,
                         bool cold, Stats* stats) {
  std::vector<std::pair<data::ItemIndex, data::Item>> todo;
  {
    std::lock_guard lock(mutex_);
    auto it = domains_.find(domain);
    for (const auto& item : items) {
      if (it == domains_.end() || !it->second->present.count(item.first)) todo.push_back(item);
    }
  }
  if (todo.empty()) return true;
  std::vector<std::string> texts;
  for (const auto& [i, item] : todo) texts.push_back(item_text(item));
  std::vector<std::vector<float>> vectors;
  try {
    vectors = cache_.embed(texts, stats);
  } catch (const llm::LlmError&) {
    std::lock_guard lock(mutex_);
    pending_.push_back({domain, std::move(todo), cold});
    return false;
  }
  std::lock_guard lock(mutex_);
  if (dim_ == 0 && !vectors.empty()) dim_ = static_cast<int>(vectors.front().size());
  auto& slot = domains_[domain];
  if (!slot) slot = std::make_unique<DomainIndex>(dim_);
  auto& d = *slot;
  std::vector<float> flat;
  std::size_t added = 0;
  for (std::size_t j = 0; j < todo.size(); ++j) {
    if (d.present.count(todo[j].first) || static_cast<int>(vectors[j].size()) != dim_) continue;
    flat.insert(flat.end(), vectors[j].begin(), vectors[j].end());
    d.items.push_back(todo[j].first);
    d.cold.push_back(cold);
    d.present.insert(todo[j].first);
    ++added;
  }
  if (added > 0) d.index().add(static_cast<Label>(added), flat.data());
  if (!d.ivf && d.items.size() >= approximate_.min_items) d.make_approximate(approximate_);
  return true;
}

std::size_t ColdStartIndex::pending() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& p : pending_) n += p.items.size();
  return n;
}

bool ColdStartIndex::index_pending(Stats* stats, double min_interval_seconds) {
  std::vector<Pending> todo;
  {
    std::lock_guard lock(mutex_);
    if (pending_.empty()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (last_retry_ && now - *last_retry_ < std::chrono::duration<double>(min_interval_seconds))
      return false;
    last_retry_ = now;
    todo.swap(pending_);
  }
  bool all = true;
  for (auto& p : todo) all = add(p.domain, p.items, p.cold, stats) && all;  // failures re-queue
  return all;
}

bool ColdStartIndex::contains(const std::string& domain, data::ItemIndex item) const {
  std::lock_guard lock(mutex_);
  auto it = domains_.find(domain);
  return it != domains_.end() && it->second->present.count(item) > 0;
}

std::size_t ColdStartIndex::size(const std::string& domain, bool cold_only) const {
  std::lock_guard lock(mutex_);
  auto it = domains_.find(domain);
  if (it == domains_.end()) return 0;
  if (!cold_only) return it->second->items.size();
  return static_cast<std::size_t>(
      std::count(it->second->cold.begin(), it->second->cold.end(), true));
}

std::vector<float> ColdStartIndex::embed_query(const std::string& text, Stats* stats) {
  return cache_.embed({text}, stats).front();
}

IndexDescription ColdStartIndex::describe(const std::string& domain) const {
  std::lock_guard lock(mutex_);
  auto it = domains_.find(domain);
  if (it == domains_.end()) return {};
  IndexDescription d = it->second->description;
  d.vectors = it->second->items.size();
  return d;
}

std::vector<RetrievedItem> ColdStartIndex::search(
    const std::string& domain, const std::vector<float>& query, std::size_t k, bool cold_only,
    const std::function<bool(data::ItemIndex)>& keep) const {
  std::lock_guard lock(mutex_);
  std::vector<RetrievedItem> out;
  auto it = domains_.find(domain);
  if (it == domains_.end() || it->second->items.empty() || static_cast<int>(query.size()) != dim_ ||
      k == 0)
    return out;
  auto& d = *it->second;
  const Label n = static_cast<Label>(d.items.size());
  auto passes = [&](Label label) {
    const auto l = static_cast<std::size_t>(label);
    return (!cold_only || d.cold[l]) && (!keep || keep(d.items[l]));
  };
  if (!d.ivf) {
    // Exhaustive: filters are applied after the search, so ask for everything (this index is
    // small by construction).
    std::vector<float> distances(static_cast<std::size_t>(n));
    std::vector<Label> labels(static_cast<std::size_t>(n));
    d.flat->search(1, query.data(), n, distances.data(), labels.data());
    for (Label j = 0; j < n && out.size() < k; ++j) {
      if (labels[j] < 0 || !passes(labels[j])) continue;
      const auto label = static_cast<std::size_t>(labels[j]);
      out.push_back({d.items[label], distances[j], d.cold[label]});
    }
    return out;
  }
  // Inverted file: the filter runs inside the scan, so the k results are k items that pass.
  LabelFilter filter(passes);
  const Label want = static_cast<Label>(std::min<std::size_t>(k, d.items.size()));
  std::vector<float> distances(static_cast<std::size_t>(want));
  std::vector<Label> labels(static_cast<std::size_t>(want));
  for (std::size_t probes = d.ivf->nprobe;; probes = d.ivf->nlist) {
    faiss::SearchParametersIVF params;
    params.nprobe = probes;
    params.sel = &filter;
    d.ivf->search(1, query.data(), want, distances.data(), labels.data(), &params);
    const bool full = std::none_of(labels.begin(), labels.end(), [](Label l) { return l < 0; });
    // A strict filter can leave the probed lists short of k items: scan them all.
    if (full || probes >= d.ivf->nlist) break;
  }
  for (Label j = 0; j < want; ++j) {
    if (labels[j] < 0) continue;
    const auto label = static_cast<std::size_t>(labels[j]);
    out.push_back({d.items[label], distances[j], d.cold[label]});
  }
  return out;
}

}  // namespace chatrec::chat
