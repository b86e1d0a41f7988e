"""A plain GRU with a linear readout: the unconstrained baseline agent."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GRUAgent(nn.Module):
    """``nn.GRU`` (batch-first) followed by a linear readout of the hidden state.

    Args:
        n_inputs: input channels.
        n_outputs: readout size.
        n_hidden: GRU units per layer.
        num_layers: stacked GRU layers.

    Shapes: ``forward(ob (B, T, n_in)) -> (outputs (B, T, n_out), hidden states (B, T, n_hidden))``
    (the hidden states of the last layer).

    For the neural analyses the hidden state plays the part of the rates: ``forward`` takes the
    ``noise``/``generator`` keywords of noisy agents (no effect: a GRU has no noise), and
    :meth:`step` is the one-step map of the hidden state (single-layer GRUs).
    """

    batch_first = True

    def __init__(
        self, n_inputs: int, n_outputs: int, n_hidden: int = 128, num_layers: int = 1
    ) -> None:
        super().__init__()
        for name, value in (
            ("n_inputs", n_inputs),
            ("n_outputs", n_outputs),
            ("n_hidden", n_hidden),
            ("num_layers", num_layers),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.n_hidden = n_hidden
        self.num_layers = num_layers
        self.gru = nn.GRU(n_inputs, n_hidden, num_layers=num_layers, batch_first=True)
        self.readout = nn.Linear(n_hidden, n_outputs)

    def forward(
        self,
        ob: Tensor,
        initial_state: Tensor | None = None,
        *,
        noise: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``initial_state (num_layers, B, n_hidden)`` defaults to zeros. ``noise`` and
        ``generator`` exist for the analyses' noise switch and change nothing."""
        del noise, generator
        states, _ = self.gru(ob, initial_state)
        return self.readout(states), states

    def step(self, states: Tensor, inputs: Tensor | None = None, *, noise: bool = False) -> Tensor:
        """One GRU update h -> h' of ``states (..., n_hidden)`` (inputs ``(..., n_in)``, default 0).

        The same equations as ``nn.GRU`` (reset gate applied to the hidden term of the candidate),
        written out so that ``torch.func`` can differentiate it. Single-layer only: a stacked
        GRU's state is every layer's hidden state, more than what :meth:`forward` returns.
        """
        del noise
        if self.num_layers != 1:
            raise ValueError(
                f"step needs num_layers == 1 (the state forward returns), got {self.num_layers}"
            )
        if inputs is None:
            inputs = states.new_zeros(*states.shape[:-1], self.n_inputs)
        gates_x = inputs @ self.gru.weight_ih_l0.mT + self.gru.bias_ih_l0
        gates_h = states @ self.gru.weight_hh_l0.mT + self.gru.bias_hh_l0
        x_r, x_z, x_n = gates_x.chunk(3, dim=-1)
        h_r, h_z, h_n = gates_h.chunk(3, dim=-1)
        reset = torch.sigmoid(x_r + h_r)
        update = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        return torch.lerp(candidate, states, update)
