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
if(DISTRI_E2E_READY)
  add_test(NAME bindings_rust_e2e
           COMMAND ${DISTRI_CARGO} test --offline --locked --quiet --manifest-path ${_manifest}
                   -p distri --test e2e)
  set_tests_properties(bindings_rust_e2e PROPERTIES LABELS integration FIXTURES_REQUIRED capi_e2e TIMEOUT 600
                       ENVIRONMENT "${_rust_env};${DISTRI_E2E_ENV}")
endif()
