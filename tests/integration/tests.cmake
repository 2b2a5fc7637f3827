# tests/integration: the multi-process runtime (label `integration`). Included from
# tests/CMakeLists.txt. A real distri-head, two distri-node agents (network namespaces when the
# test may create them, else loopback), CPU actors (distri-worker) with the sdxl-tiny model;
# images are compared with single-process `distri generate`.
#   cluster_test      integration  same image as distri generate; actor killed mid-job; node
#                                  agent killed mid-job; head crash and restart (no job lost);
#                                  kept gangs (2 and 4 ranks, CFG group channels) reused with the
#                                  same bytes, a rank of a kept gang killed mid-job
#   cluster_cli_test  integration  the distri-cluster command: up, status, submit (same image as
#                                  distri generate), logs, down (no process left)
if(TARGET distri-head AND TARGET distri-node AND TARGET distri-worker AND TARGET distri_client AND TARGET distri)
  distri_add_gtest(NAME cluster_test LABELS integration NO_DISCOVER
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/cluster_test.cc ${CMAKE_CURRENT_LIST_DIR}/test_cluster.cc
    LIBS distri::client distri::node distri_fake_head)
  target_compile_definitions(cluster_test PRIVATE
    DISTRI_TEST_CLI="$<TARGET_FILE:distri>"
    DISTRI_TEST_HEAD="$<TARGET_FILE:distri-head>"
    DISTRI_TEST_NODE="$<TARGET_FILE:distri-node>"
    DISTRI_TEST_WORKER="$<TARGET_FILE:distri-worker>")
  add_dependencies(cluster_test distri distri-head distri-node distri-worker)
  # One ctest test per case, run one at a time (each starts a cluster; the machine is small).
  gtest_discover_tests(cluster_test PROPERTIES LABELS integration RUN_SERIAL TRUE TIMEOUT 600
                       DISCOVERY_TIMEOUT 120)
endif()

if(TARGET distri-head AND TARGET distri-node AND TARGET distri-worker AND TARGET distri-cluster AND TARGET distri)
  distri_add_gtest(NAME cluster_cli_test LABELS integration NO_DISCOVER
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/cluster_cli_test.cc ${CMAKE_CURRENT_LIST_DIR}/test_cluster.cc
    LIBS distri::client distri::node distri_fake_head)
  target_compile_definitions(cluster_cli_test PRIVATE
    DISTRI_TEST_CLI="$<TARGET_FILE:distri>"
    DISTRI_TEST_HEAD="$<TARGET_FILE:distri-head>"
    DISTRI_TEST_NODE="$<TARGET_FILE:distri-node>"
    DISTRI_TEST_WORKER="$<TARGET_FILE:distri-worker>"
    DISTRI_TEST_CLUSTER="$<TARGET_FILE:distri-cluster>")
  add_dependencies(cluster_cli_test distri distri-head distri-node distri-worker distri-cluster)
  gtest_discover_tests(cluster_cli_test PROPERTIES LABELS integration RUN_SERIAL TRUE TIMEOUT 600
                       DISCOVERY_TIMEOUT 120)
endif()
