distri_add_gtest(NAME model_io_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/safetensors_test.cc ${CMAKE_CURRENT_LIST_DIR}/json_config_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/attention_backend_test.cc ${CMAKE_CURRENT_LIST_DIR}/strip_conv_test.cc
  LIBS distri::actors)
distri_use_torch_pch(model_io_test)

if(DISTRI_HAVE_CUDA)
  distri_add_gtest(NAME fused_ops_gpu_test LABELS gpu
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/fused_ops_gpu_test.cc LIBS distri::actors)
  distri_use_torch_pch(fused_ops_gpu_test)
endif()
