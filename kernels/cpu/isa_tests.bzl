"""Tests that run once on the best ISA this CPU has and once on what a Zen 3 machine runs."""

# What an AVX2-only CPU (Zen 3: no AVX-512, no VNNI, no BF16) gives muppet's kernels and oneDNN.
FORCED_AVX2_ENV = {
    "MUPPET_ISA": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}

def cc_test_every_isa(name, **kwargs):
    """A cc_test `name`, and `name`_avx2: the same test with both ISAs capped at AVX2.

    Either machine kind then exercises the AVX2 paths, so a Zen 4 run catches a Zen 3 bug. Tests
    should depend on //kernels/cpu:test_main, which prints the ISA each run used.
    """
    native.cc_test(name = name, **kwargs)
    native.cc_test(name = name + "_avx2", env = FORCED_AVX2_ENV, **kwargs)

def py_test_every_isa(name, **kwargs):
    """A py_test `name`, and `name`_avx2 with both ISAs capped at AVX2 (see cc_test_every_isa)."""
    native.py_test(name = name, **kwargs)
    native.py_test(name = name + "_avx2", env = FORCED_AVX2_ENV, **kwargs)
