# GEMM ladder build settings (included by CMakeLists.txt once nanorlhf_kernels_cuda exists).
# Rung 11 (kernels/cuda/gemm/gemm_11_wgmma.cu) uses wgmma, setmaxnreg and TMA, which exist only in the
# architecture-specific sm_90a target. It is compiled for sm_90a alone, in an object library whose
# objects join nanorlhf_kernels_cuda: a fat binary with both an sm_90 and an sm_90a image of the same
# kernel would leave the choice between them to the driver, and the sm_90 image is only a trap stub.
set(NR_GEMM_SM90A_SRC ${CMAKE_SOURCE_DIR}/kernels/cuda/gemm/gemm_11_wgmma.cu)
if(EXISTS ${NR_GEMM_SM90A_SRC})
  get_target_property(_nr_cuda_srcs nanorlhf_kernels_cuda SOURCES)
  list(REMOVE_ITEM _nr_cuda_srcs ${NR_GEMM_SM90A_SRC})
  set_property(TARGET nanorlhf_kernels_cuda PROPERTY SOURCES ${_nr_cuda_srcs})

  add_library(nanorlhf_gemm_sm90a OBJECT ${NR_GEMM_SM90A_SRC})
  set_target_properties(nanorlhf_gemm_sm90a PROPERTIES CUDA_ARCHITECTURES OFF POSITION_INDEPENDENT_CODE ON)
  target_compile_options(nanorlhf_gemm_sm90a PRIVATE
    -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -lineinfo)
  target_include_directories(nanorlhf_gemm_sm90a PRIVATE ${CMAKE_SOURCE_DIR})
  target_compile_definitions(nanorlhf_gemm_sm90a PRIVATE NANORLHF_WITH_CUDA=1)
  target_link_libraries(nanorlhf_gemm_sm90a PRIVATE CUDA::cudart)
  target_sources(nanorlhf_kernels_cuda PRIVATE $<TARGET_OBJECTS:nanorlhf_gemm_sm90a>)
endif()
