#pragma once
// Element-wise activations of the forward pass, computed the way llama.cpp's CPU backend computes
// them so that greedy decoding follows llama.cpp's choices even where two tokens nearly tie.
#include <cstddef>

namespace chatrec::llm::runtime {

// exp(x) through the polynomial approximation ggml's vectorised SiLU uses (range reduction by
// ln 2, degree-5 polynomial, exact scaling by 2^n; maximum error ~1.5 ulp). Returns 0 below about
// -103.97, infinity above about 88.38.
float exp_approx(float x);

// y[i] = exp_approx(x[i]) (AVX2 when available, identical results); y may alias x.
void exp_approx_n(const float* x, float* y, std::size_t n);

// out[i] = silu(gate[i]) * up[i] with silu(x) = x / (1 + exp_approx(-x)), as ggml's SwiGLU. The
// AVX2 and scalar paths give identical results; out may alias gate or up.
void swiglu(const float* gate, const float* up, float* out, std::size_t n);

// GELU with the tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in float.
float gelu_tanh(float x);
// out[i] = gelu(gate[i]) * up[i] as ggml's GeGLU computes it: the gate rounded to fp16 indexes a
// table of fp16-rounded GELU values (0 below -10, the identity above 10). out may alias.
void geglu(const float* gate, const float* up, float* out, std::size_t n);

}  // namespace chatrec::llm::runtime
