"""A plain GRU with a linear readout: the unconstrained baseline agent."""

from __future__ import annotations

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
    """

    batch_first = True

    def __init__(
        self, n_inputs: int, n_outputs: int, n_hidden: int = 128, num_layers: int = 1
    ) -> None:
        super().__init__()
        for name, value in (
            ("n_inputs", n_inputs), ("n_outputs", n_outputs), ("n_hidden", n_hidden),
            ("num_layers", num_layers),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.n_neurons = n_hidden
        self.gru = nn.GRU(n_inputs, n_hidden, num_layers=num_layers, batch_first=True)
        self.readout = nn.Linear(n_hidden, n_outputs)

    def forward(self, ob: Tensor, initial_state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``initial_state (num_layers, B, n_hidden)`` defaults to zeros."""
        states, _ = self.gru(ob, initial_state)
        return self.readout(states), states
