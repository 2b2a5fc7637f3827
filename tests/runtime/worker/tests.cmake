# tests/runtime/worker: the actor host (runtime/worker). Included from tests/CMakeLists.txt.
#   worker_test  unit  ActorHost against a fake head with a deterministic executor defined in
#                      the test; gangs of two over the local channel, kept gangs (channels and
#                      group channels reused, dropped on cancel / other gang / re-registration)
if(TARGET distri_worker)
  distri_add_gtest(NAME worker_test LABELS unit
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/actor_host_test.cc
    LIBS distri::worker distri_fake_head)
endif()
