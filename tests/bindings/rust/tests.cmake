# Rust bindings (bindings/rust: distri-sys + distri), `cargo test` offline against the built
# libdistri. bindings_rust_test: the API and bad arguments ("fake://"); bindings_rust_e2e:
# the embedded cluster renders what `distri generate` renders.
if(NOT TARGET distri_capi OR NOT DISTRI_BUILD_BINDINGS)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/../../capi/e2e.cmake)
find_program(DISTRI_CARGO cargo HINTS $ENV{HOME}/.cargo/bin)
if(NOT DISTRI_CARGO)
  message(STATUS "bindings/rust: cargo not found (scripts/setup installs it): Rust tests not registered")
  return()
endif()
set(_rust_env "CARGO_TARGET_DIR=${CMAKE_BINARY_DIR}/cargo"
              "DISTRI_LIB_DIR=$<TARGET_FILE_DIR:distri_capi>"
              "LD_LIBRARY_PATH=$<TARGET_FILE_DIR:distri_capi>"
              "CARGO_NET_OFFLINE=true")
set(_manifest ${PROJECT_SOURCE_DIR}/bindings/rust/Cargo.toml)
add_test(NAME bindings_rust_test
         COMMAND ${DISTRI_CARGO} test --offline --locked --quiet --manifest-path ${_manifest})
set_tests_properties(bindings_rust_test PROPERTIES LABELS unit TIMEOUT 600 ENVIRONMENT "${_rust_env}")
# The same bad-argument tests against libdistri built with AddressSanitizer (the Rust test
# binaries are not instrumented: cargo's runner preloads libasan into them, not into rustc;
# leaks are not checked).
if(TARGET distri_capi_asan)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE _libasan OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(EXISTS "${_libasan}")
    add_test(NAME bindings_rust_test_asan
             COMMAND ${DISTRI_CARGO} test --offline --locked --quiet --manifest-path ${_manifest})
    set_tests_properties(bindings_rust_test_asan PROPERTIES LABELS unit TIMEOUT 600 ENVIRONMENT
      "CARGO_TARGET_DIR=${CMAKE_BINARY_DIR}/cargo-asan;DISTRI_LIB_DIR=$<TARGET_FILE_DIR:distri_capi_asan>;LD_LIBRARY_PATH=$<TARGET_FILE_DIR:distri_capi_asan>;CARGO_NET_OFFLINE=true;CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=env LD_PRELOAD=${_libasan} ASAN_OPTIONS=detect_leaks=0")
  endif()
endif()
if(DISTRI_E2E_READY)
  add_test(NAME bindings_rust_e2e
           COMMAND ${DISTRI_CARGO} test --offline --locked --quiet --manifest-path ${_manifest}
                   -p distri --test e2e)
  set_tests_properties(bindings_rust_e2e PROPERTIES LABELS integration FIXTURES_REQUIRED capi_e2e TIMEOUT 600
                       ENVIRONMENT "${_rust_env};${DISTRI_E2E_ENV}")
endif()
