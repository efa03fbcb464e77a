#!/usr/bin/env python3
"""Writes the binary seeds of the gguf and lora fuzz targets (tests/fuzz/corpus/{gguf,lora}/).

Small hand-made GGUF files: tokenizer-only vocabularies of both kinds, every metadata type with a
few tensors, version 2, a truncated file, and a LoRA adapter for the harness's tiny llama model
(2 layers, n_embd 32, n_ff 48, 4 heads of 8, 2 KV heads). Run it from anywhere; it overwrites the
seeds it owns and leaves the other corpus files (crash regressions) alone. The seeds have no .gguf
extension: the repository ignores *.gguf so that no model file is committed by accident.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
          U64: "<Q", I64: "<q", F64: "<d"}


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STR:
        return gguf_str(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(value(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def gguf(kvs, tensors=(), version=3, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, dims, ggml_type, data bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, t, v in kvs:
        out += gguf_str(key) + struct.pack("<I", t) + value(t, v)
    offset = 0
    infos, blobs = b"", b""
    for name, dims, gtype, data in tensors:
        infos += gguf_str(name) + struct.pack("<I", len(dims)) + b"".join(
            struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", gtype, offset)
        pad = (-len(data)) % alignment
        blobs += data + b"\0" * pad
        offset += len(data) + pad
    out += infos
    out += b"\0" * ((-len(out)) % alignment)
    return out + blobs


def f32s(values):
    return b"".join(struct.pack("<f", x) for x in values)


def write(target, name, data):
    path = os.path.join(HERE, "corpus", target, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


bpe = gguf([
    ("tokenizer.ggml.model", STR, "gpt2"),
    ("tokenizer.ggml.pre", STR, "smollm"),
    ("tokenizer.ggml.tokens", ARR, (STR, ["<|endoftext|>", "<|im_start|>", "a", "b", "\u0120", "ab",
                                         "\u0120a", "1", "x"])),
    ("tokenizer.ggml.token_type", ARR, (I32, [3, 3, 1, 1, 1, 1, 1, 1, 4])),
    ("tokenizer.ggml.merges", ARR, (STR, ["a b", "\u0120 a"])),
    ("tokenizer.ggml.bos_token_id", U32, 1),
    ("tokenizer.ggml.eos_token_id", U32, 0),
    ("tokenizer.ggml.add_bos_token", BOOL, 0),
])
spm = gguf([
    ("tokenizer.ggml.model", STR, "llama"),
    ("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>", "<0x41>", "\u2581", "h", "i",
                                         "hi", "\u2581hi"])),
    ("tokenizer.ggml.scores", ARR, (F32, [0, 0, 0, 0, -1, -2, -2, -3, -4])),
    ("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3, 6, 1, 1, 1, 1, 1])),
    ("tokenizer.ggml.add_space_prefix", BOOL, 1),
])
every_type = [
    ("general.architecture", STR, "llama"), ("general.alignment", U32, 32),
    ("k.u8", U8, 7), ("k.i8", I8, -7), ("k.u16", U16, 700), ("k.i16", I16, -700),
    ("k.i32", I32, -70000), ("k.f32", F32, 0.5), ("k.bool", BOOL, 1), ("k.u64", U64, 1 << 40),
    ("k.i64", I64, -(1 << 40)), ("k.f64", F64, 2.25), ("k.arr", ARR, (U8, [1, 2, 3])),
    ("k.strs", ARR, (STR, ["x", ""])),
]
tensors = [("t.f32", [4], 0, f32s([1, 2, 3, 4])),
           ("t.f16", [8, 2], 1, b"\0\x3c" * 16),
           ("t.q8_0", [32], 8, b"\0\x3c" + bytes(range(32)))]
write("gguf", "tokenizer-bpe", bpe)
write("gguf", "tokenizer-spm", spm)
write("gguf", "every-type", gguf(every_type, tensors))
write("gguf", "version2", gguf(every_type[:3], tensors[:1], version=2))
write("gguf", "truncated", gguf(every_type, tensors)[:-40])
write("gguf", "empty-v3", gguf([]))

N_EMBD, N_FF, KV = 32, 48, 16


def lora_pair(layer, proj, n_in, n_out, rank):
    base = "blk.%d.%s.weight" % (layer, proj)
    return [(base + ".lora_a", [n_in, rank], 0, f32s([0.01 * i for i in range(n_in * rank)])),
            (base + ".lora_b", [rank, n_out], 0, f32s([-0.02 * i for i in range(rank * n_out)]))]


adapter_kvs = [("general.type", STR, "adapter"), ("general.architecture", STR, "llama"),
               ("adapter.type", STR, "lora"), ("adapter.lora.alpha", F32, 2.0),
               ("chatrec.lora.rank", U32, 1), ("chatrec.recipe", STR, "fuzz seed")]
write("lora", "q-and-v", gguf(adapter_kvs, lora_pair(0, "attn_q", N_EMBD, N_EMBD, 1) +
                                   lora_pair(1, "attn_v", N_EMBD, KV, 1)))
write("lora", "down-rank2-no-alpha",
      gguf([kv for kv in adapter_kvs if kv[0] != "adapter.lora.alpha"],
           lora_pair(1, "ffn_down", N_FF, N_EMBD, 2)))
write("lora", "wrong-shape", gguf(adapter_kvs, lora_pair(0, "attn_k", N_EMBD, N_EMBD, 1)))
