"""cuda_library: compiles .cu files with nvcc and wraps the objects in a cc_library.

Code is built as sm_90 SASS (H100/H200) plus compute_75 PTX, which the driver JIT-compiles for
any other GPU from Turing on. Headers of C++ deps are visible to nvcc as they are to g++. Where
the machine has no CUDA toolkit, the library has no objects and MUPPET_WITH_CUDA is not defined,
so dependants compile their CPU paths and GPU tests skip.
"""

load("@cuda//:defs.bzl", "HAS_CUDA", "NVCC")

_NVCC_FLAGS = [
    "-O3",
    "-std=c++20",
    "-Xcompiler",
    "-fPIC",
    "-gencode",
    "arch=compute_90,code=sm_90",
    "-gencode",
    "arch=compute_75,code=compute_75",
]

def _nvcc_objects_impl(ctx):
    contexts = [d[CcInfo].compilation_context for d in ctx.attr.deps]
    include_dirs = ["."]
    defines = []
    for c in contexts:
        include_dirs += c.includes.to_list() + c.quote_includes.to_list() + c.system_includes.to_list()
        defines += c.defines.to_list()
    inputs = depset(ctx.files.hdrs, transitive = [c.headers for c in contexts])
    objects = []
    for src in ctx.files.srcs:
        obj = ctx.actions.declare_file("_objs/%s/%s.o" % (ctx.label.name, src.basename[:-len(".cu")]))
        args = ctx.actions.args()
        args.add_all(_NVCC_FLAGS)
        args.add_all(depset(include_dirs).to_list(), before_each = "-I")
        args.add_all(["-I" + ctx.bin_dir.path, "-I" + ctx.genfiles_dir.path])
        args.add_all(defines, before_each = "-D")
        args.add_all(["-c", src.path, "-o", obj.path])
        ctx.actions.run(
            executable = ctx.attr.nvcc,
            arguments = [args],
            inputs = depset([src], transitive = [inputs]),
            outputs = [obj],
            mnemonic = "Nvcc",
            progress_message = "nvcc %s" % src.short_path,
            use_default_shell_env = True,
        )
        objects.append(obj)
    return [DefaultInfo(files = depset(objects))]

_nvcc_objects = rule(
    implementation = _nvcc_objects_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = [".cu"]),
        "hdrs": attr.label_list(allow_files = True),
        "deps": attr.label_list(providers = [CcInfo]),
        "nvcc": attr.string(),
    },
)

def cuda_library(name, srcs, hdrs = [], deps = [], testonly = False, **kwargs):
    """A cc_library of nvcc-compiled srcs (.cu); hdrs are the C++ headers it offers callers."""
    if not HAS_CUDA:
        native.cc_library(name = name, hdrs = hdrs, deps = deps, testonly = testonly, **kwargs)
        return
    _nvcc_objects(
        name = name + "_nvcc",
        srcs = srcs,
        hdrs = hdrs,
        deps = deps + ["@cuda//:cuda_headers"],
        nvcc = NVCC,
        testonly = testonly,
    )
    native.cc_library(
        name = name,
        srcs = [":" + name + "_nvcc"],
        hdrs = hdrs,
        defines = ["MUPPET_WITH_CUDA=1"],
        deps = deps + ["@cuda//:cudart"],
        testonly = testonly,
        **kwargs
    )
