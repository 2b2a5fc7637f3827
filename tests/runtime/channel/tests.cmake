# Tests of runtime/channel, included at the end of tests/CMakeLists.txt.
#   channel_core_test   unit      dtypes, checks, reductions, handles, rendezvous (memory, TCP), env
#   channel_local_test  unit      the conformance suite on the local backend (threads), 1-4 ranks
#   channel_ucx_test    parallel  the conformance suite on UCX, one process per rank, 1-4 ranks
#   channel_ucx_cuda_test  gpu    CUDA buffers through UCX (pinned staging)
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
