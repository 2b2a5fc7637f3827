# actors/kernels: the CUDA kernels' host-side pieces. (The fused kernels themselves are tested
# through their LibTorch wrappers in tests/actors/model/fused_ops_gpu_test.cc.)
#   gemm_tune_file_test  unit: the GEMM tuning cache file's format, malformed lines, locked append
#   gemm_lt_gpu_test     gpu: the cuBLASLt linear layer with measured algorithm choice (gemm_lt.h)
#                        and TunedLinear vs float64 references, the cache file, graph capture
if(DISTRI_HAVE_CUDA)
  distri_add_gtest(NAME gemm_tune_file_test LABELS unit
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/gemm_tune_file_test.cc LIBS distri_kernels)

  distri_add_gtest(NAME gemm_lt_gpu_test LABELS gpu
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/gemm_lt_gpu_test.cc LIBS distri::actors)
  distri_use_torch_pch(gemm_lt_gpu_test)
endif()
