"""IF dynamics against small cases computed by hand (method.md section 1)."""
import numpy as np
import pytest

from gpusnn import reference as ref
from gpusnn.errors import ShapeError
from helpers import spikes_at


def one_layer(W, steps_by_input, T, theta=1.0):
    W = np.asarray(W, np.float32)
    return ref.forward([W], spikes_at(steps_by_input, W.shape[0], T), theta)[0]


def test_reset_to_zero_and_spike_times():
    # w = 0.6: v = 0.6, 1.2 (spike, reset), 0.6, 1.2 (spike), 0.6
    rec = one_layer([[0.6]], {0: [1, 2, 3, 4, 5]}, T=5)
    assert rec.counts[0, 0] == 2
    assert (rec.t_first[0, 0], rec.t_last[0, 0], rec.t_prev[0, 0]) == (2, 4, 2)
    assert rec.u_final[0, 0] == pytest.approx(0.6)
    np.testing.assert_array_equal(rec.spikes.to_dense()[0, :, 0], [0, 1, 0, 1, 0])


def test_threshold_is_inclusive_and_no_spike_means_zero_times():
    rec = one_layer([[0.5, 0.25]], {0: [1, 3]}, T=4)
    # neuron 0 reaches exactly theta at step 3; neuron 1 ends at 0.5
    np.testing.assert_array_equal(rec.counts[0], [1, 0])
    np.testing.assert_array_equal(rec.t_last[0], [3, 0])
    np.testing.assert_array_equal(rec.t_first[0], [3, 0])
    np.testing.assert_allclose(rec.u_final[0], [0.0, 0.5])


def test_negative_weights_delay_the_spike():
    # a (+0.7) at 1, 2, 3; b (-0.5) at 2: v = 0.7, 0.9, 1.6 -> spike at 3
    rec = one_layer([[0.7], [-0.5]], {0: [1, 2, 3], 1: [2]}, T=4)
    assert rec.counts[0, 0] == 1 and rec.t_last[0, 0] == 3
    assert rec.u_final[0, 0] == 0.0
    # inhibition can drive the potential below zero and it stays there (no leak)
    rec = one_layer([[-0.5]], {0: [1, 2]}, T=3)
    assert rec.u_final[0, 0] == pytest.approx(-1.0)


def test_same_step_propagation_through_two_layers():
    W1 = np.array([[1.0, 0.0]], np.float32)
    W2 = np.array([[1.0], [5.0]], np.float32)
    recs = ref.forward([W1, W2], spikes_at({0: [3]}, 1, 5), 1.0)
    assert recs[0].t_last[0, 0] == 3 and recs[0].counts[0, 1] == 0
    # the hidden spike at step 3 reaches the output at step 3
    assert recs[1].t_first[0, 0] == 3 and recs[1].counts[0, 0] == 1


def test_neuron_firing_on_every_step():
    T = 6
    rec = one_layer([[1.0]], {0: list(range(1, T + 1))}, T=T)
    assert rec.counts[0, 0] == T
    assert (rec.t_first[0, 0], rec.t_last[0, 0], rec.t_prev[0, 0]) == (1, T, T - 1)
    # the window of a neuron that fired on the last step is the interval that just ended
    assert ref.window_start(rec.t_last, rec.t_prev, T)[0, 0] == T - 1
    # and it is saturated, so its gate is closed
    assert ref.hidden_gate(rec.counts, rec.u_final, T)[0, 0] == 0


def test_readout_adds_the_fraction_to_the_next_spike():
    counts = np.array([[2, 2]], np.int32)
    u = np.array([[0.5, 0.25]], np.float32)
    np.testing.assert_allclose(ref.readout(counts, u, 1.0, 10), [[0.25, 0.225]])


def test_input_width_mismatch_is_a_clear_error():
    with pytest.raises(ShapeError, match="3 presynaptic rows but the input has 2 lines"):
        ref.forward([np.zeros((3, 4), np.float32)], spikes_at({0: [1]}, 2, 3), 1.0)
