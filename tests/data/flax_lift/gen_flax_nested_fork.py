#!/usr/bin/env python3
"""Golden data for nested ``nn.jit`` RNG forks, made by real Flax 0.12.8 / JAX 0.10.2.

Flax's ``nn.jit`` forks every RNG stream before each call of the lifted module. When a lifted
module calls another lifted module (``nn.jit(Outer)`` whose child is ``nn.jit(Block)``), the
inner fork runs inside the outer compiled function, drawing from the outer fork's keys. This
script records, for models with such nested lifts and Dropout in train mode, the variables
(init) and the outputs of apply with two different dropout keys.

Not recorded: one ``nn.jit`` instance called twice (``blk = nn.jit(SelfDrop)(); blk(blk(x))``).
Flax 0.12.8 restores the RNG counters of a jitted call from a process-wide cache of counter
deltas (``flax.core.lift._side_effect_cache``), and two runs of the same script gave different
train outputs for such a model, so no run is a reference for it.

Writes ``nested_fork.json`` next to this script (or into the directory given as the first
argument). Arrays use the format of ``gen_flax_lift.py`` (``{"shape", "values", "bits"}``).

Usage (from the repository root)::

    python3 -m venv .venv && .venv/bin/pip install flax==0.12.8 jax==0.10.2 safetensors
    .venv/bin/python tests/data/flax_lift/gen_flax_nested_fork.py [OUT_DIR]

Test: ``tests/flax_nested_fork.rs``.
"""
import os
import platform
import sys

import numpy as np

import jax
import jax.numpy as jnp
import flax
import flax.linen as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_flax_lift import farr, make_x, paths, tree, write  # noqa: E402


# ----------------------------------------------------------------------------- models
class Block(nn.Module):
    """Dense(6) -> Dropout(0.5) -> Dense(3)."""
    train: bool

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(6)(x)
        x = nn.Dropout(0.5, deterministic=not self.train)(x)
        return nn.Dense(3)(x)


class Outer(nn.Module):
    """Dense(5) -> Dropout(0.5) -> nn.jit(Block)() -> Dropout(0.5)."""
    train: bool

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(5)(x)
        x = nn.Dropout(0.5, deterministic=not self.train)(x)
        x = nn.jit(Block)(train=self.train)(x)
        return nn.Dropout(0.5, deterministic=not self.train)(x)


class Mid(nn.Module):
    """Dense(5) -> nn.jit(Block)() (a plain module with a lifted child)."""
    train: bool

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(5)(x)
        return nn.jit(Block)(train=self.train)(x)


class Grand(nn.Module):
    """Dense(4) -> Mid() -> Dropout(0.5)."""
    train: bool

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x)
        x = Mid(train=self.train)(x)
        return nn.Dropout(0.5, deterministic=not self.train)(x)


class GrandOfJit(nn.Module):
    """Dense(4) -> nn.jit(Outer)() -> Dropout(0.5) (three nested forks under nn.jit)."""
    train: bool

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x)
        x = nn.jit(Outer)(train=self.train)(x)
        return nn.Dropout(0.5, deterministic=not self.train)(x)


class SelfDrop(nn.Module):
    """Dense(3) -> a dropout mask drawn in its own scope (make_rng after nn.jit's fork at the
    same path) -> Dropout(0.5)."""
    train: bool

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(3)(x)
        if self.train:
            rng = self.make_rng('dropout')
            mask = jax.random.bernoulli(rng, p=0.5, shape=x.shape)
            x = jax.lax.select(mask, x / 0.5, jnp.zeros_like(x))
        return nn.Dropout(0.5, deterministic=not self.train)(x)


# (case, model class, lifted at the top, description)
MODELS = [
    ("outer", Outer, False, "Outer (not lifted) whose child is nn.jit(Block)"),
    ("jit_outer", Outer, True, "nn.jit(Outer) whose child is nn.jit(Block)"),
    ("grand", Grand, False, "Grand (not lifted) -> Mid (plain) -> nn.jit(Block)"),
    ("jit_grand", Grand, True, "nn.jit(Grand) -> Mid (plain) -> nn.jit(Block)"),
    ("grand_of_jit", GrandOfJit, False, "GrandOfJit (not lifted) -> nn.jit(Outer) -> nn.jit(Block)"),
    ("jit_grand_of_jit", GrandOfJit, True, "nn.jit(GrandOfJit) -> nn.jit(Outer) -> nn.jit(Block)"),
    ("jit_self_drop", SelfDrop, True, "nn.jit(SelfDrop) at the top (its own make_rng after the fork)"),
]


def section_nested_forks():
    cases = []
    for seed in (0, 5):
        x = make_x((4, 6), 400 + seed)
        init_rngs = {'params': jax.random.PRNGKey(seed), 'dropout': jax.random.PRNGKey(seed + 1)}
        apply_seeds = [seed + 2, seed + 3]
        for case, cls, lifted, description in MODELS:
            def make(train):
                return nn.jit(cls)(train=train) if lifted else cls(train=train)
            v = make(False).init(init_rngs, x)
            trains = []
            for a in apply_seeds:
                y = make(True).apply(v, x, rngs={'dropout': jax.random.PRNGKey(a)})
                trains.append(dict(apply_rngs={"dropout": a}, output_train=farr(y)))
            ye = make(False).apply(v, x)
            cases.append(dict(
                case=case, seed=seed, model=cls.__name__, lifted_at_top=lifted, description=description,
                layers=" ".join(cls.__doc__.split()), rate=0.5, x=farr(x),
                init_rngs={"params": seed, "dropout": seed + 1},
                init="model(train=False).init({'params': PRNGKey(p), 'dropout': PRNGKey(d)}, x) "
                     "(model = nn.jit(cls) where lifted_at_top, else cls)",
                apply_train="model(train=True).apply(variables, x, rngs={'dropout': PRNGKey(a)})",
                variable_paths=paths(v), variables=tree(v), train=trains, output_eval=farr(ye)))
    models = {c.__name__: " ".join(c.__doc__.split()) for c in (Block, Outer, Mid, Grand, GrandOfJit, SelfDrop)}
    return dict(description="Nested nn.jit lifts with Dropout in train mode: the inner fork runs inside "
                            "the outer compiled function.", models=models, cases=cases)


def meta():
    return dict(generator="tests/data/flax_lift/gen_flax_nested_fork.py", flax=flax.__version__,
                jax=jax.__version__, numpy=np.__version__, platform=platform.platform(),
                machine=platform.machine(), libc=" ".join(platform.libc_ver()),
                float_format="arrays: {shape, values (shortest float32 decimals), bits (float32 bit patterns)}")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    write(os.path.join(out_dir, "nested_fork.json"), dict(meta=meta(), nested_forks=section_nested_forks()))


if __name__ == "__main__":
    main()
