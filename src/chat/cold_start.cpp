#include "chat/cold_start.h"

#include <faiss/IndexFlat.h>

#include <algorithm>
#include <chrono>
#include <cmath>

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

struct ColdStartIndex::DomainIndex {
  explicit DomainIndex(int dim) : index(dim) {}
  faiss::IndexFlatIP index;
  std::vector<data::ItemIndex> items;  // faiss label -> item
  std::vector<bool> cold;
  std::set<data::ItemIndex> present;
};

// The vector size is learnt from the first embeddings rather than asked at construction, so an
// engine whose LLM is down at start-up still opens.
ColdStartIndex::ColdStartIndex(std::shared_ptr<llm::LanguageModel> lm,
                               std::shared_ptr<store::Store> store)
    : cache_(std::move(lm), std::move(store)) {}

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
  if (added > 0) d.index.add(static_cast<faiss::Index::idx_t>(added), flat.data());
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

std::vector<RetrievedItem> ColdStartIndex::search(
    const std::string& domain, const std::vector<float>& query, std::size_t k, bool cold_only,
    const std::function<bool(data::ItemIndex)>& keep) const {
  std::lock_guard lock(mutex_);
  std::vector<RetrievedItem> out;
  auto it = domains_.find(domain);
  if (it == domains_.end() || it->second->items.empty() || static_cast<int>(query.size()) != dim_)
    return out;
  auto& d = *it->second;
  // Exhaustive: filters are applied after the search, so ask for everything (the indexes are
  // small).
  const faiss::Index::idx_t n = static_cast<faiss::Index::idx_t>(d.items.size());
  std::vector<float> distances(n);
  std::vector<faiss::Index::idx_t> labels(n);
  d.index.search(1, query.data(), n, distances.data(), labels.data());
  for (faiss::Index::idx_t j = 0; j < n && out.size() < k; ++j) {
    if (labels[j] < 0) continue;
    const auto label = static_cast<std::size_t>(labels[j]);
    if (cold_only && !d.cold[label]) continue;
    if (keep && !keep(d.items[label])) continue;
    out.push_back({d.items[label], distances[j], d.cold[label]});
  }
  return out;
}

}  // namespace chatrec::chat
