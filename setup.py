"""Build of the pybind11 extension pyastore._core: the C core with explicit C flags, plus the
C++ binding. No compiler probing, no downloads at build time.

The C sources and flags come from csrc/libastore.mk, the one build definition, which
csrc/Makefile includes too (tests/corpus/test_c_core.py checks this parser reads it as make does).
PYASTORE_SANITIZE=1 builds with AddressSanitizer + UBSan (used by CI's sanitizer job)."""

import os

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


BUILD_DEFINITION = os.path.join(HERE, "csrc", "libastore.mk")


def read_build_definition(path=BUILD_DEFINITION):
    """``NAME = words`` lines of libastore.mk -> {NAME: [words]}; comments, blanks skipped."""
    definition = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, equals, words = line.partition(" = ")
            if not equals or not name.isidentifier() or "$" in words:
                raise ValueError(f"{path}:{number}: not a plain `NAME = words` line: {line!r}")
            definition[name] = words.split()
    return definition


BUILD = read_build_definition()
C_SOURCES = ["csrc/" + source for source in BUILD["ASTORE_SOURCES"]]
C_FLAGS = BUILD["ASTORE_CFLAGS"] + BUILD["ASTORE_PIC"]
SANITIZE = BUILD["ASTORE_SANITIZE"]


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
            ext.extra_link_args = list(ext.extra_link_args) + BUILD["ASTORE_SANITIZE_LDFLAGS"]
        super().build_extension(ext)


core = Pybind11Extension(
    "pyastore._core",
    ["csrc/bindings.cpp"],
    include_dirs=["csrc"],
    cxx_std=17,
    extra_compile_args=BUILD["ASTORE_BINDING_CXXFLAGS"],
    libraries=["m", "pthread"],
)

setup(ext_modules=[core], cmdclass={"build_ext": BuildWithCCore})
