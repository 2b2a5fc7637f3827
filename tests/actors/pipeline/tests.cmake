distri_add_parity_fixture(AREA pipeline SCRIPT ${PROJECT_SOURCE_DIR}/tests/parity/ref_pipeline.py)
distri_add_gtest(NAME pipeline_parity_test LABELS parity NO_DISCOVER
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pipeline_parity_test.cc LIBS distri::actors nlohmann_json::nlohmann_json)
distri_use_torch_pch(pipeline_parity_test)
distri_require_parity_fixture(pipeline_parity_test pipeline)

distri_add_gtest(NAME pipeline_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pipeline_test.cc LIBS distri::actors)
distri_use_torch_pch(pipeline_test)

# The `distri` command end to end: model init -> generate -> PNG, reproducible, with bad input.
add_test(NAME distri_cli_generate
         COMMAND ${CMAKE_COMMAND} -DDISTRI=$<TARGET_FILE:distri> -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli_generate
                 -P ${CMAKE_CURRENT_LIST_DIR}/cli_generate_test.cmake)
set_tests_properties(distri_cli_generate PROPERTIES LABELS unit TIMEOUT 300)

# The same end to end on a GPU in fp16 (label gpu): channels-last UNet, fused kernels, VAE upcast.
if(DISTRI_HAVE_CUDA)
  add_test(NAME distri_cli_generate_gpu_fp16
           COMMAND ${CMAKE_COMMAND} -DDISTRI=$<TARGET_FILE:distri> -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli_generate_gpu
                   -DDEVICE=cuda -DDTYPE=fp16 -P ${CMAKE_CURRENT_LIST_DIR}/cli_generate_test.cmake)
  set_tests_properties(distri_cli_generate_gpu_fp16 PROPERTIES LABELS gpu TIMEOUT 300)
endif()
