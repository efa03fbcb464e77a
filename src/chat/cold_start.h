#pragma once
// Text-embedding retrieval for items the recommender cannot score: items added without interactions
// (cold start) and, for cross-domain requests, a domain's most popular items. Item text (title,
// categories, year, description) is embedded with the configured LanguageModel::embed; vectors are
// cached by (model name, text hash) in memory and in the store's embedding cache, and searched with
// a FAISS inner-product index over the L2-normalised vectors (cosine similarity).
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "chat/types.h"
#include "data/dataset.h"
#include "llm/language_model.h"

namespace faiss {
struct IndexFlatIP;
}
namespace chatrec::store {
class Store;
}

namespace chatrec::chat {

// "Title: ... | Categories: ... | Year: ... | Description: ..." — what gets embedded for an item.
std::string item_text(const data::Item& item);

class EmbeddingCache {
 public:
  EmbeddingCache(std::shared_ptr<llm::LanguageModel> lm, std::shared_ptr<store::Store> store);
  // One normalised vector per text; only texts not cached are sent to the model (in batches).
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts, Stats* stats);
  static std::string key(const std::string& text);  // hex of fnv1a64

 private:
  std::shared_ptr<llm::LanguageModel> lm_;
  std::shared_ptr<store::Store> store_;
  std::mutex mutex_;
  std::map<std::string, std::vector<float>> memory_;
};

struct RetrievedItem {
  data::ItemIndex item;
  float similarity;
  bool cold;
};

class ColdStartIndex {
 public:
  ColdStartIndex(std::shared_ptr<llm::LanguageModel> lm, std::shared_ptr<store::Store> store);
  ~ColdStartIndex();

  // Embeds and indexes items of a domain (already indexed ones are skipped). `cold` marks items
  // without interactions (they are retrieved for every request); the others only serve cross-domain
  // requests.
  void add(const std::string& domain,
           const std::vector<std::pair<data::ItemIndex, data::Item>>& items, bool cold,
           Stats* stats);
  bool contains(const std::string& domain, data::ItemIndex item) const;
  std::size_t size(const std::string& domain, bool cold_only) const;

  std::vector<float> embed_query(const std::string& text, Stats* stats);
  // The k most similar indexed items of the domain passing `keep` (cold ones only when cold_only).
  std::vector<RetrievedItem> search(const std::string& domain, const std::vector<float>& query,
                                    std::size_t k, bool cold_only,
                                    const std::function<bool(data::ItemIndex)>& keep) const;

 private:
  struct DomainIndex;
  EmbeddingCache cache_;
  int dim_ = 0;
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<DomainIndex>> domains_;
};

}  // namespace chatrec::chat
