#!/usr/bin/python3
# PyTorch reference fixtures for tests/ops/test_ops_harness.cpp: one safetensors file per op
# case under tests/fixtures/ops/ with inputs in.i, weights r (r.k per output), outputs out
# (out.k) and gradients grad.i of loss = sum_k (out_k * r_k).sum(), plus the op's attributes
# as string metadata. Run with Debian's /usr/bin/python3 (python3-torch); no other packages.
import json
import os
import struct
import sys
import zlib

import torch
import torch.nn.functional as F

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "ops")

# References run in float64 on the values the stored inputs hold (f32, or bf16-rounded for the
# bf16 cases), so the only error a test sees is the engine's. Outputs are stored in the case's
# dtype (what the engine returns); gradients always in f32 (the engine's gradient buffers).
CODES = {"f32": "F32", "bf16": "BF16", "i64": "I64"}


def stored(t, kind):
    """The values a tensor of storage `kind` holds, as float64 (or int64 for ids)."""
    if kind == "i64":
        return t.to(torch.int64)
    return t.to(torch.float32 if kind == "f32" else torch.bfloat16).to(torch.float64)


def raw_bytes(t, kind):
    t = t.detach().contiguous()
    if kind == "i64":
        return t.to(torch.int64).numpy().tobytes()
    if kind == "f32":
        return t.to(torch.float32).numpy().tobytes()
    return t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, tensor, kind). The layout the safetensors crate writes."""
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}} if metadata else {}
    blobs, off = [], 0
    for name, t, kind in tensors:
        b = raw_bytes(t, kind)
        header[name] = {"dtype": CODES[kind], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ------------------------------------------------------------------ case builder

def f32(t):
    return (t, "f32")


def bf(t):
    return (t, "bf16")


def i64(t):
    return (t, "i64")


def emit(name, inputs, fn, meta=None, out_kind="f32", no_grad=()):
    """inputs: list of (tensor, kind); fn(*float64 inputs) -> tensor or list of tensors.
    Float inputs not listed in no_grad get gradients."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()) + 1)
    xs = []
    for i, (t, kind) in enumerate(inputs):
        x = stored(t, kind)
        if kind != "i64" and i not in no_grad:
            x.requires_grad_(True)
        xs.append(x)
    out = fn(*xs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    # r: stored-dtype values, so the engine sees the same weights the reference used.
    rs = [stored(torch.randn(o.shape, generator=gen, dtype=torch.float64), out_kind) for o in outs]
    loss = sum((o * r).sum() for o, r in zip(outs, rs))
    loss.backward()
    entries = [(f"in.{i}", x.detach(), kind) for i, (x, (_, kind)) in enumerate(zip(xs, inputs))]
    multi = isinstance(out, (list, tuple))
    for k, (o, r) in enumerate(zip(outs, rs)):
        sfx = f".{k}" if multi else ""
        entries.append((f"r{sfx}", r, out_kind))
        entries.append((f"out{sfx}", o.detach(), out_kind))
    for i, x in enumerate(xs):
        if x.requires_grad:
            entries.append((f"grad.{i}", x.grad, "f32"))
    md = {"outputs": len(outs)}
    md.update(meta or {})
    write_safetensors(os.path.join(OUT_DIR, f"{name}.safetensors"), entries, md)


def randn(*shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def away_from_zero(*shape, seed, gap=0.1):
    """Values with |x| >= gap: kinks (relu) and poles (div) stay out of a finite difference."""
    x = randn(*shape, seed=seed)
    return torch.sign(x) * (gap + x.abs())


# ------------------------------------------------------------------ the cases

def matmul_cases():
    def mm(ta, tb):
        return lambda a, b: (a.transpose(-1, -2) if ta else a) @ (b.transpose(-1, -2) if tb else b)

    specs = [  # name, a shape, b shape, trans_a, trans_b
        ("matmul", (3, 4), (4, 5), 0, 0),
        ("matmul_trans_a", (4, 3), (4, 5), 1, 0),
        ("matmul_trans_b", (3, 4), (5, 4), 0, 1),
        ("matmul_trans_ab", (4, 3), (5, 4), 1, 1),
        ("matmul_batched", (2, 3, 4), (2, 4, 5), 0, 0),
        ("matmul_batched_trans_ab", (2, 4, 3), (2, 5, 4), 1, 1),
        ("matmul_shared_b", (2, 3, 4), (4, 5), 0, 0),
        ("matmul_shared_b_trans_a", (2, 4, 3), (4, 5), 1, 0),
        ("matmul_shared_b_trans_b", (2, 3, 4), (5, 4), 0, 1),
    ]
    for n, (name, sa, sb, ta, tb) in enumerate(specs):
        emit(name, [f32(randn(*sa, seed=10 + n)), f32(randn(*sb, seed=20 + n))], mm(ta, tb),
             {"trans_a": ta, "trans_b": tb})
    emit("matmul_bf16", [bf(randn(3, 16, seed=30)), bf(randn(16, 5, seed=31))], mm(0, 0),
         {"trans_a": 0, "trans_b": 0}, out_kind="bf16")
    emit("matmul_shared_b_bf16", [bf(randn(2, 3, 16, seed=32)), bf(randn(5, 16, seed=33))], mm(0, 1),
         {"trans_a": 0, "trans_b": 1}, out_kind="bf16")


def linear_cases():
    in_out = lambda x, w, b: x @ w + b      # kInOut: w (in, out), GPT-2's Conv1D
    out_in = lambda x, w, b: F.linear(x, w, b)  # kOutIn: w (out, in), torch.nn.Linear
    x, b = randn(2, 3, 4, seed=40), randn(5, seed=41)
    emit("linear_in_out", [f32(x), f32(randn(4, 5, seed=42)), f32(b)], in_out, {"layout": "in_out"})
    emit("linear_out_in", [f32(x), f32(randn(5, 4, seed=43)), f32(b)], out_in, {"layout": "out_in"})
    emit("linear_out_in_nobias", [f32(x), f32(randn(5, 4, seed=44))], lambda x, w: F.linear(x, w),
         {"layout": "out_in"})
    xb = randn(2, 3, 16, seed=45)
    emit("linear_in_out_bf16", [bf(xb), bf(randn(16, 5, seed=46)), f32(b)], in_out,
         {"layout": "in_out"}, out_kind="bf16")
    emit("linear_out_in_bf16", [bf(xb), bf(randn(5, 16, seed=47)), f32(b)], out_in,
         {"layout": "out_in"}, out_kind="bf16")


def elementwise_cases():
    ops = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
    for n, (op, fn) in enumerate(ops.items()):
        a = randn(2, 3, 4, seed=50 + n)
        # div's divisor stays away from zero so its finite difference is well conditioned
        mk = (lambda *s, seed: away_from_zero(*s, seed=seed, gap=0.5)) if op == "div" else randn
        emit(f"{op}_bcast", [f32(a), f32(mk(3, 4, seed=60 + n))], fn)
        emit(f"{op}_same", [f32(a), f32(mk(2, 3, 4, seed=70 + n))], fn)
    emit("mul_scalar", [f32(randn(2, 3, 4, seed=80)), f32(randn(1, seed=81))], torch.mul)
    emit("scale", [f32(randn(3, 4, seed=82))], lambda a: a * 0.75, {"s": 0.75})
    acts = {
        "gelu": lambda x: F.gelu(x, approximate="tanh"),
        "gelu_exact": F.gelu,
        "silu": F.silu,
        "relu": F.relu,
        "softmax": lambda x: torch.softmax(x, -1),
    }
    for n, (name, fn) in enumerate(acts.items()):
        x = away_from_zero(3, 8, seed=90 + n) if name == "relu" else randn(3, 8, seed=90 + n) * 1.5
        emit(name, [f32(x)], fn)
    emit("gelu_bf16", [bf(randn(3, 16, seed=99) * 1.5)], lambda x: F.gelu(x, approximate="tanh"),
         out_kind="bf16")


def reduce_layout_cases():
    x = randn(2, 3, 4, seed=100)
    emit("sum_mid", [f32(x)], lambda x: x.sum(1), {"dim": 1, "keepdim": 0})
    emit("sum_mid_keepdim", [f32(x)], lambda x: x.sum(1, keepdim=True), {"dim": 1, "keepdim": 1})
    emit("mean_mid", [f32(x)], lambda x: x.mean(1), {"dim": 1, "keepdim": 0})
    emit("sum_all", [f32(x)], lambda x: x.sum())
    emit("reshape", [f32(x)], lambda x: x.reshape(6, 4), {"dims": "6,4"})
    emit("permute", [f32(x)], lambda x: x.permute(2, 0, 1), {"perm": "2,0,1"})
    emit("transpose", [f32(x)], lambda x: x.transpose(1, 2), {"d0": 1, "d1": 2})
    emit("concat", [f32(x), f32(randn(2, 2, 4, seed=101))], lambda a, b: torch.cat([a, b], 1),
         {"dim": 1})
    y = randn(2, 5, 4, seed=102)
    emit("split", [f32(y)], lambda y: list(torch.split(y, [2, 3], 1)), {"sizes": "2,3", "dim": 1})
    emit("slice", [f32(y)], lambda y: y[:, 1:4], {"dim": 1, "start": 1, "length": 3})


def norm_cases():
    ids = torch.tensor([[1, 4, 1], [6, 0, 4]])  # repeats: the gradient scatter-adds
    emit("embedding", [f32(randn(7, 4, seed=110)), i64(ids)], lambda t, i: F.embedding(i, t))
    x, g, b = randn(2, 3, 8, seed=111) * 2 + 0.5, 1 + 0.3 * randn(8, seed=112), randn(8, seed=113)
    ln = lambda x, g, b=None: F.layer_norm(x, (x.shape[-1],), g, b, 1e-5)
    emit("layer_norm", [f32(x), f32(g), f32(b)], ln, {"eps": 1e-5})
    emit("layer_norm_nobias", [f32(x), f32(g)], ln, {"eps": 1e-5})
    xb, gb, bb = randn(2, 3, 16, seed=114) * 2 + 0.5, 1 + 0.3 * randn(16, seed=115), randn(16, seed=116)
    emit("layer_norm_bf16", [bf(xb), f32(gb), f32(bb)], ln, {"eps": 1e-5}, out_kind="bf16")

    def rms(x, g):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * g

    emit("rms_norm", [f32(x), f32(g)], rms, {"eps": 1e-6})


def rope_ref(x, theta):
    """Llama's rotate_half: pairs (i, i + D/2), position t turns by t * theta^(-2i/D)."""
    B, T, H, D = x.shape
    freq = theta ** (-2.0 * torch.arange(D // 2, dtype=torch.float64) / D)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]  # (T, D/2)
    cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :]
    rot = torch.cat([-x[..., D // 2:], x[..., : D // 2]], -1)
    return x * cos + rot * sin


def attention_ref(q, k, v, causal):
    """softmax(Q K^T / sqrt(D) + mask) V; kv head j serves q heads j*g .. j*g+g-1."""
    B, T, H, D = q.shape
    g = H // k.shape[2]
    qh = q.transpose(1, 2)
    kh = k.repeat_interleave(g, dim=2).transpose(1, 2)
    vh = v.repeat_interleave(g, dim=2).transpose(1, 2)
    s = qh @ kh.transpose(-1, -2) / D ** 0.5
    if causal:
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return (torch.softmax(s, -1) @ vh).transpose(1, 2)


def attention_cases():
    emit("rope", [f32(randn(2, 5, 3, 8, seed=120))], lambda x: rope_ref(x, 10000.0), {"theta": 10000.0})
    B, T, H, Hkv, D = 2, 5, 4, 2, 8
    q, k, v = randn(B, T, H, D, seed=121), randn(B, T, Hkv, D, seed=122), randn(B, T, Hkv, D, seed=123)
    for causal in (1, 0):
        emit("attention_causal" if causal else "attention_full", [f32(q), f32(k), f32(v)],
             lambda q, k, v, c=causal: attention_ref(q, k, v, c), {"causal": causal})
    km, vm = randn(B, T, H, D, seed=124), randn(B, T, H, D, seed=125)
    emit("attention_mha", [f32(q), f32(km), f32(vm)], lambda q, k, v: attention_ref(q, k, v, True),
         {"causal": 1})
    q16, k16, v16 = randn(B, T, H, 16, seed=126), randn(B, T, Hkv, 16, seed=127), randn(B, T, Hkv, 16, seed=128)
    emit("attention_causal_bf16", [bf(q16), bf(k16), bf(v16)],
         lambda q, k, v: attention_ref(q, k, v, True), {"causal": 1}, out_kind="bf16")


def loss_cases():
    tg = torch.tensor([[3, -100, 0, 6, 2], [1, 5, 4, -100, 6]])
    emit("cross_entropy", [f32(randn(2, 5, 7, seed=130) * 2), i64(tg)],
         lambda l, t: F.cross_entropy(l.reshape(-1, 7), t.reshape(-1), ignore_index=-100, reduction="sum"),
         {"ignore_index": -100})
    # 10 rows in chunks of 4: two full chunks and a partial one, ignored targets in two of them
    tl = torch.tensor([3, 0, -100, 10, 7, 7, 1, -100, 9, 2])
    emit("linear_cross_entropy", [f32(randn(10, 8, seed=131)), f32(randn(11, 8, seed=132) * 0.5), i64(tl)],
         lambda x, w, t: F.cross_entropy(x @ w.T, t, ignore_index=-100, reduction="sum"),
         {"ignore_index": -100, "chunk_rows": 4})


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for f in os.listdir(OUT_DIR):  # stale cases must not linger
        if f.endswith(".safetensors"):
            os.remove(os.path.join(OUT_DIR, f))
    for group in (matmul_cases, linear_cases, elementwise_cases, reduce_layout_cases, norm_cases,
                  attention_cases, loss_cases):
        group()
    files = sorted(os.listdir(OUT_DIR))
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in files)
    print(f"wrote {len(files)} fixtures, {total} bytes, to {os.path.normpath(OUT_DIR)}", file=sys.stderr)


if __name__ == "__main__":
    main()
