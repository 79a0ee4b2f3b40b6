"""A sweep interrupted on purpose: Ctrl-C (KeyboardInterrupt) once some chunks were framed."""

from __future__ import annotations

from rooflax.data import dataset as dataset_module


def interrupt_after(monkeypatch, parts: int) -> list[int]:
    """Make the next sweep stop with KeyboardInterrupt after framing ``parts`` chunks; returns their indices."""
    real, seen = dataset_module.chunk_frame, []

    def frame(chunk, spec, summary):
        if len(seen) == parts:
            raise KeyboardInterrupt
        seen.append(chunk.task.index)
        return real(chunk, spec, summary)

    monkeypatch.setattr(dataset_module, "chunk_frame", frame)
    return seen
