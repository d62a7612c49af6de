"""The one progress display of tinyjax's long-running CLIs (train now; export and search later).

On a terminal it is a tqdm bar: done/total, rate and ETA, plus a short text (loss, images/s).
When the stream is not a terminal (a log file, a pipe, CI) every :meth:`Progress.update` writes one
plain line carrying the same fields, e.g. ::

    tinyjax.train: step 40/598, 3.61step/s, ETA 02:34, elapsed 00:11, loss 1.93 top1 0.31

Before the counted work starts, :meth:`Progress.status` says what is happening ("compiling the
train step...") on a line of its own; once a bar is drawn, status lines go above it.

The clock starts at :meth:`Progress.start`, not at construction, so the time spent importing,
restoring and compiling does not enter the rate or the ETA. Rate and ETA are tqdm's (an
exponential moving average of steps per second between updates, ``smoothing=0.3``).

Importing this module is cheap (no JAX, no TensorFlow): a CLI creates its display first, so its
first line appears before the heavy imports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Self, TextIO

from tqdm import tqdm

# What a log line shows: tqdm's own fields, in words a log reader scans for.
LINE_FORMAT = "{desc}: {unit} {n_fmt}/{total_fmt}, {rate_fmt}, ETA {remaining}, elapsed {elapsed}{postfix}"


class _Bar(tqdm):
    """tqdm with two changes: an injectable clock (tests), and, off a terminal, one plain line per
    refresh instead of a bar redrawn with carriage returns (which a log file keeps as one endless
    line); tqdm has no line mode, and overriding :meth:`display` is its documented frontend hook."""

    monitor_interval = 0  # no monitor thread: updates come from the caller, and exit stays instant

    def __init__(self, *, lines: bool, clock: Callable[[], float] | None, **kwargs):
        self._lines = lines
        self._quiet = True  # tqdm displays the initial state; a log needs no line for it
        super().__init__(**kwargs)
        self._quiet = False
        if clock is not None:
            self._time = clock
            self.start_t = self.last_print_t = clock()

    def display(self, msg=None, pos=None):
        if not self._lines:
            return super().display(msg, pos)
        if msg is not None or self._quiet:
            return False  # clearing a bar (close), or the initial state: nothing to log
        self.fp.write(self.format_meter(**{**self.format_dict, "bar_format": LINE_FORMAT}) + "\n")
        self.fp.flush()
        return True


class Progress:
    """A progress display on ``stream`` (default: ``sys.stderr`` at construction).

    ``desc`` prefixes every line (usually the program's name); ``unit`` names what is counted.
    ``terminal`` forces the mode (default: ``stream.isatty()``); ``clock`` (seconds) is for tests.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, desc: str, *, unit: str = "step", stream: TextIO | None = None,
                 terminal: bool | None = None, clock: Callable[[], float] | None = None):
        self.desc, self.unit, self.clock = desc, unit, clock
        self.stream = stream if stream is not None else sys.stderr
        if terminal is None:
            try:
                terminal = self.stream.isatty()
            except (AttributeError, ValueError):  # no isatty, or a closed stream
                terminal = False
        self.terminal = terminal
        self._bar: _Bar | None = None

    def status(self, text: str) -> None:
        """Say what the program is doing now, on a line of its own (above the bar, if one is drawn)."""
        line = f"{self.desc}: {text}"
        if self._bar is not None and self.terminal:
            self._bar.write(line, file=self.stream)  # clears the bar, writes, redraws it
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def status_from_signal_handler(self, text: str) -> None:
        """:meth:`status` for a signal handler: one unbuffered ``os.write``, because a handler
        may run in the middle of a buffered write to the same stream, which Python refuses to
        re-enter (``RuntimeError: reentrant call``). A stream without a file descriptor gets
        nothing."""
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return
        lead = "\n" if self.terminal else ""  # below the bar, not over it
        os.write(fd, f"{lead}{self.desc}: {text}\n".encode(errors="replace"))

    def start(self, total: int, n: int = 0) -> None:
        """Begin counting: ``n`` of ``total`` units are done (``n > 0`` when resuming). The rate
        and ETA are measured from this call on."""
        if self._bar is not None:
            self._bar.close()
        self._bar = _Bar(lines=not self.terminal, clock=self.clock, total=total, initial=n,
                         desc=self.desc, unit=self.unit, file=self.stream, dynamic_ncols=True,
                         # every update is a refresh: the caller already calls once per window
                         mininterval=0, miniters=1, leave=self.terminal)

    def update(self, n: int, text: str = "") -> None:
        """``n`` units are done (absolute, not an increment); ``text`` follows rate and ETA.
        Off a terminal each call writes one line, so call it once per logging window."""
        if self._bar is None:
            self.start(total=n, n=0)  # a caller that never said the total: show what we know
        self._bar.set_postfix_str(text, refresh=False)
        if n == self._bar.n:
            self._bar.refresh()  # no progress since the last call, but new text: show it
        else:
            self._bar.update(n - self._bar.n)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate; None before the rate is known."""
        if self._bar is None:
            return None
        d = self._bar.format_dict
        if not d["rate"] or not d["total"]:
            return None
        return (d["total"] - d["n"]) / d["rate"]

    def close(self) -> None:
        """Leave the final bar on screen (terminal) and stop counting."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
