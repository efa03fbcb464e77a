#pragma once
// Text-embedding retrieval for items the recommender cannot score: items added without interactions
// (cold start) and, for cross-domain requests, a domain's most popular items. Item text (title,
// categories, year, description) is embedded with the configured LanguageModel::embed; vectors are
// cached by (model name, text hash) in memory and in the store's embedding cache, and searched with
// a FAISS inner-product index over the L2-normalised vectors (cosine similarity).
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "chat/types.h"
#include "data/dataset.h"
#include "llm/language_model.h"

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

// Past `min_items` vectors a domain's exhaustive index becomes an inverted-file one (FAISS
// IVF-Flat, about 4·sqrt(n) lists): a search then scans a few lists instead of every vector. How
// many lists it scans (nprobe) is calibrated when the index is built, against the exhaustive
// search it replaces, until recall@10 reaches `target_recall` on `calibration_queries` of the
// indexed vectors; a filtered search that finds fewer than k items scans every list.
struct ApproximateSearch {
  std::size_t min_items = 100000;
  double target_recall = 0.95;
  std::size_t calibration_queries = 200;
};

// How a domain's vectors are searched.
struct IndexDescription {
  std::size_t vectors = 0;
  bool approximate = false;
  std::size_t lists = 0;
  std::size_t probes = 0;
  double calibrated_recall = 1.0;  // recall@10 against the exhaustive search when it was built
  double build_seconds = 0.0;
};

class ColdStartIndex {
 public:
  ColdStartIndex(std::shared_ptr<llm::LanguageModel> lm, std::shared_ptr<store::Store> store,
                 ApproximateSearch approximate = {});
  ~ColdStartIndex();

  // Embeds and indexes items of a domain (already indexed ones are skipped). `cold` marks items
  // without interactions (they are retrieved for every request); the others only serve cross-domain
  // requests.
  // Returns false when the LLM could not embed them: they wait (pending()) for index_pending().
  bool add(const std::string& domain,
           const std::vector<std::pair<data::ItemIndex, data::Item>>& items, bool cold,
           Stats* stats);
  // Items waiting for the LLM to embed them.
  std::size_t pending() const;
  // Tries the waiting items again, at most once per `min_interval_seconds` (turns call it, and a
  // dead LLM should not cost every turn a failed call). True when nothing is left waiting.
  bool index_pending(Stats* stats, double min_interval_seconds = 30.0);
  bool contains(const std::string& domain, data::ItemIndex item) const;
  std::size_t size(const std::string& domain, bool cold_only) const;

  IndexDescription describe(const std::string& domain) const;

  std::vector<float> embed_query(const std::string& text, Stats* stats);
  // The k most similar indexed items of the domain passing `keep` (cold ones only when cold_only).
  std::vector<RetrievedItem> search(const std::string& domain, const std::vector<float>& query,
                                    std::size_t k, bool cold_only,
                                    const std::function<bool(data::ItemIndex)>& keep) const;

 private:
  struct DomainIndex;
  struct Pending {
    std::string domain;
    std::vector<std::pair<data::ItemIndex, data::Item>> items;
    bool cold = true;
  };
  EmbeddingCache cache_;
  ApproximateSearch approximate_;
  int dim_ = 0;  // learnt from the first embeddings
  std::vector<Pending> pending_;
  std::optional<std::chrono::steady_clock::time_point> last_retry_;
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<DomainIndex>> domains_;
};

}  // namespace chatrec::chat
