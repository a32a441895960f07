#!/usr/bin/env python3
"""PyTorch's side of `models --threads --torch PYTHON`: the same MLP in eager PyTorch (CPU),
timed on request so that the Rust bench can interleave it with nnjit round by round.

The bench starts this script with the given Python (one with `torch` and `numpy`) and speaks a
line protocol on stdin/stdout, one reply line per command:

    load PATH N D W1 W2 ...  parameters and input from PATH (little-endian f32: for each layer
                             its kernel (in, out) row-major then its bias (out,); then the input
                             (N, D)); builds Linear/ReLU layers from them, runs the forward
                             once and writes its output (N, last W) to PATH.out   -> "ok"
    threads T                torch.set_num_threads(T)                              -> "ok"
    calibrate NS             forwards in a sample of about NS nanoseconds, after
                             running for about that long (as `probe::calibrate`)   -> iterations
    time ITERS               an untimed eighth of ITERS forwards, then ITERS timed
                             back to back (as `probe::sample_ns`)                  -> total ns
    version                  "torch VERSION, ATen parallel backend"
    quit

Every forward runs under `torch.inference_mode()`, as a user serving the model would.
"""

import sys
import time

import numpy as np
import torch


def load(path, n, d, widths):
    raw = np.fromfile(path, dtype="<f4")
    at = 0
    layers = []
    din = d
    for w in widths:
        kernel = raw[at : at + din * w].reshape(din, w)
        at += din * w
        bias = raw[at : at + w]
        at += w
        lin = torch.nn.Linear(din, w)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
            lin.bias.copy_(torch.from_numpy(bias.copy()))
        layers += [lin, torch.nn.ReLU()]
        din = w
    model = torch.nn.Sequential(*layers[:-1]).eval()
    x = torch.from_numpy(raw[at : at + n * d].reshape(n, d).copy())
    if at + n * d != raw.size:
        raise ValueError(f"{path}: {raw.size} floats, expected {at + n * d}")
    return model, x


def timed(model, x, iters):
    with torch.inference_mode():
        t0 = time.perf_counter_ns()
        for _ in range(iters):
            model(x)
        return time.perf_counter_ns() - t0


def main():
    model = x = None
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "quit":
            break
        if cmd[0] == "load":
            path, n, d = cmd[1], int(cmd[2]), int(cmd[3])
            model, x = load(path, n, d, [int(w) for w in cmd[4:]])
            with torch.inference_mode():
                model(x).numpy().astype("<f4").tofile(path + ".out")
            reply = "ok"
        elif cmd[0] == "version":
            backend = next((l.split(":", 1)[1].strip() for l in torch.__config__.parallel_info().splitlines()
                            if l.startswith("ATen parallel backend")), "unknown")
            reply = f"torch {torch.__version__}, ATen parallel backend {backend}"
        elif cmd[0] == "threads":
            torch.set_num_threads(int(cmd[1]))
            reply = "ok"
        elif cmd[0] == "calibrate":
            target, iters = int(cmd[1]), 1
            while True:
                took = timed(model, x, iters)
                if took >= target // 4 or iters >= 1 << 30:
                    break
                iters *= 4
            per = max(took / iters, 1e-3)
            t0 = time.perf_counter_ns()
            while time.perf_counter_ns() - t0 < target:
                timed(model, x, 1)
            reply = str(max(int(target / per), 1))
        elif cmd[0] == "time":
            iters = int(cmd[1])
            timed(model, x, max(iters // 8, 1))
            reply = str(timed(model, x, iters))
        else:
            reply = f"error: unknown command {cmd[0]!r}"
        print(reply, flush=True)


if __name__ == "__main__":
    main()
