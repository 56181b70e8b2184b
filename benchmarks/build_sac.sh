#!/usr/bin/env bash
# Build the sac lossless audio coder (MIT licence, public repository slmdev/sac) into
# benchmarks/bin/sac, for the audio benchmarks' sac row (benchmarks/sac_peer.py).
#
#     benchmarks/build_sac.sh SAC_SOURCE_DIR      # the directory holding sac's makefile and src/
#
# sac is a benchmark peer only: nothing in neuralzip/ or tests/ uses it, and a missing
# benchmarks/bin/sac only leaves the sac row out of the benchmarks that ask for it.
#
# Compiler: sac is C++20 and uses std::format (only to print numbers in its console
# messages: "{:#x}", "{:.1f}", "{:5}", "{:0.4f}", ...). g++ 12 has no <format> header, so
# where the compiler lacks it this script puts a two-line shim header named `format` in its
# own build directory (never in the repository) that includes libfmt header-only
# (FMT_HEADER_ONLY, nothing to link) and makes fmt::format visible as std::format.
# libfmt: `apt-get install -y libfmt-dev` (Debian 12 ships 9.1). sac's sources are not edited.
#
# Flags: those of sac's own makefile (-O3 -std=c++20 -march=native -fno-math-errno), less
# its -static -s link (a dynamically linked binary serves here). sac computes in double
# precision, so its output can depend on compiler, flags and CPU: a .sac file is only
# checked here by decoding it again with the same binary on the same machine, and
# -march=native makes the binary one for this machine (rebuild it on another).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1/src" ]; then
    echo "usage: $0 SAC_SOURCE_DIR   (the directory with sac's src/; e.g. a checkout of slmdev/sac)" >&2
    exit 2
fi
SRC=$(cd "$1" && pwd)/src
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/bin"
CXX=${CXX:-g++}
JOBS=${JOBS:-2}
BUILD=$(mktemp -d "${TMPDIR:-/tmp}/sac-build.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT

# -include cstddef: src/common/md5.h names size_t without including <cstddef>, which newer
# standard libraries pull in through other headers but g++ 12's does not.
CXXFLAGS=(-O3 -std=c++20 -march=native -fno-math-errno -w -include cstddef)
if ! printf '#include <format>\n' | "$CXX" -std=c++20 -x c++ -fsyntax-only - 2>/dev/null; then
    if ! printf '#include <fmt/format.h>\n' | "$CXX" -std=c++20 -x c++ -fsyntax-only - 2>/dev/null; then
        echo "$CXX has no <format> and libfmt is missing: apt-get install -y libfmt-dev (or set CXX to a compiler with <format>)" >&2
        exit 1
    fi
    mkdir -p "$BUILD/shim"
    cat > "$BUILD/shim/format" <<'EOF'
// Stand-in for C++20 <format> (absent from g++ 12): libfmt, header-only, as std::format.
#define FMT_HEADER_ONLY
#include <fmt/format.h>
namespace std { using fmt::format; }
EOF
    CXXFLAGS+=(-I "$BUILD/shim")
    echo "using libfmt as <format> ($("$CXX" -dumpfullversion))"
fi

mkdir -p "$BUILD/obj"
echo "compiling $(find "$SRC" -name '*.cpp' | wc -l) files from $SRC with $CXX ${CXXFLAGS[*]}"
running=0
while IFS= read -r -d '' f; do
    rel=${f#"$SRC"/}
    "$CXX" "${CXXFLAGS[@]}" -c "$f" -o "$BUILD/obj/${rel//\//_}.o" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done < <(find "$SRC" -name '*.cpp' -print0 | sort -z)
while [ "$running" -gt 0 ]; do wait -n; running=$((running - 1)); done

mkdir -p "$OUT"
"$CXX" "$BUILD"/obj/*.o -o "$BUILD/sac"
mv "$BUILD/sac" "$OUT/sac"
echo "built $OUT/sac"
"$OUT/sac" 2>&1 | head -n 3 || true
