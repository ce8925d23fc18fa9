"""Progress of a training run: bars on a terminal, one line per epoch elsewhere.

On a terminal (stderr is a TTY) an epoch bar and a step bar are drawn with tqdm. Where stderr is
a log file or a CI console, bars would write hundreds of carriage-return updates; there each
finished epoch prints one line instead.
"""

from __future__ import annotations

import sys
import time


def is_terminal(stream) -> bool:
    """True when ``stream`` is an interactive terminal (not a file, pipe or CI log)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Reports the epochs and steps of one training run of a ``kind`` model.

    ``enabled=False`` reports nothing; otherwise bars when stderr is a terminal, lines when not.
    """

    def __init__(self, kind: str, epochs: int, steps: int, enabled: bool = True) -> None:
        self.kind, self.epochs, self.steps = kind, epochs, steps
        self.enabled = enabled
        self.bars = enabled and is_terminal(sys.stderr)
        self._epoch_bar = None
        self._step_bar = None
        self._started = time.perf_counter()

    def _tqdm(self, **options):
        from tqdm.auto import tqdm  # tqdm.auto picks the notebook widget where there is one

        return tqdm(dynamic_ncols=True, **options)

    def start_epoch(self, epoch: int, step: int) -> None:
        """Epoch ``epoch`` (0-based) begins, at ``step`` (non-zero when resuming mid-epoch)."""
        self._started = time.perf_counter()
        if not self.bars:
            return
        if self._epoch_bar is None:
            self._epoch_bar = self._tqdm(
                total=self.epochs, initial=epoch, desc=f"train {self.kind}", unit="epoch"
            )
        self._step_bar = self._tqdm(
            total=self.steps, initial=step, leave=False, desc=f"epoch {epoch + 1}"
        )

    def step(self) -> None:
        if self._step_bar is not None:
            self._step_bar.update(1)

    def end_epoch(self) -> None:
        if self._step_bar is not None:
            self._step_bar.close()
            self._step_bar = None

    def epoch_done(self, record: dict, metrics: dict) -> None:
        """Epoch ``record["epoch"]`` finished with ``metrics`` (the monitor's figures)."""
        shown = {k: f"{v:.4g}" for k, v in metrics.items()} or {"loss": f"{record['loss']:.4g}"}
        if self._epoch_bar is not None:
            self._epoch_bar.set_postfix(shown)
            self._epoch_bar.update(1)
        elif self.enabled:
            figures = " ".join(f"{k}={v}" for k, v in shown.items())
            seconds = time.perf_counter() - self._started
            print(
                f"train {self.kind}: epoch {record['epoch']}/{self.epochs} {figures} "
                f"({seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        self.end_epoch()
        if self._epoch_bar is not None:
            self._epoch_bar.close()
            self._epoch_bar = None
