"""Repository rule that finds the local CUDA toolkit (nvcc, cudart, NCCL; cuDNN and cuBLASLt are
opened at run time).

It writes @cuda//:defs.bzl with HAS_CUDA, so that builds on a machine without nvcc still work
(CUDA code is then left out and its tests skip), and @cuda//:BUILD with the link targets.
Nothing is downloaded.
"""

_BUILD_WITH_CUDA = """
package(default_visibility = ["//visibility:public"])

# Link flags only; headers come from include/ below (nv/ holds extensionless headers such as
# <nv/target>, which cuda_fp16.h includes).
cc_library(
    name = "cuda_headers",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp", "include/**/*.cuh", "include/nv/**"]),
    includes = ["include"],
)

cc_library(
    name = "cudart",
    linkopts = ["-L{root}/lib64", "-lcudart", "-Wl,-rpath,{root}/lib64"],
    deps = [":cuda_headers"],
)

# cuDNN and cuBLASLt are not linked: kernels/cuda/lazy_library.h opens them at first use.

cc_library(
    name = "nccl",
    linkopts = ["-lnccl"],
    deps = [":cudart"],
)
"""

def _cuda_configure_impl(ctx):
    root = ctx.os.environ.get("CUDA_PATH", "/usr/local/cuda")
    nvcc = ctx.path(root + "/bin/nvcc")
    has_cuda = nvcc.exists
    if has_cuda:
        ctx.symlink(root + "/include", "include")
        ctx.file("BUILD", _BUILD_WITH_CUDA.format(root = root))
    else:
        ctx.file("BUILD", "# No CUDA toolkit at %s: CUDA targets are left out.\n" % root)
    ctx.file("defs.bzl", "HAS_CUDA = %s\nNVCC = \"%s\"\n" % (has_cuda, nvcc))

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    environ = ["CUDA_PATH"],
    local = True,
)
