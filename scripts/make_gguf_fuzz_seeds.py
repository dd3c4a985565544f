#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/fuzz_gguf.cpp into fuzz/corpus/gguf: small but complete GGUF
v3 files (a 1-layer Llama in f16 and q8_0, the q8_0 one with a SentencePiece tokenizer, a
1-layer GPT-2 in q4_0 with BPE token lists, merges and an alignment key; each under fuzz_smoke.sh's 16 KiB -max_len), so the fuzzer starts from files
the import accepts. Standard library only; the block encodings are GGML's (blocks of 32 with
an f16 scale)."""
import os
import struct
import sys

ALIGN = 32
F32, F16, Q4_0, Q8_0 = 0, 1, 2, 8


def s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload


def u32(key, v):
    return kv(key, 4, struct.pack("<I", v))


def f32(key, v):
    return kv(key, 6, struct.pack("<f", v))


def string(key, v):
    return kv(key, 8, s(v))


def strings(key, values):
    return kv(key, 9, struct.pack("<IQ", 8, len(values)) + b"".join(s(v) for v in values))


def array(key, etype, fmt, values):
    return kv(key, 9, struct.pack("<IQ", etype, len(values)) + b"".join(struct.pack("<" + fmt, v) for v in values))


def values(n, seed):
    return [((i * 37 + seed * 11) % 17 - 8) / 64.0 for i in range(n)]


def encode(t, v):
    if t == F32:
        return struct.pack(f"<{len(v)}f", *v)
    if t == F16:
        return struct.pack(f"<{len(v)}e", *v)
    out = b""
    for b in range(0, len(v), 32):
        block = v[b:b + 32]
        if t == Q8_0:
            d = max(abs(x) for x in block) / 127
            q = [round(x / d) if d else 0 for x in block]
            out += struct.pack("<e32b", d, *q)
        else:
            m = max(block, key=abs)
            d = m / -8
            q = [min(15, int(x / d + 8.5)) if d else 8 for x in block]
            out += struct.pack("<e", d) + bytes(q[j] | (q[j + 16] << 4) for j in range(16))
    return out


def gguf(metadata, tensors):
    infos, data = b"", b""
    for name, shape, t in tensors:
        n = 1
        for d in shape:
            n *= d
        ty = t if len(shape) > 1 else F32
        blob = encode(ty, values(n, len(infos)))
        data += b"\0" * (-len(data) % ALIGN)
        infos += s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in reversed(shape))
        infos += struct.pack("<IQ", ty, len(data))
        data += blob
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)) + b"".join(metadata) + infos
    return head + b"\0" * (-len(head) % ALIGN) + data


def llama(t, tokenizer=False):
    md = [string("general.architecture", "llama"), u32("llama.embedding_length", 32),
          u32("llama.feed_forward_length", 32), u32("llama.block_count", 1), u32("llama.attention.head_count", 2),
          u32("llama.attention.head_count_kv", 1), u32("llama.context_length", 8),
          f32("llama.attention.layer_norm_rms_epsilon", 1e-5), f32("llama.rope.freq_base", 10000.0),
          u32("llama.rope.dimension_count", 16)]
    if tokenizer:  # llama.cpp's SentencePiece ("llama") tokenizer: pieces, scores, types
        md += [string("tokenizer.ggml.model", "llama"),
               strings("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "\u2581a"]),
               array("tokenizer.ggml.scores", 6, "f", [0.0, 0.0, 0.0, -1.0]),
               array("tokenizer.ggml.token_type", 5, "i", [2, 3, 3, 1]), u32("tokenizer.ggml.bos_token_id", 1),
               u32("tokenizer.ggml.eos_token_id", 2), u32("tokenizer.ggml.unknown_token_id", 0)]
    ts = [("token_embd.weight", (4, 32), t), ("output_norm.weight", (32,), t), ("output.weight", (4, 32), t),
          ("blk.0.attn_norm.weight", (32,), t), ("blk.0.attn_q.weight", (32, 32), t),
          ("blk.0.attn_k.weight", (16, 32), t), ("blk.0.attn_v.weight", (16, 32), t),
          ("blk.0.attn_output.weight", (32, 32), t), ("blk.0.ffn_norm.weight", (32,), t),
          ("blk.0.ffn_gate.weight", (32, 32), t), ("blk.0.ffn_up.weight", (32, 32), t),
          ("blk.0.ffn_down.weight", (32, 32), t)]
    return gguf(md, ts)


def gpt2(t):
    md = [string("general.architecture", "gpt2"), u32("general.alignment", ALIGN), u32("gpt2.embedding_length", 32),
          u32("gpt2.feed_forward_length", 128), u32("gpt2.block_count", 1), u32("gpt2.attention.head_count", 2),
          u32("gpt2.context_length", 8), f32("gpt2.attention.layer_norm_epsilon", 1e-5),
          string("tokenizer.ggml.model", "gpt2"), string("tokenizer.ggml.pre", "gpt-2"),
          strings("tokenizer.ggml.tokens", ["a", "b", "ab", "<|endoftext|>"]), strings("tokenizer.ggml.merges", ["a b"]),
          array("tokenizer.ggml.token_type", 5, "i", [1, 1, 1, 3])]
    ts = [("token_embd.weight", (4, 32), t), ("position_embd.weight", (8, 32), F32)]
    for p, shape in [("attn_norm", (32,)), ("attn_qkv", (96, 32)), ("attn_output", (32, 32)), ("ffn_norm", (32,)),
                     ("ffn_up", (128, 32)), ("ffn_down", (32, 128))]:
        ts.append((f"blk.0.{p}.weight", shape, t))
        ts.append((f"blk.0.{p}.bias", (shape[0],), F32))
    ts += [("output_norm.weight", (32,), F32), ("output_norm.bias", (32,), F32)]
    return gguf(md, ts)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "gguf")
    os.makedirs(out, exist_ok=True)
    for name, blob in [("llama_f16", llama(F16)), ("llama_q8_0", llama(Q8_0, tokenizer=True)), ("gpt2_q4_0", gpt2(Q4_0))]:
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
