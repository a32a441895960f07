#!/usr/bin/env python3
"""Golden data for ISSUE 13 (Flax parity of the lifted tree), made by real Flax 0.12.8 / JAX 0.10.2.

Writes, next to this script (or into the directory given as the first argument):

* ``lift_tree.json``       -- 1. parents with ``nn.jit`` children (names, variables, outputs)
                              2. Dropout and BatchNorm under ``nn.jit`` in train mode
* ``init_numerics.json``   -- 3. every initializer / sampler, eager and under ``jax.jit``
* ``naming.json``          -- 4. explicit names, shared modules, setup-style children,
                                 ``nn.Sequential``, ``NameInUseError`` texts
                              5. ``Module.tabulate`` strings

Float arrays are stored as ``{"shape": [...], "values": [...], "bits": [...]}``: ``values`` are the
shortest decimals that round-trip the float32 values, ``bits`` the float32 bit patterns
(``"0x%08x"``). Compare bits. Keys are stored as their two uint32 words.

Usage (from the repository root)::

    python3 -m venv .venv && .venv/bin/pip install flax==0.12.8 jax==0.10.2
    .venv/bin/python tests/data/flax_lift/gen_flax_lift.py            # all three files
    .venv/bin/python tests/data/flax_lift/gen_flax_lift.py --only naming [--only ...] [OUT_DIR]

Verified on x86-64 with FMA (XLA:CPU), Debian glibc 2.36. Note that the jitted truncated-normal
bounds are folded by XLA with the host C library's ``erff`` (see JIT_NUMERICS.md).
"""
import ctypes
import json
import os
import platform
import sys
import traceback

import numpy as np

import jax
import jax.numpy as jnp
import flax
import flax.linen as nn
from flax.linen import initializers as I

F32 = np.float32


# ----------------------------------------------------------------------------- helpers
def bits_hex(a):
    a = np.asarray(a, dtype=np.float32)
    return ['0x%08x' % int(v) for v in a.view(np.uint32).reshape(-1)]


def farr(a):
    """A float32 array as shape + shortest round-trip decimals + bit patterns."""
    a = np.asarray(a, dtype=np.float32)
    # repr(float(np.float32)) is the shortest decimal of the float64 value; use numpy's float32
    # shortest repr so the decimals are as short as the float32 allows, then parse as float.
    vals = [float(np.format_float_positional(v, unique=True, trim='-')) if np.isfinite(v) else float(v)
            for v in a.reshape(-1)]
    return {"shape": list(a.shape), "values": vals, "bits": bits_hex(a)}


def tree(t):
    """A (frozen) dict of arrays as a plain nested dict of farr leaves (sorted keys)."""
    if hasattr(t, 'items'):
        return {str(k): tree(v) for k, v in sorted(t.items(), key=lambda kv: str(kv[0]))}
    return farr(t)


def shapes(t):
    if hasattr(t, 'items'):
        return {str(k): shapes(v) for k, v in sorted(t.items(), key=lambda kv: str(kv[0]))}
    return list(np.shape(t))


def paths(t, prefix=()):
    """Sorted '/'-joined paths of the leaves of a nested dict."""
    out = []
    if hasattr(t, 'items'):
        for k, v in t.items():
            out += paths(v, prefix + (str(k),))
        return sorted(out)
    return ['/'.join(prefix)]


def key_words(k):
    return ['0x%08x' % int(w) for w in np.asarray(jax.random.key_data(k) if jnp.issubdtype(k.dtype, jax.dtypes.prng_key) else k, dtype=np.uint32).reshape(-1)]


def make_x(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def trees_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def ndiff(a, b):
    return int((np.asarray(a, np.float32).view(np.uint32) != np.asarray(b, np.float32).view(np.uint32)).sum())


# ----------------------------------------------------------------------------- models
class Block(nn.Module):
    """Dense(3) -> relu -> Dense(3)."""
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(3)(x)
        x = nn.relu(x)
        return nn.Dense(3)(x)


class JitParent(nn.Module):
    """Dense(4) -> nn.jit(Block)() -> nn.jit(Block)()."""
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x)
        x = nn.jit(Block)()(x)
        return nn.jit(Block)()(x)


class PlainParent(nn.Module):
    """Dense(4) -> Block() -> Block() (the un-lifted twin of JitParent)."""
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x)
        x = Block()(x)
        return Block()(x)


