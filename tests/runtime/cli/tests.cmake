# tests/runtime/cli: distri-cluster (config, keys, state file, and the binary against a head).
if(TARGET distri_cli AND TARGET distri_head)
  distri_add_gtest(NAME cli_test LABELS unit
    SOURCES runtime/cli/cli_test.cc
    LIBS distri::cli distri::head distri::client nlohmann_json::nlohmann_json)
  target_compile_definitions(cli_test PRIVATE DISTRI_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                             DISTRI_CLUSTER_BINARY="$<TARGET_FILE:distri-cluster>")
  add_dependencies(cli_test distri-cluster)
endif()
