# End-to-end tests of the C ABI, and the shared fixture of every language's end-to-end test.
# Included by tests/capi, tests/bindings/* and tests/examples (whichever comes first defines).
# Needs the embedded cluster, `distri` (the reference) and distri-worker,
# i.e. a build with LibTorch. The fixture renders the reference once for every language.
include_guard(GLOBAL)
if(NOT TARGET distri_capi)
  return()
endif()
set(_capi_dir ${CMAKE_CURRENT_LIST_DIR})
set(DISTRI_E2E_DIR ${CMAKE_BINARY_DIR}/capi-e2e)
set(DISTRI_E2E_READY OFF)
if(DISTRI_CAPI_HAVE_EMBEDDED AND TARGET distri AND TARGET distri-worker)
  set(DISTRI_E2E_READY ON)
  add_executable(capi_png_to_rgb ${_capi_dir}/png_to_rgb.cc)
  target_link_libraries(capi_png_to_rgb PRIVATE distri::common)
  add_test(NAME capi_e2e_reference
           COMMAND ${CMAKE_COMMAND} -DDISTRI=$<TARGET_FILE:distri> -DPNG_TO_RGB=$<TARGET_FILE:capi_png_to_rgb>
                   -DOUT=${DISTRI_E2E_DIR} -P ${_capi_dir}/make_reference.cmake)
  set_tests_properties(capi_e2e_reference PROPERTIES LABELS integration FIXTURES_SETUP capi_e2e TIMEOUT 600
                       ENVIRONMENT "OMP_NUM_THREADS=2")
  # What every end-to-end test gets in its environment.
  set(DISTRI_E2E_ENV "DISTRI_E2E_MODEL=${DISTRI_E2E_DIR}/model"
                     "DISTRI_E2E_REFERENCE=${DISTRI_E2E_DIR}/reference.rgb"
                     "DISTRI_WORKER_PATH=$<TARGET_FILE:distri-worker>"
                     "OMP_NUM_THREADS=2")

  add_executable(capi_e2e_test ${_capi_dir}/capi_e2e_test.c)
  set_target_properties(capi_e2e_test PROPERTIES C_STANDARD 99 C_EXTENSIONS OFF)
  target_compile_options(capi_e2e_test PRIVATE -Wall -Wextra -Werror)
  target_link_libraries(capi_e2e_test PRIVATE distri_capi)
  add_test(NAME capi_e2e_embedded COMMAND capi_e2e_test ${DISTRI_E2E_DIR}/model ${DISTRI_E2E_DIR}/reference.rgb)
  set_tests_properties(capi_e2e_embedded PROPERTIES LABELS integration FIXTURES_REQUIRED capi_e2e TIMEOUT 600
                       ENVIRONMENT "${DISTRI_E2E_ENV}")
  if(TARGET distri_capi_asan)
    add_executable(capi_e2e_test_asan ${_capi_dir}/capi_e2e_test.c)
    set_target_properties(capi_e2e_test_asan PROPERTIES C_STANDARD 99 C_EXTENSIONS OFF)
    target_compile_options(capi_e2e_test_asan PRIVATE -Wall -Wextra -Werror -fsanitize=address)
    target_link_options(capi_e2e_test_asan PRIVATE -fsanitize=address)
    target_link_libraries(capi_e2e_test_asan PRIVATE distri_capi_asan)
    add_test(NAME capi_e2e_embedded_asan
             COMMAND capi_e2e_test_asan ${DISTRI_E2E_DIR}/model ${DISTRI_E2E_DIR}/reference.rgb)
    set_tests_properties(capi_e2e_embedded_asan PROPERTIES LABELS integration FIXTURES_REQUIRED capi_e2e
                         TIMEOUT 600 ENVIRONMENT "${DISTRI_E2E_ENV};ASAN_OPTIONS=detect_leaks=1")
  endif()
elseif(DISTRI_BUILD_TESTS)
  # Says plainly what the end-to-end tests wait for instead of silently skipping them.
  set(_missing "")
  if(NOT DISTRI_CAPI_HAVE_EMBEDDED)
    list(APPEND _missing "libdistri's embedded cluster (runtime/client + runtime/head + runtime/node)")
  endif()
  if(NOT TARGET distri)
    list(APPEND _missing "the distri command (LibTorch build)")
  endif()
  if(NOT TARGET distri-worker)
    list(APPEND _missing "the distri-worker executable")
  endif()
  string(REPLACE ";" ", " _missing "${_missing}")
  message(STATUS "capi: end-to-end tests (C, Python, Rust, Go, examples) not registered: missing ${_missing}")
endif()