class NamedJitParent(nn.Module):
    """Dense(4) -> nn.jit(Block)(name="blk") -> nn.jit(Block)()."""
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x)
        x = nn.jit(Block)(name="blk")(x)
        return nn.jit(Block)()(x)


class JitJitParent(nn.Module):
    """Dense(4) -> nn.jit(nn.jit(Block))() -> nn.jit(Block)()."""
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x)
        x = nn.jit(nn.jit(Block))()(x)
        return nn.jit(Block)()(x)


class MixedParent(nn.Module):
    """Dense(4) -> Block() -> nn.jit(Block)() -> Block(): auto-name counters per class name."""
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x)
        x = Block()(x)
        x = nn.jit(Block)()(x)
        return Block()(x)


class DropMlp(nn.Module):
    """Dense(8) -> Dropout(0.5, deterministic=not train) -> Dense(3); `train` is a field."""
    train: bool = False

    @nn.compact
    def __call__(self, x):
        train = self.train
        x = nn.Dense(8)(x)
        x = nn.Dropout(0.5, deterministic=not train)(x)
        return nn.Dense(3)(x)


class DropParent(nn.Module):
    """Dense(5) -> child (DropMlp(train) or nn.jit(DropMlp)(train)) -> Dropout(0.5)."""
    lifted: bool
    train: bool = False

    @nn.compact
    def __call__(self, x):
        train = self.train
        x = nn.Dense(5)(x)
        child = nn.jit(DropMlp)(train) if self.lifted else DropMlp(train)
        x = child(x)
        return nn.Dropout(0.5, deterministic=not train)(x)


class BnMlp(nn.Module):
    """Dense(6) -> BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5) -> relu -> Dense(2); `train` is a field."""
    train: bool = False

    @nn.compact
    def __call__(self, x):
        train = self.train
        x = nn.Dense(6)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
        x = nn.relu(x)
        return nn.Dense(2)(x)


class BnParent(nn.Module):
    """Dense(4) -> child (BnMlp(train) or nn.jit(BnMlp)(train))."""
    lifted: bool
    train: bool = False

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x)
        child = nn.jit(BnMlp)(self.train) if self.lifted else BnMlp(self.train)
        return child(x)


# Section 4 models
class Named(nn.Module):
    """Dense(3) -> relu -> Dense(4, name="head")."""
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(3)(x)
        x = nn.relu(x)
        return nn.Dense(4, name="head")(x)


class Shared(nn.Module):
    """d = Dense(3); y = d(relu(d(x))) -- one instance called twice -> Dense(2)."""
    @nn.compact
    def __call__(self, x):
        d = nn.Dense(3)
        x = d(x)
        x = d(nn.relu(x))
        return nn.Dense(2)(x)


class SetupStyle(nn.Module):
    """setup: self.enc = Dense(3); self.layers = [Dense(3), Dense(2)]; enc -> relu -> layers."""
    def setup(self):
        self.enc = nn.Dense(3)
        self.layers = [nn.Dense(3), nn.Dense(2)]

    def __call__(self, x):
        x = nn.relu(self.enc(x))
        for layer in self.layers:
            x = layer(x)
        return x


class SetupDict(nn.Module):
    """setup: self.heads = {"a": Dense(2), "b": Dense(2)}; y = heads["a"](x) + heads["b"](x)."""
    def setup(self):
        self.heads = {"a": nn.Dense(2), "b": nn.Dense(2)}

    def __call__(self, x):
        return self.heads["a"](x) + self.heads["b"](x)


class SetupJit(nn.Module):
    """setup: self.block = nn.jit(Block)(); self.out = Dense(2)."""
    def setup(self):
        self.block = nn.jit(Block)()
        self.out = nn.Dense(2)

    def __call__(self, x):
        return self.out(self.block(x))


class SeqWrap(nn.Module):
    """Sequential([Dense(3), relu, Dense(2)]) as a compact child."""
    @nn.compact
    def __call__(self, x):
        return nn.Sequential([nn.Dense(3), nn.relu, nn.Dense(2)])(x)


