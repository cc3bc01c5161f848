// The one skip-without-CUDA check of the test suite: every test that needs a CUDA device starts with
// NR_SKIP_WITHOUT_CUDA(); without a device (or driver) it is skipped with "no CUDA device", not failed.
// Only the test_cuda_* files include this (they are built only with the CUDA backend).
#pragma once
#include <gtest/gtest.h>

#include "kernels/cuda/cuda_api.h"

// GTEST_SKIP returns from the function it is written in, so this is a macro, not a function.
#define NR_SKIP_WITHOUT_CUDA()                                \
  do {                                                        \
    if (::nanorlhf::kernels::cuda::device_count() == 0) {     \
      GTEST_SKIP() << "no CUDA device";                       \
    }                                                         \
  } while (0)
