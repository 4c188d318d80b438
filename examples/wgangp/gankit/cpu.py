"""Paddle's fast CPU configuration, chosen once per run and never over the user's own settings."""

import os

# Paddle's bundled MKL reads this at its first computation, not at import: setting it
# in main(), before any tensor math, is enough (checked with MKL_VERBOSE=1).
MKL_ISA = "MKL_DEBUG_CPU_TYPE"
# the user's own thread settings, in the order they are read (users_threads)
THREAD_SETTINGS = ("MKL_NUM_THREADS", "OMP_NUM_THREADS")


def users_threads():
    """(setting, value) of the user's own math thread count, or None.

    MKL_NUM_THREADS is always the user's. OMP_NUM_THREADS is only when it is above 1:
    importing paddle sets it to 1 when it is unset (and paddle.distributed.launch hands that
    on), so a 1 there cannot be told from Paddle's own; MKL_NUM_THREADS=1 asks for one thread.
    """
    for name, smallest in zip(THREAD_SETTINGS, (1, 2)):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) >= smallest:
            return name, value
    return None


def _cpu_flags():
    """(vendor id, set of flags) of the first processor in /proc/cpuinfo, or None."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    fields = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("vendor_id", ""), set(fields.get("flags", "").split())


def use_fast_cpu_math() -> str:
    """Pick MKL's code path and the math thread count for this CPU; returns what was chosen.

    - AMD: Paddle's bundled MKL runs a slow generic code path on AMD processors unless
      MKL_DEBUG_CPU_TYPE names the instruction set (5: AVX2).
    - Threads, on every CPU: Paddle keeps 1 math thread unless told otherwise; one per
      available core (at most 8) was faster for the toy and MNIST steps on both a 2-core
      AMD EPYC and a 2-core Intel Xeon (benchmarks/speed.py). The cores are shared by
      the processes paddle.distributed.launch starts on this machine.
    The user's own settings (users_threads) are kept. Call before any tensor math.
    """
    chosen = []
    cpu = _cpu_flags()
    if MKL_ISA in os.environ:
        chosen.append(f"{MKL_ISA}={os.environ[MKL_ISA]} (yours)")
    elif cpu and cpu[0] == "AuthenticAMD" and {"avx2", "fma"} <= cpu[1]:
        # 5 (AVX2) only: 6 (AVX-512) was no faster for training, and Paddle's inference
        # engine died of SIGILL with it on an AVX-512 EPYC
        os.environ[MKL_ISA] = "5"
        chosen.append(f"{MKL_ISA}=5 (MKL's AVX2 path on this AMD CPU)")

    yours = users_threads()
    if yours:
        threads, source = int(yours[1]), f"{yours[0]}={yours[1]}, yours"
    else:
        processes = int(os.environ.get("PADDLE_LOCAL_SIZE", 1))
        cores = len(os.sched_getaffinity(0))
        threads = max(1, min(cores // processes, 8))
        source = (
            f"{cores} core{'s' if cores != 1 else ''}"
            + (f" / {processes} processes" if processes > 1 else "")
            + (", at most 8" if cores // processes > 8 else "")
        )
    import paddle

    paddle.base.core.set_num_threads(threads)
    chosen.append(f"{threads} math thread{'s' if threads != 1 else ''} ({source})")
    return ", ".join(chosen)
