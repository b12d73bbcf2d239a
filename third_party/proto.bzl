"""Code generation for .proto files with Debian's protoc and gRPC plugins (no download, no shim).

Protos are compiled with their package directory as the import root, so
proto/muppet/v1/job.proto is imported as "muppet/v1/job.proto" and its C++ header is
included as "muppet/v1/job.pb.h".
"""

_PROTOC = "/usr/bin/protoc"
_GRPC_CPP_PLUGIN = "/usr/bin/grpc_cpp_plugin"
_GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"

def _outputs(srcs, suffixes):
    return [src[:-len(".proto")] + suffix for src in srcs for suffix in suffixes]

def cc_grpc_library(name, srcs, deps = [], grpc = True, imports = [], **kwargs):
    """C++ messages (and gRPC stubs when grpc = True) for srcs, which live under this package.

    imports: .proto files that srcs import, compiled by the targets in deps.
    """
    suffixes = [".pb.h", ".pb.cc"] + ([".grpc.pb.h", ".grpc.pb.cc"] if grpc else [])
    outs = _outputs(srcs, suffixes)
    grpc_flags = "--grpc_out=$(RULEDIR) --plugin=protoc-gen-grpc=%s" % _GRPC_CPP_PLUGIN if grpc else ""
    native.genrule(
        name = name + "_gen",
        srcs = srcs + imports,
        outs = outs,
        cmd = "%s -I%s -I/usr/include --cpp_out=$(RULEDIR) %s %s" % (
            _PROTOC,
            native.package_name(),
            grpc_flags,
            " ".join(["$(location %s)" % s for s in srcs]),
        ),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = ["."],
        deps = deps + ["@system//:grpc", "@system//:protobuf"],
        **kwargs
    )

def py_grpc_library(name, srcs, deps = [], **kwargs):
    """Python messages and gRPC stubs for srcs.

    Uses protoc 3.21 with gRPC 1.51's Python plugin (protobuf-compiler-grpc), which match the
    python3-protobuf and python3-grpcio runtimes; Debian's python3-grpc-tools bundles a protoc from
    gRPC 1.14 that rejects proto3 `optional` fields.
    """
    outs = _outputs(srcs, ["_pb2.py", "_pb2_grpc.py"])
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = outs,
        cmd = "%s -I%s -I/usr/include --python_out=$(RULEDIR) --grpc_python_out=$(RULEDIR) --plugin=protoc-gen-grpc_python=%s %s" % (
            _PROTOC,
            native.package_name(),
            _GRPC_PYTHON_PLUGIN,
            " ".join(["$(location %s)" % s for s in srcs]),
        ),
    )
    native.py_library(
        name = name,
        srcs = outs,
        imports = ["."],
        deps = deps,
        **kwargs
    )
