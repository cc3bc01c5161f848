# Per-target settings of nanorlhf_kernels_cuda (included by CMakeLists.txt after the target exists).
# The CUDA target inherits the project's C++20 (CXX_STANDARD), but CMake 3.25 does not know nvcc's
# flag for it (nvcc >= 12 accepts -std=c++20) and fails at generation with "requires the language
# dialect CUDA20": teach it the flag. Newer CMake already knows it and skips this.
if(CMAKE_CUDA_COMPILER_ID STREQUAL "NVIDIA" AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0
   AND NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()
