#pragma once
// Candidate generation: the base recommender's top-N under the conversation's constraints
// (genre/era filter, disliked and "not" items excluded) and feedback ("more like Y" anchors through
// fold-in when the model supports it, else item-item similarity added to the user's scores).
#include <optional>
#include <vector>

#include "chat/catalog.h"
#include "chat/types.h"

namespace chatrec::chat {

struct Candidate {
  data::ItemIndex item = 0;
  float score = 0.0f;  // base score (comparable within one list)
  Source source = Source::kCollaborative;
};

struct CandidateRequest {
  std::optional<data::UserIndex> user;  // the dataset's user, when linked and trained
  std::vector<data::ItemIndex>
      history;  // the user's items in this domain (for cold users and exclusion)
  Constraints constraints;
  std::vector<data::ItemIndex> anchors;   // liked in conversation / "like X"
  std::vector<data::ItemIndex> excluded;  // disliked / "not Y"
  std::size_t k = 20;
};

std::vector<Candidate> collaborative_candidates(const DomainCatalog& domain,
                                                const CandidateRequest& request);

// Count of content words (4+ letters, not stop words) the two texts share; a lexical check that a
// retrieved cold-start item really matches the request.
std::size_t shared_content_words(std::string_view a, std::string_view b);

}  // namespace chatrec::chat
