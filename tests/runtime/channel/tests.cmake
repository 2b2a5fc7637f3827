# Tests of runtime/channel, included at the end of tests/CMakeLists.txt.
#   channel_core_test   unit      dtypes, checks, reductions, handles, rendezvous (memory, TCP), env
#   channel_local_test  unit      the conformance suite on the local backend (threads), 1-4 ranks
#   channel_ucx_test    parallel  the conformance suite on UCX, one process per rank, 1-4 ranks
#   channel_ucx_cuda_test  gpu    CUDA buffers through UCX (pinned staging)
#   channel_nccl_test   gpu       NCCL, one GPU: conformance with device buffers, graph capture,
#                                 stream ordering, abort/destroy
#   channel_nccl_multigpu_test  multigpu  NCCL, one process per GPU, gangs of 2 and 4: the
#                                 conformance suite, graph capture, destructive cases, abort
#                                 mid-collective, a dead peer (skipped with fewer GPUs)
set(_channel_tests ${CMAKE_CURRENT_LIST_DIR})

add_library(distri_channel_conformance STATIC ${_channel_tests}/conformance.cc
                                              ${_channel_tests}/conformance_failures.cc
                                              ${_channel_tests}/process_gang.cc)
target_include_directories(distri_channel_conformance PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(distri_channel_conformance PUBLIC distri::channel GTest::gtest)

distri_add_gtest(NAME channel_core_test LABELS unit
  SOURCES ${_channel_tests}/channel_core_test.cc ${_channel_tests}/rendezvous_test.cc
  LIBS distri::channel)

distri_add_gtest(NAME channel_local_test LABELS unit
  SOURCES ${_channel_tests}/local_channel_test.cc
  LIBS distri_channel_conformance)

if(DISTRI_HAVE_UCX)
  distri_add_gtest(NAME channel_ucx_test LABELS parallel
    SOURCES ${_channel_tests}/ucx_channel_test.cc
    LIBS distri_channel_conformance distri::common)
endif()

# CUDA buffers through the UCX backend's pinned staging: compiled wherever CUDA is, run on the
# GPU machine (-L gpu).
if(DISTRI_HAVE_UCX AND DISTRI_HAVE_CUDA)
  distri_add_gtest(NAME channel_ucx_cuda_test LABELS gpu
    SOURCES ${_channel_tests}/ucx_cuda_test.cc
    LIBS distri::channel CUDA::cudart)
endif()

# The NCCL backend: compiled wherever NCCL is found (CI has the CUDA toolkit and NCCL but no
# GPU), run on the GPU machine (-L gpu, -L multigpu).
if(DISTRI_HAVE_NCCL)
  add_library(distri_channel_cuda_cases STATIC ${_channel_tests}/device_buffers.cc
                                               ${_channel_tests}/nccl_cases.cc)
  target_include_directories(distri_channel_cuda_cases PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(distri_channel_cuda_cases PUBLIC distri_channel_conformance CUDA::cudart)

  distri_add_gtest(NAME channel_nccl_test LABELS gpu
    SOURCES ${_channel_tests}/nccl_channel_test.cc
    LIBS distri_channel_cuda_cases)
  distri_add_gtest(NAME channel_nccl_multigpu_test LABELS multigpu
    SOURCES ${_channel_tests}/nccl_multigpu_test.cc
    LIBS distri_channel_cuda_cases distri::common)
endif()
