"""How often TRAIN.replan changes a plan, replayed from real runs: the epoch ends of each
train.log of a TRAIN.minutes run are fed, epoch by epoch, to gankit.budget.replan_epochs
under two rules, the first one (the median of the last 3 epochs; keep the plan while the
run would end from one epoch early to half an epoch late) and the current one (the
median of the last PACE_EPOCHS; the band widened to a tenth of the epochs left). An epoch
takes as long as it took in the log; epochs past the log's take the median of its last 5.

    python benchmarks/replan_replay.py <run dir or train.log> [...]

Prints a Markdown table: the re-plans the run logged, and for each rule the re-plans of
the replay, its epochs and the minute its training ends (the latest the plan allows: the
budget less the final evaluation's share of what it keeps).
"""

import argparse
import datetime
import os
import re
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "wgangp"))

from gankit.budget import PACE_EPOCHS, recent_pace, replan_epochs  # noqa: E402

STAMP = re.compile(r"^\[(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)\]")
PLAN = re.compile(
    r"\((\d+) epochs of \d+\) for TRAIN.minutes=(\S+): .* (\d+) s spent on "
    r"start-up and timing, (\d+) s kept for the final evaluation"
)
EPOCH_END = re.compile(r"\[Train\]\[Epoch (\d+)/\d+\]\[Iter \d+\]")
RULES = (
    ("first: 3 epochs, fixed band", 3, 0.0),
    (f"current: {PACE_EPOCHS} epochs, a tenth of those left", PACE_EPOCHS, 0.1),
)


def when(line: str) -> datetime.datetime:
    return datetime.datetime.strptime(STAMP.match(line).group(1), "%Y/%m/%d %H:%M:%S")


def read_log(path: str) -> dict:
    """The plan (epochs, minutes, start, reserve), the epoch ends (seconds since the start)
    and the number of re-plans logged."""
    plan, ends, replans = None, {}, 0
    with open(path, encoding="utf-8") as log:
        for line in log:
            found = PLAN.search(line)
            if found and plan is None:
                epochs, minutes, spent, reserved = found.groups()
                start = when(line) - datetime.timedelta(seconds=int(spent))
                plan = {
                    "epochs": int(epochs),
                    "minutes": float(minutes),
                    "start": start,
                    "reserved": int(reserved),
                }
            elif plan and EPOCH_END.search(line):
                ends[int(EPOCH_END.search(line).group(1))] = (
                    when(line) - plan["start"]
                ).total_seconds()
            replans += "Re-planned after epoch" in line
    if plan is None or len(ends) < 3:
        raise SystemExit(f"{path}: not a TRAIN.minutes run with 3 epochs or more")
    plan["ends"] = [ends[k] for k in sorted(ends)]
    plan["replans"] = replans
    return plan


def replay(plan: dict, window: int, relative: float):
    """(re-plans, epochs, training end in minutes) of the plan under one rule."""
    ends = plan["ends"]
    took = np.diff([2 * ends[0] - ends[1]] + ends)  # the first epoch: as long as the second
    later = float(np.median(took[-5:]))
    epochs, replans, done, times = plan["epochs"], 0, 0, [ends[0] - took[0]]
    seconds = 60 * plan["minutes"]
    while done < epochs:
        times.append(times[-1] + (took[done] if done < len(took) else later))
        done += 1
        if len(times) >= 3 and done < epochs:
            pace = recent_pace(times, window)
            new = replan_epochs(
                epochs, done, seconds - plan["reserved"] - times[-1], pace, relative
            )
            replans += new != epochs
            epochs = new
    return replans, epochs, times[-1] / 60


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories or their train.log")
    args = parser.parse_args()
    header = (
        "| run | epochs seen | re-plans logged | "
        + " | ".join(f"{name}: re-plans / epochs / end (min)" for name, _, _ in RULES)
        + " | latest end |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for run in args.runs:
        path = os.path.join(run, "train.log") if os.path.isdir(run) else run
        plan = read_log(path)
        cells = [
            f"{r} / {e} / {m:.1f}"
            for r, e, m in (replay(plan, window, relative) for _, window, relative in RULES)
        ]
        latest = plan["minutes"] - (plan["reserved"] - 0.02 * 60 * plan["minutes"]) / 60
        print(
            f"| {os.path.basename(os.path.dirname(os.path.abspath(path)))} | "
            f"{len(plan['ends'])} | {plan['replans']} | {' | '.join(cells)} | {latest:.1f} |"
        )


if __name__ == "__main__":
    main()
