"""The gate: one-hot forward, non-zero (softmax) gradient, LSTM state carried between blocks."""

import torch

from dfs_sim.model.gate import GateController, GateEmbedding, straight_through_one_hot


def test_straight_through_forward_is_one_hot_and_backward_is_soft():
    logits = torch.randn(16, 7, generator=torch.Generator().manual_seed(1), requires_grad=True)
    probs = torch.softmax(logits, dim=1)
    mask = straight_through_one_hot(probs)
    assert torch.allclose(mask.detach(), torch.nn.functional.one_hot(probs.argmax(1), 7).float())
    assert torch.allclose(mask.sum(1), torch.ones(16))
    (mask * torch.arange(7.0)).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_gate_forward_one_hot_and_gradient_reaches_every_gate_layer():
    torch.manual_seed(0)
    embedding, controller = GateEmbedding(16, 10), GateController(10, 7)
    x = torch.randn(8, 16, 8, 8)
    state, total = None, 0
    for _ in range(3):  # three blocks share the controller
        mask, probs, state = controller.step(embedding(x), state)
        assert mask.shape == (8, 7)
        assert set(torch.unique(mask.detach()).tolist()) <= {0.0, 1.0} or torch.allclose(
            mask.detach(), torch.round(mask.detach()), atol=1e-6
        )
        assert torch.equal(mask.detach().argmax(1), probs.argmax(1))
        total = total + (mask * torch.linspace(0, 1, 7)).sum()
    total.backward()
    for module in (embedding.conv, controller.lstm, controller.fc):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_lstm_hidden_state_is_carried():
    torch.manual_seed(0)
    controller = GateController(10, 7)
    feature = torch.randn(4, 10)
    _, first, state = controller.step(feature, None)
    _, second, _ = controller.step(feature, state)
    assert not torch.allclose(first, second)
