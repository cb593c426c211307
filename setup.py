"""Build of the pybind11 extension pyastore._core: the C core (csrc/*.c) with explicit C
flags, plus the C++ binding. No compiler probing, no downloads at build time.

PYASTORE_SANITIZE=1 builds with AddressSanitizer + UBSan (used by CI's sanitizer job)."""

import os

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

C_SOURCES = ["csrc/sha256.c", "csrc/container.c", "csrc/forest.c", "csrc/mlp.c",
             "csrc/transform.c", "csrc/model.c"]
C_FLAGS = ["-std=c99", "-O2", "-fPIC", "-Wall", "-Wextra", "-Werror", "-fno-fast-math",
           "-ffp-contract=off", "-D_POSIX_C_SOURCE=200809L"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
            "-fno-omit-frame-pointer", "-g"]


class BuildWithCCore(build_ext):
    """Compiles the C sources as C99 with their own flags, then links them with the binding."""

    def build_extension(self, ext):
        sanitize = os.environ.get("PYASTORE_SANITIZE") == "1"
        flags = C_FLAGS + (SANITIZE if sanitize else [])
        objects = self.compiler.compile(
            C_SOURCES, output_dir=self.build_temp, extra_postargs=flags,
            include_dirs=["csrc"],
        )
        ext.extra_objects = list(objects)
        if sanitize:
            ext.extra_compile_args = list(ext.extra_compile_args) + SANITIZE
            ext.extra_link_args = list(ext.extra_link_args) + ["-fsanitize=address,undefined"]
        super().build_extension(ext)


core = Pybind11Extension(
    "pyastore._core",
    ["csrc/bindings.cpp"],
    include_dirs=["csrc"],
    cxx_std=17,
    extra_compile_args=["-O2", "-fno-fast-math", "-ffp-contract=off"],
    libraries=["m", "pthread"],
)

setup(ext_modules=[core], cmdclass={"build_ext": BuildWithCCore})
