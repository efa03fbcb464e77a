// Reference data for gemma3_real_test.cpp: llama.cpp's greedy continuation of each prompt, with
// the margin between its best and second-best logit at every step. Built against a llama.cpp
// build outside this repository (docs/llm-runtime.md, "Gemma 3 270M"), never by chatrec's CMake:
//
//   c++ -std=c++17 -O1 -I$LLAMA/include -I$LLAMA/ggml/include greedy_margins.cpp \
//       -L$BUILD/bin -lllama -lggml -lggml-base -Wl,-rpath,$BUILD/bin -o greedy_margins
//   ./greedy_margins MODEL.gguf 32 "The capital of France is" "Once upon a time" ...
//
// Prints per prompt "prompt: IDS" (with BOS) and "gen: ID(MARGIN) ...". Weights are not repacked
// (llama.cpp's plain vec_dot kernels, the ones chatrec's follow).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL.gguf N PROMPT...\n", argv[0]);
    return 2;
  }
  llama_backend_init();
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_model_params mp = llama_model_default_params();
  mp.use_extra_bufts = false;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_gen = std::atoi(argv[2]);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 1024;
  cp.n_threads = cp.n_threads_batch = 2;
  for (int a = 3; a < argc; ++a) {
    llama_context* ctx = llama_init_from_model(model, cp);
    const std::string prompt = argv[a];
    const int n = -llama_tokenize(vocab, prompt.c_str(), static_cast<int>(prompt.size()), nullptr,
                                  0, true, true);
    std::vector<llama_token> tokens(static_cast<std::size_t>(n));
    llama_tokenize(vocab, prompt.c_str(), static_cast<int>(prompt.size()), tokens.data(), n, true,
                   true);
    std::printf("prompt:");
    for (llama_token t : tokens) std::printf(" %d", t);
    std::printf("\ngen:");
    llama_decode(ctx, llama_batch_get_one(tokens.data(), static_cast<int>(tokens.size())));
    for (int i = 0; i < n_gen; ++i) {
      const float* logits = llama_get_logits_ith(ctx, -1);
      llama_token best =
          static_cast<llama_token>(std::max_element(logits, logits + n_vocab) - logits);
      float second = -1e30f;
      for (int j = 0; j < n_vocab; ++j)
        if (j != best) second = std::max(second, logits[j]);
      std::printf(" %d(%.2f)", best, logits[best] - second);
      llama_decode(ctx, llama_batch_get_one(&best, 1));
    }
    std::printf("\n");
    llama_free(ctx);
  }
  llama_model_free(model);
  return 0;
}
