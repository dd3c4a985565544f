#!/usr/bin/python3
# PyTorch reference fixtures for tests/vision/test_vision_ops.cpp: conv2d, pooling, batch_norm
# and group_norm cases under tests/fixtures/vision/, in the layout make_fixtures.py writes
# (in.i, r, out, grad.i, metadata). The engine is channels-last: images are stored (N, H, W, C)
# and conv weights (O, KH, KW, I/groups); each reference permutes to PyTorch's NCHW / OIHW.
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

mf.OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "vision")
f32, bf, randn, emit = mf.f32, mf.bf, mf.randn, mf.emit


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def conv_case(name, n, h, w, c, o, k, stride, padding, groups, bias, kind=f32):
    inputs = [kind(randn(n, h, w, c, seed=len(name))), kind(randn(o, k, k, c // groups, seed=7) * 0.3)]
    if bias:
        inputs.append(f32(randn(o, seed=9)))

    def fn(x, wt, b=None):
        y = F.conv2d(nchw(x), wt.permute(0, 3, 1, 2), b, stride=stride, padding=padding, groups=groups)
        return nhwc(y)

    emit(name, inputs, fn, {"stride": stride, "padding": padding, "groups": groups},
         out_kind="bf16" if kind is bf else "f32")


def conv_cases():
    conv_case("conv2d_bias", 2, 6, 7, 3, 4, 3, 1, 1, 1, True)
    conv_case("conv2d_strided", 2, 7, 6, 4, 5, 3, 2, 1, 1, False)
    conv_case("conv2d_1x1_strided", 2, 6, 6, 4, 6, 1, 2, 0, 1, False)
    conv_case("conv2d_grouped", 2, 5, 5, 6, 4, 3, 1, 0, 2, True)
    conv_case("conv2d_depthwise", 2, 7, 7, 4, 4, 3, 2, 1, 4, False)
    conv_case("conv2d_bf16", 2, 6, 6, 8, 8, 3, 1, 1, 1, True, kind=bf)


def pool_cases():
    x = randn(2, 7, 6, 3, seed=21)  # continuous values: no ties in a max window
    emit("max_pool2d_k2", [f32(x)], lambda x: nhwc(F.max_pool2d(nchw(x), 2)), {"kernel": 2, "stride": 2, "padding": 0})
    emit("max_pool2d_k3s2p1", [f32(x)], lambda x: nhwc(F.max_pool2d(nchw(x), 3, 2, 1)),
         {"kernel": 3, "stride": 2, "padding": 1})
    emit("avg_pool2d_k2", [f32(x)], lambda x: nhwc(F.avg_pool2d(nchw(x), 2)), {"kernel": 2, "stride": 2, "padding": 0})
    emit("avg_pool2d_k3s2p1", [f32(x)], lambda x: nhwc(F.avg_pool2d(nchw(x), 3, 2, 1)),
         {"kernel": 3, "stride": 2, "padding": 1})
    emit("global_avg_pool", [f32(x)], lambda x: x.mean(dim=(1, 2)), {})
    emit("global_avg_pool_bf16", [bf(x)], lambda x: x.mean(dim=(1, 2)), {}, out_kind="bf16")


ACTS = {"none": lambda y: y, "relu": F.relu, "relu6": F.relu6}


def bn_case(name, training, act="none", residual=False, kind=f32):
    x = randn(4, 5, 5, 6, seed=31) * 2 + 0.5
    inputs = [kind(x), f32(1 + 0.2 * randn(6, seed=32)), f32(0.1 * randn(6, seed=33))]
    no_grad = ()
    if not training:
        inputs += [f32(0.3 * randn(6, seed=34)), f32(1 + randn(6, seed=35).abs())]
        no_grad = (3, 4)
    if residual:
        inputs.append(kind(randn(4, 5, 5, 6, seed=36)))

    def fn(x, g, b, *rest):
        rm, rv = (rest[0], rest[1]) if not training else (None, None)
        y = F.batch_norm(nchw(x), rm, rv, g, b, training=training, eps=1e-5)
        y = nhwc(y)
        if residual:
            y = y + rest[-1]
        return ACTS[act](y)

    emit(name, inputs, fn, {"training": int(training), "act": act, "residual": int(residual), "eps": 1e-5},
         out_kind="bf16" if kind is bf else "f32", no_grad=no_grad)


def norm_cases():
    bn_case("batch_norm_train", True)
    bn_case("batch_norm_eval", False)
    bn_case("batch_norm_train_residual_relu", True, "relu", True)
    bn_case("batch_norm_eval_relu6", False, "relu6")
    bn_case("batch_norm_train_bf16", True, kind=bf)
    x = randn(2, 4, 3, 6, seed=41) + 0.3
    emit("group_norm", [f32(x), f32(1 + 0.2 * randn(6, seed=42)), f32(0.1 * randn(6, seed=43))],
         lambda x, g, b: nhwc(F.group_norm(nchw(x), 3, g, b, eps=1e-5)), {"groups": 3, "eps": 1e-5})


def main():
    os.makedirs(mf.OUT_DIR, exist_ok=True)
    for f in os.listdir(mf.OUT_DIR):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(mf.OUT_DIR, f))
    for group in (conv_cases, pool_cases, norm_cases):
        group()
    files = sorted(os.listdir(mf.OUT_DIR))
    total = sum(os.path.getsize(os.path.join(mf.OUT_DIR, f)) for f in files)
    print(f"wrote {len(files)} fixtures, {total} bytes, to {os.path.normpath(mf.OUT_DIR)}", file=sys.stderr)


if __name__ == "__main__":
    main()
