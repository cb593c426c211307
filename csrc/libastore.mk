# libastore.mk -- the one definition of how libastore is built: its sources and C flags.
#
# Read by csrc/Makefile (include), setup.py (the pybind11 extension), cross/build.sh and
# bench/contenders.py (through `make -s print-NAME`). Plain `NAME = words` lines only, so
# setup.py's tiny parser reads it exactly as make does (tests/corpus/test_c_core.py checks that).
#
# No fast-math and no FMA contraction: the same container and input give bit-identical
# scores on every target. -D_POSIX_C_SOURCE for pthreads under -std=c99.

ASTORE_SOURCES = sha256.c container.c meta.c forest.c quickscorer.c mlp.c transform.c model.c
ASTORE_HEADERS = astore.h astore_format.h astore_internal.h astore_math.h sha256.h mlp_kernel.h
ASTORE_CFLAGS = -std=c99 -O2 -Wall -Wextra -Werror -pedantic -fno-fast-math -ffp-contract=off -D_POSIX_C_SOURCE=200809L
ASTORE_PIC = -fPIC
ASTORE_LIBS = -lm -lpthread
ASTORE_SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g
ASTORE_SANITIZE_LDFLAGS = -fsanitize=address,undefined
# the C++ binding (csrc/bindings.cpp, built by setup.py): the same floating-point rules
ASTORE_BINDING_CXXFLAGS = -O2 -fno-fast-math -ffp-contract=off
