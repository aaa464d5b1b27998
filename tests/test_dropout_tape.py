"""The dropout tape: recorded masks equal the native draw bit for bit, replays draw nothing, mismatches fall back."""
import pytest
import torch
from torch import nn

from dgl_ltd.dropout_tape import DropoutTape, TapeMismatch
from dgl_ltd.metagrad import capture_rng, directional_logits


class Net(nn.Module):
    def __init__(self, extra_noise: bool = False):
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(6, 8), nn.Linear(8, 3)
        self.drop_in, self.drop_mid = nn.Dropout(0.5), nn.Dropout(0.3, inplace=True)
        self.extra_noise = extra_noise

    def forward(self, x):
        h = torch.relu(self.lin1(self.drop_in(x)))
        if self.extra_noise:  # a random op the tape does not see
            h = h + 0.1 * torch.randn_like(h)
        return self.lin2(self.drop_mid(h))


def test_recording_draws_what_native_dropout_draws_and_leaves_the_same_random_state():
    net, x = Net(), torch.randn(40, 6)
    torch.manual_seed(3)
    native = net(x)
    native_state = torch.get_rng_state()
    torch.manual_seed(3)
    tape = DropoutTape()
    with tape.recording():
        recorded = net(x)
    assert torch.equal(recorded, native)
    assert torch.equal(torch.get_rng_state(), native_state)
    assert [m.shape for m in tape.masks] == [torch.Size([40, 6]), torch.Size([40, 8])]


def test_replay_uses_the_recorded_masks_and_draws_nothing():
    net, x = Net(), torch.randn(40, 6)
    tape = DropoutTape()
    with tape.recording():
        recorded = net(x)
    torch.manual_seed(99)
    before = torch.get_rng_state()
    with tape.replaying():
        replayed = net(x)
    assert torch.equal(replayed, recorded)
    assert torch.equal(torch.get_rng_state(), before)
    with torch.no_grad():  # without the tape, a fresh draw gives other masks
        assert not torch.equal(net(x), recorded)


def test_a_replay_with_other_dropout_calls_is_refused():
    net, tape = Net(), DropoutTape()
    with tape.recording():
        net(torch.randn(40, 6))
    with pytest.raises(TapeMismatch, match="does not match"):
        with tape.replaying():
            net(torch.randn(20, 6))
    with pytest.raises(TapeMismatch, match="used 1 of 2"):
        with tape.replaying():
            net.drop_in(torch.randn(40, 6))
    assert nn.functional.dropout.__module__ == "torch.nn.functional"  # the patch is undone after an error


@pytest.mark.parametrize("extra_noise", [False, True])
def test_directional_logits_with_the_tape_equal_those_drawn_again(extra_noise):
    # the tape only saves the draws: the central difference is bit for bit that of replaying the random state,
    # also for a forward with a random op of its own (the tape path detects the draw and falls back)
    net, x = Net(extra_noise), torch.randn(40, 6)
    names = [n for n, _ in net.named_parameters()]
    params = [p.detach().clone() for p in net.parameters()]
    direction = [torch.randn_like(p) for p in params]
    torch.manual_seed(5)
    rng = capture_rng(x.device)
    tape = DropoutTape()
    with tape.recording():
        net(x)
    after = torch.get_rng_state()
    with_tape = directional_logits(net, names, params, direction, rng, x, tape=tape)
    assert torch.equal(torch.get_rng_state(), after)
    drawn_again = directional_logits(net, names, params, direction, rng, x)
    assert torch.equal(with_tape, drawn_again)
