# UNet2DConditionModel and its building blocks (actors/model/unet, actors/model/blocks).
#   unet_test          unit: config reading and refusals, state-dict names, loader errors,
#                      the LayerContext seam (no Python)
#   unet_parity_test   parity: vs diffusers 0.42.1 on three tiny random UNets (ref_unet.py)
distri_add_gtest(NAME unet_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unet_config_test.cc ${CMAKE_CURRENT_LIST_DIR}/unet_model_test.cc
  LIBS distri::actors)
distri_use_torch_pch(unet_test)

distri_add_parity_fixture(AREA unet SCRIPT ${PROJECT_SOURCE_DIR}/tests/parity/ref_unet.py)
distri_add_gtest(NAME unet_parity_test LABELS parity NO_DISCOVER
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unet_parity_test.cc LIBS distri::actors)
distri_use_torch_pch(unet_parity_test)
distri_require_parity_fixture(unet_parity_test unet)

# gpu: the UNet and the VAE on CUDA in fp32/bf16/fp16 and channels_last vs the CPU (no Python).
if(DISTRI_HAVE_CUDA)
  distri_add_gtest(NAME unet_gpu_test LABELS gpu
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/unet_gpu_test.cc LIBS distri::actors)
  distri_use_torch_pch(unet_gpu_test)
endif()
