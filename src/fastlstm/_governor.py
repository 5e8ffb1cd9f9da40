"""The team governor: how many threads each kernel call of a model may use, where the kernels
cannot count the machine's busy cores themselves (not Linux, a process restricted to some of
the CPUs, or ``fastlstm.set_core_check(False)``).

Shared by the models (``LSTM``, ``LSTMLayer``) and the estimator's epochs; it reads only what
the kernels report (``fl_stats``: the team and the wall time of a call) and the process's thread
setting."""

from __future__ import annotations

from . import _core

__all__ = ["TeamGovernor"]


class TeamGovernor:
    """How many threads each kernel call of a layer may use: its full team or one thread.

    Threads pay only when they get their cores. Beside another library's busy pool (numpy's
    OpenBLAS keeps its workers spinning for a while after each call, so do onnxruntime's) the
    second core is taken, and a team that meets at a barrier every step then waits for a
    parked thread: measured at S2, 1.07 ms alone became 7.3 ms right after a numpy matmul. So
    the governor times both choices for each kind of call (what it is, layer, direction, steps,
    batch): the fastest of the last ``window`` calls with the full team and with one thread,
    and the faster choice is used. One thread is tried when two full-team calls in a row ran
    ``slowdown`` times slower than the ones before them (one slow call is a neighbour's hiccup:
    inside a PyTorch training step a single-thread try after each such call cost 17 % at S2,
    float64), or every ``explore``-th call (every ``explore_rare``-th once one thread has been
    measured ``clearly`` slower); from one thread, the full team is tried every
    ``explore_early``-th call at first, every ``explore``-th later. The fastest of a few (not
    a mean) so that one call that a neighbour slowed down does not flip the choice. Results do
    not depend on the team (the kernels split outputs, never sums), only the speed does.
    """

    explore = 16       # a call in this many tries the other choice ...
    explore_rare = 64  # ... in this many when one thread was clearly slower ...
    explore_early = 4  # ... or in this many during a key's first `early_calls` on one thread
    early_calls = 32
    slowdown = 1.3     # two full-team calls this much slower than its best try one thread
    clearly = 1.5
    window = 4

    def __init__(self):
        # key -> [full-team walls, one-thread walls, calls, best full wall, full-team calls,
        #         full-team calls when one thread was last tried because the team ran slow]
        self.samples = {}

    def threads(self, key):
        """0 (the process's thread setting) or 1 for the next call of this kind. Where the
        kernels count the machine's busy cores themselves (``fastlstm.set_core_check``, on by
        default on Linux), they cut each call's team to the free cores, and the governor stands
        aside: it only guesses from wall times what that count sees directly."""
        if _core.get_num_threads() <= 1 or _core.core_check_on():
            return 0
        entry = self.samples.setdefault(key, [[], [], 0, float("inf"), 0, -1])
        full, single, calls, best_full, n_full, tried_at = entry
        entry[2] = calls + 1
        if not full:
            return 0
        if not single or min(full) <= min(single):
            # on the full team: one thread once after two calls that ran slow, or now and then
            slow = self.slowdown * min(full[:-2]) if len(full) > 2 else best_full * self.slowdown
            if len(full) >= 2 and full[-1] > slow and full[-2] > slow and tried_at != n_full:
                entry[5] = n_full
                return 1
            every = (self.explore_rare if single and min(single) > self.clearly * min(full)
                     else self.explore)
            return 1 if calls % every == every - 1 else 0
        every = self.explore_early if calls < self.early_calls else self.explore
        return 0 if calls % every == every - 1 else 1

    def report(self, key, stats):
        team, wall = stats
        entry = self.samples.get(key)
        if entry is None:
            return
        walls = entry[0 if team > 1 else 1]
        walls.append(wall)
        if team > 1:
            entry[3] = min(entry[3], wall)
            entry[4] += 1
        if len(walls) > self.window:
            del walls[0]
