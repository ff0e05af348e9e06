"""Streamed layers into reused compute-device buffers.

``slots`` sets of device buffers shaped like a layer (``slots`` = prefetch + 1) take the streamed
layers in turn: while layer i computes from one slot, layer i+1 is copied into the next on a
CUDA stream of its own, and layer i+2 is read from disk into a pinned staging buffer on a
thread. Events order it: a copy into a slot waits until the compute stream has finished with
that slot's previous layer; the compute stream waits until its layer's copy has landed; a staging
buffer is refilled only after its last copy is done. Nothing is allocated per layer, and nothing
calls ``empty_cache()`` or ``gc.collect()``. On a CPU (tests) the same steps run synchronously.

Example:
    >>> import torch
    >>> t = Transfer(torch.device("cpu"), slots=2, template={"w": torch.zeros(2, 2)})
    >>> t.start(0, {"w": torch.ones(2, 2)})
    >>> t.wait(0)["w"].sum().item()
    4.0
"""

from __future__ import annotations

import torch


class Transfer:
    """Device slots (and, on CUDA, the copy stream and events) for one streaming model.
    ``template``: name → tensor of a streamed layer as stored (names without the layer prefix)."""

    def __init__(self, device: torch.device, slots: int, template: dict[str, torch.Tensor]):
        self.device = device
        self.cuda = device.type == "cuda"
        self.slots = [self._fit({}, template, device) for _ in range(slots)]
        self.staging = [self._fit({}, template, "cpu", pin=self.cuda) for _ in range(slots)]
        if self.cuda:
            self.stream = torch.cuda.Stream(device)
            self.ready = [torch.cuda.Event() for _ in range(slots)]
            self.free = [torch.cuda.Event() for _ in range(slots)]
            self.copied = [torch.cuda.Event() for _ in range(slots)]
            for e in (*self.free, *self.copied):  # recorded once, so the first waits return at once
                e.record(torch.cuda.current_stream(device))

    @staticmethod
    def _fit(buffers: dict, tensors: dict, device, pin: bool = False) -> dict:
        """Buffers for ``tensors``: the slot's own where shapes match (every layer of most models),
        new ones for a layer shaped otherwise (kept for its next turn)."""
        for name, t in tensors.items():
            have = buffers.get(name)
            if have is None or have.shape != t.shape or have.dtype != t.dtype:
                buffers[name] = torch.empty(t.shape, dtype=t.dtype, device=device, pin_memory=pin)
        return buffers

    def stage(self, slot: int, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Copy ``tensors`` (memory-mapped: this reads them from disk) into the slot's pinned staging
        buffers, once their previous copy to the device is done; run on the reading thread."""
        if self.cuda:
            self.copied[slot].synchronize()
        staging = self._fit(self.staging[slot], tensors, "cpu", pin=self.cuda)
        for name, t in tensors.items():
            staging[name].copy_(t)
        return {name: staging[name] for name in tensors}

    def start(self, slot: int, host: dict[str, torch.Tensor]) -> None:
        """Copy ``host`` (pinned) into device slot ``slot``: on CUDA, enqueued on the copy stream
        after the slot's last use; returns at once."""
        buffers = self._fit(self.slots[slot], host, self.device)
        if not self.cuda:
            for name, t in host.items():
                buffers[name].copy_(t)
            return
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(self.free[slot])
            for name, t in host.items():
                buffers[name].copy_(t, non_blocking=True)
            self.ready[slot].record(self.stream)
            self.copied[slot].record(self.stream)

    def wait(self, slot: int) -> dict[str, torch.Tensor]:
        """The slot's device tensors, once its copy has landed (the compute stream waits, the CPU
        does not)."""
        if self.cuda:
            torch.cuda.current_stream(self.device).wait_event(self.ready[slot])
        return self.slots[slot]

    def done(self, slot: int) -> None:
        """The compute stream has queued its last use of ``slot``: the next copy may follow it."""
        if self.cuda:
            self.free[slot].record(torch.cuda.current_stream(self.device))
