"""Every backend implements gpusnn.backends.protocol.Backend: the members exist (isinstance of
the runtime-checkable protocol) and every operation has the protocol's parameters, in its
order, with its kinds (positional / keyword-only) and defaults. Every fractional update of
the project shares one keyword-only argument order."""
from __future__ import annotations

import inspect
import types

import numpy as np
import pytest

from gpusnn import reference as ref
from gpusnn.backends import NAMES, Backend, get_backend
from gpusnn.backends.gpu import update as gpu_update
from gpusnn.backends.numpy import fastpaths
from gpusnn.config import OptimConfig

BACKENDS = ["numpy", "emulated", pytest.param("cuda", marks=pytest.mark.gpu)]
OPERATIONS = ("asarray", "asnumpy", "forward", "gradients", "update")
UPDATE_ORDER = ["W_prev", "G", "G_prev", "step", "optim"]


def parameters(fn) -> list[tuple[str, inspect._ParameterKind, object]]:
    """(name, kind, default) of fn's parameters, without self."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name != "self"]


def signature_mismatches(backend) -> list[str]:
    """The operations of backend whose parameters differ from the protocol's."""
    return [op for op in OPERATIONS
            if not hasattr(backend, op) or parameters(getattr(backend, op)) != parameters(getattr(Backend, op))]


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_satisfies_the_protocol(name):
    backend = get_backend(name)
    assert isinstance(backend, Backend)
    assert signature_mismatches(backend) == []
    assert backend.name == name and backend.name in NAMES
    assert isinstance(backend.xp, types.ModuleType) and hasattr(backend.xp, "ndarray")
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    dev = backend.asarray(host)
    assert isinstance(dev, backend.xp.ndarray) and dev.flags.c_contiguous
    back = backend.asnumpy(dev)
    assert type(back) is np.ndarray and back.dtype == np.float32
    np.testing.assert_array_equal(back, host)


def test_the_checks_reject_what_is_not_a_backend():
    """The two checks above can fail: a missing member fails isinstance, a swapped or
    positional update fails the signature comparison."""

    class NoUpdate:
        name, xp = "numpy", np

        def asarray(self, a): ...
        def asnumpy(self, a): ...
        def forward(self, weights, spikes, theta, output_spikes=True): ...
        def gradients(self, weights, spikes, records, labels, T, theta, method, batch_norm=None): ...
        def host_results(self, loss, rho, records): ...

    class PositionalUpdate(NoUpdate):
        def update(self, W, G, W_prev, G_prev, step, optim): ...

    assert not isinstance(NoUpdate(), Backend)
    assert isinstance(PositionalUpdate(), Backend)          # isinstance sees names only
    assert signature_mismatches(PositionalUpdate()) == ["update"]
    assert signature_mismatches(NoUpdate()) == ["update"]


def test_every_fractional_update_has_the_same_keyword_only_order():
    fns = {"reference": ref.fractional_update, "numpy fast path": fastpaths.fractional_update,
           "gpu wrapper": gpu_update.fractional_update, "Backend.update": Backend.update}
    for where, fn in fns.items():
        params = list(inspect.signature(fn).parameters.values())
        W = next(i for i, p in enumerate(params) if p.name == "W")
        rest = params[W + 1:]
        assert [p.name for p in rest][:len(UPDATE_ORDER)] == UPDATE_ORDER, where
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest), where
        assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params[:W + 1]), where


def test_a_positional_update_call_is_refused():
    W = np.ones((2, 2), np.float32)
    G = np.full((2, 2), 0.5, np.float32)
    optim = OptimConfig(alpha=1.0, factor_clip=None, w_max=None)
    with pytest.raises(TypeError):
        ref.fractional_update(W, W.copy(), G, None, 0, optim)
    backend = get_backend("numpy")
    with pytest.raises(TypeError):
        backend.update(W, W.copy(), G, None, 0, optim)
    new = ref.fractional_update(W, W_prev=W.copy(), G=G, G_prev=None, step=0, optim=optim)
    np.testing.assert_array_equal(new, W - np.float32(optim.lr) * G)
