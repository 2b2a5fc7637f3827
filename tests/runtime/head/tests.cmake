# tests/runtime/head: the head's managers (unit) and the head server with fake actors.
# Included from tests/CMakeLists.txt. The head is only built where SQLite is found.
if(TARGET distri_head)
  # SQLite itself too: the job store test reads page sizes and writes an older head's database.
  find_package(SQLite3 REQUIRED)
  distri_add_gtest(NAME head_test LABELS unit
    SOURCES runtime/head/job_store_test.cc
            runtime/head/job_queue_test.cc runtime/head/tables_test.cc
            runtime/head/gang_scheduler_test.cc runtime/head/metrics_test.cc
            runtime/head/version_gate_test.cc
    LIBS distri::head SQLite::SQLite3)
  distri_add_gtest(NAME head_server_test LABELS integration
    SOURCES runtime/head/head_server_test.cc runtime/head/head_versions_test.cc
    LIBS distri::head distri::client)
  distri_add_gtest(NAME head_process_test LABELS integration
    SOURCES runtime/head/head_process_test.cc
    LIBS distri::head distri::client)
  target_compile_definitions(head_process_test PRIVATE DISTRI_HEAD_BINARY="$<TARGET_FILE:distri-head>")
  add_dependencies(head_process_test distri-head)
endif()
