# Patch parallelism (actors/parallel).
#   parallel_test   parallel: PatchPlan strips; synchronous (full_sync) patch-parallel UNet
#                   forward over 1-4 local-channel ranks (threads) vs the single-device UNet
distri_add_gtest(NAME parallel_test LABELS parallel
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/patch_plan_test.cc ${CMAKE_CURRENT_LIST_DIR}/sync_patch_unet_test.cc
  LIBS distri::actors distri::channel)
distri_use_torch_pch(parallel_test)

#   generate_parallel_test   parallel: the whole denoising loop over 2-4 local-channel ranks
#                   (threads): synchronous modes equal one device; displaced modes beat naive_patch
distri_add_gtest(NAME generate_parallel_test LABELS parallel
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/generate_parallel_test.cc
  LIBS distri::actors distri::channel)
distri_use_torch_pch(generate_parallel_test)
