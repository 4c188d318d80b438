"""Paddle's fast CPU configuration, chosen once per run and never over the user's own settings."""

import os

# Paddle's bundled MKL reads this at its first computation, not at import: setting it
# in main(), before any tensor math, is enough (checked with MKL_VERBOSE=1).
MKL_ISA = "MKL_DEBUG_CPU_TYPE"


def use_fast_cpu_math() -> str:
    """Pick MKL's code path and the thread count for this CPU; returns what was chosen.

    Paddle's bundled MKL runs a slow generic code path on AMD processors unless
    MKL_DEBUG_CPU_TYPE names the instruction set (5: AVX2). Call before any tensor math.
    """
    if MKL_ISA in os.environ:
        return f"{MKL_ISA}={os.environ[MKL_ISA]} (yours)"
    try:
        with open("/proc/cpuinfo") as f:
            cpuinfo = f.read()
    except OSError:
        return "Paddle's defaults (no /proc/cpuinfo)"
    if "AuthenticAMD" not in cpuinfo:
        return "Paddle's defaults"
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    # 5 (AVX2) only: 6 (AVX-512) was no faster for training here, and Paddle's inference
    # engine died of SIGILL with it on an AVX-512 EPYC
    if not {"avx2", "fma"} <= flags:
        return "Paddle's defaults (no AVX2)"
    os.environ[MKL_ISA] = "5"
    if "OMP_NUM_THREADS" in os.environ:
        return f"{MKL_ISA}=5 (AMD), OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} (yours)"
    # With the fast path, 2 threads beat 1 on a 2-core EPYC (benchmarks/speed.py);
    # without it, more threads were 3x slower. Capped: the toy layers are small. The
    # cores are shared by the processes paddle.distributed.launch starts on this node.
    processes = int(os.environ.get("PADDLE_LOCAL_SIZE", 1))
    threads = max(1, min(len(os.sched_getaffinity(0)) // processes, 8))
    import paddle

    paddle.base.core.set_num_threads(threads)
    return f"{MKL_ISA}=5 (AMD), {threads} math threads"
