# Patch parallelism (actors/parallel).
#   parallel_test   parallel: PatchPlan strips; synchronous (full_sync) patch-parallel UNet
#                   forward over 1-4 local-channel ranks (threads) vs the single-device UNet;
#                   tensor-parallel UNet forward over 2 and 4 ranks vs the single-device UNet
#                   (tiny_unet.h: the tiny random UNets and inputs both use)
distri_add_gtest(NAME parallel_test LABELS parallel
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/patch_plan_test.cc ${CMAKE_CURRENT_LIST_DIR}/sync_patch_unet_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/tensor_parallel_test.cc ${CMAKE_CURRENT_LIST_DIR}/tiny_unet.cc
          ${CMAKE_CURRENT_LIST_DIR}/peer_exchange_test.cc
  LIBS distri::actors distri::channel)
distri_use_torch_pch(parallel_test)

#   generate_parallel_test   parallel: the whole denoising loop over 2-4 local-channel ranks
#                   (threads): synchronous modes equal one device; displaced modes beat naive_patch;
#                   parallelism tensor equals one device
distri_add_gtest(NAME generate_parallel_test LABELS parallel
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/generate_parallel_test.cc
  LIBS distri::actors distri::channel)
distri_use_torch_pch(generate_parallel_test)

#   multiprocess_gang_test   parallel: `distri launch` + `distri generate` over UCX in 2-4 and 8
#                   separate processes: full_sync equals one device; async beats naive_patch
if(DISTRI_HAVE_UCX)
  add_test(NAME multiprocess_gang_test
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/multiprocess_gang_test.sh $<TARGET_FILE:distri> ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(multiprocess_gang_test PROPERTIES LABELS parallel TIMEOUT 600)
endif()

#   displaced_runner_gpu_test   multigpu: the displaced runner on 2 GPUs over NCCL - CUDA-graph
#                   replays equal eager forwards and the CPU runner, step after step, in three modes
if(DISTRI_HAVE_CUDA AND DISTRI_HAVE_NCCL)
  distri_add_gtest(NAME displaced_runner_gpu_test LABELS multigpu
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/displaced_runner_gpu_test.cc ${CMAKE_CURRENT_LIST_DIR}/tiny_unet.cc
    LIBS distri::actors distri::channel)
  distri_use_torch_pch(displaced_runner_gpu_test)
endif()
