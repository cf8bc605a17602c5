"""The CUDA toolkit, or its absence, found when the workspace loads.

Memory nodes run the pool daemon and usually have no GPU and no toolkit; decode workers
have both. This rule looks for the toolkit at $SPARSEPOOL_CUDA_PATH (default
/usr/local/cuda; pass --repo_env=SPARSEPOOL_CUDA_PATH=... to Bazel) and writes @cuda:

  @cuda//:cudart_static   the static CUDA runtime and headers; without the toolkit a
                          target marked incompatible, so everything that links it (the
                          kernels, the GPU tests, the GPU benchmarks) is skipped by
                          `bazel build //...` and `bazel test //...` instead of failing
  @cuda//:defs.bzl        CUDA_AVAILABLE, NVCC (the compiler command for genrules) and
                          REQUIRES_CUDA (target_compatible_with for genrules that run
                          nvcc), for BUILD files that pick a source by it

Nothing is downloaded: the toolkit is what the machine has.
"""

_CUDART = """
cc_library(
    name = "cudart_static",
    srcs = ["lib64/libcudart_static.a"],
    hdrs = glob([
        "include/*.h",
        "include/*.hpp",
        "include/crt/**",
    ]),
    includes = ["include"],
    linkopts = [
        "-ldl",
        "-lrt",
        "-lpthread",
    ],
    linkstatic = True,
)
"""

_NO_CUDART = """
# No CUDA toolkit at {path}: whatever links the runtime is incompatible with this host
# and skipped. Install the toolkit there (or point --repo_env=SPARSEPOOL_CUDA_PATH at it)
# to build the GPU parts.
cc_library(
    name = "cudart_static",
    target_compatible_with = ["@platforms//:incompatible"],
)
"""

_NVCC_FLAGS = "-O3 -std=c++17 -gencode=arch=compute_90,code=sm_90 -Xcompiler -fPIC -I. -c"

def _cuda_configure_impl(ctx):
    path = ctx.os.environ.get("SPARSEPOOL_CUDA_PATH", "/usr/local/cuda").rstrip("/")
    available = (ctx.path(path + "/bin/nvcc").exists and
                 ctx.path(path + "/lib64/libcudart_static.a").exists and
                 ctx.path(path + "/include/cuda_runtime_api.h").exists)
    build = 'package(default_visibility = ["//visibility:public"])\n\nexports_files(["defs.bzl"])\n'
    if available:
        ctx.symlink(path + "/include", "include")
        ctx.symlink(path + "/lib64", "lib64")
        build += _CUDART
    else:
        build += _NO_CUDART.format(path = path)
    ctx.file("BUILD", build)
    ctx.file("defs.bzl", "\n".join([
        '"""Written by third_party/cuda/cuda_configure.bzl for this host."""',
        "",
        "CUDA_AVAILABLE = %s" % available,
        "CUDA_PATH = %r" % path,
        "NVCC = %r" % ("%s/bin/nvcc %s" % (path, _NVCC_FLAGS)),
        "REQUIRES_CUDA = %s" % ([] if available else ["@platforms//:incompatible"]),
        "",
    ]))

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    environ = ["SPARSEPOOL_CUDA_PATH"],
    local = True,
)
