#!/usr/bin/python3
# Reference checkpoints for tests/io/test_hf_llm.cpp: a small GPT-2 and a small Llama in the
# Hub's exact layout (config.json with the Hub's keys, model.safetensors with the Hub's tensor
# names), random weights, plus input ids and the logits of Hugging Face's forward written out
# in plain torch (transformers is not installed): GPT-2's Conv1D and gelu_new; Llama's RMSNorm
# in fp32, rotate_half rotary embedding, repeated key/value heads and SwiGLU. Computed in
# float64 from the stored f32 weights. Run with Debian's /usr/bin/python3 (python3-torch).
import json
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "llm")


def write_safetensors(path, tensors):
    """tensors: list of (name, tensor); f32 or i64. The layout the safetensors crate writes."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors:
        code = "I64" if t.dtype == torch.int64 else "F32"
        b = t.detach().contiguous().to(torch.int64 if code == "I64" else torch.float32).numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_config(folder, cfg):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def rand(gen, *shape, std=0.1):
    return (torch.randn(*shape, generator=gen) * std).float()


def causal_softmax(scores):
    t = scores.shape[-1]
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
    return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)


# ------------------------------------------------------------------ GPT-2

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(w, cfg, ids):
    d = {k: v.double() for k, v in w.items()}
    C, H, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (C,), d[p + ".weight"], d[p + ".bias"], eps)
    conv1d = lambda x, p: x @ d[p + ".weight"] + d[p + ".bias"]  # Conv1D: weight (in, out)
    B, T = ids.shape
    x = d["transformer.wte.weight"][ids] + d["transformer.wpe.weight"][torch.arange(T)]
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}"
        q, k, v = conv1d(ln(x, p + ".ln_1"), p + ".attn.c_attn").split(C, dim=-1)
        heads = lambda t: t.view(B, T, H, C // H).transpose(1, 2)
        q, k, v = heads(q), heads(k), heads(v)
        a = causal_softmax(q @ k.transpose(-1, -2) / math.sqrt(C // H)) @ v
        x = x + conv1d(a.transpose(1, 2).reshape(B, T, C), p + ".attn.c_proj")
        x = x + conv1d(gelu_new(conv1d(ln(x, p + ".ln_2"), p + ".mlp.c_fc")), p + ".mlp.c_proj")
    x = ln(x, "transformer.ln_f")
    return x @ d["transformer.wte.weight"].T


def make_gpt2(gen):
    cfg = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
           "bos_token_id": 99, "embd_pdrop": 0.1, "eos_token_id": 99, "initializer_range": 0.02,
           "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 32, "n_embd": 64, "n_head": 4,
           "n_inner": None, "n_layer": 2, "n_positions": 32, "resid_pdrop": 0.1,
           "scale_attn_weights": True, "summary_activation": None, "summary_first_dropout": 0.1,
           "summary_proj_to_labels": True, "summary_type": "cls_index", "summary_use_proj": True,
           "torch_dtype": "float32", "transformers_version": "4.40.0", "use_cache": True, "vocab_size": 100}
    C, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    w = {"transformer.wte.weight": rand(gen, V, C, std=0.3), "transformer.wpe.weight": rand(gen, P, C, std=0.1)}
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}"
        for name, shape in [("ln_1", None), ("attn.c_attn", (C, 3 * C)), ("attn.c_proj", (C, C)),
                            ("ln_2", None), ("mlp.c_fc", (C, 4 * C)), ("mlp.c_proj", (4 * C, C))]:
            if shape is None:
                w[f"{p}.{name}.weight"] = 1.0 + rand(gen, C)
                w[f"{p}.{name}.bias"] = rand(gen, C)
            else:
                w[f"{p}.{name}.weight"] = rand(gen, *shape, std=0.2)
                w[f"{p}.{name}.bias"] = rand(gen, shape[1])
        # Old Hub checkpoints also hold the causal-mask buffer; loaders must skip it.
        w[f"{p}.attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
    w["transformer.ln_f.weight"] = 1.0 + rand(gen, C)
    w["transformer.ln_f.bias"] = rand(gen, C)
    return cfg, w


# ------------------------------------------------------------------ Llama

def rms_norm(x, weight, eps):
    # LlamaRMSNorm: variance in fp32 (here float64), then weight * normalised input
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def llama_forward(w, cfg, ids):
    d = {k: v.double() for k, v in w.items()}
    C, H, Hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D, eps = C // H, cfg["rms_norm_eps"]
    B, T = ids.shape
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.int64).double() / D))
    freqs = torch.outer(torch.arange(T).double(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    lin = lambda x, p: x @ d[p + ".weight"].T  # nn.Linear: weight (out, in), no bias
    x = d["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        h = rms_norm(x, d[p + ".input_layernorm.weight"], eps)
        q = lin(h, p + ".self_attn.q_proj").view(B, T, H, D).transpose(1, 2)
        k = lin(h, p + ".self_attn.k_proj").view(B, T, Hkv, D).transpose(1, 2)
        v = lin(h, p + ".self_attn.v_proj").view(B, T, Hkv, D).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // Hkv, dim=1)  # repeat_kv
        v = v.repeat_interleave(H // Hkv, dim=1)
        a = causal_softmax(q @ k.transpose(-1, -2) / math.sqrt(D)) @ v
        x = x + lin(a.transpose(1, 2).reshape(B, T, C), p + ".self_attn.o_proj")
        h = rms_norm(x, d[p + ".post_attention_layernorm.weight"], eps)
        g = torch.nn.functional.silu(lin(h, p + ".mlp.gate_proj")) * lin(h, p + ".mlp.up_proj")
        x = x + lin(g, p + ".mlp.down_proj")
    x = rms_norm(x, d["model.norm.weight"], eps)
    return lin(x, "lm_head")


def make_llama(gen):
    cfg = {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
           "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 64,
           "initializer_range": 0.02, "intermediate_size": 176, "max_position_embeddings": 64,
           "mlp_bias": False, "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2,
           "num_key_value_heads": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-06, "rope_scaling": None,
           "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
           "transformers_version": "4.40.0", "use_cache": True, "vocab_size": 100}
    C, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    D = C // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * D
    w = {"model.embed_tokens.weight": rand(gen, V, C, std=0.5)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        w[f"{p}.self_attn.q_proj.weight"] = rand(gen, C, C, std=0.2)
        w[f"{p}.self_attn.k_proj.weight"] = rand(gen, kv, C, std=0.2)
        w[f"{p}.self_attn.v_proj.weight"] = rand(gen, kv, C, std=0.2)
        w[f"{p}.self_attn.o_proj.weight"] = rand(gen, C, C, std=0.2)
        w[f"{p}.mlp.gate_proj.weight"] = rand(gen, I, C, std=0.2)
        w[f"{p}.mlp.up_proj.weight"] = rand(gen, I, C, std=0.2)
        w[f"{p}.mlp.down_proj.weight"] = rand(gen, C, I, std=0.2)
        w[f"{p}.input_layernorm.weight"] = 1.0 + rand(gen, C)
        w[f"{p}.post_attention_layernorm.weight"] = 1.0 + rand(gen, C)
    w["model.norm.weight"] = 1.0 + rand(gen, C)
    w["lm_head.weight"] = rand(gen, V, C, std=0.2)
    return cfg, w


def main():
    gen = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, 100, (2, 12), generator=gen)
    for name, make, forward in [("gpt2", make_gpt2, gpt2_forward), ("llama", make_llama, llama_forward)]:
        cfg, w = make(gen)
        folder = os.path.join(OUT, name)
        write_config(folder, cfg)
        write_safetensors(os.path.join(folder, "model.safetensors"), list(w.items()))
        logits = forward(w, cfg, ids)
        write_safetensors(os.path.join(OUT, name + "_reference.safetensors"),
                          [("input_ids", ids), ("logits", logits.float())])
        print(name, "logits", tuple(logits.shape), "max |logit|", float(logits.abs().max()))


if __name__ == "__main__":
    main()