class CollideExplicit(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(3, name="a")(x)
        return nn.Dense(3, name="a")(x)


class CollideAuto(nn.Module):
    """An explicit name equal to an auto-name already taken."""
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(3)(x)
        return nn.Dense(3, name="Dense_0")(x)


class AutoAfterExplicit(nn.Module):
    """An explicit name "Dense_0" first, then an unnamed Dense."""
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(3, name="Dense_0")(x)
        return nn.Dense(3)(x)


class CollideJit(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.jit(Block)(name="blk")(x)
        return nn.jit(Block)(name="blk")(x)


class CollideSetup(nn.Module):
    def setup(self):
        self.a = nn.Dense(3, name="b")
        self.b = nn.Dense(3)

    def __call__(self, x):
        return self.b(self.a(x))


class CollideParamSubmodule(nn.Module):
    """A param and a submodule with the same name."""
    @nn.compact
    def __call__(self, x):
        self.param("w", nn.initializers.zeros, (1,))
        return nn.Dense(3, name="w")(x)


class Mlp(nn.Module):
    """Dense(4) -> relu -> Dense(2)."""
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(4)(x)
        x = nn.relu(x)
        return nn.Dense(2)(x)


# ----------------------------------------------------------------------------- section 1
def init_apply(model, seed, x, **kw):
    v = model.init(jax.random.PRNGKey(seed), x, **kw)
    y = model.apply(v, x, **kw)
    return v, y


def section_lift_names():
    cases = []
    x = make_x((2, 3), 100)
    specs = [
        ("parent_jit_children", "JitParent", JitParent, JitParent.__doc__),
        ("parent_plain_children", "PlainParent", PlainParent, PlainParent.__doc__),
        ("parent_named_jit_child", "NamedJitParent", NamedJitParent, NamedJitParent.__doc__),
        ("parent_jit_of_jit_child", "JitJitParent", JitJitParent, JitJitParent.__doc__),
        ("parent_mixed_children", "MixedParent", MixedParent, MixedParent.__doc__),
        ("top_level_jit_block", "nn.jit(Block)", lambda: nn.jit(Block)(), "nn.jit(Block)() at the top level"),
        ("top_level_plain_block", "Block", lambda: Block(), "Block() at the top level"),
        ("top_level_jit_of_jit_block", "nn.jit(nn.jit(Block))", lambda: nn.jit(nn.jit(Block))(),
         "nn.jit(nn.jit(Block))() at the top level"),
    ]
    for seed in (0, 7):
        for key, cls_name, ctor, desc in specs:
            m = ctor()
            v, y = init_apply(m, seed, x)
            cases.append(dict(
                case=key, model=cls_name, description=desc.strip(), seed=seed,
                init="model.init(jax.random.PRNGKey(seed), x)", apply="model.apply(variables, x)",
                class_name=type(m).__name__,
                block="Block = Dense(3) -> relu -> Dense(3) (nn.compact, default inits)",
                x=farr(x), variable_paths=paths(v), variable_shapes=shapes(v), variables=tree(v), output=farr(y)))
    # The same variables through the plain and the lifted parent (names differ, so map them).
    return dict(
        description="Parents with nn.jit children: init variable trees (names like JitBlock_0) and apply outputs.",
        block="Dense(3) -> relu -> Dense(3)",
        lifted_class_names={"nn.jit(Block)": nn.jit(Block).__name__,
                            "nn.jit(nn.jit(Block))": nn.jit(nn.jit(Block)).__name__,
                            "nn.jit(nn.Dense)": nn.jit(nn.Dense).__name__},
        cases=cases)


# ----------------------------------------------------------------------------- section 2
def section_rng_forks():
    cases = []
    x = make_x((4, 5), 200)
    for seed in (0, 3):
        rngs_init = {'params': jax.random.PRNGKey(seed), 'dropout': jax.random.PRNGKey(seed + 1)}
        rngs_apply = {'dropout': jax.random.PRNGKey(seed + 2)}
        # Top level: plain vs nn.jit. The parameter trees have the same names, so the lifted module
        # is also applied to the plain module's variables (isolates the dropout-mask difference).
        P, J = (lambda t: DropMlp(train=t)), (lambda t: nn.jit(DropMlp)(train=t))
        vp = P(False).init(rngs_init, x)
        vj = J(False).init(rngs_init, x)
        yp = P(True).apply(vp, x, rngs=rngs_apply)
        yj_own = J(True).apply(vj, x, rngs=rngs_apply)
        yj_plainvars = J(True).apply(vp, x, rngs=rngs_apply)
        y_eval_p = P(False).apply(vp, x)
        y_eval_j = J(False).apply(vp, x)
        vpt = P(True).init(rngs_init, x)
        vjt = J(True).init(rngs_init, x)
        ypt = P(True).init_with_output(rngs_init, x)[0]
        yjt = J(True).init_with_output(rngs_init, x)[0]
        cases.append(dict(
            case="dropout_top_level", seed=seed, model="DropMlp", description=DropMlp.__doc__.strip(),
            rate=0.5, x=farr(x),
            init_rngs={"params": seed, "dropout": seed + 1}, apply_rngs={"dropout": seed + 2},
            init="DropMlp(train=False).init({'params': PRNGKey(p), 'dropout': PRNGKey(d)}, x) "
                 "(lifted: nn.jit(DropMlp)(train=False))",
            apply_train="DropMlp(train=True).apply(variables, x, rngs={'dropout': PRNGKey(a)})",
            init_train="DropMlp(train=True).init_with_output({'params': PRNGKey(p), 'dropout': PRNGKey(d)}, x)",
            plain=dict(variables=tree(vp), output_train=farr(yp), output_eval=farr(y_eval_p),
                       init_train_output=farr(ypt)),
            jit=dict(variables=tree(vj), output_train=farr(yj_own),
                     output_train_with_plain_variables=farr(yj_plainvars),
                     output_eval_with_plain_variables=farr(y_eval_j), init_train_output=farr(yjt)),
            jit_init_variables_equal_plain=trees_equal(vp, vj),
            init_train_mode_variables_equal_eval_mode={"plain": trees_equal(vp, vpt), "jit": trees_equal(vj, vjt)},
            train_outputs_equal_same_variables=bool(np.array_equal(np.asarray(yp), np.asarray(yj_plainvars))),
            train_elements_differing_same_variables=ndiff(yp, yj_plainvars)))
        # As a child (Dense(5) -> child -> Dropout(0.5)).
        out = {}
        for lifted_flag in (False, True):
            v = DropParent(lifted=lifted_flag, train=False).init(rngs_init, x)
            y = DropParent(lifted=lifted_flag, train=True).apply(v, x, rngs=rngs_apply)
            ye = DropParent(lifted=lifted_flag, train=False).apply(v, x)
            out["jit" if lifted_flag else "plain"] = dict(variable_paths=paths(v), variables=tree(v),
                                                          output_train=farr(y), output_eval=farr(ye))
        cases.append(dict(
            case="dropout_child", seed=seed, model="DropParent", description=DropParent.__doc__.strip(),
            child="DropMlp: " + DropMlp.__doc__.strip(), rate=0.5, x=farr(x),
            init_rngs={"params": seed, "dropout": seed + 1}, apply_rngs={"dropout": seed + 2},
            init="DropParent(lifted, train=False).init({'params': PRNGKey(p), 'dropout': PRNGKey(d)}, x)",
            apply_train="DropParent(lifted, train=True).apply(variables, x, rngs={'dropout': PRNGKey(a)})",
            **out))
        # BatchNorm, train mode, mutable batch_stats.
        xb = make_x((6, 5), 300 + seed)
        P, J = (lambda t: BnMlp(train=t)), (lambda t: nn.jit(BnMlp)(train=t))
        vp = P(False).init(jax.random.PRNGKey(seed), xb)
        vj = J(False).init(jax.random.PRNGKey(seed), xb)
        yp, up = P(True).apply(vp, xb, mutable=['batch_stats'])
        yj, uj = J(True).apply(vj, xb, mutable=['batch_stats'])
        yjp, ujp = J(True).apply(vp, xb, mutable=['batch_stats'])
        cases.append(dict(
            case="batchnorm_top_level", seed=seed, model="BnMlp", description=BnMlp.__doc__.strip(),
            momentum=0.9, epsilon=1e-5, x=farr(xb),
            init="BnMlp(train=False).init(PRNGKey(seed), x) (lifted: nn.jit(BnMlp)(train=False))",
            apply_train="BnMlp(train=True).apply(variables, x, mutable=['batch_stats'])",
            plain=dict(variables=tree(vp), output_train=farr(yp), updated_batch_stats=tree(up['batch_stats']),
                       output_eval=farr(P(False).apply(vp, xb))),
            jit=dict(variables=tree(vj), output_train=farr(yj), updated_batch_stats=tree(uj['batch_stats']),
                     output_train_with_plain_variables=farr(yjp),
                     updated_batch_stats_with_plain_variables=tree(ujp['batch_stats'])),
            jit_init_variables_equal_plain=trees_equal(vp, vj),
            jit_train_output_equals_plain_same_variables=bool(np.array_equal(np.asarray(yp), np.asarray(yjp)))))
        out = {}
        for lifted_flag in (False, True):
            v = BnParent(lifted=lifted_flag, train=False).init(jax.random.PRNGKey(seed), xb)
            y, u = BnParent(lifted=lifted_flag, train=True).apply(v, xb, mutable=['batch_stats'])
            out["jit" if lifted_flag else "plain"] = dict(variable_paths=paths(v), variables=tree(v),
                                                          output_train=farr(y), updated_batch_stats=tree(u['batch_stats']))
        cases.append(dict(
            case="batchnorm_child", seed=seed, model="BnParent", description=BnParent.__doc__.strip(),
            child="BnMlp: " + BnMlp.__doc__.strip(), momentum=0.9, epsilon=1e-5, x=farr(xb),
            init="BnParent(lifted, train=False).init(PRNGKey(seed), x)",
            apply_train="BnParent(lifted, train=True).apply(variables, x, mutable=['batch_stats'])", **out))
    return dict(description="Dropout and BatchNorm under nn.jit in train mode: RNG forks at init and apply.",
                cases=cases)


# ----------------------------------------------------------------------------- section 3
def initializer_specs():
    """(name, spec, callable) for every initializer nnjit has; spec names the nnjit constructor."""
    out = [
        ("lecun_normal", dict(fn="lecun_normal"), I.lecun_normal()),
        ("lecun_uniform", dict(fn="lecun_uniform"), I.lecun_uniform()),
        ("glorot_normal", dict(fn="glorot_normal"), I.glorot_normal()),
        ("glorot_uniform", dict(fn="glorot_uniform"), I.glorot_uniform()),
        ("xavier_normal", dict(fn="xavier_normal"), I.xavier_normal()),
        ("xavier_uniform", dict(fn="xavier_uniform"), I.xavier_uniform()),
        ("he_normal", dict(fn="he_normal"), I.he_normal()),
        ("he_uniform", dict(fn="he_uniform"), I.he_uniform()),
        ("kaiming_normal", dict(fn="kaiming_normal"), I.kaiming_normal()),
        ("kaiming_uniform", dict(fn="kaiming_uniform"), I.kaiming_uniform()),
    ]
    for scale in (1.0, 2.0, 0.1):
        for mode in ("fan_in", "fan_out", "fan_avg"):
            for dist in ("truncated_normal", "normal", "uniform"):
                out.append((f"variance_scaling({scale}, {mode}, {dist})",
                            dict(fn="variance_scaling", scale=scale, mode=mode, distribution=dist),
                            I.variance_scaling(scale, mode, dist)))
    out.append(("variance_scaling(1.0, fan_in, normal, in_axis=0, out_axis=1)",
                dict(fn="variance_scaling", scale=1.0, mode="fan_in", distribution="normal", in_axis=0, out_axis=1),
                I.variance_scaling(1.0, "fan_in", "normal", in_axis=0, out_axis=1)))
    out.append(("variance_scaling(2.0, fan_out, truncated_normal, in_axis=0, out_axis=1)",
                dict(fn="variance_scaling", scale=2.0, mode="fan_out", distribution="truncated_normal",
                     in_axis=0, out_axis=1),
                I.variance_scaling(2.0, "fan_out", "truncated_normal", in_axis=0, out_axis=1)))
    for s in (0.02, 0.01, 1.0, 0.5, 0.1, 3.0):
        out.append((f"normal({s})", dict(fn="normal", stddev=s), I.normal(s)))
    for s in (0.01, 1.0, 2.0, 0.3):
        out.append((f"uniform({s})", dict(fn="uniform", scale=s), I.uniform(s)))
    for s, lo, hi in ((0.02, -2.0, 2.0), (0.01, -2.0, 2.0), (1.0, -2.0, 2.0), (0.5, -1.0, 0.5),
                      (1.0, -0.25, 0.75), (0.1, 0.0, 3.0)):
        out.append((f"truncated_normal({s}, lower={lo}, upper={hi})",
                    dict(fn="truncated_normal", stddev=s, lower=lo, upper=hi),
                    I.truncated_normal(s, lower=lo, upper=hi)))
    out += [
        ("zeros", dict(fn="zeros"), I.zeros),
        ("ones", dict(fn="ones"), I.ones),
        ("constant(0.5)", dict(fn="constant", value=0.5), I.constant(0.5)),
        ("constant(-3.25)", dict(fn="constant", value=-3.25), I.constant(-3.25)),
    ]
    return out


def sampler_specs():
    """jax.random samplers (the building blocks) with the bounds nnjit's API takes."""
    out = [("normal", dict(fn="normal"), lambda k, s: jax.random.normal(k, s, jnp.float32))]
    for lo, hi in ((0.0, 1.0), (-1.0, 1.0), (2.0, 5.0), (-0.3, 0.7), (-0.5, 0.5), (0.25, 1.25), (-3.0, -1.0)):
        out.append((f"uniform({lo}, {hi})", dict(fn="uniform", minval=lo, maxval=hi),
                    (lambda lo, hi: lambda k, s: jax.random.uniform(k, s, jnp.float32, lo, hi))(lo, hi)))
    for lo, hi in ((-2.0, 2.0), (-1.0, 0.5), (-0.25, 0.75), (0.5, 0.6), (-0.1, 0.1), (1.0, 4.0), (-3.0, -1.0),
                   (-2.797764301300049, -1.311063528060913), (0.0, 3.0)):
        out.append((f"truncated_normal({lo}, {hi})", dict(fn="truncated_normal", lower=lo, upper=hi),
                    (lambda lo, hi: lambda k, s: jax.random.truncated_normal(k, lo, hi, s, jnp.float32))(lo, hi)))
    return out


def section_init_numerics():
    # (shape, seed) runs; (3, 4, 8) and (12, 10) exercise the fans (receptive field, fan_avg).
    kernel_runs = [((5, 24), 0), ((5, 24), 42), ((3, 4, 8), 1), ((12, 10), 42)]
    flat_runs = [((5, 24), 0), ((5, 24), 42), ((3, 4, 8), 1), ((7,), 0), ((2, 3), 1)]
    entries = []
    for name, spec, init in initializer_specs():
        needs_fans = spec["fn"] in ("lecun_normal", "lecun_uniform", "glorot_normal", "glorot_uniform",
                                    "xavier_normal", "xavier_uniform", "he_normal", "he_uniform",
                                    "kaiming_normal", "kaiming_uniform", "variance_scaling")
        cases = []
        print("  ", name, file=sys.stderr, flush=True)
        runs = kernel_runs if needs_fans else flat_runs
        # One jax.jit per initializer for all its (shape, key) runs: each output is the same
        # computation as jax.jit(lambda k: init(k, shape, jnp.float32))(key), traced side by side
        # (one compile instead of one per run; the generator is otherwise compile-bound).
        jitted_all = jax.jit(lambda keys: [init(keys[i], shape, jnp.float32) for i, (shape, _) in enumerate(runs)])
        keys = [jax.random.PRNGKey(seed) for _, seed in runs]
        jitted_outs = [np.asarray(o) for o in jitted_all(keys)]
        for (shape, seed), k, jitted in zip(runs, keys, jitted_outs):
            eager = np.asarray(init(k, shape, jnp.float32))
            if not cases:
                # Spot check that batching the runs does not change the numerics.
                alone = np.asarray(jax.jit(lambda k: init(k, shape, jnp.float32))(k))
                assert ndiff(alone, jitted) == 0, name
            cases.append(dict(seed=seed, key=key_words(k), shape=list(shape), eager=farr(eager), jit=farr(jitted),
                              elements_differing=ndiff(eager, jitted)))
        entries.append(dict(name=name, spec=spec, cases=cases,
                            jit_differs=any(c["elements_differing"] for c in cases),
                            elements_differing=sum(c["elements_differing"] for c in cases),
                            elements=sum(int(np.prod(c["shape"])) for c in cases)))
    samplers = []
    for name, spec, fn in sampler_specs():
        cases = []
        shape = (100,)
        jitted_fn = jax.jit(lambda k: fn(k, shape))
        for seed in (0, 5):
            k = jax.random.PRNGKey(seed)
            eager = np.asarray(fn(k, shape))
            jitted = np.asarray(jitted_fn(k))
            cases.append(dict(seed=seed, key=key_words(k), shape=list(shape), eager=farr(eager), jit=farr(jitted),
                              elements_differing=ndiff(eager, jitted)))
        samplers.append(dict(name=name, spec=spec, cases=cases,
                             jit_differs=any(c["elements_differing"] for c in cases),
                             elements_differing=sum(c["elements_differing"] for c in cases)))
    # Flax nn.jit init of a Dense with kernel_init=normal(0.02) (the ISSUE's example).
    x = make_x((2, 5), 400)
    dense_cases = []
    for seed in (0, 1, 2):
        for kinit_name, kinit in (("normal(0.02)", I.normal(0.02)), ("lecun_normal", I.lecun_normal()),
                                  ("variance_scaling(2.0, fan_in, normal)", I.variance_scaling(2.0, "fan_in", "normal"))):
            d = nn.Dense(24, kernel_init=kinit)
            vp = d.init(jax.random.PRNGKey(seed), x)
            vj = nn.jit(nn.Dense)(24, kernel_init=kinit).init(jax.random.PRNGKey(seed), x)
            kd = np.asarray(vp['params']['kernel'])
            kj = np.asarray(vj['params']['kernel'])
            dense_cases.append(dict(seed=seed, kernel_init=kinit_name, x=farr(x),
                                    plain_kernel=farr(kd), jit_kernel=farr(kj),
                                    jit_kernel_key=key_words(_lifted_kernel_key(seed)),
                                    jit_kernel_eager_numerics=farr(_eager_with_lifted_key(kinit, seed, kj.shape)),
                                    elements_differing_from_eager_numerics=ndiff(
                                        kj, _eager_with_lifted_key(kinit, seed, kj.shape))))
    return dict(
        description=("Every initializer of flax.linen.initializers that nnjit has, evaluated eagerly "
                     "(init(key, shape, jnp.float32)) and under jax.jit (jax.jit(lambda k: init(k, shape, "
                     "jnp.float32))(key)), plus the jax.random samplers; keys are jax.random.PRNGKey(seed)."),
        initializers=entries, samplers=samplers,
        flax_jit_dense=dict(
            description=("nn.Dense(24, kernel_init=...) on x (2, 5): plain init vs nn.jit(nn.Dense) init. "
                         "The lifted kernel is drawn from another key (the jit scope folds the path again); "
                         "jit_kernel_eager_numerics is the EAGER initializer on the lifted kernel's key, so "
                         "elements_differing_from_eager_numerics counts the numerics difference alone."),
            cases=dense_cases))


_KEY_CACHE = {}


def _lifted_kernel_key(seed):
    """Key of the kernel of nn.jit(nn.Dense)(...).init(PRNGKey(seed)): captured from inside the trace
    with a kernel_init that returns the key bits as the kernel (then read back)."""
    if seed in _KEY_CACHE:
        return _KEY_CACHE[seed]

    def key_init(key, shape, dtype=jnp.float32):
        data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
        return jnp.zeros(shape, jnp.uint32).reshape(-1).at[:2].set(data.astype(jnp.uint32)).reshape(shape)

    v = nn.jit(nn.Dense)(24, kernel_init=key_init, param_dtype=jnp.uint32).init(
        jax.random.PRNGKey(seed), jnp.zeros((2, 5), jnp.float32))
    words = np.asarray(v['params']['kernel']).reshape(-1)[:2].astype(np.uint32)
    _KEY_CACHE[seed] = jnp.asarray(words, dtype=jnp.uint32)
    return _KEY_CACHE[seed]


def _eager_with_lifted_key(init, seed, shape):
    return np.asarray(init(_lifted_kernel_key(seed), shape, jnp.float32))


# ----------------------------------------------------------------------------- section 4
def error_of(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 -- record whatever Flax raises
        return dict(raised=True, type=type(e).__name__, module=type(e).__module__, message=str(e))
    return dict(raised=False)


def section_naming():
    cases = []
    x3 = make_x((2, 3), 500)
    for key, m, desc in [
        ("explicit_name", Named(), Named.__doc__),
        ("shared_instance", Shared(), Shared.__doc__),
        ("setup_fields_and_list", SetupStyle(), SetupStyle.__doc__),
        ("setup_dict", SetupDict(), SetupDict.__doc__),
        ("setup_jit_child", SetupJit(), SetupJit.__doc__),
        ("sequential_top_level", nn.Sequential([nn.Dense(3), nn.relu, nn.Dense(2)]),
         "nn.Sequential([nn.Dense(3), nn.relu, nn.Dense(2)]) at the top level"),
        ("sequential_child", SeqWrap(), SeqWrap.__doc__),
        ("auto_after_explicit_dense_0", AutoAfterExplicit(), AutoAfterExplicit.__doc__),
    ]:
        for seed in (0, 3):
            r = error_of(lambda: m.init(jax.random.PRNGKey(seed), x3))
            entry = dict(case=key, model=type(m).__name__, description=desc.strip(), seed=seed, x=farr(x3),
                         init="model.init(jax.random.PRNGKey(seed), x)", apply="model.apply(variables, x)")
            if r["raised"]:
                entry["error"] = r
            else:
                v, y = init_apply(m, seed, x3)
                entry.update(variable_paths=paths(v), variable_shapes=shapes(v), variables=tree(v), output=farr(y))
            cases.append(entry)
    errors = []
    for key, m, desc in [
        ("duplicate_explicit_name", CollideExplicit(), "compact: nn.Dense(3, name='a') twice"),
        ("explicit_name_equals_auto_name", CollideAuto(), CollideAuto.__doc__),
        ("duplicate_jit_child_name", CollideJit(), "compact: nn.jit(Block)(name='blk') twice"),
        ("setup_explicit_name_equals_field", CollideSetup(),
         "setup: self.a = nn.Dense(3, name='b'); self.b = nn.Dense(3)"),
        ("param_and_submodule_same_name", CollideParamSubmodule(), CollideParamSubmodule.__doc__),
    ]:
        r = error_of(lambda: m.init(jax.random.PRNGKey(0), x3))
        errors.append(dict(case=key, model=type(m).__name__, description=desc.strip(), **r))
    return dict(description="Naming: explicit names, shared instances, setup-style children, nn.Sequential, "
                            "name collisions (what Flax raises, with the message text).",
                cases=cases, errors=errors)


# ----------------------------------------------------------------------------- section 5
def section_tabulate():
    out = []
    plain_kwargs = {'width': 200, 'force_terminal': False, 'no_color': True, 'color_system': None}
    x3 = make_x((2, 3), 600)
    for key, m, kw in [
        ("mlp", Mlp(), {}),
        ("shared", Shared(), {}),
        ("batchnorm", BnMlp(train=False), {}),
        ("batchnorm_train", BnMlp(train=True), {}),
        ("named", Named(), {}),
        ("setup_style", SetupStyle(), {}),
        ("jit_parent", JitParent(), {}),
        ("dropout_train", DropMlp(train=True), {}),
    ]:
        rngs = {'params': jax.random.PRNGKey(0), 'dropout': jax.random.PRNGKey(1)}
        entry = dict(case=key, model=type(m).__name__, description=(type(m).__doc__ or "").strip(),
                     x_shape=list(x3.shape), kwargs=kw,
                     call="model.tabulate({'params': PRNGKey(0), 'dropout': PRNGKey(1)}, x, **kwargs, "
                          "console_kwargs=...)")
        try:
            entry["console_kwargs_plain"] = plain_kwargs
            entry["text"] = m.tabulate(rngs, x3, **kw, console_kwargs=plain_kwargs)
            entry["console_kwargs_ansi"] = {'width': 200}
            entry["text_ansi"] = m.tabulate(rngs, x3, **kw, console_kwargs={'width': 200})
        except Exception as e:  # noqa: BLE001
            entry["error"] = dict(type=type(e).__name__, message=str(e), traceback=traceback.format_exc())
        out.append(entry)
    return dict(description="Module.tabulate strings. 'text' uses console_kwargs_plain (no ANSI styles); "
                            "'text_ansi' is the default styling at width 200.",
                cases=out)


# ----------------------------------------------------------------------------- main
def meta(generator_section):
    return dict(generator="tests/data/flax_lift/gen_flax_lift.py", section=generator_section,
                flax=flax.__version__, jax=jax.__version__, jaxlib=jax.lib.__version__ if hasattr(jax.lib, '__version__') else None,
                numpy=np.__version__, platform=platform.platform(), machine=platform.machine(),
                libc=" ".join(platform.libc_ver()),
                float_format="arrays: {shape, values (shortest float32 decimals), bits (float32 bit patterns)}")


def write(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    print(path, os.path.getsize(path), "bytes")


def main():
    args = sys.argv[1:]
    only = set()
    while args and args[0] == "--only":
        only.add(args[1])
        args = args[2:]
    out_dir = args[0] if args else os.path.dirname(os.path.abspath(__file__))
    if not only or "lift_tree" in only:
        write(os.path.join(out_dir, "lift_tree.json"),
              dict(meta=meta("1, 2"), lift_names=section_lift_names(), rng_forks=section_rng_forks()))
    if not only or "naming" in only:
        write(os.path.join(out_dir, "naming.json"),
              dict(meta=meta("4, 5"), naming=section_naming(), tabulate=section_tabulate()))
    if not only or "init_numerics" in only:
        write(os.path.join(out_dir, "init_numerics.json"),
              dict(meta=meta("3"), **section_init_numerics()))


if __name__ == "__main__":
    main()
