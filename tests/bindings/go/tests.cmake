# Go bindings (bindings/go, cgo), `go test` against the built libdistri (offline, no
# modules to download). bindings_go_test: the API and bad arguments ("fake://");
# bindings_go_e2e: the embedded cluster renders what `distri generate` renders.
if(NOT TARGET distri_capi OR NOT DISTRI_BUILD_BINDINGS)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/../../capi/e2e.cmake)
find_program(DISTRI_GO go HINTS /usr/lib/go/bin /usr/local/go/bin)
if(NOT DISTRI_GO)
  message(STATUS "bindings/go: go not found (scripts/setup installs golang-go): Go tests not registered")
  return()
endif()
set(DISTRI_GO_ENV "GOCACHE=${CMAKE_BINARY_DIR}/go-cache" "GOPATH=${CMAKE_BINARY_DIR}/go-path"
                  "GOPROXY=off" "GOFLAGS=-mod=mod" "CGO_ENABLED=1"
                  "CGO_LDFLAGS=-L$<TARGET_FILE_DIR:distri_capi> -Wl,-rpath,$<TARGET_FILE_DIR:distri_capi>")
add_test(NAME bindings_go_test
         COMMAND ${DISTRI_GO} test -count=1 -run "^Test[^E]" ./...
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/bindings/go)
set_tests_properties(bindings_go_test PROPERTIES LABELS unit TIMEOUT 600 ENVIRONMENT "${DISTRI_GO_ENV}")
# The same bad-argument tests against libdistri built with AddressSanitizer (the Go binary is
# not instrumented: libasan is preloaded; leaks are not checked).
if(TARGET distri_capi_asan)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE _libasan OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(EXISTS "${_libasan}")
    add_test(NAME bindings_go_test_asan
             COMMAND ${DISTRI_GO} test -count=1 -run "^Test[^E]" ./...
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/bindings/go)
    set_tests_properties(bindings_go_test_asan PROPERTIES LABELS unit TIMEOUT 600 ENVIRONMENT
      "GOCACHE=${CMAKE_BINARY_DIR}/go-cache-asan;GOPATH=${CMAKE_BINARY_DIR}/go-path;GOPROXY=off;GOFLAGS=-mod=mod;CGO_ENABLED=1;CGO_LDFLAGS=-L$<TARGET_FILE_DIR:distri_capi_asan> -Wl,-rpath,$<TARGET_FILE_DIR:distri_capi_asan>;LD_PRELOAD=${_libasan};ASAN_OPTIONS=detect_leaks=0")
  endif()
endif()
if(DISTRI_E2E_READY)
  add_test(NAME bindings_go_e2e
           COMMAND ${DISTRI_GO} test -count=1 -run "^TestE2E" ./...
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/bindings/go)
  set_tests_properties(bindings_go_e2e PROPERTIES LABELS integration FIXTURES_REQUIRED capi_e2e TIMEOUT 600
                       ENVIRONMENT "${DISTRI_GO_ENV};${DISTRI_E2E_ENV}")
endif()
