"""Record a forward pass's dropout masks and multiply by them again, instead of drawing them anew.

The first-order meta-gradient (:mod:`dgl_ltd.metagrad`) runs the student twice more under the
distillation step's dropout masks. Restoring the random state and drawing the masks again gives the
same masks, but a Bernoulli draw per dropout call and pass is costly on wide inputs (13,381 x 767
for amazon-computers' input dropout). A :class:`DropoutTape` keeps the masks of the recorded forward
(``torch.nn.functional.dropout``, which ``nn.Dropout`` and DGL's layers call) and hands them to
the replayed forwards in order.

On the CPU the recorded call draws exactly what ``torch.dropout`` draws (one ``bernoulli_`` of the
input's shape, scaled by ``1 / (1 - p)``) and multiplies the same way, so its output and the random
state it leaves are bit for bit those of the native call. A replay that meets a different sequence
of dropout calls (another shape, more calls than recorded) is refused with :class:`TapeMismatch`;
the caller then falls back to drawing the masks again.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


class TapeMismatch(RuntimeError):
    """A replayed forward made dropout calls that the recorded forward did not make."""


class DropoutTape:
    """The dropout masks of one recorded forward, in call order.

    Examples
    --------
    >>> tape = DropoutTape()
    >>> with tape.recording():
    ...     out = model(x)            # draws masks as usual and keeps them
    >>> with tape.replaying():
    ...     again = model(x)          # same masks, nothing drawn
    """

    def __init__(self):
        self.masks: list = []
        self.position = 0

    @contextlib.contextmanager
    def recording(self):
        """Keep the masks of the dropout calls made inside the block (the calls draw as usual)."""
        self.masks, self.position = [], 0
        with _dropout_replaced(self._record):
            yield self

    @contextlib.contextmanager
    def replaying(self):
        """Multiply by the recorded masks, in order, instead of drawing; every mask must be used."""
        self.position = 0
        with _dropout_replaced(self._replay):
            yield self
        if self.position != len(self.masks):
            raise TapeMismatch(f"the replay used {self.position} of {len(self.masks)} recorded dropout masks")

    def _record(self, original, input, p=0.5, training=True, inplace=False):
        if not training or not 0.0 < p < 1.0 or input.numel() == 0:
            return original(input, p, training, inplace)
        if input.device.type == "cpu":
            noise = torch.empty_like(input).bernoulli_(1.0 - p).div_(1.0 - p)
        else:  # the fused kernel of the device; the replays multiply by its mask the same way both times
            _, keep = torch.native_dropout(input, p, True)
            noise = keep.to(input.dtype).mul_(1.0 / (1.0 - p))
        self.masks.append(noise)
        return input.mul_(noise) if inplace else input * noise

    def _replay(self, original, input, p=0.5, training=True, inplace=False):
        if not training or not 0.0 < p < 1.0 or input.numel() == 0:
            return original(input, p, training, inplace)
        if self.position >= len(self.masks) or self.masks[self.position].shape != input.shape:
            raise TapeMismatch(f"dropout call {self.position} of the replay does not match the recorded forward")
        noise = self.masks[self.position]
        self.position += 1
        return input.mul_(noise) if inplace else input * noise


@contextlib.contextmanager
def _dropout_replaced(handler):
    """``torch.nn.functional.dropout`` calls ``handler(original, ...)`` inside the block."""
    original = F.dropout

    def dropout(input, p=0.5, training=True, inplace=False):
        return handler(original, input, p, training, inplace)

    F.dropout = dropout
    try:
        yield
    finally:
        F.dropout = original
