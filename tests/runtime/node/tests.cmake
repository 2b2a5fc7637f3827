# tests/runtime/node: the node agent (runtime/node). Included from tests/CMakeLists.txt.
#   node_test  unit  ActorProcess/ProcessSupervisor with real child processes, NodeAgent
#                    against a fake head (tests/runtime/node/fake_head.h, shared with the
#                    worker tests)
set(_node_tests ${CMAKE_CURRENT_LIST_DIR})
add_library(distri_fake_head STATIC ${_node_tests}/fake_head.cc)
target_include_directories(distri_fake_head PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(distri_fake_head PUBLIC distri::wire)

if(TARGET distri_node)
  distri_add_gtest(NAME node_test LABELS unit
    SOURCES ${_node_tests}/process_supervisor_test.cc ${_node_tests}/node_agent_test.cc
    LIBS distri::node distri_fake_head)
endif()
