"""cpu.use_fast_cpu_math: MKL's AVX2 path on AMD only, one math thread per available core
(at most 8, shared by the launched processes) on every CPU, and the user's own settings
kept as they are (OMP_NUM_THREADS=1 is Paddle's own: MKL_NUM_THREADS=1 asks for one)."""

import os
import subprocess
import sys

import paddle
import pytest

from conftest import EXAMPLE_DIR
from gankit import cpu

INTEL = ("GenuineIntel", {"avx2", "fma", "avx512f"})
AMD = ("AuthenticAMD", {"avx2", "fma"})
OLD_AMD = ("AuthenticAMD", {"sse4_2"})


@pytest.fixture
def machine(monkeypatch):
    """Set the CPU (vendor, flags) and core count; returns the thread counts Paddle is given."""
    given = []
    monkeypatch.setattr(paddle.base.core, "set_num_threads", given.append)
    for name in ("MKL_DEBUG_CPU_TYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PADDLE_LOCAL_SIZE"):
        monkeypatch.delenv(name, raising=False)

    def make(cpu_flags, cores=2, **env):
        """env: the environment the command runs with."""
        monkeypatch.setattr(cpu, "_cpu_flags", lambda: cpu_flags)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return given

    return make


def test_intel_gets_a_thread_per_core_and_mkl_as_it_is(machine):
    given = machine(INTEL, cores=2)
    assert cpu.use_fast_cpu_math() == "2 math threads (2 cores)"
    assert given == [2] and "MKL_DEBUG_CPU_TYPE" not in os.environ


def test_amd_gets_mkls_avx2_path_and_a_thread_per_core(machine):
    given = machine(AMD, cores=2)
    assert cpu.use_fast_cpu_math() == (
        "MKL_DEBUG_CPU_TYPE=5 (MKL's AVX2 path on this AMD CPU), 2 math threads (2 cores)"
    )
    assert os.environ["MKL_DEBUG_CPU_TYPE"] == "5" and given == [2]


def test_amd_without_avx2_keeps_mkls_choice(machine):
    machine(OLD_AMD, cores=1)
    assert cpu.use_fast_cpu_math() == "1 math thread (1 core)"
    assert "MKL_DEBUG_CPU_TYPE" not in os.environ


def test_launched_processes_share_the_cores_and_threads_are_capped(machine):
    given = machine(INTEL, cores=2, PADDLE_LOCAL_SIZE="2")
    assert cpu.use_fast_cpu_math() == "1 math thread (2 cores / 2 processes)"
    given = machine(INTEL, cores=64, PADDLE_LOCAL_SIZE="4")
    assert cpu.use_fast_cpu_math() == "8 math threads (64 cores / 4 processes, at most 8)"
    assert given == [1, 8]


def test_the_users_settings_win(machine):
    given = machine(AMD, cores=16, MKL_DEBUG_CPU_TYPE="6", OMP_NUM_THREADS="3")
    assert cpu.use_fast_cpu_math() == (
        "MKL_DEBUG_CPU_TYPE=6 (yours), 3 math threads (OMP_NUM_THREADS=3, yours)"
    )
    assert os.environ["MKL_DEBUG_CPU_TYPE"] == "6" and given == [3]


def test_no_cpuinfo_still_sets_threads(machine):
    given = machine(None, cores=4)
    assert cpu.use_fast_cpu_math() == "4 math threads (4 cores)"
    assert given == [4] and "MKL_DEBUG_CPU_TYPE" not in os.environ


def test_cpuinfo_is_read():
    vendor, flags = cpu._cpu_flags()
    assert vendor in ("GenuineIntel", "AuthenticAMD") and "sse2" in flags


def choice_in_a_fresh_process(**env):
    """What the scripts log: they import paddle (which sets OMP_NUM_THREADS=1 when it is
    unset) before main() calls use_fast_cpu_math."""
    code = (
        f"import sys; sys.path.insert(0, {EXAMPLE_DIR!r}); import paddle; "
        "from gankit import cpu; "
        "print(cpu.use_fast_cpu_math())"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def test_paddles_own_omp_num_threads_is_not_taken_for_the_users():
    cores = len(os.sched_getaffinity(0))
    threads = min(cores, 8)
    assert choice_in_a_fresh_process().endswith(
        f"{threads} math thread{'s' if threads > 1 else ''} ({cores} core{'s' if cores > 1 else ''}"
        + (", at most 8)" if cores > 8 else ")")
    )
    assert choice_in_a_fresh_process(MKL_NUM_THREADS="1").endswith(
        "1 math thread (MKL_NUM_THREADS=1, yours)"
    )
    assert choice_in_a_fresh_process(OMP_NUM_THREADS="2").endswith(
        "2 math threads (OMP_NUM_THREADS=2, yours)"
    )


def test_omp_num_threads_1_is_taken_for_paddles_own(machine):
    """Paddle's import writes OMP_NUM_THREADS=1 when it is unset: a 1 is not the user's."""
    given = machine(INTEL, cores=2, OMP_NUM_THREADS="1")
    assert cpu.use_fast_cpu_math() == "2 math threads (2 cores)"
    given = machine(INTEL, cores=2, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    assert cpu.use_fast_cpu_math() == "1 math thread (MKL_NUM_THREADS=1, yours)"
    assert given == [2, 1]
