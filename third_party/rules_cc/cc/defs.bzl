"""Offline stand-in for @rules_cc: Bazel 4.2.3 has the C++ rules built in.

Debian's bazel-rules-cc is too new for this Bazel, and nothing may be downloaded,
so this repository only re-exports the native rules under the names rules_cc uses.
"""

cc_library = native.cc_library
cc_binary = native.cc_binary
cc_test = native.cc_test
cc_import = native.cc_import
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
