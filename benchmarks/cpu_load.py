"""How much CPU other processes used while a benchmark measured something (shared machines)."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass


def machine_busy_s() -> float:
    """CPU seconds every process on the machine has used (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = (values + [0] * 7)[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class LoadClock:
    """Start it, do the work, read .foreign_cores: others' CPU time / wall time over that span."""

    wall0: float = 0.0
    busy0: float = 0.0
    own0: float = 0.0

    def start(self) -> LoadClock:
        self.wall0, self.busy0, self.own0 = time.perf_counter(), machine_busy_s(), own_cpu_s()
        return self

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.wall0

    @property
    def foreign_cores(self) -> float:
        others = (machine_busy_s() - self.busy0) - (own_cpu_s() - self.own0)
        return max(0.0, others) / max(self.wall_s, 1e-9)


def wait_until_idle(max_wait_s: float, threshold_cores: float = 0.3) -> float:
    """Wait (at most max_wait_s) until other processes use under threshold_cores; return their load."""
    deadline = time.monotonic() + max_wait_s
    while True:
        clock = LoadClock().start()
        time.sleep(1.0)
        if clock.foreign_cores < threshold_cores or time.monotonic() >= deadline:
            return clock.foreign_cores
        time.sleep(2.0)
