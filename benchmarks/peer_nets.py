"""The BPTT peer networks of the benchmark suite and the accuracy experiment (one definition).

Fully connected n_in-hidden-n_out of nonleaky neurons, ATan surrogate: snnTorch
`Linear -> Leaky(beta=1) -> Linear -> Leaky(beta=1)`, SpikingJelly `layer.Linear ->
neuron.IFNode` in multi-step mode. Both map input [T, B, n_in] to output spike counts
[B, n_out]. Needs torch and the peer; never imported by gpusnn itself.
"""
from __future__ import annotations


def make_net(trainer: str, n_in: int, hidden: int, n_out: int, cupy_neurons: bool = False):
    """(module, reset) for trainer "snntorch" or "spikingjelly"; reset(net) clears the neuron
    state after a batch (None where the module needs none). cupy_neurons: SpikingJelly's CuPy
    neuron backend (GPU only)."""
    import torch
    if trainer == "snntorch":
        import snntorch as snn
        from snntorch import surrogate

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = torch.nn.Linear(n_in, hidden)
                self.lif1 = snn.Leaky(beta=1.0, spike_grad=surrogate.atan())
                self.fc2 = torch.nn.Linear(hidden, n_out)
                self.lif2 = snn.Leaky(beta=1.0, spike_grad=surrogate.atan())

            def forward(self, x):
                mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
                out = 0
                for t in range(x.shape[0]):
                    spk1, mem1 = self.lif1(self.fc1(x[t]), mem1)
                    spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                    out = out + spk2
                return out
        return Net(), None
    if trainer != "spikingjelly":
        raise ValueError(f"unknown peer {trainer!r}")
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    seq = torch.nn.Sequential(layer.Linear(n_in, hidden), neuron.IFNode(surrogate_function=surrogate.ATan()),
                              layer.Linear(hidden, n_out), neuron.IFNode(surrogate_function=surrogate.ATan()))
    functional.set_step_mode(seq, "m")
    if cupy_neurons:
        functional.set_backend(seq, "cupy", instance=neuron.IFNode)

    class Counts(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = seq

        def forward(self, x):
            return self.net(x).sum(0)
    return Counts(), functional.reset_net
