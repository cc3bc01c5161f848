#!/usr/bin/env bash
# Grades one assignment: builds the library with the student's file in place of the reference, in a
# build folder of its own (<BUILD_DIR>-grade-<name>), builds the grader and runs it. It prints a
# score per part and the total, and writes them as JSON beside the grader.
#   usage: grade.sh ASSIGNMENT [BUILD_DIR] [SUBMISSION_DIR]
#   make grade ASSIGNMENT=01_softmax            (the Makefile calls this with BUILD_DIR = build)
# SUBMISSION_DIR: a folder holding the student's file (by default lectures/assignments/ASSIGNMENT/).
# Environment: JOBS (parallel build jobs, default nproc), GRADE_ARGS (extra flags for the grader,
# e.g. GRADE_ARGS=--gtest_filter='Part1_*').
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ASSIGNMENT=${1:-}
BUILD=${2:-build}
SUBMISSION=${3:-}
JOBS=${JOBS:-$(nproc)}

valid=$(cd "$ROOT/lectures/assignments" && ls -d [0-9][0-9]_*/ 2>/dev/null | tr -d / | tr '\n' ' ')
if [[ -z "$ASSIGNMENT" || ! -d "$ROOT/lectures/assignments/$ASSIGNMENT" || ! "$ASSIGNMENT" =~ ^[0-9][0-9]_ ]]; then
  echo "grade: unknown assignment '${ASSIGNMENT}'" >&2
  echo "usage: make grade ASSIGNMENT=<name>   (or: bash lectures/assignments/grade.sh <name> [BUILD_DIR] [SUBMISSION_DIR])" >&2
  echo "the assignments are: ${valid}" >&2
  exit 2
fi

[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
GRADE_BUILD="${BUILD%/}-grade-${ASSIGNMENT}"
cmake_args=(-DCMAKE_BUILD_TYPE=Release -DNANORLHF_ASSIGNMENT="$ASSIGNMENT" -DNANORLHF_TESTS=OFF -DNANORLHF_BENCH=OFF)
if [[ -n "$SUBMISSION" ]]; then
  SUBMISSION=$(cd "$SUBMISSION" && pwd)
  cmake_args+=(-DNANORLHF_ASSIGNMENT_DIR="$SUBMISSION")
else
  cmake_args+=(-DNANORLHF_ASSIGNMENT_DIR=)
fi
# Only the CUDA assignment needs the CUDA backend (and it follows the main build's setting);
# the others build faster without it.
if [[ "$ASSIGNMENT" == *cuda* ]]; then
  cuda=$(sed -n 's/^NANORLHF_CUDA:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
  cmake_args+=(-DNANORLHF_CUDA="${cuda:-AUTO}")
else
  cmake_args+=(-DNANORLHF_CUDA=OFF)
fi
# Until CMakeLists.txt includes cmake/assignments.cmake itself, hook it in at the end of the configure.
if ! grep -q 'cmake/assignments.cmake' "$ROOT/CMakeLists.txt"; then
  cmake_args+=(-DCMAKE_PROJECT_INCLUDE="$ROOT/lectures/assignments/include_assignments.cmake")
fi

mkdir -p "$GRADE_BUILD"
echo "grade: building ${ASSIGNMENT} with the student's file in ${GRADE_BUILD}"
if ! cmake -S "$ROOT" -B "$GRADE_BUILD" "${cmake_args[@]}" >"$GRADE_BUILD/configure.log" 2>&1; then
  tail -n 40 "$GRADE_BUILD/configure.log" >&2
  echo "grade: configuring failed (the whole log: $GRADE_BUILD/configure.log)" >&2
  exit 2
fi
if ! cmake --build "$GRADE_BUILD" --target "grade_${ASSIGNMENT}" -j "$JOBS" >"$GRADE_BUILD/build.log" 2>&1; then
  # Show the compiler's complaints (the student's file first of all), not the progress lines.
  grep -v '^\[ *[0-9]*%\]' "$GRADE_BUILD/build.log" | tail -n 80 >&2
  echo "" >&2
  echo "grade: ${ASSIGNMENT} does not build (the whole log: $GRADE_BUILD/build.log)" >&2
  echo "Total: 0 points (the code does not compile)"
  exit 1
fi
student_dir=${SUBMISSION:-$ROOT/lectures/assignments/$ASSIGNMENT}
grep -i -A3 'warning' "$GRADE_BUILD/build.log" | grep -F -A3 "$student_dir" >&2 || true

# shellcheck disable=SC2086
"$GRADE_BUILD/grade_${ASSIGNMENT}" --grade_json="$GRADE_BUILD/grade_${ASSIGNMENT}.json" ${GRADE_ARGS:-}
echo "(scores as JSON: $GRADE_BUILD/grade_${ASSIGNMENT}.json)"
