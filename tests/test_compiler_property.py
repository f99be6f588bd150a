"""Property: for random score_mod / mask_mod expressions from a grammar, the compiled kernel
matches the fp32 reference. The same Python mod runs on tensors (reference) and on the tracer."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from kernelscale.propose.compiler.space import Config
from test_compiler_common import inputs, max_err, run_compiled

S, H = 48, 2

INT_LEAVES = st.sampled_from(["q", "kv", "h", "b"]) | st.integers(-5, 9).map(lambda c: ("int", c))
FLOAT_LEAVES = st.sampled_from(["score", "bias", "ids_f"]) | st.floats(-2, 2).map(
    lambda c: ("float", round(c, 3))
)


def _int_exprs():
    return st.recursive(
        INT_LEAVES,
        lambda inner: st.one_of(
            st.tuples(st.sampled_from(["+", "-", "*"]), inner, inner),
            st.tuples(st.sampled_from(["//", "%"]), inner, st.integers(1, 7)),
            st.tuples(st.just("abs"), inner),
            st.tuples(st.sampled_from(["min", "max"]), inner, inner),
            st.tuples(st.sampled_from(["ids", "ids_neg"]), inner),
        ),
        max_leaves=5,
    )


def _float_exprs(ints):
    return st.recursive(
        FLOAT_LEAVES | ints.map(lambda e: ("float_of", e)),
        lambda inner: st.one_of(
            st.tuples(st.sampled_from(["+", "-", "*"]), inner, inner),
            st.tuples(st.sampled_from(["tanh", "abs", "squash_exp"]), inner),
            st.tuples(st.sampled_from(["min", "max"]), inner, inner),
            st.tuples(st.just("where"), _conds(ints), inner, inner),
        ),
        max_leaves=6,
    )


def _conds(ints):
    cmp = st.tuples(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), ints, ints)
    return st.recursive(
        cmp,
        lambda inner: st.one_of(
            st.tuples(st.sampled_from(["&", "|"]), inner, inner), st.tuples(st.just("~"), inner)
        ),
        max_leaves=3,
    )


def build(expr, env):
    """Evaluate an expression over tensors or traced values: the same code serves both."""
    if isinstance(expr, str):
        return env[expr]
    op, *args = expr
    if op in ("int", "float"):
        return args[0]
    if op == "float_of":
        return build(args[0], env) * 0.1
    if op == "ids":  # lookup of a captured int table, index wrapped into range (floor mod)
        return env["ids_t"][build(args[0], env) % S]
    if op == "ids_neg":  # the same table read at an index in [-S, 0): torch counts from the end
        return env["ids_t"][build(args[0], env) % S - S]
    vals = [build(a, env) if isinstance(a, (tuple, str)) else a for a in args]
    if op in ("+", "-", "*", "//", "%", "<", "<=", ">", ">=", "==", "!=", "&", "|"):
        a, b = vals
        return {
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "//": lambda: a // b,
            "%": lambda: a % b,
            "<": lambda: a < b,
            "<=": lambda: a <= b,
            ">": lambda: a > b,
            ">=": lambda: a >= b,
            "==": lambda: a == b,
            "!=": lambda: a != b,
            "&": lambda: a & b,
            "|": lambda: a | b,
        }[op]()
    if op == "~":
        return ~vals[0]
    if op == "abs":
        return abs(vals[0])
    if op == "tanh":
        return torch.tanh(torch.as_tensor(vals[0]).float() if not hasattr(vals[0], "node") else vals[0])
    if op == "squash_exp":  # exp of a bounded value, so scores stay finite
        return torch.exp(torch.tanh(_t(vals[0])))
    if op in ("min", "max"):
        fn = torch.minimum if op == "min" else torch.maximum
        return fn(_t(vals[0]), _t(vals[1]))
    if op == "where":
        return torch.where(_t(vals[0]), _t(vals[1]), _t(vals[2]))
    raise AssertionError(op)


def _t(x):
    return torch.tensor(x) if isinstance(x, (int, float)) else x


# Reproducible runs with no time limit per example and no shrinking: shrinking interpreted
# kernels takes minutes. Shared with the other backends' property tests.
PROPERTY_RUN = dict(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


def make_mods(score_expr, mask_expr):
    gen = torch.Generator().manual_seed(7)
    bias = torch.randn(H, 2 * S, generator=gen)  # a relative-position table per head
    ids_t = torch.randint(0, 4, (S,), generator=gen)

    def env(score, b, h, q, kv):
        return {
            "score": score,
            "b": b,
            "h": h,
            "q": q,
            "kv": kv,
            "ids_t": ids_t,
            "bias": bias[h, q - kv + S],
            "ids_f": ids_t[kv] * 0.25,
        }

    def score_mod(score, b, h, q, kv):
        return build(score_expr, env(score, b, h, q, kv))

    def mask_mod(b, h, q, kv):
        return build(mask_expr, env(None, b, h, q, kv))

    return score_mod, mask_mod


@settings(max_examples=40, **PROPERTY_RUN)
@given(score=_float_exprs(_int_exprs()), mask=st.none() | _conds(_int_exprs()))
def test_random_mods_match_reference(score, mask):
    score_mod, mask_mod = make_mods(score, mask)
    if mask is None:
        mask_mod = None
    q, k, v = inputs(B=1, Hq=H, Hkv=H, Sq=S, Skv=S, D=16)
    out, ref, _ = run_compiled(score_mod, mask_mod, q, k, v, Config(block_m=16, block_n=16), tag="prop")
    assert torch.isfinite(out).all()
    assert max_err(out, ref) < 1e-3, (score, mask)
