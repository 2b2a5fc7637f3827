# tests/runtime/client: the C++ client (runtime/client) against an in-process head.
if(TARGET distri_head AND TARGET distri_client)
  distri_add_gtest(NAME client_test LABELS unit
    SOURCES runtime/client/client_test.cc
    LIBS distri::client distri::head)
endif()
