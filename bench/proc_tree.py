"""A process and all its descendants, watched through /proc: CPU seconds used and resident memory.

``Tree(pid).start()`` samples every ``every`` seconds in a thread. CPU is utime + stime of every process
ever seen in the tree, each at its last sample, so a child that exits (an upload's converter) keeps the
time it had used up to its last sample (at most ``every`` seconds of it is missed); ``cpu()`` samples at
once. RSS is the sum of the tree's resident sets at a sample; ``peak`` is the highest such sum since
``reset_peak()``. A ``cap`` (bytes) kills the tree's process group when the sum passes it, so that a
bench cannot take a shared machine's memory; ``capped`` says it happened.
"""

from __future__ import annotations

import os
import signal
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: str) -> tuple[int, int, float, int] | None:
    """(ppid, start time, CPU seconds, RSS bytes) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces
    # fields[0] is field 3 of proc(5): state; ppid 4, utime 14, stime 15, starttime 22, rss 24
    return int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE


class Tree:
    """The CPU and memory of a process tree (see the module docstring)."""

    def __init__(self, root: int, every: float = 0.05, cap: int | None = None) -> None:
        self.root, self.every, self.cap = root, every, cap
        self._cpu: dict[tuple[int, int], float] = {}  # (pid, start time) -> CPU seconds at its last sample
        self.rss = self.peak = 0
        self.capped = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Tree:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        """Read every process's stat once; keep the root's descendants."""
        procs = {}
        for name in os.listdir("/proc"):
            if name.isdigit() and (st := _stat(name)) is not None:
                procs[int(name)] = st
        children: dict[int, list[int]] = {}
        for pid, (ppid, *_rest) in procs.items():
            children.setdefault(ppid, []).append(pid)
        tree, todo = [], [self.root] if self.root in procs else []
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, ()))
        with self._lock:
            rss = 0
            for pid in tree:
                _, start, cpu, mem = procs[pid]
                self._cpu[(pid, start)] = cpu
                rss += mem
            self.rss, self.peak = rss, max(self.peak, rss)
        if self.cap is not None and rss > self.cap and not self.capped:
            self.capped = True
            try:
                os.killpg(os.getpgid(self.root), signal.SIGKILL)
            except OSError:
                pass

    def cpu(self) -> float:
        """CPU seconds the tree has used so far (sampled now)."""
        self.sample()
        with self._lock:
            return sum(self._cpu.values())

    def reset_peak(self) -> int:
        """Start a new peak from the RSS now; returns it."""
        self.sample()
        with self._lock:
            self.peak = self.rss
            return self.rss


def cpu_of(pid: int) -> float:
    """CPU seconds of one process so far (0 if it is gone)."""
    st = _stat(str(pid))
    return st[2] if st else 0.0


if __name__ == "__main__":  # how much a sample costs on this machine
    t = Tree(os.getpid())
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(100):
        t.sample()
    print(
        f"{len(os.listdir('/proc'))} /proc entries: a sample takes {(time.perf_counter() - t0) * 10:.2f} ms "
        f"({(time.process_time() - c0) * 10:.2f} ms CPU)"
    )
