#!/usr/bin/env python3
"""Regenerates the reference token ids and greedy continuations hard-coded in runtime_real_model_test.cpp.

Usage: make_reference.py LLAMA_CPP_BIN_DIR MODEL.gguf
Runs llama.cpp's llama-tokenize (special tokens parsed, no BOS added since SmolLM2 sets add_bos=false) on every
string below, and llama-simple (greedy) for the continuation prompts; prints C++ initialisers.
"""
import json, os, subprocess, sys, tempfile

STRINGS = [
    "Hello world",
    "The capital of France is",
    "caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \U0001F642",
    "1234567 3.14159 -42",
    "  leading   and   trailing  \n\n\ttabs\t\n",
    "<|im_start|>user\nHi there!<|im_end|>\n",
    "I'm sure they'll say it's fine, won't they?",
    "def f(x):\n    return x**2  # square",
    "\u00dcn\u00efc\u00f6d\u00e9 \u00c5\u00c4\u00d6 \u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
    "email: foo.bar@example.com, url: https://example.org/a?b=c",
]

PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little",
    "The three primary colors are",
    "def fibonacci(n):",
    "Water boils at a temperature of",
    "The largest planet in our solar system is",
    "My favourite movie is",
    "To make a cup of tea, you first",
    "The quick brown fox",
    "In 1969, the first man to walk on the moon was",
]

# 64 tokens or more: llama.cpp runs these through its tiled flash attention (kLongContinuations).
LONG_PROMPTS = [
    "The history of cinema began in the late nineteenth century, when inventors in France and the United States built the first machines that could record and project moving images. Early films were short, silent and shown in fairgrounds and music halls. Within two decades, feature films, movie stars and large studios had appeared, and by the end of the 1920s synchronised sound changed the industry again. In the following decades, colour film, widescreen formats and television",
    "Recommender systems suggest items such as films, books or games to people. Classic methods learn from the ratings that many users gave to many items: neighbourhood methods compare users or items directly, while matrix factorization represents every user and every item by a short vector of learned factors. Large language models can now talk with the user, explain a recommendation and take new wishes into account, so researchers combine both kinds of model. In such a system, the",
]


def cpp(s):
    return json.dumps(s, ensure_ascii=False)


def main():
    bin_dir, model = sys.argv[1], sys.argv[2]
    print("// tokenizer references")
    for s in STRINGS:
        with tempfile.NamedTemporaryFile("wb", delete=False) as f:
            f.write(s.encode())
        out = subprocess.run([os.path.join(bin_dir, "llama-tokenize"), "-m", model, "-f", f.name, "--ids", "--log-disable", "--no-escape"],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        os.unlink(f.name)
        print("    {%s, {%s}}," % (cpp(s), out.strip("[]")))
    print("// greedy continuations (64 tokens)")
    for p in PROMPTS:
        out = subprocess.run([os.path.join(bin_dir, "llama-simple"), "-m", model, "-n", "64", p],
                             capture_output=True, text=True).stdout
        print("    {%s, %s}," % (cpp(p), cpp(out)))
    print("// long prompts (llama-simple ends its output with a newline of its own: dropped)")
    for p in LONG_PROMPTS:
        out = subprocess.run([os.path.join(bin_dir, "llama-simple"), "-m", model, "-n", "64", p],
                             capture_output=True, text=True).stdout
        print("    {%s, %s}," % (cpp(p), cpp(out[:-1] if out.endswith("\n") else out)))


if __name__ == "__main__":
    main()
